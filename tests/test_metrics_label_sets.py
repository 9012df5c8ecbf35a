"""Which labels the pair metrics score: a label the warp erased (``labels_lost``, left out of HD95) and a label
absent from the fixed image (no Dice per label), against brute-force set and overlap computations."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from smgic_pydra.metrics.dice import dice_per_label, labels_present
from smgic_pydra.metrics.pair_metrics import METRIC_KEYS, field_metrics, write_metrics_file

TABLE = {2: "big", 30: "vessel", 41: "warped only", 50: "fixed only", 60: "absent"}


def brute_dice(warped: np.ndarray, fixed: np.ndarray, label: int) -> float:
    w, f = warped == label, fixed == label
    return 2.0 * np.sum(w & f) / (w.sum() + f.sum())


def brute_hd95(warped: np.ndarray, fixed: np.ndarray, label: int) -> float:
    """Symmetric p95 of all pairwise distances between the 6-connected surfaces (1 mm voxels)."""
    surfaces = [np.argwhere(m & ~ndimage.binary_erosion(m)) for m in (warped == label, fixed == label)]
    d = cdist(*surfaces)
    return max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95))


@pytest.fixture()
def toy(tmp_path):
    """Fixed labels 2, 30 (small), 50; moving labels 2, 30, 41; two warps of the moving labels: one moves 30 by
    4 voxels, one erases it. 41 is only in the moving (and warped) labels, 50 only in the fixed ones."""
    fixed = np.zeros((40, 40, 40), np.int16)
    fixed[5:30, 5:30, 5:30] = 2
    fixed[32:35, 32:35, 32:35] = 30
    fixed[1:3, 36:39, 1:3] = 50
    moving = fixed.copy()
    moving[1:3, 36:39, 1:3] = 0
    moving[1:3, 1:3, 1:3] = 41
    kept = np.zeros_like(fixed)
    kept[6:31, 5:30, 5:30] = 2
    kept[28:31, 32:35, 32:35] = 30
    kept[1:3, 1:3, 1:3] = 41
    erased = np.where(kept == 30, 0, kept)
    nib.save(nib.Nifti1Image(fixed, np.eye(4)), tmp_path / "fixed.nii.gz")
    subject = SimpleNamespace(source_files={"labels": str(tmp_path / "fixed.nii.gz")}, native_mask=fixed > 0)
    return {"fixed": fixed, "moving": moving, "kept": kept, "erased": erased, "subject": subject}


def _metrics(toy, warped, moving=True):
    zero = np.zeros((*toy["fixed"].shape, 3), np.float32)
    return field_metrics(zero, np.eye(4), zero, np.eye(4), toy["subject"], warped, TABLE,
                         moving_labels=toy["moving"] if moving else None)


def test_labels_lost_counts_the_labels_the_warp_erased_and_hd95_leaves_them_out(toy):
    fixed, moving = toy["fixed"], toy["moving"]
    for name, lost in (("kept", set()), ("erased", {30})):
        warped = toy[name]
        expected = (set(np.unique(fixed)) & set(np.unique(moving)) & set(TABLE)) - set(np.unique(warped))
        assert expected == lost
        metrics, _ = _metrics(toy, warped)
        assert metrics["labels_lost"] == len(lost)
        # HD95: mean over the labels present in the fixed and the warped labels (50: not in warped; 41: not fixed)
        scored = sorted((set(np.unique(fixed)) & set(np.unique(warped)) & set(TABLE)))
        assert metrics["hd95_mm"] == pytest.approx(np.mean([brute_hd95(warped, fixed, k) for k in scored]))
    # the bias labels_lost exposes: erasing label 30 lowers (improves) the mean HD95, Dice is the same
    kept, erased = _metrics(toy, toy["kept"])[0], _metrics(toy, toy["erased"])[0]
    assert erased["hd95_mm"] < kept["hd95_mm"] and erased["dice_mean"] == kept["dice_mean"]
    assert math.isnan(_metrics(toy, toy["erased"], moving=False)[0]["labels_lost"])  # not counted without them


def test_dice_per_label_is_what_the_mean_averages(toy):
    fixed, warped = toy["fixed"], toy["kept"]
    metrics, per_label = _metrics(toy, warped)
    in_fixed = set(np.unique(fixed)) & set(TABLE)
    assert in_fixed == {2, 30, 50}
    for label in TABLE:
        if label in in_fixed:
            assert per_label[label] == pytest.approx(brute_dice(warped, fixed, label), abs=1e-12)
        else:  # 41: only in the warped labels (Dice 0 of dice_per_label), 60: in neither
            assert math.isnan(per_label[label])
    assert dice_per_label(warped, fixed, TABLE).per_label[41] == 0.0
    assert metrics["dice_mean"] == pytest.approx(np.nanmean(list(per_label.values())), abs=1e-12)


def test_metrics_file_holds_the_defined_dice_and_labels_lost(toy, tmp_path):
    metrics, per_label = _metrics(toy, toy["erased"])
    row = {"method": "m", "fixed": "f", "moving": "g", "error": "", **metrics,
           "metrics_file": str(tmp_path / "metrics.json")}
    write_metrics_file(row, per_label, TABLE, None)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert set(data["dice_per_label"]) == {"2", "30", "50"}  # 30 erased (Dice 0) kept; 41 (warped only) left out
    assert data["dice_per_label"]["30"] == 0.0 and data["dice_per_label"]["50"] == 0.0
    assert data["labels_lost"] == 1 and "labels_lost" in METRIC_KEYS
    values = [v for v in data["dice_per_label"].values()]
    assert data["dice_mean"] == pytest.approx(np.mean(values), abs=1e-12)


def test_labels_present_and_the_dice_label_sets_match_numpy_unique():
    rng = np.random.default_rng(4)
    warped, fixed = rng.integers(-3, 12, (9, 8, 7)), rng.integers(0, 9, (9, 8, 7))
    wanted = [-3, 0, 2, 5, 9, 11, 40]
    for data in (warped, fixed):
        assert labels_present(data, wanted) == set(np.unique(data)) & set(wanted)
    result = dice_per_label(warped, fixed, wanted)
    assert result.in_fixed == set(np.unique(fixed)) & set(wanted)
    assert result.in_warped == set(np.unique(warped)) & set(wanted)
    assert labels_present(fixed, []) == frozenset()
