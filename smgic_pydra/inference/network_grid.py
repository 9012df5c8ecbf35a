"""Which level of the SM-GICNet cascade a pair runs up to: the network's grid chosen from the pair.

Level ``k`` of the cascade registers on ``cfg.level_shape(k)``, voxels ``2^(4-k)`` times the model's
(:attr:`~smgic_pydra.config.SMGICNetConfig.voxel_size_mm`); every level is trained to register on its
own (deep supervision), and level 4 costs about 8x the three below it together on the CPU. Inputs whose
voxels are no finer than level 3's hold no detail that level 4 could align, so ``auto`` stops there.
"""

from __future__ import annotations

import numpy as np

from ..pipeline_settings import NETWORK_GRIDS
HALF_GRID_FRACTION = 0.95
"""Tolerance for headers a little finer than the nominal voxel (e.g. 2.9 mm stored for 3 mm data)."""


def native_voxel_mm(native_affine) -> float:
    """The finest axis' voxel size (mm) of a grid with ``native_affine`` (4 x 4, RAS mm)."""
    return float(np.linalg.norm(np.asarray(native_affine, dtype=np.float64)[:3, :3], axis=0).min())


def half_grid(setting: str, model_voxel_mm: float, finest_mm):
    """Whether the network runs on half the grid (cascade level 3) for ``setting`` and the finest native voxel
    (mm) of a pair's subjects: ``full`` no, ``half`` yes, ``auto`` where ``finest_mm`` is at least
    :data:`HALF_GRID_FRACTION` of level 3's voxel (``2 model_voxel_mm``). ``finest_mm``: a number, or an
    array (one value per pair; returns a boolean array of its shape)."""
    if setting not in NETWORK_GRIDS:
        raise ValueError(f"network_grid must be one of {', '.join(NETWORK_GRIDS)}, got {setting!r}")
    if setting == "auto":
        return np.asarray(finest_mm) >= HALF_GRID_FRACTION * 2.0 * model_voxel_mm
    return np.full(np.shape(finest_mm), setting == "half")


def network_top_level(setting: str, model_voxel_mm: float, native_affines) -> int:
    """The cascade's last level (4 or 3) for ``setting`` and the subjects' native grids (4 x 4 affines):
    3 where :func:`half_grid` holds for their finest native voxel, else 4."""
    return 3 if half_grid(setting, model_voxel_mm, min(native_voxel_mm(a) for a in native_affines)) else 4
