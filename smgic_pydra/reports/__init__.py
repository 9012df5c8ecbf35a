"""Cohort reports: the pair and per-label tables (Parquet, CSV while small), the per-method group
summary (the paper's Table 1), the N x N Dice matrix and per-structure statistics (:mod:`.write`),
the tile result files of the cohort driver (:mod:`.tiles`), the quality-control reportlets of pairs
and subjects (:mod:`.reportlets`) and the HTML pages (:mod:`.group_page`: ``reports/index.html``;
:mod:`.training_page`: a training run's ``index.html``)."""

from .tables import METRICS, PAIR_COLUMNS, labels_frame, pairs_frame, summary_frame
from .write import report_files, write_reports

__all__ = ["METRICS", "PAIR_COLUMNS", "labels_frame", "pairs_frame", "report_files", "summary_frame", "write_reports"]
