"""FireANTs as a registry method: the same files as every other method, its warp checked by ANTs (antspyx)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_baselines import make_pair, output_paths

pytest.importorskip("fireants")
# few iterations: FireANTs is slow on two CPU cores; the recipe and the file conventions are what is tested
QUICK = {"affine_iterations": [100, 50, 20], "greedy_iterations": [100, 50, 20]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two different real anatomies at 4 mm (64^3), own native grids."""
    return make_pair(tmp_path_factory.mktemp("pair"), 4)


@pytest.fixture(scope="module")
def runs(pair, tmp_path_factory):
    import nibabel as nib

    from smgic_pydra.baselines import baseline_pair
    from smgic_pydra.methods.fireants import fireants_pair

    fixed, moving = pair
    folder = tmp_path_factory.mktemp("runs")
    images = (nib.load(fixed.t1w), nib.load(moving.t1w), nib.load(moving.labels))
    fire = output_paths(folder, "fireants")
    row = fireants_pair(*images, device="cpu", options=QUICK, seed=1, work_dir=folder / "fireants_work").write_row(fire)
    identity = output_paths(folder, "identity")
    baseline_pair("identity", *images).write_row(identity)
    return {"fireants": (fire, row), "identity": (identity, None), "folder": folder}


@pytest.mark.slow
def test_fireants_aligns_the_anatomies(pair, runs):
    from smgic_pydra.metrics import dice_from_files, folding_stats_from_file, inverse_consistency_from_files
    from smgic_pydra.metrics import load_label_table

    fixed, _ = pair
    labels = list(load_label_table())
    dice = {m: dice_from_files(runs[m][0].warped_labels, fixed.labels, labels).mean for m in ("identity", "fireants")}
    assert dice["fireants"] > dice["identity"] + 0.3, dice
    paths = runs["fireants"][0]
    assert folding_stats_from_file(paths.warp, fixed.mask).percent_folded < 0.5
    assert inverse_consistency_from_files(paths.warp, paths.inverse_warp, fixed.mask).mean_mm < 1.0


@pytest.mark.slow
def test_ants_applying_the_fireants_warp_reproduces_the_warped_image(pair, runs):
    """The forward warp file is a plain ANTs displacement field: antsApplyTransforms (antspyx) with it alone
    gives our warped image (independent resampler), so the affine is inside the field."""
    ants = pytest.importorskip("ants")
    import nibabel as nib

    fixed, moving = pair
    paths = runs["fireants"][0]
    by_ants = ants.apply_transforms(ants.image_read(str(fixed.t1w)), ants.image_read(str(moving.t1w)),
                                    transformlist=[str(paths.warp)]).numpy()
    ours = np.asarray(nib.load(paths.warped).dataobj)
    scale = np.abs(by_ants).max()
    # a few voxels whose sample point lies within half a voxel outside the moving grid differ (ITK extrapolates)
    assert np.mean(np.abs(ours - by_ants) > 1e-3 * scale) < 1e-3
    warp = nib.load(paths.warp)
    assert warp.shape == nib.load(fixed.t1w).shape + (1, 3) and warp.header.get_intent()[0] == "vector"


@pytest.mark.slow
def test_sidecar_records_the_recipe_and_files(runs):
    paths, row = runs["fireants"]
    meta = json.loads(Path(paths.sidecar).read_text())
    assert meta["method"] == "fireants" and meta["device"] == "cpu" and meta["random_seed"] == 1
    assert meta["parameters"]["greedy_iterations"] == QUICK["greedy_iterations"]
    assert meta["fireants_version"] != "unknown" and set(meta["stage_seconds"]) == {"moments", "affine", "greedy", "inverse"}
    assert set(meta["files"]) == {"warp", "inverse_warp", "warped", "warped_labels", "jacobian"}
    assert meta["forward_seconds"] == row["forward_seconds"] and row["total_seconds"] >= row["forward_seconds"]


