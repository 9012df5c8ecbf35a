"""Network-grid displacement fields -> native-grid RAS-millimetre displacement fields."""

from __future__ import annotations

import numpy as np

from .sampling import row_chunks, sample_field_tensor


def _field_tensor(u_norm):
    """``(3, D, H, W)`` float64 torch tensor of a NumPy array or tensor (a tensor keeps its device)."""
    import torch

    u = u_norm.detach().double() if isinstance(u_norm, torch.Tensor) else torch.as_tensor(np.asarray(u_norm, np.float64))
    if u.ndim == 5 and u.shape[0] == 1:
        u = u[0]
    if u.ndim != 4 or u.shape[0] != 3:
        raise ValueError(f"network displacement must be (3, D, H, W), got {tuple(u.shape)}")
    return u


def _voxel_field(u):
    """Normalized field tensor ``(3, D, H, W)``, channels ``(x, y, z) = (W, H, D)`` -> voxel displacements
    along array axes ``(i, j, k) = (D, H, W)`` (``align_corners=True``: x ``(N - 1) / 2``)."""
    import torch

    d, h, w = u.shape[1:]
    return torch.stack([u[2] * (d - 1) / 2.0, u[1] * (h - 1) / 2.0, u[0] * (w - 1) / 2.0])


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
    Computed in float64 on the device of ``u_norm`` (a CUDA tensor: on that GPU; else the CPU), in
    chunks of rows; the same operations on either device, equal to float32 rounding.
    """
    import torch

    from ..affine.world_sampling import grid_points

    u_vox = _voxel_field(_field_tensor(u_norm))
    if tuple(u_vox.shape[1:]) != tuple(fixed.image.shape):
        raise ValueError(f"field grid {tuple(u_vox.shape[1:])} differs from the fixed network grid {fixed.image.shape}")
    device = u_vox.device

    def tensor(a):
        return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)

    to_fixed_net, to_world = tensor(np.linalg.inv(np.asarray(fixed.net_affine, dtype=np.float64))), tensor(moving.net_affine)
    target_affine = np.asarray(target_affine, dtype=np.float64)
    target_shape = tuple(int(n) for n in target_shape[:3])
    out = np.empty(target_shape + (3,), dtype=np.float32)
    for rows in row_chunks(target_shape):
        first_row = np.eye(4)
        first_row[0, 3] = rows.start
        x = grid_points(target_affine @ first_row, (rows.stop - rows.start, *target_shape[1:]), device=device,
                        dtype=torch.float64)
        n = _apply(to_fixed_net, x)
        m = n + sample_field_tensor(u_vox, n)
        out[rows] = (_apply(to_world, m) - x).float().cpu().numpy()
    return out


def _apply(affine, points):
    """``affine (4, 4)`` applied to points ``(..., 3)`` (torch, as :func:`.sampling.apply_affine`)."""
    return points @ affine[:3, :3].T + affine[:3, 3]
