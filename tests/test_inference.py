"""Inference end to end on two synthetic subjects in different native spaces."""

import hashlib
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from smgic_pydra.config import small_config
from smgic_pydra.inference import load_model, smgicnet_pair
from smgic_pydra.network import SMGICNet
from smgic_pydra.pipeline_settings import PipelineSettings, RefineSettings
from smgic_pydra.preparation import prepare_subject
from smgic_pydra.worldspace import PairOutputPaths


def _write_subject(folder, name, affine, centre_ras, seed):
    """An ellipsoid 'brain' (outer label 3, inner core 2) defined in world space, centred at ``centre_ras``
    and sampled on a 40^3 grid with ``affine``: the same anatomy in every subject, placed differently."""
    rng = np.random.default_rng(seed)
    ijk = np.indices((40, 40, 40)).reshape(3, -1).astype(float)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4] - np.asarray(centre_ras, float)[:, None]).reshape(3, 40, 40, 40)
    r = np.sqrt((xyz**2 / np.array([28.0, 24.0, 20.0])[:, None, None, None] ** 2).sum(0))
    labels = np.where(r < 1, 3, 0) + np.where(r < 0.5, -1, 0)
    image = np.where(labels == 3, 0.5, 0) + np.where(labels == 2, 0.9, 0) + rng.normal(0, 0.01, labels.shape) * (labels > 0)
    paths = {}
    for role, data in (("t1", image.astype(np.float32)), ("labels", labels.astype(np.int16))):
        paths[role] = folder / f"{name}_{role}.nii.gz"
        nib.save(nib.Nifti1Image(data, affine), paths[role])
    return paths


def _zero_model(folder):
    cfg = small_config()
    net = SMGICNet(cfg)
    for level in net.levels:  # zero velocity heads: the network returns the identity
        for name, p in level.named_parameters():
            if "head" in name:
                torch.nn.init.zeros_(p)
    folder.mkdir()
    save_file(net.state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(cfg.to_json())
    return folder


def test_identity_network_maps_to_centre_translation_and_ants_agrees(tmp_path):
    ants = pytest.importorskip("ants")
    fixed_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    fixed_affine[:3, 3] = [-40, -40, -40]
    moving_affine = np.array([[-2.0, 0, 0, 50], [0, 0, 2.0, -30], [0, -2.0, 0, 45], [0, 0, 0, 1]])  # LIA
    f = _write_subject(tmp_path, "fixed", fixed_affine, (0, 0, 0), 0)
    m = _write_subject(tmp_path, "moving", moving_affine, (6, -4, 8), 1)
    bundle = load_model(_zero_model(tmp_path / "model"))
    assert all(p.abs().sum() == 0 for n, p in bundle.model.named_parameters() if "head" in n)
    cfg = bundle.cfg
    fixed = prepare_subject(f["t1"], tmp_path / "prep_f", cfg, labels_path=f["labels"], subject_id="f")
    moving = prepare_subject(m["t1"], tmp_path / "prep_m", cfg, labels_path=m["labels"], subject_id="m")
    out = tmp_path / "out"
    out.mkdir()
    paths = PairOutputPaths(
        warp=out / "warp.nii.gz", inverse_warp=out / "inv.nii.gz", warped=out / "warped.nii.gz",
        warped_labels=out / "labels.nii.gz", jacobian=out / "jac.nii.gz", sidecar=out / "pair.json",
    )
    # the network alone (no affine stage, no refinement): the closed form below holds exactly
    row = smgicnet_pair(bundle, fixed, moving, settings=PipelineSettings(affine=False, refine=RefineSettings(steps=0))).write_row(paths)
    assert row["forward_seconds"] > 0 and row["total_seconds"] >= row["forward_seconds"]

    # closed form: zero network field = moving grid centre - fixed grid centre (both RAS-aligned grids),
    # which is the world shift of the anatomy (6, -4, 8) mm up to the masks' voxel discretisation
    shift_ras = moving.net_affine[:3, 3] - fixed.net_affine[:3, 3]
    np.testing.assert_allclose(shift_ras, [6, -4, 8], atol=2.0)
    warp = nib.load(paths.warp)
    assert warp.shape == (40, 40, 40, 1, 3) and warp.header.get_intent()[0] == "vector"
    lps = np.asarray(warp.dataobj)[:, :, :, 0, :]
    np.testing.assert_allclose(lps[20, 20, 20], shift_ras * [-1, -1, 1], atol=1e-3)

    # the warped labels land on the fixed labels (same anatomy, only placement differs)
    warped_labels = np.asarray(nib.load(paths.warped_labels).dataobj)
    fixed_labels = np.asarray(nib.load(f["labels"]).dataobj)
    assert (warped_labels == fixed_labels).mean() > 0.97

    # ANTs applies our warp file and gets our warped image
    ants_warped = ants.apply_transforms(
        ants.image_read(str(f["t1"])), ants.image_read(str(m["t1"])), [str(paths.warp)], interpolator="linear"
    ).numpy()
    ours = np.asarray(nib.load(paths.warped).dataobj)
    assert np.abs(ants_warped - ours).max() < 1e-3

    sidecar = json.loads(paths.sidecar.read_text())
    expected_hash = hashlib.sha256((tmp_path / "model" / "model.safetensors").read_bytes()).hexdigest()
    assert sidecar["model"]["weights_sha256"] == expected_hash
    assert sidecar["fixed"] == "f" and sidecar["moving"] == "m"


def test_wrong_grid_is_refused(tmp_path):
    f = _write_subject(tmp_path, "fixed", np.diag([2.0, 2.0, 2.0, 1.0]), (40, 40, 40), 0)
    bundle = load_model(_zero_model(tmp_path / "model"))
    other = prepare_subject(f["t1"], tmp_path / "prep", small_config(grid_shape=(32, 32, 32)), subject_id="f")
    with pytest.raises(ValueError, match="prepare it with the model's config"):
        smgicnet_pair(bundle, other, other)
