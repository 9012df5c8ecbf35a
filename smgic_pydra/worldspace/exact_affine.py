"""Affine arithmetic with the same bits on every CPU: products and sums in a fixed order, no BLAS or LAPACK.

numpy's ``@`` and ``linalg.inv`` call OpenBLAS, whose kernels (chosen per CPU class at run time) round
differently, so one seed gave slightly different resampled volumes on different machines. These
functions use only elementwise multiplications and additions (each correctly rounded, never fused)
in a fixed order. Affines are ``(4, 4)`` with last row ``(0, 0, 0, 1)``; points are ``(..., 3)``.
"""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of two matrices ``(n, k)``, ``(k, m)`` in float64, summed over ``k`` in order."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = a[:, 0, None] * b[None, 0, :]
    for k in range(1, a.shape[1]):
        out = out + a[:, k, None] * b[None, k, :]
    return out


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``affine (4, 4)`` applied to points ``(..., 3)``; float64."""
    a, p = np.asarray(affine, dtype=np.float64), np.asarray(points, dtype=np.float64)
    out = np.empty(p.shape, dtype=np.float64)
    for row in range(3):
        out[..., row] = p[..., 0] * a[row, 0] + p[..., 1] * a[row, 1] + p[..., 2] * a[row, 2] + a[row, 3]
    return out


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of an affine ``(4, 4)``: the 3x3 part by its adjugate over its determinant (a one-line
    ``ValueError`` if it is singular), the translation ``-A^-1 t``."""
    a = np.asarray(affine, dtype=np.float64)
    m = a[:3, :3]
    cof = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            r, c = [k for k in range(3) if k != i], [k for k in range(3) if k != j]
            cof[i, j] = (-1) ** (i + j) * (m[r[0], c[0]] * m[r[1], c[1]] - m[r[0], c[1]] * m[r[1], c[0]])
    det = m[0, 0] * cof[0, 0] + m[0, 1] * cof[0, 1] + m[0, 2] * cof[0, 2]
    if det == 0 or not np.isfinite(det):
        raise ValueError(f"affine is singular (determinant {det}): {a.tolist()}")
    inverse, t = cof.T / det, a[:3, 3]
    out = np.eye(4)
    out[:3, :3] = inverse
    out[:3, 3] = -(inverse[:, 0] * t[0] + inverse[:, 1] * t[1] + inverse[:, 2] * t[2])
    return out
