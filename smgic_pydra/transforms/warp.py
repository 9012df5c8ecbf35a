"""Warping, composition and resizing of normalized displacement fields (see :mod:`.grid`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .grid import identity_grid
from .sample import grid_sample_3d


def sample_grid(u: torch.Tensor) -> torch.Tensor:
    """Sampling positions ``p + u(p)`` as a ``(B, D, H, W, 3)`` grid for ``grid_sample``."""
    grid = identity_grid(u.shape[-3:], device=u.device, dtype=u.dtype)
    return grid + u.permute(0, 2, 3, 4, 1)


def warp(image: torch.Tensor, u: torch.Tensor, mode: str = "bilinear", padding_mode: str = "border") -> torch.Tensor:
    """Pull-back warp ``(I o phi)(p) = I(p + u(p))``.

    image: ``(B, C, D, H, W)`` on the same grid as ``u`` ``(B, 3, D, H, W)`` (normalized units).
    mode: ``bilinear`` (trilinear) or ``nearest`` (labels).
    """
    if image.shape[-3:] != u.shape[-3:]:
        raise ValueError(f"image grid {tuple(image.shape[-3:])} differs from field grid {tuple(u.shape[-3:])}")
    return grid_sample_3d(image, sample_grid(u), mode, padding_mode)


def compose(u_outer: torch.Tensor, u_inner: torch.Tensor) -> torch.Tensor:
    """Displacement of ``phi_outer o phi_inner``: ``u(p) = u_inner(p) + u_outer(p + u_inner(p))``.

    Warping by the result equals warping by ``phi_outer`` and then by ``phi_inner``:
    ``I o phi_outer o phi_inner``.
    """
    return u_inner + warp(u_outer, u_inner)


def upsample_field(u: torch.Tensor, size) -> torch.Tensor:
    """Resize a normalized displacement to grid ``size`` (trilinear, ``align_corners=True``).

    Values are unchanged: normalized units do not depend on resolution.
    """
    return F.interpolate(u, size=tuple(int(n) for n in size), mode="trilinear", align_corners=True)
