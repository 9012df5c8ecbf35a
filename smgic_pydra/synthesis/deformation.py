"""Known random deformations for synthetic subjects: affines and smooth displacement fields."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation


def random_affine(
    rng: np.random.Generator,
    max_rotation_deg: float = 15.0,
    max_translation_mm: float = 15.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
) -> np.ndarray:
    """Random ``(4, 4)`` affine in RAS mm about the origin: per-axis scaling, then rotation, then translation.

    Rotation angles about x, y, z are uniform in ``+-max_rotation_deg``; translations uniform in
    ``+-max_translation_mm``; scales uniform in ``scale_range``.
    """
    angles = rng.uniform(-max_rotation_deg, max_rotation_deg, 3)
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix() @ np.diag(rng.uniform(*scale_range, 3))
    out[:3, 3] = rng.uniform(-max_translation_mm, max_translation_mm, 3)
    return out


def random_smooth_displacement(
    shape, rng: np.random.Generator, max_disp_vox: float = 4.0, control_spacing: int = 16
) -> np.ndarray:
    """Smooth random displacement ``(X, Y, Z, 3)`` in voxels along the array axes.

    Gaussian values on a control lattice every ``control_spacing`` voxels, cubic-B-spline upsampled,
    scaled so the largest component is ``max_disp_vox``. Keep ``max_disp_vox`` well below
    ``control_spacing / 3`` for a diffeomorphic (fold-free) field.
    """
    shape = tuple(int(n) for n in shape)
    coarse_shape = [max(2, int(np.ceil(n / control_spacing)) + 1) for n in shape]
    comps = []
    for _ in range(3):
        coarse = rng.standard_normal(coarse_shape)
        zoom = [(n + control_spacing) / c for n, c in zip(shape, coarse_shape)]
        comps.append(ndimage.zoom(coarse, zoom, order=3, mode="nearest")[tuple(slice(0, n) for n in shape)])
    disp = np.stack(comps, axis=-1)
    return (disp * (max_disp_vox / max(np.abs(disp).max(), 1e-9))).astype(np.float32)


def deform_volume(volume: np.ndarray, disp_vox: np.ndarray, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Pull-back warp ``out[p] = volume[p + disp_vox[p]]`` (array-index voxels).

    ``order=0`` for label maps (nearest neighbour keeps the label set), 1 for images.
    """
    grid = np.indices(volume.shape, dtype=np.float32)
    coords = grid + np.moveaxis(disp_vox, -1, 0)
    return ndimage.map_coordinates(volume, coords, order=order, mode="constant", cval=cval).astype(volume.dtype)
