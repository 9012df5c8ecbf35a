"""Everything that touches Pydra's internals (not its public ``pydra.compose`` / ``Submitter`` API), in one
place, for the one tested version: cached results and their files, job pickles, lock files, the worker
plugin base. Upgrading Pydra means checking this module (and :data:`TESTED_VERSION`) only.

Pydra 1.0a12's cache layout: a job's folder ``<cache_root>/<job checksum>/`` holds ``_result.pklz``
(its pickled result), ``_error.pklz`` (its crash record) and, while it runs, the lock file
``<cache_root>/<job checksum>.lock``; ``save(folder, job=...)`` pickles a job as ``folder/_job.pklz``
and ``load_and_run`` runs such a pickle, writing the result into the job's cache folder.
"""

from __future__ import annotations

from pathlib import Path

from pydra.engine.job import load_and_run
from pydra.engine.result import load_result, save
from pydra.utils.general import attrs_values
from pydra.workers.base import Worker, read_and_display_async  # noqa: F401  (the worker plugin API; after pydra.engine)

TESTED_VERSION = "1.0a12"
JOB_FILE = "_job.pklz"
RESULT_FILE = "_result.pklz"
LOCK_PATTERN = "*.lock"


def check_pydra_version() -> None:
    """Raise :class:`~smgic_pydra.io.errors.MissingToolError` (one line) unless Pydra is :data:`TESTED_VERSION`."""
    import importlib.metadata as md

    from .io.errors import MissingToolError

    found = md.version("pydra")
    if found != TESTED_VERSION:
        raise MissingToolError(f"pydra=={TESTED_VERSION}", f"pydra {found} is installed, whose internals smgic-pydra "
                               f"was not tested with; pip install 'pydra=={TESTED_VERSION}'")


def cached_result(job):
    """The job's cached result (any cache root it may be in), or None."""
    return load_result(job.checksum, job.all_caches)


def has_result_file(job) -> bool:
    """Whether the job's own cache folder holds a result file (finished or crashed attempt)."""
    return (Path(job.cache_dir) / RESULT_FILE).exists()


def release_lock(job) -> None:
    """Remove the job's lock file (its process is gone)."""
    job.lockfile.unlink(missing_ok=True)


def remove_stale_locks(cache_root: Path) -> None:
    """Remove every job lock file under ``cache_root`` (a killed run's would block its jobs forever)."""
    for lock in Path(cache_root).glob(LOCK_PATTERN):
        lock.unlink(missing_ok=True)


def save_job(folder: Path, job) -> Path:
    """Pickle ``job`` as Pydra does, to ``folder/_job.pklz``; returns that path."""
    save(Path(folder), job=job)
    return Path(folder) / JOB_FILE


def run_saved_job(job_file: Path, rerun: bool = False) -> None:
    """Run a job pickled by :func:`save_job` (its result goes to the job's cache folder)."""
    load_and_run(Path(job_file), rerun=rerun)


def task_inputs(task) -> dict:
    """A task's input values by name."""
    return attrs_values(task)
