"""Instance optimisation of the network's total stationary velocity field for one pair.

The network gives ``v`` (normalized units, ``(1, 3, D, H, W)`` on the halfway grid); the forward
map is ``exp(v)`` (moving -> fixed pull-back) and its inverse ``exp(-v)``. Refinement adds a
correction ``dv`` held on a grid ``factor`` times coarser and minimises the symmetric objective

    NCC(M o exp(v_c), F) + NCC(F o exp(-v_c), M) + lambda (smooth(exp(v_c)) + smooth(exp(-v_c)))

with ``v_c = pool(v) + dv`` and ``F``, ``M`` the images pooled to that grid, by Adam. Optional stages do the
same on a grid twice as coarse first (``pre_steps``) and on the images' grid itself last (``fine_steps``). ``pool``
and ``unpool`` (:mod:`..transforms.pooling`) convert between the grids' normalized units and voxel centres. The
result ``v + unpool(dv)`` is again a stationary velocity field, so the map stays diffeomorphic (up to the
integration's accuracy) and its inverse is still ``exp(-v)``; exchanging the images gives the negated correction.
"""

from __future__ import annotations

import time
from dataclasses import asdict
import torch
import torch.nn.functional as F

from ..losses.ncc import local_ncc
from ..losses.regularizers import smoothness
from ..pipeline_settings import RefineSettings
from ..transforms import integrate_velocity, pool_field, unpool_field, upsample_field, warp
from .adam import Adam


def _pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    return x if factor == 1 else F.avg_pool3d(x, factor)


def _objective(v: torch.Tensor, fixed: torch.Tensor, moving: torch.Tensor, s: RefineSettings) -> torch.Tensor:
    u, u_inv = integrate_velocity(v, s.ss_steps), integrate_velocity(-v, s.ss_steps)
    similarity = local_ncc(warp(moving, u), fixed, s.window) + local_ncc(warp(fixed, u_inv), moving, s.window)
    return similarity + s.smooth_weight * (smoothness(u) + smoothness(u_inv))


def refine_velocity(velocity: torch.Tensor, fixed: torch.Tensor, moving: torch.Tensor,
                    settings: RefineSettings) -> tuple[torch.Tensor, dict]:
    """Refined total velocity ``(1, 3, D, H, W)`` on the images' grid (device of ``velocity``) and a record.

    fixed, moving: ``(1, 1, D, H, W)`` images on the network grid; the velocity is on it or on a coarser
    level's grid (upsampled first; the correction's grid is the images' pooled by ``settings.factor``, then, for
    ``settings.fine_steps``, the images' grid; with ``settings.pre_steps``, first, the grid twice as coarse as
    ``factor``'s). The record holds the settings, the objective before and after the main stage, each other
    stage's (other objectives: other grids) ``loss_before_<pre|fine>`` and ``loss_after_<pre|fine>``, and the
    seconds. With ``settings.steps == 0`` the velocity is returned unchanged (on its own grid). No randomness: the
    result depends only on the inputs (and on the CPU, on the thread count).
    """
    start = time.perf_counter()
    record = {"settings": asdict(settings), "loss_before": None, "loss_after": None}
    if settings.steps <= 0:
        return velocity, {**record, "seconds": 0.0}
    velocity = velocity.detach().float()
    with torch.no_grad():
        # a coarser level's velocity goes to the images' grid, as the cascade upsamples it (the refined
        # velocity lives there: integrating a refined field on the coarser grid lost Dice)
        velocity = upsample_field(velocity, fixed.shape[-3:])
    for stage, factor, steps in settings.stages:
        velocity, record[f"loss_before{stage}"], record[f"loss_after{stage}"] = _stage(
            velocity, fixed, moving, settings, factor, steps)
    record["seconds"] = time.perf_counter() - start
    return velocity, record


def _stage(velocity: torch.Tensor, fixed: torch.Tensor, moving: torch.Tensor, settings: RefineSettings,
           factor: int, steps: int) -> tuple[torch.Tensor, float, float]:
    """``steps`` Adam steps of a correction on the images' grid pooled by ``factor``: the refined velocity
    (the images' grid) and the objective before and after."""
    with torch.no_grad():
        fixed_c, moving_c = _pool(fixed.float(), factor), _pool(moving.float(), factor)
        base = pool_field(velocity, factor)
    correction = torch.zeros_like(base, requires_grad=True)
    optimizer = Adam(correction, lr=settings.learning_rate)
    with torch.enable_grad():
        for step in range(steps):
            loss = _objective(base + correction, fixed_c, moving_c, settings)
            if step == 0:
                before = float(loss.detach())
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        after = float(_objective(base + correction, fixed_c, moving_c, settings))
        return velocity + unpool_field(correction.detach(), velocity.shape[-3:], factor), before, after
