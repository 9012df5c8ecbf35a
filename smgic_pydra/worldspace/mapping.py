"""Network-grid displacement fields -> native-grid RAS-millimetre displacement fields."""

from __future__ import annotations

import numpy as np

from .sampling import apply_affine, grid_world_points, row_chunks, sample_field


def _as_numpy_field(u_norm) -> np.ndarray:
    if hasattr(u_norm, "detach"):
        u_norm = u_norm.detach().to("cpu").double().numpy()
    u = np.asarray(u_norm, dtype=np.float64)
    if u.ndim == 5 and u.shape[0] == 1:
        u = u[0]
    if u.ndim != 4 or u.shape[0] != 3:
        raise ValueError(f"network displacement must be (3, D, H, W), got {u.shape}")
    return u


def network_disp_to_voxels(u_norm) -> np.ndarray:
    """Normalized ``(3, D, H, W)`` field, channels ``(x, y, z) = (W, H, D)`` -> voxel displacements
    ``(3, D, H, W)`` along array axes ``(i, j, k) = (D, H, W)`` (``align_corners=True``: x ``(N - 1) / 2``)."""
    u = _as_numpy_field(u_norm)
    d, h, w = u.shape[1:]
    return np.stack([u[2] * (d - 1) / 2.0, u[1] * (h - 1) / 2.0, u[0] * (w - 1) / 2.0])


def network_disp_to_world(u_norm, fixed, moving, target_affine, target_shape) -> np.ndarray:
    """RAS-mm displacement ``(X, Y, Z, 3)`` float32 on the target grid of a network-grid field.

    u_norm: ``(3, D, H, W)`` (or ``(1, 3, D, H, W)``) NumPy array or torch tensor in normalized
    units on ``fixed``'s network grid, pointing into ``moving``'s network grid (pull-back).
    fixed, moving: :class:`~smgic_pydra.preparation.PreparedSubject` (their ``net_affine`` is used).
    At each target voxel with world point ``x``: ``n = fixed.net_affine^-1 x``,
    ``m = n + u_vox(n)`` (trilinear; edge values outside the network grid),
    ``y = moving.net_affine m``; returns ``y - x``.
    For the forward field (fixed -> moving) the target is the fixed native grid; for the inverse,
    call with the roles swapped and the moving native grid as target.
    """
    u_vox = network_disp_to_voxels(u_norm)
    if u_vox.shape[1:] != tuple(fixed.image.shape):
        raise ValueError(f"field grid {u_vox.shape[1:]} differs from the fixed network grid {fixed.image.shape}")
    to_fixed_net = np.linalg.inv(np.asarray(fixed.net_affine, dtype=np.float64))
    target_shape = tuple(int(n) for n in target_shape[:3])
    out = np.empty(target_shape + (3,), dtype=np.float32)
    for rows in row_chunks(target_shape):
        x = grid_world_points(target_affine, target_shape, rows)
        n = apply_affine(to_fixed_net, x)
        m = n + sample_field(u_vox, n)
        out[rows] = apply_affine(moving.net_affine, m) - x
    return out
