"""What a cohort run will do, before it starts: jobs, pairs, the bytes it writes into OUTPUT_DIR, a time guide.

Bytes are estimated from each image's voxel count (NIfTI headers only) and the on-disk bytes per
voxel of each output after compression (:data:`BYTES_PER_VOXEL`, measured on real outputs: see
its note), plus the sidecar, figures and the tile tables. Times are the registry's ``cpu_seconds``
of a 1 mm pair, scaled by the fixed image's voxel count: a guide, not a promise.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..methods import get_method
from ..output_policy import output_policy

BYTES_PER_VOXEL = {"warp": 11.5, "inverse_warp": 11.5, "warp_h5": 24.0, "warped": 0.8, "warped_labels": 0.1,
                   "jacobian": 3.5}
"""Output role -> bytes per voxel of its grid on disk: measured on a 2 mm pair of the example dataset
(``smgic-bids ... participant --method smgicnet``, the default pipeline; a dense field hardly compresses,
the ``.h5`` composite holds float64 uncompressed, labels compress ~40x), rounded up. ``inverse_warp`` is
on the moving grid, the others on the fixed grid."""
BYTES_PER_PAIR = {"sidecar": 8_000, "affine": 200, "figures": 1_500_000}
"""Files whose size does not grow with the grid (figures: a pair's three reportlets and its share of the
subject figures, measured: 1.8 MB for one 2 mm pair with both subject figures)."""
COMPACT_BYTES_PER_NETWORK_VOXEL = 9.0
"""The compact mapping (``--outputs compact``) per voxel of the network grid (velocity float32 x 3, gzip +
shuffle), one file per unordered pair: measured on held-out pairs (see its note in the README)."""
NETWORK_VOXELS = 128 ** 3
"""The packaged model's grid (the compact file's size does not depend on the images)."""
TABLE_BYTES = {"pair": 160, "label": 12}
"""Tile tables (Parquet): bytes per pair row and per label value."""
REFERENCE_VOXELS = 182 * 218 * 182
"""Voxels of the 1 mm MNI-sized brain image the registry's ``cpu_seconds`` were measured on."""


@dataclass(frozen=True)
class PlanSummary:
    """subjects, pairs, methods, tiles (per method), tile_side (B), jobs (preparation + tile jobs),
    bytes (estimated, written into OUTPUT_DIR), free_bytes (free in OUTPUT_DIR now),
    cpu_seconds (one CPU job at a time; the registry's guide)."""

    subjects: int
    pairs: int
    methods: list
    tiles: int
    tile_side: int
    jobs: int
    bytes: int
    free_bytes: int
    cpu_seconds: float

    def lines(self, outputs: str) -> list[str]:
        gib = 1024 ** 3
        return [f"subjects {self.subjects}, pairs {self.pairs} x methods {len(self.methods)} ({', '.join(self.methods)})",
                f"jobs {self.jobs}: {self.subjects} preparations + {self.tiles} tiles of up to {self.tile_side} x "
                f"{self.tile_side} pairs per method",
                f"--outputs {outputs}: about {self.bytes / gib:.3g} GiB into OUTPUT_DIR ({self.free_bytes / gib:.3g} GiB free)",
                f"time guide: {self.cpu_seconds / 3600:.3g} CPU job-hours (registry cpu_seconds of a 1 mm pair, "
                f"scaled by voxels; divide by the jobs that run at once)"]


def image_voxels(subjects) -> dict[str, int]:
    """Subject key -> voxels of its T1w (header only)."""
    import math

    import nibabel as nib

    return {s["subject"]: math.prod(int(n) for n in nib.load(s["t1w"]).header.get_data_shape()[:3]) for s in subjects}


def pair_bytes(fixed_voxels: float, moving_voxels: float, outputs, reportlets: bool, n_labels: int,
               method: str = "smgicnet", unordered_share: float = 1.0) -> float:
    """Estimated bytes one ordered pair of ``method`` writes into OUTPUT_DIR under ``outputs``.

    unordered_share: the pair's share of its unordered pair's compact file (0.5 when the reverse order
    is in the run too). Methods that read the SM-GICNet model have a compact mapping; the others write
    the dense warps under ``compact``.
    """
    policy = output_policy(outputs)
    size = TABLE_BYTES["pair"] + TABLE_BYTES["label"] * n_labels
    if not policy.writes_for(method):
        return size
    roles = policy.roles_for(get_method(method).uses_model)
    if roles == ("compact",):
        size += unordered_share * COMPACT_BYTES_PER_NETWORK_VOXEL * NETWORK_VOXELS
    size += sum(BYTES_PER_VOXEL[r] * (moving_voxels if r == "inverse_warp" else fixed_voxels)
                for r in roles if r in BYTES_PER_VOXEL)
    size += BYTES_PER_PAIR["sidecar"] + (BYTES_PER_PAIR["affine"] if "affine" in roles else 0)
    if reportlets and policy.figures:
        size += BYTES_PER_PAIR["figures"]
    return size


def summarize(plan, voxels: dict[str, int] | None = None, n_labels: int | None = None) -> PlanSummary:
    """The :class:`PlanSummary` of a :class:`~smgic_pydra.workflows.cohort.CohortPlan`; ``voxels``:
    subject -> voxel count (default: read from the headers); ``n_labels``: labels per pair (default:
    the label table's)."""
    import numpy as np

    from ..bids.pairs import tile_side
    from ..metrics.labels import load_label_table

    voxels = image_voxels(plan.subjects) if voxels is None else voxels
    n_labels = len(load_label_table(plan.labels_table or None)) if n_labels is None else n_labels
    keys = sorted(voxels)
    index = {k: i for i, k in enumerate(keys)}
    counts = np.array([voxels[k] for k in keys], dtype=np.float64)
    fixed = counts[[index[f] for f, _ in plan.pairs]]
    moving = counts[[index[m] for _, m in plan.pairs]]
    # pair_bytes is linear in the voxel counts: the sum over pairs is its value at the summed counts,
    # plus the constant part once per further pair
    share = len({frozenset(p) for p in plan.pairs}) / max(len(plan.pairs), 1)  # reverse orders share a compact file
    total = 0.0
    for method in plan.methods:
        size = pair_bytes(float(fixed.sum()), float(moving.sum()), plan.outputs, plan.reportlets, n_labels, method, share)
        constant = pair_bytes(0, 0, plan.outputs, plan.reportlets, n_labels, method, share)
        total += size + constant * (len(plan.pairs) - 1)
    seconds = sum(get_method(m).cpu_seconds for m in plan.methods) * float(fixed.sum()) / REFERENCE_VOXELS
    out = Path(plan.output_dir)
    existing = next((p for p in [out, *out.parents] if p.exists()), Path("/"))
    tiles = len(plan.tiles())
    return PlanSummary(subjects=len(plan.subjects), pairs=len(plan.pairs), methods=list(plan.methods), tiles=tiles,
                       tile_side=tile_side(plan.pairs_per_job), jobs=len(plan.subjects) + tiles * len(plan.methods),
                       bytes=int(total), free_bytes=int(shutil.disk_usage(existing).free), cpu_seconds=seconds)
