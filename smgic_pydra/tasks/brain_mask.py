"""Pydra task: a brain mask from a raw T1w with a skull stripper of
:data:`~smgic_pydra.preparation.skullstrip.SKULL_STRIPPERS`."""

from __future__ import annotations

from pathlib import Path

from pydra.compose import python

from ..preparation.skullstrip import SKULL_STRIPPERS
from .filetypes import Image, NiftiGz

TOOLS = tuple(name for name, s in SKULL_STRIPPERS.items() if s.mask is not None)


def brain_mask(t1w: Image, method: str = "deepbet") -> NiftiGz:
    """Brain mask of a T1w head image (with skull), on the T1w's own grid.

    Args:
        t1w: T1w head image (.nii or .nii.gz, any orientation).
        method: deepbet (Python; weights in its wheel, CPU or CUDA) or synthstrip (FreeSurfer's mri_synthstrip on PATH).

    Returns:
        mask: uint8 brain mask (1 = brain) with the T1w's shape and voxel-to-RAS affine, .nii.gz.
    """
    import numpy as np

    from ..io.atomic import save_nifti
    from ..io.images import load_image
    from ..worldspace.outputs import nifti_image

    image = load_image(t1w, "image")
    mask = SKULL_STRIPPERS[method].mask(Path(t1w), image)
    return save_nifti(nifti_image(mask.astype(np.uint8), np.asarray(image.affine, dtype=np.float64)),
                      Path.cwd() / "brain_mask.nii.gz")


BrainMask = python.define(brain_mask, outputs=["mask"], name="BrainMask", inputs={
    "method": python.arg(type=str, default="deepbet", allowed_values=TOOLS,
                         help="skull stripper: " + ", ".join(TOOLS))})
"""Pydra task of :func:`brain_mask`."""
