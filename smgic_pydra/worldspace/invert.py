"""Inverse of a mapping ``phi(x) = A x + w(x)`` (an affine plus a smooth residual), by fixed-point iteration.

Used for methods whose optimiser gives only the forward mapping. The affine part is inverted exactly;
the residual by ``x <- A^-1 (y - w(x))``, which converges when ``|A^-1 grad w| < 1`` (true for
diffeomorphic warps that are smooth at the voxel scale).
"""

from __future__ import annotations

import numpy as np

from .sampling import apply_affine, grid_world_points, row_chunks, sample_field


def invert_displacement(fwd_ras_mm: np.ndarray, fixed_affine, linear_ras, moving_affine, moving_shape,
                        iterations: int = 20) -> np.ndarray:
    """Inverse displacement ``(X, Y, Z, 3)`` RAS mm on the moving grid of the forward field ``fwd_ras_mm``.

    fwd_ras_mm: ``phi(x) - x`` on the fixed grid ``fixed_affine`` (fixed -> moving). linear_ras:
    ``(4, 4)`` the affine part ``A`` of ``phi`` in RAS mm; ``phi(x) = A x + w(x)``. The result
    ``v`` satisfies ``phi(y + v(y)) = y`` for the moving grid's points ``y``; outside the fixed
    grid ``w`` takes its edge values.
    """
    fixed_affine, linear = np.asarray(fixed_affine, np.float64), np.asarray(linear_ras, np.float64)
    shape = tuple(int(n) for n in np.shape(fwd_ras_mm)[:3])
    points = np.concatenate([grid_world_points(fixed_affine, shape, rows) for rows in row_chunks(shape)])
    residual = np.moveaxis(points + fwd_ras_mm - apply_affine(linear, points), -1, 0)  # w, (3, X, Y, Z)
    to_index, inverse_linear = np.linalg.inv(fixed_affine), np.linalg.inv(linear)
    moving_shape = tuple(int(n) for n in moving_shape[:3])
    out = np.empty(moving_shape + (3,), dtype=np.float64)
    for rows in row_chunks(moving_shape):
        y = grid_world_points(moving_affine, moving_shape, rows)
        x = apply_affine(inverse_linear, y)
        for _ in range(int(iterations)):
            x = apply_affine(inverse_linear, y - sample_field(residual, apply_affine(to_index, x)))
        out[rows] = x - y
    return out
