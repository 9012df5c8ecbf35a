"""Image loading and validation, atomic writes, ITK/ANTs displacement-field files."""

from .atomic import atomic_path, atomic_paths, save_json, save_nifti
from .errors import InputError, MissingToolError
from .hashing import sha256_file
from .images import check_same_grid, load_image
from .itk_h5 import write_itk_composite_h5
from .itk_warp import read_itk_displacement, write_itk_displacement

__all__ = [
    "InputError",
    "MissingToolError",
    "atomic_path",
    "atomic_paths",
    "check_same_grid",
    "load_image",
    "read_itk_displacement",
    "save_json",
    "save_nifti",
    "sha256_file",
    "write_itk_composite_h5",
    "write_itk_displacement",
]
