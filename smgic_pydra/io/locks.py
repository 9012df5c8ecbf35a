"""Exclusive POSIX record locks on lock files: held by this process until released, and released by the kernel
when the process dies (no stale locks after a kill; never inherited by forked workers). Each held lock
file records who holds it (host, pid, start time), for the message another process gets."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator


class LockedError(RuntimeError):
    """A lock file is held by another process: ``path`` and ``holder`` (its record, or ``""``)."""

    def __init__(self, path, holder: str = ""):
        self.path, self.holder = Path(path), holder
        super().__init__(str(path), holder)  # the arguments, so that it pickles (workers send errors back)

    def __str__(self) -> str:
        return f"{self.path}: held by another process{f' ({self.holder})' if self.holder else ''}"


def _holder(handle) -> str:
    handle.seek(0)
    try:
        record = json.loads(handle.read() or "{}")
        return f"pid {record['pid']} on {record['host']} since {record['since']}"
    except (ValueError, KeyError, TypeError):
        return ""


@contextmanager
def held_locks(paths) -> Iterator[None]:
    """Hold an exclusive lock on every file of ``paths`` (created with its folders) for the block: all or none,
    taken in sorted order (no deadlock between two such calls); :class:`LockedError` for the first one
    another process holds."""
    with ExitStack() as stack:
        for path in sorted({Path(p) for p in paths}):
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context(open(path, "a+"))
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise LockedError(path, _holder(handle)) from None
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
            handle.flush()
        yield
