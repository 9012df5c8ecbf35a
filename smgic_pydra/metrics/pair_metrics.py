"""Metrics of registered pairs (via :mod:`smgic_pydra.metrics`): from the fields in memory (the tile job)
or from written files (resume, the Nipype ``PairMetrics`` interface, which also writes a metrics JSON)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..io.atomic import atomic_path, json_text

METRIC_DESCRIPTIONS = {
    "dice_mean": "mean Dice over the table's labels present in the fixed labels (NaN: no labels)",
    "hd95_mm": "mean HD95 (robust Hausdorff distance, mm) over the table's labels present in the fixed and the "
               "warped labels (a label the warp erased is left out: see labels_lost)",
    "labels_lost": "how many of the table's labels present in the fixed and the moving labels the warp erased "
                   "(absent from the warped labels: Dice 0, no HD95); NaN: moving labels not given",
    "folding_percent": "% of fixed-brain voxels with det(J) <= 0",
    "log_jacobian_std": "std of log det(J) in the fixed brain",
    "inverse_consistency_mm": "mean |phi_inv(phi(x)) - x| in the fixed brain (mm)",
}
"""metric -> what it is: the values :func:`pair_metrics` computes (the Nipype interface's outputs follow it)."""
#: row keys kept in the Nipype interface's metrics JSON (plus ``dice_per_label``)
METRIC_VALUES = tuple(METRIC_DESCRIPTIONS)
METRIC_KEYS = ("method", "fixed", "moving", "seconds", "forward_seconds", "error", *METRIC_VALUES)


def field_metrics(forward, fixed_affine, inverse, moving_affine, fixed, warped_labels, table,
                  table_path: str | None = None, moving_labels=None) -> tuple[dict, dict]:
    """``(metrics, dice per label)`` of one registered pair, from its fields in memory.

    forward: ``(X, Y, Z, 3)`` RAS mm on the fixed grid ``fixed_affine``; inverse: on the moving grid
    ``moving_affine`` (float32 values, as written; computed in float64). fixed: the fixed
    PreparedSubject (brain mask, source labels). warped_labels: the moving labels on the fixed grid,
    or None (no Dice). table: label -> name (from ``table_path``, None: the default table); a table
    none of whose labels occurs in the fixed labels is an :class:`InputError`, not a NaN Dice.
    moving_labels: the moving labels (integer array on the moving grid) for ``labels_lost``, or None.

    Dice: the warped moving labels against the fixed labels on the fixed native grid, over the
    labels of ``table`` (mean over labels present in the fixed image, see :mod:`smgic_pydra.metrics.dice`);
    the Dice per label returned is what that mean averages (:meth:`DiceResult.scored`: NaN for a label
    absent from the fixed image). HD95 of the same labels (mm, mean over labels present in the fixed and
    the warped image, :mod:`smgic_pydra.metrics.hausdorff`) and ``labels_lost``, the labels that mean
    leaves out although the moving image has them (see :data:`METRIC_DESCRIPTIONS`).
    Every output policy and the file-based :func:`pair_metrics` end here, so they give equal rows.
    """
    from smgic_pydra.io.errors import InputError, display_path
    from smgic_pydra.io.images import check_same_grid, load_image
    from smgic_pydra.metrics import folding_stats, inverse_consistency
    from smgic_pydra.metrics.dice import dice_per_label, labels_present
    from smgic_pydra.metrics.hausdorff import hd95_per_label, voxel_sizes
    from smgic_pydra.metrics.labels import DEFAULT_LABEL_TABLE

    fwd = np.asarray(forward, dtype=np.float32).astype(np.float64)
    inv = np.asarray(inverse, dtype=np.float32).astype(np.float64)
    metrics: dict = {}
    per_label: dict = {}
    fixed_labels = fixed.source_files.get("labels")
    if fixed_labels and warped_labels is not None:
        labels_img = load_image(fixed_labels, "labels")
        check_same_grid(SimpleNamespace(shape=fwd.shape[:3], affine=fixed_affine), "the forward warp", labels_img,
                        fixed_labels)
        fixed_data = np.asarray(labels_img.dataobj)
        dice = dice_per_label(warped_labels, fixed_data, table)
        if dice.n_labels == 0:
            raise InputError(display_path(table_path or DEFAULT_LABEL_TABLE),
                             f"no label of the table occurs in the fixed labels {fixed_labels}")
        per_label, metrics["dice_mean"] = dice.scored(), dice.mean
        metrics["hd95_mm"] = hd95_per_label(warped_labels, fixed_data, voxel_sizes(fixed_affine), table).mean
        metrics["labels_lost"] = math.nan if moving_labels is None else len(
            (dice.in_fixed & labels_present(moving_labels, table)) - dice.in_warped)
    fold = folding_stats(fwd, fixed_affine, fixed.native_mask)
    metrics["folding_percent"], metrics["log_jacobian_std"] = fold.percent_folded, fold.log_det_std
    metrics["inverse_consistency_mm"] = inverse_consistency(fwd, fixed_affine, inv, moving_affine,
                                                            fixed.native_mask).mean_mm
    return metrics, per_label


def pair_metrics(files: dict, fixed, table, table_path: str | None = None, moving=None) -> tuple[dict, dict]:
    """:func:`field_metrics` of a pair whose outputs are files (``files``: role -> path, with ``warp``
    and ``inverse_warp``, or ``compact``: the pair's compact mapping). The warped labels are
    ``files["warped_labels"]`` when present, else the ``moving`` PreparedSubject's labels resampled with the
    warp (output policy ``warps``), else none; ``labels_lost`` needs ``moving`` (its labels)."""
    from smgic_pydra.io.images import load_image
    from smgic_pydra.io.itk_warp import read_itk_displacement
    from smgic_pydra.worldspace import resample_with_displacement

    if "warp" not in files and files.get("compact"):  # --outputs compact: the fields from the pair's mapping
        from smgic_pydra.worldspace.compact import read_compact

        mapping = read_compact(files["compact"])
        fwd, inv, _ = mapping.dense_fields(fixed.subject_id)
        fwd_affine = mapping.grids[fixed.subject_id][0]
        inv_affine = mapping.grids[mapping.other(fixed.subject_id)][0]
    else:
        fwd, fwd_affine = read_itk_displacement(files["warp"])
        inv, inv_affine = read_itk_displacement(files["inverse_warp"])
    warped = labels = None
    if moving is not None and moving.source_files.get("labels"):
        labels = load_image(moving.source_files["labels"], "labels")
    if files.get("warped_labels") and Path(files["warped_labels"]).is_file():
        warped = np.asarray(load_image(files["warped_labels"], "labels").dataobj)
    elif labels is not None:
        warped = resample_with_displacement(labels, fwd, fwd_affine, fwd.shape[:3], "labels")
    return field_metrics(fwd, fwd_affine, inv, inv_affine, fixed, warped, table, table_path,
                         None if labels is None else np.asarray(labels.dataobj))


def write_metrics_file(row: dict, per_label: dict, names: dict, labels_table: str | None) -> None:
    """The pair's metrics JSON at ``row["metrics_file"]`` (atomic; skipped when empty): the row's
    :data:`METRIC_KEYS` and the defined Dice per label (``per_label`` of :func:`field_metrics`; NaN left out)."""
    if not row.get("metrics_file"):
        return
    data = {k: row.get(k, math.nan) for k in METRIC_KEYS}
    data["labels_table"] = labels_table or ""
    data["dice_per_label"] = {str(k): v for k, v in per_label.items() if not math.isnan(v)}
    data["label_names"] = {k: names.get(int(k), k) for k in data["dice_per_label"]}
    with atomic_path(Path(row["metrics_file"])) as tmp:
        tmp.write_text(json_text(data))
