"""Pydra tasks: the evaluation of a registered pair (label Dice, Jacobian folding, inverse consistency),
with the metric functions the cohort engine's tiles use (:func:`~smgic_pydra.metrics.pair_metrics.field_metrics`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydra.compose import python

from .filetypes import Image, NiftiGz, Tsv


def _mask_on_warp(mask, warp_path, disp, affine):
    from ..io.images import load_image
    from ..metrics.folding import mask_on_grid

    return mask_on_grid(load_image(mask, "mask"), mask, disp, affine, warp_path)


def label_dice(reference_labels: Image, warped_labels: Image,
               labels: list[int] | None = None) -> tuple[float, float, Tsv]:
    """Dice ``2 |A n B| / (|A| + |B|)`` and HD95 (robust Hausdorff distance) per label of two label maps on one grid.

    Args:
        reference_labels: integer label map (e.g. the fixed subject's).
        warped_labels: integer label map on the same grid (e.g. ApplyWarp genericLabel of the moving labels).
        labels: label values to score (default: every nonzero value of reference_labels).

    Returns:
        mean_dice: mean Dice over the labels present in reference_labels (NaN: none).
        mean_hd95_mm: mean HD95 (mm, voxel sizes of the reference's affine) over the labels present in both maps.
        table: TSV with columns label, dice, hd95_mm, reference_voxels, warped_voxels (NaN: absent).
    """
    from ..io.images import check_same_grid, load_image
    from ..metrics.dice import dice_per_label
    from ..metrics.hausdorff import hd95_per_label, voxel_sizes

    reference, warped = load_image(reference_labels, "labels"), load_image(warped_labels, "labels")
    check_same_grid(reference, reference_labels, warped, warped_labels)
    ref, wrp = np.asarray(reference.dataobj), np.asarray(warped.dataobj)
    wanted = [int(v) for v in (np.unique(ref[ref != 0]) if labels is None else labels)]
    dice = dice_per_label(wrp, ref, wanted)
    hd95 = hd95_per_label(wrp, ref, voxel_sizes(reference.affine), wanted)
    lines = ["label\tdice\thd95_mm\treference_voxels\twarped_voxels"]
    lines += [f"{v}\t{dice.per_label[v]:.6f}\t{hd95.per_label[v]:.4f}\t{np.count_nonzero(ref == v)}\t"
              f"{np.count_nonzero(wrp == v)}" for v in wanted]
    table = Path.cwd() / "dice.tsv"
    table.write_text("\n".join(lines) + "\n")
    return float(dice.mean), float(hd95.mean), table


LabelDice = python.define(label_dice, outputs=["mean_dice", "mean_hd95_mm", "table"], name="LabelDice")
"""Pydra task of :func:`label_dice`."""


def jacobian_folding(warp: Image, mask: Image | None = None) -> tuple[float, float, NiftiGz]:
    """Folding of a displacement field: the Jacobian determinant ``det(I + du/dx)`` (central differences in mm).

    Args:
        warp: ITK/ANTs 5-D displacement field (LPS mm), e.g. a registration's forward_warp.
        mask: brain mask on the warp's grid (default: every voxel).

    Returns:
        folding_percent: % of mask voxels with det(J) <= 0.
        log_jacobian_std: standard deviation of log det(J) in the mask (det clipped at 1e-9).
        jacobian: det(J) on the warp's grid, float32 .nii.gz.
    """
    from ..io.atomic import save_nifti
    from ..io.itk_warp import read_itk_displacement
    from ..metrics import folding_stats_from_det
    from ..transforms.jacobian import jacobian_determinant
    from ..worldspace.outputs import nifti_image

    disp, affine = read_itk_displacement(warp)
    det = jacobian_determinant(disp, affine)
    stats = folding_stats_from_det(det, None if mask is None else _mask_on_warp(mask, warp, disp, affine))
    out = save_nifti(nifti_image(det.astype(np.float32), affine), Path.cwd() / "jacobian.nii.gz")
    return stats.percent_folded, stats.log_det_std, out


JacobianFolding = python.define(jacobian_folding, outputs=["folding_percent", "log_jacobian_std", "jacobian"],
                                name="JacobianFolding")
"""Pydra task of :func:`jacobian_folding`."""


def warp_inverse_consistency(forward_warp: Image, inverse_warp: Image,
                             mask: Image | None = None) -> tuple[float, float]:
    """Inverse consistency ``|x' - x|`` with ``x' = y + v(y)``, ``y = x + u(x)`` (u forward, v inverse; RAS mm).

    Args:
        forward_warp: ITK/ANTs displacement field on the fixed grid (fixed -> moving).
        inverse_warp: ITK/ANTs displacement field on the moving grid (moving -> fixed; trilinear, edge values outside).
        mask: brain mask on the forward warp's grid (default: every voxel).

    Returns:
        mean_mm: mean error over the mask (mm).
        p95_mm: 95th percentile of the error (mm).
    """
    from ..io.itk_warp import read_itk_displacement
    from ..metrics import inverse_consistency

    fwd, fwd_affine = read_itk_displacement(forward_warp)
    inv, inv_affine = read_itk_displacement(inverse_warp)
    fwd_mask = None if mask is None else _mask_on_warp(mask, forward_warp, fwd, fwd_affine)
    result = inverse_consistency(fwd, fwd_affine, inv, inv_affine, fwd_mask)
    return result.mean_mm, result.p95_mm


InverseConsistency = python.define(warp_inverse_consistency, outputs=["mean_mm", "p95_mm"], name="InverseConsistency")
"""Pydra task of :func:`warp_inverse_consistency`."""


def label_volumes(labels: Image) -> Tsv:
    """Volume of each label of a label map (voxel counts times the voxel volume, ``|det|`` of the affine's 3 x 3).

    Args:
        labels: integer label map (.nii or .nii.gz).

    Returns:
        table: TSV with columns label, voxels, volume_mm3, one row per nonzero label value, ascending.
    """
    from ..io.images import load_image

    img = load_image(labels, "labels")
    values, counts = np.unique(np.asarray(img.dataobj), return_counts=True)
    voxel_mm3 = abs(float(np.linalg.det(np.asarray(img.affine, dtype=np.float64)[:3, :3])))
    lines = ["label\tvoxels\tvolume_mm3"] + [f"{v}\t{n}\t{n * voxel_mm3:.3f}" for v, n in zip(values, counts) if v != 0]
    table = Path.cwd() / "volumes.tsv"
    table.write_text("\n".join(lines) + "\n")
    return table


LabelVolumes = python.define(label_volumes, outputs=["table"], name="LabelVolumes")
"""Pydra task of :func:`label_volumes`."""
