"""Safe parsing of user-given ``sbatch`` arguments for :class:`SlurmArrayWorker`.

The worker owns the options that decide where a job's files go and how it is tracked
(``--output``/``--error``, ``--array``, ``--parsable``, ``--wait``, requeueing), so a user
argument that sets one of them is rejected with a one-line :class:`SbatchArgsError` instead of
being silently overridden. Everything else is passed to ``sbatch`` unchanged, token by token.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

# long option -> short alias (None: no short form); all are owned by the worker
_OWNED = {
    "--output": "-o",
    "--error": "-e",
    "--array": "-a",
    "--wait": "-W",
    "--parsable": None,
    "--requeue": None,
    "--no-requeue": None,
    "--wrap": None,
}
_WHY = {
    "--output": "the worker writes each job's stdout into the cache dir",
    "--error": "the worker reads each job's error and traceback from its stderr file in the cache dir",
    "--array": "the worker builds the job arrays itself (see max_array_size)",
    "--wait": "the worker polls squeue itself",
    "--parsable": "the worker adds it itself",
    "--requeue": "jobs are never requeued (a failed or timed-out job fails once)",
    "--no-requeue": "the worker adds it itself",
    "--wrap": "the worker writes the batch script",
}
_TIME_RE = re.compile(r"^(?:--time(?:=(?P<long>.+))?|-t(?P<short>.*))$")


class SbatchArgsError(ValueError):
    """User ``sbatch`` arguments the worker cannot honour (one-line message)."""


def split_sbatch_args(args: str | Sequence[str] | None, *, where: str = "sbatch_args") -> list[str]:
    """Tokens of ``args`` (a shell-quoted string or a sequence of tokens), checked.

    Raises :class:`SbatchArgsError` naming ``where`` for unbalanced quotes and for any option the
    worker owns (``-o``, ``-e``, ``--output``, ``--error``, ``--array``, ``--wait``, ...).
    """
    if args is None:
        return []
    if isinstance(args, str):
        try:
            tokens = shlex.split(args)
        except ValueError as exc:
            raise SbatchArgsError(f"{where}: cannot parse {args!r}: {exc}") from None
    else:
        tokens = [str(t) for t in args]
    for token in tokens:
        owned = _owned_option(token)
        if owned is not None:
            short = _OWNED[owned]
            names = f"{owned}" + (f"/{short}" if short else "")
            raise SbatchArgsError(f"{where}: {names} is not allowed ({token!r}): {_WHY[owned]}")
    return tokens


def _owned_option(token: str) -> str | None:
    """The worker-owned long option that ``token`` sets, or None."""
    if token.startswith("--"):
        name = token.split("=", 1)[0]
        return name if name in _OWNED else None
    if len(token) >= 2 and token[0] == "-" and token[1] != "-":
        for long, short in _OWNED.items():
            if short is not None and token.startswith(short):
                return long
    return None


def time_limit(tokens: Sequence[str]) -> str | None:
    """The last ``--time``/``-t`` value in ``tokens`` (as written), or None when not given."""
    found = None
    for i, token in enumerate(tokens):
        m = _TIME_RE.match(token)
        if not m:
            continue
        value = m.group("long") or m.group("short")
        if not value and i + 1 < len(tokens):
            value = tokens[i + 1]
        found = value or found
    return found
