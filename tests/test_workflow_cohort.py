"""The cohort workflow on a small cohort: N(N-1)/2 rows per method with sane metrics, errors as data,
the output policies give equal rows, and a run killed after its first tile resumes without redoing
finished pairs."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from smgic_pydra.workflows import CohortPlan, JournalTail, run_cohort


@pytest.fixture
def make_plan(write_cohort, write_small_model, unordered_pairs):
    """``make_plan(root, n, methods, pairs_per_job=2, subjects=None, **kw) -> CohortPlan`` of all unordered pairs."""

    def plan(root: Path, n: int, methods, pairs_per_job=4, subjects=None, out="out", work="work", **kw) -> CohortPlan:
        subjects = subjects or write_cohort(root / "raw", n)
        ids = [s["subject"] for s in subjects]
        model = root / "models" / "model"
        if not model.exists():
            write_small_model(root / "models")
        return CohortPlan(subjects=subjects, pairs=unordered_pairs(ids), methods=methods, work_dir=root / work,
                          output_dir=root / out, model=str(model), pairs_per_job=pairs_per_job, **kw)

    return plan


def test_cohort_workflow_reports_every_pair_and_names_failures(tmp_path, write_cohort, make_plan):
    subjects = write_cohort(tmp_path / "raw", 3)
    empty = tmp_path / "raw" / "sub-04_T1w.nii.gz"
    empty.write_bytes(b"")  # a corrupt subject: its pairs become error rows, the others finish
    subjects.append({"subject": "sub-04", "t1w": str(empty)})
    plan = make_plan(tmp_path, 4, ["smgicnet", "identity"], subjects=subjects)
    result = run_cohort(plan, worker="cf", n_procs=2, show_progress=False)
    pairs = pd.read_csv(result.reports["pairs"], dtype={"error": str}).fillna({"error": ""})
    assert len(pairs) == 2 * 4 * 3 // 2  # N(N-1)/2 per method
    failed = pairs[pairs["error"] != ""]
    assert sorted(set(failed["moving"])) == ["sub-04"] and len(failed) == 2 * 3
    assert all(str(empty) in e for e in failed["error"])
    assert len(result.failed) == 6 and all("sub-04 -> sub-0" in f for f in result.failed)
    ok = pairs[pairs["error"] == ""].set_index(["method", "fixed", "moving"])
    # identity: no deformation, so no folding and Jacobian 1; its Dice is the raw overlap of the subjects
    ident = ok.loc["identity"]
    assert (ident["folding_percent"] == 0).all() and (ident["inverse_consistency_mm"].abs() < 1e-3).all()
    assert ((ident["dice_mean"] > 0.3) & (ident["dice_mean"] < 1)).all()
    net = ok.loc["smgicnet"]
    assert ((net["dice_mean"] > 0) & (net["dice_mean"] <= 1)).all()
    assert ((net["folding_percent"] >= 0) & (net["folding_percent"] <= 100)).all() and (net["seconds"] > 0).all()
    summary = pd.read_csv(result.reports["summary_csv"]).set_index("method")
    assert summary.loc["smgicnet", "n_failed"] == 3
    assert math.isclose(summary.loc["identity", "dice_mean_mean"], ident["dice_mean"].mean(), rel_tol=1e-5)
    status = json.loads(result.status_file.read_text())
    assert status["state"] == "finished" and status["done"] == status["total"] == 12 and len(status["failed"]) == 6
    labels = pd.read_csv(result.reports["dice_per_label"])
    assert set(labels["label"]) == {2, 3} and set(labels["method"]) == {"smgicnet", "identity"}
    # the same run again after the bad image is fixed: the failed pairs are retried, the others not redone
    empty.write_bytes(Path(subjects[2]["t1w"]).read_bytes())
    sidecars = [plan.pair_paths(f, mv, m).sidecar for f, mv in plan.pairs for m in plan.methods
                if mv != "sub-04" and m != "identity"]  # identity writes no file
    stamps = [s.stat().st_mtime_ns for s in sidecars]
    again = run_cohort(plan, worker="cf", n_procs=2, show_progress=False)
    assert again.failed == [] and len(again.rows) == 12
    assert [s.stat().st_mtime_ns for s in sidecars] == stamps


RUNNER = """
import sys, pickle
from smgic_pydra.workflows import run_cohort
plan = pickle.load(open(sys.argv[1], "rb"))
run_cohort(plan, worker="debug", show_progress=False, poll_interval=0.1)
"""


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_pairs(tmp_path, make_plan):
    import pickle

    plan = make_plan(tmp_path, 5, ["smgicnet"], pairs_per_job=2)
    (tmp_path / "plan.pkl").write_bytes(pickle.dumps(plan))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path / "plan.pkl")], env=env)
    deadline = time.monotonic() + 240
    journals = JournalTail(plan.progress_dir)
    while len(journals.poll()) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {(f, m) for _, f, m in JournalTail(plan.progress_dir).poll()}
    assert 2 <= len(done_before) < len(plan.pairs), "the run must be killed after its first pairs, before the end"
    sidecars = {(f, m): plan.pair_paths(f, m, "smgicnet").sidecar for f, m in plan.pairs}
    stamps = {k: sidecars[k].stat().st_mtime_ns for k in done_before}
    result = run_cohort(plan, worker="debug", show_progress=False)
    assert not result.failed and len(result.rows) == len(plan.pairs) == 10
    assert {k: sidecars[k].stat().st_mtime_ns for k in done_before} == stamps  # finished work not redone
    assert all(s.is_file() for s in sidecars.values())


def test_output_policies_give_equal_rows_and_write_only_their_files(tmp_path, make_plan):
    """all / warps / compact / metrics from scratch (own work and output folders): the same metrics for
    every pair, and each policy's files only (metrics: no per-pair file at all; identity: none under any
    policy). Tiles of 2 x 2 subjects."""
    rows, files = {}, {}
    for policy in ("all", "warps", "compact", "metrics"):
        plan = make_plan(tmp_path, 3, ["smgicnet", "identity"], out=f"out-{policy}", work=f"work-{policy}",
                         outputs=policy)
        assert len(plan.tiles()) == 2  # blocks {01, 02}, {03}: tiles (f0, m0): 01<-02; (f0, m1): 01<-03, 02<-03
        result = run_cohort(plan, worker="debug", show_progress=False)
        assert not result.failed
        rows[policy] = result.pairs.set_index(["method", "fixed", "moving"]).sort_index()
        files[policy] = sorted(p.name for p in (tmp_path / f"out-{policy}").rglob("sub-*/anat/*"))
    metrics = ["dice_mean", "folding_percent", "log_jacobian_std", "inverse_consistency_mm"]
    assert len(rows["all"]) == 6 and rows["all"]["dice_mean"].notna().all()
    for policy in ("warps", "compact", "metrics"):
        pd.testing.assert_frame_equal(rows[policy][metrics], rows["all"][metrics], check_exact=False, rtol=1e-6)
    assert files["metrics"] == []
    assert {n.split("_desc-")[1] for n in files["warps"]} == {"smgicnet_mode-image_xfm.nii.gz", "smgicnet_mode-image_xfm.json"}
    assert {n.split("_desc-")[1] for n in files["compact"]} == {"smgicnet_mode-velocity_xfm.h5", "smgicnet_mode-image_xfm.json"}
    assert len(files["compact"]) == 3 + 3  # one compact file per unordered pair, one sidecar per ordered pair
    assert any(n.endswith("_dseg.nii.gz") for n in files["all"]) and any(n.endswith("affine_xfm.mat") for n in files["all"])
    assert not any(n.endswith(("_xfm.h5", "_jacobian.nii.gz")) or "identity" in n for n in files["all"])
    # metrics, then warps, then all on the same folders (issue 23): the files of a policy that does not
    # cover the next do not count as done, those pairs are redone and every file of all is written
    for policy in ("warps", "all"):
        plan = make_plan(tmp_path, 3, ["smgicnet", "identity"], out="out-metrics", work="work-metrics", outputs=policy)
        result = run_cohort(plan, worker="debug", show_progress=False)
        smgicnet = result.pairs[result.pairs["method"] == "smgicnet"]
        assert not result.failed and not smgicnet["resumed"].any()
        assert result.pairs.loc[result.pairs["method"] == "identity", "resumed"].all()  # only a metrics row
    assert sorted(p.name for p in (tmp_path / "out-metrics").rglob("sub-*/anat/*")) == files["all"]
    sidecars = list((tmp_path / "out-metrics").rglob("*_mode-image_xfm.json"))
    assert len(sidecars) == 3 and {json.loads(p.read_text())["output_policy"] for p in sidecars} == {"all"}
    # and back to warps: the files of all cover it, nothing is redone
    plan = make_plan(tmp_path, 3, ["smgicnet", "identity"], out="out-metrics", work="work-metrics", outputs="warps")
    assert run_cohort(plan, worker="debug", show_progress=False).pairs["resumed"].all()
