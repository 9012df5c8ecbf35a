"""Result rows and the checks of a pair's written outputs, shared by the tile job and the group level.

A *row* is a dict with at least ``method, fixed, moving, seconds, forward_seconds, error`` (``error``
is ``""`` on success) and the metrics (:mod:`smgic_pydra.tasks.metrics_io`). A pair's written
outputs are trusted only when its sidecar records the expected content key and every output file
still matches its record (size, and SHA-256 when its modification time changed or when asked).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path



def error_text(exc: BaseException) -> str:
    """One line naming the exception type and message (the traceback's last frame is appended)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {message}{where}"


def read_sidecar(paths: dict) -> dict | None:
    """The pair's sidecar as a dict, or None when it is missing or not readable JSON."""
    try:
        meta = json.loads(Path(paths["sidecar"]).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def outputs_problem(paths: dict, meta: dict, full: bool = False) -> str | None:
    """``"<file>: <problem>"`` for the first output that no longer matches the sidecar's records, else None.

    full: compare every file's SHA-256 (otherwise only when its size or modification time changed).
    """
    from ..io.integrity import first_problem

    files, records = meta.get("files") or {}, meta.get("outputs") or {}
    if not files or set(files.values()) != set(records):
        return f"{paths['sidecar']}: no record of the output files (written by an older version)"
    return first_problem(Path(paths["sidecar"]).parent, records, full)


def sidecar_problem(paths: dict, key: str | None = None, full: bool = False) -> tuple[dict | None, str]:
    """``(sidecar, "")`` of a pair whose outputs are complete and unchanged, made from inputs and settings
    of content hash ``key`` (None: not compared), else ``(sidecar or None, "<file>: <problem>")``."""
    meta = read_sidecar(paths)
    if meta is None:
        return None, f"{paths['sidecar']}: sidecar missing or unreadable"
    if key is not None and meta.get("content_sha256") != key:
        return meta, f"{paths['sidecar']}: the outputs are not of this content key (inputs, model or settings differ)"
    return meta, outputs_problem(paths, meta, full) or ""


def complete_sidecar(paths: dict, key: str | None = None, full: bool = False) -> dict | None:
    """The sidecar of :func:`sidecar_problem` when there is no problem, else None (the pair must be redone)."""
    meta, problem = sidecar_problem(paths, key, full)
    return None if problem else meta


def limit_threads(omp_nthreads: int) -> None:
    """torch's intra-op threads (0: leave torch's default)."""
    if omp_nthreads > 0:
        import torch

        torch.set_num_threads(omp_nthreads)


def flatten_rows(nested) -> list[dict]:
    """Rows from arbitrarily nested lists of rows (what combined pydra splits give)."""
    if isinstance(nested, dict):
        return [nested]
    return [row for item in nested for row in flatten_rows(item)]


def failed_lines(rows: list[dict]) -> list[str]:
    """``"<method> <moving> -> <fixed>: <error>"`` for every failed row."""
    return [f"{r['method']} {r['moving']} -> {r['fixed']}: {r['error']}" for r in rows if r.get("error")]
