"""Skull stripping, intensity normalisation and network-grid placement of subjects."""

from .grid import mask_centre_ras, network_affine
from .intensity import normalize_intensity
from .prepare import prepare_subject
from .skullstrip import SKULL_STRIP_METHODS, deepbet_mask, synthstrip_mask
from .subject import PreparedSubject

__all__ = [
    "SKULL_STRIP_METHODS",
    "PreparedSubject",
    "deepbet_mask",
    "mask_centre_ras",
    "network_affine",
    "normalize_intensity",
    "prepare_subject",
    "synthstrip_mask",
]
