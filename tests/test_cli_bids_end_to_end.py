"""smgic-bids participant (two participants into one output folder) then group on the example dataset;
the output derivatives pass the BIDS validator."""

import hashlib
import json

import pandas as pd
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")


@pytest.fixture(scope="module")
def example(tmp_path_factory, write_small_model):
    root = tmp_path_factory.mktemp("example")
    bids = make_example_dataset(root / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    return bids, write_small_model(root / "models")


@pytest.mark.slow
def test_participants_then_group_and_validator(example, tmp_path, capsys):
    bids, model = example
    out, work = tmp_path / "derivatives" / "smgicnet", tmp_path / "work"
    common = ["-w", str(work), "--model", str(model), "--method", "smgicnet,affine", "--pairs-per-job", "2",
              "--nprocs", "2", "--random-seed", "7", "--no-progress", "--skip-bids-validation"]
    # all unordered pairs: sub-01 moves onto sub-02 and sub-03, sub-02 onto sub-03 (two participant jobs)
    assert main([str(bids), str(out), "participant", "--participant-label", "01", *common]) == 0
    assert main([str(bids), str(out), "participant", "--participant-label", "sub-02", *common]) == 0
    assert main([str(bids), str(out), "group", "-w", str(work)]) == 0
    pairs = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    assert len(pairs) == 3 * 3 and set(pairs["method"]) == {"smgicnet", "affine", "identity"}
    assert (pairs["error"] == "").all()
    expected = {("sub-01", "sub-02"), ("sub-01", "sub-03"), ("sub-02", "sub-03")}
    assert set(zip(pairs["moving"], pairs["fixed"])) == expected
    assert ((pairs["dice_mean"] > 0) & (pairs["dice_mean"] < 1)).all()
    # the ANTs affine must beat no registration on these randomly posed subjects (up to 15 deg, 15 mm)
    by = pairs.set_index(["method", "moving", "fixed"])["dice_mean"]
    assert (by.loc["affine"] > by.loc["identity"]).all()
    summary = pd.read_csv(out / "reports" / "group_summary.tsv", sep="\t").set_index("method")
    assert summary.loc["affine", "n_pairs"] == 3
    labels = pd.read_csv(out / "reports" / "dice_per_label.csv")
    assert labels["label"].between(1, 116).all()  # AAL labels from the dataset's dseg.tsv
    desc = json.loads((out / "dataset_description.json").read_text())
    generated = desc["GeneratedBy"][0]
    assert desc["DatasetType"] == "derivative" and generated["RandomSeed"] == 7
    assert generated["ModelWeightsSHA256"] == hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    from smgic_pydra.bids.validation import validate_dataset

    assert validate_dataset(out) == []
