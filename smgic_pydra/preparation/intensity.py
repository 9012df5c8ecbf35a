"""Intensity normalisation of a skull-stripped image."""

from __future__ import annotations

import numpy as np

CLIP_PERCENTILES = (0.01, 99.99)


def normalize_intensity(data: np.ndarray, mask: np.ndarray, percentiles=CLIP_PERCENTILES) -> tuple[np.ndarray, tuple]:
    """Clip at the given percentiles of the voxels inside ``mask``, scale to ``[0, 1]``, zero outside.

    Returns ``(float32 array, (low, high))`` with the clip values in the input's units.
    Raises ``ValueError`` when the image is constant inside the mask.
    """
    inside = np.asarray(data, dtype=np.float64)[mask]
    low, high = (float(v) for v in np.percentile(inside, percentiles))
    if not high > low:
        raise ValueError(f"image is constant ({low:g}) inside the brain mask")
    out = np.clip((np.asarray(data, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    out[~mask] = 0.0
    return out.astype(np.float32), (low, high)
