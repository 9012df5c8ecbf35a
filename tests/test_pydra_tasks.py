"""The per-step Pydra tasks on the 3 mm Colin27 example data, against independent references: ANTsPy
(``ants.apply_transforms``), ANTs' own antsApplyTransforms program, SimpleITK (transforms, label
overlap), closed-form fields written with nibabel, and bad input named in one error."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.io.errors import InputError
from smgic_pydra.tasks import (ANTsRegistration, ApplyWarp, BrainMask, FireANTsRegistration, InverseConsistency,
                               JacobianFolding, LabelDice, PrepareSubject, SMGICNetRegistration)

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")
LPS = np.diag([-1.0, -1.0, 1.0])


def example_files(bids: Path, subject: str) -> dict:
    """The example subject's files: raw T1w (with skull), preprocessed T1w, brain mask, AAL labels."""
    deriv = bids / "derivatives" / "smriprep" / subject / "anat"
    return {"raw": str(bids / subject / "anat" / f"{subject}_T1w.nii.gz"),
            "t1w": str(deriv / f"{subject}_desc-preproc_T1w.nii.gz"),
            "mask": str(deriv / f"{subject}_desc-brain_mask.nii.gz"), "labels": str(deriv / f"{subject}_dseg.nii.gz")}


@pytest.fixture(scope="module")
def example(tmp_path_factory, write_small_model):
    """Two example subjects at 3 mm, a small model and SM-GICNet's registration of sub-02 to sub-01."""
    root = tmp_path_factory.mktemp("pydra-tasks")
    bids = make_example_dataset(root / "bids", n_subjects=2, seed=2, voxel_mm=3.0)
    fixed, moving = example_files(bids, "sub-01"), example_files(bids, "sub-02")
    model = str(write_small_model(root / "models"))
    reg = SMGICNetRegistration(fixed_image=fixed["t1w"], moving_image=moving["t1w"], fixed_mask=fixed["mask"],
                               moving_mask=moving["mask"], model=model, refine=2)(cache_root=root / "cache")
    return {"root": root, "fixed": fixed, "moving": moving, "model": model, "reg": reg, "cache": root / "cache"}


def test_smgicnet_registration_files_agree_with_simpleitk_and_antspy(example):
    """The .mat and the .h5 read by SimpleITK map points as the 5-D warp does; ANTsPy's apply_transforms of the
    forward warp gives the warped image; the sidecar records the settings."""
    import SimpleITK as sitk

    reg, fixed = example["reg"], example["fixed"]
    warp = nib.load(reg.forward_warp)
    fixed_img = nib.load(fixed["t1w"])
    assert warp.shape == fixed_img.shape + (1, 3) and np.allclose(warp.affine, fixed_img.affine)
    assert nib.load(reg.inverse_warp).shape == nib.load(example["moving"]["t1w"]).shape + (1, 3)
    u_lps = np.asarray(warp.dataobj)[:, :, :, 0, :].astype(np.float64)
    composite = sitk.ReadTransform(str(reg.composite_transform))
    rng = np.random.default_rng(0)
    brain = np.argwhere(np.asarray(nib.load(fixed["mask"]).dataobj) > 0)
    for ijk in brain[rng.choice(len(brain), 20, replace=False)]:
        x_lps = LPS @ (warp.affine[:3, :3] @ ijk + warp.affine[:3, 3])
        assert np.allclose(composite.TransformPoint(tuple(x_lps)), x_lps + u_lps[tuple(ijk)], atol=1e-3)
    sidecar = json.loads(Path(reg.sidecar).read_text())
    assert sidecar["method"] == "smgicnet" and sidecar["method_options"]["refine"] == 2
    assert sidecar["model"]["weights_sha256"] and reg.forward_seconds > 0
    affine = sitk.ReadTransform(str(reg.affine_transform))  # the affine stage alone: LPS, fixed -> moving, centre 0
    ras = np.asarray(sidecar["affine"]["matrix_fixed_to_moving_ras"])
    x_ras = np.array([10.0, -20.0, 30.0])
    moved = LPS @ np.asarray(affine.TransformPoint(tuple(LPS @ x_ras)))
    np.testing.assert_allclose(moved, ras[:3, :3] @ x_ras + ras[:3, 3], atol=1e-4)
    import ants

    masked = ants.image_read(example["moving"]["t1w"]) * ants.image_read(example["moving"]["mask"])
    by_ants = ants.apply_transforms(ants.image_read(fixed["t1w"]), masked, [str(reg.forward_warp)]).numpy()
    ours = np.asarray(nib.load(reg.warped_image).dataobj)
    assert np.mean(np.abs(ours - by_ants) > 1e-4 * np.abs(by_ants).max()) < 1e-3


