"""Progress of a running cohort: a tqdm bar (pairs done / total, ETA) and a status JSON file.

Works with every pydra worker (cf, debug, SLURM): each tile job appends one JSON line per finished
pair and method to its journal in the progress folder on the shared file system
(:mod:`smgic_pydra.tasks.tile`), and a thread of the submitting process tails those journals every
``interval`` seconds (only the new bytes of each file are read). Pydra 1.0a12's hooks run inside
the worker processes, so the folder is the channel. Journals left by a killed run count as done
when the run resumes.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from ..io.atomic import atomic_path, json_text


class JournalTail:
    """The finished pairs recorded in the tile journals (``*.jsonl``) of a folder, read incrementally.

    ``finished``: ``(method, fixed, moving) -> error`` (``""`` on success; a pair redone later takes
    its last line).
    """

    def __init__(self, folder) -> None:
        self.folder = Path(folder)
        self.finished: dict[tuple[str, str, str], str] = {}
        self._offsets: dict[Path, int] = {}

    def poll(self) -> dict[tuple[str, str, str], str]:
        """Read what the journals gained since the last call (complete lines only); returns :attr:`finished`."""
        for path in sorted(self.folder.glob("*.jsonl")):
            try:
                with path.open("rb") as fh:
                    fh.seek(self._offsets.get(path, 0))
                    data = fh.read()
            except OSError:
                continue
            complete = data[: data.rfind(b"\n") + 1]
            self._offsets[path] = self._offsets.get(path, 0) + len(complete)
            for line in complete.splitlines():
                try:
                    row = json.loads(line)["row"]
                    self.finished[(row["method"], row["fixed"], row["moving"])] = row.get("error") or ""
                except (ValueError, KeyError, TypeError):
                    continue
        return self.finished


class ProgressMonitor:
    """Context manager tailing the journals of ``progress_dir``; draws a bar and writes ``status_file``.

    total: number of pair x method registrations expected. The status JSON holds ``total``,
    ``done``, ``failed`` (list of ``"method moving -> fixed"``), ``elapsed_seconds``,
    ``eta_seconds`` (from the pairs finished in this run), ``state`` (running / finished / failed)
    and ``updated_utc``. A status still "running" at the start (the run holds the run lock, so its
    writer is gone) is recorded as ``previous_run: {"state": "killed", "updated_utc": ...}``.
    """

    def __init__(self, progress_dir, status_file, total: int, interval: float = 1.0, show_bar: bool = True):
        self.progress_dir, self.status_file = Path(progress_dir), Path(status_file)
        self.total, self.interval, self.show_bar = int(total), float(interval), show_bar
        self._journals = JournalTail(self.progress_dir)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="smgic-progress", daemon=True)
        self._start = time.monotonic()
        self._done_at_start = 0
        self._bar = None
        self._previous = None

    def __enter__(self) -> "ProgressMonitor":
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        self._done_at_start = len(self._journals.poll())
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
        """Read the journals' new lines, advance the bar and rewrite the status file; returns the status."""
        finished = self._journals.poll()
        done = min(len(finished), self.total)
        elapsed = time.monotonic() - self._start
        new = done - self._done_at_start
        remaining = max(self.total - done, 0)
        eta = elapsed / new * remaining if new > 0 else None
        status = {
            "state": state, "total": self.total, "done": done,
            "failed": [f"{m} {moving} -> {fixed}" for (m, fixed, moving), error in finished.items() if error],
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
