"""Single-step orthonormal 3-D Haar DWT and its inverse as fixed stride-2 (transposed) convolutions.

Band order along the band axis (index ``b = 4*s_D + 2*s_H + s_W``, ``s = 0`` low-pass, ``1``
high-pass) and the matching :func:`pywt.dwtn` key (``'a'`` = approximation, ``'d'`` = detail; key
character ``i`` refers to array axis ``i`` and ``dwtn`` axes ``(0, 1, 2)`` are ``(D, H, W)``):

====  =====  ====  =====  ====  =====  ====  =====
band  key    band  key    band  key    band  key
====  =====  ====  =====  ====  =====  ====  =====
0     aaa    2     ada    4     daa    6     dda
1     aad    3     add    5     dad    7     ddd
====  =====  ====  =====  ====  =====  ====  =====

Band 0 is LLL (the approximation, ``2*sqrt(2)`` times the local mean), bands 1..7 the details.
Filters: low ``[1, 1] / sqrt(2)``, high ``[1, -1] / sqrt(2)`` (pywt's ``haar`` convention:
``d = (x[2n] - x[2n+1]) / sqrt(2)``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

N_BANDS = 8
BAND_KEYS = ("aaa", "aad", "ada", "add", "daa", "dad", "dda", "ddd")
"""pywt.dwtn key of each band index."""


def haar_kernels(device=None, dtype=torch.float32) -> torch.Tensor:
    """The 8 analysis kernels ``(8, 1, 2, 2, 2)``: outer products of the low/high Haar filters."""
    s = 1.0 / math.sqrt(2.0)
    filters = torch.tensor([[s, s], [s, -s]], device=device, dtype=dtype)  # [low, high]
    kernels = [
        torch.einsum("i,j,k->ijk", filters[(b >> 2) & 1], filters[(b >> 1) & 1], filters[b & 1])
        for b in range(N_BANDS)
    ]
    return torch.stack(kernels).unsqueeze(1)


def haar_dwt3d(x: torch.Tensor) -> torch.Tensor:
    """One DWT step: ``(B, C, D, H, W)`` -> ``(B, C, 8, D/2, H/2, W/2)``; every side must be even."""
    if x.ndim != 5:
        raise ValueError(f"haar_dwt3d needs a (B, C, D, H, W) tensor, got shape {tuple(x.shape)}")
    b, c, d, h, w = x.shape
    if d % 2 or h % 2 or w % 2:
        raise ValueError(f"haar_dwt3d needs even D, H, W, got {(d, h, w)}")
    bands = F.conv3d(x.reshape(b * c, 1, d, h, w), haar_kernels(x.device, x.dtype), stride=2)
    return bands.reshape(b, c, N_BANDS, d // 2, h // 2, w // 2)


def haar_idwt3d(bands: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`haar_dwt3d`: ``(B, C, 8, d, h, w)`` -> ``(B, C, 2d, 2h, 2w)``."""
    if bands.ndim != 6 or bands.shape[2] != N_BANDS:
        raise ValueError(f"haar_idwt3d needs a (B, C, 8, d, h, w) tensor, got shape {tuple(bands.shape)}")
    b, c, _, d, h, w = bands.shape
    image = F.conv_transpose3d(
        bands.reshape(b * c, N_BANDS, d, h, w), haar_kernels(bands.device, bands.dtype), stride=2
    )
    return image.reshape(b, c, 2 * d, 2 * h, 2 * w)
