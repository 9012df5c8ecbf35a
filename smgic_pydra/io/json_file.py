"""Reading a user's JSON settings file with one-line errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError, display_path


def read_json(path, what: str):
    """The parsed content of the JSON file ``path``; ``what`` names it in errors (e.g. ``"BIDS filter file"``).

    Raises :class:`InputError` ``'<path>: <what> not found'`` or ``'<path>: not a readable JSON file (...)'``.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(display_path(path), f"{what} not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(display_path(path), f"not a readable JSON file ({exc})") from None
