"""Errors raised by training: one-line messages naming the file and the problem."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Bad training input or settings (e.g. an image off the network grid, an unknown device)."""


class CheckpointError(TrainingError):
    """A checkpoint directory that is missing, incomplete or inconsistent."""
