"""Metrics of registered pairs (via :mod:`smgic_pydra.metrics`) and their per-pair metrics JSON files."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..io.atomic import atomic_path, json_text
from .rows import error_text

METRIC_DESCRIPTIONS = {
    "dice_mean": "mean Dice over the table's labels present in the fixed labels (NaN: no labels)",
    "folding_percent": "% of fixed-brain voxels with det(J) <= 0",
    "log_jacobian_std": "std of log det(J) in the fixed brain",
    "inverse_consistency_mm": "mean |phi_inv(phi(x)) - x| in the fixed brain (mm)",
}
"""metric -> what it is: the values :func:`pair_metrics` computes (the Nipype interface's outputs follow it)."""
#: row keys kept in a pair's metrics JSON (plus ``dice_per_label``)
METRIC_VALUES = tuple(METRIC_DESCRIPTIONS)
METRIC_KEYS = ("method", "fixed", "moving", "seconds", "forward_seconds", "error", *METRIC_VALUES)


def pair_metrics(row: dict, fixed, table, table_path: str | None = None,
                 fields: dict | None = None) -> tuple[dict, dict]:
    """``(metrics, dice per label)`` of one registered pair; ``fixed`` is the fixed PreparedSubject.
    ``fields``: a dict that receives the forward warp read here as ``"forward": (disp, affine)``.

    table: label -> name (from ``table_path``, None: the default table); a table none of whose
    labels occurs in the fixed labels is an :class:`InputError`, not a NaN Dice.

    Dice: the warped moving labels against the fixed labels on the fixed native grid, over the
    labels of ``table`` (mean over labels present in the fixed image, see :mod:`smgic_pydra.metrics.dice`).
    """
    from smgic_pydra.io.itk_warp import read_itk_displacement
    from smgic_pydra.metrics import folding_stats, inverse_consistency
    from smgic_pydra.io.errors import InputError, display_path
    from smgic_pydra.metrics.dice import dice_from_files
    from smgic_pydra.metrics.labels import DEFAULT_LABEL_TABLE

    files = row["files"]
    metrics: dict = {}
    per_label: dict = {}
    fixed_labels = fixed.source_files.get("labels")
    if fixed_labels and files.get("warped_labels") and Path(files["warped_labels"]).is_file():  # moving labels exist
        dice = dice_from_files(files["warped_labels"], fixed_labels, table)
        if dice.n_labels == 0:
            raise InputError(display_path(table_path or DEFAULT_LABEL_TABLE),
                             f"no label of the table occurs in the fixed labels {fixed_labels}")
        per_label, metrics["dice_mean"] = dice.per_label, dice.mean
    fwd, fwd_affine = read_itk_displacement(files["warp"])
    if fields is not None:
        fields["forward"] = (fwd, fwd_affine)
    inv, inv_affine = read_itk_displacement(files["inverse_warp"])
    fold = folding_stats(fwd, fwd_affine, fixed.native_mask)
    metrics["folding_percent"], metrics["log_jacobian_std"] = fold.percent_folded, fold.log_det_std
    metrics["inverse_consistency_mm"] = inverse_consistency(fwd, fwd_affine, inv, inv_affine, fixed.native_mask).mean_mm
    return metrics, per_label


def write_metrics_file(row: dict, per_label: dict, names: dict, labels_table: str | None) -> None:
    """The pair's metrics JSON at ``row["metrics_file"]`` (atomic; skipped when empty)."""
    if not row.get("metrics_file"):
        return
    data = {k: row.get(k, math.nan) for k in METRIC_KEYS}
    data["labels_table"] = labels_table or ""
    data["dice_per_label"] = {str(k): v for k, v in per_label.items() if not math.isnan(v)}
    data["label_names"] = {k: names.get(int(k), k) for k in data["dice_per_label"]}
    with atomic_path(Path(row["metrics_file"])) as tmp:
        tmp.write_text(json_text(data))


def saved_metrics(row: dict, labels_table: str | None) -> tuple[dict, dict] | None:
    """``(metrics, dice per label)`` saved for a resumed pair whose outputs are unchanged since, else None."""
    path = Path(row.get("metrics_file") or "")
    sidecar = Path(row["files"].get("sidecar", ""))
    if not (row.get("resumed") and path.is_file() and sidecar.is_file()):
        return None
    if path.stat().st_mtime_ns < sidecar.stat().st_mtime_ns:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("error") or data.get("labels_table", "") != (labels_table or ""):
        return None
    metrics = {k: data[k] for k in METRIC_VALUES if k in data}
    return metrics, {int(k): float(v) for k, v in data.get("dice_per_label", {}).items()}


def evaluate_rows(rows: list[dict], prepared_dirs: dict, labels_table: str | None) -> tuple[list[dict], list[dict]]:
    """Rows with metrics added, and one Dice row per pair, method and label (see :class:`EvaluateChunk`).

    A resumed pair (outputs already complete) reuses its saved metrics when they are newer than
    its outputs and were computed with the same label table.
    """
    from smgic_pydra.metrics.labels import load_label_table
    from smgic_pydra.preparation import PreparedSubject
    from smgic_pydra.tasks.rows import flatten_rows

    table = load_label_table(labels_table)
    names = dict(table)
    loaded: dict = {}

    def subject(key: str) -> PreparedSubject:
        if key not in loaded:
            loaded[key] = PreparedSubject.load(prepared_dirs[key])
        return loaded[key]

    out, label_rows = [], []
    for row in flatten_rows(rows):
        row = dict(row)
        per_label: dict = {}
        fields: dict = {}
        if not row.get("error"):
            try:
                saved = saved_metrics(row, labels_table)
                if saved is None:
                    saved = pair_metrics(row, subject(row["fixed"]), table, labels_table, fields)
                metrics, per_label = saved
                row.update(metrics)
            except Exception as exc:  # errors are data
                row["error"] = f"evaluation failed: {error_text(exc)}"
        if not row.get("error") and (row.get("figures") or row.get("subject_figures")):
            from smgic_pydra.reports.reportlets import write_row_reportlets

            row["figures_error"] = write_row_reportlets(row, subject(row["fixed"]), subject(row["moving"]),
                                                        fields.get("forward"))
        write_metrics_file(row, per_label, names, labels_table)
        out.append(row)
        label_rows += [{"method": row["method"], "fixed": row["fixed"], "moving": row["moving"], "label": int(label),
                        "name": names.get(int(label), str(label)), "dice": float(d)} for label, d in per_label.items()
                       if not math.isnan(d)]
    return out, label_rows
