"""Dice overlap per label between warped moving labels and fixed labels on the same grid.

Dice of label ``l``: ``2 |W_l & F_l| / (|W_l| + |F_l|)`` (unitless, in [0, 1]), with ``W`` the
warped moving labels and ``F`` the fixed labels. A label absent from both images has no Dice
(NaN, skipped); a label present in only one of them has Dice 0. The mean is taken over the labels
present in the fixed image (a label only in the warped image is reported but not averaged);
:meth:`DiceResult.scored` gives exactly the values averaged (what the per-structure tables hold).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DiceResult:
    """per_label: ``{label: Dice}`` (NaN when absent from both); mean over the ``n_labels`` labels present in
    the fixed image; in_fixed / in_warped: the evaluated labels present in the fixed / warped image."""

    per_label: dict[int, float]
    mean: float
    n_labels: int
    in_fixed: frozenset[int]
    in_warped: frozenset[int]

    def scored(self) -> dict[int, float]:
        """``per_label`` with NaN for the labels absent from the fixed image (undefined there): the values
        the mean averages."""
        return {k: v if k in self.in_fixed else math.nan for k, v in self.per_label.items()}


def _positions(wanted: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in the sorted ``wanted`` labels, and whether it is one of them."""
    idx = np.minimum(np.searchsorted(wanted, values), len(wanted) - 1)
    return idx, wanted[idx] == values


def dice_per_label(warped_labels: np.ndarray, fixed_labels: np.ndarray, labels: Iterable[int]) -> DiceResult:
    """Dice of each label in ``labels`` between two integer arrays of the same shape (see the module doc)."""
    warped, fixed = np.asarray(warped_labels), np.asarray(fixed_labels)
    if warped.shape != fixed.shape:
        raise ValueError(f"label arrays differ in shape: warped {warped.shape}, fixed {fixed.shape}")
    wanted = np.array(sorted({int(v) for v in labels}), dtype=np.int64)
    if not len(wanted):
        raise ValueError("no labels to evaluate")
    # one pass over the voxels: counts per wanted label of W, F and W & F
    w_idx, w_ok = _positions(wanted, warped.ravel())
    f_idx, f_ok = _positions(wanted, fixed.ravel())
    n_w = np.bincount(w_idx[w_ok], minlength=len(wanted))
    n_f = np.bincount(f_idx[f_ok], minlength=len(wanted))
    n_wf = np.bincount(w_idx[w_ok & f_ok & (w_idx == f_idx)], minlength=len(wanted))
    per_label, present = {}, []
    for i, label in enumerate(wanted.tolist()):
        total = n_w[i] + n_f[i]
        per_label[label] = float(2.0 * n_wf[i] / total) if total else float("nan")
        if n_f[i]:
            present.append(per_label[label])
    mean = float(np.mean(present)) if present else float("nan")
    return DiceResult(per_label, mean, len(present), frozenset(wanted[n_f > 0].tolist()),
                      frozenset(wanted[n_w > 0].tolist()))


def labels_present(labels: np.ndarray, wanted: Iterable[int]) -> frozenset[int]:
    """The labels of ``wanted`` that occur in the integer array ``labels`` (one pass over its voxels)."""
    keys = np.array(sorted({int(v) for v in wanted}), dtype=np.int64)
    if not len(keys):
        return frozenset()
    idx, ok = _positions(keys, np.asarray(labels).ravel())
    return frozenset(keys[np.bincount(idx[ok], minlength=len(keys)) > 0].tolist())


def dice_from_files(warped_labels_path, fixed_labels_path, labels: Iterable[int]) -> DiceResult:
    """:func:`dice_per_label` of two label images; :class:`InputError` when their grids differ."""
    from ..io.images import check_same_grid, load_image

    fixed = load_image(fixed_labels_path, "labels")
    warped = load_image(warped_labels_path, "labels")
    check_same_grid(fixed, fixed_labels_path, warped, warped_labels_path)
    return dice_per_label(np.asarray(warped.dataobj), np.asarray(fixed.dataobj), labels)
