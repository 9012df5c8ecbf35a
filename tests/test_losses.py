"""Losses of SM-GICNet against closed forms and an independent NumPy/SciPy local NCC."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from smgic_pydra.config import small_config
from smgic_pydra.losses import (
    antifold,
    gradicon,
    inverse_consistency,
    local_ncc,
    multilevel_consistency,
    smoothness,
    stage_loss,
    stage_weights,
    symmetric_consistency,
)
from smgic_pydra.losses.ncc import box_mean
from smgic_pydra.network.outputs import LevelOutput
from smgic_pydra.transforms import integrate_velocity, warp


def _norm_grid(shape) -> torch.Tensor:
    """(1, 3, D, H, W) positions (x, y, z) = (W, H, D) in [-1, 1], built without the package helpers."""
    d, h, w = shape
    zz, yy, xx = np.meshgrid(np.linspace(-1, 1, d), np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    return torch.from_numpy(np.stack((xx, yy, zz))[None]).float()


def _linear_disp(matrix, shape) -> torch.Tensor:
    """Displacement of the normalized linear map ``p -> M p`` (``u = (M - I) p``), channels (x, y, z)."""
    p = _norm_grid(shape)
    return torch.einsum("ij,bjdhw->bidhw", torch.as_tensor(matrix, dtype=torch.float32) - torch.eye(3), p)


def _smooth_noise(shape, rng, sigma=1.5) -> torch.Tensor:
    vol = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return torch.from_numpy(vol[None, None]).float()


def _numpy_local_ncc(i: np.ndarray, j: np.ndarray, w: int, eps: float = 1e-8) -> float:
    """Squared local correlation with zero-padded box windows, from scipy's uniform filter."""
    n = float(w**3)

    def box(x):
        return ndimage.uniform_filter(x, size=w, mode="constant", cval=0.0) * n

    si, sj, sii, sjj, sij = box(i), box(j), box(i * i), box(j * j), box(i * j)
    cross = sij - si * sj / n
    var_i = sii - si * si / n
    var_j = sjj - sj * sj / n
    return float(-np.mean(cross**2 / (var_i * var_j + eps)))


# ---------------------------------------------------------------------------------------------- NCC
@pytest.mark.parametrize("window", [3, 5, 9])
def test_ncc_of_image_with_itself_is_minus_one(window):
    image = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 1, 12, 10, 14))).float()
    assert local_ncc(image, image, window).item() == pytest.approx(-1.0, abs=1e-4)


def test_ncc_of_unrelated_noise_is_near_zero():
    rng = np.random.default_rng(1)
    a, b = (torch.from_numpy(rng.standard_normal((1, 1, 24, 24, 24))).float() for _ in range(2))
    # E[r^2] of n independent samples is about 1 / (n - 1): 1/124 for a 5^3 window
    assert -0.03 < local_ncc(a, b, 5).item() < 0.0


def test_ncc_matches_scipy_uniform_filter_reference():
    rng = np.random.default_rng(2)
    shape = (2, 1, 11, 13, 9)
    i = ndimage.gaussian_filter(rng.random(shape), (0, 0, 1, 1, 1))
    j = 0.7 * i + 0.3 * ndimage.gaussian_filter(rng.random(shape), (0, 0, 1, 1, 1))
    for w in (3, 5, 7):
        ours = local_ncc(torch.from_numpy(i).float(), torch.from_numpy(j).float(), w).item()
        ref = np.mean([_numpy_local_ncc(i[b, 0], j[b, 0], w) for b in range(2)])
        assert ours == pytest.approx(ref, rel=2e-4)
        assert -1.0 <= ours < -0.3


def test_box_mean_and_its_gradient_match_scipy_uniform_filter():
    """The box mean (zero padding, padded zeros counted) is scipy's ``uniform_filter(mode="constant")``; its
    kernel is symmetric, so the gradient of ``sum(box(x) * g)`` is the box mean of ``g``."""
    rng = np.random.default_rng(3)
    x, g = rng.random((2, 3, 9, 12, 7)), rng.random((2, 3, 9, 12, 7))
    for w in (3, 5):
        xt = torch.from_numpy(x).float().requires_grad_()
        out = box_mean(xt, w)
        (out * torch.from_numpy(g).float()).sum().backward()
        ref = ndimage.uniform_filter(x, (1, 1, w, w, w), mode="constant")
        np.testing.assert_allclose(out.detach().numpy(), ref, atol=2e-6)
        np.testing.assert_allclose(xt.grad.numpy(), ndimage.uniform_filter(g, (1, 1, w, w, w), mode="constant"),
                                   atol=2e-6)


