"""Folding statistics of a displacement field: the Jacobian determinant of ``Id + grad u``.

The determinant is computed in physical units on the field's own grid by
:func:`smgic_pydra.transforms.jacobian_determinant` (central differences, oblique and anisotropic
grids handled through the affine). A voxel with ``det <= 0`` is folded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..transforms.jacobian import jacobian_determinant

LOG_DET_CLIP = 1e-9
"""Determinants are clipped to at least this value before the log (folded voxels included)."""


@dataclass(frozen=True)
class FoldingStats:
    """percent_folded: % of mask voxels with det <= 0; percent_folded_all: % of all voxels.

    log_det_std: standard deviation of ``log(max(det, 1e-9))`` in the mask; det_min / det_max:
    extremes of det in the mask (unitless). n_mask_voxels: voxels counted in the mask (all voxels
    when no mask was given).
    """

    percent_folded: float
    percent_folded_all: float
    log_det_std: float
    det_min: float
    det_max: float
    n_mask_voxels: int

    def as_dict(self) -> dict:
        return asdict(self)


def folding_stats_from_det(det: np.ndarray, mask: np.ndarray | None = None) -> FoldingStats:
    """:class:`FoldingStats` of a determinant map ``(X, Y, Z)``; ``mask`` (same shape, bool) or None (all voxels)."""
    det = np.asarray(det, dtype=np.float64)
    if mask is None:
        mask = np.ones(det.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != det.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the field grid {det.shape}")
    if not mask.any():
        raise ValueError("the mask is empty")
    inside = det[mask]
    return FoldingStats(
        percent_folded=100.0 * float(np.count_nonzero(inside <= 0)) / inside.size,
        percent_folded_all=100.0 * float(np.count_nonzero(det <= 0)) / det.size,
        log_det_std=float(np.std(np.log(np.maximum(inside, LOG_DET_CLIP)))),
        det_min=float(inside.min()),
        det_max=float(inside.max()),
        n_mask_voxels=int(inside.size),
    )


def folding_stats(disp_ras_mm: np.ndarray, affine: np.ndarray, mask: np.ndarray | None = None) -> FoldingStats:
    """:class:`FoldingStats` of a displacement ``(X, Y, Z, 3)`` in mm on the grid ``affine`` (voxel -> mm)."""
    return folding_stats_from_det(jacobian_determinant(disp_ras_mm, affine), mask)


def mask_on_grid(mask_img, mask_path, disp: np.ndarray, affine: np.ndarray, warp_path) -> np.ndarray:
    """The mask image as bool ``(X, Y, Z)``; :class:`InputError` naming ``mask_path`` when not on the field's grid."""
    from types import SimpleNamespace

    from ..io.images import check_same_grid

    check_same_grid(SimpleNamespace(shape=disp.shape[:3], affine=affine), warp_path, mask_img, mask_path)
    return np.asarray(mask_img.dataobj) > 0


def folding_stats_from_file(warp_path, mask_path=None) -> FoldingStats:
    """:class:`FoldingStats` of an ITK/ANTs warp file, in the brain mask file (same grid) when given."""
    from ..io.images import load_image
    from ..io.itk_warp import read_itk_displacement

    disp, affine = read_itk_displacement(warp_path)
    mask = None
    if mask_path is not None:
        mask = mask_on_grid(load_image(mask_path, "mask"), mask_path, disp, affine, warp_path)
    return folding_stats(disp, affine, mask)
