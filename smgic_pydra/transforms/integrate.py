"""Stationary velocity field integration by scaling and squaring."""

from __future__ import annotations

import torch

from .warp import compose


def integrate_velocity(v: torch.Tensor, steps: int = 7) -> torch.Tensor:
    """Displacement of ``exp(v)`` for a stationary velocity ``v`` ``(B, 3, D, H, W)``, normalized units.

    Scaling and squaring: ``u = v / 2**steps`` then ``steps`` times ``u <- u o u`` (the standard
    integrator, sampling at ``p + u``). ``integrate_velocity(-v)`` is the inverse map.
    """
    u = v / (2.0**steps)
    for _ in range(steps):
        u = compose(u, u)
    return u
