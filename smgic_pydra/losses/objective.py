"""The total loss of one progressive training stage."""

from __future__ import annotations

import torch

from ..config import SMGICNetConfig
from ..network.outputs import LevelOutput
from .consistency import inverse_consistency, multilevel_consistency, symmetric_consistency
from .gradicon import gradicon
from .ncc import local_ncc
from .regularizers import antifold, smoothness

TERMS = ("similarity", "smoothness", "symmetric", "inverse", "multilevel", "gradicon", "antifold")
"""Keys of the weighted loss terms returned by :func:`stage_loss` (plus ``total``)."""


def stage_weights(weights, stage: int) -> tuple[float, ...]:
    """Level weights of levels ``1..stage`` renormalized so level ``stage`` has weight 1."""
    top = float(weights[stage - 1])
    return tuple(float(w) / top for w in weights[:stage])


def _similarity(out: LevelOutput, window: int) -> torch.Tensor:
    """NCC of the warped moving input against the fixed input, plus the energy branch where present."""
    loss = local_ncc(out.warped, out.fixed, window)
    if out.warped_energy is not None and out.fixed_energy is not None:
        loss = loss + local_ncc(out.warped_energy, out.fixed_energy, window)
    return loss


def stage_loss(
    outs_ab: list[LevelOutput],
    outs_ba: list[LevelOutput],
    cfg: SMGICNetConfig,
    stage: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of progressive stage ``stage`` (1..4) from the symmetric passes over levels ``1..stage``.

    * similarity: ``sum_i alpha_i' NCC_{w_i}`` over both directions (levels 2-3 also on the energy
      maps), ``alpha'`` = ``cfg.level_weights`` renormalized to 1 at the stage's top level;
    * smoothness: ``lambda_smooth * sum_i beta_i' S(u_i)`` over both directions (voxel units);
    * symmetric, inverse (voxels^2), GradICON on the top level; multi-level consistency on the
      top level from stage 2 on (both directions);
    * anti-folding ``lambda_antifold * sum_i beta_i' Fold(u_i)`` when ``lambda_antifold > 0``.

    Returns the total (float32 scalar) and the weighted terms as floats (they sum to ``total``).
    """
    if not 1 <= stage <= len(cfg.level_weights):
        raise ValueError(f"stage must be 1..{len(cfg.level_weights)}, got {stage}")
    if len(outs_ab) < stage or len(outs_ba) < stage:
        raise ValueError(f"stage {stage} needs outputs of levels 1..{stage}, got {len(outs_ab)} and {len(outs_ba)}")
    alpha = stage_weights(cfg.level_weights, stage)
    beta = stage_weights(cfg.smooth_weights, stage)
    levels = list(zip(outs_ab[:stage], outs_ba[:stage]))
    top_ab, top_ba = levels[-1]
    zero = top_ab.disp.new_zeros((), dtype=torch.float32)

    terms: dict[str, torch.Tensor] = {name: zero for name in TERMS}
    terms["similarity"] = sum(
        a * (_similarity(ab, w) + _similarity(ba, w)) for a, w, (ab, ba) in zip(alpha, cfg.ncc_windows, levels)
    )
    terms["smoothness"] = cfg.lambda_smooth * sum(
        b * (smoothness(ab.disp) + smoothness(ba.disp)) for b, (ab, ba) in zip(beta, levels)
    )
    if cfg.lambda_sym > 0:
        terms["symmetric"] = cfg.lambda_sym * symmetric_consistency(top_ab, top_ba)
    if cfg.lambda_inv > 0:
        terms["inverse"] = cfg.lambda_inv * inverse_consistency(top_ab.disp, top_ba.disp)
    if stage >= 2 and cfg.lambda_multi > 0:
        terms["multilevel"] = cfg.lambda_multi * (multilevel_consistency(top_ab) + multilevel_consistency(top_ba))
    if cfg.lambda_gradicon > 0:
        terms["gradicon"] = cfg.lambda_gradicon * gradicon(
            top_ab.disp, top_ba.disp, cfg.gradicon_noise, cfg.gradicon_delta, generator
        )
    if cfg.lambda_antifold > 0:
        terms["antifold"] = cfg.lambda_antifold * sum(
            b * (antifold(ab.disp) + antifold(ba.disp)) for b, (ab, ba) in zip(beta, levels)
        )
    total = sum(terms.values())
    values = {name: float(t.detach()) for name, t in terms.items()}
    values["total"] = float(total.detach())
    return total, values
