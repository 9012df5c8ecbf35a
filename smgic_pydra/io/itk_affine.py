"""Affine transforms in ITK's MATLAB (``.mat``) format, as ``antsRegistration`` writes them.

A file holds ``AffineTransform_double_3_3`` (12 values: the 3 x 3 matrix row by row, then the
translation) and ``fixed`` (the centre, here 0), in LPS millimetres. Like the warps, the transform
maps points of the fixed (reference) space to the moving space (pull-back), which is what
``antsApplyTransforms -t`` expects. In memory (our convention) the affine is a 4 x 4 RAS-mm matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path

RAS_TO_LPS_4 = np.diag([-1.0, -1.0, 1.0, 1.0])
TRANSFORM_TYPE = "AffineTransform_double_3_3"


def ras_to_lps_affine(matrix_ras: np.ndarray) -> np.ndarray:
    """The same point mapping expressed in LPS coordinates (``D A D`` with ``D = diag(-1, -1, 1, 1)``)."""
    return RAS_TO_LPS_4 @ np.asarray(matrix_ras, dtype=np.float64) @ RAS_TO_LPS_4


def itk_affine_parameters(matrix_ras: np.ndarray) -> np.ndarray:
    """ITK parameters (12 values, LPS) of a 4 x 4 RAS-mm affine with centre 0."""
    lps = ras_to_lps_affine(matrix_ras)
    return np.concatenate([lps[:3, :3].ravel(), lps[:3, 3]])


def write_itk_affine_mat(path, matrix_ras: np.ndarray) -> Path:
    """Write a 4 x 4 RAS-mm affine (fixed -> moving points) as an ITK ``.mat`` file (atomic)."""
    from scipy.io import savemat

    matrix = np.asarray(matrix_ras, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)) or not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise ValueError(f"affine must be a finite 4x4 matrix with last row 0 0 0 1, got {matrix.tolist()}")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        savemat(fh, {TRANSFORM_TYPE: itk_affine_parameters(matrix)[:, None], "fixed": np.zeros((3, 1))}, format="4")
    return path
