"""Image loading and validation, atomic writes, ITK/ANTs displacement-field files."""

from .._lazy import lazy_exports

_EXPORTS = {
    "atomic_path": ".atomic",
    "atomic_paths": ".atomic",
    "save_json": ".atomic",
    "save_nifti": ".atomic",
    "InputError": ".errors",
    "MissingToolError": ".errors",
    "sha256_file": ".hashing",
    "check_same_grid": ".images",
    "load_image": ".images",
    "write_itk_composite_h5": ".itk_h5",
    "read_itk_displacement": ".itk_warp",
    "write_itk_displacement": ".itk_warp",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
