"""The analysis scripts in workflows/ run on the example dataset (small settings)."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "workflows" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example(tmp_path_factory, write_small_model):
    root = tmp_path_factory.mktemp("example")
    return make_example_dataset(root / "bids", n_subjects=3, seed=2, voxel_mm=3.0), write_small_model(root / "models")


@pytest.mark.slow
def test_all_pairs_with_syn(example, tmp_path, capsys):
    bids, model = example
    out = tmp_path / "out"
    args = [str(bids), str(out), "-w", str(tmp_path / "w"), "--model", str(model), "--syn", "synquick", "--nprocs", "2"]
    assert _script("all_pairs_syn").main(args) == 0
    pairs = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    assert len(pairs) == 3 * 3 and set(pairs["method"]) == {"smgicnet", "synquick", "identity"}
    by = pairs.set_index(["method", "moving", "fixed"])["dice_mean"]
    assert (by.loc["synquick"] > by.loc["identity"]).all()
    assert "synquick" in capsys.readouterr().out


def test_everyone_to_a_reference(example, tmp_path):
    bids, model = example
    out = tmp_path / "out"
    args = [str(bids), str(out), "--reference", "sub-02", "-w", str(tmp_path / "w"), "--model", str(model),
            "--worker", "debug"]
    assert _script("to_reference").main(args) == 0
    pairs = pd.read_csv(out / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    assert set(pairs["fixed"]) == {"sub-02"} and sorted(set(pairs["moving"])) == ["sub-01", "sub-03"]
    assert len(pairs) == 2 * 2
    assert len(list(out.glob("sub-0[13]/anat/*_space-sub02_desc-smgicnet_dseg.nii.gz"))) == 2
