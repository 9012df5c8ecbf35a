"""Field regularizers in voxel units: smoothness and the official code's anti-folding penalty."""

from __future__ import annotations

import torch

from ..transforms import norm_to_voxel


def _forward_differences(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward differences of ``(B, C, D, H, W)`` along D, H and W."""
    return (
        u[:, :, 1:, :, :] - u[:, :, :-1, :, :],
        u[:, :, :, 1:, :] - u[:, :, :, :-1, :],
        u[:, :, :, :, 1:] - u[:, :, :, :, :-1],
    )


def smoothness(disp: torch.Tensor) -> torch.Tensor:
    """Mean squared forward difference of a normalized displacement ``(B, 3, D, H, W)``, in voxels^2.

    The field is converted to voxels first; the mean over batch, channels and voxels is taken per
    axis and then averaged over the three axes. For a linear voxel field ``u(p) = A p`` (p in voxel
    indices) this is ``||A||_F^2 / 9``.
    """
    diffs = _forward_differences(norm_to_voxel(disp.float()))
    return sum(d.pow(2).mean() for d in diffs) / 3.0


def antifold(disp: torch.Tensor) -> torch.Tensor:
    """Anti-folding penalty of the official code, on the displacement in voxels (``(B, 3, D, H, W)``).

    Along each axis and for every channel, ``t = u(i) - u(i+1) - 1`` (a neighbour displacement that
    drops by more than one voxel); the penalty is ``mean(relu(t) * t^2)`` averaged over the 3 axes.
    Zero for any field whose forward differences are all ``>= -1`` voxel.
    """
    diffs = _forward_differences(norm_to_voxel(disp.float()))
    return sum((torch.relu(-d - 1.0) * (-d - 1.0).pow(2)).mean() for d in diffs) / 3.0
