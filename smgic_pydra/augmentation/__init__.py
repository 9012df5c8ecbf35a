"""Training-time augmentation of network-grid volumes: random affines, gamma, bias field."""

from .intensity import random_bias_field, random_gamma
from .spatial import apply_affine, random_affine_theta

__all__ = ["apply_affine", "random_affine_theta", "random_bias_field", "random_gamma"]
