"""ANTs baselines: preset argument lists transcribed from the ANTs scripts, and real ANTs registrations
(antspyx) of two different anatomies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smgic_pydra.baselines import antsregistration_arguments, is_large_image

LABEL_MAPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthseg_label_maps"

# antsRegistrationSyN.sh -t s (ANTs 2.5), fixed image f.nii.gz, moving m.nii.gz, -o out_, defaults
# (CC radius 4, double precision, no histogram matching), plus our --random-seed
SYN_SCRIPT = (
    "--verbose 1 --dimensionality 3 --float 0 --output [out_,out_Warped.nii.gz,out_InverseWarped.nii.gz] "
    "--interpolation Linear --use-histogram-matching 0 --winsorize-image-intensities [0.005,0.995] "
    "--initial-moving-transform [f.nii.gz,m.nii.gz,1] "
    "--transform Rigid[0.1] --metric MI[f.nii.gz,m.nii.gz,1,32,Regular,0.25] "
    "--convergence [1000x500x250x100,1e-6,10] --shrink-factors 8x4x2x1 --smoothing-sigmas 3x2x1x0vox "
    "--transform Affine[0.1] --metric MI[f.nii.gz,m.nii.gz,1,32,Regular,0.25] "
    "--convergence [1000x500x250x100,1e-6,10] --shrink-factors 8x4x2x1 --smoothing-sigmas 3x2x1x0vox "
    "--transform SyN[0.1,3,0] --metric CC[f.nii.gz,m.nii.gz,1,4] "
    "--convergence [100x70x50x20,1e-6,10] --shrink-factors 8x4x2x1 --smoothing-sigmas 3x2x1x0vox "
    "--random-seed 7"
)
# antsRegistrationSyNQuick.sh -t s: MI (32 bins) for SyN, last level of every stage skipped (0 iterations)
SYNQUICK_SCRIPT = (
    SYN_SCRIPT.replace("[1000x500x250x100,1e-6,10]", "[1000x500x250x0,1e-6,10]")
    .replace("CC[f.nii.gz,m.nii.gz,1,4]", "MI[f.nii.gz,m.nii.gz,1,32]")
    .replace("[100x70x50x20,1e-6,10]", "[100x70x50x0,1e-6,10]")
)


def test_preset_arguments_are_those_of_the_ants_scripts():
    assert antsregistration_arguments("syn", "f.nii.gz", "m.nii.gz", "out_", 7) == SYN_SCRIPT.split()
    assert antsregistration_arguments("synquick", "f.nii.gz", "m.nii.gz", "out_", 7) == SYNQUICK_SCRIPT.split()
    affine = antsregistration_arguments("affine", "f.nii.gz", "m.nii.gz", "out_", 7)
    assert affine == SYN_SCRIPT.split(" --transform SyN")[0].split() + ["--random-seed", "7"]


def test_large_images_use_the_scripts_large_image_schedule():
    assert is_large_image((257, 200, 200)) and not is_large_image((256, 256, 256))
    args = " ".join(antsregistration_arguments("syn", "f.nii.gz", "m.nii.gz", "out_", 1, large_image=True))
    assert args.count("--shrink-factors 12x8x4x2 --smoothing-sigmas 4x3x2x1vox") == 2
    syn_stage = "--convergence [100x100x70x50x20,1e-6,10] --shrink-factors 10x6x4x2x1 --smoothing-sigmas 5x3x2x1x0vox"
    assert syn_stage in args


def test_preset_arguments_refuse_unknown_methods_and_unparsable_paths():
    with pytest.raises(ValueError, match="unknown ANTs preset"):
        antsregistration_arguments("bspline", "f.nii.gz", "m.nii.gz", "out_", 1)
    with pytest.raises(ValueError, match="cannot parse"):
        antsregistration_arguments("syn", "f[1].nii.gz", "m.nii.gz", "out_", 1)
    with pytest.raises(ValueError, match="positive"):
        antsregistration_arguments("syn", "f.nii.gz", "m.nii.gz", "out_", 0)


# ---------------------------------------------------------------- real ANTs runs

def make_pair(folder: Path, voxel_mm: int):
    """Two different real anatomies (SynthSeg label maps 01 and 02) as T1-like images, own native grids."""
    if not LABEL_MAPS.is_dir():
        pytest.skip(f"{LABEL_MAPS} not available")
    from smgic_pydra.synthesis import write_synthetic_subject

    rng = np.random.default_rng(4)
    fixed = write_synthetic_subject(LABEL_MAPS / "training_seg_01.nii.gz", folder, "fixed", rng, downsample=voxel_mm)
    moving = write_synthetic_subject(LABEL_MAPS / "training_seg_02.nii.gz", folder, "moving", rng, downsample=voxel_mm)
    return fixed, moving


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The pair at 4 mm (64^3): synquick and affine take a few seconds each."""
    return make_pair(tmp_path_factory.mktemp("pair"), 4)


