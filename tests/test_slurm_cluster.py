"""The test cluster itself (scripts/slurm-cluster): what works on it and what does not."""

from __future__ import annotations

import subprocess



def test_array_cpus_mem_and_wait_work(slurm_cluster, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        f'echo "$SLURM_ARRAY_TASK_ID $SLURM_CPUS_PER_TASK $SLURM_MEM_PER_NODE" > {tmp_path}/out_$SLURM_ARRAY_TASK_ID\n'
    )
    run = subprocess.run(
        ["sbatch", "--wait", "--array=0-2", "-c", "1", "--mem=300M", f"--output={tmp_path}/%a.log", str(script)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = sorted((tmp_path / f"out_{i}").read_text().split() for i in range(3))
    assert lines == [[str(i), "1", "300"] for i in range(3)]


def test_sacct_is_not_available(slurm_cluster):
    """No accounting storage: the worker must never depend on sacct."""
    run = subprocess.run(["sacct", "-n", "-X"], capture_output=True, text=True, timeout=60)
    assert "accounting storage is disabled" in (run.stdout + run.stderr).lower()
