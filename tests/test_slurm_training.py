"""smgic-bids ... train through the real SLURM controller: the training job runs as a SLURM job; with
--device cuda it asks for a GPU and the preparation jobs do not."""

import json
import sys
from pathlib import Path

import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main
from smgic_pydra.hpc.worker import SBATCH_LOG

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")


@pytest.mark.slow
def test_training_runs_as_slurm_jobs_and_asks_for_a_gpu_with_cuda(slurm_cluster, tmp_path, capsys, tiny_preset):
    bids = make_example_dataset(tmp_path / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    preset = tmp_path / "tiny.json"
    preset.write_text(json.dumps(tiny_preset | {"iterations": [2, 2, 2, 1]}))
    common = ["--train-preset", str(preset), "--worker", "slurm", "--slurm-args", "-c 1 --mem=3G --time=10",
              "--random-seed", "2", "--no-progress", "--skip-bids-validation"]

    out, work = tmp_path / "cpu" / "model", tmp_path / "cpu" / "work"
    assert main([str(bids), str(out), "train", "-w", str(work), *common]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["run"]["device"] == "cpu" and record["run"]["processes"] == 1
    assert (out / "training_log.csv").read_text().count("\n") == 1 + 7
    lines = [line for log in work.rglob(SBATCH_LOG) for line in log.read_text().splitlines() if line.strip()]
    assert any("train" in line for line in lines) and any("prepare" in line for line in lines), lines
    assert all("--array=" in line and "--no-requeue" in line and "--gres" not in line for line in lines), lines

    # --device cuda: the training job asks for a GPU, which this cluster does not have
    out, work = tmp_path / "gpu" / "model", tmp_path / "gpu" / "work"
    capsys.readouterr()
    assert main([str(bids), str(out), "train", "-w", str(work), "--device", "cuda", *common]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--gres=gpu:1" in err, err
    lines = [line for log in work.rglob(SBATCH_LOG) for line in log.read_text().splitlines() if line.strip()]
    gpu = [line for line in lines if "--gres=gpu:1" in line]
    assert gpu and all("train" in line for line in gpu), lines
    assert any("prepare" in line and "--gres" not in line for line in lines), lines
    assert not (out / "model.safetensors").exists()


@pytest.mark.slow
def test_gpu_training_sbatch_script_trains_and_a_resubmission_redoes_nothing(slurm_cluster, tmp_path, tiny_preset):
    """workflows/slurm/train_gpu.sbatch with the real smgic-bids; this cluster has no GPU, so the script's
    --gres is overridden with --gres=none and it trains on the CPU (SMGIC_DEVICE=cpu)."""
    import os
    import subprocess

    bids = make_example_dataset(tmp_path / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    preset = tmp_path / "tiny.json"
    preset.write_text(json.dumps(tiny_preset | {"iterations": [2, 2, 1, 1]}))
    out, work = tmp_path / "model", tmp_path / "work"
    script = Path(__file__).resolve().parents[1] / "workflows" / "slurm" / "train_gpu.sbatch"
    env = dict(os.environ, SMGIC_BIDS=str(Path(sys.executable).parent / "smgic-bids"), SMGIC_DEVICE="cpu",
               SMGIC_PRECISION="fp32")
    for attempt in (1, 2):
        run = subprocess.run(
            ["sbatch", "--wait", "--gres=none", "-c", "1", "--mem=3G", "--time=10", f"--output={tmp_path}/{attempt}.log",
             str(script), str(bids), str(out), str(work), "--train-preset", str(preset), "--skip-bids-validation",
             "--no-progress"],
            capture_output=True, text=True, env=env, timeout=600,
        )
        log = (tmp_path / f"{attempt}.log").read_text() if (tmp_path / f"{attempt}.log").exists() else ""
        assert run.returncode == 0, run.stderr + log
        assert f"model written to {out}" in log
    record = json.loads((out / "training.json").read_text())
    assert record["run"]["device"] == "cpu" and record["run"]["processes"] == 1  # the second job trained nothing
    assert (out / "training_log.csv").read_text().count("\n") == 1 + 6
