"""Initial affine candidates from the brain masks' centres of mass and principal axes."""

from __future__ import annotations

from itertools import product

import numpy as np

from ..worldspace.sampling import apply_affine


def mask_moments(mask: np.ndarray, index_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass ``(3,)`` (RAS mm) and covariance ``(3, 3)`` (mm^2) of the voxels where ``mask`` is true."""
    points = apply_affine(index_affine, np.argwhere(mask).astype(np.float64))
    if len(points) < 4:
        raise ValueError("the brain mask has fewer than 4 voxels")
    centre = points.mean(axis=0)
    return centre, np.cov((points - centre).T)


def moment_candidates(fixed_mask, fixed_affine, moving_mask, moving_affine) -> list[np.ndarray]:
    """Affines ``(4, 4)`` mapping fixed RAS mm to moving RAS mm that match the masks' centres of mass.

    The first keeps the axes (translation and isotropic scale only); the other four rotate the
    fixed principal axes onto the moving ones, one per sign choice with determinant +1 (the
    eigenvectors' signs are ambiguous, so the caller scores the candidates on the images).
    The isotropic scale is ``(det C_moving / det C_fixed)^(1/6)``.
    """
    c_f, cov_f = mask_moments(fixed_mask, fixed_affine)
    c_m, cov_m = mask_moments(moving_mask, moving_affine)
    scale = (np.linalg.det(cov_m) / np.linalg.det(cov_f)) ** (1.0 / 6.0)
    e_f = np.linalg.eigh(cov_f)[1]
    e_m = np.linalg.eigh(cov_m)[1]
    rotations = [np.eye(3)]
    for signs in product((1.0, -1.0), repeat=3):
        rotation = e_m @ np.diag(signs) @ e_f.T
        if np.linalg.det(rotation) > 0:
            rotations.append(rotation)
    candidates = []
    for rotation in rotations:
        a = np.eye(4)
        a[:3, :3] = scale * rotation
        a[:3, 3] = c_m - a[:3, :3] @ c_f
        candidates.append(a)
    return candidates
