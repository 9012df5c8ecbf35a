"""The four level nets of SM-GICNet. Each maps its (pre-warped) inputs to a velocity ``v_k``.

Inputs are ``(B, 1, D_k, H_k, W_k)`` images on the level's grid; ``disp`` is the upsampled previous
displacement ``up(u_{k-1})`` ``(B, 3, ...)``; the moving image and energy map are already warped by it.
Outputs are velocities ``(B, 3, D_k, H_k, W_k)`` in normalized units with ``|v| < range_flow``.

Departures from the official code (design note: no accidental weight sharing): level 1 uses a
second residual block after the first down-sampling and two distinct skip convolutions where the
code reuses one block and applies one convolution twice; level 3 gives the LLL and energy branches
their own second convolution where the code shares it; level 4 has one transposed convolution per
up-sampling where the code shares one across all three.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import SMGICNetConfig
from .blocks import SLOPE, AttentionGate, Down, FlowHead, PostActRes, PreActRes, Up, conv3
from .difference import difference_weighted


class _UNetBody(nn.Module):
    """Pre-activation residual U-Net of levels 1-3 with ``depth`` down-samplings.

    ``res -> (down -> res) x depth -> res -> (up -> res) x (depth - 1) -> up``; the flow head gets
    ``cat[skip(first res), last up]`` where ``skip`` is ``skip_convs`` chained convolutions.
    """

    def __init__(self, cfg: SMGICNetConfig, depth: int, skip_convs: int = 1):
        super().__init__()
        c = cfg.channels
        self.res_top = PreActRes(c)
        self.encoder = nn.ModuleList(nn.Sequential(Down(c), PreActRes(c)) for _ in range(depth))
        self.bottleneck = PreActRes(c)
        self.decoder = nn.ModuleList(
            nn.Sequential(Up(c), PreActRes(c)) if i < depth - 1 else Up(c) for i in range(depth)
        )
        self.skip = nn.Sequential(*(conv3(c, c) for _ in range(skip_convs)))
        self.head = FlowHead(c, cfg.range_flow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = self.res_top(x)
        y = top
        for block in self.encoder:
            y = block(y)
        y = self.bottleneck(y)
        for block in self.decoder:
            y = block(y)
        return self.head(torch.cat((self.skip(top), y), dim=1))


class Level1(nn.Module):
    """Level 1 (``N/8``): ``cat[LLL3_A, LLL3_B]`` -> conv(2 -> C) -> 1-down U-Net with a 2-conv skip."""

    def __init__(self, cfg: SMGICNetConfig):
        super().__init__()
        self.stem = conv3(2, cfg.channels)
        self.body = _UNetBody(cfg, depth=1, skip_convs=2)

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(torch.cat((moving, fixed), dim=1)))


class Level2(nn.Module):
    """Level 2 (``N/4``): LLL stem on ``cat[LLL2_A o up(u1), LLL2_B, up(u1)]`` (5 -> C/2), energy stem on
    ``cat[EM2_A o up(u1), EM2_B]`` (2 -> C/2), then a 2-down U-Net."""

    def __init__(self, cfg: SMGICNetConfig):
        super().__init__()
        half = cfg.channels // 2
        self.stem_lll = conv3(5, half)
        self.stem_energy = conv3(2, cfg.channels - half)
        self.body = _UNetBody(cfg, depth=2)

    def forward(self, moving, fixed, moving_energy, fixed_energy, disp) -> torch.Tensor:
        lll = self.stem_lll(torch.cat((moving, fixed, disp), dim=1))
        energy = self.stem_energy(torch.cat((moving_energy, fixed_energy), dim=1))
        return self.body(torch.cat((lll, energy), dim=1))


class Level3(nn.Module):
    """Level 3 (``N/2``): LLL branch on the signed-difference-weighted ``cat[M^w, F^w, up(u2)]``, energy
    branch on ``cat[EM1_A o up(u2), EM1_B, up(u2)]``, each conv(5 -> C) -> conv(C -> C/2), then a 3-down U-Net."""

    def __init__(self, cfg: SMGICNetConfig):
        super().__init__()
        c, half = cfg.channels, cfg.channels // 2
        self.stem_lll = nn.Sequential(conv3(5, c), conv3(c, half))
        self.stem_energy = nn.Sequential(conv3(5, c), conv3(c, c - half))
        self.body = _UNetBody(cfg, depth=3)

    def forward(self, moving, fixed, moving_energy, fixed_energy, disp) -> torch.Tensor:
        moving_w, fixed_w = difference_weighted(moving, fixed, signed=True)
        lll = self.stem_lll(torch.cat((moving_w, fixed_w, disp), dim=1))
        energy = self.stem_energy(torch.cat((moving_energy, fixed_energy, disp), dim=1))
        return self.body(torch.cat((lll, energy), dim=1))


class Level4(nn.Module):
    """Level 4 (``N``): attention-gated post-activation residual U-Net on the absolute-difference-weighted
    ``cat[M^w, F^w, up(u3)]``; encoder ``e0..e3`` at ``N, N/2, N/4, N/8``, three ups, three gates.

    ``code`` gates: ``a3 = AG(e3 | e2)``, ``d2 = res(up(a3))``, ``a2 = AG(d2 | e1)``, ``d1 = res(up(a2))``,
    ``a1 = AG(d1 | e0)``, ``v = head(cat[up(a1), e0])``.
    ``paper`` gates: ``d2 = res(fuse(cat[up(e3), AG(e2 | e3)]))``, ``d1 = res(fuse(cat[up(d2), AG(e1 | d2)]))``,
    ``v = head(cat[up(d1), AG(e0 | d1)])`` (fuse = conv(2C -> C)).
    """

    def __init__(self, cfg: SMGICNetConfig):
        super().__init__()
        c = cfg.channels
        self.variant = cfg.attention_gate
        self.stem = nn.Sequential(conv3(5, c), nn.LeakyReLU(SLOPE), conv3(c, c), PostActRes(c))
        self.encoder = nn.ModuleList(nn.Sequential(Down(c), PostActRes(c)) for _ in range(3))
        self.ups = nn.ModuleList(Up(c) for _ in range(3))
        self.decoder = nn.ModuleList(PostActRes(c) for _ in range(2))
        gate_channels = 1 if self.variant == "paper" else c
        self.gates = nn.ModuleList(AttentionGate(c, gate_channels) for _ in range(3))
        self.fuse = nn.ModuleList(conv3(2 * c, c) for _ in range(2)) if self.variant == "paper" else None
        self.head = FlowHead(c, cfg.range_flow)

    def forward(self, moving, fixed, disp) -> torch.Tensor:
        moving_w, fixed_w = difference_weighted(moving, fixed, signed=False)
        feats = [self.stem(torch.cat((moving_w, fixed_w, disp), dim=1))]
        for block in self.encoder:
            feats.append(block(feats[-1]))
        e0, e1, e2, e3 = feats
        if self.variant == "code":
            y = e3
            for i, (skip, block) in enumerate(zip((e2, e1), self.decoder)):
                y = block(self.ups[i](self.gates[i](y, skip)))
            return self.head(torch.cat((self.ups[2](self.gates[2](y, e0)), e0), dim=1))
        y = e3
        for i, (skip, block) in enumerate(zip((e2, e1), self.decoder)):
            y = block(self.fuse[i](torch.cat((self.ups[i](y), self.gates[i](skip, y)), dim=1)))
        return self.head(torch.cat((self.ups[2](y), self.gates[2](e0, y)), dim=1))
