"""Placement of the network grid on a subject's brain.

Convention: the network grid is ``cfg.grid_shape`` voxels of ``cfg.voxel_size_mm`` mm, with axes
aligned with RAS (array index ``i`` increases towards Right, ``j`` towards Anterior, ``k`` towards
Superior; torch ``D, H, W`` = ``i, j, k``), no rotation taken from the subject, and its centre
voxel ``(N - 1) / 2`` at the centre of the world-space bounding box of the brain mask. So
``net_affine = [[s, 0, 0, c_x - s (N_i - 1) / 2], [0, s, 0, c_y - s (N_j - 1) / 2],
[0, 0, s, c_z - s (N_k - 1) / 2], [0, 0, 0, 1]]``.
"""

from __future__ import annotations

import numpy as np

from ..worldspace.sampling import apply_affine


def mask_centre_ras(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Centre (RAS mm) of the bounding box of the world positions of the voxels where ``mask`` is true."""
    points = apply_affine(affine, np.argwhere(mask).astype(np.float64))
    return (points.min(axis=0) + points.max(axis=0)) / 2.0


def network_affine(centre_ras: np.ndarray, grid_shape, voxel_size_mm: float) -> np.ndarray:
    """Affine (4, 4) of the RAS-aligned network grid whose centre voxel sits at ``centre_ras``."""
    s = float(voxel_size_mm)
    half = (np.asarray(grid_shape, dtype=np.float64) - 1.0) / 2.0
    affine = np.diag([s, s, s, 1.0])
    affine[:3, 3] = np.asarray(centre_ras, dtype=np.float64) - s * half
    return affine
