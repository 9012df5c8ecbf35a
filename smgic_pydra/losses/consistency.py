"""Consistency losses between the two directional passes and between levels.

``out_ab`` is the pass with moving A and fixed B (``phi_AB``: B's grid -> A), ``out_ba`` the
pass with moving B and fixed A; both are :class:`~smgic_pydra.network.outputs.LevelOutput` of the
same level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..network.outputs import LevelOutput
from ..transforms import compose, norm_to_voxel


def symmetric_consistency(out_ab: LevelOutput, out_ba: LevelOutput) -> torch.Tensor:
    """``MSE(B o phi_AB^-1, B o phi_BA) + MSE(A o phi_BA^-1, A o phi_AB)`` (image intensities^2).

    Zero when each pass's inverse map equals the other pass's forward map.
    """
    return F.mse_loss(out_ab.fixed_inv_warped.float(), out_ba.warped.float()) + F.mse_loss(
        out_ba.fixed_inv_warped.float(), out_ab.warped.float()
    )


def inverse_consistency(disp_ab: torch.Tensor, disp_ba: torch.Tensor) -> torch.Tensor:
    """``MSE(phi_AB o phi_BA, Id) + MSE(phi_BA o phi_AB, Id)`` in voxels^2.

    Both displacements are ``(B, 3, D, H, W)`` normalized on the same grid; the residual
    displacement of each composition is converted to voxels before squaring.
    """
    disp_ab, disp_ba = disp_ab.float(), disp_ba.float()
    return sum(
        norm_to_voxel(compose(outer, inner)).pow(2).mean() for outer, inner in ((disp_ab, disp_ba), (disp_ba, disp_ab))
    )


def multilevel_consistency(out: LevelOutput) -> torch.Tensor:
    """``MSE(w_k, (w_k + w_{k-1}) / 2)`` with ``w_k`` the moving image warped by ``phi_k`` and
    ``w_{k-1}`` the same image warped by the upsampled previous-level map (``warped_pre``).
    """
    if out.warped_pre is None:
        raise ValueError(f"level {out.level} has no pre-warped image; multi-level consistency needs level >= 2")
    warped = out.warped.float()
    return F.mse_loss(warped, 0.5 * (warped + out.warped_pre.float()))
