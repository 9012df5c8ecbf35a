"""What every method that registers native images shares: the inputs of a prepared pair, and timing +
sidecar into a :class:`~smgic_pydra.worldspace.registered.RegisteredPair` (written and evaluated the
same way for every method by the tile job)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from ..worldspace.registered import RegisteredPair

FieldsFn = Callable[[], tuple[np.ndarray, np.ndarray, float, dict]]
"""``() -> (forward (X, Y, Z, 3) RAS mm on the fixed grid, inverse on the moving grid, registration seconds,
sidecar details)``."""


def prepared_inputs(fixed, moving) -> tuple:
    """``(fixed image, moving image, moving labels or None, sidecar extra)`` of two prepared subjects.

    The images are the subjects' source T1w on their native grids, zero outside the brain mask (the
    network's inputs too); the labels are the moving subject's source labels.
    """
    from ..inference.register import skull_stripped_native
    from ..io.images import load_image

    labels_path = moving.source_files.get("labels")
    labels = None if labels_path is None else load_image(labels_path, "labels")
    extra = {"fixed": fixed.subject_id, "moving": moving.subject_id,
             "fixed_source": fixed.source_files, "moving_source": moving.source_files}
    return skull_stripped_native(fixed), skull_stripped_native(moving), labels, extra


def register_native(method: str, fields: FieldsFn, fixed_img, moving_img, moving_labels_img,
                    sidecar: dict) -> RegisteredPair:
    """Run and time ``fields``; returns the pair in memory (nothing is written).

    sidecar: the method's sidecar entries; ``fields``' details, ``forward_seconds`` and
    ``created_utc`` are added.
    """
    started = time.perf_counter()
    fwd, inv, forward_seconds, details = fields()
    sidecar = {**sidecar, **details, "forward_seconds": forward_seconds,
               "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return RegisteredPair(method, fixed_img, moving_img, moving_labels_img, fwd, inv, sidecar,
                          {"forward_seconds": forward_seconds}, started=started)
