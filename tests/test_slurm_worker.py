"""SlurmArrayWorker against the real single-node SLURM controller (tests/slurm_cluster.py).

The tasks below are imported by the SLURM jobs (cloudpickle pickles them by reference), so they
live at module level; the worker passes this folder to the jobs through PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pydra.compose import python, workflow
from pydra.engine.submitter import Submitter

from smgic_pydra.hpc import SlurmArrayWorker
from smgic_pydra.hpc.worker import ARRAY_DIR, SBATCH_LOG

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def _mark(marker_dir: str, name: str) -> None:
    """One file per execution, holding the SLURM job id ('local' outside SLURM)."""
    Path(marker_dir, f"{name}-{uuid.uuid4().hex}").write_text(os.environ.get("SLURM_JOB_ID", "local"))


@python.define
def Add(a: int, b: int, marker_dir: str) -> int:
    _mark(marker_dir, f"add{a}")
    return a + b


@python.define
def Check(a: int) -> int:
    if a == 3:
        raise ValueError(f"value {a} is not allowed (odd-one-out check)")
    return a


@python.define
def Sleepy(seconds: float, marker_dir: str) -> float:
    _mark(marker_dir, "start")
    time.sleep(seconds)
    return seconds


@python.define
def GatedAdd(a: int, gate: str, marker_dir: str) -> int:
    """Inputs a >= 2 wait (at most 120 s) for the file ``gate`` before finishing."""
    _mark(marker_dir, f"start{a}")
    deadline = time.monotonic() + 120
    while a >= 2 and not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.2)
    _mark(marker_dir, f"done{a}")
    return 10 * a


@workflow.define(outputs=["cpu", "gpu"])
def CpuAndGpu(a: int, marker_dir: str):
    cpu = workflow.add(Add(a=a, b=1, marker_dir=marker_dir), name="cpu_add")
    gpu = workflow.add(Add(a=a, b=2, marker_dir=marker_dir), name="gpu_add")
    return cpu.out, gpu.out


def _worker(**kwargs) -> SlurmArrayWorker:
    kwargs.setdefault("sbatch_args", "-c 1 --mem=200M --time=5")
    return SlurmArrayWorker(poll_interval=1, batch_window=0.3, file_grace=5, **kwargs)


def _markers(marker_dir: Path, prefix: str) -> list[str]:
    return [p.read_text() for p in marker_dir.iterdir() if p.name.startswith(prefix + "-")]


def test_split_runs_as_one_array_with_the_same_results_as_cf(slurm_cluster, tmp_path):
    inputs = [1, 2, 3, 4, 5, 6]
    marks = {name: tmp_path / f"marks_{name}" for name in ("slurm", "cf")}
    for d in marks.values():
        d.mkdir()
    worker = _worker()
    with Submitter(worker=worker, cache_root=tmp_path / "cache_slurm") as sub:
        slurm = sub(Add(b=10, marker_dir=str(marks["slurm"])).split(a=inputs), raise_errors=True)
    with Submitter(worker="cf", n_procs=1, cache_root=tmp_path / "cache_cf") as sub:
        cf = sub(Add(b=10, marker_dir=str(marks["cf"])).split(a=inputs), raise_errors=True)

    assert list(slurm.outputs.out) == list(cf.outputs.out) == [a + 10 for a in inputs]
    # one sbatch call: one array of 6, never requeued, with the user's resources
    assert len(worker.sbatch_calls) == 1
    argv = worker.sbatch_calls[0]
    assert "--array=0-5" in argv and "--no-requeue" in argv
    assert argv[argv.index("-c") + 1] == "1" and "--mem=200M" in argv
    # every input ran exactly once, inside one SLURM array job (one array id for all six)
    job_ids = {a: _markers(marks["slurm"], f"add{a}") for a in inputs}
    assert all(len(ids) == 1 for ids in job_ids.values()), job_ids
    assert all(ids[0].isdigit() for ids in job_ids.values())
    assert all(ids == ["local"] for ids in (_markers(marks["cf"], f"add{a}") for a in inputs))


def test_failing_task_surfaces_its_error_traceback_and_input(slurm_cluster, tmp_path):
    with Submitter(worker=_worker(), cache_root=tmp_path / "cache") as sub:
        with pytest.raises(RuntimeError) as err:
            sub(Check().split(a=[1, 2, 3, 4]), raise_errors=True)
    message = str(err.value)
    assert "ValueError: value 3 is not allowed (odd-one-out check)" in message
    assert "task 'Check'[2] (Check: a=3; SLURM job" in message  # which input failed
    assert "failed with exit code 1" in message
    # the job's own traceback (the task function is cloudpickled by value when its module is not
    # importable on the node, so its frame may be shown as <dynamic-code>)
    assert "Traceback (most recent call last)" in message and ", in Check\n" in message
    assert "unknown reason" not in message
    # the three other inputs succeeded
    assert message.count("odd-one-out") >= 1 and "a=1;" not in message and "a=4;" not in message


@pytest.mark.slow
def test_time_limit_fails_once_with_a_clear_message(slurm_cluster, tmp_path):
    """SLURM's smallest limit is 1 min, checked every ~30 s: the job stops after 60-90 s."""
    marks = tmp_path / "marks"
    marks.mkdir()
    worker = _worker(resources={"Sleepy": "--time=1"})
    start = time.monotonic()
    with Submitter(worker=worker, cache_root=tmp_path / "cache") as sub:
        with pytest.raises(RuntimeError) as err:
            sub(Sleepy(seconds=600, marker_dir=str(marks)), raise_errors=True)
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert "exceeded its SLURM time limit (--time=1) and was stopped; it was not requeued" in message
    assert "DUE TO TIME LIMIT" in message
    assert elapsed < 150
    assert len(worker.sbatch_calls) == 1 and worker.sbatch_calls[0][-2] == "--time=1"
    (job_id,) = _markers(marks, "start")  # started once
    show = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "JobState=TIMEOUT" in show and "Restarts=0" in show  # not requeued by SLURM either


