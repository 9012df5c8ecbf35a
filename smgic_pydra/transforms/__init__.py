"""Grids, warps, integration and Jacobians of displacement fields (see :mod:`.grid` for conventions)."""

from .grid import identity_grid, norm_to_voxel
from .integrate import integrate_velocity
from .jacobian import jacobian_determinant
from .pooling import pool_field, unpool_field
from .warp import compose, sample_grid, upsample_field, warp

__all__ = [
    "compose",
    "identity_grid",
    "integrate_velocity",
    "jacobian_determinant",
    "norm_to_voxel",
    "pool_field",
    "sample_grid",
    "unpool_field",
    "upsample_field",
    "warp",
]