def test_apply_warp_equals_ants_apply_transforms(example):
    """ApplyWarp of the forward warp = ANTsPy's apply_transforms: labels voxel for voxel (genericLabel), the
    image within interpolation round-off (linear)."""
    import ants

    reg, fixed, moving = example["reg"], example["fixed"], example["moving"]
    reference = ants.image_read(fixed["t1w"])
    labels = ApplyWarp(input_image=moving["labels"], reference_image=fixed["t1w"], transforms=[reg.forward_warp],
                       interpolation="genericLabel")(cache_root=example["cache"])
    by_ants = ants.apply_transforms(reference, ants.image_read(moving["labels"]), [str(reg.forward_warp)],
                                    interpolator="genericLabel").numpy()
    ours = np.asarray(nib.load(labels.output_image).dataobj)
    assert ours.dtype == np.int32 and len(np.unique(ours)) > 50
    np.testing.assert_array_equal(ours, by_ants)
    image = ApplyWarp(input_image=moving["t1w"], reference_image=fixed["t1w"], transforms=[reg.forward_warp])(
        cache_root=example["cache"])
    by_ants = ants.apply_transforms(reference, ants.image_read(moving["t1w"]), [str(reg.forward_warp)]).numpy()
    ours = np.asarray(nib.load(image.output_image).dataobj)
    scale = np.abs(by_ants).max()
    assert np.mean(np.abs(ours - by_ants) > 1e-4 * scale) < 1e-3


def test_apply_warp_composes_warps_in_ants_order(example, tmp_path):
    """Two translations written with nibabel (5-D, LPS), applied as ANTs does (last listed first): ANTsPy agrees."""
    import ants

    fixed, moving = example["fixed"], example["moving"]
    ref = nib.load(fixed["t1w"])
    warps = []
    for k, shift in enumerate(([3.0, 0.0, 0.0], [0.0, -4.5, 1.5])):
        data = np.broadcast_to(np.asarray(shift, np.float32), ref.shape + (1, 3)).copy()
        img = nib.Nifti1Image(data, ref.affine)
        img.header.set_intent("vector")
        warps.append(str(tmp_path / f"shift{k}.nii.gz"))
        nib.save(img, warps[-1])
    out = ApplyWarp(input_image=moving["labels"], reference_image=fixed["t1w"], transforms=warps,
                    interpolation="nearestNeighbor")(cache_root=tmp_path / "cache")
    by_ants = ants.apply_transforms(ants.image_read(fixed["t1w"]), ants.image_read(moving["labels"]), warps,
                                    interpolator="nearestNeighbor").numpy()
    ours = np.asarray(nib.load(out.output_image).dataobj)
    assert np.mean(ours == by_ants) > 0.999  # nearest neighbour: ties at exact half voxels may differ


