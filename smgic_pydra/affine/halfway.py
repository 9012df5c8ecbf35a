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
from .world_sampling import sample_on_grid


@dataclass
class HalfwayPair:
    """Views of the fixed and moving subjects on the halfway network grid, and the affine."""

    fixed: PreparedSubject
    moving: PreparedSubject
    affine: AffineResult | None


def _view(subject: PreparedSubject, index_affine: np.ndarray, device) -> PreparedSubject:
    """``subject`` resampled on the grid ``index_affine`` (its own shape): image trilinear, mask and labels nearest
    (one sampling of the two stacked)."""
    shape, affine = subject.grid_shape, np.asarray(subject.net_affine, dtype=np.float64)

    def tensor(*arrays):
        return torch.as_tensor(np.stack([np.asarray(a, dtype=np.float32) for a in arrays]), device=device)[None]

    image = sample_on_grid(tensor(subject.image), affine, index_affine, shape)[0, 0].cpu().numpy()
    nearest = [subject.mask] + ([] if subject.labels is None else [subject.labels])
    nearest = sample_on_grid(tensor(*nearest), affine, index_affine, shape, "nearest")[0].cpu().numpy()
    return dataclasses.replace(
        subject, image=image, mask=nearest[0] > 0.5,
        labels=None if subject.labels is None else nearest[1].round().astype(np.int32), net_affine=index_affine)


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
