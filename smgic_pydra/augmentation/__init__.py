"""Training-time augmentation of network-grid volumes: random affines, gamma, bias field."""

from .options import AugmentOptions, augment_volume
from .intensity import random_bias_field, random_gamma
from .spatial import apply_affine, random_affine_theta

__all__ = ["AugmentOptions", "augment_volume", "apply_affine", "random_affine_theta", "random_bias_field", "random_gamma"]
