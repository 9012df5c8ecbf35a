"""Symmetric affine pre-alignment of a prepared pair: moments initialisation, multi-resolution
12-parameter optimisation in the affine halfway space, and the halfway views the network sees."""

from .halfway import HalfwayPair, halfway_pair
from .moments import moment_candidates
from .symmetric import AffineResult, register_affine

__all__ = ["AffineResult", "HalfwayPair", "halfway_pair", "moment_candidates", "register_affine"]
