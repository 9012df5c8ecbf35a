"""What every method that registers native images shares: the inputs of a prepared pair, and timing +
sidecar + writing the outputs (:func:`smgic_pydra.worldspace.write_pair_outputs`), so every method
writes the same files in the same conventions."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

import numpy as np

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


def register_native(method: str, fields: FieldsFn, fixed_img, moving_img, moving_labels_img, paths,
                    sidecar: dict) -> dict:
    """Run ``fields`` and write every output of the pair to ``paths`` (all or nothing).

    sidecar: the method's sidecar entries; ``fields``' details, ``forward_seconds``, ``created_utc``
    and ``seconds_before_write`` are added. Returns a row: method, forward_seconds (registration only),
    total_seconds (everything, including writing), files.
    """
    from ..worldspace import write_pair_outputs

    start = time.perf_counter()
    fwd, inv, forward_seconds, details = fields()
    sidecar = {**sidecar, **details, "forward_seconds": forward_seconds,
               "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    sidecar["seconds_before_write"] = time.perf_counter() - start
    write_pair_outputs(paths, fixed_img, moving_img, moving_labels_img, fwd, inv, sidecar)
    return {"method": method, "forward_seconds": forward_seconds, "total_seconds": time.perf_counter() - start,
            "files": {k: str(v) for k, v in paths.as_dict().items()}}


def chunk_row(row: dict) -> dict:
    """The part of a method's row that a chunk task keeps: seconds, forward_seconds, files."""
    return {"seconds": row["total_seconds"], "forward_seconds": row.get("forward_seconds", row["total_seconds"]),
            "files": row["files"]}
