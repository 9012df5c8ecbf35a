"""Pydra task: write the cohort reports from the tiles' result tables."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["reports", "failed"])
def WriteReports(summaries: list, output_dir: str) -> tuple[dict, list]:
    """Write the reports into ``output_dir/reports`` (:func:`smgic_pydra.reports.write_reports`) from the
    tile summaries of :func:`RegisterTile` (possibly nested in lists: combined splits); the per-label
    Dice tables are streamed tile by tile. Returns report role -> path, and the failed pairs as
    ``"<method> <moving> -> <fixed>: <error>"`` lines.
    """
    from smgic_pydra.reports import write_reports
    from smgic_pydra.reports.tiles import iter_label_tables, read_pairs_tables
    from smgic_pydra.reports.rows import flatten_rows

    summaries = flatten_rows(summaries)
    pairs = read_pairs_tables([s["pairs_file"] for s in summaries])
    paths = write_reports(pairs, iter_label_tables([s["labels_file"] for s in summaries]), output_dir)
    return {k: str(v) for k, v in paths.items()}, [line for s in summaries for line in s["failed"]]
