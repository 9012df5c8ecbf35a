"""SlurmArrayWorker: a pydra worker that runs ready jobs as SLURM job arrays.

See the package docstring (:mod:`smgic_pydra.hpc`) for how to use it from a workflow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
import typing as ty
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import attrs

from smgic_pydra.hpc.sbatch_args import split_sbatch_args, time_limit
from smgic_pydra.hpc.task_files import TaskFiles, error_headline, kill_reason, last_traceback
from smgic_pydra.io.atomic import atomic_path
from smgic_pydra.pydra_compat import (JOB_FILE, Worker, cached_result, has_result_file, read_and_display_async,
                                      release_lock, save_job, task_inputs)

if ty.TYPE_CHECKING:
    from pydra.engine.job import Job
    from pydra.engine.result import Result

logger = logging.getLogger("smgic_pydra.hpc")

#: folder of the cache root that holds the batch scripts, job pickles and job stdout/stderr
ARRAY_DIR = "slurm_array"
#: every sbatch command line the workers submitted from this cache root, one per line
SBATCH_LOG = "sbatch_commands.txt"
_MIN_POLL_INTERVAL = 1.0
_SQUEUE_RETRIES = 5
#: seconds close() waits for scancel (a controller that does not answer must not hold up a Ctrl-C)
_SCANCEL_TIMEOUT = 30.0


class SlurmJobError(RuntimeError):
    """A job failed on SLURM; the message names the task, its inputs and the real error."""


class SlurmSubmitError(RuntimeError):
    """sbatch or squeue refused or failed; the message holds SLURM's own error."""


@dataclass
class _Pending:
    job: Job
    rerun: bool
    future: asyncio.Future


@dataclass
class _Tracked:
    pending: _Pending
    files: TaskFiles
    slurm_id: str
    time_limit: str | None
    waiting_since: float | None = None  # when it left the queue without its files in place


@dataclass
class _Runtime:
    """In-process state; never pickled (jobs carry the worker to the compute nodes)."""

    pending: list[_Pending] = field(default_factory=list)
    active: dict[tuple[int, int], _Tracked] = field(default_factory=dict)
    flusher: asyncio.Task | None = None
    poller: asyncio.Task | None = None


def _checked_resources(resources: Mapping[str, str | Sequence[str]] | None) -> dict[str, list[str]]:
    return {
        str(key): split_sbatch_args(args, where=f"resources[{key!r}]")
        for key, args in (resources or {}).items()
    }


def _checked_poll_interval(value: float) -> float:
    value = float(value)
    if value < _MIN_POLL_INTERVAL:
        raise ValueError(f"poll_interval must be at least {_MIN_POLL_INTERVAL} s, not {value}")
    return value


