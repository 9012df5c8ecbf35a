"""Jacobian determinant of a displacement field in physical units (NumPy)."""

from __future__ import annotations

import numpy as np


def jacobian_determinant(
    disp: np.ndarray, voxel_to_world: np.ndarray | None = None, chunk: int = 16
) -> np.ndarray:
    """``det(I + du/dx)`` of a displacement sampled on a regular grid.

    disp: ``(X, Y, Z, 3)``, the displacement of the point at array index ``(i, j, k)``, in the same
        physical units and axes as ``voxel_to_world`` maps to (e.g. RAS mm for a NIfTI affine).
    voxel_to_world: ``(4, 4)`` or ``(3, 3)`` affine of the grid; only its linear part is used, so
        oblique and anisotropic grids are handled. ``None`` means unit voxels along the array axes.

    Derivatives by central differences (one-sided at the border, ``np.gradient``), computed in slabs
    of ``chunk`` planes along the first axis to bound memory.
    Returns ``(X, Y, Z)`` float64.
    """
    disp = np.asarray(disp)
    if disp.ndim != 4 or disp.shape[-1] != 3:
        raise ValueError(f"displacement must be (X, Y, Z, 3), got {disp.shape}")
    linear = np.eye(3) if voxel_to_world is None else np.asarray(voxel_to_world, dtype=np.float64)[:3, :3]
    inv = np.linalg.inv(linear)  # d index / d x
    det = np.empty(disp.shape[:3], dtype=np.float64)
    for start in range(0, disp.shape[0], chunk):
        # slab with one voxel of context on each side so np.gradient stays central inside
        lo, hi = max(start - 1, 0), min(start + chunk + 1, disp.shape[0])
        slab = disp[lo:hi].astype(np.float64)
        grads = np.gradient(slab, axis=(0, 1, 2)) if slab.shape[0] > 1 else None
        if grads is None:  # a single plane: no derivative along the first axis
            grads = [np.zeros_like(slab)] + list(np.gradient(slab, axis=(1, 2)))
        keep = slice(start - lo, start - lo + min(chunk, disp.shape[0] - start))
        # chain rule: J[c, b] = delta_cb + sum_a du_c/didx_a * inv[a, b]
        j = np.eye(3) + np.einsum("axyzc,ab->xyzcb", np.stack([g[keep] for g in grads]), inv)
        det[start : start + j.shape[0]] = (
            j[..., 0, 0] * (j[..., 1, 1] * j[..., 2, 2] - j[..., 1, 2] * j[..., 2, 1])
            - j[..., 0, 1] * (j[..., 1, 0] * j[..., 2, 2] - j[..., 1, 2] * j[..., 2, 0])
            + j[..., 0, 2] * (j[..., 1, 0] * j[..., 2, 1] - j[..., 1, 1] * j[..., 2, 0])
        )
    return det
