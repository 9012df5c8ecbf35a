"""smgic-bids on the example cohort through the real SLURM controller: the same reports as the local cf worker."""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main
from smgic_pydra.hpc.worker import SBATCH_LOG

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")
METRICS = ["dice_mean", "percent_folded", "percent_folded_all", "ic_mean_mm", "ic_p95_mm"]


def _run(bids, tmp_path, worker, extra, common):
    out, work = tmp_path / worker / "out", tmp_path / worker / "work"
    assert main([str(bids), str(out), "participant", "-w", str(work), "--worker", worker, *extra, *common]) == 0
    assert main([str(bids), str(out), "group", "-w", str(work)]) == 0
    pairs = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    return pairs.sort_values(["method", "moving", "fixed"]).reset_index(drop=True), work


@pytest.mark.slow
def test_slurm_worker_gives_the_same_reports_as_cf(slurm_cluster, tmp_path, write_small_model):
    """SM-GICNet and identity (ANTs under SLURM: the two tests below)."""
    bids = make_example_dataset(tmp_path / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    model = write_small_model(tmp_path / "models")
    common = ["--model", str(model), "--method", "smgicnet", "--pairs-per-job", "2", "--random-seed", "3",
              "--omp-nthreads", "1", "--no-progress", "--skip-bids-validation"]
    local, _ = _run(bids, tmp_path, "cf", ["--nprocs", "2"], common)
    slurm, work = _run(bids, tmp_path, "slurm", ["--slurm-args", "-c 1 --mem=2G --time=10"], common)

    assert len(local) == 3 * 2 and (local["error"] == "").all() and (slurm["error"] == "").all()
    assert local[["method", "moving", "fixed"]].equals(slurm[["method", "moving", "fixed"]])
    present = [c for c in METRICS if c in local.columns]
    assert "dice_mean" in present
    np.testing.assert_allclose(slurm[present].to_numpy(float), local[present].to_numpy(float), rtol=1e-4, atol=1e-4)

    # the jobs really went through sbatch, as arrays, CPU only
    logs = list(work.rglob(SBATCH_LOG))
    lines = [line for log in logs for line in log.read_text().splitlines() if line.strip()]
    assert lines and all("--array=" in line and "--no-requeue" in line for line in lines), lines
    assert not any("--gres" in line for line in lines)
    # the tiles (B = 1 with --pairs-per-job 2: 3 tiles x 2 methods) ran as array tasks, each tile once
    sizes = [int(re.search(r"--array=0-(\d+)", line).group(1)) + 1 for line in lines
             if re.search(r"--job-name=pydra-(register|baseline) ", line)]
    assert sum(sizes) == 6, lines
    journals = list(work.glob("runs/*/progress/*.jsonl"))
    assert len(journals) == 6 and all(len(j.read_text().splitlines()) == 1 for j in journals)


@pytest.mark.slow
def test_gpu_registration_jobs_ask_for_a_gpu_and_cpu_jobs_do_not(slurm_cluster, tmp_path, capsys, write_small_model):
    """--device cuda: the SM-GICNet jobs carry --gres=gpu:1 and the ANTs jobs ask only for CPUs. This cluster
    has no GPU, so SLURM refuses the GPU jobs: the run fails with SLURM's own message, the CPU jobs still run."""
    bids = make_example_dataset(tmp_path / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    model = write_small_model(tmp_path / "models")
    out, work = tmp_path / "out", tmp_path / "work"
    args = [str(bids), str(out), "participant", "-w", str(work), "--worker", "slurm", "--slurm-args",
            "-c 1 --mem=2G --time=10", "--device", "cuda", "--model", str(model), "--method", "smgicnet,affine",
            "--pairs-per-job", "3", "--no-progress", "--skip-bids-validation"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SlurmSubmitError" in err and "--gres=gpu:1" in err, err
    lines = [line for log in work.rglob(SBATCH_LOG) for line in log.read_text().splitlines() if line.strip()]
    gpu = [line for line in lines if "--gres=gpu:1" in line]
    cpu = [line for line in lines if "--gres" not in line]
    assert gpu and all("--job-name=pydra-register " in line for line in gpu), lines
    assert cpu and not any("--job-name=pydra-register " in line for line in cpu), lines
    # the CPU-only ANTs affine jobs ran on the cluster and wrote their warps
    assert len(list(out.rglob("*_desc-affine_mode-image_xfm.nii.gz"))) >= 3


@pytest.mark.slow
def test_bids_app_array_with_the_real_smgic_bids_matches_one_local_run(slurm_cluster, tmp_path, write_small_model):
    """workflows/slurm/participant_array.sbatch, one participant per array task running the installed smgic-bids
    (debug worker inside its allocation), then the group level: the same pairs.csv as one local cf run."""
    import os
    import subprocess

    bids = make_example_dataset(tmp_path / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    model = write_small_model(tmp_path / "models")
    options = ["--model", str(model), "--method", "affine", "--random-seed", "3", "--no-progress",
               "--skip-bids-validation"]
    local, _ = _run(bids, tmp_path, "cf", ["--nprocs", "2"], options)

    out, work = tmp_path / "array" / "out", tmp_path / "array" / "work"
    participants = tmp_path / "participants.txt"
    participants.write_text("sub-01\nsub-02\n")  # sub-03 is the moving subject of no unordered pair
    script = Path(__file__).resolve().parents[1] / "workflows" / "slurm" / "participant_array.sbatch"
    env = dict(os.environ, SMGIC_BIDS=str(Path(sys.executable).parent / "smgic-bids"))
    run = subprocess.run(
        ["sbatch", "--wait", "--array=1-2", "-c", "1", "--mem=2G", "--time=10", f"--output={tmp_path}/%a.log",
         str(script), str(bids), str(out), str(participants), "-w", str(work), "--worker", "debug", *options],
        capture_output=True, text=True, env=env, timeout=600,
    )
    logs = " | ".join((tmp_path / f"{n}.log").read_text() for n in (1, 2) if (tmp_path / f"{n}.log").exists())
    assert run.returncode == 0, run.stderr + logs
    assert main([str(bids), str(out), "group", "-w", str(work)]) == 0
    array = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    array = array.sort_values(["method", "moving", "fixed"]).reset_index(drop=True)
    assert array[["method", "moving", "fixed"]].equals(local[["method", "moving", "fixed"]])
    present = [c for c in METRICS if c in local.columns]
    np.testing.assert_allclose(array[present].to_numpy(float), local[present].to_numpy(float), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_python_api_worker_slurm_matches_cf(slurm_cluster, tmp_path, write_small_model):
    """workflows/to_reference.py (run_bids_plan) with worker="slurm": the same pairs.csv as with "cf"."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("to_reference", Path(__file__).resolve().parents[1] / "workflows" / "to_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    bids = make_example_dataset(tmp_path / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    model = write_small_model(tmp_path / "models")
    tables = {}
    for worker in ("cf", "slurm"):
        out = tmp_path / worker / "out"
        args = [str(bids), str(out), "--reference", "sub-02", "-w", str(tmp_path / worker / "work"), "--model",
                str(model), "--method", "smgicnet", "--worker", worker]
        assert script.main(args) == 0
        table = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
        tables[worker] = table.sort_values(["method", "moving", "fixed"]).reset_index(drop=True)
    assert len(tables["cf"]) == 2 * 2 and tables["cf"][["method", "moving", "fixed"]].equals(tables["slurm"][["method", "moving", "fixed"]])
    np.testing.assert_allclose(tables["slurm"]["dice_mean"], tables["cf"]["dice_mean"], rtol=1e-4, atol=1e-4)
    assert list((tmp_path / "slurm" / "work").rglob(SBATCH_LOG))