def test_label_dice_equals_simpleitk_label_overlap(example):
    import SimpleITK as sitk

    reg, fixed, moving = example["reg"], example["fixed"], example["moving"]
    warped = ApplyWarp(input_image=moving["labels"], reference_image=fixed["t1w"], transforms=[reg.forward_warp],
                       interpolation="genericLabel")(cache_root=example["cache"]).output_image
    out = LabelDice(reference_labels=fixed["labels"], warped_labels=warped)(cache_root=example["cache"])
    table = np.genfromtxt(out.table, names=True, delimiter="\t")
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    ref_img = sitk.ReadImage(fixed["labels"], sitk.sitkInt32)
    wrp_img = sitk.ReadImage(str(warped), sitk.sitkInt32)
    wrp_img.CopyInformation(ref_img)
    overlap.Execute(ref_img, wrp_img)
    present = [int(v) for v in table["label"]]
    reference = np.asarray(nib.load(fixed["labels"]).dataobj)
    assert present == np.unique(reference[reference > 0]).tolist()
    expected = [overlap.GetDiceCoefficient(v) for v in present]
    np.testing.assert_allclose(table["dice"], expected, atol=1e-6)
    assert out.mean_dice == pytest.approx(np.mean(expected), abs=1e-6)
    two = LabelDice(reference_labels=fixed["labels"], warped_labels=warped, labels=present[:2])(
        cache_root=example["cache"])
    assert two.mean_dice == pytest.approx(np.mean(expected[:2]), abs=1e-6)


def _affine_warp(path, ref, matrix, shift) -> str:
    """A 5-D LPS warp (nibabel) of ``phi(x) = M x + t`` (RAS mm) on ``ref``'s grid."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in ref.shape[:3]], indexing="ij"), -1).astype(np.float64)
    x = ijk @ ref.affine[:3, :3].T + ref.affine[:3, 3]
    u = x @ (np.asarray(matrix) - np.eye(3)).T + np.asarray(shift)
    img = nib.Nifti1Image((u @ LPS).astype(np.float32)[:, :, :, None, :], ref.affine)
    img.header.set_intent("vector")
    nib.save(img, path)
    return str(path)


def test_jacobian_and_inverse_consistency_have_closed_forms(example, tmp_path):
    """phi(x) = M x + t: det J = det M everywhere (a reflection folds every voxel); a forward translation t and an
    inverse -t + e: inverse-consistency error |e| at every voxel."""
    fixed = example["fixed"]
    ref = nib.load(fixed["t1w"])
    matrix = np.array([[1.1, 0.05, 0.0], [0.0, 0.9, 0.1], [0.02, 0.0, 1.05]])
    out = JacobianFolding(warp=_affine_warp(tmp_path / "a.nii.gz", ref, matrix, [1, 2, 3]), mask=fixed["mask"])(
        cache_root=tmp_path / "cache")
    det = np.asarray(nib.load(out.jacobian).dataobj)
    np.testing.assert_allclose(det, np.linalg.det(matrix), rtol=1e-5)
    assert out.folding_percent == 0.0 and out.log_jacobian_std < 1e-5
    flip = JacobianFolding(warp=_affine_warp(tmp_path / "f.nii.gz", ref, np.diag([-1.0, 1, 1]), [0, 0, 0]))(
        cache_root=tmp_path / "cache")
    assert flip.folding_percent == 100.0
    moving = nib.load(example["moving"]["t1w"])
    error = np.array([0.3, -0.4, 1.2])
    forward = _affine_warp(tmp_path / "t.nii.gz", ref, np.eye(3), [2.0, -1.0, 0.5])
    inverse = _affine_warp(tmp_path / "i.nii.gz", moving, np.eye(3), np.array([-2.0, 1.0, -0.5]) + error)
    ic = InverseConsistency(forward_warp=forward, inverse_warp=inverse, mask=fixed["mask"])(
        cache_root=tmp_path / "cache")
    assert ic.mean_mm == pytest.approx(np.linalg.norm(error), abs=1e-5)
    assert ic.p95_mm == pytest.approx(np.linalg.norm(error), abs=1e-5)


def test_prepare_subject_accepts_nii_and_brain_mask_matches_the_ground_truth(example, tmp_path):
    """.nii input (as .nii.gz); deepbet's mask of the raw head against the example's ground-truth brain mask."""
    from smgic_pydra.preparation import PreparedSubject

    fixed = example["fixed"]
    plain = tmp_path / "t1w.nii"
    nib.save(nib.load(fixed["t1w"]), plain)
    out = PrepareSubject(t1w=plain, mask=fixed["mask"], labels=fixed["labels"], subject_id="sub-01",
                         model=example["model"])(cache_root=tmp_path / "cache")
    prepared = PreparedSubject.load(out.prepared)
    assert prepared.grid_shape == (32, 32, 32) and prepared.labels is not None and prepared.subject_id == "sub-01"
    np.testing.assert_array_equal(prepared.native_mask, np.asarray(nib.load(fixed["mask"]).dataobj) > 0)
    pytest.importorskip("deepbet")
    mask = BrainMask(t1w=fixed["raw"])(cache_root=tmp_path / "cache").mask
    ours, truth = (np.asarray(nib.load(p).dataobj) > 0 for p in (mask, fixed["mask"]))
    assert nib.load(mask).shape == nib.load(fixed["raw"]).shape
    assert 2 * np.count_nonzero(ours & truth) / (ours.sum() + truth.sum()) > 0.95


@pytest.mark.slow
def test_ants_registration_affine_preset_warp_is_antspy_applicable(example, tmp_path):
    """ANTsRegistration(affine): the warped image is ANTsPy's apply_transforms of its forward warp."""
    import ants

    fixed, moving = example["fixed"], example["moving"]
    reg = ANTsRegistration(fixed_image=fixed["t1w"], moving_image=moving["t1w"], fixed_mask=fixed["mask"],
                           moving_mask=moving["mask"], preset="affine")(cache_root=tmp_path / "cache")
    assert reg.affine_transform is None and json.loads(Path(reg.sidecar).read_text())["method"] == "affine"
    masked = ants.image_read(moving["t1w"]) * ants.image_read(moving["mask"])
    by_ants = ants.apply_transforms(ants.image_read(fixed["t1w"]), masked, [str(reg.forward_warp)]).numpy()
    ours = np.asarray(nib.load(reg.warped_image).dataobj)
    assert np.mean(np.abs(ours - by_ants) > 1e-3 * np.abs(by_ants).max()) < 1e-3
    warped_labels = ApplyWarp(input_image=moving["labels"], reference_image=fixed["t1w"], transforms=[reg.forward_warp],
                              interpolation="genericLabel")(cache_root=tmp_path / "cache").output_image
    dice = LabelDice(reference_labels=fixed["labels"], warped_labels=warped_labels)(cache_root=tmp_path / "cache")
    assert dice.mean_dice > 0.4


