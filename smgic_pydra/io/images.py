"""Load and validate 3-D images (NIfTI ``.nii``/``.nii.gz`` and FreeSurfer ``.mgz``) via nibabel.

Every problem is raised as :class:`~smgic_pydra.io.errors.InputError` with a one-line message
``'<path>: <problem>'``. Images are returned with their data in memory, in their own orientation
(no reorientation: the affine maps array index ``(i, j, k)`` to RAS mm).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError, display_path

KINDS = ("image", "mask", "labels")
GRID_ATOL_MM = 1e-3


def read_header(path, volume: bool = True):
    """The nibabel image of an existing image file whose header is readable, with a finite, non-singular affine
    and, when ``volume``, 3-D (singleton axes after the third allowed); no voxel data is read.
    :class:`InputError` otherwise."""
    import nibabel as nib

    path = Path(path)
    shown = display_path(path)
    if not path.exists():
        raise InputError(shown, "file not found")
    if path.is_dir():
        raise InputError(shown, "is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise InputError(shown, "empty file")
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise InputError(shown, f"not a readable NIfTI/MGZ image ({exc})") from exc
    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise InputError(shown, f"not a spatial image ({type(img).__name__})")
    shape = tuple(img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if volume and len(shape) != 3:
        raise InputError(shown, f"expected a 3-D volume, got shape {tuple(img.shape)}")
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(shown, "the voxel-to-world affine is singular or not finite")
    return img


def read_image_data(path: Path, volume: bool = False):
    """``(image, data array)`` of an existing image file with a valid header (:func:`read_header`; 3-D when
    ``volume``) and readable data; :class:`InputError` otherwise."""
    shown = display_path(path)
    img = read_header(path, volume)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise InputError(shown, f"image data cannot be read, truncated or corrupt file ({exc})") from exc
    return img, data


def _squeeze_to_3d(data: np.ndarray) -> np.ndarray:
    """The 3-D volume of data whose header :func:`read_header` accepted (singleton 4th axes dropped)."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    return data


def load_image(path, kind: str = "image"):
    """Load a 3-D image and validate it; returns a nibabel ``SpatialImage`` with data in memory.

    kind: ``"image"`` (intensities; must not be all zero), ``"mask"`` (brain where ``> 0``; must
    not be all zero) or ``"labels"`` (integer label values; floats with fractional values are
    refused). A 4-D file with a singleton 4th axis is squeezed to 3-D; real 4-D data is refused.
    NaN or infinite voxels and a singular affine are refused for every kind.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = Path(path)
    shown = display_path(path)
    img, data = read_image_data(path, volume=True)
    data = _squeeze_to_3d(data)
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise InputError(shown, f"unsupported voxel type {data.dtype}")
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise InputError(shown, f"{bad} voxels are NaN or infinite")
    affine = np.asarray(img.affine, dtype=np.float64)  # finite and non-singular (read_header)
    if kind == "image" and not np.any(data):
        raise InputError(shown, "image is all zero")
    if kind == "mask" and not np.any(data > 0):
        raise InputError(shown, "mask is empty (no voxel > 0)")
    if kind == "labels" and np.issubdtype(data.dtype, np.floating):
        frac = data[data != np.round(data)]
        if frac.size:
            example = float(frac.flat[0])
            raise InputError(shown, f"labels are floats with fractional values (e.g. {example:g}); expected integers")
        data = data.astype(np.int32)
    out = img.__class__(data, affine, img.header)
    if kind == "labels":
        out.set_data_dtype(data.dtype)
    return out


def check_same_grid(img_a, path_a, img_b, path_b) -> None:
    """Raise :class:`InputError` naming ``path_b`` when its grid (shape, affine) differs from ``img_a``'s.

    Affines are compared with an absolute tolerance of 1e-3 mm.
    """
    shape_a, shape_b = tuple(img_a.shape[:3]), tuple(img_b.shape[:3])
    if shape_a != shape_b:
        raise InputError(display_path(path_b), f"grid shape {shape_b} differs from {shape_a} of {display_path(path_a)}")
    diff = float(np.max(np.abs(np.asarray(img_a.affine) - np.asarray(img_b.affine))))
    if diff > GRID_ATOL_MM:
        raise InputError(
            display_path(path_b), f"affine differs from that of {display_path(path_a)} (max difference {diff:.4g} mm)"
        )


def check_mask_overlaps(img, path, mask_img, mask_path) -> None:
    """Raise :class:`InputError` naming ``mask_path`` when no voxel of the mask (``> 0``) is nonzero in ``img``
    (the mask must be on the image's grid: :func:`check_same_grid`)."""
    if not np.any(np.asarray(img.dataobj)[np.asarray(mask_img.dataobj) > 0]):
        raise InputError(display_path(mask_path), f"the mask does not overlap the nonzero voxels of {display_path(path)}")
