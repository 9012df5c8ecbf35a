"""Random intensity perturbations of [0, 1] images: gamma and a smooth multiplicative bias field."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_gamma(image: torch.Tensor, generator: torch.Generator, log_gamma_std: float = 0.2) -> torch.Tensor:
    """``image ** gamma`` with ``log(gamma) ~ N(0, log_gamma_std)``; ``image`` must be in ``[0, 1]``."""
    gamma = torch.exp(torch.randn((), generator=generator) * log_gamma_std)
    return image.clamp(0, 1) ** gamma.to(image)


def random_bias_field(
    image: torch.Tensor, generator: torch.Generator, strength: float = 0.2, control_points: int = 4
) -> torch.Tensor:
    """Multiply by ``exp(b)`` with ``b`` a smooth field (trilinear from a ``control_points^3`` lattice)
    of values in ``[-strength, strength]``, then rescale the image back to a maximum of 1.
    """
    coarse = (2 * torch.rand((1, 1, *(control_points,) * 3), generator=generator) - 1) * strength
    field = F.interpolate(coarse.to(image), size=image.shape[-3:], mode="trilinear", align_corners=True)
    out = image * torch.exp(field)
    peak = out.flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, *([1] * (out.dim() - 1)))
    return out / peak
