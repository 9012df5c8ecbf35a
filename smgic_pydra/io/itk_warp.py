"""Displacement fields in the ITK/ANTs NIfTI layout.

On disk: 5-D ``(X, Y, Z, 1, 3)`` float32, intent ``vector`` (NIFTI_INTENT_VECTOR = 1007), vector
components in LPS millimetres (ITK's physical space), on the grid of the given affine. In memory
(our convention): ``(X, Y, Z, 3)`` RAS-mm displacement of the point at each voxel. The field is
a pull-back displacement: a point ``x`` of the reference grid maps to ``x + u(x)``, which is what
``antsApplyTransforms`` / ``ants.apply_transforms`` expect for a fixed-to-moving warp.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import save_nifti
from .errors import InputError, display_path
from .images import read_image_data

RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])
NIFTI_INTENT_VECTOR = 1007


def _check_field(disp: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    disp = np.asarray(disp)
    affine = np.asarray(affine, dtype=np.float64)
    if disp.ndim != 4 or disp.shape[-1] != 3:
        raise ValueError(f"displacement must be (X, Y, Z, 3), got {disp.shape}")
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got {affine.shape}")
    if not np.all(np.isfinite(disp)):
        raise ValueError("displacement contains NaN or infinite values")
    return disp, affine


def write_itk_displacement(path, disp_ras_mm: np.ndarray, affine: np.ndarray) -> Path:
    """Write a ``(X, Y, Z, 3)`` RAS-mm displacement on the grid ``affine`` as an ITK/ANTs warp (atomic)."""
    import nibabel as nib

    disp, affine = _check_field(disp_ras_mm, affine)
    data = disp.astype(np.float32)[:, :, :, None, :]  # a copy: RAS -> LPS negates x and y (exact in float32)
    data[..., :2] *= -1
    img = nib.Nifti1Image(data, affine)
    img.header.set_intent("vector", (), name="")
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return save_nifti(img, path)


def read_itk_displacement(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an ITK/ANTs warp; returns ``(disp (X, Y, Z, 3) RAS mm float64, affine (4, 4))``.

    Raises :class:`InputError` when the file is not a 5-D ``(X, Y, Z, 1, 3)`` vector field.
    """
    path = Path(path)
    img, data = read_image_data(path)
    if data.ndim != 5 or data.shape[3] != 1 or data.shape[4] != 3:
        raise InputError(display_path(path), f"not an ITK displacement field (X, Y, Z, 1, 3), got shape {data.shape}")
    disp = data[:, :, :, 0, :].astype(np.float64) * RAS_TO_LPS
    if not np.all(np.isfinite(disp)):
        raise InputError(display_path(path), "displacement contains NaN or infinite values")
    return disp, np.asarray(img.affine, dtype=np.float64)
