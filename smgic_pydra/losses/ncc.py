"""Local normalized cross-correlation (LapIRN-style squared local correlation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window``^3 box around each voxel of ``(B, C, D, H, W)``, zeros outside.

    Three separable 1-D depthwise convolutions with weights ``1 / window`` (zero padding
    ``window // 2``, padded zeros counted), so the cost per voxel grows with ``3 window`` rather than
    ``window^3``. Each pass is a 2-D convolution of a view of the volume (D along ``(D, H W)``, H along
    ``(H, W)`` planes, W along ``(D H, W)`` rows): on the CPU, forward + backward of a 5-channel 128^3 box
    ran ~1.5x faster than with 3-D kernels, 64^3 ~3.5x (one thread), and both ran ~2.8x faster than
    ``avg_pool3d``.
    """
    half, (b, c, d, h, w) = window // 2, x.shape

    def kernel(shape: tuple[int, int], groups: int) -> torch.Tensor:
        return torch.full((groups, 1, *shape), 1.0 / window, dtype=x.dtype, device=x.device)

    x = F.conv2d(x.reshape(b, c, d, h * w), kernel((window, 1), c), padding=(half, 0), groups=c)
    x = F.conv2d(x.reshape(b, c * d, h, w), kernel((window, 1), c * d), padding=(half, 0), groups=c * d)
    x = F.conv2d(x.reshape(b, c, d * h, w), kernel((1, window), c), padding=(0, half), groups=c)
    return x.reshape(b, c, d, h, w)


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
