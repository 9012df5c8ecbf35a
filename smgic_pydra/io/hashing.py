"""Content hashes of files and settings (provenance and reuse decisions), with a cache.

A file's SHA-256 is cached per process under its ``(path, device, inode, size, mtime, ctime)``, so
an unchanged file is read once however often it is checked; any write changes the key. The cache
can be kept between runs in a JSON file (:func:`hash_cache`), e.g. ``WORK/hashes.json``, so the
inputs of a cohort are not reread by every participant job.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CACHE: dict[str, str] = {}


def _stat_key(path) -> str:
    st = os.stat(path)
    return f"{Path(path).resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _read_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (cached while the file's size, times and inode stay the same)."""
    key = _stat_key(path)
    digest = _CACHE.get(key)
    if digest is None:
        digest = _CACHE[key] = _read_sha256(path)
    return digest


def sha256_json(obj) -> str:
    """Hex SHA-256 of ``obj`` as canonical JSON (sorted keys; paths and other objects as strings)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@contextmanager
def hash_cache(path) -> Iterator[None]:
    """Use (and afterwards update) the file hashes remembered in the JSON file ``path``.

    An unreadable cache file is ignored; the update is atomic, and concurrent runs at worst
    forget each other's new entries (which are then hashed again).
    """
    from .atomic import atomic_path

    path = Path(path)
    try:
        _CACHE.update({k: v for k, v in json.loads(path.read_text()).items() if isinstance(v, str)})
    except (OSError, ValueError, AttributeError):
        pass
    try:
        yield
    finally:
        live = {}
        for key, digest in _CACHE.items():
            try:
                if _stat_key(key.rsplit("|", 5)[0]) == key:  # only files that still exist unchanged
                    live[key] = digest
            except OSError:
                continue
        try:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(live))
        except OSError:
            pass
