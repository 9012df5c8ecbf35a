"""Transforms against closed forms and scipy: identity, translations, SS inverse, Jacobians."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from smgic_pydra.synthesis import random_smooth_displacement
from smgic_pydra.transforms import (
    compose,
    identity_grid,
    integrate_velocity,
    jacobian_determinant,
    norm_to_voxel,
    upsample_field,
    warp,
)
from smgic_pydra.transforms.sample import grid_sample_3d

SHAPE = (24, 32, 28)  # (D, H, W), deliberately non-cubic


def voxel_to_norm(u: torch.Tensor) -> torch.Tensor:
    """Voxel displacement (B, 3, D, H, W) -> normalized units: divide by (N - 1) / 2 along (x, y, z) = (W, H, D)."""
    d, h, w = u.shape[-3:]
    return u / torch.tensor([(w - 1) / 2, (h - 1) / 2, (d - 1) / 2], dtype=u.dtype).view(1, 3, 1, 1, 1)


def smooth_velocity(shape, max_vox, seed, spacing=12):
    """Smooth velocity (1, 3, D, H, W) in normalized units with max |v| = max_vox voxels."""
    rng = np.random.default_rng(seed)
    vox = random_smooth_displacement(shape, rng, max_disp_vox=max_vox, control_spacing=spacing)  # (D,H,W,3) along (D,H,W)
    # displacement channels are (x, y, z) = (W, H, D): reverse the array-axis order
    v = torch.from_numpy(np.ascontiguousarray(vox[..., ::-1])).permute(3, 0, 1, 2)[None].double()
    return voxel_to_norm(v)


def test_identity_grid_matches_linspace_in_xyz_order():
    g = identity_grid(SHAPE, dtype=torch.float64)
    assert g.shape == (1, *SHAPE, 3)
    np.testing.assert_allclose(g[0, 0, 0, :, 0], np.linspace(-1, 1, SHAPE[2]))
    np.testing.assert_allclose(g[0, 0, :, 0, 1], np.linspace(-1, 1, SHAPE[1]))
    np.testing.assert_allclose(g[0, :, 0, 0, 2], np.linspace(-1, 1, SHAPE[0]))


def test_voxel_conversion_uses_n_minus_one():
    u = torch.ones(1, 3, *SHAPE, dtype=torch.float64)
    vox = norm_to_voxel(u)
    assert vox[0, 0, 0, 0, 0] == (SHAPE[2] - 1) / 2 and vox[0, 2, 0, 0, 0] == (SHAPE[0] - 1) / 2
    torch.testing.assert_close(voxel_to_norm(vox), u)
    assert u.max() == 1  # inputs untouched


def test_zero_velocity_is_identity():
    v = torch.zeros(2, 3, *SHAPE, dtype=torch.float64)
    assert torch.equal(integrate_velocity(v, 7), v)
    img = torch.rand(2, 1, *SHAPE, dtype=torch.float64)
    torch.testing.assert_close(warp(img, v), img)


@pytest.mark.parametrize("shift_vox", [(2, 0, 0), (0, -3, 0), (0, 0, 1), (1, 2, -1)])
def test_integer_translation_shifts_image_exactly(shift_vox):
    """u = t voxels (x, y, z): warped[p] = image[p + t] (np.roll reference, interior only)."""
    img = torch.rand(1, 1, *SHAPE, dtype=torch.float64)
    tx, ty, tz = shift_vox
    u = torch.zeros(1, 3, *SHAPE, dtype=torch.float64)
    u[:, 0], u[:, 1], u[:, 2] = tx, ty, tz
    warped = warp(img, voxel_to_norm(u))[0, 0].numpy()
    expected = np.roll(img[0, 0].numpy(), shift=(-tz, -ty, -tx), axis=(0, 1, 2))
    m = 4
    np.testing.assert_allclose(warped[m:-m, m:-m, m:-m], expected[m:-m, m:-m, m:-m], atol=1e-12)


@pytest.mark.parametrize("torch_threads", [1, 3], indirect=True)
def test_fractional_translation_matches_scipy_linear_interpolation(torch_threads):
    img = torch.rand(1, 1, *SHAPE, dtype=torch.float64)
    t = (0.3, -1.7, 0.55)  # x, y, z voxels
    u = torch.zeros(1, 3, *SHAPE, dtype=torch.float64)
    for c in range(3):
        u[:, c] = t[c]
    warped = warp(img, voxel_to_norm(u))[0, 0].numpy()
    coords = np.indices(SHAPE, dtype=np.float64) + np.array([t[2], t[1], t[0]])[:, None, None, None]
    expected = ndimage.map_coordinates(img[0, 0].numpy(), coords, order=1, mode="nearest")
    np.testing.assert_allclose(warped[3:-3, 3:-3, 3:-3], expected[3:-3, 3:-3, 3:-3], atol=1e-10)


@pytest.mark.parametrize("max_vox", [1.5, 4.0])
def test_exp_v_composed_with_exp_minus_v_is_identity(max_vox):
    """Smooth fields (control spacing 20 voxels) of a few voxels: residual < 0.01 voxel everywhere inside."""
    v = smooth_velocity((32, 40, 36), max_vox, seed=1, spacing=20)
    fwd, inv = integrate_velocity(v, 7), integrate_velocity(-v, 7)
    assert norm_to_voxel(fwd).abs().max() > 0.5 * max_vox  # a real deformation
    for residual in (compose(fwd, inv), compose(inv, fwd)):
        err = norm_to_voxel(residual)[..., 3:-3, 3:-3, 3:-3].norm(dim=1)
        assert err.max() < 0.01, float(err.max())


def test_compose_of_translations_adds_them():
    a = torch.zeros(1, 3, *SHAPE, dtype=torch.float64)
    b = torch.zeros_like(a)
    a[:, 0], b[:, 1] = 0.1, -0.05
    torch.testing.assert_close(compose(a, b)[..., 2:-2, 2:-2, 2:-2], (a + b)[..., 2:-2, 2:-2, 2:-2])


def test_upsample_field_keeps_linear_field_exact():
    """A field linear in the normalized coordinates is reproduced exactly with align_corners=True."""
    small = identity_grid((8, 10, 12), dtype=torch.float64).permute(0, 4, 1, 2, 3) * 0.1
    big = upsample_field(small, (16, 20, 24))
    torch.testing.assert_close(big, identity_grid((16, 20, 24), dtype=torch.float64).permute(0, 4, 1, 2, 3) * 0.1)


def test_jacobian_of_affine_field_equals_matrix_determinant_on_oblique_grid():
    rng = np.random.default_rng(3)
    a = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    vox2world = np.eye(4)
    vox2world[:3, :3] = np.array([[0.0, 0, -1.5], [1.2, 0.2, 0], [0, -2.0, 0.3]])  # oblique, anisotropic
    vox2world[:3, 3] = [10, -5, 3]
    ijk = np.stack(np.indices((10, 11, 12)), axis=-1).reshape(-1, 3)
    world = ijk @ vox2world[:3, :3].T + vox2world[:3, 3]
    disp = (world @ (a - np.eye(3)).T + [1.0, 2.0, -3.0]).reshape(10, 11, 12, 3)
    det = jacobian_determinant(disp, vox2world)
    np.testing.assert_allclose(det, np.linalg.det(a), rtol=1e-9)


def test_jacobian_smooth_field_positive_and_folding_detected():
    rng = np.random.default_rng(4)
    smooth = random_smooth_displacement((32, 32, 32), rng, max_disp_vox=2.0, control_spacing=16)
    assert jacobian_determinant(smooth).min() > 0
    fold = np.zeros((32, 32, 32, 3))
    x = np.arange(32, dtype=float)
    fold[..., 0] = (-3.0 * np.exp(-((x - 16) ** 2) / 8.0) * (x - 16) / 2.0)[:, None, None]  # d u/dx < -1 near 16
    det = jacobian_determinant(fold)
    assert (det <= 0).sum() > 0 and det.min() < 0


@pytest.mark.parametrize("torch_threads", [2, 3, 5, 11], indirect=True)
@pytest.mark.parametrize("mode,padding", [("bilinear", "border"), ("bilinear", "zeros"), ("nearest", "zeros")])
def test_grid_sample_3d_on_several_threads_equals_one_aten_call(torch_threads, mode, padding):
    """The volume's points split into one batch entry per thread (at most 8; the last slab padded) give ATen's
    unsplit values and grid gradients bit for bit, and its image gradient to rounding."""
    generator = torch.Generator().manual_seed(torch_threads)
    image = torch.rand(1, 2, *SHAPE, dtype=torch.float64, generator=generator)
    grid = 1.2 * torch.rand(1, 23, 9, 11, 3, dtype=torch.float64, generator=generator) - 0.6
    weights = torch.rand(1, 2, 23, 9, 11, dtype=torch.float64, generator=generator)
    results = []
    for sample in (grid_sample_3d, lambda i, g, m, p: F.grid_sample(i, g, mode=m, padding_mode=p, align_corners=True)):
        i, g = image.clone().requires_grad_(), grid.clone().requires_grad_()
        out = sample(i, g, mode, padding)
        (out * weights).sum().backward()
        results.append((out.detach(), g.grad, i.grad))
    (out, grid_grad, image_grad), (ref, ref_grid_grad, ref_image_grad) = results
    assert torch.equal(out, ref) and torch.equal(grid_grad, ref_grid_grad)
    torch.testing.assert_close(image_grad, ref_image_grad, rtol=0, atol=1e-12)
