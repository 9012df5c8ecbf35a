"""What a cohort run will do, before it starts: jobs, pairs, the bytes it writes into OUTPUT_DIR, a time guide.

Bytes are estimated from each image's voxel count (NIfTI headers only) and the on-disk bytes per
voxel of each output after compression (:data:`BYTES_PER_VOXEL`, measured on real outputs: see
its note), plus the sidecar, figures and the tile tables. Times (:func:`pair_seconds`) model each
method's cost in two parts from the registry: ``grid_seconds``, which does not grow with the images
(SM-GICNet's stages on the model grid, scaled by that grid's voxels), and the rest of a 1 mm pair's
``cpu_seconds``, scaled by the fixed image's voxel count; pairs a resumed run would reuse
(:func:`finished_pairs`) are counted apart and cost nothing. A guide, not a promise.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..inference.network_grid import half_grid
from ..methods import get_method
from ..output_policy import output_policy

BYTES_PER_VOXEL = {"warp": 11.5, "inverse_warp": 11.5, "warp_h5": 10.0, "warped": 0.8, "warped_labels": 0.1,
                   "jacobian": 3.5}
"""Output role -> bytes per voxel of its grid on disk: measured on a 2 mm pair of the example dataset
(``smgic-bids ... participant --method smgicnet``, the default pipeline; a dense field hardly compresses,
labels compress ~40x) and, for the ``.h5`` composite (float32, gzip + shuffle: 9.6), on a 3 mm held-out
pair (``benchmarks/output_bytes.py``), rounded up. ``inverse_warp`` is on the moving grid, the others on
the fixed grid."""
BYTES_PER_PAIR = {"sidecar": 8_000, "affine": 200, "figures": 1_500_000}
"""Files whose size does not grow with the grid (figures: a pair's three reportlets and its share of the
subject figures, measured: 1.8 MB for one 2 mm pair with both subject figures)."""
COMPACT_BYTES_PER_NETWORK_VOXEL = 9.4
"""The compact mapping (``--outputs compact``) per voxel of the network grid (velocity float32 x 3, gzip +
shuffle: 19.5 MB at 128^3), one file per unordered pair: measured on a held-out pair
(``benchmarks/output_bytes.py``), rounded up."""
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
    cpu_seconds (the pairs left to do, one job with one thread at a time: :func:`pair_seconds`),
    method_seconds (the same per method), done (pair x method results a resumed run reuses). Its lines also
    give each method's registry ``memory_gib`` (peak memory of one 1 mm pair: a guide for a job's ``--mem``)."""

    subjects: int
    pairs: int
    methods: list
    tiles: int
    tile_side: int
    jobs: int
    bytes: int
    free_bytes: int
    cpu_seconds: float
    method_seconds: dict = field(default_factory=dict)
    done: int = 0

    def lines(self, outputs: str) -> list[str]:
        gib = 1024 ** 3
        return [f"subjects {self.subjects}, pairs {self.pairs} x methods {len(self.methods)} ({', '.join(self.methods)})",
                f"jobs {self.jobs}: {self.subjects} preparations + {self.tiles} tiles of up to {self.tile_side} x "
                f"{self.tile_side} pairs per method",
                f"--outputs {outputs}: about {self.bytes / gib:.3g} GiB into OUTPUT_DIR ({self.free_bytes / gib:.3g} GiB free)",
                f"already done: {self.done} of {self.pairs * len(self.methods)} pair results (reused when resumed)",
                f"time guide: {self.cpu_seconds / 3600:.3g} CPU job-hours for the rest ("
                + ", ".join(f"{m} {s / 3600:.3g}" for m, s in self.method_seconds.items())
                + "; registration and outputs, one job and thread at a time; divide by the jobs that run at once)",
                "memory guide: peak GiB of a job's pair at 1 mm ("
                + ", ".join(f"{m} {get_method(m).memory_gib:g}" for m in self.methods)
                + "; less for coarser images): what a job's --mem must allow"]


def image_grids(subjects) -> dict[str, tuple[int, float]]:
    """Subject key -> (voxels, finest voxel size in mm) of its T1w (header only)."""
    import nibabel as nib

    return {s["subject"]: header_grid(nib.load(s["t1w"])) for s in subjects}


def header_grid(img) -> tuple[int, float]:
    """(voxels, finest voxel size in mm) of a nibabel image, from its header."""
    import math

    from ..inference.network_grid import native_voxel_mm

    return math.prod(int(n) for n in img.shape[:3]), native_voxel_mm(img.affine)


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


