"""Identity grids and unit conversions for displacement fields on the network grid.

Convention (used by every module in the package):

* images are ``(B, C, D, H, W)`` tensors;
* a displacement ``u`` is ``(B, 3, D, H, W)``; channel 0 is along W, 1 along H, 2 along D (the
  ``(x, y, z)`` order of :func:`torch.nn.functional.grid_sample`);
* inside the network ``u`` is in normalized grid units in ``[-1, 1]`` with ``align_corners=True``:
  one voxel along an axis of ``N`` voxels is ``2 / (N - 1)``;
* ``phi(p) = p + u(p)`` and warping pulls back: ``(I o phi)(p) = I(p + u(p))``.
"""

from __future__ import annotations

import torch


def identity_grid(shape, device=None, dtype=torch.float32) -> torch.Tensor:
    """Identity sampling grid ``(1, D, H, W, 3)`` in normalized units, last axis ``(x, y, z)``."""
    d, h, w = (int(n) for n in shape)
    axes = [torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype) for n in (d, h, w)]
    zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
    return torch.stack((xx, yy, zz), dim=-1).unsqueeze(0)


def _half_extent(u: torch.Tensor) -> torch.Tensor:
    """``(N - 1) / 2`` per displacement channel ``(x, y, z) = (W, H, D)`` as a ``(1, 3, 1, 1, 1)`` tensor."""
    d, h, w = u.shape[-3:]
    scale = torch.tensor([(w - 1) / 2.0, (h - 1) / 2.0, (d - 1) / 2.0], device=u.device, dtype=u.dtype)
    return scale.view(1, 3, 1, 1, 1)


def norm_to_voxel(u: torch.Tensor) -> torch.Tensor:
    """Normalized displacement ``(B, 3, D, H, W)`` -> voxels (multiply by ``(N - 1) / 2``); new tensor."""
    return u * _half_extent(u)

