"""Fields between a grid and its avg-pooled grid (``transforms.pooling``), against closed forms: an affine field in
voxels is the same physical field on both grids (coarse voxel ``i`` = fine voxel ``f i + (f - 1) / 2``, one coarse
voxel = ``f`` fine voxels), and a block mean or a trilinear sample of an affine field is exact."""

import pytest
import torch

from smgic_pydra.transforms import pool_field, unpool_field

MATRIX = ((0.1, 0.03, -0.02), (0.04, -0.05, 0.01), (-0.03, 0.02, 0.2))  # voxels per voxel: channel (x, y, z) x axis
OFFSET = (2.0, -1.5, 0.7)  # voxels at the grid centre


def _affine_field(shape, centres, step, scales, dtype=torch.float64):
    """``(2, 3, *shape)`` normalized fields (batch: the affine field and its negative) of a grid with ``scales`` (x, y,
    z) voxels per normalized unit; the field is evaluated at fine-voxel positions ``step i + centres`` (x, y, z),
    ``(N_fine - 1) / 2`` the fine centre, with ``MATRIX`` and ``OFFSET`` in fine voxels divided by ``step``."""
    d, h, w = shape
    idx = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in (d, h, w)], indexing="ij")
    at = [step * i + c for i, c in zip((idx[2], idx[1], idx[0]), centres)]  # fine-voxel positions (x, y, z)
    out = [(OFFSET[c] + sum(MATRIX[c][k] * at[k] for k in range(3))) / step / scales[c] for c in range(3)]
    field = torch.stack(out).unsqueeze(0)
    return torch.cat((field, -field)).to(dtype)


def _fine(shape, dtype=torch.float64):
    centres = [-(n - 1) / 2 for n in shape[::-1]]
    return _affine_field(shape, centres, 1.0, [(n - 1) / 2 for n in shape[::-1]], dtype)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("shape, factor",
                         [((16, 20, 128), 4), ((18, 21, 130), 4), ((16, 20, 128), 2), ((9, 12, 15), 3)])
def test_pool_and_unpool_keep_an_affine_field_in_place(shape, factor, dtype, atol):
    fine = _fine(shape, dtype)
    coarse = pool_field(fine, factor)
    n = tuple(s // factor for s in shape)
    assert coarse.shape == (2, 3, *n)
    # closed form: the field at the coarse voxel centres, in coarse voxels, normalized on the coarse grid
    centres = [(factor - 1) / 2 - (s - 1) / 2 for s in shape[::-1]]
    expected = _affine_field(n, centres, float(factor), [(m - 1) / 2 for m in n[::-1]], dtype)
    torch.testing.assert_close(coarse, expected, rtol=0, atol=atol)
    back = unpool_field(coarse, shape, factor)
    assert back.shape == fine.shape
    # inside the outermost coarse centres (and before a dropped remainder) it is the fine field itself
    lo, hi = (factor - 1) // 2 + 1, [factor * (s // factor - 1) + (factor - 1) // 2 for s in shape]
    inside = (..., slice(lo, hi[0]), slice(lo, hi[1]), slice(lo, hi[2]))
    torch.testing.assert_close(back[inside], fine[inside], rtol=0, atol=atol)
    # beyond them, the nearest coarse centre's value (a border clamp): the corner voxel gets the field at the first
    # block centre, fine position (f - 1) / 2 along every axis
    corner = _affine_field((1, 1, 1), [(factor - 1) / 2 - (s - 1) / 2 for s in shape[::-1]], 1.0,
                           [(s - 1) / 2 for s in shape[::-1]], dtype)
    torch.testing.assert_close(back[..., :1, :1, :1], corner, rtol=0, atol=atol)


def test_a_translation_keeps_its_length_on_the_coarse_grid():
    """A 3-voxel translation on 128 voxels pooled by 4 is 0.75 coarse voxels. (The block mean alone, read in the
    coarse grid's units as the refinement did before, says 3 x 124 / 127 fine voxels: 2.4 % short.)"""
    fine = torch.zeros(1, 3, 8, 8, 128, dtype=torch.float64)
    fine[:, 0] = 3.0 * 2 / 127
    coarse_voxels = pool_field(fine, 4)[0, 0] * (32 - 1) / 2
    torch.testing.assert_close(coarse_voxels, torch.full_like(coarse_voxels, 0.75), rtol=0, atol=1e-12)
    torch.testing.assert_close(unpool_field(pool_field(fine, 4), (8, 8, 128), 4), fine, rtol=0, atol=1e-12)


def test_factor_one_is_the_identity_and_bad_grids_are_refused():
    field = torch.randn(1, 3, 6, 7, 8)
    assert pool_field(field, 1) is field and unpool_field(field, (6, 7, 8), 1) is field
    with pytest.raises(ValueError, match="pooled by 4 has an axis of fewer than 2 voxels"):
        pool_field(field, 4)
    with pytest.raises(ValueError, match=r"is not grid \(6, 7, 9\) pooled by 1"):
        unpool_field(field, (6, 7, 9), 1)
    with pytest.raises(ValueError, match=r"is not grid \(12, 14, 16\) pooled by 3"):
        unpool_field(field, (12, 14, 16), 3)
