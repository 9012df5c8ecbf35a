"""Displacement fields as ITK HDF5 composite transforms (the nipreps ``_xfm.h5`` convention).

Layout (as written by ITK/ANTs): ``/TransformGroup/0`` is a ``CompositeTransform_double_3_3``,
optionally followed by an ``AffineTransform_double_3_3`` (12 parameters, LPS, centre 0 as fixed
parameters), then a ``DisplacementFieldTransform_double_3_3`` whose fixed parameters are
``size(3), origin(3), spacing(3), direction(9, row-major)`` in LPS, and whose parameters are the
LPS-mm displacement vectors interleaved, x index fastest. The displacements are stored in float32
(the precision of every field we compute), chunked and gzip-compressed with byte shuffle: ITK
reads both filters and converts the values to double. ITK applies a composite's transforms
last first: a point ``x`` maps to ``A(x + d(x))``, as in ``antsRegistration``'s composites.
``h5py`` is imported lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .itk_affine import TRANSFORM_TYPE as AFFINE_TYPE
from .itk_affine import itk_affine_parameters
from .itk_warp import RAS_TO_LPS, _check_field


def itk_grid_parameters(affine: np.ndarray, shape) -> np.ndarray:
    """ITK fixed parameters ``size, origin, spacing, direction`` (18 values, LPS) of a NIfTI grid."""
    affine = np.asarray(affine, dtype=np.float64)
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = RAS_TO_LPS[:, None] * (linear / spacing)
    origin = RAS_TO_LPS * affine[:3, 3]
    return np.concatenate([np.asarray(shape[:3], dtype=np.float64), origin, spacing, direction.ravel()])


def _strings(*values: str) -> np.ndarray:
    return np.array([v.encode("ascii") for v in values], dtype=object)


def write_itk_composite_h5(path, disp_ras_mm: np.ndarray, affine: np.ndarray, prefix_affine=None) -> Path:
    """Write a ``(X, Y, Z, 3)`` RAS-mm displacement on grid ``affine`` as an ITK composite ``.h5`` (atomic).

    prefix_affine: optional 4 x 4 RAS-mm affine ``A`` stored before the field, so the composite maps
    ``x`` to ``A(x + d(x))`` (``d`` = ``disp_ras_mm``, the residual field).
    """
    import h5py

    disp, affine = _check_field(disp_ras_mm, affine)
    params = (disp.astype(np.float32) * RAS_TO_LPS.astype(np.float32)).transpose(2, 1, 0, 3).ravel()
    text = h5py.string_dtype("ascii")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("HDFVersion", data=_strings(h5py.version.hdf5_version), dtype=text)
        group = h5.create_group("TransformGroup")
        composite = group.create_group("0")
        composite.create_dataset("TransformType", data=_strings("CompositeTransform_double_3_3"), dtype=text)
        if prefix_affine is not None:
            linear = group.create_group("1")
            linear.create_dataset("TransformType", data=_strings(AFFINE_TYPE), dtype=text)
            linear.create_dataset("TransformFixedParameters", data=np.zeros(3))
            linear.create_dataset("TransformParameters", data=itk_affine_parameters(prefix_affine))
        field = group.create_group(str(len(group)))
        field.create_dataset("TransformType", data=_strings("DisplacementFieldTransform_double_3_3"), dtype=text)
        field.create_dataset("TransformFixedParameters", data=itk_grid_parameters(affine, disp.shape))
        field.create_dataset("TransformParameters", data=params, chunks=(min(params.size, 1 << 18),),
                             compression="gzip", compression_opts=4, shuffle=True)
    return path
