"""The paper's learning-rate schedule: constant, then a step decay."""

from __future__ import annotations

from ..config import SMGICNetConfig


def learning_rate(cfg: SMGICNetConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based, counted within a stage).

    ``cfg.learning_rate`` for the first ``cfg.lr_decay_start`` steps, then multiplied by
    ``cfg.lr_decay_factor`` at step ``lr_decay_start`` and again every ``cfg.lr_decay_every`` steps
    (paper: 1e-4, halved every 50k iterations after the first 60k).
    """
    if step < cfg.lr_decay_start:
        return cfg.learning_rate
    decays = 1 + (step - cfg.lr_decay_start) // cfg.lr_decay_every
    return cfg.learning_rate * cfg.lr_decay_factor**decays
