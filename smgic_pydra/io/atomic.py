"""Atomic file writes: write to a temporary name in the same folder, then ``os.replace``.

A reader never sees a half-written file, and a failed write leaves nothing behind. The temporary
name ends with the final name (``.tmp-<token>-<name>``), so nibabel still picks the format from
the ``.nii.gz`` / ``.nii`` / ``.mgz`` suffix.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


TEMP_PREFIX = re.compile(r"^(\.tmp-[0-9a-f]{12}-)+")


def _temp_name(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (a temporary name itself is not prefixed twice)."""
    return path.parent / f".tmp-{uuid.uuid4().hex[:12]}-{final_name(path)}"


def final_name(path) -> str:
    """The file name ``path`` will have once its atomic write is done (the name without temporary prefixes)."""
    return TEMP_PREFIX.sub("", Path(path).name)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``, on error remove it.

    The parent folder is created if needed.
    """
    with atomic_paths([path]) as (tmp,):
        yield tmp


@contextmanager
def atomic_paths(paths) -> Iterator[list[Path]]:
    """All-or-nothing writes of several files in their folders.

    Yields one temporary path per final path. When the block succeeds, every temporary file is
    moved onto its final name (in the given order); when the block or a move fails, every
    temporary file and every final file already moved in this call is removed, so no partial set
    of outputs is left behind.
    """
    finals = [Path(p) for p in paths]
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
    temps = [_temp_name(final) for final in finals]
    moved: list[Path] = []
    try:
        yield temps
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)
            moved.append(final)
    except BaseException as exc:
        for tmp in temps:
            _unlink_quietly(tmp)
        for final in moved:
            _unlink_quietly(final)
        if isinstance(exc, OSError) and exc.filename and TEMP_PREFIX.match(Path(exc.filename).name):
            # name the file being written, not its temporary name (e.g. an unwritable folder)
            shown = Path(exc.filename).with_name(final_name(exc.filename))
            raise OSError(exc.errno, exc.strerror, str(shown)) from None
        raise


def save_nifti(img, path) -> Path:
    """Save a nibabel image atomically (format from the suffix); returns the final path."""
    import nibabel as nib

    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return path


def _to_json(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def json_text(obj) -> str:
    """Indented JSON of ``obj`` (NumPy arrays/scalars and paths allowed); ``TypeError`` otherwise."""
    return json.dumps(obj, indent=2, default=_to_json) + "\n"


def save_json(obj, path) -> Path:
    """Write ``obj`` as indented JSON atomically (see :func:`json_text`)."""
    path = Path(path)
    text = json_text(obj)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