def test_bad_inputs_are_one_error_naming_the_file(example, tmp_path):
    fixed, moving = example["fixed"], example["moving"]
    missing = tmp_path / "missing_T1w.nii.gz"
    with pytest.raises(Exception, match=str(missing)):
        SMGICNetRegistration(fixed_image=missing, moving_image=moving["t1w"])
    four_d = tmp_path / "four_d.nii.gz"
    data = np.asarray(nib.load(fixed["t1w"]).dataobj)
    nib.save(nib.Nifti1Image(np.stack([data, data], -1), nib.load(fixed["t1w"]).affine), four_d)
    with pytest.raises(InputError, match=f"{four_d}: expected a 3-D volume"):
        PrepareSubject(t1w=four_d, model=example["model"])(cache_root=tmp_path / "cache")
    outside = tmp_path / "outside_mask.nii.gz"
    ref = nib.load(fixed["t1w"])
    corner = np.zeros(ref.shape, np.uint8)
    corner[:2, :2, :2] = 1
    nib.save(nib.Nifti1Image(corner, ref.affine), outside)
    with pytest.raises(InputError, match=f"{outside}: the mask does not overlap"):
        SMGICNetRegistration(fixed_image=fixed["t1w"], moving_image=moving["t1w"], fixed_mask=outside,
                             model=example["model"])(cache_root=tmp_path / "cache")
    with pytest.raises(InputError, match=f"{moving['labels']}: grid shape"):
        LabelDice(reference_labels=fixed["labels"], warped_labels=moving["labels"])(cache_root=tmp_path / "cache")
    with pytest.raises(InputError, match=f"{fixed['t1w']}: not an ITK displacement field"):
        JacobianFolding(warp=fixed["t1w"])(cache_root=tmp_path / "cache")
    with pytest.raises(ValueError, match="interpolation"):
        ApplyWarp(input_image=moving["labels"], reference_image=fixed["t1w"], transforms=[fixed["t1w"]],
                  interpolation="cubic")


