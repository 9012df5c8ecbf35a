"""Progress of a running cohort: a tqdm bar (pairs done / total, ETA) and a status JSON file.

Works with every pydra worker (cf, debug, SLURM): the chunk tasks write one marker JSON per
finished pair and method into a progress folder on the shared file system
(:func:`smgic_pydra.tasks.rows.write_marker`), and a thread of the submitting process polls that
folder every ``interval`` seconds. Pydra 1.0a12's hooks run inside the worker processes, so the
folder is the channel. Markers left by a killed run count as done when the run resumes.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from ..io.atomic import atomic_path, json_text


def read_markers(progress_dir) -> list[dict]:
    """The finished-pair markers in ``progress_dir`` (unreadable ones skipped)."""
    out = []
    for path in sorted(Path(progress_dir).glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return out


class ProgressMonitor:
    """Context manager polling ``progress_dir`` for markers; draws a bar and writes ``status_file``.

    total: number of pair x method registrations expected. The status JSON holds ``total``,
    ``done``, ``failed`` (list of ``"method moving -> fixed"``), ``elapsed_seconds``,
    ``eta_seconds`` (from the pairs finished in this run), ``state`` (running / finished / failed)
    and ``updated_utc``. A status still "running" at the start (the run holds the run lock, so its
    writer is gone) is recorded as ``previous_run: {"state": "killed", "updated_utc": ...}``.
    """

    def __init__(self, progress_dir, status_file, total: int, interval: float = 1.0, show_bar: bool = True):
        self.progress_dir, self.status_file = Path(progress_dir), Path(status_file)
        self.total, self.interval, self.show_bar = int(total), float(interval), show_bar
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="smgic-progress", daemon=True)
        self._start = time.monotonic()
        self._done_at_start = 0
        self._bar = None
        self._previous = None

    def __enter__(self) -> "ProgressMonitor":
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        self._done_at_start = len(read_markers(self.progress_dir))
        try:
            old = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            old = {}
        if isinstance(old, dict) and old.get("state") == "running":
            self._previous = {"state": "killed", "updated_utc": old.get("updated_utc")}
        if self.show_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self._done_at_start, unit="pair", desc="registered",
                             dynamic_ncols=True)
        self.update("running")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.update("failed" if exc[0] is not None else "finished")
        if self._bar is not None:
            self._bar.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.update("running")

    def update(self, state: str) -> dict:
        """Read the markers once, advance the bar and rewrite the status file; returns the status."""
        markers = read_markers(self.progress_dir)
        done = len(markers)
        elapsed = time.monotonic() - self._start
        new = done - self._done_at_start
        remaining = max(self.total - done, 0)
        eta = elapsed / new * remaining if new > 0 else None
        status = {
            "state": state, "total": self.total, "done": done,
            "failed": [f"{m['method']} {m['moving']} -> {m['fixed']}" for m in markers if m.get("error")],
            "elapsed_seconds": round(elapsed, 1), "eta_seconds": None if eta is None else round(eta, 1),
            "updated_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if self._previous is not None:
            status["previous_run"] = self._previous
        with atomic_path(self.status_file) as tmp:
            tmp.write_text(json_text(status))
        if self._bar is not None and done > self._bar.n:
            self._bar.update(done - self._bar.n)
        return status
