"""Gradient inverse consistency (GradICON, Tian et al., CVPR 2023) for normalized displacement fields."""

from __future__ import annotations

import torch

from ..transforms import identity_grid
from ..transforms.sample import grid_sample_3d


def displacement_at(disp: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Displacement ``(B, 3, D', H', W')`` of ``disp`` ``(B, 3, D, H, W)`` at normalized ``points``
    ``(B, D', H', W', 3)`` (last axis ``(x, y, z)``): trilinear, ``align_corners=True``, border padding.
    """
    return grid_sample_3d(disp, points)


def composition_error_jacobian(
    disp_outer: torch.Tensor, disp_inner: torch.Tensor, points: torch.Tensor, delta: float
) -> torch.Tensor:
    """GradICON penalty of ``phi_outer o phi_inner`` at ``points``: ``sum_d mean(g_d^2)``.

    ``e(x) = x - phi_outer(phi_inner(x))`` and ``g_d = (e(x) - e(x + delta e_d)) / delta`` (forward
    differences, normalized units, so the quotient is dimensionless). Equals
    ``||J(phi_outer o phi_inner) - I||_F^2 / 3`` averaged over points for smooth maps.
    """

    def error(x: torch.Tensor) -> torch.Tensor:
        u_inner = displacement_at(disp_inner, x)
        moved = x + u_inner.permute(0, 2, 3, 4, 1)
        return -(u_inner + displacement_at(disp_outer, moved))

    base = error(points)
    total = points.new_zeros(())
    for axis in range(3):
        step = torch.zeros(3, device=points.device, dtype=points.dtype)
        step[axis] = delta
        grad = (base - error(points + step)) / delta
        total = total + grad.pow(2).mean()
    return total


def perturbed_points(
    shape, batch: int, noise: float, delta: float, device=None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Identity grid ``(batch, D, H, W, 3)`` plus Gaussian noise of std ``noise / N_axis`` (normalized).

    Points are clamped to ``[-1, 1 - delta]`` so every difference step stays inside the domain
    (outside it the border padding of the field would report spurious errors).
    """
    grid = identity_grid(shape, device=device).expand(batch, *shape, 3)
    d, h, w = shape
    std = torch.tensor([noise / w, noise / h, noise / d], device=device)
    eps = torch.randn(grid.shape, device=device, generator=generator) * std
    return (grid + eps).clamp(-1.0, 1.0 - delta)


def gradicon(
    disp_ab: torch.Tensor,
    disp_ba: torch.Tensor,
    noise: float = 2.0,
    delta: float = 2e-3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """GradICON of a pair of normalized displacements ``(B, 3, D, H, W)``, both composition orders:
    ``(G(phi_AB o phi_BA) + G(phi_BA o phi_AB)) / 2`` at randomly perturbed grid points.

    noise: the point perturbation has std ``noise / N_axis`` in normalized units (about
    ``noise / 2`` voxels); delta: difference step in normalized units. ``generator`` (on the
    fields' device) makes the points reproducible. Computed in float32.
    """
    with torch.autocast(device_type=disp_ab.device.type, enabled=False):
        disp_ab, disp_ba = disp_ab.float(), disp_ba.float()
        points = perturbed_points(
            disp_ab.shape[2:], disp_ab.shape[0], noise, delta, device=disp_ab.device, generator=generator
        )
        return 0.5 * (
            composition_error_jacobian(disp_ab, disp_ba, points, delta)
            + composition_error_jacobian(disp_ba, disp_ab, points, delta)
        )
