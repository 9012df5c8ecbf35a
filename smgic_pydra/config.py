"""The one configuration object of SM-GICNet: shapes, channels, integration, losses and schedule.

Every value that changes what a checkpoint computes lives here and is serialized with it
(``to_json`` / ``from_json``), so a model file always carries the settings it was trained with.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

N_LEVELS = 4


@dataclass(frozen=True)
class SMGICNetConfig:
    """Settings of the network, its losses and its training schedule.

    Shapes are ``(D, H, W)`` voxel counts of the network grid (torch axis order, which is the
    nibabel array order ``(i, j, k)`` of the resampled image). Level ``k`` (1..4) runs at
    ``grid_shape / 2**(4 - k)``.
    """

    # --- geometry -----------------------------------------------------------------------------
    grid_shape: tuple[int, int, int] = (128, 128, 128)
    """Network grid in voxels ``(D, H, W)``; every side divisible by 16."""
    voxel_size_mm: float = 1.5
    """Isotropic spacing of the network grid in millimetres (128 x 1.5 mm = 192 mm FOV)."""

    # --- network -------------------------------------------------------------------------------
    channels: int = 32
    """Feature channels in every level."""
    range_flow: float = 0.4
    """Velocity head output = range_flow * Softsign(.), in normalized [-1, 1] grid units."""
    ss_steps: int = 7
    """Scaling-and-squaring steps T (the field is integrated from v / 2**T)."""
    attention_gate: str = "paper"
    """``paper``: 1-channel gate on the encoder skip (Appendix A); ``code``: 32-channel gate on
    the decoder feature (official code)."""
    lll_normalize: bool = True
    """Divide LLL_k by (2*sqrt(2))**k so every level sees [0, 1] inputs; False keeps raw scale."""
    energy_normalize: str = "percentile"
    """Energy-map scaling: ``percentile`` (divide by the 99.9th percentile of positive values per
    sample), ``log1p``, or ``raw``."""
    energy_percentile: float = 99.9

    # --- losses --------------------------------------------------------------------------------
    ncc_windows: tuple[int, int, int, int] = (3, 5, 7, 9)
    """Local NCC box window (voxels) for levels 1..4."""
    level_weights: tuple[float, float, float, float] = (0.125, 0.25, 0.5, 1.0)
    """Similarity weight alpha_i per level at the final stage (halved per level below the top)."""
    smooth_weights: tuple[float, float, float, float] = (0.125, 0.25, 0.5, 1.0)
    """Smoothness weight beta_i per level."""
    lambda_smooth: float = 1.0
    lambda_sym: float = 1e-3
    """Symmetric (image) consistency weight lambda_s."""
    lambda_inv: float = 1e-2
    """Inverse consistency weight lambda_i: MSE(phi_AB o phi_BA, Id) in voxels, both orders."""
    lambda_multi: float = 5e-4
    """Multi-level consistency weight lambda_m."""
    lambda_gradicon: float = 0.5
    """Gradient inverse consistency (GradICON) weight."""
    gradicon_delta: float = 2e-3
    """Finite-difference step of GradICON, normalized units."""
    gradicon_noise: float = 2.0
    """Std of the random sample-point perturbation = gradicon_noise / N (normalized units)."""
    lambda_antifold: float = 0.0
    """Anti-folding penalty weight (official-code addition); 0 disables it."""

    # --- training schedule ---------------------------------------------------------------------
    stage_iterations: tuple[int, int, int, int] = (20000, 20000, 30000, 30000)
    """Iterations per progressive stage (the paper's 4:4:6:6 epoch ratio)."""
    freeze_steps: int = 3000
    """Steps at the start of stage k > 1 during which levels 1..k-1 are frozen."""
    learning_rate: float = 1e-4
    lr_decay_start: int = 60000
    """Iterations (within a stage) before the first LR halving."""
    lr_decay_every: int = 50000
    lr_decay_factor: float = 0.5
    batch_size: int = 1

    def __post_init__(self) -> None:
        if len(self.grid_shape) != 3 or any(int(n) % 16 or int(n) <= 0 for n in self.grid_shape):
            raise ValueError(f"grid_shape must be 3 positive sides divisible by 16, got {self.grid_shape}")
        if self.attention_gate not in ("paper", "code"):
            raise ValueError(f"attention_gate must be 'paper' or 'code', got {self.attention_gate!r}")
        if self.energy_normalize not in ("percentile", "log1p", "raw"):
            raise ValueError(f"energy_normalize must be percentile|log1p|raw, got {self.energy_normalize!r}")
        for name in ("ncc_windows", "level_weights", "smooth_weights", "stage_iterations"):
            if len(getattr(self, name)) != N_LEVELS:
                raise ValueError(f"{name} needs {N_LEVELS} values")

    def level_shape(self, level: int) -> tuple[int, int, int]:
        """Grid ``(D, H, W)`` of level ``level`` (1..4)."""
        if not 1 <= level <= N_LEVELS:
            raise ValueError(f"level must be 1..{N_LEVELS}, got {level}")
        f = 2 ** (N_LEVELS - level)
        return tuple(int(n) // f for n in self.grid_shape)

    def replace(self, **changes) -> "SMGICNetConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "SMGICNetConfig":
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "SMGICNetConfig":
        text = Path(text_or_path).read_text() if isinstance(text_or_path, Path) else text_or_path
        return cls.from_dict(json.loads(text))


def small_config(**changes) -> SMGICNetConfig:
    """A 64^3 at 3 mm configuration for tests and CPU demos (same 192 mm field of view)."""
    base = SMGICNetConfig(grid_shape=(64, 64, 64), voxel_size_mm=3.0)
    return base.replace(**changes) if changes else base


__all__ = ["N_LEVELS", "SMGICNetConfig", "small_config"]
