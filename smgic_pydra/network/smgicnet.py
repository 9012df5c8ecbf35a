"""SM-GICNet: four cascaded level nets with LapIRN-style velocity accumulation and symmetric passes.

Level ``k`` runs on ``cfg.level_shape(k)``. With ``up`` = :func:`~smgic_pydra.transforms.upsample_field`
to the level's grid (``align_corners=True``, values unchanged):

* inputs: the moving image (and energy map at levels 2-3) pre-warped by ``up(u_{k-1})``, the fixed
  ones as they are, and ``up(u_{k-1})`` itself where the level concatenates it;
* ``v_total_k = v_k + up(v_total_{k-1})``; ``u_k = exp(v_total_k)``, ``u_k^-1 = exp(-v_total_k)``
  (scaling and squaring with ``cfg.ss_steps`` steps).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, NamedTuple

import torch
from torch import nn

from ..config import N_LEVELS, SMGICNetConfig
from ..transforms import integrate_velocity, upsample_field, warp
from ..wavelets import wavelet_pyramid
from .levels import Level1, Level2, Level3, Level4
from .outputs import LevelOutput, Registration


class SMGICNet(nn.Module):
    """The whole cascade; ``levels[k - 1]`` is the level-``k`` net (2,015,955 parameters with the
    default ``paper`` gates and 32 channels; 1,908,432 with ``code`` gates)."""

    def __init__(self, cfg: SMGICNetConfig):
        super().__init__()
        self.cfg = cfg
        self.levels = nn.ModuleList((Level1(cfg), Level2(cfg), Level3(cfg), Level4(cfg)))

    def level_modules(self, level: int) -> nn.Module:
        """The level-``level`` (1..4) net, e.g. for freezing its parameters."""
        if not 1 <= level <= N_LEVELS:
            raise ValueError(f"level must be 1..{N_LEVELS}, got {level}")
        return self.levels[level - 1]

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor, upto_level: int = N_LEVELS) -> list[LevelOutput]:
        """Register ``moving`` to ``fixed`` (both ``(B, 1, D, H, W)`` on ``cfg.grid_shape``, in ``[0, 1]``).

        Returns one :class:`LevelOutput` per level ``1..upto_level`` (index 0 = level 1): everything the
        training losses read. Inference needs only the last velocity: :meth:`velocity`.
        """
        outputs: list[LevelOutput] = []
        for step in self._cascade(moving, fixed, upto_level, lambda level: True):
            mov, fix, mov_energy = step.moving, step.fixed, step.moving_energy
            disp_inv = integrate_velocity(-step.velocity, self.cfg.ss_steps)
            outputs.append(
                LevelOutput(
                    level=step.level,
                    velocity=step.velocity,
                    disp=step.disp,
                    disp_inv=disp_inv,
                    moving=mov,
                    fixed=fix,
                    warped=warp(mov, step.disp),
                    fixed_inv_warped=warp(fix, disp_inv),
                    warped_pre=step.warped_pre,
                    moving_energy=mov_energy,
                    fixed_energy=step.fixed_energy,
                    warped_energy=None if mov_energy is None else warp(mov_energy, step.disp),
                )
            )
        return outputs

    def velocity(self, moving: torch.Tensor, fixed: torch.Tensor, upto_level: int = N_LEVELS) -> torch.Tensor:
        """The total velocity ``v_total`` ``(B, 3, *cfg.level_shape(upto_level))`` after level ``upto_level``:
        the same tensor as ``forward(...)[-1].velocity``, without the fields, inverses and warped images that
        only training reads (the last level's integration included: about a sixth of the forward at 128^3)."""
        for step in self._cascade(moving, fixed, upto_level, lambda level: level < upto_level):
            pass
        return step.velocity

    def _cascade(self, moving: torch.Tensor, fixed: torch.Tensor, upto_level: int,
                 needs_disp: Callable[[int], bool]) -> Iterator["_LevelStep"]:
        """Run levels ``1..upto_level``, yielding each one's inputs and total velocity; its displacement
        ``exp(v_total)`` is integrated where ``needs_disp(level)`` (the next level always needs it)."""
        self._check_inputs(moving, fixed, upto_level)
        pyr_moving, pyr_fixed = wavelet_pyramid(moving, self.cfg), wavelet_pyramid(fixed, self.cfg)
        previous: _LevelStep | None = None
        for level in range(1, upto_level + 1):
            shape = self.cfg.level_shape(level)
            mov, mov_energy = pyr_moving.level_inputs(level)
            fix, fix_energy = pyr_fixed.level_inputs(level)
            net = self.levels[level - 1]
            if previous is None:
                warped_pre = None
                velocity = net(mov, fix)
            else:
                prev_disp = upsample_field(previous.disp, shape)
                warped_pre = warp(mov, prev_disp)
                if mov_energy is not None:
                    energy_pre = warp(mov_energy, prev_disp)
                    velocity = net(warped_pre, fix, energy_pre, fix_energy, prev_disp)
                else:
                    velocity = net(warped_pre, fix, prev_disp)
                velocity = velocity + upsample_field(previous.velocity, shape)
            disp = integrate_velocity(velocity, self.cfg.ss_steps) if needs_disp(level) else None
            previous = _LevelStep(level, velocity, disp, mov, fix, mov_energy, fix_energy, warped_pre)
            yield previous

    def forward_symmetric(
        self, a: torch.Tensor, b: torch.Tensor, upto_level: int = N_LEVELS
    ) -> tuple[list[LevelOutput], list[LevelOutput]]:
        """``(forward(a, b), forward(b, a))`` with the same weights, run as one batch of ``2B``.

        Every operation is per sample, so this equals two separate calls.
        """
        both = self.forward(torch.cat((a, b)), torch.cat((b, a)), upto_level)
        n = a.shape[0]
        return [_batch_slice(o, 0, n) for o in both], [_batch_slice(o, n, 2 * n) for o in both]

    def register(self, moving: torch.Tensor, fixed: torch.Tensor) -> Registration:
        """Top-level registration of ``moving`` to ``fixed``: ``disp``, ``disp_inv = exp(-v_total)``, warped."""
        top = self.forward(moving, fixed)[-1]
        return Registration(disp=top.disp, disp_inv=top.disp_inv, warped=top.warped, velocity=top.velocity)

    def _check_inputs(self, moving: torch.Tensor, fixed: torch.Tensor, upto_level: int) -> None:
        if not 1 <= upto_level <= N_LEVELS:
            raise ValueError(f"upto_level must be 1..{N_LEVELS}, got {upto_level}")
        expected = tuple(self.cfg.grid_shape)
        for name, image in (("moving", moving), ("fixed", fixed)):
            if image.ndim != 5 or image.shape[1] != 1 or tuple(image.shape[-3:]) != expected:
                raise ValueError(
                    f"{name} image must be (B, 1, {', '.join(map(str, expected))}), got {tuple(image.shape)}"
                )
        if moving.shape[0] != fixed.shape[0]:
            raise ValueError(f"moving and fixed batch sizes differ: {moving.shape[0]} vs {fixed.shape[0]}")


class _LevelStep(NamedTuple):
    """One level of the cascade: its total velocity, ``exp`` of it (None where not asked for) and its inputs."""

    level: int
    velocity: torch.Tensor
    disp: torch.Tensor | None
    moving: torch.Tensor
    fixed: torch.Tensor
    moving_energy: torch.Tensor | None
    fixed_energy: torch.Tensor | None
    warped_pre: torch.Tensor | None


def _batch_slice(out: LevelOutput, start: int, stop: int) -> LevelOutput:
    """The samples ``start:stop`` of every tensor field of ``out``."""
    values = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    return dataclasses.replace(out, **{k: v[start:stop] for k, v in values.items() if isinstance(v, torch.Tensor)})


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
