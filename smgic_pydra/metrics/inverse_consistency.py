"""Inverse consistency of a forward/inverse displacement pair, in millimetres.

For each fixed-grid voxel ``x`` (world RAS mm) in the mask: ``y = x + u_fwd(x)``, then
``z = y + u_inv(y)`` with ``u_inv`` interpolated trilinearly on its own (moving) grid at the world
point ``y``; the error is ``|z - x|`` (mm). ``u_fwd`` lives on the fixed grid (fixed -> moving),
``u_inv`` on the moving grid (moving -> fixed), as written by ``write_pair_outputs``. Points ``y``
outside the moving grid take the field's edge value; their share is reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..worldspace.sampling import apply_affine, sample_at_index

POINTS_PER_CHUNK = 1 << 20


@dataclass(frozen=True)
class InverseConsistency:
    """mean_mm / p95_mm / max_mm of ``|phi_inv(phi_fwd(x)) - x|`` over the mask; outside_fraction: share of
    points ``phi_fwd(x)`` outside the moving grid; n_points: voxels evaluated."""

    mean_mm: float
    p95_mm: float
    max_mm: float
    outside_fraction: float
    n_points: int

    def as_dict(self) -> dict:
        return asdict(self)


def inverse_consistency(
    fwd_disp_ras_mm: np.ndarray,
    fwd_affine: np.ndarray,
    inv_disp_ras_mm: np.ndarray,
    inv_affine: np.ndarray,
    mask: np.ndarray | None = None,
) -> InverseConsistency:
    """Inverse consistency error (see the module doc). Fields ``(X, Y, Z, 3)`` RAS mm on their grids;
    ``mask``: bool on the forward (fixed) grid, or None for every voxel."""
    fwd, inv = np.asarray(fwd_disp_ras_mm), np.asarray(inv_disp_ras_mm)
    for name, field in (("forward", fwd), ("inverse", inv)):
        if field.ndim != 4 or field.shape[-1] != 3:
            raise ValueError(f"{name} displacement must be (X, Y, Z, 3), got {field.shape}")
    mask = np.ones(fwd.shape[:3], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != fwd.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} does not match the forward field grid {fwd.shape[:3]}")
    voxels = np.argwhere(mask)
    if not len(voxels):
        raise ValueError("the mask is empty")
    to_inv_index = np.linalg.inv(np.asarray(inv_affine, dtype=np.float64))
    upper = np.array(inv.shape[:3], dtype=np.float64) - 1
    errors = np.empty(len(voxels), dtype=np.float64)
    outside = 0
    for start in range(0, len(voxels), POINTS_PER_CHUNK):
        vox = voxels[start : start + POINTS_PER_CHUNK]
        x = apply_affine(fwd_affine, vox.astype(np.float64))
        y = x + fwd[vox[:, 0], vox[:, 1], vox[:, 2]]
        idx = apply_affine(to_inv_index, y)
        outside += int(np.count_nonzero(np.any((idx < 0) | (idx > upper), axis=1)))
        u_inv = np.stack([sample_at_index(inv[..., c], idx, 1, mode="nearest") for c in range(3)], axis=-1)
        errors[start : start + len(vox)] = np.linalg.norm(y + u_inv - x, axis=1)
    return InverseConsistency(
        mean_mm=float(errors.mean()),
        p95_mm=float(np.percentile(errors, 95)),
        max_mm=float(errors.max()),
        outside_fraction=outside / len(voxels),
        n_points=len(voxels),
    )


def inverse_consistency_from_files(warp_path, inverse_warp_path, mask_path=None) -> InverseConsistency:
    """:func:`inverse_consistency` of two ITK/ANTs warp files; ``mask_path``: brain mask on the forward grid."""
    from ..io.images import load_image
    from ..io.itk_warp import read_itk_displacement
    from .folding import mask_on_grid

    fwd, fwd_affine = read_itk_displacement(warp_path)
    inv, inv_affine = read_itk_displacement(inverse_warp_path)
    mask = None
    if mask_path is not None:
        mask = mask_on_grid(load_image(mask_path, "mask"), mask_path, fwd, fwd_affine, warp_path)
    return inverse_consistency(fwd, fwd_affine, inv, inv_affine, mask)
