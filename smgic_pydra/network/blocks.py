"""Building blocks of the SM-GICNet levels. All 3x3x3 convolutions have padding 1 and no bias.

Every block instance owns its weights; the level nets never call one module twice.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SLOPE = 0.2
"""LeakyReLU slope of the pre-activation blocks, the stems and the flow head."""
POST_ACT_SLOPE = 0.01
"""LeakyReLU slope of the level-4 post-activation blocks (PyTorch's default, as in the official code)."""


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters and state-dict keys) that runs oneDNN for every float32 CPU input.

    ATen's backend choice sends 1x1x1 kernels on one thread, and inputs with ``N C D H <= 20480`` (e.g. the 5
    channels of level 3 at 64^3, the 16^3 levels), to its unvectorised ``slow_conv3d`` (a profile of the 128^3
    forward on one AVX2 core: 4.1 of 22 s). oneDNN computes the same convolution (float32 rounding, autograd
    included): the inference forward in float32 took 17.2 s instead of 19.4 s on one AVX2 core and 9.5 s
    instead of 10.3 s on two (``benchmarks/precision_speed.py --variants fp32 fp32-aten``), the velocity equal
    to 1.6e-7. Under autocast, on CUDA and for other dtypes this is ``nn.Conv3d`` (bfloat16 runs oneDNN)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (input.device.type == "cpu" and input.dtype == torch.float32 and self.padding_mode == "zeros"
                and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
                and not torch.is_autocast_enabled("cpu")):
            return torch.ops.aten.mkldnn_convolution(input, weight, bias, self.padding, self.stride,
                                                     self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


def conv3(in_channels: int, out_channels: int) -> Conv3d:
    """3x3x3 convolution, stride 1, padding 1, no bias (keeps the grid)."""
    return Conv3d(in_channels, out_channels, 3, padding=1, bias=False)


class PreActRes(nn.Module):
    """``LReLU(x + conv_b(LReLU(conv_a(LReLU(x)))))``, slope 0.2, identity shortcut (levels 1-3)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_a = conv3(channels, channels)
        self.conv_b = conv3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_b(F.leaky_relu(self.conv_a(F.leaky_relu(x, SLOPE)), SLOPE, inplace=True))
        return F.leaky_relu(x + y, SLOPE, inplace=True)


class PostActRes(nn.Module):
    """``x + LReLU(conv_b(LReLU(conv_a(x))))``, slope 0.01, identity shortcut (level 4)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_a = conv3(channels, channels)
        self.conv_b = conv3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_b(F.leaky_relu(self.conv_a(x), POST_ACT_SLOPE, inplace=True))
        return x + F.leaky_relu(y, POST_ACT_SLOPE, inplace=True)


class Down(nn.Sequential):
    """Stride-2 3x3x3 convolution (halves every even side), no activation."""

    def __init__(self, channels: int):
        super().__init__(Conv3d(channels, channels, 3, stride=2, padding=1, bias=False))


class Up(nn.Sequential):
    """Kernel-2 stride-2 transposed convolution (doubles every side), no activation."""

    def __init__(self, channels: int):
        super().__init__(nn.ConvTranspose3d(channels, channels, 2, stride=2, bias=False))


class FlowHead(nn.Module):
    """``conv(2C->C) -> LReLU(0.2) -> conv(C->3) -> Softsign * range_flow``: a velocity in normalized units.

    ``|v| < range_flow`` everywhere. ``last`` is the final convolution (zero it for an identity start).
    Under mixed precision the velocity is returned in float32 (the fields never live in half precision).
    """

    def __init__(self, channels: int, range_flow: float):
        super().__init__()
        self.hidden = conv3(2 * channels, channels)
        self.last = conv3(channels, 3)
        self.range_flow = float(range_flow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.last(F.leaky_relu(self.hidden(x), SLOPE))
        if v.dtype in (torch.float16, torch.bfloat16):
            v = v.float()
        return F.softsign(v) * self.range_flow


class AttentionGate(nn.Module):
    """``feature * alpha`` with ``alpha = sigmoid(psi(ReLU(W_f feature + W_g gating)))`` (1x1x1 convs with bias).

    The two projections meet on the coarser of the two grids (the finer one is resized trilinearly,
    ``align_corners=True``); ``alpha`` (``gate_channels`` channels: 1 or ``channels``) is then resized
    to ``feature``'s grid. Variants of the level-4 U-Net:

    * ``paper`` (Attention U-Net, the paper's Appendix A): ``feature`` = the encoder skip (finer),
      ``gating`` = the decoder feature one level coarser, ``gate_channels = 1``;
    * ``code`` (official code): ``feature`` = the decoder feature, ``gating`` = the encoder feature one
      level finer, ``gate_channels = channels``.
    """

    def __init__(self, channels: int, gate_channels: int):
        super().__init__()
        self.project_feature = Conv3d(channels, channels, 1)
        self.project_gating = Conv3d(channels, channels, 1)
        self.psi = Conv3d(channels, gate_channels, 1)

    def forward(self, feature: torch.Tensor, gating: torch.Tensor) -> torch.Tensor:
        f, g = self.project_feature(feature), self.project_gating(gating)
        coarse = min((f.shape[-3:], g.shape[-3:]), key=lambda s: s.numel())
        f, g = (_resize(t, coarse) for t in (f, g))
        alpha = torch.sigmoid(self.psi(F.relu(f + g)))
        return feature * _resize(alpha, feature.shape[-3:])


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    """Trilinear resize to ``size`` (``align_corners=True``); the input itself when already there."""
    if tuple(x.shape[-3:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="trilinear", align_corners=True)