def output_paths(folder: Path, method: str):
    from smgic_pydra.worldspace import PairOutputPaths

    return PairOutputPaths(warp=folder / f"{method}_warp.nii.gz", inverse_warp=folder / f"{method}_inverse_warp.nii.gz",
                           warped=folder / f"{method}_warped.nii.gz", warped_labels=folder / f"{method}_labels.nii.gz",
                           jacobian=folder / f"{method}_jacobian.nii.gz", sidecar=folder / f"{method}.json")


def run_method(pair, folder: Path, method: str, seed: int = 1):
    import nibabel as nib

    from smgic_pydra.baselines import baseline_pair
    from smgic_pydra.metrics import dice_from_files, load_label_table

    fixed, moving = pair
    paths = output_paths(folder, method)
    row = baseline_pair(method, nib.load(fixed.t1w), nib.load(moving.t1w), nib.load(moving.labels), nthreads=1,
                        seed=seed, work_dir=folder / f"ants_{method}").write_row(paths)
    dice = dice_from_files(paths.warped_labels, fixed.labels, list(load_label_table())).mean
    return paths, row, dice


@pytest.fixture(scope="module")
def runs(pair, tmp_path_factory):
    pytest.importorskip("ants")
    folder = tmp_path_factory.mktemp("runs")
    return folder, {m: run_method(pair, folder, m) for m in ("identity", "affine", "synquick")}


def test_ants_baselines_improve_dice_in_order(runs):
    _, results = runs
    dice = {m: r[2] for m, r in results.items()}
    assert dice["identity"] < 0.3, dice
    assert dice["affine"] > dice["identity"] + 0.2, dice
    assert dice["synquick"] > dice["affine"] + 0.03, dice


def test_written_warp_applied_by_ants_reproduces_ants_warped_image(pair, runs):
    ants = pytest.importorskip("ants")
    import nibabel as nib

    folder, results = runs
    fixed, moving = pair
    for method in ("affine", "synquick"):
        paths = results[method][0]
        ants_own = ants.image_read(str(folder / f"ants_{method}" / "ants_Warped.nii.gz")).numpy()
        ours_by_ants = ants.apply_transforms(ants.image_read(str(fixed.t1w)), ants.image_read(str(moving.t1w)),
                                             transformlist=[str(paths.warp)]).numpy()
        scale = np.abs(ants_own).max()
        assert np.abs(ours_by_ants - ants_own).max() < 1e-3 * scale, method
        # our own resampler with the same field agrees too, except for a few voxels whose sample point lies
        # within half a voxel outside the moving grid's last voxel centre (ITK still interpolates there)
        ours = np.asarray(nib.load(paths.warped).dataobj)
        assert np.mean(np.abs(ours - ants_own) > 1e-3 * scale) < 1e-4, method


def test_inverse_warp_inverts_the_forward_warp_and_sidecar_records_the_run(pair, runs):
    from smgic_pydra.metrics import folding_stats_from_file, inverse_consistency_from_files

    _, results = runs
    fixed, _ = pair
    for method, limit_mm in (("identity", 1e-12), ("affine", 0.05), ("synquick", 1.0)):
        paths, row, _ = results[method]
        ic = inverse_consistency_from_files(paths.warp, paths.inverse_warp, fixed.mask)
        assert ic.mean_mm < limit_mm, (method, ic)
        assert folding_stats_from_file(paths.warp, fixed.mask).percent_folded < 0.1
        meta = json.loads(Path(paths.sidecar).read_text())
        assert meta["method"] == method and meta["threads"] == 1 and meta["random_seed"] == 1
        assert meta["forward_seconds"] == row["forward_seconds"] and row["total_seconds"] >= row["forward_seconds"]
        assert set(meta["files"]) == {"warp", "inverse_warp", "warped", "warped_labels", "jacobian"}
    args = json.loads(Path(results["synquick"][0].sidecar).read_text())["parameters"]["antsRegistration_arguments"]
    assert args == antsregistration_arguments("synquick", "fixed.nii.gz", "moving.nii.gz", "ants_", 1)


def test_same_seed_same_result(pair, runs, tmp_path, monkeypatch):
    """With one thread and the same seed, ANTs gives the same field, even after ITK already ran in this
    process with another thread count (ITK reads its thread count once per process)."""
    ants = pytest.importorskip("ants")
    from smgic_pydra.io.itk_warp import read_itk_displacement

    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
    ants.smooth_image(ants.image_read(str(pair[0].t1w)), 1.0)  # ITK in this process, two threads
    folder, results = runs
    paths, _, _ = run_method(pair, tmp_path, "synquick", seed=1)
    first, _ = read_itk_displacement(results["synquick"][0].warp)
    again, _ = read_itk_displacement(paths.warp)
    np.testing.assert_array_equal(first, again)


@pytest.mark.slow
def test_syn_beats_affine(tmp_path):
    """At 6 mm (43^3) SyN (CC radius 4, double precision) takes ~40 s on one thread."""
    pytest.importorskip("ants")
    small = make_pair(tmp_path, 6)
    affine_dice = run_method(small, tmp_path, "affine")[2]
    _, row, syn_dice = run_method(small, tmp_path, "syn")
    assert syn_dice > affine_dice + 0.03, (syn_dice, affine_dice)
    assert row["forward_seconds"] > 0
