"""Displacement and velocity fields between a grid and its block-averaged (``avg_pool3d``) coarse grid.

Pooling by ``f`` puts coarse voxel ``i`` at fine voxel ``f i + (f - 1) / 2`` (the centre of its block). A fine grid of
``N`` voxels pools to ``n = N // f`` (a remainder at the far end is dropped; ``n`` must be at least 2), so in
normalized units (``align_corners=True``, :mod:`.grid`) the coarse grid spans ``a = f (n - 1) / (N - 1)`` of the fine
one's extent, its first voxel centre ``(f - 1) / (N - 1)`` inside the fine one's: a coarse normalized displacement
``d`` is ``a d`` on the fine grid. Both directions
below apply that map, so a field refined on the coarse grid lands where it belongs on the fine one (resizing with
:func:`.warp.upsample_field` instead would stretch it by ``1 / a``: 2.4 % for ``N = 128, f = 4``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def coarse_extent(shape, factor: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``a = f (n - 1) / (N - 1)`` per displacement channel ``(x, y, z) = (W, H, D)``, ``(1, 3, 1, 1, 1)``; a
    ``ValueError`` where a pooled axis would have fewer than 2 voxels (no normalized units)."""
    d, h, w = (int(n) for n in shape)
    if min(d, h, w) // factor < 2:
        raise ValueError(f"a grid of {d}x{h}x{w} voxels pooled by {factor} has an axis of fewer than 2 voxels")
    scale = [factor * (n // factor - 1) / (n - 1) for n in (w, h, d)]
    return torch.tensor(scale, device=device, dtype=dtype).view(1, 3, 1, 1, 1)


def pool_field(u: torch.Tensor, factor: int) -> torch.Tensor:
    """Block mean of ``u (B, 3, N_D, N_H, N_W)`` (normalized units of its grid) in the coarse grid's normalized
    units: ``(B, 3, N_D // f, N_H // f, N_W // f)``."""
    if factor == 1:
        return u
    return F.avg_pool3d(u, factor) / coarse_extent(u.shape[-3:], factor, u.device, u.dtype)


def unpool_field(u: torch.Tensor, shape, factor: int) -> torch.Tensor:
    """A field ``u`` on the grid ``shape`` pooled by ``factor`` (its normalized units), trilinearly sampled at
    every voxel of ``shape`` (beyond the outermost block centres: the nearest border value) and expressed in
    ``shape``'s normalized units: ``(B, 3, *shape)``."""
    coarse = tuple(u.shape[-3:])
    if coarse != tuple(int(n) // factor for n in shape):
        raise ValueError(f"a field on grid {coarse} is not grid {tuple(shape)} pooled by {factor}")
    if factor == 1:
        return u
    scale = coarse_extent(shape, factor, u.device, u.dtype)
    # coarse normalized coordinate of fine voxel j: 2 (j - (f - 1) / 2) / (f (n - 1)) - 1, per axis (D, H, W)
    axes = [(2.0 * (torch.arange(int(size), device=u.device, dtype=u.dtype) - (factor - 1) / 2.0)
             / (factor * (n - 1)) - 1.0) for size, n in zip(shape, coarse)]
    zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
    grid = torch.stack((xx, yy, zz), dim=-1).unsqueeze(0).expand(u.shape[0], -1, -1, -1, -1)
    fine = F.grid_sample(u, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return fine * scale
