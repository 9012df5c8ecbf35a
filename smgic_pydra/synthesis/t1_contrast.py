"""T1-weighted-like images from label maps: tissue intensities, blur, bias field and noise."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .labels import brain_mask

# Mean T1w intensity (white matter ~0.8) per FreeSurfer label; unlisted brain labels get GREY.
GREY = 0.5
T1_MEANS = {
    2: 0.80, 41: 0.80, 7: 0.78, 46: 0.78, 16: 0.74, 28: 0.70, 60: 0.70, 77: 0.75, 85: 0.75,
    3: 0.50, 42: 0.50, 8: 0.55, 47: 0.55, 17: 0.50, 53: 0.50, 18: 0.52, 54: 0.52,
    4: 0.15, 43: 0.15, 5: 0.18, 44: 0.18, 14: 0.15, 15: 0.15, 24: 0.12, 72: 0.15,
    10: 0.68, 49: 0.68, 11: 0.58, 50: 0.58, 12: 0.62, 51: 0.62, 13: 0.72, 52: 0.72,
    26: 0.57, 58: 0.57, 30: 0.40, 62: 0.40, 31: 0.45, 63: 0.45,
}


def smooth_random_field(shape, rng: np.random.Generator, control_points: int = 4) -> np.ndarray:
    """Smooth random field in about ``[-1, 1]``: a ``control_points^3`` Gaussian lattice, cubic-upsampled."""
    coarse = rng.standard_normal((control_points,) * 3)
    zoom = [n / control_points for n in shape]
    field = ndimage.zoom(coarse, zoom, order=3, mode="nearest")[tuple(slice(0, n) for n in shape)]
    return field / max(np.abs(field).max(), 1e-6)


def gamma_curve(image: np.ndarray, gamma: float) -> np.ndarray:
    """``image ** gamma`` (float32) of an image ``>= 0``, the same bits on every CPU: the C library's ``pow`` in
    float64 on the nonzero voxels, rounded to float32 (numpy's ``power`` takes its own AVX-512 code path where the
    CPU has one, so one seed synthesized other images there)."""
    out = np.zeros(image.shape, dtype=np.float32)
    inside = image > 0
    out[inside] = np.frompyfunc(math.pow, 2, 1)(image[inside].astype(np.float64), float(gamma)).astype(np.float32)
    return out


def synthesize_t1(
    labels: np.ndarray,
    rng: np.random.Generator,
    voxel_size_mm: float = 1.0,
    contrast_jitter: float = 0.05,
    blur_fwhm_mm: float = 1.0,
    bias_strength: float = 0.15,
    noise_std: float = 0.02,
    gamma_range: tuple[float, float] = (0.8, 1.25),
) -> np.ndarray:
    """Skull-stripped T1w-like ``float32`` image in ``[0, 1]`` on the label map's grid.

    Each label gets ``T1_MEANS`` (+- ``contrast_jitter``), then Gaussian blur (FWHM in mm), a smooth
    multiplicative bias field (+- ``bias_strength``), a random gamma and Gaussian noise
    (std relative to white matter). Voxels outside the brain (see :func:`brain_mask`) are 0.
    """
    mask = brain_mask(labels)
    lut_keys = np.unique(labels[mask])
    means = np.array([T1_MEANS.get(int(k), GREY) for k in lut_keys]) + rng.uniform(
        -contrast_jitter, contrast_jitter, len(lut_keys)
    )
    image = np.zeros(labels.shape, dtype=np.float32)
    image[mask] = means[np.searchsorted(lut_keys, labels[mask])]
    if blur_fwhm_mm > 0:
        image = ndimage.gaussian_filter(image, blur_fwhm_mm / 2.3548 / voxel_size_mm)
    image *= 1.0 + bias_strength * smooth_random_field(labels.shape, rng)
    image = gamma_curve(np.clip(image, 0, None), rng.uniform(*gamma_range))
    image += rng.normal(0.0, noise_std, labels.shape)
    image = np.clip(image, 0, None) * mask
    return (image / max(float(image.max()), 1e-6)).astype(np.float32)
