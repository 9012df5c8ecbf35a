"""Training curves: a per-stage summary table and a PNG plot from ``training_log.csv`` and ``validation_log.csv``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

SUMMARY_COLUMNS = ("stage", "iterations", "loss_first100", "loss_last100", "seconds_per_step",
                   "validation_loss", "validation_dice")
SMOOTHING = 50
"""Steps in the running mean of the plotted training loss."""


def read_log(path: str | Path) -> list[dict]:
    """Rows of a training or validation log as numbers (an absent file has no rows)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def stage_summary(log: list[dict], validation: list[dict]) -> list[dict]:
    """One row per trained stage: steps, mean total loss over its first and last 100 steps, median
    seconds per step, and the validation loss / Dice at its end (NaN without a validation row)."""
    rows = []
    for stage in sorted({int(r["stage"]) for r in log}):
        steps = [r for r in log if int(r["stage"]) == stage]
        last_step = max(int(r["global_step"]) for r in steps)
        at_end = [v for v in validation if int(v["stage"]) == stage and int(v["global_step"]) == last_step]
        rows.append({
            "stage": stage,
            "iterations": len(steps),
            "loss_first100": float(np.mean([r["total"] for r in steps[:100]])),
            "loss_last100": float(np.mean([r["total"] for r in steps[-100:]])),
            "seconds_per_step": float(np.median([r["seconds"] for r in steps])),
            "validation_loss": at_end[-1]["loss"] if at_end else math.nan,
            "validation_dice": at_end[-1]["dice"] if at_end else math.nan,
        })
    return rows


def write_summary(rows: list[dict], path: str | Path) -> Path:
    """The stage summary as CSV (numbers rounded to 4 decimals)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return Path(path)


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.concatenate([values[: window - 1], np.convolve(values, kernel, mode="valid")])


def plot_curves(log: list[dict], validation: list[dict], path: str | Path) -> Path:
    """PNG of the training loss (running mean of ``SMOOTHING`` steps, per stage), the validation loss
    and, when any validation row has one, the validation Dice, against the global step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dice = [v for v in validation if not math.isnan(v["dice"])]
    panels = 2 + bool(dice)
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.6 * panels), sharex=True, constrained_layout=True)
    for stage in sorted({int(r["stage"]) for r in log}):
        steps = [r for r in log if int(r["stage"]) == stage]
        x = np.array([r["global_step"] for r in steps])
        axes[0].plot(x, _running_mean(np.array([r["total"] for r in steps]), SMOOTHING), label=f"stage {stage}")
        for ax in axes:
            ax.axvline(x[-1], color="0.8", lw=0.8)
    axes[0].set_ylabel("training loss")
    axes[0].legend(fontsize="small")
    for stage in sorted({int(v["stage"]) for v in validation}):  # each stage has its own objective
        rows = [v for v in validation if int(v["stage"]) == stage]
        axes[1].plot([v["global_step"] for v in rows], [v["loss"] for v in rows], "o-", ms=3, color=f"C{stage - 1}")
    axes[1].set_ylabel("validation loss")
    if dice:
        axes[2].plot([v["global_step"] for v in dice], [v["dice"] for v in dice], "o-", ms=3, color="C3")
        axes[2].set_ylabel("validation Dice")
    axes[-1].set_xlabel("iteration (all stages)")
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
    return Path(path)
