"""Result rows shared by the chunk tasks: pair specs, error rows, resume checks and progress markers.

A *pair spec* is a plain dict (hashable by pydra, picklable for any worker)::

    {"fixed": "sub-01", "moving": "sub-02",
     "outputs": {"smgicnet": {"warp": "...", "inverse_warp": "...", ..., "sidecar": "..."}, "syn": {...}},
     "key": {"smgicnet": "<sha256>", ...}, "inputs": {"fixed": {role: sha256}, "moving": {...}},
     "reuse": {"smgicnet": true, ...}, "state": {"smgicnet": "done" | "<token of this run>", ...},
     "metrics": {"smgicnet": ".../reports/pairs/smgicnet/....json", ...},        # optional
     "figures": {"smgicnet": {"registration": "...svg", ...}, ...},            # optional reportlets
     "subject_figures": {"sub-01": ".../figures/sub-01_desc-brain_mask.svg"}}  # optional

``key`` (optional; the cohort planner adds it, :mod:`smgic_pydra.workflows.cohort`) is the
content hash of the pair's input files, the model weights and the settings of the method: outputs
are reused only when their sidecar records the same key and every output file still matches its
record (size, and SHA-256 when its modification time changed); ``reuse`` False (the planner's
verdict) redoes them without looking. ``state`` only makes pydra's cache miss for chunks with
unfinished pairs.

A *row* is a dict with at least ``method, fixed, moving, seconds, error`` (``error`` is ``""`` on
success) and ``files`` (output role -> path). Progress markers are one small JSON file per finished
pair and method in a progress folder, ``<method>__<fixed>__<moving>.json``, written atomically.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from ..io.atomic import atomic_path, json_text


def error_text(exc: BaseException) -> str:
    """One line naming the exception type and message (the traceback's last frame is appended)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {message}{where}"


def error_row(method: str, pair: dict, error: str) -> dict:
    """The row of a pair that failed."""
    return {"method": method, "fixed": pair["fixed"], "moving": pair["moving"], "seconds": float("nan"),
            "forward_seconds": float("nan"), "files": {}, "error": error, "resumed": False}


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


def complete_sidecar(paths: dict, key: str | None = None, full: bool = False) -> dict | None:
    """The sidecar of a pair whose outputs are complete and unchanged, made from inputs and settings of
    content hash ``key`` (None: not compared), else None (the pair must be redone)."""
    meta = read_sidecar(paths)
    if meta is None or (key is not None and meta.get("content_sha256") != key):
        return None
    return None if outputs_problem(paths, meta, full) else meta


def resumed_row(method: str, pair: dict, paths: dict, meta: dict) -> dict:
    """The row of a pair whose complete outputs were already on disk (no work redone)."""
    seconds = meta.get("total_seconds", meta.get("seconds_before_write", float("nan")))
    return {"method": method, "fixed": pair["fixed"], "moving": pair["moving"], "seconds": float(seconds),
            "forward_seconds": float(meta.get("forward_seconds", float("nan"))),
            "files": {role: str(Path(paths["sidecar"]).parent / name) for role, name in meta["files"].items()}
            | {"sidecar": str(paths["sidecar"])}, "error": "", "resumed": True}


def marker_path(progress_dir, method: str, pair: dict) -> Path:
    return Path(progress_dir) / f"{method}__{pair['fixed']}__{pair['moving']}.json"


def write_marker(progress_dir, row: dict) -> None:
    """Record a finished pair (success or error) for the progress monitor; no-op without a folder."""
    if not progress_dir:
        return
    summary = {k: row[k] for k in ("method", "fixed", "moving", "seconds", "error")}
    with atomic_path(marker_path(progress_dir, row["method"], row)) as tmp:
        tmp.write_text(json_text(summary))


def limit_threads(omp_nthreads: int) -> None:
    """torch's intra-op threads (0: leave torch's default)."""
    if omp_nthreads > 0:
        import torch

        torch.set_num_threads(omp_nthreads)


def run_chunk(method: str, pairs, subjects, prepared_dirs, preparation_errors, progress_dir, omp_nthreads,
              runner) -> list[dict]:
    """Run ``runner(fixed, moving, paths, sidecar_extra) -> {seconds, forward_seconds, files}`` over a chunk of pairs.

    sidecar_extra: what the runner adds to the pair's sidecar (the content key and input hashes).

    seconds: the whole pair (inputs read, registration, outputs written); forward_seconds: the
    registration itself (network forward pass or antsRegistration).

    Prepared subjects are loaded once each. Complete outputs are reused (``resumed=True``); a
    failing pair (or one whose subject failed preparation) becomes an error row; every finished
    pair writes a progress marker. Returns one row per pair, in order.
    """
    from smgic_pydra.preparation import PreparedSubject

    limit_threads(omp_nthreads)
    dirs = dict(zip(subjects, prepared_dirs))
    prep_errors = dict(zip(subjects, preparation_errors))
    loaded: dict[str, PreparedSubject] = {}

    def subject(label: str) -> PreparedSubject:
        if not dirs.get(label):
            raise RuntimeError(f"preparation failed: {prep_errors.get(label) or 'subject not prepared'}")
        if label not in loaded:
            loaded[label] = PreparedSubject.load(dirs[label])
        return loaded[label]

    rows = []
    for pair in pairs:
        paths = pair["outputs"][method]
        key = (pair.get("key") or {}).get(method)
        reuse = (pair.get("reuse") or {}).get(method, True)  # False: the planner found them stale or damaged
        meta = complete_sidecar(paths, key) if reuse else None
        if meta is not None:
            row = resumed_row(method, pair, paths, meta)
        else:
            extra = {} if key is None else {"content_sha256": key, "inputs_sha256": pair.get("inputs", {})}
            try:
                result = runner(subject(pair["fixed"]), subject(pair["moving"]), paths, extra)
                row = {"method": method, "fixed": pair["fixed"], "moving": pair["moving"], "error": "",
                       "resumed": False, **result}
            except Exception as exc:  # errors are data: one row, the chunk goes on
                row = error_row(method, pair, error_text(exc))
        row["metrics_file"] = str((pair.get("metrics") or {}).get(method, ""))
        row["figures"] = (pair.get("figures") or {}).get(method, {})
        row["subject_figures"] = pair.get("subject_figures") or {}
        write_marker(progress_dir, row)
        rows.append(row)
    return rows


def flatten_rows(nested) -> list[dict]:
    """Rows from arbitrarily nested lists of rows (what combined pydra splits give)."""
    if isinstance(nested, dict):
        return [nested]
    return [row for item in nested for row in flatten_rows(item)]


def failed_lines(rows: list[dict]) -> list[str]:
    """``"<method> <moving> -> <fixed>: <error>"`` for every failed row."""
    return [f"{r['method']} {r['moving']} -> {r['fixed']}: {r['error']}" for r in rows if r.get("error")]
