"""Pydra task: evaluate registered pairs (Dice per label, Jacobian folding, inverse consistency)."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["rows", "label_rows"])
def EvaluateChunk(
    rows: list,
    subjects: list,
    prepared_dirs: list,
    labels_table: str = "",
) -> tuple[list, list]:
    """Add metrics to registration rows and write each pair's metrics JSON (atomically).

    rows: from :func:`RegisterChunk` / :func:`BaselineChunk` (``row["metrics_file"]``: where the
    pair's metrics JSON goes; ``""`` writes none). Each row gains ``dice_mean``,
    ``folding_percent`` (% of fixed-brain voxels with Jacobian determinant <= 0),
    ``log_jacobian_std``, ``inverse_consistency_mm`` (mean |phi_inv(phi(x)) - x| in mm over the
    fixed brain; fields read back from the written warp files);
    ``label_rows`` holds one row per pair, method and label (``dice``). A pair whose evaluation
    fails keeps its row with the error; nothing is raised. Rows that ask for reportlets
    (``figures``, ``subject_figures``) get them drawn (:mod:`smgic_pydra.reports.reportlets`).
    """
    from smgic_pydra.tasks.metrics_io import evaluate_rows

    return evaluate_rows(rows, dict(zip(subjects, prepared_dirs)), labels_table or None)
