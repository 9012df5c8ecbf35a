"""Augmentations against closed forms and scipy."""

import numpy as np
import torch
from scipy import ndimage

from smgic_pydra.augmentation import apply_affine, random_affine_theta, random_bias_field, random_gamma


def test_random_affine_is_rigid_in_voxels_on_non_cubic_grid():
    shape = (20, 28, 24)
    g = torch.Generator().manual_seed(0)
    theta = random_affine_theta(shape, g, max_rotation_deg=15, max_translation_vox=3, scale_range=(1.0, 1.0))
    d, h, w = shape
    half = np.array([(w - 1) / 2, (h - 1) / 2, (d - 1) / 2])
    linear_vox = np.diag(half) @ theta[:, :3].double().numpy() @ np.diag(1 / half)
    np.testing.assert_allclose(linear_vox @ linear_vox.T, np.eye(3), atol=1e-5)  # orthonormal: rigid
    assert np.all(np.abs(theta[:, 3].numpy() * half) <= 3 + 1e-5)


def test_apply_affine_matches_scipy_affine_transform():
    shape = (16, 20, 18)
    vol = torch.rand(1, 1, *shape, dtype=torch.float64)
    theta = random_affine_theta(shape, torch.Generator().manual_seed(1)).double()
    ours = apply_affine(vol, theta)[0, 0].numpy()
    # scipy works in array index order (D, H, W); theta acts on normalized (x, y, z) = (W, H, D)
    d, h, w = shape
    half = np.array([(w - 1) / 2, (h - 1) / 2, (d - 1) / 2])
    lin = np.diag(half) @ theta[:, :3].numpy() @ np.diag(1 / half)
    off = half * theta[:, 3].numpy()
    # voxel (x,y,z) offsets are about the centre: q = lin (p - c) + c + off
    perm = [2, 1, 0]
    lin_ijk = lin[np.ix_(perm, perm)]
    c = half[perm]
    offset = c - lin_ijk @ c + off[perm]
    ref = ndimage.affine_transform(vol[0, 0].numpy(), lin_ijk, offset=offset, order=1, mode="constant", cval=0.0)
    # compare where the source point is inside the volume (the two pad differently outside)
    src = np.einsum("ij,j...->i...", lin_ijk, np.indices(shape, dtype=float)) + offset[:, None, None, None]
    inside = np.all((src >= 0) & (src <= np.array(shape)[:, None, None, None] - 1), axis=0)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(ours[inside], ref[inside], atol=1e-8)


def test_gamma_and_bias_field():
    img = torch.linspace(0, 1, 1000).view(1, 1, 10, 10, 10)
    g = torch.Generator().manual_seed(2)
    out = random_gamma(img, g)
    gamma = np.log(out[0, 0, 5, 5, 5].item()) / np.log(img[0, 0, 5, 5, 5].item())
    np.testing.assert_allclose(out.numpy(), img.numpy() ** gamma, rtol=1e-4, atol=1e-6)
    biased = random_bias_field(torch.ones(1, 1, 12, 12, 12), g, strength=0.2)
    assert biased.max() == 1.0 and biased.min() >= np.exp(-0.4) - 1e-6
    # smooth: neighbouring voxels differ by much less than the range
    assert (biased[..., 1:] - biased[..., :-1]).abs().max() < 0.1


def test_sampler_augmentation_is_reproducible_from_its_state_and_keeps_labels():
    from smgic_pydra.augmentation import AugmentOptions
    from smgic_pydra.training.sampler import PairSampler

    rng = np.random.default_rng(0)
    items = [(torch.rand(16, 16, 16), torch.from_numpy(rng.integers(0, 4, (16, 16, 16)))) for _ in range(3)]
    opts = AugmentOptions(max_rotation_deg=10, max_translation_vox=2, scale_range=(0.9, 1.1), log_gamma_std=0.2, bias_strength=0.2)
    sampler = PairSampler(items, seed=5, augment=opts)
    state = sampler.state_dict()
    first = sampler.sample()
    sampler.load_state_dict(state)
    again = sampler.sample()
    assert torch.equal(first.moving, again.moving) and torch.equal(first.fixed_labels, again.fixed_labels)
    plain = PairSampler(items, seed=5).sample()
    assert first.indices == plain.indices and not torch.equal(first.moving, plain.moving)
    assert set(first.moving_labels.unique().tolist()) <= {0, 1, 2, 3}
    assert first.moving.min() >= 0 and first.moving.max() <= 1
