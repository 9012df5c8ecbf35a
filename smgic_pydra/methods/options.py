"""Typed method options: what a registry entry declares for each of its options, and the check of a
user's value (``--method-option METHOD.KEY=VALUE``, JSON) against it, done when the command line is
parsed: a value of the wrong JSON type or out of bounds is a one-line ``ValueError``, never coerced
(no truthiness, no truncation of ``1.5`` to ``1``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _kind(value) -> type:
    return bool if isinstance(value, bool) else int if isinstance(value, int) else float if isinstance(
        value, float) else str if isinstance(value, str) else list if isinstance(value, list) else type(value)


@dataclass(frozen=True)
class Option:
    """One option of a method: its default, whose JSON type a value must have (a float option also takes an
    integer; a list option takes a non-empty list of its elements' type), and bounds that apply to
    the value or to each element of a list: ``minimum`` (inclusive), ``above`` (exclusive), ``odd``,
    ``choices``. help: one line (units)."""

    default: object
    help: str = ""
    minimum: float | None = None
    above: float | None = None
    odd: bool = False
    choices: tuple = ()

    def check(self, name: str, value):
        """``value`` if it fits this option, else a one-line ``ValueError`` naming ``name`` (``METHOD.KEY``)."""
        kind = _kind(self.default)
        if kind is list:
            if not isinstance(value, list) or not value:
                raise ValueError(f"{name} must be a non-empty JSON list like {self.default}, got {value!r}")
            element = _kind(self.default[0])
            for item in value:
                self._check_scalar(name, item, element, f" (element of {value!r})")
            return value
        return self._check_scalar(name, value, kind, "")

    def _check_scalar(self, name: str, value, kind: type, where: str):
        ok = _kind(value) is kind or (kind is float and _kind(value) is int)
        if not ok:
            raise ValueError(f"{name} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}{where}")
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}{where}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, self.choices))}, got {value!r}{where}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{name} must be >= {self.minimum:g}, got {value!r}{where}")
        if self.above is not None and value <= self.above:
            raise ValueError(f"{name} must be > {self.above:g}, got {value!r}{where}")
        if self.odd and value % 2 == 0:
            raise ValueError(f"{name} must be odd, got {value!r}{where}")
        return value


def option_defaults(options: dict[str, Option]) -> dict:
    """``key -> default`` of declared options."""
    return {key: option.default for key, option in options.items()}
