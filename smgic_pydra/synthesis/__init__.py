"""Synthetic subjects with known anatomy: T1-like images from label maps and known deformations."""

from .deformation import deform_volume, random_affine, random_smooth_displacement
from .labels import brain_mask, load_label_map
from .subjects import SyntheticSubject, downsample_labels, write_synthetic_subject
from .t1_contrast import gamma_curve, smooth_random_field, synthesize_t1

__all__ = [
    "SyntheticSubject",
    "downsample_labels",
    "write_synthetic_subject",
    "brain_mask",
    "deform_volume",
    "gamma_curve",
    "load_label_map",
    "random_affine",
    "random_smooth_displacement",
    "smooth_random_field",
    "synthesize_t1",
]
