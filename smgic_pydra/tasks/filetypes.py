"""The fileformats types of the per-step tasks' files (``fileformats.medimage``, as pydra-tasks-ants uses).

Image inputs accept ``.nii`` and ``.nii.gz``; every image and warp a task writes is ``.nii.gz``.
"""

from __future__ import annotations

from fileformats.application import Json
from fileformats.generic import Directory, File
from fileformats.medimage import Nifti1, NiftiGz
from fileformats.text import Tsv

Image = Nifti1 | NiftiGz
"""A 3-D NIfTI image, label map or mask (``.nii`` or ``.nii.gz``), or an ITK/ANTs 5-D displacement field."""

__all__ = ["Directory", "File", "Image", "Json", "NiftiGz", "Tsv"]
