"""One registered pair in memory: what every method's runner returns, before any file is written.

The tile job (:mod:`smgic_pydra.tasks.tile`) writes it according to the output policy
(:class:`~smgic_pydra.output_policy.OutputPolicy`) and computes its metrics from these
arrays, so registration and evaluation never write and re-read the fields.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.atomic import save_json
from ..output_policy import output_policy
from .compact import CompactMapping
from .outputs import PairOutputPaths, resample_with_displacement, write_compact_outputs, write_pair_outputs


@dataclass
class RegisteredPair:
    """The result of registering ``moving`` to ``fixed`` with ``method``.

    fixed_img / moving_img: the skull-stripped native images (nibabel); moving_labels: the moving
    labels image or None. forward: ``(X, Y, Z, 3)`` RAS mm on the fixed grid (fixed -> moving,
    pull-back); inverse: ``(X', Y', Z', 3)`` on the moving grid. Both are rounded to float32 on
    creation, as the files store them, so every output policy evaluates the same numbers.
    sidecar: the method's sidecar entries. seconds: ``forward_seconds`` (the registration itself)
    and any per-stage seconds. affine_ras: the method's affine stage ``A`` (4 x 4 RAS mm, fixed ->
    moving, already inside both fields) or None. started: ``time.perf_counter()`` when the pair began.
    compact: the method's :class:`~smgic_pydra.worldspace.compact.CompactMapping` (SM-GICNet), from which
    ``forward`` and ``inverse`` were computed, or None. total_seconds: seconds from :attr:`started` until
    :meth:`write` finished writing the outputs (NaN before).
    """

    method: str
    fixed_img: object
    moving_img: object
    moving_labels: object | None
    forward: np.ndarray
    inverse: np.ndarray
    sidecar: dict
    seconds: dict
    affine_ras: np.ndarray | None = None
    started: float = field(default_factory=time.perf_counter)
    compact: CompactMapping | None = None
    total_seconds: float = field(default=math.nan, init=False)

    def __post_init__(self) -> None:
        self.forward = np.asarray(self.forward, dtype=np.float32)
        self.inverse = np.asarray(self.inverse, dtype=np.float32)
        self._warped_labels = None

    @property
    def fixed_affine(self) -> np.ndarray:
        return np.asarray(self.fixed_img.affine, dtype=np.float64)

    def warped_labels(self) -> np.ndarray | None:
        """The moving labels pulled onto the fixed grid (label-aware, integer), computed once; None without labels."""
        if self.moving_labels is None:
            return None
        if self._warped_labels is None:
            self._warped_labels = resample_with_displacement(self.moving_labels, self.forward.astype(np.float64),
                                                             self.fixed_affine, self.fixed_img.shape[:3], "labels")
        return self._warped_labels

    def write(self, paths: PairOutputPaths, policy, sidecar_extra: dict | None = None) -> dict[str, str]:
        """Write the files of ``policy`` (an :class:`~smgic_pydra.output_policy.OutputPolicy` or its name;
        nothing for ``metrics``), all or nothing; returns output role -> path of the files written. (The
        cohort's tiles skip methods that write no outputs, ``identity``: :meth:`OutputPolicy.writes_for`;
        a direct call writes what it is asked.)

        Sets :attr:`total_seconds` and, once the outputs and the sidecar are in place, adds it to the
        sidecar (``total_seconds``; ``seconds_before_write`` is stamped before writing), so a pair evaluated
        later from its files reports the seconds a fresh pair does. A sidecar rewritten this way keeps its
        outputs' records valid: they cover the other files only."""
        policy = output_policy(policy)
        if not policy.writes_files:
            self.total_seconds = time.perf_counter() - self.started
            return {}
        roles = policy.roles_for(self.compact is not None)
        sidecar = {**self.sidecar, **(sidecar_extra or {}), "output_policy": policy.name}
        sidecar["seconds_before_write"] = time.perf_counter() - self.started
        if roles == ("compact",):
            written = write_compact_outputs(paths, self.compact, sidecar)
        else:
            labels = self.warped_labels() if "warped_labels" in roles else None
            written = write_pair_outputs(paths, self.fixed_img, self.moving_img, self.moving_labels,
                                         self.forward.astype(np.float64), self.inverse.astype(np.float64), sidecar,
                                         affine_ras=self.affine_ras, roles=roles, warped_labels=labels)
        self.total_seconds = time.perf_counter() - self.started
        save_json(json.loads(Path(paths.sidecar).read_text()) | {"total_seconds": self.total_seconds}, paths.sidecar)
        return {r: str(p) for r, p in written.items()}

    def write_row(self, paths: PairOutputPaths, policy="full", sidecar_extra: dict | None = None) -> dict:
        """:meth:`write`, then the pair's row: method, the :attr:`seconds` (``forward_seconds``: the
        registration), :attr:`total_seconds` (everything since :attr:`started`, writing included), files."""
        files = self.write(paths, policy, sidecar_extra)
        return {"method": self.method, **self.seconds, "total_seconds": self.total_seconds, "files": files}
