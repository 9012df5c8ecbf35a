"""Running a workflow task in its own run folder: one run at a time, stale locks removed, crashes summarized.

``run_dir/cache`` is pydra's cache root, so the same workflow with the same inputs resumes from
the jobs that finished; ``run_dir/run.lock`` (a POSIX record lock, released when the process
dies) keeps a second run of the same settings out.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path


class CohortRunError(RuntimeError):
    """The workflow itself failed (not a pair: failed pairs are rows)."""


EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Interrupt): .+")


def submit_workflow(wf, run_dir: Path, worker="cf", n_procs: int | None = None,
                    monitor: AbstractContextManager | None = None,
                    prepare_cache: Callable[[Path], object] | None = None, what: str = "the workflow"):
    """Run ``wf`` with pydra's cache in ``run_dir/cache`` and return its outputs.

    worker: ``"cf"`` (``n_procs`` processes), ``"debug"``, ``"slurm"`` (our
    :class:`~smgic_pydra.hpc.SlurmArrayWorker` with default arguments) or a worker instance.
    monitor: a context entered around the run (e.g. a progress bar); prepare_cache: called with the
    cache root under the run lock before the run. Raises :class:`CohortRunError` naming the
    exception lines of every crashed job, or when another run holds ``run_dir``.
    """
    from pydra.engine.submitter import Submitter

    if worker == "slurm":
        from ..hpc import SlurmArrayWorker

        worker = SlurmArrayWorker()
    cache_root = Path(run_dir) / "cache"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(Path(run_dir) / "run.lock", "w") as run_lock:
        try:
            # a POSIX record lock: released when this process dies, never held by forked worker processes
            fcntl.lockf(run_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CohortRunError(f"{run_dir}: another run with the same settings is using this work "
                                 "directory") from None
        _remove_stale_locks(cache_root)
        if prepare_cache is not None:
            prepare_cache(cache_root)
        kwargs = {"n_procs": n_procs} if worker == "cf" and n_procs else {}
        with monitor or nullcontext():
            with Submitter(worker=worker, cache_root=cache_root, clean_stale_locks=False, **kwargs) as sub:
                result = sub(wf, raise_errors=False)
    if result.errored:
        raise CohortRunError(f"{what} failed: {_error_summary(cache_root)} (details in {cache_root})")
    return result.outputs


def _remove_stale_locks(cache_root: Path) -> None:
    """Pydra's lock files left by a killed run would block its jobs forever; we hold the run lock."""
    for lock in cache_root.glob("*.lock"):
        lock.unlink(missing_ok=True)


def _error_lines(error) -> list[str]:
    """The exception lines (``SomeError: message``) of a pydra crash record, else its last line."""
    lines = error.get("error message") or error.get("error") or [] if isinstance(error, dict) else error
    chunks = [lines] if isinstance(lines, str) else lines
    lines = [ln.strip() for chunk in chunks for ln in str(chunk).splitlines() if ln.strip()]
    found = [ln for ln in lines if EXCEPTION_LINE.match(ln) and not ln.startswith("RuntimeError: Workflow job")]
    return found or lines[-1:]


def _error_summary(cache_root: Path) -> str:
    """The exception lines of every node's crash record under ``cache_root`` (pydra's ``_error.pklz``)."""
    import cloudpickle

    found = []
    for path in sorted(cache_root.glob("*/_error.pklz"), key=lambda p: p.stat().st_mtime):
        try:
            with open(path, "rb") as f:
                lines = _error_lines(cloudpickle.load(f))
        except Exception:  # an unreadable record must not hide the others
            continue
        found += [ln for ln in lines if not ln.startswith("See output directory") and ln not in found]
    return "; ".join(found) or "unknown error"
