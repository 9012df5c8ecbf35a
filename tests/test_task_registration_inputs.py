"""The Pydra registration task's inputs: two files of the same name (``a/T1w.nii.gz``, ``b/T1w.nii.gz``) keep the
mapping between them, and smgicnet options reach the runner. References: closed forms (a known header translation,
``u(x) = A x - x`` for an affine ``A`` and a zero velocity); a network with zero velocity heads returns the
identity, so the whole mapping is the grid placement and the affine stage."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.tasks.registration import SMGICNetRegistration, pair_subject_ids, register_files, smgicnet_registration
from smgic_pydra.worldspace.compact import CompactMapping

SHIFT_RAS = np.array([7.0, -5.0, 3.0])
"""b/T1w.nii.gz is a/T1w.nii.gz with its header moved by this (RAS mm): fixed -> moving is ``x + SHIFT_RAS``."""
LPS = np.array([-1.0, -1.0, 1.0])


def _ras_field(path) -> np.ndarray:
    """``(X, Y, Z, 3)`` RAS-mm displacements of an ITK/ANTs 5-D warp file (LPS components)."""
    return np.asarray(nib.load(path).dataobj)[:, :, :, 0, :] * LPS


def _world(path) -> np.ndarray:
    """``(X, Y, Z, 3)`` RAS mm of every voxel of the image at ``path``."""
    img = nib.load(path)
    ijk = np.indices(img.shape[:3]).reshape(3, -1).T
    return nib.affines.apply_affine(img.affine, ijk).reshape(*img.shape[:3], 3)


@pytest.fixture(scope="module")
def same_named(tmp_path_factory):
    """``a/T1w.nii.gz`` (an asymmetric 'brain': ellipsoid, intensity gradient, off-centre blob; 36^3 at 2 mm),
    ``b/T1w.nii.gz`` (the same voxels, header moved by :data:`SHIFT_RAS`) and a 32^3 x 4 mm model whose velocity
    heads are zero."""
    import torch

    from smgic_pydra.config import small_config
    from smgic_pydra.network import SMGICNet
    from smgic_pydra.training.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("same-named")
    torch.manual_seed(0)
    cfg = small_config(grid_shape=(32, 32, 32), voxel_size_mm=4.0)
    net = SMGICNet(cfg)
    for level in net.levels:
        for name, p in level.named_parameters():
            if "head" in name:
                torch.nn.init.zeros_(p)
    model = save_checkpoint(root / "models", "zero-heads", net.state_dict(), cfg, {"note": "identity network"})
    shape, affine = (36, 36, 36), np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -35.0
    xyz = np.moveaxis(nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T).reshape(*shape, 3), -1, 0)
    brain = ((xyz / np.array([26.0, 22.0, 18.0])[:, None, None, None]) ** 2).sum(0) < 1
    blob = ((xyz - np.array([10.0, 8.0, 6.0])[:, None, None, None]) ** 2).sum(0) < 8.0**2
    image = (brain * (0.4 + 0.004 * (xyz[0] + 2 * xyz[1])) + 0.4 * (blob & brain)).astype(np.float32)
    moved = affine.copy()
    moved[:3, 3] += SHIFT_RAS
    files = {}
    for folder, header in (("a", affine), ("b", moved)):
        (root / folder).mkdir()
        files[folder] = root / folder / "T1w.nii.gz"
        nib.save(nib.Nifti1Image(image, header), files[folder])
    return {"root": root, "model": model, "fixed": files["a"], "moving": files["b"]}


def test_pair_subject_ids_are_the_file_names_unless_these_are_equal():
    assert pair_subject_ids("x/sub-01_T1w.nii.gz", "x/sub-02_T1w.nii") == ("sub-01_T1w", "sub-02_T1w")
    for fixed, moving in (("a/T1w.nii.gz", "b/T1w.nii.gz"), ("s1/mri/norm.mgz", "s2/mri/norm.mgz"),
                          ("T1w.nii.gz", "T1w.nii.gz")):
        stem = Path(fixed).name.split(".")[0]
        assert pair_subject_ids(fixed, moving) == (f"{stem}_fixed", f"{stem}_moving")


def test_same_named_files_keep_the_known_translation(same_named, tmp_path):
    """The network alone (identity) on two T1w.nii.gz: forward = +SHIFT_RAS on the fixed grid, inverse = -SHIFT_RAS
    on the moving grid (the bug: both 0, the subjects' views merged under one id)."""
    reg = SMGICNetRegistration(fixed_image=same_named["fixed"], moving_image=same_named["moving"],
                               model=same_named["model"], refine=0, affine=False)(cache_root=tmp_path / "cache")
    np.testing.assert_allclose(_ras_field(reg.forward_warp), np.broadcast_to(SHIFT_RAS, (36, 36, 36, 3)), atol=1e-4)
    np.testing.assert_allclose(_ras_field(reg.inverse_warp), np.broadcast_to(-SHIFT_RAS, (36, 36, 36, 3)), atol=1e-4)
    sidecar = json.loads(Path(reg.sidecar).read_text())
    assert (sidecar["fixed"], sidecar["moving"]) == ("T1w_fixed", "T1w_moving")


def test_same_named_files_keep_the_affine_stage_in_the_warps(same_named, tmp_path):
    """register_files (the template path's helper) with the affine stage: the warps are u(x) = A x - x and
    u'(y) = A^-1 y - y of the sidecar's A (the bug: the affine cancelled out of the warps, kept in the .mat)."""
    values = register_files("smgicnet", same_named["fixed"], same_named["moving"], model=same_named["model"],
                            options={"refine": 0, "affine_fine": False}, out_dir=tmp_path)
    forward, inverse, sidecar_path = values[0], values[1], values[6]
    a = np.asarray(json.loads(Path(sidecar_path).read_text())["affine"]["matrix_fixed_to_moving_ras"])
    assert np.abs(a[:3, 3]).max() > 1.0  # the affine stage moved the image: the check below is not trivial
    for path, image, matrix in ((forward, same_named["fixed"], a), (inverse, same_named["moving"], np.linalg.inv(a))):
        x = _world(image)
        expected = nib.affines.apply_affine(matrix, x.reshape(-1, 3)).reshape(x.shape) - x
        np.testing.assert_allclose(_ras_field(path), expected, atol=1e-3)


def test_options_affine_false_reaches_the_runner(same_named, tmp_path, monkeypatch):
    """options={"affine": False} turns the affine stage off (the task's affine argument left unset); the argument and
    options disagreeing is a one-line ValueError before any work."""
    monkeypatch.chdir(tmp_path)
    values = smgicnet_registration(same_named["fixed"], same_named["moving"], model=same_named["model"],
                                   options={"affine": False, "refine": 0})
    sidecar = json.loads(Path(values[6]).read_text())
    assert sidecar["method_options"]["affine"] is False and sidecar["pipeline"]["affine"] is False
    assert sidecar["affine"] is None and values[2] is None  # no affine stage ran, no .mat
    with pytest.raises(ValueError, match=r"^smgicnet: affine=True and options\['affine'\]=False disagree"):
        smgicnet_registration(same_named["fixed"], same_named["moving"], affine=True, options={"affine": False})
    with pytest.raises(ValueError, match=r"refine=2 and options\['refine'\]=0 disagree"):
        smgicnet_registration(same_named["fixed"], same_named["moving"], refine=2, options={"refine": 0})


def test_compact_mapping_composes_the_affine_and_refuses_one_subject_key():
    """Zero velocity and A (a 10 degree rotation about z and a translation) with S = sqrtm(A): the dense fields
    of both orders are u(x) = A x - x on the fixed native grid and A^-1 y - y on the moving one; equal keys,
    which would merge the two subjects' views and grids, raise."""
    from scipy.linalg import sqrtm

    c, s = np.cos(np.radians(10.0)), np.sin(np.radians(10.0))
    a = np.array([[c, -s, 0.0, 10.0], [s, c, 0.0, -4.0], [0.0, 0.0, 1.0, 6.0], [0.0, 0.0, 0.0, 1.0]])
    half = np.real(sqrtm(a))
    net = np.diag([3.0, 3.0, 3.0, 1.0])
    net[:3, 3] = -10.5
    native_f = np.diag([2.0, 2.0, 2.0, 1.0])
    native_m = np.array([[0.0, 0.0, -2.5, 20.0], [2.0, 0.0, 0.0, -9.0], [0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    grids = {"sub-a": (native_f, (10, 9, 8)), "sub-b": (native_m, (8, 10, 9))}
    velocity = np.zeros((3, 8, 8, 8), np.float32)
    mapping = CompactMapping("sub-a", "sub-b", velocity, 5, np.linalg.inv(half) @ net, half @ net, a, grids)
    for fixed, matrix in (("sub-a", a), ("sub-b", np.linalg.inv(a))):
        forward, inverse, affine = mapping.dense_fields(fixed)
        np.testing.assert_allclose(affine, matrix, atol=1e-12)
        for field, (grid, shape), m in ((forward, grids[fixed], matrix),
                                        (inverse, grids[mapping.other(fixed)], np.linalg.inv(matrix))):
            x = nib.affines.apply_affine(grid, np.indices(shape).reshape(3, -1).T).reshape(*shape, 3)
            np.testing.assert_allclose(field, nib.affines.apply_affine(m, x.reshape(-1, 3)).reshape(x.shape) - x,
                                       atol=1e-4)
    with pytest.raises(ValueError, match="two distinct subject keys, got 'T1w' for both"):
        CompactMapping("T1w", "T1w", velocity, 5, np.linalg.inv(half) @ net, half @ net, a, {"T1w": grids["sub-a"]})