# ------------------------------------------------------------------------------------- regularizers
def test_smoothness_of_linear_voxel_field_is_frobenius_over_nine():
    shape = (9, 11, 13)  # (D, H, W): different sides catch unit and axis mix-ups
    a = np.random.default_rng(3).normal(0, 0.3, (3, 3))  # u_vox[c] = sum_a A[c, a] * index_a, array order (i, j, k)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"))
    u_vox = np.einsum("ca,aijk->cijk", a, idx)  # components along (i, j, k) = (D, H, W)
    half = (np.array(shape) - 1) / 2.0
    u_norm = np.stack([u_vox[2] / half[2], u_vox[1] / half[1], u_vox[0] / half[0]])  # channels (x, y, z)
    value = smoothness(torch.from_numpy(u_norm[None]).float()).item()
    assert value == pytest.approx(np.sum(a**2) / 9.0, rel=1e-5)


def test_antifold_closed_form():
    shape = (10, 12, 14)
    half = (np.array(shape) - 1) / 2.0
    i = np.arange(shape[0], dtype=float)[:, None, None] * np.ones(shape)
    u = np.zeros((1, 3) + shape)
    u[0, 2] = -1.5 * i / half[0]  # d u_D / d i = -1.5 voxel: t = 0.5 on every D difference of channel z
    assert antifold(torch.from_numpy(u).float()).item() == pytest.approx(0.5 * 0.5**2 / 9.0, rel=1e-5)
    u[0, 2] = -0.9 * i / half[0]  # never drops by more than one voxel
    assert antifold(torch.from_numpy(u).float()).item() == 0.0


# ------------------------------------------------------------------------ inverse consistency, GradICON
# (x, y) -> (-y, x): maps the cube onto itself, so compositions never leave the domain
ROTATION = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def test_exact_linear_inverse_pair_is_consistent():
    shape = (12, 16, 20)
    u_ab, u_ba = _linear_disp(ROTATION, shape), _linear_disp(ROTATION.T, shape)
    assert inverse_consistency(u_ab, u_ba).item() < 1e-10
    assert gradicon(u_ab, u_ba, generator=torch.Generator().manual_seed(0)).item() < 1e-8


def test_contraction_pair_matches_closed_forms():
    shape = (12, 16, 20)
    s = 0.8
    u = _linear_disp(s * np.eye(3), shape)  # phi_AB = phi_BA = s x: phi o phi = s^2 x, still inside the cube
    p = _norm_grid(shape).numpy()[0]
    half = np.array([shape[2] - 1, shape[1] - 1, shape[0] - 1])[:, None, None, None] / 2.0
    expected_ic = 2 * np.mean(((s**2 - 1) * p * half) ** 2)  # both orders, voxels^2
    assert inverse_consistency(u, u).item() == pytest.approx(expected_ic, rel=1e-5)
    # Jacobian of the composition is s^2 I: ||s^2 I - I||_F^2 / 3 = (1 - s^2)^2
    assert gradicon(u, u, generator=torch.Generator().manual_seed(0)).item() == pytest.approx((1 - s**2) ** 2, rel=1e-3)


def test_exp_v_and_exp_minus_v_are_consistent_and_a_perturbation_is_not():
    rng = np.random.default_rng(4)
    shape = (32, 32, 32)
    v = torch.cat([_smooth_noise(shape, rng, sigma=5.0) for _ in range(3)], dim=1)
    v = v / v.abs().max() * (1.5 * 2 / 31)  # about 1.5 voxels
    u_ab, u_ba = integrate_velocity(v), integrate_velocity(-v)
    bump = torch.cat([_smooth_noise(shape, rng, sigma=3.0) for _ in range(3)], dim=1)
    u_bad = u_ba + bump / bump.abs().max() * (0.5 * 2 / 31)  # 0.5-voxel smooth error

    ic_exact, ic_bad = inverse_consistency(u_ab, u_ba).item(), inverse_consistency(u_ab, u_bad).item()
    assert ic_exact < 1e-4
    assert ic_bad > 1e-2 and ic_bad > 100 * ic_exact
    g = torch.Generator().manual_seed(0)
    gi_exact, gi_bad = gradicon(u_ab, u_ba, generator=g).item(), gradicon(u_ab, u_bad, generator=g).item()
    assert gi_exact < 1e-3
    assert gi_bad > 10 * gi_exact


def test_gradicon_is_reproducible_with_a_generator():
    shape = (16, 16, 16)
    rng = np.random.default_rng(5)
    u = torch.cat([_smooth_noise(shape, rng, sigma=2.0) for _ in range(3)], dim=1) * 0.05
    values = [gradicon(u, -u, generator=torch.Generator().manual_seed(7)).item() for _ in range(2)]
    assert values[0] == values[1] > 0


