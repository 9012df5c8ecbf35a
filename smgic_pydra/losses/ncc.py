"""Local normalized cross-correlation (LapIRN-style squared local correlation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def local_ncc(image: torch.Tensor, target: torch.Tensor, window: int, eps: float = 1e-8) -> torch.Tensor:
    """Local NCC loss ``-mean(cc)`` in ``[-1, 0]`` of two ``(B, 1, D, H, W)`` images.

    Box sums over a ``window``^3 neighbourhood (conv3d with a ones kernel, zero padding
    ``window // 2``, so border windows count the padded zeros); per voxel
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
        kernel = torch.ones((1, 1, window, window, window), device=i.device, dtype=i.dtype)
        stacked = torch.cat((i, j, i * i, j * j, i * j), dim=0)
        sums = F.conv3d(stacked, kernel, padding=window // 2)
        i_sum, j_sum, i2_sum, j2_sum, ij_sum = sums.reshape(5, *i.shape)
        size = float(window**3)
        i_mean = i_sum / size
        j_mean = j_sum / size
        cross = ij_sum - j_mean * i_sum - i_mean * j_sum + i_mean * j_mean * size
        i_var = i2_sum - 2 * i_mean * i_sum + i_mean * i_mean * size
        j_var = j2_sum - 2 * j_mean * j_sum + j_mean * j_mean * size
        cc = cross * cross / (i_var * j_var + eps)
        return -cc.mean()
