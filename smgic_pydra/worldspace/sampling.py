"""Resampling volumes at world (RAS mm) points with scipy, including label-aware resampling.

Voxel ``(i, j, k)`` of an array with affine ``A`` sits at world point ``A @ (i, j, k, 1)``.
Points outside the source volume get 0 (background), as in ANTs.
"""

from __future__ import annotations

from itertools import product

import numpy as np
from scipy import ndimage

from .exact_affine import apply_affine, invert_affine

ROWS_PER_CHUNK_VOXELS = 1 << 20
"""Target voxels handled at once (bounds the memory of coordinate arrays)."""


def grid_world_points(affine: np.ndarray, shape, rows: slice) -> np.ndarray:
    """World points ``(n_rows, Y, Z, 3)`` of the voxels ``[rows, :, :]`` of a grid ``shape`` with ``affine``."""
    axes = [np.arange(shape[0], dtype=np.float64)[rows]] + [np.arange(n, dtype=np.float64) for n in shape[1:3]]
    idx = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return apply_affine(affine, idx)


def row_chunks(shape):
    """Slices over the first axis of ``shape``, each covering about ``ROWS_PER_CHUNK_VOXELS`` voxels."""
    step = max(1, ROWS_PER_CHUNK_VOXELS // max(1, int(shape[1]) * int(shape[2])))
    return [slice(r, min(r + step, shape[0])) for r in range(0, shape[0], step)]


def _label_vote(data: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Label with the largest trilinear weight among the 8 neighbours of each point ``idx (N, 3)``.

    Equal to the argmax over labels of the trilinearly interpolated one-hot maps, so no new label
    values appear. Neighbours outside the volume count as label 0.
    """
    base = np.floor(idx).astype(np.int64)
    frac = idx - base
    # per axis and offset (0 or 1): clipped position, inside flag and trilinear weight
    axis_parts = []
    for a, n in enumerate(data.shape):
        parts = []
        for offset in (0, 1):
            pos = base[:, a] + offset
            weight = frac[:, a] if offset else 1.0 - frac[:, a]
            parts.append((np.clip(pos, 0, n - 1), (pos >= 0) & (pos < n), weight))
        axis_parts.append(parts)
    flat_data = data.ravel()
    stride_i, stride_j = data.shape[1] * data.shape[2], data.shape[2]
    labels = np.empty((8, len(idx)), dtype=data.dtype)
    weights = np.empty((8, len(idx)), dtype=np.float64)
    for c, (oi, oj, ok) in enumerate(product((0, 1), repeat=3)):
        (pi, ii, wi), (pj, ij, wj), (pk, ik, wk) = axis_parts[0][oi], axis_parts[1][oj], axis_parts[2][ok]
        labels[c] = np.where(ii & ij & ik, flat_data[pi * stride_i + pj * stride_j + pk], 0)
        weights[c] = wi * wj * wk
    out = labels[0].copy()
    mixed = np.flatnonzero(np.any(labels != labels[0], axis=0))  # most points have one label around
    labels, weights = labels[:, mixed], weights[:, mixed]
    scores = np.zeros_like(weights)
    for c in range(8):
        for other in range(8):
            scores[c] += np.where(labels[other] == labels[c], weights[other], 0.0)
    out[mixed] = labels[np.argmax(scores, axis=0), np.arange(len(mixed))]
    return out


def sample_at_index(data: np.ndarray, idx: np.ndarray, order, mode: str = "constant") -> np.ndarray:
    """Values of ``data (X, Y, Z)`` at continuous voxel indices ``idx (..., 3)``.

    order: 0 (nearest), 1 (trilinear) or ``"labels"`` (label-aware, see
    :func:`_label_vote`). ``mode`` is scipy's boundary mode for numeric orders (``constant`` = 0
    outside, ``nearest`` = edge values). Order 1 returns float64; order 0 and
    ``"labels"`` keep ``data.dtype``.
    """
    flat = idx.reshape(-1, 3)
    if order == "labels":
        out = _label_vote(data, flat)
    elif order in (0, 1):
        source = data if order == 0 else data.astype(np.float64, copy=False)
        out = ndimage.map_coordinates(source, flat.T, order=order, mode=mode, cval=0.0)
    else:
        raise ValueError(f"order must be 0, 1 or 'labels', got {order!r}")
    return out.reshape(idx.shape[:-1])


def sample_field(field: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Trilinear values ``(..., C)`` of a vector field ``(C, X, Y, Z)`` at continuous voxel indices
    ``idx (..., 3)``, with edge values outside (scipy's ``mode="nearest"``); float64.

    :func:`sample_field_tensor` on the CPU (equal to ``scipy.ndimage.map_coordinates(order=1,
    mode="nearest")`` per component to rounding).
    """
    import torch

    field = torch.as_tensor(np.asarray(field, dtype=np.float64))
    return sample_field_tensor(field, torch.from_numpy(np.asarray(idx, dtype=np.float64))).numpy()


def sample_field_tensor(field, idx):
    """:func:`sample_field` on torch tensors (float64, on the device of ``field``): ``(C, X, Y, Z)`` at
    ``idx (..., 3)`` -> ``(..., C)``, by :func:`~smgic_pydra.transforms.sample.grid_sample_3d` (every CPU thread)."""
    import torch

    from ..transforms.sample import grid_sample_3d

    extent = torch.tensor(field.shape[1:], dtype=torch.float64, device=field.device) - 1.0
    flat = idx.reshape(-1, 3)
    grid = (2.0 * flat / extent.clamp(min=1.0) - 1.0).flip(-1)  # grid_sample wants (z, y, x) = (k, j, i) order
    out = grid_sample_3d(field[None], grid.reshape(1, -1, 1, 1, 3))
    return out[0, :, :, 0, 0].T.reshape(*idx.shape[:-1], field.shape[0])


def resample(data, data_affine, ref_affine, ref_shape, order, disp_ras_mm=None) -> np.ndarray:
    """Resample ``data`` (grid ``data_affine``) onto the grid ``(ref_affine, ref_shape)``.

    With ``disp_ras_mm (X, Y, Z, 3)`` on the reference grid, the value at reference voxel ``x`` is
    taken at the world point ``x + u(x)`` (pull-back). Numeric orders return float32; order 0 and
    ``"labels"`` keep the input dtype.
    """
    data = np.asarray(data)
    ref_shape = tuple(int(n) for n in ref_shape[:3])
    to_index = invert_affine(data_affine)
    dtype = data.dtype if order in (0, "labels") else np.float32
    if order == 1:
        data = data.astype(np.float64, copy=False)
    elif order == "labels":
        data = np.ascontiguousarray(data)  # so the label vote's ravel() is a view, not a copy per chunk
    out = np.empty(ref_shape, dtype=dtype)
    for rows in row_chunks(ref_shape):
        points = grid_world_points(ref_affine, ref_shape, rows)
        if disp_ras_mm is not None:
            points += disp_ras_mm[rows]
        idx = apply_affine(to_index, points)
        out[rows] = sample_at_index(data, idx, order)
    return out
