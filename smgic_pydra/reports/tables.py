"""Report tables from result rows (pandas).

Units: Dice in [0, 1]; HD95 in millimetres; labels_lost a count of labels; folding in percent of
fixed-brain voxels with det(J) <= 0; inverse consistency in millimetres; times in seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..methods.registry import report_label

#: columns of pairs.csv, in order (``labels_lost``: :data:`smgic_pydra.metrics.pair_metrics.METRIC_DESCRIPTIONS`)
PAIR_COLUMNS = ["method", "fixed", "moving", "dice_mean", "hd95_mm", "labels_lost", "folding_percent",
                "log_jacobian_std", "inverse_consistency_mm", "seconds", "forward_seconds", "error"]
#: metrics summarised per method: column -> label used in the formatted summary
METRICS = {"dice_mean": "Dice", "hd95_mm": "HD95 (mm)", "folding_percent": "Folding %",
           "inverse_consistency_mm": "Inverse consistency (mm)", "seconds": "Seconds"}
#: columns of dice_per_label.{csv,parquet}, in order
LABEL_COLUMNS = ["method", "fixed", "moving", "label", "name", "dice"]
_PAIR_STRINGS = ("method", "fixed", "moving", "error")


def pairs_frame(rows) -> pd.DataFrame:
    """One row per pair and method (columns :data:`PAIR_COLUMNS`), sorted by method, fixed, moving;
    missing metrics are NaN, a missing error ``""``. ``rows``: a DataFrame or a list of row dicts."""
    if isinstance(rows, pd.DataFrame):
        frame = rows.reindex(columns=PAIR_COLUMNS)
    else:
        frame = pd.DataFrame([{c: row.get(c, math.nan) for c in PAIR_COLUMNS} for row in rows], columns=PAIR_COLUMNS)
    frame = frame.fillna({c: "" for c in _PAIR_STRINGS})
    frame = frame.astype({c: str if c in _PAIR_STRINGS else "float64" for c in PAIR_COLUMNS})
    return frame.sort_values(["method", "fixed", "moving"], kind="stable").reset_index(drop=True)


def labels_frame(label_rows: list[dict]) -> pd.DataFrame:
    """One row per pair, method and label."""
    frame = pd.DataFrame(label_rows, columns=LABEL_COLUMNS)
    return frame.sort_values(["method", "fixed", "moving", "label"], kind="stable").reset_index(drop=True)


def _mean_std(values: pd.Series) -> tuple[float, float]:
    values = values.dropna()
    if values.empty:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summary_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1) per method over the successful pairs.

    Columns: method, label (the method's report label, from the registry), n_pairs, n_failed, labels_lost (the
    labels the warps erased, summed over the successful pairs that counted them; NaN: none did; such labels are
    left out of HD95), ``<metric>_mean``, ``<metric>_std`` and a formatted ``"<mean> ± <std>"`` column per
    metric (the paper's Table 1 layout).
    """
    out = []
    for method, group in pairs.groupby("method", sort=True):
        ok = group[group["error"] == ""]
        row = {"method": method, "label": report_label(method), "n_pairs": len(group),
               "n_failed": int((group["error"] != "").sum()), "labels_lost": ok["labels_lost"].sum(min_count=1)}
        for column, label in METRICS.items():
            mean, std = _mean_std(ok[column])
            digits = 2 if column == "seconds" else 3
            row[f"{column}_mean"], row[f"{column}_std"] = mean, std
            row[label] = "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"
        out.append(row)
    columns = ["method", "label", "n_pairs", "n_failed", "labels_lost"]
    columns += [c for column, label in METRICS.items() for c in (f"{column}_mean", f"{column}_std", label)]
    return pd.DataFrame(out, columns=columns)


def subject_keys(pairs: pd.DataFrame) -> list[str]:
    """The sorted subject keys of the table (fixed and moving)."""
    return sorted(set(pairs["fixed"].unique()) | set(pairs["moving"].unique()))


def ordered_dice_matrix(pairs: pd.DataFrame, method: str, subjects: list[str]) -> np.ndarray:
    """``M[i, j]``: ``dice_mean`` of ``method``'s pair with fixed ``subjects[i]`` and moving
    ``subjects[j]``; NaN where that ordered pair was not run or failed."""
    rows = pairs[(pairs["method"] == method) & (pairs["error"] == "") & pairs["dice_mean"].notna()]
    fixed = pd.Categorical(rows["fixed"], categories=subjects).codes
    moving = pd.Categorical(rows["moving"], categories=subjects).codes
    matrix = np.full((len(subjects), len(subjects)), np.nan)
    matrix[fixed, moving] = rows["dice_mean"].to_numpy(dtype=float)
    return matrix
