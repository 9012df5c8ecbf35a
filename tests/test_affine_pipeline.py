"""SM-GICNet's pipeline (symmetric affine -> network -> refinement) against independent references:
ANTsPy applying our files, SimpleITK Jacobians, scipy sampling, closed-form affines."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.spatial.transform import Rotation

from smgic_pydra.inference import load_model, smgicnet_pair
from smgic_pydra.io.itk_affine import write_itk_affine_mat
from smgic_pydra.pipeline_settings import PipelineSettings, RefineSettings
from smgic_pydra.preparation import prepare_subject
from smgic_pydra.synthesis import write_synthetic_subject
from smgic_pydra.worldspace import PairOutputPaths

LABEL_MAPS = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthseg_label_maps"
NETWORK_ONLY = PipelineSettings(affine=False, refine=RefineSettings(steps=0))


def _known_affine(degrees=(30.0, -12.0, 8.0), shift=(40.0, -25.0, 15.0), scale=1.05) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = scale * Rotation.from_euler("xyz", degrees, degrees=True).as_matrix()
    a[:3, 3] = shift
    return a


def _paths(folder, name) -> PairOutputPaths:
    folder.mkdir(parents=True, exist_ok=True)
    return PairOutputPaths(warp=folder / f"{name}_warp.nii.gz", inverse_warp=folder / f"{name}_inv.nii.gz",
                           warped=folder / f"{name}_warped.nii.gz", warped_labels=folder / f"{name}_labels.nii.gz",
                           jacobian=folder / f"{name}_jac.nii.gz", sidecar=folder / f"{name}.json",
                           warp_h5=folder / f"{name}_warp.h5", affine=folder / f"{name}_affine.mat")


def test_itk_affine_mat_is_read_by_ants_as_the_same_point_map(tmp_path):
    ants = pytest.importorskip("ants")
    a = _known_affine()
    path = write_itk_affine_mat(tmp_path / "a.mat", a)
    transform = ants.read_transform(str(path))
    for ras in ([0.0, 0.0, 0.0], [10.0, -20.0, 35.0], [-60.0, 44.0, -7.0]):
        lps = np.array(ras) * [-1, -1, 1]
        expected = (a[:3, :3] @ ras + a[:3, 3]) * [-1, -1, 1]
        np.testing.assert_allclose(transform.apply_to_point(tuple(lps)), expected, atol=1e-4)  # ANTsPy: float32 points


# ------------------------------------------------------------------------------------ real anatomy
@pytest.fixture(scope="module")
def anatomy(tmp_path_factory):
    """Subjects from real label maps (13 and 14, held out of the default model's training) at 2 mm,
    and a copy of 13 moved by a known affine (header change: the brain moves in world space)."""
    if not (LABEL_MAPS / "training_seg_13.nii.gz").is_file():
        pytest.skip("../shared/data/synthseg_label_maps not available")
    root = tmp_path_factory.mktemp("anatomy")
    rng = np.random.default_rng(3)
    subjects = {k: write_synthetic_subject(LABEL_MAPS / f"training_seg_{k}.nii.gz", root / "subjects", f"s{k}", rng,
                                           downsample=2) for k in (13, 14)}
    known = _known_affine()
    moved = {}
    for role in ("t1w", "labels", "mask"):
        img = nib.load(getattr(subjects[13], role))
        moved[role] = root / "subjects" / f"moved_{role}.nii.gz"
        nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), known @ img.affine), moved[role])
    bundle = load_model(None)
    prepared = {f"s{k}": prepare_subject(s.t1w, root / "prep" / f"s{k}", bundle.cfg, mask_path=s.mask,
                                         labels_path=s.labels, subject_id=f"s{k}") for k, s in subjects.items()}
    prepared["moved"] = prepare_subject(moved["t1w"], root / "prep" / "moved", bundle.cfg, mask_path=moved["mask"],
                                        labels_path=moved["labels"], subject_id="moved")
    return {"root": root, "bundle": bundle, "prepared": prepared, "subjects": subjects, "known": known}


@pytest.mark.slow
def test_known_affine_is_recovered_as_ants_applies_our_warps(anatomy):
    """Fixed s13, moving = s13 moved by a 30-degree, 40 mm, 5 % scale affine: ANTsPy applying our
    forward warp (one file), our composite .h5 and our affine .mat maps each brain voxel within 1 mm
    of where the known affine puts it."""
    ants = pytest.importorskip("ants")
    root, known = anatomy["root"], anatomy["known"]
    paths = _paths(root / "out_known", "known")
    smgicnet_pair(anatomy["bundle"], anatomy["prepared"]["s13"], anatomy["prepared"]["moved"]).write_row(paths)
    fixed_img = nib.load(anatomy["subjects"][13].t1w)
    brain = np.asarray(nib.load(anatomy["subjects"][13].mask).dataobj) > 0
    ijk = np.indices(fixed_img.shape).reshape(3, -1)
    world = (fixed_img.affine[:3, :3] @ ijk + fixed_img.affine[:3, 3:4]).reshape(3, *fixed_img.shape)
    truth = np.einsum("ab,b...->a...", known[:3, :3], world) + known[:3, 3].reshape(3, 1, 1, 1)
    # coordinate images on the moving grid: value = the RAS mm coordinate of the voxel
    moving_affine = known @ fixed_img.affine
    moving_world = (moving_affine[:3, :3] @ ijk + moving_affine[:3, 3:4]).reshape(3, *fixed_img.shape)
    reference = ants.image_read(str(anatomy["subjects"][13].t1w))

    def ants_mapped(transforms):
        out = []
        for axis in range(3):
            path = root / f"coord{axis}.nii.gz"
            nib.save(nib.Nifti1Image(moving_world[axis].astype(np.float32), moving_affine), path)
            coord = ants.image_read(str(path))
            out.append(ants.apply_transforms(reference, coord, [str(t) for t in transforms],
                                              interpolator="linear").numpy())
        return np.stack(out)

    for transforms, limit in (([paths.warp], 1.0), ([paths.warp_h5], 1.0), ([paths.affine], 1.0)):
        error = np.linalg.norm(ants_mapped(transforms) - truth, axis=0)[brain]
        assert error.mean() < limit, (transforms, error.mean())
        assert np.percentile(error, 95) < 2 * limit, (transforms, np.percentile(error, 95))
    sidecar = json.loads(paths.sidecar.read_text())
    np.testing.assert_allclose(sidecar["affine"]["matrix_fixed_to_moving_ras"], known, atol=0.05 * 20)
    assert sidecar["affine_seconds"] > 0 and sidecar["pipeline"]["affine"] is True


@pytest.fixture(scope="module")
def both_ways(anatomy):
    """s14 -> s13 and s13 -> s14 with the default pipeline, and s14 -> s13 by the network alone."""
    root, bundle, prep = anatomy["root"], anatomy["bundle"], anatomy["prepared"]
    out = {}
    for name, fixed, moving, settings in (("ab", "s13", "s14", PipelineSettings()), ("ba", "s14", "s13", PipelineSettings()),
                                          ("net", "s13", "s14", NETWORK_ONLY)):
        paths = _paths(root / "out_pairs", name)
        out[name] = (paths, smgicnet_pair(bundle, prep[fixed], prep[moving], settings=settings).write_row(paths))
    return out


def _field(path):
    img = nib.load(path)
    return np.asarray(img.dataobj)[:, :, :, 0, :].astype(np.float64) * [-1, -1, 1], img.affine


@pytest.mark.slow
def test_registering_b_to_a_inverts_a_to_b(anatomy, both_ways):
    """phi_BA(phi_AB(x)) = x in A's brain, the fields sampled with scipy (mean < 0.5 mm)."""
    u_ab, aff_a = _field(both_ways["ab"][0].warp)
    u_ba, aff_b = _field(both_ways["ba"][0].warp)
    brain = np.asarray(nib.load(anatomy["subjects"][13].mask).dataobj) > 0
    ijk = np.argwhere(brain).T.astype(np.float64)
    x = aff_a[:3, :3] @ ijk + aff_a[:3, 3:4]
    y = x + u_ab[brain].T
    idx_b = np.linalg.inv(aff_b)[:3, :3] @ y + np.linalg.inv(aff_b)[:3, 3:4]
    back = y + np.stack([ndimage.map_coordinates(u_ba[..., c], idx_b, order=1, mode="nearest") for c in range(3)])
    error = np.linalg.norm(back - x, axis=0)
    assert error.mean() < 0.5, error.mean()


def _dice(a, b):
    labels = [v for v in np.unique(b) if v > 0]
    return np.mean([2 * np.sum((a == v) & (b == v)) / (np.sum(a == v) + np.sum(b == v)) for v in labels])


@pytest.mark.slow
def test_refinement_lowers_the_loss_keeps_the_map_unfolded_and_helps_dice(anatomy, both_ways):
    ants = pytest.importorskip("ants")
    fixed_labels = np.asarray(nib.load(anatomy["subjects"][13].labels).dataobj)
    brain = np.asarray(nib.load(anatomy["subjects"][13].mask).dataobj) > 0
    refined = json.loads(both_ways["ab"][0].sidecar.read_text())["refinement"]
    assert refined["settings"]["steps"] > 0 and refined["loss_after"] < refined["loss_before"]
    dice = {}
    for name in ("ab", "net"):
        paths = both_ways[name][0]
        domain = ants.image_read(str(anatomy["subjects"][13].t1w))
        det = ants.create_jacobian_determinant_image(domain, str(paths.warp), do_log=False).numpy()
        # folding below the 0.05 % target of the brain (ANTs' determinant of our warp file)
        assert np.count_nonzero(det[brain] <= 0) <= 0.0005 * brain.sum(), (name, np.count_nonzero(det[brain] <= 0))
        dice[name] = _dice(np.asarray(nib.load(paths.warped_labels).dataobj), fixed_labels)
    assert dice["ab"] > dice["net"], dice


def _unfolded_variant_and_dice(anatomy, both_ways, name, settings):
    """s14 -> s13 with ``settings``: asserts ANTs' Jacobian of the warp file folds < 0.05 % of the brain; returns
    the sidecar and Dice (numpy, on the written labels) of the variant and of the default pipeline's pair."""
    ants = pytest.importorskip("ants")
    paths = _paths(anatomy["root"] / f"out_{name}", name)
    prep = anatomy["prepared"]
    smgicnet_pair(anatomy["bundle"], prep["s13"], prep["s14"], settings=settings).write_row(paths)
    brain = np.asarray(nib.load(anatomy["subjects"][13].mask).dataobj) > 0
    det = ants.create_jacobian_determinant_image(ants.image_read(str(anatomy["subjects"][13].t1w)), str(paths.warp),
                                                 do_log=False).numpy()
    assert np.count_nonzero(det[brain] <= 0) <= 0.0005 * brain.sum()
    fixed_labels = np.asarray(nib.load(anatomy["subjects"][13].labels).dataobj)
    dice = [_dice(np.asarray(nib.load(p.warped_labels).dataobj), fixed_labels) for p in (paths, both_ways["ab"][0])]
    return json.loads(paths.sidecar.read_text()), *dice


@pytest.mark.slow
def test_network_on_half_grid_registers_as_well_and_stays_unfolded(anatomy, both_ways):
    """network_grid=half (the cascade up to level 3, 64^3 at 3 mm): the sidecar says so, ANTs' Jacobian of the
    warp file folds < 0.05 % of the brain, and Dice is within 0.03 of the full grid's (same pair, default pipeline)."""
    sidecar, half, full = _unfolded_variant_and_dice(anatomy, both_ways, "half", PipelineSettings(network_grid="half"))
    assert sidecar["network_level"] == 3 and sidecar["network_grid_shape"] == [64, 64, 64]
    assert sidecar["threads"] == torch.get_num_threads()
    assert json.loads(both_ways["ab"][0].sidecar.read_text())["network_level"] == 4  # the default grid: full
    assert abs(half - full) < 0.03, (half, full)


@pytest.mark.slow
def test_fine_refinement_stage_raises_dice_and_every_stage_lowers_its_objective(anatomy, both_ways):
    """The default's refinement runs three stages (6, 3 and 1.5 mm grids): its sidecar records each stage's
    objective before and after, each lower after; without the fine stage (``refine_fine_steps=0``) ANTs' Jacobian
    of the warp file still folds < 0.05 % of the brain and Dice (numpy, on the written labels) is below the
    default's on the same pair."""
    settings = PipelineSettings.from_options({"refine_fine_steps": 0})
    sidecar, coarse_only, default = _unfolded_variant_and_dice(anatomy, both_ways, "nofine", settings)
    assert "loss_before_fine" not in sidecar["refinement"] and sidecar["refinement"]["settings"]["fine_steps"] == 0
    refined = json.loads(both_ways["ab"][0].sidecar.read_text())["refinement"]
    assert [refined["settings"][k] for k in ("pre_steps", "steps", "fine_steps")] == [8, 12, 4]
    for stage in ("_pre", "", "_fine"):
        assert refined[f"loss_after{stage}"] < refined[f"loss_before{stage}"], stage
    assert default > coarse_only, (default, coarse_only)
