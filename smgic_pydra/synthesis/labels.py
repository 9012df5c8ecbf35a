"""Reading FreeSurfer-style label maps used to synthesize subjects."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

EXTRACEREBRAL_MIN = 100
"""SynthSeg training maps label non-brain tissue (skull, scalp, eyes...) with values >= 100."""


def load_label_map(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Label map as ``int32`` array ``(X, Y, Z)`` and its voxel -> RAS mm affine."""
    img = nib.load(str(path))
    data = np.asarray(img.dataobj)
    labels = np.rint(data).astype(np.int32)
    return labels, img.affine.copy()


def brain_mask(labels: np.ndarray) -> np.ndarray:
    """Brain voxels: labels in ``(0, 100)`` (FreeSurfer brain structures and CSF)."""
    return (labels > 0) & (labels < EXTRACEREBRAL_MIN)
