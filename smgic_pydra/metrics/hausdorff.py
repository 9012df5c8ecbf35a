"""Robust Hausdorff distance (HD95) per label between warped moving labels and fixed labels, in mm.

The Learn2Reg metric: for label ``l`` with masks ``W_l`` (warped) and ``F_l`` (fixed) on one grid,
the surface of a mask is its voxels with a 6-neighbour outside it (``mask & ~erode(mask)``, outside
the grid counts as outside). The directed distance ``d(W -> F)`` is, for each surface voxel of
``W_l``, the Euclidean distance (mm, voxel spacing applied) to the nearest surface voxel of ``F_l``;
HD95 of the label is ``max(p95(d(W -> F)), p95(d(F -> W)))``, the symmetric robust Hausdorff
distance of the ``surface-distance`` package that Learn2Reg uses (there each surface element is
weighted by its area; here each surface voxel counts once). A label absent from either image has
no HD95 (NaN); the mean is over the labels present in both.

Each label is evaluated in the bounding box of ``W_l | F_l`` (one voxel of margin), which holds
every surface voxel of both, so the distance transforms are exact and cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

PERCENTILE = 95.0


@dataclass(frozen=True)
class HausdorffResult:
    """per_label: ``{label: HD95 mm}`` (NaN when absent from either image); mean over the labels present
    in both images (NaN when none); n_labels: how many."""

    per_label: dict[int, float]
    mean: float
    n_labels: int


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _directed(from_surface: np.ndarray, to_surface: np.ndarray, spacing, percentile: float) -> float:
    distance = ndimage.distance_transform_edt(~to_surface, sampling=spacing)
    return float(np.percentile(distance[from_surface], percentile))


def hd95_per_label(warped_labels: np.ndarray, fixed_labels: np.ndarray, spacing_mm, labels: Iterable[int],
                   percentile: float = PERCENTILE) -> HausdorffResult:
    """HD95 (mm) of each label in ``labels`` between two integer arrays ``(X, Y, Z)`` of one grid with voxel
    sizes ``spacing_mm`` (3 floats, mm along the array axes); see the module doc."""
    warped, fixed = np.asarray(warped_labels), np.asarray(fixed_labels)
    if warped.shape != fixed.shape:
        raise ValueError(f"label arrays differ in shape: warped {warped.shape}, fixed {fixed.shape}")
    spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), (warped.ndim,))
    wanted = sorted({int(v) for v in labels})
    if not wanted:
        raise ValueError("no labels to evaluate")
    # one pass per image: the bounding box of every label (find_objects indexes label - 1)
    top = max(wanted)
    clip = lambda a: np.where((a > 0) & (a <= top), a, 0).astype(np.int32)  # noqa: E731
    boxes_w, boxes_f = ndimage.find_objects(clip(warped), top), ndimage.find_objects(clip(fixed), top)
    pad = lambda a, b: tuple(  # noqa: E731
        slice(max(min(s.start, t.start) - 1, 0), min(max(s.stop, t.stop) + 1, n)) for s, t, n in zip(a, b, warped.shape))
    per_label, present = {}, []
    for label in wanted:
        box_w = boxes_w[label - 1] if label - 1 < len(boxes_w) else None
        box_f = boxes_f[label - 1] if label - 1 < len(boxes_f) else None
        if box_w is None or box_f is None:
            per_label[label] = float("nan")
            continue
        box = pad(box_w, box_f)
        surf_w, surf_f = _surface(warped[box] == label), _surface(fixed[box] == label)
        value = max(_directed(surf_w, surf_f, spacing, percentile), _directed(surf_f, surf_w, spacing, percentile))
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
