"""Augmentation settings and their application to one training volume."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .intensity import random_bias_field, random_gamma
from .spatial import apply_affine, random_affine_theta


@dataclass(frozen=True)
class AugmentOptions:
    """Random perturbations applied independently to each image of a training pair.

    Spatial (image and labels together): rotation up to ``max_rotation_deg`` about each axis,
    translation up to ``max_translation_vox`` network voxels, per-axis scaling in ``scale_range``.
    Intensity: gamma with ``log(gamma) ~ N(0, log_gamma_std)``; smooth multiplicative bias field of
    strength ``bias_strength``. All zero (the default) disables augmentation.
    """

    max_rotation_deg: float = 0.0
    max_translation_vox: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    log_gamma_std: float = 0.0
    bias_strength: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> "AugmentOptions":
        """Inverse of ``dataclasses.asdict`` (JSON lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @property
    def spatial(self) -> bool:
        return self.max_rotation_deg > 0 or self.max_translation_vox > 0 or tuple(self.scale_range) != (1.0, 1.0)

    @property
    def enabled(self) -> bool:
        return self.spatial or self.log_gamma_std > 0 or self.bias_strength > 0


def augment_volume(
    image: torch.Tensor, labels: torch.Tensor | None, options: AugmentOptions, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment one ``(1, 1, D, H, W)`` image in ``[0, 1]`` (and its labels, nearest) with draws from ``generator``."""
    if options.spatial:
        theta = random_affine_theta(
            image.shape[-3:], generator, options.max_rotation_deg, options.max_translation_vox, tuple(options.scale_range)
        )
        image = apply_affine(image, theta)
        if labels is not None:
            labels = apply_affine(labels.float(), theta, mode="nearest").to(labels.dtype)
    if options.log_gamma_std > 0:
        image = random_gamma(image, generator, options.log_gamma_std)
    if options.bias_strength > 0:
        image = random_bias_field(image, generator, options.bias_strength)
    return image, labels
