"""Project exceptions for bad input files and missing external tools.

Every exception class of the project survives pickling (pydra workers send errors between
processes): classes whose ``__init__`` takes other arguments than the message define ``__reduce__``.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A bad input file: the message is one line, ``'<path>: <problem>'``.

    Attributes ``path`` (str) and ``problem`` (str) hold the two parts.
    """

    def __init__(self, path, problem: str) -> None:
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


class InputErrors(ValueError):
    """Several bad inputs found at once: one :class:`InputError` per line of the message (attribute ``errors``)."""

    def __init__(self, errors) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __reduce__(self):
        return type(self), (self.errors,)


class MissingToolError(RuntimeError):
    """An optional external tool (Python package or executable) is not installed.

    The message names the tool and says how to install it.
    """

    def __init__(self, tool: str, how_to_install: str) -> None:
        self.tool, self.how_to_install = tool, how_to_install
        super().__init__(f"{tool} is not available: {how_to_install}")

    def __reduce__(self):
        return type(self), (self.tool, self.how_to_install)


def display_path(path) -> str:
    """The path as shown in messages (absolute, not resolved through links)."""
    return str(Path(path).absolute())
