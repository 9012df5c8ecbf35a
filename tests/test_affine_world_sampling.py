"""Sampling on an affine world grid against scipy's ``map_coordinates`` (values and the gradient in the grid's affine)."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from smgic_pydra.affine.world_sampling import sample_on_grid

RNG = np.random.default_rng(3)
IMAGE = RNG.random((20, 24, 18))
IMAGE_AFFINE = np.array([[1.5, 0.1, 0.0, -10.0], [0.0, 1.4, 0.2, 5.0], [0.1, 0.0, 1.6, -3.0], [0, 0, 0, 1]])
SHAPE = (17, 21, 15)


def _grid_affine(seed: int) -> np.ndarray:
    """An oblique, anisotropic grid that overlaps the image and leaves it on some sides (so zeros outside count)."""
    rng = np.random.default_rng(seed)
    grid = np.eye(4)
    grid[:3, :3] = np.diag([1.23, 1.07, 1.31]) + rng.normal(0, 0.08, (3, 3))
    grid[:3, 3] = [-14.3, 2.9, -7.7] + rng.normal(0, 1.0, 3)
    return grid


def _reference(grid_affine: np.ndarray, order: int) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1).reshape(-1, 3)
    source = (np.linalg.inv(IMAGE_AFFINE) @ grid_affine @ np.c_[idx, np.ones(len(idx))].T)[:3]
    return ndi.map_coordinates(IMAGE, source, order=order, mode="grid-constant", cval=0.0).reshape(SHAPE)


@pytest.mark.parametrize("seed", [0, 1])
def test_trilinear_and_nearest_values_match_scipy_with_zeros_outside(seed):
    grid = _grid_affine(seed)
    image = torch.as_tensor(IMAGE, dtype=torch.float32)[None, None]
    linear = sample_on_grid(image, IMAGE_AFFINE, grid, SHAPE)[0, 0].numpy()
    reference = _reference(grid, 1)
    assert (reference == 0).any() and (reference > 0).mean() > 0.3  # the grid leaves the image
    np.testing.assert_allclose(linear, reference, atol=2e-5)
    nearest = sample_on_grid(image, IMAGE_AFFINE, torch.as_tensor(grid), SHAPE, "nearest")[0, 0].numpy()
    np.testing.assert_array_equal(nearest, _reference(grid, 0).astype(np.float32))


def test_channels_are_sampled_alike_and_the_gradient_in_the_affine_matches_finite_differences():
    grid = _grid_affine(2)
    stacked = torch.as_tensor(np.stack([IMAGE, 2.0 * IMAGE]), dtype=torch.float64)[None]
    values = sample_on_grid(stacked, IMAGE_AFFINE, grid, SHAPE)[0].numpy()
    np.testing.assert_allclose(values[1], 2.0 * values[0], rtol=1e-12)
    weights = RNG.random(SHAPE)
    affine = torch.tensor(grid, dtype=torch.float64, requires_grad=True)
    (sample_on_grid(stacked[:, :1], IMAGE_AFFINE, affine, SHAPE)[0, 0] * torch.as_tensor(weights)).sum().backward()

    def objective(g):
        return float((_reference(g, 1) * weights).sum())

    h = 1e-6
    for row, col in [(0, 0), (1, 2), (2, 1), (0, 3), (2, 3)]:
        step = np.zeros((4, 4))
        step[row, col] = h
        numeric = (objective(grid + step) - objective(grid - step)) / (2 * h)
        assert affine.grad[row, col].item() == pytest.approx(numeric, rel=1e-4, abs=1e-6)
