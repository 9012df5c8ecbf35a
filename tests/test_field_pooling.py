"""Fields between a grid and its avg-pooled grid (``transforms.pooling``), against closed forms: a field linear in
the voxel index, in voxels, is the same physical field on both grids (coarse voxel ``i`` = fine voxel
``f i + (f - 1) / 2``, one coarse voxel = ``f`` fine voxels)."""

import pytest
import torch

from smgic_pydra.transforms import pool_field, unpool_field


def _linear_field(shape, slope, offset):
    """``(1, 3, D, H, W)`` normalized field whose channel c (x, y, z) is ``offset + slope (p_c - centre)`` voxels."""
    d, h, w = shape
    idx = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in (d, h, w)], indexing="ij")
    coords = (idx[2], idx[1], idx[0])  # (x, y, z)
    sizes = (w, h, d)
    channels = [(offset[c] + slope[c] * (coords[c] - (sizes[c] - 1) / 2)) * 2 / (sizes[c] - 1) for c in range(3)]
    return torch.stack(channels).unsqueeze(0)


@pytest.mark.parametrize("shape, factor", [((16, 20, 128), 4), ((18, 21, 130), 4), ((16, 20, 128), 2), ((9, 12, 15), 3)])
def test_pool_and_unpool_keep_a_linear_field_in_place(shape, factor):
    slope, offset = (0.1, -0.05, 0.2), (2.0, -1.5, 0.7)
    fine = _linear_field(shape, slope, offset)
    coarse = pool_field(fine, factor)
    n = tuple(s // factor for s in shape)
    assert coarse.shape == (1, 3, *n)
    # closed form on the coarse grid: the fine field at coarse voxel centres, in coarse voxels, then normalized
    d, h, w = n
    idx = torch.meshgrid(*[torch.arange(m, dtype=torch.float64) for m in (d, h, w)], indexing="ij")
    for c, (i, size, m) in enumerate(zip((idx[2], idx[1], idx[0]), shape[::-1], (w, h, d))):
        at_fine = factor * i + (factor - 1) / 2
        voxels = (offset[c] + slope[c] * (at_fine - (size - 1) / 2)) / factor
        torch.testing.assert_close(coarse[0, c], voxels * 2 / (m - 1), rtol=0, atol=1e-12)
    back = unpool_field(coarse, shape, factor)
    assert back.shape == fine.shape
    # inside the outermost coarse centres (and before a dropped remainder) it is the fine field itself
    lo, hi = (factor - 1) // 2 + 1, [factor * (s // factor - 1) + (factor - 1) // 2 for s in shape]
    torch.testing.assert_close(back[..., lo:hi[0], lo:hi[1], lo:hi[2]], fine[..., lo:hi[0], lo:hi[1], lo:hi[2]],
                               rtol=0, atol=1e-12)


def test_a_translation_keeps_its_length_on_the_coarse_grid():
    """A 3-voxel translation on 128 voxels pooled by 4 is 0.75 coarse voxels; the block mean read in the coarse
    grid's units (what the refinement did before this module) says 3 x 124 / 127 fine voxels (2.4 % short)."""
    fine = _linear_field((8, 8, 128), (0.0, 0.0, 0.0), (3.0, 0.0, 0.0))
    block_mean_voxels = torch.nn.functional.avg_pool3d(fine, 4)[0, 0] * (32 - 1) / 2 * 4
    torch.testing.assert_close(block_mean_voxels, torch.full_like(block_mean_voxels, 3.0 * 124 / 127), rtol=0,
                               atol=1e-12)
    coarse_voxels = pool_field(fine, 4)[0, 0] * (32 - 1) / 2
    torch.testing.assert_close(coarse_voxels, torch.full_like(coarse_voxels, 0.75), rtol=0, atol=1e-12)
    torch.testing.assert_close(unpool_field(pool_field(fine, 4), (8, 8, 128), 4), fine, rtol=0, atol=1e-12)
