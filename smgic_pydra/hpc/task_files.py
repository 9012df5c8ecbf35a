"""The files of one SLURM array task, and how the worker reads its final state from them.

Layout (in the shared cache dir): ``<cache_root>/slurm_array/<batch>/<array index>/`` holds
``_job.pklz`` (the pickled pydra job), ``stdout`` and ``stderr`` (SLURM's ``--output``/``--error``)
and ``exit_code`` (written by the batch script after the job's Python process ends). Nothing here
asks SLURM's accounting (``sacct``): the files are the only source of truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: slurmstepd's own lines in a job's stderr when it stops the job, and what they mean
_KILL_MARKERS = (
    ("DUE TO TIME LIMIT", "time limit"),
    ("DUE TO PREEMPTION", "preempted"),
    ("oom-kill", "out of memory"),
    ("CANCELLED AT", "cancelled"),
)
_HEADLINE_RE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Terminated|Interrupt)\b.*$", re.M)
_MAX_TRACEBACK_LINES = 80


@dataclass(frozen=True)
class TaskFiles:
    """Paths of one array task's files under ``dir``."""

    dir: Path

    @property
    def job_pkl(self) -> Path:
        from smgic_pydra.pydra_compat import JOB_FILE

        return self.dir / JOB_FILE

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout"

    @property
    def stderr(self) -> Path:
        return self.dir / "stderr"

    @property
    def exit_code(self) -> Path:
        return self.dir / "exit_code"

    def read_exit_code(self) -> int | None:
        """The job's exit status, or None when the batch script has not written it (yet)."""
        try:
            return int(self.exit_code.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def read_stderr(self) -> str:
        try:
            return self.stderr.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def kill_reason(stderr: str) -> str | None:
    """Why SLURM stopped the job ('time limit', 'cancelled', ...), from slurmstepd's stderr lines."""
    for marker, reason in _KILL_MARKERS:
        if marker in stderr:
            return reason
    return None


def last_traceback(stderr: str) -> str:
    """The last Python traceback in ``stderr`` (to its end, at most 80 lines), else its last lines."""
    lines = stderr.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    block = lines[starts[-1]:] if starts else lines
    return "\n".join(block[-_MAX_TRACEBACK_LINES:])


def error_headline(traceback: str) -> str | None:
    """The ``SomeError: message`` line of a traceback (the last one), or None."""
    found = _HEADLINE_RE.findall(traceback)
    return found[-1].strip() if found else None
