"""Robust Hausdorff distance (HD95) per label between warped moving labels and fixed labels, in mm.

For label ``l`` with masks ``W_l`` (warped) and ``F_l`` (fixed) on one grid, the surface of a mask
is its voxels with a 6-neighbour outside it (``mask & ~erode(mask)``, outside the grid counts as
outside). The directed distance ``d(W -> F)`` is, for each surface voxel of ``W_l``, the Euclidean
distance (mm, voxel spacing applied) to the nearest surface voxel of ``F_l``; HD95 of the label is
``max(p95(d(W -> F)), p95(d(F -> W)))``, the symmetric robust Hausdorff distance of the
``surface-distance`` package that Learn2Reg uses (there each surface element is weighted by its
area; here each surface voxel counts once).

Which labels are averaged differs from Learn2Reg. A label absent from the fixed or the warped image
has no HD95 (NaN); the mean is over the labels present in both. Learn2Reg skips a label only when
the fixed or the *moving* image lacks it, so a label that the warp erased (present in the fixed and
the moving image, absent from the warped one) is ``inf`` there and left out here. Leaving it out
favours a method that erases small structures: read the mean with the pair's count of erased labels,
``labels_lost`` (:func:`smgic_pydra.metrics.pair_metrics.field_metrics`; Dice scores those labels 0).

The surfaces of every label come from one pass over each image (a voxel whose label differs from
a 6-neighbour's), and the nearest-surface distances from a k-d tree of the other surface's points
(``scipy.spatial.cKDTree``), so the cost grows with the surface, not with the labels' boxes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

PERCENTILE = 95.0


@dataclass(frozen=True)
class HausdorffResult:
    """per_label: ``{label: HD95 mm}`` (NaN when absent from the fixed or the warped image); mean over the
    labels present in both (NaN when none); n_labels: how many."""

    per_label: dict[int, float]
    mean: float
    n_labels: int


def _surfaces(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Surface voxels of every nonzero label: label -> sorted flat (C-order) voxel indices."""
    dtype = labels.dtype if labels.dtype.kind == "i" else np.int64  # room for -1
    padded = np.pad(labels.astype(dtype, copy=False), 1, constant_values=-1)  # outside the grid: no label
    inner = tuple(slice(1, -1) for _ in range(3))
    centre = padded[inner]
    boundary = np.zeros(centre.shape, dtype=bool)
    for axis in range(3):
        for shift in (-1, 1):
            neighbour = list(inner)
            neighbour[axis] = slice(1 + shift, padded.shape[axis] - 1 + shift)
            boundary |= padded[tuple(neighbour)] != centre
    boundary &= centre != 0
    flat = np.flatnonzero(boundary)
    values = centre.ravel()[flat]
    order = np.argsort(values, kind="stable")  # flat indices stay sorted within each label
    keys, starts = np.unique(values[order], return_index=True)
    return {int(k): g for k, g in zip(keys, np.split(flat[order], starts[1:]))}


def _directed(source: np.ndarray, target: np.ndarray, target_tree, shape, spacing, percentile: float) -> float:
    """Percentile of the distances (mm) from the ``source`` surface voxels to the nearest ``target`` one;
    voxels on both surfaces are at 0 without a tree query."""
    distances = np.zeros(len(source))
    away = ~np.isin(source, target, assume_unique=True)
    if away.any():
        points = np.stack(np.unravel_index(source[away], shape), axis=1) * spacing
        distances[away] = target_tree.query(points)[0]
    return float(np.percentile(distances, percentile))


def hd95_per_label(warped_labels: np.ndarray, fixed_labels: np.ndarray, spacing_mm, labels: Iterable[int],
                   percentile: float = PERCENTILE) -> HausdorffResult:
    """HD95 (mm) of each label in ``labels`` between two integer arrays ``(X, Y, Z)`` of one grid with voxel
    sizes ``spacing_mm`` (3 floats, mm along the array axes); see the module doc."""
    from scipy.spatial import cKDTree

    warped, fixed = np.asarray(warped_labels), np.asarray(fixed_labels)
    if warped.shape != fixed.shape:
        raise ValueError(f"label arrays differ in shape: warped {warped.shape}, fixed {fixed.shape}")
    if warped.ndim != 3:
        raise ValueError(f"label arrays must be 3-D, got {warped.shape}")
    spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), (3,))
    wanted = sorted({int(v) for v in labels})
    if not wanted:
        raise ValueError("no labels to evaluate")
    surf_w, surf_f = _surfaces(warped), _surfaces(fixed)
    per_label, present = {}, []
    for label in wanted:
        if label not in surf_w or label not in surf_f:
            per_label[label] = float("nan")
            continue
        a, b = surf_w[label], surf_f[label]
        trees = [cKDTree(np.stack(np.unravel_index(s, warped.shape), axis=1) * spacing) for s in (a, b)]
        value = max(_directed(a, b, trees[1], warped.shape, spacing, percentile),
                    _directed(b, a, trees[0], warped.shape, spacing, percentile))
        per_label[label] = value
        present.append(value)
    mean = float(np.mean(present)) if present else float("nan")
    return HausdorffResult(per_label, mean, len(present))


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel sizes (mm) along the array axes of a voxel -> mm ``(4, 4)`` affine."""
    return np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0))


def hd95_from_files(warped_labels_path, fixed_labels_path, labels: Iterable[int]) -> HausdorffResult:
    """:func:`hd95_per_label` of two label images (spacing from the fixed image's affine); :class:`InputError`
    when their grids differ."""
    from ..io.images import check_same_grid, load_image

    fixed = load_image(fixed_labels_path, "labels")
    warped = load_image(warped_labels_path, "labels")
    check_same_grid(fixed, fixed_labels_path, warped, warped_labels_path)
    return hd95_per_label(np.asarray(warped.dataobj), np.asarray(fixed.dataobj), voxel_sizes(fixed.affine), labels)
