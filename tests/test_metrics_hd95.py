"""HD95 of labels (smgic_pydra.metrics.hausdorff) against SimpleITK, brute-force surface distances and closed forms."""

from __future__ import annotations

import math
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.distance import cdist

from smgic_pydra.metrics import hd95_from_files, hd95_per_label
from smgic_pydra.metrics.pair_metrics import field_metrics

SPACING = (1.0, 1.2, 0.8)


def ball(shape, centre_vox, radius_mm, spacing=SPACING) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float64)
    return sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre_vox, spacing)) <= radius_mm**2


def sitk_hausdorff(a: np.ndarray, b: np.ndarray, spacing) -> float:
    images = []
    for mask in (a, b):
        img = sitk.GetImageFromArray(mask.astype(np.uint8).transpose(2, 1, 0))  # SimpleITK arrays are (z, y, x)
        img.SetSpacing(spacing)
        images.append(img)
    hausdorff = sitk.HausdorffDistanceImageFilter()
    hausdorff.Execute(*images)
    return hausdorff.GetHausdorffDistance()


def brute_force_hd(a: np.ndarray, b: np.ndarray, spacing, percentile: float) -> float:
    """Symmetric robust Hausdorff of the 6-connected surfaces, by all pairwise distances (no distance transform)."""
    surfaces = [np.argwhere(m & ~ndimage.binary_erosion(m)) * np.asarray(spacing) for m in (a, b)]
    d = cdist(*surfaces)
    return max(np.percentile(d.min(axis=1), percentile), np.percentile(d.min(axis=0), percentile))


def test_offset_balls_match_sitk_hausdorff_and_brute_force_percentile():
    shape = (48, 40, 52)
    a = ball(shape, (22, 20, 26), 11.0)
    b = ball(shape, (26, 19, 27), 11.0)  # shifted by (4, -1.2, 0.8) mm
    fixed, warped = np.where(a, 7, 0), np.where(b, 7, 0)
    shift = math.hypot(4.0, 1.2, 0.8)
    hd100 = hd95_per_label(warped, fixed, SPACING, [7], percentile=100).per_label[7]
    assert hd100 == pytest.approx(sitk_hausdorff(b, a, SPACING), abs=1e-9)
    assert hd100 == pytest.approx(shift, abs=0.5)  # closed form of two equal balls, up to voxelisation
    hd95 = hd95_per_label(warped, fixed, SPACING, [7])
    assert hd95.per_label[7] == pytest.approx(brute_force_hd(b, a, SPACING, 95), abs=1e-9)
    assert 0 < hd95.per_label[7] <= hd100 and hd95.n_labels == 1 and hd95.mean == hd95.per_label[7]


def test_concentric_balls_give_the_radius_difference():
    shape = (64, 56, 72)
    inner, outer = ball(shape, (32, 28, 36), 12.0), ball(shape, (32, 28, 36), 17.0)
    value = hd95_per_label(np.where(outer, 3, 0), np.where(inner, 3, 0), SPACING, [3]).mean
    assert value == pytest.approx(5.0, abs=1.0)  # every surface point is 5 mm from the other surface


def test_labels_mean_missing_labels_and_identity():
    shape = (40, 40, 40)
    fixed = np.zeros(shape, np.int16)
    fixed[ball(shape, (12, 20, 20), 6.0, (1, 1, 1))] = 1
    fixed[ball(shape, (28, 20, 20), 6.0, (1, 1, 1))] = 2
    fixed[2:6, 2:6, 2:6] = 4  # only in the fixed labels
    warped = np.roll(fixed, 2, axis=0)
    warped[warped == 4] = 0
    warped[30:34, 30:34, 30:34] = 5  # only in the warped labels
    result = hd95_per_label(warped, fixed, (1, 1, 1), [1, 2, 4, 5, 9])
    assert math.isnan(result.per_label[4]) and math.isnan(result.per_label[5]) and math.isnan(result.per_label[9])
    for label in (1, 2):
        assert result.per_label[label] == pytest.approx(
            brute_force_hd(warped == label, fixed == label, (1, 1, 1), 95), abs=1e-9)
    assert result.n_labels == 2 and result.mean == pytest.approx((result.per_label[1] + result.per_label[2]) / 2)
    assert hd95_per_label(fixed, fixed, (1, 1, 1), [1, 2, 4]).mean == 0.0


def test_label_at_the_grid_border_is_not_cropped_wrongly():
    fixed = np.zeros((30, 30, 30), np.int16)
    fixed[0:10, 5:20, 5:20] = 6
    warped = np.zeros_like(fixed)
    warped[0:13, 6:20, 5:22] = 6
    value = hd95_per_label(warped, fixed, SPACING, [6], percentile=100).mean
    assert value == pytest.approx(brute_force_hd(warped == 6, fixed == 6, SPACING, 100), abs=1e-9)
    assert value == pytest.approx(sitk_hausdorff(warped == 6, fixed == 6, SPACING), abs=1e-9)


def test_shape_mismatch_and_empty_label_list_are_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        hd95_per_label(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), (1, 1, 1), [1])
    with pytest.raises(ValueError, match="no labels"):
        hd95_per_label(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), (1, 1, 1), [])


def test_files_and_field_metrics_use_the_fixed_grid_spacing(tmp_path):
    shape = (36, 32, 40)
    affine = np.diag([*SPACING, 1.0])[[1, 0, 2, 3]]  # rows permuted: voxel sizes are the columns' norms, SPACING
    fixed = np.where(ball(shape, (18, 16, 20), 9.0), 2, 0).astype(np.int16)
    warped = np.where(ball(shape, (20, 16, 21), 9.0), 2, 0).astype(np.int16)
    expected = brute_force_hd(warped == 2, fixed == 2, SPACING, 95)
    for name, data in (("fixed", fixed), ("warped", warped)):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"{name}.nii.gz")
    assert hd95_from_files(tmp_path / "warped.nii.gz", tmp_path / "fixed.nii.gz", [2]).mean == pytest.approx(expected)
    subject = SimpleNamespace(source_files={"labels": str(tmp_path / "fixed.nii.gz")}, native_mask=fixed > 0)
    zero = np.zeros((*shape, 3), np.float32)
    metrics, _ = field_metrics(zero, affine, zero, affine, subject, warped, {2: "structure"})
    assert metrics["hd95_mm"] == pytest.approx(expected)