@pytest.mark.slow
def test_fireants_registration_task_options_and_warp(example, tmp_path):
    """FireANTsRegistration with few iterations: the options reach the sidecar and ANTsPy's apply_transforms of the
    forward warp gives the warped image."""
    import ants

    pytest.importorskip("fireants")
    fixed, moving = example["fixed"], example["moving"]
    options = {"scales": [4, 2], "affine_iterations": [30, 10], "greedy_iterations": [30, 10]}
    reg = FireANTsRegistration(fixed_image=fixed["t1w"], moving_image=moving["t1w"], fixed_mask=fixed["mask"],
                               moving_mask=moving["mask"], options=options)(cache_root=tmp_path / "cache")
    sidecar = json.loads(Path(reg.sidecar).read_text())
    assert sidecar["method"] == "fireants" and sidecar["parameters"]["greedy_iterations"] == [30, 10]
    masked = ants.image_read(moving["t1w"]) * ants.image_read(moving["mask"])
    by_ants = ants.apply_transforms(ants.image_read(fixed["t1w"]), masked, [str(reg.forward_warp)]).numpy()
    ours = np.asarray(nib.load(reg.warped_image).dataobj)
    assert np.mean(np.abs(ours - by_ants) > 1e-3 * np.abs(by_ants).max()) < 1e-3
    with pytest.raises(ValueError, match="preset"):
        ANTsRegistration(fixed_image=fixed["t1w"], moving_image=moving["t1w"], preset="smgicnet")


def test_quality_fast_is_the_network_alone_in_pydra_and_nipype(example, tmp_path):
    """quality="fast" (the Pydra task and the Nipype interface): the sidecar records refine 0, the auto grid and the coarse affine,
    and no refinement ran; the warps are real deformations (ANTs reads them: mean displacement > 1 mm)."""
    import ants
    from nipype.interfaces.base import isdefined

    from smgic_pydra.interfaces import PrepareSubject as NipypePrepare
    from smgic_pydra.interfaces import SMGICNetRegistration as NipypeSMGICNet

    fixed, moving, model = example["fixed"], example["moving"], example["model"]
    fast = SMGICNetRegistration(fixed_image=fixed["t1w"], moving_image=moving["t1w"], fixed_mask=fixed["mask"],
                                moving_mask=moving["mask"], model=model, quality="fast")(cache_root=example["cache"])
    prepared = {}
    for name, files in (("fixed", fixed), ("moving", moving)):
        (tmp_path / name).mkdir()
        node = NipypePrepare(model=model, t1w=files["t1w"], mask=files["mask"], subject_id=f"sub-{name}")
        prepared[name] = node.run(cwd=str(tmp_path / name)).outputs.prepared_dir
    (tmp_path / "register").mkdir()
    nipype = NipypeSMGICNet(fixed_dir=prepared["fixed"], moving_dir=prepared["moving"], model=model, quality="fast")
    result = nipype.run(cwd=str(tmp_path / "register")).outputs
    assert isdefined(result.warp)
    for sidecar_path, warp in ((fast.sidecar, fast.forward_warp), (result.sidecar, result.warp)):
        sidecar = json.loads(Path(sidecar_path).read_text())
        assert sidecar["method_options"]["refine"] == 0 and sidecar["method_options"]["network_grid"] == "auto"
        assert sidecar["method_options"]["affine_fine"] is False
        assert sidecar["refine_seconds"] == 0.0 and sidecar["refinement"]["loss_before"] is None
        field = ants.image_read(str(warp)).numpy()
        assert np.linalg.norm(field.reshape(-1, 3), axis=1).mean() > 1.0
