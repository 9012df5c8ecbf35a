"""Trilinear / nearest sampling of 3-D volumes on every CPU thread.

ATen's 3-D ``grid_sample`` CPU kernel (forward and backward) parallelises over the batch only, so a single
volume ran on one thread whatever ``torch.get_num_threads()`` said. :func:`grid_sample_3d` splits the sampling
points of a single volume into one batch entry per thread instead (the volume itself is not copied).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


MAX_PIECES = 8
"""At most this many batch entries: the backward pass holds one copy of the image's gradient per entry."""


def _pieces(image: torch.Tensor, grid: torch.Tensor) -> int:
    """Batch entries to split a single volume's sampling into: one per CPU thread (at most :data:`MAX_PIECES`, and
    one per grid slice)."""
    if image.device.type != "cpu" or image.shape[0] != 1 or grid.shape[0] != 1:
        return 1
    return max(1, min(torch.get_num_threads(), grid.shape[1], MAX_PIECES))


def grid_sample_3d(image: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear",
                   padding_mode: str = "border") -> torch.Tensor:
    """:func:`torch.nn.functional.grid_sample` with ``align_corners=True``: ``image (B, C, D, H, W)`` at
    ``grid (B, d, h, w, 3)`` (normalized ``(x, y, z)``) -> ``(B, C, d, h, w)``.

    A single CPU volume is sampled as ``n`` = thread-count batch entries (at most :data:`MAX_PIECES`): ``grid``'s
    ``d`` axis cut into ``n`` slabs, the last one padded by repeating its last slice, ``image`` expanded, not
    copied. Each output value and each gradient with respect to ``grid`` is computed exactly as unsplit (bit for
    bit); the gradient with respect to ``image`` is the sum of the slabs' (float rounding of the order of
    summation), held as ``n`` copies of ``image`` during the backward pass.
    """
    pieces = _pieces(image, grid)
    if pieces == 1:
        return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    depth, rest = grid.shape[1], grid.shape[2:4]
    slab = -(-depth // pieces)
    pieces = -(-depth // slab)
    padding = slab * pieces - depth
    if padding:
        grid = torch.cat((grid, grid[:, -1:].expand(1, padding, *grid.shape[2:])), dim=1)
    out = F.grid_sample(image.expand(pieces, *image.shape[1:]), grid.reshape(pieces, slab, *grid.shape[2:]),
                        mode=mode, padding_mode=padding_mode, align_corners=True)
    out = out.transpose(0, 1).reshape(1, image.shape[1], slab * pieces, *rest)
    return out[:, :, :depth] if padding else out
