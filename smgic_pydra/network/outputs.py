"""What one directional pass of SM-GICNet returns, level by level."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LevelOutput:
    """Results of level ``level`` (1..4) for one direction (moving -> fixed).

    All tensors are on the level's grid ``(D_k, H_k, W_k)``; fields are ``(B, 3, D_k, H_k, W_k)`` in
    normalized units (see :mod:`smgic_pydra.transforms.grid`), images ``(B, 1, D_k, H_k, W_k)``.
    """

    level: int
    velocity: torch.Tensor
    """Accumulated stationary velocity ``v_total_k = v_k + up(v_total_{k-1})``."""
    disp: torch.Tensor
    """``u_k`` of ``phi_k = exp(v_total_k)``: fixed -> moving pull-back map."""
    disp_inv: torch.Tensor
    """``exp(-v_total_k)``, the inverse map."""
    moving: torch.Tensor
    """Moving input of this level (LLL band at levels 1-3, the image at level 4), not D-weighted."""
    fixed: torch.Tensor
    """Fixed input of this level, not D-weighted."""
    warped: torch.Tensor
    """``moving o phi_k``."""
    fixed_inv_warped: torch.Tensor
    """``fixed o phi_k^-1``."""
    warped_pre: torch.Tensor | None = None
    """``moving o up(phi_{k-1})`` (the pre-warped input); None at level 1."""
    moving_energy: torch.Tensor | None = None
    """Energy map of the moving image at levels 2 and 3, else None."""
    fixed_energy: torch.Tensor | None = None
    warped_energy: torch.Tensor | None = None
    """``moving_energy o phi_k`` at levels 2 and 3, else None."""


@dataclass
class Registration:
    """Inference result at the top level: forward field, its inverse and the warped moving image."""

    disp: torch.Tensor
    """``(B, 3, D, H, W)`` normalized, fixed -> moving pull-back."""
    disp_inv: torch.Tensor
    """``(B, 3, D, H, W)`` normalized, ``exp(-v_total)``."""
    warped: torch.Tensor
    """``(B, 1, D, H, W)`` moving image warped onto the fixed grid."""
    velocity: torch.Tensor