@attrs.define
class SlurmArrayWorker(Worker):
    """Submit ready pydra jobs as SLURM job arrays; poll ``squeue`` for all of them together.

    sbatch_args
        Arguments for every job (string, shell-quoted, or list of tokens), e.g.
        ``"--time=02:00:00 -c 4 --mem=8G --partition=short"``. ``-o``/``-e``/``--output``/
        ``--error``/``--array``/``--wait``/``--requeue`` are rejected: the worker owns them.
    resources
        Extra sbatch arguments per task, keyed by workflow node name (``job.name``) or task class
        name, e.g. ``{"register": "--gres=gpu:1 --time=04:00:00", "evaluate": "-c 2"}``. They
        come after ``sbatch_args`` on the command line, so they win. Jobs with different extra
        arguments go into different arrays.
    poll_interval
        Seconds between two ``squeue`` calls (one call for all jobs of this worker; >= 1 s).
    batch_window
        Seconds to collect jobs that become ready together before submitting them as one array.
    max_array_size
        Most tasks in one array (stay below the cluster's ``MaxArraySize``).
    max_running
        Most tasks of one array running at once (``--array=0-N%max_running``), or None.
    file_grace
        Seconds to wait, after a task left the queue, for its files to appear on a shared file
        system before declaring it lost.
    python
        Interpreter that runs the jobs on the compute nodes (must see the same packages).
    """

    _plugin_name: ty.ClassVar[str] = "smgic-slurm-array"

    sbatch_args: list[str] = attrs.field(default="", converter=split_sbatch_args)
    resources: dict[str, list[str]] = attrs.field(factory=dict, converter=_checked_resources)
    poll_interval: float = attrs.field(default=3.0, converter=_checked_poll_interval)
    batch_window: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_array_size: int = attrs.field(default=500, validator=attrs.validators.ge(1))
    max_running: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    file_grace: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    python: str = sys.executable
    #: every sbatch command line this worker ran (argv lists), for inspection and tests
    sbatch_calls: list[list[str]] = attrs.field(factory=list, init=False)
    _runtime: _Runtime = attrs.field(factory=_Runtime, init=False, repr=False, eq=False)

    def __getstate__(self) -> dict[str, ty.Any]:
        state = super().__getstate__()
        del state["_runtime"]
        return state

    def __setstate__(self, state: dict[str, ty.Any]) -> None:
        super().__setstate__(state)
        self._runtime = _Runtime()

    def extra_args_for(self, job: Job) -> list[str]:
        """The per-task sbatch arguments of ``job`` (node name first, then task class name)."""
        for key in (job.name, type(job.task).__name__):
            if key in self.resources:
                return list(self.resources[key])
        return []

    async def run(self, job: Job, rerun: bool = False) -> Result:
        """Queue ``job`` for the next array and wait until SLURM has run it."""
        cached = cached_result(job)
        if cached is not None and not cached.errored and not rerun:
            return cached  # finished in an earlier (cancelled) run: not resubmitted
        if cached is not None and cached.errored and has_result_file(job):
            # a failed or cancelled attempt of an earlier run: pydra's Job.run would delete it
            # too; until the new attempt ends, the submitter must not read its old error
            shutil.rmtree(job.cache_dir)
        rt = self._runtime
        future = asyncio.get_running_loop().create_future()
        rt.pending.append(_Pending(job, rerun, future))
        if rt.flusher is None or rt.flusher.done():
            rt.flusher = asyncio.ensure_future(self._flush_pending())
        return await future

    async def _flush_pending(self) -> None:
        rt = self._runtime
        while rt.pending:
            await asyncio.sleep(self.batch_window)
            ready = [item for item in rt.pending if not item.future.done()]  # done: cancelled
            rt.pending = []
            groups: dict[tuple, list[_Pending]] = defaultdict(list)
            for item in ready:
                key = (str(item.job.cache_root), tuple(self.extra_args_for(item.job)), item.rerun)
                groups[key].append(item)
            for (_, extra, rerun), items in groups.items():
                for start in range(0, len(items), self.max_array_size):
                    chunk = items[start:start + self.max_array_size]
                    try:
                        await self._submit_array(chunk, list(extra), rerun)
                    except Exception as exc:  # the jobs fail with sbatch's own message
                        for item in chunk:
                            if not item.future.done():
                                item.future.set_exception(exc)

    async def _submit_array(self, chunk: list[_Pending], extra: list[str], rerun: bool) -> None:
        cache_root = Path(chunk[0].job.cache_root)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        batch_dir = cache_root / ARRAY_DIR / f"{stamp}-{chunk[0].job.name}-{uuid.uuid4().hex[:8]}"
        for index, item in enumerate(chunk):
            save_job(batch_dir / str(index), item.job)
        script = batch_dir / "batch.sh"
        with atomic_path(script) as tmp:
            tmp.write_text(self._batch_script(batch_dir, rerun))
        array = f"0-{len(chunk) - 1}" + (f"%{self.max_running}" if self.max_running else "")
        argv = [
            "sbatch", "--parsable", "--no-requeue", f"--array={array}",
            f"--job-name=pydra-{chunk[0].job.name}",
            f"--output={batch_dir}/%a/stdout", f"--error={batch_dir}/%a/stderr",
            *self.sbatch_args, *extra, str(script),
        ]  # fmt: skip
        self.sbatch_calls.append(argv)
        with open(cache_root / ARRAY_DIR / SBATCH_LOG, "a") as log:
            log.write(shlex.join(argv) + "\n")
        rc, stdout, stderr = await read_and_display_async(*argv, hide_display=True)
        if rc != 0:
            raise SlurmSubmitError(f"sbatch failed (exit {rc}): {stderr.strip()}; command: {shlex.join(argv)}")
        try:
            array_id = int(stdout.strip().split(";")[0])
        except ValueError:
            raise SlurmSubmitError(f"cannot read a job id from sbatch's output {stdout!r}") from None
        limit = time_limit([*self.sbatch_args, *extra])
        rt = self._runtime
        for index, item in enumerate(chunk):
            files = TaskFiles(batch_dir / str(index))
            rt.active[(array_id, index)] = _Tracked(item, files, f"{array_id}_{index}", limit)
        logger.info("submitted %d job(s) of %r as SLURM array %d", len(chunk), chunk[0].job.name, array_id)
        if rt.poller is None or rt.poller.done():
            rt.poller = asyncio.ensure_future(self._poll())

    def _batch_script(self, batch_dir: Path, rerun: bool) -> str:
        task_dir = f'{shlex.quote(str(batch_dir))}/"$SLURM_ARRAY_TASK_ID"'
        run = [self.python, "-m", "smgic_pydra.hpc.run_job"] + (["--rerun"] if rerun else [])
        return "\n".join([
            "#!/bin/bash",
            "# Written by smgic_pydra.hpc.SlurmArrayWorker: runs one pickled pydra job per array task.",
            "# SIGTERM (time limit, scancel) reaches the Python process, which records the error;",
            "# the trap only keeps bash alive so that it still writes the exit code.",
            "trap 'echo \"smgic-slurm: SIGTERM received\" >&2' TERM",
            f"export PYTHONPATH={shlex.quote(_job_pythonpath())}",
            f"{shlex.join(run)} {task_dir}/{JOB_FILE}",
            "code=$?",
            f'echo "$code" > {task_dir}/exit_code.tmp && mv {task_dir}/exit_code.tmp {task_dir}/exit_code',
            'exit "$code"',
            "",
        ])  # fmt: skip

    async def _poll(self) -> None:
        rt = self._runtime
        failures = 0
        while rt.active:
            await asyncio.sleep(self.poll_interval)
            try:
                queued = await _squeue(sorted({array_id for array_id, _ in rt.active}))
                failures = 0
            except SlurmSubmitError as exc:
                failures += 1
                logger.warning("squeue failed (%d/%d): %s", failures, _SQUEUE_RETRIES, exc)
                if failures < _SQUEUE_RETRIES:
                    continue
                for tracked in rt.active.values():
                    if not tracked.pending.future.done():
                        tracked.pending.future.set_exception(exc)
                rt.active.clear()
                return
            abandoned = [key for key, tracked in rt.active.items() if tracked.pending.future.done()]
            if abandoned:  # the submitter cancelled these jobs: stop their SLURM tasks too
                await _scancel([rt.active.pop(key).slurm_id for key in abandoned])
            for key, tracked in list(rt.active.items()):
                if key in queued:
                    continue
                outcome = self._outcome(tracked)
                if outcome is None:
                    continue
                del rt.active[key]
                if isinstance(outcome, Exception):
                    tracked.pending.future.set_exception(outcome)
                else:
                    tracked.pending.future.set_result(outcome)

    def _outcome(self, tracked: _Tracked) -> Result | SlurmJobError | None:
        """The final state of a task that left the queue, from its files; None: wait for them."""
        job = tracked.pending.job
        code = tracked.files.read_exit_code()
        result = cached_result(job) if code == 0 else None
        if result is not None and not result.errored:
            return result
        if code is None or code == 0:  # shared file systems may show the files late
            now = time.monotonic()
            tracked.waiting_since = tracked.waiting_since or now
            if now - tracked.waiting_since < self.file_grace:
                return None
        # the task is gone and left no result: nobody holds its lock any more
        release_lock(job)
        return SlurmJobError(self._failure_message(tracked, code))

    def _failure_message(self, tracked: _Tracked, code: int | None) -> str:
        job = tracked.pending.job
        stderr = tracked.files.read_stderr()
        reason = kill_reason(stderr)
        where = _describe(job, tracked.slurm_id)
        if reason == "time limit":
            limit = f"--time={tracked.time_limit}" if tracked.time_limit else "the partition's default"
            head = (
                f"{where} exceeded its SLURM time limit ({limit}) and was stopped; it was not "
                f"requeued. Ask for more time, e.g. resources={{{type(job.task).__name__!r}: '--time=HH:MM:SS'}}"
            )
        elif reason is not None:
            head = f"{where} was stopped by SLURM ({reason})"
        elif code is None:
            head = (
                f"{where} ended without writing {tracked.files.exit_code} "
                "(killed by SIGKILL, node failure or a file system problem)"
            )
        elif code == 0:
            head = f"{where} exited 0 but left no result in {job.cache_dir}"
        else:
            tb = last_traceback(stderr)
            head = f"{where} failed with exit code {code}: {error_headline(tb) or 'see traceback'}"
        slurm_lines = [line for line in stderr.splitlines() if line.startswith("slurmstepd")]
        details = "\n".join([*slurm_lines, last_traceback(stderr)])
        return f"{head}\n--- {tracked.files.stderr} ---\n{details}"

    def close(self) -> None:
        """Cancel this worker's SLURM tasks that are still queued or running."""
        rt = self._runtime
        ids = sorted({tracked.slurm_id for tracked in rt.active.values()})
        if ids:
            try:
                subprocess.run(["scancel", *ids], capture_output=True, check=False, timeout=_SCANCEL_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("scancel %s did not return in %.0f s: cancel these jobs yourself",
                               " ".join(ids), _SCANCEL_TIMEOUT)
        rt.active.clear()
        for task in (rt.flusher, rt.poller):
            if task is not None and not task.done():
                task.cancel()


def _describe(job: Job, slurm_id: str) -> str:
    index = "" if job.state_index is None else f"[{job.state_index}]"
    values = task_inputs(job.task).items()
    inputs = ", ".join(f"{k}={_short(v)}" for k, v in values if not callable(v))  # not python's function
    return f"task {job.name!r}{index} ({type(job.task).__name__}: {inputs}; SLURM job {slurm_id})"


def _short(value: ty.Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _squeue(array_ids: list[int]) -> set[tuple[int, int]]:
    """(array id, task index) of every listed array's tasks still in the queue."""
    argv = ["squeue", "-h", "-r", "-o", "%F %K", "-j", ",".join(map(str, array_ids))]
    rc, stdout, stderr = await read_and_display_async(*argv, hide_display=True)
    if rc != 0:
        if "Invalid job id" in stderr:  # all of them have left the queue
            return set()
        raise SlurmSubmitError(f"squeue failed (exit {rc}): {stderr.strip()}")
    queued = set()
    for line in stdout.split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            queued.add((int(parts[0]), int(parts[1])))
    return queued


async def _scancel(slurm_ids: list[str]) -> None:
    rc, _, stderr = await read_and_display_async("scancel", *slurm_ids, hide_display=True)
    if rc != 0:
        logger.warning("scancel %s failed: %s", " ".join(slurm_ids), stderr.strip())


def _job_pythonpath() -> str:
    """sys.path entries outside the interpreter's prefix (project and test folders), for the jobs."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    entries = [os.path.abspath(p or os.getcwd()) for p in sys.path]
    keep = [
        p for p in entries
        if os.path.isdir(p) and not any(os.path.realpath(p).startswith(pre + os.sep) for pre in prefixes)
    ]  # fmt: skip
    return os.pathsep.join(dict.fromkeys(keep))
