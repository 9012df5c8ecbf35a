"""The two prepared subjects resampled into the affine halfway space, as the network sees them.

With ``S`` the half affine (:class:`.symmetric.AffineResult`), a halfway network grid ``H``
(RAS-aligned, the model's shape and voxel size, centred at ``c``) is placed; the fixed view's
``net_affine`` is ``S^-1 H`` (halfway index -> fixed RAS mm) and the moving view's is ``S H``.
Every function that maps network-grid fields to world space through ``net_affine``
(:func:`smgic_pydra.worldspace.network_disp_to_world`) thereby composes the affine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..preparation import PreparedSubject
from ..preparation.grid import network_affine
from .symmetric import AffineResult
from .world_sampling import grid_points, sample_at_world


@dataclass
class HalfwayPair:
    """Views of the fixed and moving subjects on the halfway network grid, and the affine."""

    fixed: PreparedSubject
    moving: PreparedSubject
    affine: AffineResult | None


def _view(subject: PreparedSubject, index_affine: np.ndarray, device) -> PreparedSubject:
    """``subject`` resampled on the grid ``index_affine`` (its own shape): image trilinear, mask and labels nearest."""
    points = grid_points(index_affine, subject.grid_shape, device=device)
    affine = np.asarray(subject.net_affine, dtype=np.float64)

    def sample(array, mode):
        tensor = torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32), device=device)[None, None]
        return sample_at_world(tensor, affine, points, mode)[0, 0].cpu().numpy()

    return dataclasses.replace(
        subject,
        image=sample(subject.image, "bilinear"),
        mask=sample(subject.mask, "nearest") > 0.5,
        labels=None if subject.labels is None else sample(subject.labels, "nearest").round().astype(np.int32),
        net_affine=index_affine,
    )


def halfway_pair(fixed: PreparedSubject, moving: PreparedSubject, affine: AffineResult | None,
                 device: str | torch.device = "cpu") -> HalfwayPair:
    """The pair on the halfway grid of ``affine``; with ``affine=None`` the subjects as they are."""
    if affine is None:
        return HalfwayPair(fixed, moving, None)
    voxel_mm = float(np.linalg.norm(np.asarray(fixed.net_affine)[:3, 0]))
    grid = network_affine(affine.centre, fixed.grid_shape, voxel_mm)
    with torch.no_grad():
        return HalfwayPair(_view(fixed, np.linalg.solve(affine.half, grid), device),
                           _view(moving, affine.half @ grid, device), affine)
