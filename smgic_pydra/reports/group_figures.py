"""Group figures of the cohort report (matplotlib), drawn from the report tables.

Every function takes the frames that :mod:`.tables` builds (the rows of ``pairs.parquet``) or the
per-structure box statistics (:mod:`.structure_stats`) and returns a matplotlib figure; failed
pairs (``error`` set) are left out. Units: Dice in [0, 1], folding in percent of the fixed brain,
seconds.

Large cohorts keep the figures small: above :data:`MAX_VECTOR_POINTS` points the point clouds,
and above :data:`MAX_VECTOR_SUBJECTS` subjects the Dice matrix, are rasterized (one embedded
image at the page's resolution instead of one SVG element per point or per cell), and above
:data:`MAX_TICK_SUBJECTS` subjects the matrix has no subject names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..methods import report_label
from .tables import ordered_dice_matrix, subject_keys

STRUCTURE_ROW_INCHES = 0.08
"""Height of one box (structure and method) in the per-structure boxplot (inches)."""
STRUCTURES_SHOWN = 8
"""Structures at each end (lowest and highest median Dice) of the per-structure boxplot, when there are more
than twice as many (the page's table lists every one)."""
MAX_VECTOR_POINTS = 5000
"""Points of a figure drawn as SVG elements; more are rasterized."""
MAX_VECTOR_SUBJECTS = 200
"""Subjects of the Dice matrix drawn at one image pixel per cell; more are rasterized."""
MAX_TICK_SUBJECTS = 80
"""Subjects of the Dice matrix named on its axes."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ok_rows(pairs: pd.DataFrame) -> pd.DataFrame:
    """The successful rows (empty ``error``)."""
    return pairs[pairs["error"].fillna("") == ""]


def method_colors(methods) -> dict[str, str]:
    """One colour per method, in the given order (``C0``, ``C1``, ...), the same in every figure."""
    return {m: f"C{i % 10}" for i, m in enumerate(methods)}


def structure_methods(structures: pd.DataFrame, methods: list[str]) -> list[str]:
    """The ``methods`` with per-structure statistics in the registry's order (SM-GICNet first, ``identity``,
    the baseline of no registration, last; methods not in the registry after them): the first one
    orders the structures."""
    from ..methods import METHODS

    rank = {name: i for i, name in enumerate(METHODS)}
    present = [m for m in methods if m in set(structures["method"])] or sorted(set(structures["method"]))
    return sorted(present, key=lambda m: rank.get(m, len(rank)))


def structure_order(structures: pd.DataFrame, methods: list[str]) -> list[str]:
    """Structure names from the lowest to the highest median Dice of the first of :func:`structure_methods`
    (ties and structures it lacks: by the other methods' medians, then by label)."""
    methods = structure_methods(structures, methods)
    first = structures.drop_duplicates("label").sort_values("label")[["label", "name"]]
    medians = structures.pivot_table(index="name", columns="method", values="median", aggfunc="first")
    keys = first.assign(**{f"m{i}": first["name"].map(medians[m]) for i, m in enumerate(methods)})
    ordered = keys.sort_values([f"m{i}" for i in range(len(methods))] + ["label"], kind="stable", na_position="last")
    return ordered["name"].tolist()


def shown_structures(names: list[str], n: int | None = None) -> tuple[list[str], int]:
    """``(names shown, structures left out in the middle)``: the ``n`` (default :data:`STRUCTURES_SHOWN`)
    lowest and highest of ``names`` (in :func:`structure_order`), or all of them when there are at most
    ``2 n``."""
    n = STRUCTURES_SHOWN if n is None else n
    if len(names) <= 2 * n:
        return names, 0
    return names[:n] + names[-n:], len(names) - 2 * n


def dice_per_structure_figure(structures: pd.DataFrame, methods: list[str], n: int | None = None):
    """Per-structure Dice boxplots per method (the paper's Figure 3) from precomputed box statistics
    (the rows of ``dice_per_structure.tsv``, :mod:`.structure_stats`: ``q1``, ``median``, ``q3``,
    ``whislo``, ``whishi``, and optionally ``fliers``, arrays of outlier positions): one row per
    structure, sorted by median Dice (:func:`structure_order`; only the lowest and highest ``n``,
    :func:`shown_structures`, with a gap between them naming how many are left out), one horizontal
    box per method (quartiles, median, whiskers at 1.5 IQR, outliers). The Dice axis is labelled at
    the top and the bottom and the legend sits above the boxes, so both show with the first rows.

    Drawn as one bar / line collection per method (hundreds of structures stay fast); the
    median segments carry the gid ``median:<method>``, in the order of the y tick labels.
    """
    plt = _pyplot()
    colors = method_colors(methods)  # the colours of the other figures
    methods = structure_methods(structures, methods)
    names, hidden = shown_structures(structure_order(structures, methods), n)
    rows = np.arange(len(names), dtype=float)
    if hidden:
        rows[len(names) // 2:] += 1.0  # one empty row for the gap
    height = max(2.5, (len(rows) + (1 if hidden else 0)) * max(len(methods), 1) * STRUCTURE_ROW_INCHES + 1.6)
    fig, ax = plt.subplots(figsize=(8, height), layout="constrained")
    step = 1.0 / (len(methods) + 1)
    for i, method in enumerate(methods):
        stats = structures[structures["method"] == method].set_index("name").reindex(names)
        y = rows + (i - (len(methods) - 1) / 2) * step
        q1, q3, med, lo, hi = (stats[k].to_numpy(dtype=float) for k in ("q1", "q3", "median", "whislo", "whishi"))
        ax.barh(y, q3 - q1, left=q1, height=step * 0.8, color=colors[method], edgecolor="k", linewidth=0.4,
                label=report_label(method))
        ax.hlines(np.concatenate([y, y]), np.concatenate([lo, q3]), np.concatenate([q1, hi]), colors="k",
                  linewidth=0.5)
        ax.vlines(med, y - step * 0.4, y + step * 0.4, colors="k", linewidth=1.0, gid=f"median:{method}")
        if "fliers" in stats:
            fliers = [(f, yy) for f_list, yy in zip(stats["fliers"], y) if isinstance(f_list, np.ndarray)
                      for f in f_list]
            if fliers:
                ax.plot(*zip(*fliers), "k.", ms=2)
    ax.set_yticks(rows, names, fontsize=7)
    if hidden:
        gap = rows[len(names) // 2] - 1.0
        ax.axhline(gap, color="0.6", linewidth=0.6, linestyle="--")
        ax.text(0.5, gap, f"{hidden} structures between (all in the table below)", ha="center", va="center",
                fontsize=7, color="0.3", backgroundcolor="w", gid="structures-left-out")
    ax.set_ylim(rows[-1] + 0.5 if len(rows) else 0.5, -0.5)
    ax.set_xlabel("Dice")
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", top=True, labeltop=True)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.06), ncols=max(len(methods), 1), fontsize="small",
              frameon=False)
    return fig


def structure_table(structures: pd.DataFrame, methods: list[str]) -> dict:
    """``{"methods": [labels], "rows": [{"name", "n", "cells": ["median [q1, q3]" per method]}]}``: every
    structure in :func:`structure_order`, for the page's compact table (``n``: the pairs of the first
    method)."""
    methods = structure_methods(structures, methods)
    by_method = {m: structures[structures["method"] == m].set_index("name") for m in methods}
    rows = []
    for name in structure_order(structures, methods):
        cells = []
        for m in methods:
            stats = by_method[m]
            cells.append(f"{stats.at[name, 'median']:.3f} [{stats.at[name, 'q1']:.3f}, {stats.at[name, 'q3']:.3f}]"
                         if name in stats.index else "")
        first = by_method[methods[0]]
        rows.append({"name": name, "n": int(first.at[name, "n"]) if name in first.index else 0, "cells": cells})
    return {"methods": [report_label(m) for m in methods], "rows": rows}


def dice_vs_folding_figure(pairs: pd.DataFrame, methods: list[str]):
    """One point per successful pair and method: Dice (y) against folding % (x)."""
    plt = _pyplot()
    ok, colors = ok_rows(pairs), method_colors(methods)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    many = len(ok) > MAX_VECTOR_POINTS
    for method in methods:
        rows = ok[ok["method"] == method]
        ax.scatter(rows["folding_percent"], rows["dice_mean"], s=2 if many else 14, color=colors[method],
                   label=report_label(method), gid=method, rasterized=many, alpha=0.3 if many else 1.0, linewidths=0)
    ax.set_xlabel("folding (% of the fixed brain with det J <= 0)")
    ax.set_ylabel("Dice (mean over structures)")
    ax.legend(fontsize="small")
    return fig


def seconds_figure(pairs: pd.DataFrame, methods: list[str]):
    """Seconds per pair (whole pair: inputs read, registration, outputs written), one box per method."""
    plt = _pyplot()
    ok, colors = ok_rows(pairs), method_colors(methods)
    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    data = [ok.loc[ok["method"] == m, "seconds"].dropna().to_numpy() for m in methods]
    box = ax.boxplot(data, tick_labels=[report_label(m) for m in methods], patch_artist=True,
                     medianprops={"color": "k"})
    for patch, method in zip(box["boxes"], methods):
        patch.set_facecolor(colors[method])
        patch.set_gid(method)
    many = len(ok) > MAX_VECTOR_POINTS
    for line in box["fliers"]:
        line.set_rasterized(many)
    for x, values in enumerate(data, start=1):
        ax.plot(np.full(len(values), x), values, "k.", ms=1 if many else 3, alpha=0.6, rasterized=many)
    if any(len(d) for d in data) and min(d.min() for d in data if len(d)) > 0:
        ax.set_yscale("log")
    ax.set_ylabel("seconds per pair")
    return fig


def is_all_pairs(pairs: pd.DataFrame) -> bool:
    """True when the study holds every unordered pair of at least three subjects (``--pairs all`` or ``ordered``)."""
    subjects = subject_keys(pairs)
    fixed = pd.Categorical(pairs["fixed"], categories=subjects).codes.astype(np.int64)
    moving = pd.Categorical(pairs["moving"], categories=subjects).codes.astype(np.int64)
    key = np.minimum(fixed, moving) * len(subjects) + np.maximum(fixed, moving)
    unordered = np.unique(key[fixed != moving])
    return len(subjects) >= 3 and len(unordered) == len(subjects) * (len(subjects) - 1) // 2


def dice_matrix(pairs: pd.DataFrame, method: str) -> tuple[list[str], np.ndarray]:
    """``(subjects, M)``: ``M[a, b]`` is the Dice of the pair with moving ``a`` and fixed ``b``; an
    unordered study fills both halves with the same value, a failed or missing pair is NaN; the
    diagonal is NaN."""
    subjects = subject_keys(pairs)
    matrix = ordered_dice_matrix(pairs, method, subjects).T
    lower = np.isnan(matrix) & ~np.isnan(matrix.T)
    matrix[lower] = matrix.T[lower]
    return subjects, matrix


def cluster_order(matrix: np.ndarray) -> np.ndarray:
    """Subject order of the average-linkage clustering (scipy, optimal leaf ordering) on the
    distance ``1 - Dice`` (symmetrised; a missing pair counts as distance 1)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    n = matrix.shape[0]
    if n < 3:
        return np.arange(n)
    a, b = matrix, matrix.T
    sym = np.where(np.isnan(a), b, np.where(np.isnan(b), a, (a + b) / 2.0))
    distance = np.where(np.isnan(sym), 1.0, 1.0 - sym)
    np.fill_diagonal(distance, 0.0)
    return leaves_list(linkage(squareform(np.clip(distance, 0.0, None), checks=False), "average",
                               optimal_ordering=True))


def dice_matrix_figure(pairs: pd.DataFrame, methods: list[str]):
    """N x N Dice heatmaps, one per method, subjects ordered by :func:`cluster_order` of each method."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4.2), layout="constrained",
                             squeeze=False)
    image = None
    for ax, method in zip(axes[0], methods):
        subjects, matrix = dice_matrix(pairs, method)
        order = cluster_order(matrix)
        image = ax.imshow(matrix[np.ix_(order, order)], vmin=0, vmax=1, cmap="viridis", interpolation="nearest",
                          rasterized=len(subjects) > MAX_VECTOR_SUBJECTS)
        image.set_gid(method)
        ax.set_title(report_label(method))
        if len(subjects) <= MAX_TICK_SUBJECTS:
            ticks = [subjects[i] for i in order]
            fontsize = 7 if len(ticks) <= 40 else 4
            ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=fontsize)
            ax.set_yticks(range(len(ticks)), ticks, fontsize=fontsize)
            ax.set_xlabel("fixed")
            ax.set_ylabel("moving")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"fixed ({len(subjects)} subjects, clustered order)")
            ax.set_ylabel("moving (same order)")
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="Dice")
    return fig
