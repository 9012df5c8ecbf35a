"""The analysis scripts built from the per-step tasks (workflows/atlas_volumetry.py, workflows/compare_methods.py)
run on the 3 mm example dataset with fast settings, and the README's "In Python" example runs as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from test_workflow_scripts import ROOT, _script, pytestmark  # noqa: F401  (the scripts' loader; mricron-data needed)

from smgic_pydra.bids.examples import make_example_dataset


@pytest.fixture(scope="module")
def example(tmp_path_factory, write_small_model):
    root = tmp_path_factory.mktemp("scripts")
    bids = make_example_dataset(root / "bids", n_subjects=3, seed=2, voxel_mm=3.0)
    return bids / "derivatives" / "smriprep", write_small_model(root / "models")


def test_atlas_volumetry(example, tmp_path, capsys):
    """Every subject to sub-01, sub-01's AAL labels back on each subject: the table's volumes are the voxel counts of
    the propagated labels (counted here with numpy) times the voxel volume."""
    deriv, model = example
    out = tmp_path / "volumes.tsv"
    args = [str(deriv), str(out), "--reference", "sub-01", "--model", str(model), "--refine", "2",
            "-w", str(tmp_path / "w")]
    assert _script("atlas_volumetry").main(args) == 0
    table = pd.read_csv(out, sep="\t")
    assert set(table["subject"]) == {"sub-02", "sub-03"} and table["name"].str.len().min() > 0
    printed = capsys.readouterr().out
    native = Path(re.search(r"sub-02: .* native space: (\S+.nii.gz)", printed).group(1))
    img = nib.load(native)
    assert img.shape == nib.load(deriv / "sub-02" / "anat" / "sub-02_desc-preproc_T1w.nii.gz").shape
    data = np.asarray(img.dataobj)
    sub02 = table[table["subject"] == "sub-02"].set_index("label")
    labels, counts = np.unique(data[data > 0], return_counts=True)
    assert list(sub02.index) == labels.tolist() and sub02["voxels"].tolist() == counts.tolist()
    np.testing.assert_allclose(sub02["volume_mm3"], counts * abs(np.linalg.det(img.affine[:3, :3])), rtol=1e-6)


@pytest.mark.slow
def test_compare_methods(example, tmp_path, capsys):
    """One pair with SM-GICNet and the ANTs affine preset: a Dice table of every AAL label per method."""
    deriv, model = example
    args = [str(deriv), str(tmp_path / "out"), "--fixed", "sub-01", "--moving", "sub-02", "--methods",
            "smgicnet,affine", "--model", str(model), "--refine", "2", "-w", str(tmp_path / "w")]
    assert _script("compare_methods").main(args) == 0
    dice = pd.read_csv(tmp_path / "out" / "dice.tsv", sep="\t")
    summary = pd.read_csv(tmp_path / "out" / "summary.tsv", sep="\t").set_index("method")
    assert list(dice.columns) == ["label", "name", "smgicnet", "affine"] and len(dice) == 116
    for method in ("smgicnet", "affine"):
        present = dice[method].dropna()
        assert summary.loc[method, "mean_dice"] == pytest.approx(present.mean(), abs=1e-4)
        assert 0.3 < summary.loc[method, "mean_dice"] < 1
    assert summary.loc["smgicnet", "mean_dice"] != summary.loc["affine", "mean_dice"]  # two methods, two results
    assert "affine" in capsys.readouterr().out


def readme_python_example() -> str:
    """The code block of the README's "In Python" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### In Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path):
    code = readme_python_example()
    assert 10 <= len(code.strip().splitlines()) <= 20
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    dice = float(re.search(r"mean Dice over 116 AAL labels: ([0-9.]+)", result.stdout).group(1))
    assert 0.5 < dice < 1, result.stdout
