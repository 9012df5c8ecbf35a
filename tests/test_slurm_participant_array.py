"""workflows/slurm/participant_array.sbatch on the real cluster: array task N -> participant N.

SMGIC_BIDS points the script at a recorder that writes the command
line it was given; the end-to-end cohort run with smgic-bids belongs to the cohort tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


SCRIPT = Path(__file__).resolve().parents[1] / "workflows" / "slurm" / "participant_array.sbatch"


def test_each_array_task_gets_its_participant_label(slurm_cluster, tmp_path):
    participants = tmp_path / "participants.txt"
    participants.write_text("sub-01\nsub-02\n03\n")
    recorder = tmp_path / "record.sh"
    recorder.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {tmp_path}/args_$SLURM_ARRAY_TASK_ID\n')
    recorder.chmod(0o755)
    env = dict(os.environ, SMGIC_BIDS=str(recorder))
    run = subprocess.run(
        ["sbatch", "--wait", "--array=1-4", "-c", "1", "--mem=100M", "--time=2",
         f"--output={tmp_path}/%a.log", str(SCRIPT), "/data/bids", "/data/out", str(participants),
         "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    for n, label in ((1, "01"), (2, "02"), (3, "03")):
        args = (tmp_path / f"args_{n}").read_text().split("\n")[:-1]
        assert args == ["/data/bids", "/data/out", "participant", "--participant-label", label, "--device", "cpu"]
    # line 4 does not exist: that task fails with a clear message, and so does `sbatch --wait`
    assert not (tmp_path / "args_4").exists()
    assert f"{participants}: no participant on line 4" in (tmp_path / "4.log").read_text()
    assert run.returncode != 0
