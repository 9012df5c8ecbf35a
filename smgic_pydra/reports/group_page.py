"""The group report ``OUTPUT_DIR/reports/index.html``: the tables and figures of the cohort in one
self-contained page (figures embedded), linking the per-pair and per-subject reportlets.

Sections: summary per method (the paper's Table 1), per-structure Dice boxplots (Figure 3), Dice
against folding per pair, seconds per method, the N x N Dice matrix (all-pairs studies, subjects
ordered by clustering), failed pairs with their errors, the worst pairs per method with their
reportlets, the preparation of every subject, and every pair with links to its reportlets.

At scale the page stays small: every pair is listed only up to :data:`MAX_LISTED_PAIRS` rows and
failed pairs up to :data:`MAX_LISTED_FAILED` (the page then gives the counts and points to the
tables), and the large figures are rasterized (:mod:`.group_figures`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .. import __version__
from ..bids import derivatives
from ..methods import report_label
from .html import figure_uri, relative_href, render_page
from .tables import METRICS, subject_keys

PAGE = "index.html"
WORST_PER_METHOD = 3
"""Pairs shown per method in the worst-pairs section."""
MAX_LISTED_PAIRS = 500
"""The "all pairs" table lists every row only up to this many pair rows."""
MAX_LISTED_FAILED = 200
"""Failed pairs listed (the first ones by method, fixed, moving); the page gives the total."""
ROLE_TITLES = {"registration": "contours before / after (hover to flicker)", "jacobian": "Jacobian determinant",
               "displacement": "displacement and deformation grid"}


def _number(value, digits: int = 3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def pair_reportlets(output_dir, row, page_dir) -> list[dict]:
    """``[{role, title, href}]`` of the pair's reportlets that exist (none for a failed pair)."""
    if row["error"]:
        return []
    paths = derivatives.pair_figure_paths(output_dir, row["moving"], row["fixed"], row["method"]).as_dict()
    return [{"role": role, "title": ROLE_TITLES[role], "href": relative_href(path, page_dir)}
            for role, path in paths.items() if Path(path).is_file()]


def _pair_entry(output_dir, row, page_dir) -> dict:
    return {"method": report_label(row["method"]), "moving": row["moving"], "fixed": row["fixed"],
            "dice": _number(row["dice_mean"]), "folding": _number(row["folding_percent"]),
            "inverse_consistency": _number(row["inverse_consistency_mm"]), "seconds": _number(row["seconds"], 2),
            "error": row["error"], "reportlets": pair_reportlets(output_dir, row, page_dir)}


def worst_pairs(pairs: pd.DataFrame, method: str, n: int = WORST_PER_METHOD) -> pd.DataFrame:
    """The ``n`` successful pairs of ``method`` with the lowest Dice (then the most folding)."""
    rows = pairs[(pairs["method"] == method) & (pairs["error"] == "")]
    return rows.sort_values(["dice_mean", "folding_percent"], ascending=[True, False], na_position="last").head(n)


def group_figures(pairs: pd.DataFrame, structures: pd.DataFrame, methods: list[str]) -> list[dict]:
    """``[{id, title, caption, uri[, table]}]``: the group figures that the data allow, embedded as SVG
    (``structures``: per-structure box statistics, :mod:`.structure_stats`); the per-structure figure
    comes with the table of every structure (:func:`~.group_figures.structure_table`)."""
    from . import group_figures as gf

    ok = gf.ok_rows(pairs)
    figures = []
    if not structures.empty:
        names = gf.structure_order(structures, methods)
        shown, hidden = gf.shown_structures(names)
        first = report_label(gf.structure_methods(structures, methods)[0])
        which = (f"the {len(shown) // 2} structures with the lowest and the {len(shown) // 2} with the highest median "
                 f"Dice of {first} (of {len(names)}; every one in the table below)" if hidden
                 else f"every structure, by median Dice of {first}")
        figures.append({"id": "dice-per-structure", "title": "Dice per structure",
                        "caption": f"One box per method and structure, over the successful pairs: {which}.",
                        "uri": figure_uri(gf.dice_per_structure_figure(structures, methods)),
                        "table": gf.structure_table(structures, methods)})
    if ok["dice_mean"].notna().any():
        figures.append({"id": "dice-vs-folding", "title": "Dice against folding",
                        "caption": "One point per pair and method.",
                        "uri": figure_uri(gf.dice_vs_folding_figure(pairs, methods))})
    if ok["seconds"].notna().any():
        figures.append({"id": "seconds", "title": "Time per method",
                        "caption": "Seconds per pair: inputs read, registration, outputs written.",
                        "uri": figure_uri(gf.seconds_figure(pairs, methods))})
    if gf.is_all_pairs(pairs) and ok["dice_mean"].notna().any():
        figures.append({"id": "dice-matrix", "title": "Dice matrix",
                        "caption": "Dice of every pair (row: moving, column: fixed); subjects ordered by "
                                   "average-linkage clustering on 1 - Dice.",
                        "uri": figure_uri(gf.dice_matrix_figure(pairs, methods))})
    return figures


def group_context(pairs: pd.DataFrame, structures: pd.DataFrame, summary: pd.DataFrame, output_dir, page_dir,
                  tables: dict | None = None) -> dict:
    """The template context of the group page (plain values; numbers formatted). ``tables``: report
    role -> path of the table files written (linked from the page; default: none)."""
    methods = list(summary["method"])
    summary_rows = [{"method": r["method"], "label": report_label(r["method"]), "n_pairs": int(r["n_pairs"]),
                     "n_failed": int(r["n_failed"]), "values": [r[label] for label in METRICS.values()]} for r in summary.to_dict("records")]
    subjects = subject_keys(pairs)
    subject_figures = [{"subject": s, "href": relative_href(p, page_dir)} for s in subjects
                       if (p := derivatives.subject_figure_path(output_dir, s)).is_file()]
    failed = pairs[pairs["error"] != ""]
    listed = len(pairs) <= MAX_LISTED_PAIRS
    return {
        "version": __version__,
        "n_subjects": len(subjects),
        "n_pairs": len(pairs[["fixed", "moving"]].drop_duplicates()),
        "n_rows": len(pairs),
        "methods": [report_label(m) for m in methods],
        "metric_labels": list(METRICS.values()),
        "tables": [{"name": Path(p).name, "href": relative_href(p, page_dir)} for p in (tables or {}).values()],
        "summary": summary_rows,
        "figures": group_figures(pairs, structures, methods),
        "n_failed": len(failed),
        "failed": [_pair_entry(output_dir, r, page_dir) for r in failed.head(MAX_LISTED_FAILED).to_dict("records")],
        "worst": [{"method": report_label(m),
                   "pairs": [_pair_entry(output_dir, r, page_dir) for r in worst_pairs(pairs, m).to_dict("records")]}
                  for m in methods],
        "subjects": subject_figures,
        "pairs": [_pair_entry(output_dir, r, page_dir) for r in pairs.to_dict("records")] if listed else [],
        "pairs_listed": listed,
    }


def write_group_page(pairs: pd.DataFrame, structures: pd.DataFrame, summary: pd.DataFrame, output_dir,
                     tables: dict | None = None) -> Path:
    """Write ``OUTPUT_DIR/reports/index.html`` from the report tables (see :mod:`.write`); returns its path."""
    page = derivatives.report_paths(output_dir).pairs.parent / PAGE
    return render_page("group.html.j2", page,
                       **group_context(pairs, structures, summary, output_dir, page.parent, tables))
