"""Jacobian determinant of a displacement field in physical units (NumPy)."""

from __future__ import annotations

import numpy as np


def jacobian_determinant(disp: np.ndarray, voxel_to_world: np.ndarray | None = None) -> np.ndarray:
    """``det(I + du/dx)`` of a displacement sampled on a regular grid.

    disp: ``(X, Y, Z, 3)``, the displacement of the point at array index ``(i, j, k)``, in the same
        physical units and axes as ``voxel_to_world`` maps to (e.g. RAS mm for a NIfTI affine).
    voxel_to_world: ``(4, 4)`` or ``(3, 3)`` affine of the grid; only its linear part is used, so
        oblique and anisotropic grids are handled. ``None`` means unit voxels along the array axes.

    Derivatives by central differences (one-sided at the border, ``np.gradient``).
    Returns ``(X, Y, Z)`` float64.
    """
    disp = np.asarray(disp, dtype=np.float64)
    if disp.ndim != 4 or disp.shape[-1] != 3:
        raise ValueError(f"displacement must be (X, Y, Z, 3), got {disp.shape}")
    linear = np.eye(3) if voxel_to_world is None else np.asarray(voxel_to_world, dtype=np.float64)[:3, :3]
    # d u_c / d index_a for every component c and array axis a: shape (X, Y, Z, 3, 3)
    du_didx = np.stack(np.gradient(disp, axis=(0, 1, 2)), axis=-1)
    # chain rule: du/dx = du/didx @ didx/dx, and didx/dx is the inverse of the linear part
    du_dx = du_didx @ np.linalg.inv(linear)
    return np.linalg.det(np.eye(3) + du_dx)
