"""Torch sampling of an image on an affine grid in world (RAS mm) space, differentiable in the grid's affine.

An image is a ``(1, C, D, H, W)`` tensor whose voxel ``(i, j, k)`` (``D, H, W``) sits at
``index_affine @ (i, j, k, 1)`` (RAS mm), as on a prepared subject's network grid.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..transforms.sample import grid_sample_3d

_XYZ = torch.tensor([[0.0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)
"""Index order ``(i, j, k)`` <-> :func:`torch.nn.functional.grid_sample`'s ``(x, y, z) = (k, j, i)`` (its own inverse)."""


def grid_points(index_affine: np.ndarray, shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """World points ``(D, H, W, 3)`` (RAS mm) of the voxels of a grid ``shape`` with ``index_affine``."""
    axes = [torch.arange(int(n), device=device, dtype=dtype) for n in shape]
    idx = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    a = torch.as_tensor(np.asarray(index_affine, dtype=np.float64), device=device, dtype=dtype)
    return idx @ a[:3, :3].T + a[:3, 3]


def _index_to_normalized(shape) -> np.ndarray:
    """``align_corners=True`` normalisation ``2 i / (n - 1) - 1`` per axis (4 x 4; an axis of one voxel maps to -1)."""
    extent = np.maximum(np.asarray(shape, dtype=np.float64) - 1.0, 1.0)
    scale = np.diag([*(2.0 / extent), 1.0])
    scale[:3, 3] = -1.0
    return scale


def sample_on_grid(image: torch.Tensor, index_affine: np.ndarray, grid_affine: torch.Tensor | np.ndarray, shape,
                   mode: str = "bilinear") -> torch.Tensor:
    """Values ``(1, C, *shape)`` of ``image`` (``mode``: ``bilinear`` = trilinear, or ``nearest``; 0 outside) at the
    voxels of the grid ``shape`` whose index -> RAS mm affine is ``grid_affine`` (4 x 4; a torch tensor may carry
    gradients, composed in float64). One :func:`~torch.nn.functional.affine_grid` for all the grid's points."""
    device = image.device
    grid_affine = torch.as_tensor(grid_affine, device=device).double()
    to_source = torch.as_tensor(_index_to_normalized(image.shape[-3:]) @ np.linalg.inv(np.asarray(index_affine, np.float64)),
                                device=device)
    from_output = torch.as_tensor(np.linalg.inv(_index_to_normalized(shape)), device=device)
    xyz = _XYZ.to(device)
    theta = (xyz @ to_source @ grid_affine @ from_output @ xyz)[:3].to(image.dtype)
    grid = F.affine_grid(theta[None], [1, image.shape[1], *(int(n) for n in shape)], align_corners=True)
    return grid_sample_3d(image, grid, mode, "zeros")


def pooled(image: torch.Tensor, index_affine: np.ndarray, factor: int) -> tuple[torch.Tensor, np.ndarray]:
    """``image`` averaged over ``factor``^3 blocks and the index affine of the coarser grid."""
    if factor == 1:
        return image, np.asarray(index_affine, dtype=np.float64)
    coarse = F.avg_pool3d(image, factor)
    scale = np.diag([factor, factor, factor, 1.0])
    scale[:3, 3] = (factor - 1) / 2.0  # centre of the first block, in fine voxels
    return coarse, np.asarray(index_affine, dtype=np.float64) @ scale
