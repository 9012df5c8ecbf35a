"""Network-grid fields -> world (RAS mm) fields on native grids, and the written outputs of a pair.

References: closed forms (identity, translations, ramps), torch ``grid_sample`` through
``transforms.warp`` (the network's own warp), ANTsPy ``apply_transforms`` and ITK field files.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.affines import apply_affine, from_matvec
from scipy.spatial.transform import Rotation

from smgic_pydra.config import SMGICNetConfig
from smgic_pydra.io import load_image, read_itk_displacement
from smgic_pydra.preparation import prepare_subject
from smgic_pydra.transforms import warp
from smgic_pydra.worldspace import (
    PairOutputPaths,
    network_disp_to_world,
    resample_with_displacement,
    write_pair_outputs,
)

CFG = SMGICNetConfig(grid_shape=(48, 32, 64), voxel_size_mm=4.0)  # non-cubic: catches (N - 1) mix-ups


def head(tmp_path, name, rotation, zooms, shape, centre):
    """A skull-stripped 'head' (textured ellipsoid) and labels on an arbitrary grid, saved as NIfTI."""
    linear = rotation @ np.diag(zooms)
    affine = from_matvec(linear, np.asarray(centre) - linear @ ((np.array(shape) - 1) / 2.0))
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    r = apply_affine(affine, idx) - np.asarray(centre)
    brain = np.sum((r / np.array([30.0, 36.0, 27.0])) ** 2, axis=-1) <= 1.0
    texture = 60 + 20 * np.sin(r[..., 0] / 6.0) * np.cos(r[..., 1] / 7.0) + 10 * np.sin(r[..., 2] / 5.0)
    labels = np.where(brain, 1 + (r[..., 0] > 0) + 2 * (r[..., 2] > 5), 0).astype(np.int32)
    t1 = tmp_path / f"{name}_T1w.nii.gz"
    seg = tmp_path / f"{name}_dseg.nii.gz"
    nib.Nifti1Image((texture * brain).astype(np.float32), affine).to_filename(t1)
    nib.Nifti1Image(labels, affine).to_filename(seg)
    return t1, seg


@pytest.fixture(scope="module")
def subjects(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws")
    rot_a = Rotation.from_euler("xyz", [12.0, -18.0, 25.0], degrees=True).as_matrix()
    rot_b = np.array([[-1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # LIA
    a = head(tmp, "a", rot_a, (2.0, 2.5, 3.0), (44, 40, 36), (5.0, -8.0, 12.0))
    b = head(tmp, "b", rot_b, (2.2, 2.0, 1.8), (40, 48, 44), (-20.0, 15.0, -6.0))
    prepared = [prepare_subject(t1, tmp / f"prep_{i}", CFG, labels_path=seg) for i, (t1, seg) in enumerate((a, b))]
    return prepared, (a, b), tmp


def native_points(subject):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in subject.native_shape], indexing="ij"), axis=-1)
    return apply_affine(subject.native_affine, idx.astype(float))


def normalized(t_vox, shape):
    """Constant normalized field ``(3, D, H, W)`` for a voxel translation ``t_vox`` along (i, j, k)."""
    d, h, w = shape
    chans = [t_vox[2] * 2 / (w - 1), t_vox[1] * 2 / (h - 1), t_vox[0] * 2 / (d - 1)]
    return np.stack([np.full(shape, c) for c in chans])


def test_identity_round_trip_is_zero_in_world(subjects):
    (a, _), _, _ = subjects
    disp = network_disp_to_world(np.zeros((3,) + CFG.grid_shape), a, a, a.native_affine, a.native_shape)
    assert disp.shape == a.native_shape + (3,)
    assert np.max(np.abs(disp)) < 0.01


def test_network_translation_maps_to_world_translation(subjects):
    (a, _), _, _ = subjects
    t_vox = np.array([1.5, -0.75, 2.25])  # along network i (R), j (A), k (S)
    u = torch.from_numpy(normalized(t_vox, CFG.grid_shape)).float()[None]  # (1, 3, D, H, W) tensor
    disp = network_disp_to_world(u, a, a, a.native_affine, a.native_shape)
    expected = CFG.voxel_size_mm * t_vox  # the documented grid: i -> +R, j -> +A, k -> +S
    np.testing.assert_allclose(disp.reshape(-1, 3), np.broadcast_to(expected, (disp[..., 0].size, 3)), atol=1e-4)


def test_ramp_field_and_different_subjects_closed_form(subjects):
    (a, b), _, _ = subjects
    d, h, w = CFG.grid_shape
    kk = np.broadcast_to(np.arange(w, dtype=float), CFG.grid_shape)
    u = np.zeros((3,) + CFG.grid_shape)
    u[2] = 0.05 * kk * 2 / (d - 1)  # displacement along i (R) of 0.05 voxel per voxel along k (S)
    x = native_points(a)
    disp = network_disp_to_world(u, a, b, a.native_affine, a.native_shape)
    # closed form: n_k = (x_S - origin_S) / s clamped to the grid; y = B (n + u(n)), B, A = net affines
    n = (x - a.net_affine[:3, 3]) / CFG.voxel_size_mm
    n_k = np.clip(n[..., 2], 0, w - 1)
    m = n.copy()
    m[..., 0] += 0.05 * n_k
    expected = m * CFG.voxel_size_mm + b.net_affine[:3, 3] - x
    np.testing.assert_allclose(disp, expected, atol=1e-3)
    # zero field between two subjects: the difference of their brain-centred placements
    zero = network_disp_to_world(np.zeros_like(u), a, b, a.native_affine, a.native_shape)
    np.testing.assert_allclose(zero[0, 0, 0], b.net_affine[:3, 3] - a.net_affine[:3, 3], atol=1e-4)


def test_world_field_warps_like_the_network_warp(subjects):
    """Resampling b's network image with the world field equals transforms.warp on the network grid."""
    (a, b), _, _ = subjects
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn((1, 3, 4, 3, 5), generator=g, dtype=torch.float64) * 0.05
    u = torch.nn.functional.interpolate(coarse, size=CFG.grid_shape, mode="trilinear", align_corners=True)
    disp = network_disp_to_world(u[0], a, b, a.net_affine, CFG.grid_shape)
    moving_net = nib.Nifti1Image(b.image, b.net_affine)
    ours = resample_with_displacement(moving_net, disp, a.net_affine, CFG.grid_shape, order=1)
    theirs = warp(torch.from_numpy(b.image).double()[None, None], u, padding_mode="zeros")[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.abs(theirs - b.image).max() > 0.2  # the field really moves the image


def test_write_pair_outputs_matches_ants_and_is_atomic(subjects):
    ants = pytest.importorskip("ants")
    (a, b), ((a_t1, _), (b_t1, b_seg)), tmp = subjects
    g = torch.Generator().manual_seed(1)
    coarse = torch.randn((1, 3, 3, 2, 4), generator=g) * 0.04
    u = torch.nn.functional.interpolate(coarse, size=CFG.grid_shape, mode="trilinear", align_corners=True)
    fwd = network_disp_to_world(u[0], a, b, a.native_affine, a.native_shape)
    inv = network_disp_to_world(-u[0], b, a, b.native_affine, b.native_shape)
    fixed_img, moving_img, labels_img = load_image(a_t1), load_image(b_t1), load_image(b_seg, "labels")
    out = tmp / "pair"
    paths = PairOutputPaths(
        warp=out / "warp.nii.gz",
        inverse_warp=out / "inverse_warp.nii.gz",
        warped=out / "warped.nii.gz",
        jacobian=out / "jacobian.nii.gz",
        sidecar=out / "pair.json",
        warped_labels=out / "warped_dseg.nii.gz",
        warp_h5=out / "warp_xfm.h5",
    )
    write_pair_outputs(paths, fixed_img, moving_img, labels_img, fwd, inv, {"seed": 1})
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.as_dict().values())
    sidecar = json.loads(paths.sidecar.read_text())
    assert sidecar["seed"] == 1 and sidecar["files"]["warp"] == "warp.nii.gz" and "sidecar" not in sidecar["files"]
    np.testing.assert_allclose(read_itk_displacement(paths.inverse_warp)[0], inv, atol=1e-4)

    fixed_ants, moving_ants = ants.image_read(str(a_t1)), ants.image_read(str(b_t1))
    ours = np.asarray(nib.load(paths.warped).dataobj)
    assert np.ptp(ours) > 50
    for transform in (paths.warp, paths.warp_h5):
        theirs = ants.apply_transforms(fixed_ants, moving_ants, [str(transform)]).numpy()
        assert np.max(np.abs(ours - theirs)) < 1e-3 * np.ptp(ours)
    warped_labels = np.asarray(nib.load(paths.warped_labels).dataobj)
    assert set(np.unique(warped_labels)) <= set(np.unique(np.asarray(labels_img.dataobj)))
    seg_ants = ants.image_read(str(b_seg))
    nn = ants.apply_transforms(fixed_ants, seg_ants, [str(paths.warp)], interpolator="nearestNeighbor").numpy()
    assert np.mean(warped_labels == nn) > 0.97 and len(np.unique(warped_labels)) == 5

    # a failure midway (a folder where the Jacobian map should go) leaves none of the outputs
    failing = tmp / "pair_fail"
    (failing / "jacobian.nii.gz").mkdir(parents=True)
    paths_fail = PairOutputPaths(**{k: failing / p.name for k, p in paths.as_dict().items()})
    with pytest.raises(OSError):
        write_pair_outputs(paths_fail, fixed_img, moving_img, labels_img, fwd, inv, {"seed": 1})
    assert [p.name for p in failing.iterdir()] == ["jacobian.nii.gz"]