def test_fireants_through_the_tile_task_with_options(tmp_path, write_cohort, write_small_model):
    """RegisterTile(method="fireants") on prepared 2 mm ellipsoid subjects: the same rows and metrics as any
    method; the options reach the sidecar; an unknown option fails the task, naming it."""
    import numpy as np
    from pydra.engine.submitter import Submitter

    from smgic_pydra.bids.derivatives import pair_output_paths
    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.reports.tiles import read_pairs_tables
    from smgic_pydra.tasks import RegisterTile
    from smgic_pydra.workflows.cohort import input_hashes

    subjects = write_cohort(tmp_path / "raw", 2)
    cfg = SMGICNetConfig.from_json((write_small_model(tmp_path / "models") / "config.json").read_text())
    dirs = []
    for s in subjects:
        prepare_subject(s["t1w"], tmp_path / "prep" / s["subject"], cfg, mask_path=s["mask"], labels_path=s["labels"],
                        subject_id=s["subject"])
        dirs.append(str(tmp_path / "prep" / s["subject"]))
    ids = [s["subject"] for s in subjects]
    tile = {"id": "t1", "fixed": ["sub-01"], "moving": ["sub-02"], "pairs": np.array([[0, 0]], dtype=np.int32)}
    shared = dict(subjects=ids, prepared_dirs=dirs, preparation_errors=["", ""], method="fireants",
                  inputs={s["subject"]: input_hashes(s) for s in subjects}, settings={"method": "fireants"},
                  journal_dir=str(tmp_path / "journal"))
    options = {"scales": [2, 1], "affine_iterations": [20, 10], "greedy_iterations": [20, 10]}
    with Submitter(worker="debug", cache_root=tmp_path / "cache") as sub:
        summary = sub(RegisterTile(tile=tile, output_dir=str(tmp_path / "out"), options=options, **shared)).outputs.summary
        with pytest.raises(ValueError, match=r"unknown option\(s\) \['iterations'\]"):
            sub(RegisterTile(tile=tile, output_dir=str(tmp_path / "bad"), options={"iterations": 3}, **shared))
    (row,) = read_pairs_tables([summary["pairs_file"]]).to_dict("records")
    assert row["error"] == "" and summary["failed"] == []
    assert row["dice_mean"] > 0.5 and row["inverse_consistency_mm"] < 1.0  # half a 2 mm voxel
    meta = json.loads(pair_output_paths(tmp_path / "out", "sub-02", "sub-01", "fireants").sidecar.read_text())
    assert meta["parameters"]["scales"] == [2, 1] and meta["fixed"] == "sub-01"


def test_smgic_bids_runs_fireants_with_options_from_the_command_line(tmp_path, write_small_model):
    """``smgic-bids ... participant --method fireants --method-option ...``: FireANTs in its own workflow node, its
    options in every sidecar and the run's content key, rows and metrics like every method's."""
    import pandas as pd

    from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
    from smgic_pydra.cli.bids_app import main

    if not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file():
        pytest.skip("mricron-data not installed")
    bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=1, voxel_mm=3.0)
    out = tmp_path / "out"
    args = [str(bids), str(out), "participant", "-w", str(tmp_path / "work"), "--model",
            str(write_small_model(tmp_path / "models")), "--method", "fireants", "--method-option",
            "fireants.scales=[2,1]", "--method-option", "fireants.affine_iterations=[50,20]", "--method-option",
            "fireants.greedy_iterations=[50,20]", "--no-progress", "--skip-bids-validation", "--no-reportlets"]
    assert main(args) == 0
    assert main([str(bids), str(out), "group", "-w", str(tmp_path / "work")]) == 0
    pairs = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    by = pairs.set_index("method")
    assert set(pairs["method"]) == {"fireants", "identity"} and (pairs["error"] == "").all()
    assert by.loc["fireants", "dice_mean"] > by.loc["identity", "dice_mean"] + 0.1
    (sidecar,) = out.rglob("*_desc-fireants_mode-image_xfm.json")
    meta = json.loads(sidecar.read_text())
    assert meta["parameters"]["scales"] == [2, 1] and meta["parameters"]["greedy_iterations"] == [50, 20]
    assert meta["content_sha256"]


def test_fireants_gets_images_at_a_scale_where_its_cc_penalises_brain_on_background():
    """FireANTs' own local CC loss (the independent reference) at 0-1 intensities scores a textured
    window against an empty one almost as well as a perfect match (0.91 against 0.99 here: the degenerate
    optimum that pushed the affine off the brain); on the images ``fireants_fields`` gives it, the empty window scores ~0.
    The scaling is the same whatever the input's scale (scanner units or 0-1)."""
    import nibabel as nib
    import torch
    from fireants.losses.cc import LocalNormalizedCrossCorrelationLoss

    from smgic_pydra.methods.fireants import _scaled

    rng = np.random.default_rng(0)
    brain = rng.uniform(0.2, 1.0, (9, 9, 9)).astype(np.float32)
    cc = LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=5, reduction="mean")

    def ncc(fixed, moving):  # mean local NCC (FireANTs' loss is its negative) of the central window
        return -float(cc(torch.from_numpy(moving)[None, None], torch.from_numpy(fixed)[None, None]))

    empty = np.zeros_like(brain)
    assert ncc(brain, brain) > 0.99
    assert ncc(brain, empty) > 0.9  # the flaw: an empty window scores almost as well as the right one
    scaled = np.asarray(_scaled(nib.Nifti1Image(brain, np.eye(4)), 1000.0).dataobj)
    assert np.percentile(scaled, 99) == pytest.approx(1000.0, rel=1e-5)
    assert ncc(scaled, scaled) > 0.99 and ncc(scaled, empty) < 0.01
    in_scanner_units = np.asarray(_scaled(nib.Nifti1Image(brain * 3000, np.eye(4)), 1000.0).dataobj)
    np.testing.assert_allclose(in_scanner_units, scaled, rtol=1e-5)