# --------------------------------------------------------------------------- symmetric, multi-level
def _level(level, moving, fixed, disp, disp_inv, warped_pre=None, energy=None) -> LevelOutput:
    return LevelOutput(
        level=level,
        velocity=torch.zeros_like(disp),
        disp=disp,
        disp_inv=disp_inv,
        moving=moving,
        fixed=fixed,
        warped=warp(moving, disp),
        fixed_inv_warped=warp(fixed, disp_inv),
        warped_pre=warped_pre,
        moving_energy=energy,
        fixed_energy=energy,
        warped_energy=energy,
    )


def test_symmetric_consistency_zero_for_exact_pair_and_positive_otherwise():
    rng = np.random.default_rng(6)
    shape = (16, 16, 16)
    a, b = _smooth_noise(shape, rng), _smooth_noise(shape, rng)
    u, u_inv = _linear_disp(ROTATION, shape), _linear_disp(ROTATION.T, shape)
    out_ab = _level(4, a, b, u, u_inv)
    out_ba = _level(4, b, a, u_inv, u)  # phi_BA = phi_AB^-1 exactly
    assert symmetric_consistency(out_ab, out_ba).item() < 1e-10
    out_ba_bad = _level(4, b, a, u, u_inv)  # phi_BA = phi_AB: not the inverse
    expected = float(((warp(b, u_inv) - warp(b, u)) ** 2).mean() + ((warp(a, u) - warp(a, u_inv)) ** 2).mean())
    assert symmetric_consistency(out_ab, out_ba_bad).item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0.01 * float(a.var())


def test_multilevel_consistency_is_a_quarter_mse():
    rng = np.random.default_rng(7)
    shape = (8, 8, 8)
    w, w_pre = _smooth_noise(shape, rng), _smooth_noise(shape, rng)
    zero = torch.zeros(1, 3, *shape)
    out = _level(2, w, w, zero, zero, warped_pre=w_pre)
    assert multilevel_consistency(out).item() == pytest.approx(0.25 * float(((w - w_pre) ** 2).mean()), rel=1e-5)


# ------------------------------------------------------------------------------------- stage objective
def test_stage_weights_are_renormalized_to_the_top_level():
    cfg = small_config()
    assert stage_weights(cfg.level_weights, 4) == (0.125, 0.25, 0.5, 1.0)
    assert stage_weights(cfg.level_weights, 2) == (0.5, 1.0)
    assert stage_weights(cfg.level_weights, 1) == (1.0,)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_stage_loss_of_perfect_identity_registration(stage):
    """Identity fields and identical noise images: every penalty is 0, every NCC term -1."""
    cfg = small_config(grid_shape=(32, 32, 32))
    rng = np.random.default_rng(8)
    outs = []
    for level in range(1, stage + 1):
        shape = cfg.level_shape(level)
        image = torch.from_numpy(rng.standard_normal((1, 1) + shape)).float()
        energy = torch.from_numpy(rng.standard_normal((1, 1) + shape)).float() if level in (2, 3) else None
        zero = torch.zeros(1, 3, *shape)
        outs.append(_level(level, image, image, zero, zero, warped_pre=image if level > 1 else None, energy=energy))
    total, terms = stage_loss(outs, outs, cfg, stage, generator=torch.Generator().manual_seed(0))
    alpha = [0.125, 0.25, 0.5, 1.0][:stage]
    n_ncc = [1, 2, 2, 1][:stage]  # levels 2 and 3 also on the energy branch
    expected = -2 * sum(a / alpha[-1] * n for a, n in zip(alpha, n_ncc))  # two directions
    assert terms["similarity"] == pytest.approx(expected, abs=1e-3)
    for name in ("smoothness", "symmetric", "inverse", "multilevel", "gradicon", "antifold"):
        assert abs(terms[name]) < 1e-9, name
    assert total.item() == pytest.approx(terms["total"]) == pytest.approx(expected, abs=1e-3)


def test_stage_loss_penalties_use_the_config_weights():
    cfg = small_config(grid_shape=(32, 32, 32), lambda_antifold=2.0)
    rng = np.random.default_rng(9)
    shape = cfg.level_shape(1)
    image = _smooth_noise(shape, rng, sigma=0.7)
    u = torch.from_numpy(rng.normal(0, 0.5, (1, 3) + shape)).float()  # rough: some differences below -1 voxel
    ab = _level(1, image, image, u, -u)
    ba = _level(1, image, image, -u, u)
    _, terms = stage_loss([ab], [ba], cfg, 1, generator=torch.Generator().manual_seed(0))
    assert terms["smoothness"] == pytest.approx(cfg.lambda_smooth * 2 * smoothness(u).item(), rel=1e-5)
    assert terms["inverse"] == pytest.approx(cfg.lambda_inv * inverse_consistency(u, -u).item(), rel=1e-5)
    assert terms["antifold"] == pytest.approx(2.0 * (antifold(u) + antifold(-u)).item(), rel=1e-5)
    assert terms["antifold"] > 0
    assert terms["multilevel"] == 0.0  # stage 1 has no multi-level term
