"""Per-structure Dice statistics accumulated table by table (memory independent of the cohort size).

For each method and label: the count of finite Dice values, their mean and sample standard
deviation (ddof=1; merged per table with Chan et al.'s pairwise update, exact up to rounding), the
minimum and maximum, and box statistics as matplotlib's ``boxplot_stats`` defines them: quartiles
(linear interpolation, ``numpy.percentile``), whiskers at the most extreme values within 1.5 IQR
of the box, outliers beyond them.

While a structure has at most :data:`EXACT_VALUES` values they are kept and the box statistics are
exact. Past that, they come from a histogram of :data:`BINS` equal bins on Dice [0, 1] (values
assumed uniform within a bin): the quartiles are within one bin (0.001 Dice) of the exact ones; the
whiskers within four (their 1.5 IQR limits add up the quartiles' errors); the outliers are counted
and shown as the centres of the non-empty bins beyond the whiskers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 1000
"""Histogram bins on Dice [0, 1]: the resolution of the quartiles and whiskers of large structures."""
EXACT_VALUES = 5000
"""Values per method and structure kept for exact box statistics (memory: 8 bytes each)."""
STRUCTURE_COLUMNS = ["method", "label", "name", "n", "mean", "std", "min", "q1", "median", "q3", "max", "whislo",
                     "whishi", "n_outliers", "exact"]
"""Columns of ``dice_per_structure.tsv`` (Dice; ``exact``: box statistics from the values, else from the histogram)."""
WHISKER = 1.5


class StructureStats:
    """Accumulates the Dice of label tables (columns ``method``, ``label``, ``name``, ``dice``)."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, int], int] = {}
        self.names: dict[tuple[str, int], str] = {}
        self.n = np.zeros(0, np.int64)
        self.mean = np.zeros(0)
        self.m2 = np.zeros(0)
        self.min = np.zeros(0)
        self.max = np.zeros(0)
        self.hist = np.zeros((0, BINS), np.int64)
        self.values: list[list[np.ndarray] | None] = []

    def _groups(self, keys: list[tuple[str, int]], names: list[str]) -> np.ndarray:
        """Row of each key, new keys appended."""
        new = [k for k in keys if k not in self._index]
        if new:
            count = len(new)
            for key in new:
                self._index[key] = len(self._index)
            self.n = np.concatenate([self.n, np.zeros(count, np.int64)])
            self.mean = np.concatenate([self.mean, np.zeros(count)])
            self.m2 = np.concatenate([self.m2, np.zeros(count)])
            self.min = np.concatenate([self.min, np.full(count, np.inf)])
            self.max = np.concatenate([self.max, np.full(count, -np.inf)])
            self.hist = np.concatenate([self.hist, np.zeros((count, BINS), np.int64)])
            self.values += [[] for _ in new]
        for key, name in zip(keys, names):
            self.names.setdefault(key, name)
        return np.array([self._index[k] for k in keys], np.int64)

    def add(self, table) -> None:
        """Add the finite Dice values of an Arrow table or DataFrame (the label columns above)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table[["method", "label", "name", "dice"]], preserve_index=False)
        dice = table.column("dice").to_numpy().astype(float, copy=False)
        finite = np.isfinite(dice)
        if not finite.any():
            return
        method = pc.dictionary_encode(table.column("method").cast(pa.string()).combine_chunks())
        codes = method.indices.to_numpy(zero_copy_only=False)[finite].astype(np.int64)
        labels = table.column("label").to_numpy()[finite].astype(np.int64)
        dice = dice[finite]
        key = codes << 32 | (labels & 0xFFFFFFFF)
        unique, first, local = np.unique(key, return_index=True, return_inverse=True)
        methods = method.dictionary.to_pylist()
        names = table.column("name").take(np.flatnonzero(finite)[first]).cast(pa.string()).to_pylist()
        rows = self._groups([(methods[k >> 32], int(labels[i])) for k, i in zip(unique, first)], names)
        self._merge(rows, local, dice)

    def _merge(self, rows: np.ndarray, local: np.ndarray, dice: np.ndarray) -> None:
        count = np.bincount(local, minlength=len(rows))
        mean = np.bincount(local, dice, minlength=len(rows)) / count
        m2 = np.bincount(local, (dice - mean[local]) ** 2, minlength=len(rows))
        n_old = self.n[rows]
        total = n_old + count
        delta = mean - self.mean[rows]
        self.mean[rows] += delta * count / total
        self.m2[rows] += m2 + delta**2 * n_old * count / total
        self.n[rows] = total
        bins = np.clip((dice * BINS).astype(np.int64), 0, BINS - 1)
        self.hist[rows] += np.bincount(local * BINS + bins, minlength=len(rows) * BINS).reshape(len(rows), BINS)
        grouped = dice[np.argsort(local, kind="stable")]
        starts = np.cumsum(count) - count
        self.min[rows] = np.minimum(self.min[rows], np.minimum.reduceat(grouped, starts))
        self.max[rows] = np.maximum(self.max[rows], np.maximum.reduceat(grouped, starts))
        for row, part in zip(rows, np.split(grouped, starts[1:])):
            kept = self.values[row]
            if kept is not None:
                self.values[row] = kept + [part] if self.n[row] <= EXACT_VALUES else None

    def frame(self) -> pd.DataFrame:
        """One row per method and label (sorted): :data:`STRUCTURE_COLUMNS` plus ``fliers`` (array of
        outlier positions, Dice)."""
        out = []
        for (method, label), row in self._index.items():
            n = int(self.n[row])
            kept = self.values[row]
            box = exact_box(np.concatenate(kept)) if kept is not None else binned_box(self.hist[row], self.min[row],
                                                                                     self.max[row])
            out.append({"method": method, "label": label, "name": self.names[(method, label)], "n": n,
                        "mean": self.mean[row], "std": float(np.sqrt(self.m2[row] / (n - 1))) if n > 1 else 0.0,
                        "min": self.min[row], "max": self.max[row], **box, "exact": kept is not None})
        frame = pd.DataFrame(out, columns=[*STRUCTURE_COLUMNS, "fliers"])
        return frame.sort_values(["method", "label"], kind="stable").reset_index(drop=True)


def exact_box(values: np.ndarray) -> dict:
    """Box statistics of ``values`` (as ``matplotlib.cbook.boxplot_stats`` with whis=1.5)."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    lo, hi = q1 - WHISKER * (q3 - q1), q3 + WHISKER * (q3 - q1)
    inside = values[(values >= lo) & (values <= hi)]
    whislo = inside.min() if inside.size else q1
    whishi = inside.max() if inside.size else q3
    fliers = values[(values < whislo) | (values > whishi)]
    return {"q1": q1, "median": median, "q3": q3, "whislo": min(whislo, q1), "whishi": max(whishi, q3),
            "n_outliers": len(fliers), "fliers": np.sort(fliers)}


