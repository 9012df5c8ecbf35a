"""Losses of SM-GICNet: local NCC, regularizers, consistency terms, GradICON and the stage objective."""

from .consistency import inverse_consistency, multilevel_consistency, symmetric_consistency
from .gradicon import gradicon
from .ncc import local_ncc
from .objective import TERMS, stage_loss, stage_weights
from .regularizers import antifold, smoothness

__all__ = [
    "TERMS",
    "antifold",
    "gradicon",
    "inverse_consistency",
    "local_ncc",
    "multilevel_consistency",
    "smoothness",
    "stage_loss",
    "stage_weights",
    "symmetric_consistency",
]
