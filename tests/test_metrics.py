"""Evaluation metrics checked against independent references: SimpleITK (Dice), ANTsPy (Jacobian
determinant), closed forms (affine fields, inverse consistency of affine pairs) and wall clocks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from smgic_pydra.io.errors import InputError
from smgic_pydra.io.itk_warp import write_itk_displacement
from smgic_pydra.metrics import (
    dice_from_files,
    dice_per_label,
    folding_stats,
    folding_stats_from_file,
    inverse_consistency,
    inverse_consistency_from_files,
    load_label_table,
    synchronize,
)

ASEG36 = {2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 26, 28, 30, 31,
          41, 42, 43, 44, 46, 47, 49, 50, 51, 52, 53, 54, 58, 60, 62, 63}


def world_points(affine, shape):
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), axis=-1)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def oblique_affine(spacing, angles_deg, origin):
    """Voxel -> RAS mm with rotation about z then x (oblique) and anisotropic spacing."""
    a, b = np.deg2rad(angles_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def blob_labels(shape, values, seed):
    """Random smooth partition of a volume into ``values`` (argmax of smoothed noise)."""
    rng = np.random.default_rng(seed)
    scores = ndimage.gaussian_filter(rng.standard_normal((len(values),) + shape), sigma=(0, 3, 3, 3))
    return np.asarray(values, dtype=np.int32)[np.argmax(scores, axis=0)]


# ---------------------------------------------------------------- label tables

def test_default_label_table_is_the_36_aseg_labels_with_freesurfer_names():
    table = load_label_table()
    assert set(table) == ASEG36 and len(table) == 36
    assert table[2] == "Left-Cerebral-White-Matter" and table[10] == "Left-Thalamus"
    assert table[49] == "Right-Thalamus" and table[24] == "CSF" and table[16] == "Brain-Stem"
    pairs = [(k, k + 39) for k in (2, 3, 4, 5, 7, 8, 10, 11, 12, 13)]
    pairs += [(17, 53), (18, 54), (26, 58), (28, 60), (30, 62), (31, 63)]
    assert all(table[left].replace("Left", "Right") == table[right] for left, right in pairs)


def test_other_label_tables_are_accepted_and_malformed_ones_refused(tmp_path):
    good = tmp_path / "atlas.tsv"
    good.write_text("index\tname\tcolor\n7\tA\tred\n1001\tB\tblue\n")
    assert load_label_table(good) == {7: "A", 1001: "B"}
    cases = {
        "missing_column.tsv": "label\tname\n1\tA\n",
        "not_integer.tsv": "index\tname\n1.5\tA\n",
        "duplicate.tsv": "index\tname\n3\tA\n3\tB\n",
        "background.tsv": "index\tname\n0\tUnknown\n",
        "empty_name.tsv": "index\tname\n4\t\n",
        "no_rows.tsv": "index\tname\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=name):
            load_label_table(tmp_path / name)
    with pytest.raises(InputError, match="cannot read"):
        load_label_table(tmp_path / "absent.tsv")


# ---------------------------------------------------------------- Dice

def test_dice_matches_simpleitk_label_overlap_per_label():
    sitk = pytest.importorskip("SimpleITK")
    shape = (40, 36, 32)
    fixed = blob_labels(shape, [0, 2, 3, 4, 17, 41], seed=1)
    warped = blob_labels(shape, [0, 2, 3, 4, 17, 53], seed=2)  # 41 only in fixed, 53 only in warped
    labels = [2, 3, 4, 17, 41, 53, 99]  # 99 absent from both
    result = dice_per_label(warped, fixed, labels)
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(sitk.GetImageFromArray(fixed), sitk.GetImageFromArray(warped))
    for label in (2, 3, 4, 17, 41, 53):
        assert result.per_label[label] == pytest.approx(overlap.GetDiceCoefficient(label), abs=1e-12)
    assert 0.05 < result.per_label[2] < 0.95  # a partial overlap, not a trivial case
    assert result.per_label[41] == 0.0 and result.per_label[53] == 0.0
    assert np.isnan(result.per_label[99])
    # mean over labels present in the fixed image: 53 (only in warped) and 99 (absent) are not averaged
    expected = np.mean([overlap.GetDiceCoefficient(lab) for lab in (2, 3, 4, 17, 41)])
    assert result.mean == pytest.approx(expected, abs=1e-12) and result.n_labels == 5


def test_dice_from_files_refuses_labels_on_another_grid(tmp_path):
    import nibabel as nib

    labels = blob_labels((12, 12, 12), [0, 2, 3], seed=3)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "fixed.nii.gz")
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "same.nii.gz")
    shifted = np.eye(4)
    shifted[0, 3] = 1.0
    nib.save(nib.Nifti1Image(labels, shifted), tmp_path / "shifted.nii.gz")
    assert dice_from_files(tmp_path / "same.nii.gz", tmp_path / "fixed.nii.gz", [2, 3]).mean == 1.0
    with pytest.raises(InputError, match="shifted.nii.gz"):
        dice_from_files(tmp_path / "shifted.nii.gz", tmp_path / "fixed.nii.gz", [2, 3])


# ---------------------------------------------------------------- Jacobian folding

@pytest.mark.parametrize("matrix", [
    [[1.1, 0.2, -0.1], [0.05, 0.9, 0.15], [-0.1, 0.1, 1.2]],  # det > 0
    [[-1.0, 0.1, 0.0], [0.0, 1.1, 0.2], [0.1, 0.0, 0.9]],  # a reflection: det < 0, every voxel folded
])
def test_affine_field_has_constant_determinant_equal_to_det_a_on_an_oblique_grid(tmp_path, matrix):
    a = np.array(matrix)
    affine = oblique_affine([1.3, 0.8, 2.1], [25.0, -15.0], [-40.0, 12.0, 7.0])
    x = world_points(affine, (14, 17, 11))
    disp = x @ (a - np.eye(3)).T + np.array([3.0, -2.0, 5.0])  # u(x) = (A - I) x + t
    stats = folding_stats(disp, affine)
    det_a = np.linalg.det(a)
    assert stats.det_min == pytest.approx(det_a, abs=1e-9) and stats.det_max == pytest.approx(det_a, abs=1e-9)
    assert stats.log_det_std == pytest.approx(0.0, abs=1e-9)
    assert stats.percent_folded == (100.0 if det_a <= 0 else 0.0)
    # the same through the ITK/ANTs file (float32 on disk)
    write_itk_displacement(tmp_path / "warp.nii.gz", disp, affine)
    from_file = folding_stats_from_file(tmp_path / "warp.nii.gz")
    assert from_file.det_min == pytest.approx(det_a, abs=1e-3) and from_file.det_max == pytest.approx(det_a, abs=1e-3)


def quadratic_folding_field(shape, affine):
    """u_x = a (x - c)^2 / 2 + b y z, u_y = g x z, u_z = h y^2 / 2 (mm): det(I + grad u) changes sign across
    the volume (folds), and central differences of second and fourth order are both exact for it."""
    x = world_points(affine, shape)
    c = x[..., 0].mean() + 0.37
    u = np.zeros(shape + (3,))
    u[..., 0] = 0.08 * (x[..., 0] - c) ** 2 / 2 + 0.002 * x[..., 1] * x[..., 2]
    u[..., 1] = 0.003 * x[..., 0] * x[..., 2]
    u[..., 2] = 0.004 * x[..., 1] ** 2 / 2
    return u


def test_folding_matches_antspy_jacobian_determinant(tmp_path):
    """ANTs (ITK's DisplacementFieldTransform) uses fourth-order central differences and clamps det < 0
    to 0; on a quadratic field both stencils are exact, so the maps agree wherever ANTs' stencil fits."""
    ants = pytest.importorskip("ants")
    shape, spacing = (24, 20, 18), np.array([1.5, 2.0, 1.2])
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # identity direction in ITK's LPS
    affine[:3, 3] = [10.0, -5.0, 3.0]
    disp = quadratic_folding_field(shape, affine)
    write_itk_displacement(tmp_path / "warp.nii.gz", disp, affine)
    domain = ants.from_numpy(np.zeros(shape, np.float32), origin=(-10.0, 5.0, 3.0), spacing=tuple(spacing))
    ref = ants.create_jacobian_determinant_image(domain, str(tmp_path / "warp.nii.gz"), do_log=False).numpy()
    from smgic_pydra.transforms import jacobian_determinant

    ours = jacobian_determinant(disp, affine)
    inner = (slice(2, -2),) * 3  # the five-point stencil needs two voxels on each side
    assert 0.05 < (ours[inner] <= 0).mean() < 0.6  # a field with real folds
    np.testing.assert_allclose(np.maximum(ours, 0.0)[inner], ref[inner], atol=2e-4)
    assert np.array_equal(ours[inner] <= 0, ref[inner] <= 0)
    stats = folding_stats_from_file(tmp_path / "warp.nii.gz", None)
    # border planes (one-sided differences) may differ
    assert stats.percent_folded_all == pytest.approx(100.0 * (ref <= 0).mean(), abs=100.0 / 18)


def test_folding_in_mask_counts_only_mask_voxels():
    det = np.ones((4, 4, 4))
    det[0] = -1.0  # 16 folded voxels
    mask = np.zeros(det.shape, bool)
    mask[:2] = True  # 32 voxels, 16 of them folded
    from smgic_pydra.metrics import folding_stats_from_det

    stats = folding_stats_from_det(det, mask)
    assert stats.percent_folded == 50.0 and stats.percent_folded_all == 25.0 and stats.n_mask_voxels == 32
    assert stats.det_min == -1.0 and stats.log_det_std == pytest.approx(np.std([np.log(1e-9)] * 16 + [0.0] * 16))


# ---------------------------------------------------------------- inverse consistency

def affine_pair(a, t, fixed_affine, fixed_shape, moving_affine, moving_shape):
    """Forward u_f(x) = (A - I) x + t on the fixed grid and the exact inverse on the moving grid."""
    fwd = world_points(fixed_affine, fixed_shape) @ (a - np.eye(3)).T + t
    a_inv = np.linalg.inv(a)
    inv = world_points(moving_affine, moving_shape) @ (a_inv - np.eye(3)).T - a_inv @ t
    return fwd, inv


def test_inverse_consistency_of_an_exact_affine_pair_is_zero_and_of_a_mismatched_pair_the_closed_form(tmp_path):
    fixed_affine, fixed_shape = oblique_affine([2.0, 1.5, 2.5], [10.0, 5.0], [-20.0, -18.0, -22.0]), (20, 24, 16)
    moving_affine, moving_shape = oblique_affine([1.2, 1.2, 1.2], [-20.0, 8.0], [-60.0, -55.0, -50.0]), (90, 90, 90)
    a = np.array([[1.05, 0.05, 0.0], [-0.03, 0.95, 0.04], [0.02, 0.0, 1.1]])
    t = np.array([4.0, -3.0, 6.0])
    fwd, inv = affine_pair(a, t, fixed_affine, fixed_shape, moving_affine, moving_shape)
    mask = np.zeros(fixed_shape, bool)
    mask[3:-3, 4:-4, 2:-2] = True
    exact = inverse_consistency(fwd, fixed_affine, inv, moving_affine, mask)
    assert exact.outside_fraction == 0.0 and exact.n_points == mask.sum()
    assert exact.mean_mm < 1e-9 and exact.max_mm < 1e-9  # trilinear interpolation of an affine field is exact

    # mismatched inverse u_i(y) = (B - I) y + c: error at x is |B (A x + t) + c - x|
    b = np.array([[0.97, 0.0, 0.02], [0.01, 1.02, 0.0], [0.0, -0.02, 0.93]])
    c = np.array([-1.0, 2.0, 0.5])
    inv_b = world_points(moving_affine, moving_shape) @ (b - np.eye(3)).T + c
    x = world_points(fixed_affine, fixed_shape)[mask]
    closed = np.linalg.norm(x @ (b @ a - np.eye(3)).T + b @ t + c, axis=1)
    result = inverse_consistency(fwd, fixed_affine, inv_b, moving_affine, mask)
    assert result.mean_mm == pytest.approx(closed.mean(), rel=1e-9)
    assert result.p95_mm == pytest.approx(np.percentile(closed, 95), rel=1e-9)
    assert result.mean_mm > 1.0  # a real error, not a trivial zero

    # from ITK files (float32 on disk) with a mask file
    import nibabel as nib

    write_itk_displacement(tmp_path / "warp.nii.gz", fwd, fixed_affine)
    write_itk_displacement(tmp_path / "inverse.nii.gz", inv_b, moving_affine)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), fixed_affine), tmp_path / "mask.nii.gz")
    warp, inverse = tmp_path / "warp.nii.gz", tmp_path / "inverse.nii.gz"
    from_files = inverse_consistency_from_files(warp, inverse, tmp_path / "mask.nii.gz")
    assert from_files.mean_mm == pytest.approx(closed.mean(), abs=1e-3)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), moving_affine), tmp_path / "wrong_grid_mask.nii.gz")
    with pytest.raises(InputError, match="wrong_grid_mask"):
        inverse_consistency_from_files(warp, inverse, tmp_path / "wrong_grid_mask.nii.gz")


# ---------------------------------------------------------------- timing

@pytest.mark.gpu
def test_synchronize_waits_for_queued_cuda_work():
    """Against CUDA events: without synchronizing, the clock would stop at kernel launch."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    a = torch.randn(4096, 4096, device="cuda")
    (a @ a).sum().item()  # warm-up
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    synchronize("cuda")
    clock = time.perf_counter()
    start.record()
    for _ in range(20):
        a = torch.tanh(a @ a)
    end.record()
    synchronize("cuda")
    seconds = time.perf_counter() - clock
    torch.cuda.synchronize()
    gpu_seconds = start.elapsed_time(end) / 1000.0
    assert gpu_seconds > 0.005 and seconds >= 0.95 * gpu_seconds