def summarize(plan, grids: dict[str, tuple[int, float]] | None = None, n_labels: int | None = None) -> PlanSummary:
    """The :class:`PlanSummary` of a :class:`~smgic_pydra.workflows.cohort.CohortPlan`; ``grids``:
    subject -> (voxel count, finest voxel mm) (default: read from the headers, :func:`image_grids`);
    ``n_labels``: labels per pair (default: the label table's)."""
    import numpy as np

    from ..bids.pairs import tile_side
    from ..metrics.labels import load_label_table

    grids = image_grids(plan.subjects) if grids is None else grids
    n_labels = len(load_label_table(plan.labels_table or None)) if n_labels is None else n_labels
    keys = sorted(grids)
    index = {k: i for i, k in enumerate(keys)}
    counts = np.array([grids[k][0] for k in keys], dtype=np.float64)
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
    finished = finished_pairs(plan)
    uses_model = any(get_method(m).uses_model for m in plan.methods)
    model_voxels, model_voxel_mm = model_grid(plan) if uses_model else (NETWORK_VOXELS, None)
    finest = np.array([grids[k][1] for k in keys], dtype=np.float64)
    pair_finest = np.minimum(finest[[index[f] for f, _ in plan.pairs]], finest[[index[m] for _, m in plan.pairs]])
    method_seconds = {}
    for method in plan.methods:
        entry, options = get_method(method), plan.method_options.get(method)
        todo = np.array([p not in finished[method] for p in plan.pairs], dtype=bool)
        half = 0  # pairs whose network runs on half the grid (methods that read the model)
        if entry.uses_model:
            setting = entry.merged_options(options)["network_grid"]
            half = int(np.count_nonzero(todo & half_grid(setting, model_voxel_mm, pair_finest)))
        # pair_seconds is linear in the fixed image's voxels: the sum over pairs is one call
        method_seconds[method] = (pair_seconds(method, float(fixed[todo].sum()), model_voxels, int(todo.sum()),
                                               options, half) if todo.any() else 0.0)
    out = Path(plan.output_dir)
    existing = next((p for p in [out, *out.parents] if p.exists()), Path("/"))
    tiles = len(plan.tiles())
    return PlanSummary(subjects=len(plan.subjects), pairs=len(plan.pairs), methods=list(plan.methods), tiles=tiles,
                       tile_side=tile_side(plan.pairs_per_job), jobs=len(plan.subjects) + tiles * len(plan.methods),
                       bytes=int(total), free_bytes=int(shutil.disk_usage(existing).free),
                       cpu_seconds=sum(method_seconds.values()), method_seconds=method_seconds,
                       done=sum(len(v) for v in finished.values()))


def pair_seconds(method: str, fixed_voxels: float, grid_voxels: float = NETWORK_VOXELS, n_pairs: int = 1,
                 options: dict | None = None, half_grid_pairs: int = 0) -> float:
    """Guide seconds of ``n_pairs`` pairs of ``method`` whose fixed images have ``fixed_voxels`` voxels in all:
    what the tile tables' ``seconds`` measure (inputs read, registration, outputs written), one job with
    one thread (``--omp-nthreads 1``).

    The registry's ``grid_seconds`` per pair (for methods that read the model, scaled by ``grid_voxels``,
    the model grid's voxels, against the 128^3 grid it was measured on, and by the registry's
    ``grid_share`` of the method's ``options``; ``half_grid_pairs`` of the pairs run the network on half the
    grid), plus the rest of its ``cpu_seconds`` scaled by the voxels against :data:`REFERENCE_VOXELS`.
    """
    entry = get_method(method)
    merged = entry.merged_options(options)
    share = entry.grid_share or (lambda _options, _level: 1.0)
    pairs = (n_pairs - half_grid_pairs) * share(merged, 4) + half_grid_pairs * share(merged, 3)
    grid = entry.grid_seconds * (grid_voxels / NETWORK_VOXELS if entry.uses_model else 1.0)
    return pairs * grid + (entry.cpu_seconds - entry.grid_seconds) * fixed_voxels / REFERENCE_VOXELS


def model_grid(plan) -> tuple[int, float]:
    """Voxels and voxel size (mm) of the network grid of the plan's model (its config)."""
    import math

    from ..config import SMGICNetConfig

    cfg = SMGICNetConfig.from_json(plan.config_json())
    return math.prod(int(n) for n in cfg.grid_shape), float(cfg.voxel_size_mm)


def finished_pairs(plan) -> dict[str, set]:
    """Method -> the ``(fixed, moving)`` pairs of the plan that its tile jobs would not register again: reused
    from this run's journals (:func:`smgic_pydra.tasks.tile.reusable`, the tiles' own rule) or evaluated from
    complete files of the same content key (:func:`~smgic_pydra.tasks.tile.written_files`), e.g. written by a run
    with another work dir or pair selection. Reads nothing (no model, no input hashes) when the run has no
    journal and OUTPUT_DIR no pair sidecar of a plan's method yet."""
    from ..output_policy import output_policy
    from ..tasks.tile import pair_key, read_journal, reusable, written_files
    from .cohort import stamp_subjects

    finished: dict[str, set] = {m: set() for m in plan.methods}
    policy = output_policy(plan.outputs)
    journals = {m: sorted(Path(plan.progress_dir).glob(f"{m}__*.jsonl")) for m in plan.methods}
    writers = [m for m in plan.methods if policy.writes_for(m)]
    sidecars = [f"sub-*/**/*_desc-{m}_mode-image_xfm.json" for m in writers]
    if not any(journals.values()) and not any(next(Path(plan.output_dir).glob(g), None) for g in sidecars):
        return finished
    _, inputs = stamp_subjects(plan, plan.config_json())
    for method, files in journals.items():
        entries = {}
        for path in files:
            entries.update(read_journal(path))
        settings = plan.method_settings(method)
        for fixed, moving in plan.pairs:
            entry = entries.get((fixed, moving))
            paths = plan.pair_paths(fixed, moving, method) if method in writers else None
            if entry is None and (paths is None or not paths.sidecar.is_file()):  # most pairs of a fresh run
                continue
            key = pair_key(inputs, fixed, moving, settings)
            # as a tile: a method with files skips registering when they are complete for the key (its journal
            # entry aside), one without files when its journal entry is reusable
            if (written_files(paths, key, policy, plan.verify_outputs) is not None if paths is not None
                    else reusable(entry, key, None, policy, plan.verify_outputs)):
                finished[method].add((fixed, moving))
    return finished
