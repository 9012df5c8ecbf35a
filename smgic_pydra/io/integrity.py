"""Records of written files (size, modification time, SHA-256) and checks that they are unchanged.

A record is ``{"size": bytes, "mtime_ns": int, "sha256": hex}``. The quick check compares the
size, and the content hash only when the modification time differs from the record (a rename
keeps it, any write changes it); the full check always compares the hash.
"""

from __future__ import annotations

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
