"""Test-time (instance) optimisation of a pair's stationary velocity field."""

from .instance import refine_velocity

__all__ = ["refine_velocity"]
