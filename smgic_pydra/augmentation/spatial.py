"""Random affine perturbations of network-grid volumes (no-pre-registration robustness)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..transforms.sample import grid_sample_3d


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """``(3, 3)`` rotation from angles (radians) about x, y, z, applied in that order."""
    cx, cy, cz = torch.cos(angles)
    sx, sy, sz = torch.sin(angles)
    one, zero = torch.ones(()), torch.zeros(())
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx]).view(3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy]).view(3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one]).view(3, 3)
    return rz @ ry @ rx


def random_affine_theta(
    shape,
    generator: torch.Generator,
    max_rotation_deg: float = 10.0,
    max_translation_vox: float = 8.0,
    scale_range: tuple[float, float] = (0.93, 1.07),
) -> torch.Tensor:
    """Random ``(3, 4)`` matrix for ``F.affine_grid`` (normalized ``(x, y, z)`` coordinates, ``align_corners=True``).

    The map is built in voxel units about the grid centre (so rotations are rigid on non-cubic grids),
    then expressed in normalized units. ``shape`` is ``(D, H, W)``.
    """
    d, h, w = (int(n) for n in shape)
    half = torch.tensor([(w - 1) / 2.0, (h - 1) / 2.0, (d - 1) / 2.0], dtype=torch.float64)
    u = torch.rand(7, generator=generator, dtype=torch.float64)
    angles = (2 * u[:3] - 1) * math.radians(max_rotation_deg)
    scales = scale_range[0] + (scale_range[1] - scale_range[0]) * u[3:6]
    linear_vox = _rotation(angles.float()).double() @ torch.diag(scales)
    shift_vox = (2 * torch.rand(3, generator=generator, dtype=torch.float64) - 1) * max_translation_vox
    # normalized p -> voxel (p * half) -> linear + shift -> normalized
    linear = torch.diag(1 / half) @ linear_vox @ torch.diag(half)
    return torch.cat([linear, (shift_vox / half)[:, None]], dim=1).float()


def apply_affine(volume: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample ``volume`` ``(B, C, D, H, W)`` at ``theta @ [p, 1]`` (pull-back), zero outside."""
    grid = F.affine_grid(theta.to(volume).expand(volume.shape[0], 3, 4), list(volume.shape), align_corners=True)
    return grid_sample_3d(volume, grid, mode, "zeros")
