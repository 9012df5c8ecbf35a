"""Local normalized cross-correlation (LapIRN-style squared local correlation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window``^3 box around each voxel of ``(B, C, D, H, W)``, zeros outside.

    Three separable 1-D depthwise convolutions with weights ``1 / window`` (zero padding
    ``window // 2``, padded zeros counted), so the cost per voxel grows with ``3 window`` rather than
    ``window^3``. On the CPU these run forward + backward ~2.8x faster than the same three 1-D
    ``avg_pool3d`` (equal to 2e-7; 5 channels at 64^3, one thread).
    """
    half, channels = window // 2, x.shape[1]
    for kernel, padding in (((window, 1, 1), (half, 0, 0)), ((1, window, 1), (0, half, 0)), ((1, 1, window), (0, 0, half))):
        weight = torch.full((channels, 1, *kernel), 1.0 / window, dtype=x.dtype, device=x.device)
        x = F.conv3d(x, weight, padding=padding, groups=channels)
    return x


def local_ncc(image: torch.Tensor, target: torch.Tensor, window: int, eps: float = 1e-8) -> torch.Tensor:
    """Local NCC loss ``-mean(cc)`` in ``[-1, 0]`` of two ``(B, 1, D, H, W)`` images.

    Box sums over a ``window``^3 neighbourhood (:func:`box_mean` times ``window^3``: zero
    padding ``window // 2``, so border windows count the padded zeros); per voxel
    ``cc = cross^2 / (var_I * var_J + eps)`` with the window sums of LapIRN's implementation.
    Computed in float32 whatever the input dtype (safe under autocast).
    """
    if image.shape != target.shape or image.dim() != 5 or image.shape[1] != 1:
        shapes = f"{tuple(image.shape)} and {tuple(target.shape)}"
        raise ValueError(f"local_ncc needs two (B, 1, D, H, W) images of one shape, got {shapes}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"NCC window must be a positive odd size, got {window}")
    with torch.autocast(device_type=image.device.type, enabled=False):
        i = image.float()
        j = target.float()
        size = float(window**3)
        means = box_mean(torch.cat((i, j, i * i, j * j, i * j), dim=1), window)
        i_mean, j_mean, i2_mean, j2_mean, ij_mean = means.unbind(dim=1)
        cross = (ij_mean - i_mean * j_mean) * size
        i_var = (i2_mean - i_mean * i_mean) * size
        j_var = (j2_mean - j_mean * j_mean) * size
        cc = cross * cross / (i_var * j_var + eps)
        return -cc.mean()
