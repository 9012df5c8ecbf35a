"""Difference-map weighting of the level-3 and level-4 inputs.

``d = |M| - |F|`` (signed, level 3) or ``||M| - |F||`` (absolute, level 4), min-max normalized per
sample to ``D`` in ``[0, 1]`` (``D = 0`` where the sample's ``d`` is constant); both inputs are then
multiplied by ``0.5 + 0.5 * D``, so mismatched voxels keep their intensity and matched ones are halved.
"""

from __future__ import annotations

import torch


def difference_map(moving: torch.Tensor, fixed: torch.Tensor, signed: bool) -> torch.Tensor:
    """``D`` ``(B, 1, D, H, W)`` in ``[0, 1]`` from the (pre-warped) moving and fixed inputs."""
    d = moving.abs() - fixed.abs()
    if not signed:
        d = d.abs()
    flat = d.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1, 1)
    span = flat.max(dim=1).values.view(-1, 1, 1, 1, 1) - low
    return (d - low) / torch.where(span > 0, span, torch.ones_like(span))


def difference_weighted(
    moving: torch.Tensor, fixed: torch.Tensor, signed: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``((0.5 + 0.5 D) * moving, (0.5 + 0.5 D) * fixed)``."""
    weight = 0.5 + 0.5 * difference_map(moving, fixed, signed)
    return weight * moving, weight * fixed
