"""The fileformats types of the per-step tasks' files (``fileformats.medimage``, as pydra-tasks-ants uses).

Image inputs accept ``.nii`` and ``.nii.gz``; every image and warp a task writes is ``.nii.gz``.
:data:`PACKAGED_MODEL` is the default of every ``model`` input: a folder, so Pydra's cache key holds its
files' content and a changed packaged model is never answered from an old cached result.
"""

from __future__ import annotations

from fileformats.application import Json
from fileformats.generic import Directory, File
from fileformats.medimage import Nifti1, NiftiGz
from fileformats.text import Tsv

from ..inference.model_io import default_model_dir

Image = Nifti1 | NiftiGz
"""A 3-D NIfTI image, label map or mask (``.nii`` or ``.nii.gz``), or an ITK/ANTs 5-D displacement field."""

PACKAGED_MODEL = default_model_dir()
"""The packaged default model folder."""

__all__ = ["PACKAGED_MODEL", "Directory", "File", "Image", "Json", "NiftiGz", "Tsv"]
