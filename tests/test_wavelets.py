"""3-D Haar DWT and pyramid against pywavelets (pywt.dwtn 'haar') and closed forms."""

import math

import numpy as np
import pytest
import pywt
import torch

from smgic_pydra.config import small_config
from smgic_pydra.wavelets import BAND_KEYS, haar_dwt3d, haar_idwt3d, wavelet_pyramid

SHAPE = (16, 24, 32)  # (D, H, W), deliberately non-cubic
GAIN = 2.0 * math.sqrt(2.0)


def random_volume(shape=SHAPE, batch=2, seed=0, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((batch, 1, *shape))).to(dtype)


def pywt_chain(volume: np.ndarray, steps: int = 3):
    """[(approximation, sum of squared details)] for ``steps`` pywt.dwtn 'haar' decompositions."""
    out, approx = [], volume
    for _ in range(steps):
        coeffs = pywt.dwtn(approx, "haar", axes=(0, 1, 2))
        approx = coeffs["aaa"]
        out.append((approx, sum(coeffs[k] ** 2 for k in BAND_KEYS[1:])))
    return out


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_bands_equal_pywt_dwtn(dtype, tol):
    x = random_volume(dtype=dtype)
    bands = haar_dwt3d(x)
    assert bands.shape == (2, 1, 8, 8, 12, 16)
    for b in range(2):
        ref = pywt.dwtn(x[b, 0].double().numpy(), "haar", axes=(0, 1, 2))
        assert set(ref) == set(BAND_KEYS)
        for band, key in enumerate(BAND_KEYS):
            np.testing.assert_allclose(bands[b, 0, band].double().numpy(), ref[key], atol=tol, rtol=0, err_msg=key)


def test_multichannel_bands_are_per_channel():
    x = random_volume(batch=1).repeat(1, 3, 1, 1, 1) * torch.tensor([1.0, 2.0, -1.0]).view(1, 3, 1, 1, 1).double()
    bands = haar_dwt3d(x)
    ref = pywt.dwtn(x[0, 2].numpy(), "haar")
    np.testing.assert_allclose(bands[0, 2, 7].numpy(), ref["ddd"], atol=1e-12)


def test_idwt_reconstructs_perfectly_and_matches_pywt_idwtn():
    x = random_volume()
    bands = haar_dwt3d(x)
    np.testing.assert_allclose(haar_idwt3d(bands).numpy(), x.numpy(), atol=1e-12)
    # the inverse of arbitrary coefficients equals pywt.idwtn of the same coefficients
    coeffs = torch.randn(1, 1, 8, 4, 5, 6, dtype=torch.float64)
    ref = pywt.idwtn({k: coeffs[0, 0, i].numpy() for i, k in enumerate(BAND_KEYS)}, "haar")
    np.testing.assert_allclose(haar_idwt3d(coeffs)[0, 0].numpy(), ref, atol=1e-12)


def test_odd_sides_are_rejected():
    with pytest.raises(ValueError, match="even"):
        haar_dwt3d(torch.zeros(1, 1, 4, 5, 6))


def test_pyramid_shapes_and_level_inputs():
    x = random_volume(dtype=torch.float32)
    pyr = wavelet_pyramid(x, small_config())
    assert [t.shape[-3:] for t in pyr.lll] == [(8, 12, 16), (4, 6, 8), (2, 3, 4)]
    assert [t.shape[-3:] for t in pyr.energy] == [(8, 12, 16), (4, 6, 8)]
    expected = {1: (pyr.lll[2], None), 2: (pyr.lll[1], pyr.energy[1]), 3: (pyr.lll[0], pyr.energy[0]), 4: (x, None)}
    for level, (image, energy) in expected.items():
        got_image, got_energy = pyr.level_inputs(level)
        assert got_image is image and got_energy is energy


def test_lll_of_constant_image_is_the_constant_after_normalization():
    c = 0.7
    x = torch.full((1, 1, *SHAPE), c, dtype=torch.float64)
    normalized = wavelet_pyramid(x, small_config(lll_normalize=True))
    raw = wavelet_pyramid(x, small_config(lll_normalize=False))
    for k in range(3):
        np.testing.assert_allclose(normalized.lll[k].numpy(), c, atol=1e-12)
        np.testing.assert_allclose(raw.lll[k].numpy(), c * GAIN ** (k + 1), atol=1e-12)
    # no detail energy in a constant image: the percentile guard keeps rounding noise near zero (no 0/0)
    for em in normalized.energy:
        assert em.abs().max() < 1e-12


def test_raw_pyramid_matches_pywt_chain():
    x = random_volume()
    pyr = wavelet_pyramid(x, small_config(lll_normalize=False, energy_normalize="raw"))
    for b in range(2):
        for k, (approx, energy) in enumerate(pywt_chain(x[b, 0].numpy())):
            np.testing.assert_allclose(pyr.lll[k][b, 0].numpy(), approx, atol=1e-12)
            if k < 2:
                np.testing.assert_allclose(pyr.energy[k][b, 0].numpy(), energy, atol=1e-12)


def test_energy_normalizations_against_numpy():
    x = random_volume()
    x[1] *= 3.0  # a different scale per sample: percentile scaling is per sample
    x[0, 0, :4] = 0.0  # some zero energy
    percentile = small_config(energy_normalize="percentile", energy_percentile=95.0)
    scaled = wavelet_pyramid(x, percentile)
    logged = wavelet_pyramid(x, small_config(energy_normalize="log1p"))
    for b in range(2):
        for k, (_, energy) in enumerate(pywt_chain(x[b, 0].numpy())[:2]):
            scale = np.percentile(energy[energy > 0], 95.0)
            np.testing.assert_allclose(scaled.energy[k][b, 0].numpy(), energy / scale, rtol=1e-10)
            np.testing.assert_allclose(logged.energy[k][b, 0].numpy(), np.log1p(energy), rtol=1e-10)
