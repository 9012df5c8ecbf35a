"""Write the cohort reports atomically into ``OUTPUT_DIR/reports`` (names from :mod:`smgic_pydra.bids.derivatives`)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..io.atomic import atomic_path
from .tables import labels_frame, pairs_frame, summary_frame

logger = logging.getLogger("smgic_pydra.reports")


def _write_table(frame, path: Path, sep: str) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False, float_format="%.6g")


def report_files(output_dir) -> dict[str, Path]:
    """Report role -> path: ``pairs``, ``dice_per_label``, ``summary_csv``, ``summary_tsv``."""
    from ..bids.derivatives import report_paths

    paths = report_paths(output_dir)
    return {"pairs": paths.pairs, "dice_per_label": paths.dice_per_label, "summary_csv": paths.group_summary,
            "summary_tsv": paths.group_summary.with_suffix(".tsv")}


def write_reports(rows: list[dict], label_rows: list[dict], output_dir, html: bool = True) -> dict[str, Path]:
    """Write pairs.csv, dice_per_label.csv and the group summary (CSV and TSV) into ``output_dir/reports``,
    and with ``html`` the group report ``index.html`` (:mod:`.group_page`, needs the ``reports`` extra).

    Returns report role -> path (``index`` for the page). Failed pairs keep their row with the
    error text and are left out of the summary statistics (counted in ``n_failed``).
    """
    pairs = pairs_frame(rows)
    labels = labels_frame(label_rows)
    summary = summary_frame(pairs)
    paths = report_files(output_dir)
    _write_table(pairs, paths["pairs"], ",")
    _write_table(labels, paths["dice_per_label"], ",")
    _write_table(summary, paths["summary_csv"], ",")
    _write_table(summary, paths["summary_tsv"], "\t")
    if html:
        try:
            import jinja2  # noqa: F401
            import matplotlib  # noqa: F401

            from .group_page import write_group_page
        except ImportError as exc:  # the tables stand without the optional page
            logger.warning("reports/index.html not written: %s (install smgic-pydra[reports])", exc)
        else:
            paths["index"] = write_group_page(pairs, labels, summary, output_dir)
    return paths