_DRIVER = """
import faulthandler
import signal
import sys
from pydra.engine.submitter import Submitter
from smgic_pydra.hpc import SlurmArrayWorker
from test_slurm_worker import GatedAdd

faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for the stacks of a run that hangs
# Ctrl-C as in a terminal: a process started in the background of a non-interactive shell (nohup ... &, as CI
# runners may be) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
signal.signal(signal.SIGINT, signal.default_int_handler)
cache, gate, marks = sys.argv[1:4]
worker = SlurmArrayWorker(poll_interval=1, batch_window=0.3, file_grace=5, sbatch_args="-c 1 --mem=200M --time=5")
with Submitter(worker=worker, cache_root=cache) as sub:
    result = sub(GatedAdd(gate=gate, marker_dir=marks).split(a=list(range(6))), raise_errors=True)
print("RESULT", list(result.outputs.out))
"""


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.3)


def test_cancelled_run_resumes_without_redoing_finished_tasks(slurm_cluster, tmp_path):
    cache, gate, marks = tmp_path / "cache", tmp_path / "gate", tmp_path / "marks"
    marks.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]))
    argv = [sys.executable, str(driver), str(cache), str(gate), str(marks)]

    # output to a file, not a pipe: nobody reads a pipe while the run goes on, and a full one (64 KiB of
    # log lines on a slow machine) would block the driver, which then never exits
    log_path = tmp_path / "first.log"
    log = log_path.open("w")
    first = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        # inputs 0 and 1 finish; some gated input is running when the run is cancelled (Ctrl-C)
        _wait_for(
            lambda: _markers(marks, "done0") and _markers(marks, "done1")
            and any(_markers(marks, f"start{a}") for a in range(2, 6)),
            90, "two finished tasks and one running",
        )  # fmt: skip
        time.sleep(2)  # the finished tasks' results are saved
        first.send_signal(signal.SIGINT)
        try:
            first.wait(timeout=300)  # ~20-33 s alone
        except subprocess.TimeoutExpired:
            first.send_signal(signal.SIGUSR1)  # its threads' stacks go to its output
            time.sleep(3)
            raise AssertionError("the cancelled run did not exit in 300 s; its output ends with:\n"
                                 + log_path.read_text()[-6000:]) from None
    finally:
        first.kill()
        log.close()
    assert first.returncode != 0
    # the worker cancelled its remaining SLURM jobs on the way out
    _wait_for(
        lambda: not subprocess.run(["squeue", "-h", "-n", "pydra-GatedAdd"], capture_output=True, text=True).stdout,
        30, "the cancelled jobs to leave the queue",
    )  # fmt: skip

    gate.touch()
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "RESULT [0, 10, 20, 30, 40, 50]" in second.stdout
    for a in range(6):  # nothing finished twice
        assert len(_markers(marks, f"done{a}")) == 1, a
    # the resumed run resubmitted only the four unfinished inputs
    calls = (cache / ARRAY_DIR / SBATCH_LOG).read_text().splitlines()
    assert len(calls) == 2 and "--array=0-5" in calls[0] and "--array=0-3" in calls[1]


def test_per_task_sbatch_args_reach_sbatch(slurm_cluster, tmp_path):
    """The GPU node's --gres reaches sbatch (this cluster has no GPU: sbatch refuses it); the CPU node runs."""
    marks = tmp_path / "marks"
    marks.mkdir()
    worker = _worker(resources={"gpu_add": "--gres=gpu:1"})
    with Submitter(worker=worker, cache_root=tmp_path / "cache") as sub:
        with pytest.raises(RuntimeError) as err:
            sub(CpuAndGpu(a=5, marker_dir=str(marks)), raise_errors=True)
    by_name = {next(t for t in argv if t.startswith("--job-name=")): argv for argv in worker.sbatch_calls}
    assert set(by_name) == {"--job-name=pydra-cpu_add", "--job-name=pydra-gpu_add"}, worker.sbatch_calls
    assert by_name["--job-name=pydra-gpu_add"][-2] == "--gres=gpu:1"
    assert not any(t.startswith("--gres") for t in by_name["--job-name=pydra-cpu_add"])
    assert "sbatch failed" in str(err.value) and "Invalid generic resource" in str(err.value)
    # the CPU-only job ran on the cluster (and only it)
    (job_id,) = _markers(marks, "add5")
    assert job_id.isdigit()
