"""Write the cohort reports atomically into ``OUTPUT_DIR/reports`` (names from :mod:`smgic_pydra.bids.derivatives`)."""

from __future__ import annotations

from pathlib import Path

from ..io.atomic import atomic_path
from .tables import labels_frame, pairs_frame, summary_frame


def _write_table(frame, path: Path, sep: str) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False, float_format="%.6g")


def report_files(output_dir) -> dict[str, Path]:
    """Report role -> path: ``pairs``, ``dice_per_label``, ``summary_csv``, ``summary_tsv``."""
    from ..bids.derivatives import report_paths

    paths = report_paths(output_dir)
    return {"pairs": paths.pairs, "dice_per_label": paths.dice_per_label, "summary_csv": paths.group_summary,
            "summary_tsv": paths.group_summary.with_suffix(".tsv")}


def write_reports(rows: list[dict], label_rows: list[dict], output_dir) -> dict[str, Path]:
    """Write pairs.csv, dice_per_label.csv and the group summary (CSV and TSV) into ``output_dir/reports``.

    Returns report role -> path. Failed pairs keep their row with the error text and are left
    out of the summary statistics (counted in ``n_failed``).
    """
    pairs = pairs_frame(rows)
    summary = summary_frame(pairs)
    paths = report_files(output_dir)
    _write_table(pairs, paths["pairs"], ",")
    _write_table(labels_frame(label_rows), paths["dice_per_label"], ",")
    _write_table(summary, paths["summary_csv"], ",")
    _write_table(summary, paths["summary_tsv"], "\t")
    return paths
