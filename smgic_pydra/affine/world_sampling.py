"""Torch sampling of an image at world (RAS mm) points, differentiable in the points.

An image is a ``(1, 1, D, H, W)`` tensor whose voxel ``(i, j, k)`` (``D, H, W``) sits at
``index_affine @ (i, j, k, 1)`` (RAS mm), as on a prepared subject's network grid.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def grid_points(index_affine: np.ndarray, shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """World points ``(D, H, W, 3)`` (RAS mm) of the voxels of a grid ``shape`` with ``index_affine``."""
    axes = [torch.arange(int(n), device=device, dtype=dtype) for n in shape]
    idx = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    a = torch.as_tensor(np.asarray(index_affine, dtype=np.float64), device=device, dtype=dtype)
    return idx @ a[:3, :3].T + a[:3, 3]


def sample_at_world(image: torch.Tensor, index_affine: np.ndarray, points: torch.Tensor,
                    mode: str = "bilinear") -> torch.Tensor:
    """Values (``mode``: ``bilinear`` = trilinear, or ``nearest``) ``(1, 1, *points.shape[:-1])`` of ``image`` at world points ``(..., 3)``; 0 outside."""
    to_index = torch.as_tensor(np.linalg.inv(np.asarray(index_affine, dtype=np.float64)), device=points.device,
                               dtype=points.dtype)
    idx = points @ to_index[:3, :3].T + to_index[:3, 3]
    extent = torch.tensor(image.shape[-3:], device=points.device, dtype=points.dtype) - 1.0
    norm = 2.0 * idx / extent.clamp(min=1.0) - 1.0
    grid = norm.flip(-1).reshape(1, *points.shape[:-1], 3)  # grid_sample wants (x, y, z) = (k, j, i)
    return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=True)


def pooled(image: torch.Tensor, index_affine: np.ndarray, factor: int) -> tuple[torch.Tensor, np.ndarray]:
    """``image`` averaged over ``factor``^3 blocks and the index affine of the coarser grid."""
    if factor == 1:
        return image, np.asarray(index_affine, dtype=np.float64)
    coarse = F.avg_pool3d(image, factor)
    scale = np.diag([factor, factor, factor, 1.0])
    scale[:3, 3] = (factor - 1) / 2.0  # centre of the first block, in fine voxels
    return coarse, np.asarray(index_affine, dtype=np.float64) @ scale
