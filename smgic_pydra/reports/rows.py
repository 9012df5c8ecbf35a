"""Result rows of registered pairs: a *row* is a dict with at least ``method, fixed, moving, seconds,
forward_seconds, error`` (``error`` is ``""`` on success) and the metrics
(:mod:`smgic_pydra.metrics.pair_metrics`); failed pairs are rows, never exceptions."""

from __future__ import annotations

import traceback
from pathlib import Path


def error_text(exc: BaseException) -> str:
    """One line naming the exception type and message (the traceback's last frame is appended)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {message}{where}"


def flatten_rows(nested) -> list[dict]:
    """Rows from arbitrarily nested lists of rows (what combined pydra splits give)."""
    if isinstance(nested, dict):
        return [nested]
    return [row for item in nested for row in flatten_rows(item)]


def failed_lines(rows: list[dict]) -> list[str]:
    """``"<method> <moving> -> <fixed>: <error>"`` for every failed row."""
    return [f"{r['method']} {r['moving']} -> {r['fixed']}: {r['error']}" for r in rows if r.get("error")]