def _binned_percentile(cumulative: np.ndarray, n: int, q: float, lo: float, hi: float) -> float:
    """Linear-interpolation percentile from bin counts: the value at rank ``q/100 * (n-1)``, taken
    uniform within its bin and clamped to the data range [lo, hi]."""
    rank = q / 100 * (n - 1) + 0.5  # rank among values, counted from the bin's start
    b = int(np.searchsorted(cumulative, rank, side="left"))
    start = cumulative[b - 1] if b else 0
    inside = cumulative[b] - start
    return float(np.clip((b + (rank - start) / inside) / BINS, lo, hi))


def binned_box(hist: np.ndarray, lo: float, hi: float) -> dict:
    """Box statistics from a Dice histogram of :data:`BINS` bins and the exact minimum ``lo`` and
    maximum ``hi`` (within one bin of :func:`exact_box` of the values)."""
    cumulative = np.cumsum(hist)
    n = int(cumulative[-1])
    q1, median, q3 = (_binned_percentile(cumulative, n, q, lo, hi) for q in (25, 50, 75))
    low, high = q1 - WHISKER * (q3 - q1), q3 + WHISKER * (q3 - q1)
    edges = np.arange(BINS + 1) / BINS
    filled = hist > 0
    within = filled & (edges[1:] > low) & (edges[:-1] <= high)
    whislo = max(lo, low, edges[:-1][within].min()) if within.any() else q1
    whishi = min(hi, high, edges[1:][within].max()) if within.any() else q3
    beyond = filled & ((edges[1:] <= whislo) | (edges[:-1] > whishi))
    centres = (edges[:-1] + edges[1:]) / 2
    return {"q1": q1, "median": median, "q3": q3, "whislo": min(whislo, q1), "whishi": max(whishi, q3),
            "n_outliers": int(hist[beyond].sum()), "fliers": centres[beyond]}
