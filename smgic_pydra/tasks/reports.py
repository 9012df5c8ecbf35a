"""Pydra task: write the cohort reports from evaluated rows."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["reports", "failed"])
def WriteReports(rows: list, label_rows: list, output_dir: str) -> tuple[dict, list]:
    """Write pairs.csv, dice_per_label.csv and the group summary (CSV, TSV) into ``output_dir/reports``.

    rows / label_rows: lists of rows, possibly nested in lists (combined chunks). Returns report
    role -> path, and the failed pairs as ``"<method> <moving> -> <fixed>: <error>"`` lines.
    """
    from smgic_pydra.reports import write_reports
    from smgic_pydra.tasks.rows import flatten_rows, failed_lines

    rows, label_rows = flatten_rows(rows), flatten_rows(label_rows)
    paths = write_reports(rows, label_rows, output_dir)
    return {k: str(v) for k, v in paths.items()}, failed_lines(rows)