def test_forward_and_inverse_world_fields_compose_to_identity(subjects):
    """exp(v) mapped a -> b and exp(-v) mapped b -> a (roles swapped) undo each other in millimetres."""
    from scipy import ndimage

    from smgic_pydra.transforms import integrate_velocity

    (a, b), _, _ = subjects
    g = torch.Generator().manual_seed(2)
    coarse = torch.randn((1, 3, 3, 2, 4), generator=g, dtype=torch.float64) * 0.1
    v = torch.nn.functional.interpolate(coarse, size=CFG.grid_shape, mode="trilinear", align_corners=True)
    fwd = network_disp_to_world(integrate_velocity(v)[0], a, b, a.native_affine, a.native_shape)
    inv = network_disp_to_world(integrate_velocity(-v)[0], b, a, b.native_affine, b.native_shape)
    x = native_points(a)[a.native_mask]
    y = x + fwd[a.native_mask]
    idx = apply_affine(np.linalg.inv(b.native_affine), y).T
    inside = np.all((idx >= 0) & (idx <= np.array(b.native_shape)[:, None] - 1), axis=0)
    back = y + np.stack([ndimage.map_coordinates(inv[..., c], idx, order=1) for c in range(3)], axis=-1)
    error = np.linalg.norm(back - x, axis=-1)[inside]
    moved = np.linalg.norm(fwd[a.native_mask] - (b.net_affine[:3, 3] - a.net_affine[:3, 3]), axis=-1)
    assert inside.mean() > 0.95 and np.max(moved) > 5.0  # a real deformation, several mm
    assert np.mean(error) < 0.05 and np.max(error) < 0.3, (np.mean(error), np.max(error))
