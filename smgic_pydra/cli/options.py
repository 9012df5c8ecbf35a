"""Argument helpers shared by the two CLIs: one set of option names, old names kept as deprecated aliases."""

from __future__ import annotations

import argparse
import warnings

from ..config import N_LEVELS
from ..devices import DEVICE_NAME
from ..training.errors import TrainingError



def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (argparse type)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def device_name(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (argparse type; whether the device exists is checked before any work)."""
    if not DEVICE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return text


class _DeprecatedAlias(argparse.Action):
    """Stores its value; given by a name in ``deprecated``, issues a :class:`DeprecationWarning` first
    (Python's convention: shown by ``python -W default`` and in test reports, not on every run's stderr)."""

    def __init__(self, option_strings, dest, deprecated=(), **kwargs):
        self.deprecated = tuple(deprecated)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.deprecated:
            warnings.warn(f"{parser.prog}: {option_string} is deprecated; use {self.option_strings[0]}",
                          DeprecationWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_renamed(parser, name: str, *old_names: str, **kwargs) -> argparse.Action:
    """``parser.add_argument(name, *old_names, **kwargs)``, the old names accepted with a deprecation warning."""
    return parser.add_argument(name, *old_names, action=_DeprecatedAlias, deprecated=old_names, **kwargs)


def parse_stages(text: str) -> tuple[int, int]:
    """``"k"`` or ``"a-b"`` as ``(first, last)``."""
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError:
        raise TrainingError(f"--stages must be a stage or a range like 1-4, got {text!r}") from None
    if len(parts) not in (1, 2):
        raise TrainingError(f"--stages must be a stage or a range like 1-4, got {text!r}")
    return parts[0], parts[-1]


def parse_iterations(text: str) -> tuple[int, ...]:
    """One number (every stage) or four comma-separated numbers."""
    try:
        values = [int(p) for p in text.split(",")]
    except ValueError:
        raise TrainingError(f"--iterations must be integers, got {text!r}") from None
    if len(values) == 1:
        values = values * N_LEVELS
    if len(values) != N_LEVELS:
        raise TrainingError(f"--iterations needs 1 or {N_LEVELS} values, got {text!r}")
    return tuple(values)
