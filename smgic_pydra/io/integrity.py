"""Records of written files (size, modification time, SHA-256) and checks that they are unchanged; the checks of
a registered pair's outputs against its sidecar (its content key and its files' records).

A record is ``{"size": bytes, "mtime_ns": int, "sha256": hex}``. The quick check compares the
size, and the content hash only when the modification time differs from the record (a rename
keeps it, any write changes it); the full check always compares the hash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .hashing import sha256_file


def file_record(path) -> dict:
    """Size, modification time (ns) and SHA-256 of the file ``path``."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(path)}


def file_problem(path, record: dict, full: bool = False) -> str | None:
    """Why the file ``path`` no longer matches ``record`` (one phrase), or None when it does.

    full: compare the SHA-256 even when size and modification time match.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    if st.st_size != record.get("size"):
        return f"{st.st_size} bytes, {record.get('size')} when written"
    if (full or st.st_mtime_ns != record.get("mtime_ns")) and sha256_file(path) != record.get("sha256"):
        return "content changed since written (SHA-256 differs)"
    return None


def first_problem(folder, records: dict, full: bool = False) -> str | None:
    """``"<path>: <problem>"`` for the first file of ``records`` (name in ``folder`` -> record) that does not match."""
    for name, record in records.items():
        problem = file_problem(Path(folder) / name, record, full)
        if problem:
            return f"{Path(folder).absolute() / name}: {problem}"
    return None


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
