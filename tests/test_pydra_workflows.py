"""Workflow factories over the per-step tasks: the pair workflow gives the cohort engine's tile path's warps and
metrics; ANTs' own antsApplyTransforms, as a Pydra shell task in the same workflow, reproduces our ApplyWarp."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydra.compose import shell, workflow

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.tasks import ApplyWarp, SMGICNetRegistration
from smgic_pydra.tasks.filetypes import Directory, Image, NiftiGz

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")
SUBJECTS = ("sub-01", "sub-02", "sub-03")


def _files(bids: Path, subject: str) -> dict:
    deriv = bids / "derivatives" / "smriprep" / subject / "anat"
    return {"t1w": str(deriv / f"{subject}_desc-preproc_T1w.nii.gz"),
            "mask": str(deriv / f"{subject}_desc-brain_mask.nii.gz"), "labels": str(deriv / f"{subject}_dseg.nii.gz")}


@pytest.fixture(scope="module")
def example(tmp_path_factory, write_small_model):
    root = tmp_path_factory.mktemp("pydra-workflows")
    bids = make_example_dataset(root / "bids", n_subjects=3, seed=2, voxel_mm=3.0)
    return {"bids": bids, "files": {s: _files(bids, s) for s in SUBJECTS}, "model": str(write_small_model(root / "m")),
            "labels_table": str(bids / "derivatives" / "smriprep" / "dseg.tsv")}


def test_pair_workflow_gives_the_tile_paths_warps_and_metrics(example, tmp_path):
    """init_pair_wf and RegisterTile (run_tile) on one pair, same model and options: the warps are equal bit for
    bit (the same runner on the same prepared arrays; the files store float32) and so are the metrics."""
    from pydra.engine.submitter import Submitter

    from smgic_pydra.bids.derivatives import pair_output_paths
    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.io.itk_warp import read_itk_displacement
    from smgic_pydra.metrics.labels import load_label_table
    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.reports.tiles import read_pairs_tables
    from smgic_pydra.tasks import RegisterTile
    from smgic_pydra.workflows.pair import init_pair_wf

    files, model = example["files"], example["model"]
    fixed, moving = files["sub-01"], files["sub-02"]
    table = list(load_label_table(example["labels_table"]))
    out = init_pair_wf("smgicnet", model=model, options={"refine": 2}, labels=table)(
        fixed_image=fixed["t1w"], moving_image=moving["t1w"], fixed_mask=fixed["mask"], moving_mask=moving["mask"],
        fixed_labels=fixed["labels"], moving_labels=moving["labels"])(cache_root=tmp_path / "cache")

    cfg = SMGICNetConfig.from_json((Path(model) / "config.json").read_text())
    dirs = [str(prepare_subject(files[s]["t1w"], tmp_path / "prep" / s, cfg, mask_path=files[s]["mask"],
                                labels_path=files[s]["labels"], subject_id=s).folder) for s in ("sub-01", "sub-02")]
    tile = {"id": "t0", "fixed": ["sub-01"], "moving": ["sub-02"], "pairs": np.array([[0, 0]], dtype=np.int32)}
    task = RegisterTile(tile=tile, subjects=["sub-01", "sub-02"], prepared_dirs=dirs, preparation_errors=["", ""],
                        inputs={"sub-01": {}, "sub-02": {}}, settings={}, output_dir=str(tmp_path / "tile"),
                        journal_dir=str(tmp_path / "journal"), method="smgicnet", options={"refine": 2}, model=model,
                        omp_nthreads=1, outputs="warps", labels_table=example["labels_table"])
    with Submitter(worker="debug", cache_root=tmp_path / "cache-tile") as sub:
        result = sub(task)
    assert not result.errored
    (row,) = read_pairs_tables([result.outputs.summary["pairs_file"]]).to_dict("records")
    assert row["error"] == ""
    paths = pair_output_paths(tmp_path / "tile", "sub-02", "sub-01", "smgicnet")
    for ours, theirs in ((out.forward_warp, paths.warp), (out.inverse_warp, paths.inverse_warp)):
        (a, a_affine), (b, b_affine) = read_itk_displacement(ours), read_itk_displacement(theirs)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a_affine, b_affine)
    assert out.mean_dice == row["dice_mean"] and 0 < out.mean_dice < 1
    assert out.hd95_mm == row["hd95_mm"] and out.hd95_mm > 0
    assert out.folding_percent == row["folding_percent"]
    assert out.log_jacobian_std == row["log_jacobian_std"]
    assert out.inverse_consistency_mm == row["inverse_consistency_mm"]


def _ants_apply_transforms():
    """antsApplyTransforms (ANTs' own program) as a Pydra 1.0 shell task."""
    return shell.define(
        "antsApplyTransforms -d <dimensionality:int> -i <input_image:medimage/nifti-gz> "
        "-r <reference_image:medimage/nifti-gz> -t <transform:medimage/nifti-gz> -n <interpolation:str> "
        "-o <out|output_image:medimage/nifti-gz>", name="AntsApplyTransforms")


def test_ants_apply_transforms_shell_task_reproduces_apply_warp_in_one_workflow(example, tmp_path, ants_tools_on_path):
    """SM-GICNet, then our ApplyWarp and ANTs' antsApplyTransforms side by side on the forward warp, in one Pydra
    workflow: labels identical voxel for voxel (genericLabel = GenericLabel), the image to float round-off."""
    AntsApplyTransforms = _ants_apply_transforms()

    @workflow.define(outputs=["labels", "ants_labels", "image", "ants_image"])
    def Interop(fixed_image: Image, fixed_mask: Image, moving_image: Image, moving_mask: Image, moving_labels: Image,
                model: Directory) -> tuple[NiftiGz, NiftiGz, NiftiGz, NiftiGz]:
        reg = workflow.add(SMGICNetRegistration(fixed_image=fixed_image, moving_image=moving_image,
                                                fixed_mask=fixed_mask, moving_mask=moving_mask, model=model, refine=2),
                           name="register")
        ours = workflow.add(ApplyWarp(input_image=moving_labels, reference_image=fixed_image,
                                      transforms=reg.forward_warp, interpolation="genericLabel"), name="labels")
        theirs = workflow.add(AntsApplyTransforms(dimensionality=3, input_image=moving_labels,
                                                  reference_image=fixed_image, transform=reg.forward_warp,
                                                  interpolation="GenericLabel"), name="ants_labels")
        image = workflow.add(ApplyWarp(input_image=moving_image, reference_image=fixed_image,
                                       transforms=reg.forward_warp), name="image")
        ants_image = workflow.add(AntsApplyTransforms(dimensionality=3, input_image=moving_image,
                                                      reference_image=fixed_image, transform=reg.forward_warp,
                                                      interpolation="Linear"), name="ants_image")
        return ours.output_image, theirs.output_image, image.output_image, ants_image.output_image

    fixed, moving = example["files"]["sub-01"], example["files"]["sub-02"]
    out = Interop(fixed_image=fixed["t1w"], fixed_mask=fixed["mask"], moving_image=moving["t1w"],
                  moving_mask=moving["mask"], moving_labels=moving["labels"], model=example["model"])(
        cache_root=tmp_path / "cache")
    labels, ants_labels = (np.asarray(nib.load(p).dataobj) for p in (out.labels, out.ants_labels))
    assert labels.shape == nib.load(fixed["t1w"]).shape and len(np.unique(labels)) > 50
    np.testing.assert_array_equal(labels, ants_labels)
    image, ants_image = (np.asarray(nib.load(p).dataobj, dtype=np.float64) for p in (out.image, out.ants_image))
    assert np.max(np.abs(image - ants_image)) <= 1e-4 * np.abs(ants_image).max()


def test_to_reference_workflow_brings_the_reference_labels_to_each_subject(example, tmp_path):
    """init_to_reference_wf: per subject, the reference labels on its grid (the inverse warp) and their volumes,
    counted independently here with numpy."""
    from smgic_pydra.workflows.pair import init_to_reference_wf

    files = example["files"]
    ref, others = files["sub-01"], [files[s] for s in ("sub-02", "sub-03")]
    out = init_to_reference_wf("smgicnet", model=example["model"], options={"refine": 0})(
        reference_image=ref["t1w"], reference_mask=ref["mask"], reference_labels=ref["labels"],
        images=[s["t1w"] for s in others], masks=[s["mask"] for s in others])(cache_root=tmp_path / "cache")
    assert len(out.subject_labels) == len(out.volumes) == len(out.inverse_warps) == 2
    for subject, labels, volumes in zip(others, out.subject_labels, out.volumes):
        img = nib.load(labels)
        assert img.shape == nib.load(subject["t1w"]).shape and np.allclose(img.affine, nib.load(subject["t1w"]).affine)
        data = np.asarray(img.dataobj)
        truth = np.asarray(nib.load(subject["labels"]).dataobj)
        overlap = np.mean([2 * np.sum((data == v) & (truth == v)) / (np.sum(data == v) + np.sum(truth == v))
                           for v in np.unique(truth[truth > 0])])
        assert overlap > 0.3  # the atlas labels land on the subject's anatomy (random-init model: the affine does it)
        table = np.genfromtxt(volumes, names=True, delimiter="\t")
        voxel = abs(np.linalg.det(img.affine[:3, :3]))
        for row in table[:5]:
            assert row["voxels"] == np.count_nonzero(data == row["label"])
            assert row["volume_mm3"] == pytest.approx(row["voxels"] * voxel, rel=1e-6)
