"""Running a workflow task in its own run folder: one run at a time, stale locks removed, crashes summarized.

``run_dir/cache`` is pydra's cache root, so the same workflow with the same inputs resumes from
the jobs that finished; ``run_dir/run.lock`` (:func:`~smgic_pydra.io.locks.held_locks`, released
when the process dies) keeps a second run of the same settings out.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path

from ..io.locks import LockedError, held_locks


class CohortRunError(RuntimeError):
    """The workflow itself failed (not a pair: failed pairs are rows)."""


EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Interrupt): .+")


def submit_workflow(wf, run_dir: Path, worker="cf", n_procs: int | None = None,
                    monitor: AbstractContextManager | None = None, what: str = "the workflow"):
    """Run ``wf`` with pydra's cache in ``run_dir/cache`` and return its outputs.

    worker: ``"cf"`` (``n_procs`` processes), ``"debug"``, ``"slurm"`` (our
    :class:`~smgic_pydra.hpc.SlurmArrayWorker` with default arguments) or a worker instance.
    monitor: a context entered around the run (e.g. a progress bar). Raises :class:`CohortRunError`
    naming the exception lines of every crashed job (from pydra's message: no cache file is read
    here), or when another run holds ``run_dir``; :class:`MissingToolError` on an untested Pydra version.
    """
    from pydra.engine.submitter import Submitter

    from ..pydra_compat import check_pydra_version, remove_stale_locks

    check_pydra_version()
    if worker == "slurm":
        from ..hpc import SlurmArrayWorker

        worker = SlurmArrayWorker()
    cache_root = Path(run_dir) / "cache"
    cache_root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        try:
            held.enter_context(held_locks([Path(run_dir) / "run.lock"]))
        except LockedError as err:
            raise CohortRunError(f"{run_dir}: another run with the same settings is using this work directory "
                                 f"({err.holder or 'another process'})") from None
        remove_stale_locks(cache_root)  # a killed run's; we hold the run lock
        kwargs = {"n_procs": n_procs} if worker == "cf" and n_procs else {}
        with monitor or nullcontext():
            with Submitter(worker=worker, cache_root=cache_root, clean_stale_locks=False, **kwargs) as sub:
                try:
                    result = sub(wf, raise_errors=True)
                except Exception as exc:  # pydra's message holds every crashed job's traceback
                    summary = "; ".join(_error_lines(str(exc))) or type(exc).__name__
                    raise CohortRunError(f"{what} failed: {summary} (details in {cache_root})") from None
    if result.errored:
        raise CohortRunError(f"{what} failed (details in {cache_root})")
    return result.outputs


def _error_lines(text: str) -> list[str]:
    """The distinct exception lines (``SomeError: message``) of pydra's crash message, else its last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("See output directory")]
    found = [ln for ln in lines if EXCEPTION_LINE.match(ln) and not ln.startswith("RuntimeError: Workflow job")]
    return list(dict.fromkeys(found)) or lines[-1:]
