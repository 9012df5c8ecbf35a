"""Pydra task: apply displacement-field warps to an image or a label map (the resampler the registration uses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydra.compose import python

from .filetypes import Image, NiftiGz

INTERPOLATIONS = {"linear": 1, "nearestNeighbor": 0, "genericLabel": "labels"}
"""ANTs' interpolation names -> :func:`~smgic_pydra.worldspace.sampling.resample` orders (genericLabel:
label-aware, the label with the largest trilinear weight, so no new label values appear)."""


def composed_displacement(transforms, reference) -> np.ndarray:
    """``(X, Y, Z, 3)`` RAS-mm displacement on the reference grid of ITK/ANTs warps applied in ANTs' order
    (the last listed is applied first to the reference point; zero displacement outside a field's grid).

    A first-applied field on the reference grid is used as it is (no resampling), as the cohort engine does.
    """
    from ..io.itk_warp import read_itk_displacement
    from ..worldspace.sampling import resample

    shape, affine = tuple(reference.shape[:3]), np.asarray(reference.affine, dtype=np.float64)
    total = None
    for path in reversed(list(transforms)):
        disp, grid = read_itk_displacement(path)
        if total is None and disp.shape[:3] == shape and np.allclose(grid, affine, atol=1e-3):
            total = disp
            continue
        moved = np.zeros(shape + (3,)) if total is None else total
        total = moved + np.stack([resample(disp[..., c], grid, affine, shape, 1, moved) for c in range(3)], axis=-1)
    return total


def apply_warp(input_image: Image, reference_image: Image, transforms: list[Image] | Image,
               interpolation: str = "linear") -> NiftiGz:
    """``out(x) = input_image(x + u(x))`` on the reference grid, as ``antsApplyTransforms -t transforms``.

    Args:
        input_image: 3-D image or label map on the moving grid (.nii or .nii.gz).
        reference_image: image defining the output grid (shape, voxel-to-RAS affine), e.g. the fixed image.
        transforms: ITK/ANTs 5-D displacement field (LPS mm, pull-back), e.g. a registration's forward_warp, or a
            list of them applied in ANTs' order (the last listed first).
        interpolation: linear (float32), nearestNeighbor or genericLabel (label-aware, integer labels).

    Returns:
        output_image: input_image on the reference grid (0 outside input_image), .nii.gz.
    """
    from ..io.atomic import save_nifti
    from ..io.images import load_image
    from ..worldspace.outputs import nifti_image, resample_with_displacement

    order = INTERPOLATIONS[interpolation]
    source = load_image(input_image, "labels" if order == "labels" else "image")
    reference = load_image(reference_image, "image")
    disp = composed_displacement(transforms if isinstance(transforms, (list, tuple)) else [transforms], reference)
    data = resample_with_displacement(source, disp, reference.affine, reference.shape[:3], order)
    if order == "labels":
        data = data.astype(np.int32)
    name = Path(input_image).name.split(".")[0] + "_warped.nii.gz"
    return save_nifti(nifti_image(data, np.asarray(reference.affine, dtype=np.float64)), Path.cwd() / name)


ApplyWarp = python.define(apply_warp, outputs=["output_image"], name="ApplyWarp", inputs={
    "interpolation": python.arg(type=str, default="linear", allowed_values=tuple(INTERPOLATIONS),
                                help="linear (float32), nearestNeighbor or genericLabel (labels)")})
"""Pydra task of :func:`apply_warp`."""
