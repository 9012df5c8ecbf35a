"""Synthetic subjects on disk: a skull-stripped T1-like image, its labels and brain mask, in native space."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..io.atomic import save_nifti
from .labels import brain_mask, load_label_map
from .t1_contrast import synthesize_t1


@dataclass(frozen=True)
class SyntheticSubject:
    """Paths of one synthetic subject (all on the same native grid)."""

    subject_id: str
    t1w: Path
    labels: Path
    mask: Path


def downsample_labels(labels: np.ndarray, affine: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Label map on a grid ``factor`` times coarser (nearest, voxel centres kept consistent)."""
    if factor == 1:
        return labels, affine
    out = labels[factor // 2 :: factor, factor // 2 :: factor, factor // 2 :: factor]
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] * factor
    new_affine[:3, 3] = affine[:3, :3] @ np.full(3, factor // 2) + affine[:3, 3]
    return out, new_affine


def write_synthetic_subject(
    label_map: str | Path,
    out_dir: str | Path,
    subject_id: str,
    rng: np.random.Generator,
    downsample: int = 1,
) -> SyntheticSubject:
    """Write ``<id>_T1w.nii.gz`` (skull-stripped, float32), ``<id>_dseg.nii.gz`` (int16 brain labels only)
    and ``<id>_mask.nii.gz`` in the label map's own native space (optionally ``downsample`` x coarser).

    Contrast, bias and noise are drawn from ``rng``, so subjects differ in appearance as well as anatomy.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels, affine = load_label_map(label_map)
    labels, affine = downsample_labels(labels, affine, downsample)
    voxel_mm = float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).mean())
    image = synthesize_t1(
        labels,
        rng,
        voxel_size_mm=voxel_mm,
        contrast_jitter=rng.uniform(0.02, 0.08),
        bias_strength=rng.uniform(0.05, 0.25),
        noise_std=rng.uniform(0.01, 0.04),
        blur_fwhm_mm=float(rng.uniform(0.5, 1.5)),
    )
    mask = brain_mask(labels)
    mask = ndimage.binary_fill_holes(mask)
    brain_labels = np.where(brain_mask(labels), labels, 0).astype(np.int16)
    paths = SyntheticSubject(
        subject_id,
        out_dir / f"{subject_id}_T1w.nii.gz",
        out_dir / f"{subject_id}_dseg.nii.gz",
        out_dir / f"{subject_id}_mask.nii.gz",
    )
    for data, path in ((image, paths.t1w), (brain_labels, paths.labels), (mask.astype(np.uint8), paths.mask)):
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        save_nifti(img, path)
    return paths
