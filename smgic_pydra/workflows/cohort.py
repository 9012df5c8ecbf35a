"""Cohort registration workflow: prepare subjects, register pairs in chunks, run baselines, evaluate, report.

Graph (pydra 1.0a12)::

    prepare          PrepareSubject split over subjects, combined (one job per subject)
    register         RegisterChunk split over chunks of pairs (SM-GICNet, one model load per chunk)
    baseline         BaselineChunk split over methods x chunks (ANTs syn/synquick/affine/identity)
    evaluate_*       EvaluateChunk on each chunk's rows, combined
    reports          WriteReports: pairs.csv, dice_per_label.csv, summary.csv/.tsv

Errors are data: chunk tasks return error rows instead of raising, so every other pair finishes
and the reports are written; ``CohortResult.failed`` names the failed pairs.

Work directory layout (``work_dir``)::

    prepared/<grid>/<subject>/    prepared subjects per network grid, e.g. ``128x128x128-1.5mm``
                                  (shared by registration and training runs, reused when complete)
    runs/<run_key>/cache/         pydra cache_root of this run
    runs/<run_key>/progress/      one marker JSON per finished pair and method
    runs/<run_key>/status.json    progress status (total, done, failed, ETA)

``run_key`` is a hash of the pairs, methods, model and settings, so the same command with the same
work directory resumes: jobs that finished cleanly come from pydra's cache (a task's hash is the
hash of its inputs and its function's source), and a chunk that was killed midway skips the pairs
whose outputs are already complete on disk (its evaluation reuses their saved metrics). Pydra
would also cache error rows as a successful result, so before a run every cached result that
holds an error is forgotten (its job folder removed): failed pairs are retried, finished ones are
not. Stale pydra lock files of a killed run are removed under an exclusive run lock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydra.compose import workflow

from ..tasks import BaselineChunk, EvaluateChunk, Gather, PrepareSubject, RegisterChunk, WriteReports
from ..tasks.rows import failed_lines, flatten_rows
from .progress import ProgressMonitor
from .submit import CohortRunError, submit_workflow

NETWORK_METHOD = "smgicnet"
BASELINE_METHODS = ("syn", "synquick", "affine", "identity")


def prepared_root(work_dir, config_json: str) -> str:
    """``work_dir/prepared/<D>x<H>x<W>-<voxel>mm``: where subjects prepared for the network grid of
    ``config_json`` live (one folder per grid, so models on different grids never re-prepare each other's)."""
    from ..config import SMGICNetConfig

    cfg = SMGICNetConfig.from_json(config_json)
    grid = "x".join(str(int(n)) for n in cfg.grid_shape)
    return str(Path(work_dir) / "prepared" / f"{grid}-{cfg.voxel_size_mm:g}mm")


def add_preparation(work_dir, config_json: str, skull_strip: str, subjects):
    """Add the node ``prepare`` (:func:`PrepareSubject` split over ``subjects``, combined) to the
    workflow being defined; its outputs ``prepared_dir`` and ``error`` are lists in subject order."""
    return workflow.add(
        PrepareSubject(prepared_root=prepared_root(work_dir, config_json), config_json=config_json,
                       skull_strip=skull_strip)
        .split("subject", subject=subjects)
        .combine("subject"),
        name="prepare",
    )


@dataclass
class CohortPlan:
    """Everything a cohort run needs, in plain values.

    subjects: subject dicts for :func:`PrepareSubject` (``subject``, ``t1w``, ``mask``, ``labels``).
    pairs: pair specs (:mod:`smgic_pydra.tasks.rows`), with output paths for every method in ``methods`` and ``metrics`` (method -> metrics JSON path). model: model folder
    or ``""`` (packaged default). output_dir: the reports go to ``output_dir/reports`` (``None``:
    no reports node).
    """

    subjects: list[dict]
    pairs: list[dict]
    methods: list[str]
    work_dir: Path
    output_dir: Path | None = None
    model: str = ""
    device: str = "cpu"
    pairs_per_job: int = 4
    labels_table: str = ""
    skull_strip: str = "none"
    omp_nthreads: int = 1
    random_seed: int = 1
    extra_key: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # absolute paths: pydra runs every job in its own cache folder
        self.work_dir = Path(self.work_dir).absolute()
        self.output_dir = None if self.output_dir is None else Path(self.output_dir).absolute()
        self.model = str(Path(self.model).absolute()) if self.model else ""
        self.labels_table = str(Path(self.labels_table).absolute()) if self.labels_table else ""
        unknown = [m for m in self.methods if m != NETWORK_METHOD and m not in BASELINE_METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}: choose from {[NETWORK_METHOD, *BASELINE_METHODS]}")
        if self.pairs_per_job < 1:
            raise ValueError(f"pairs_per_job must be >= 1, got {self.pairs_per_job}")

    @property
    def run_key(self) -> str:
        """Short hash of what determines the results (same command + same work dir -> same key)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("work_dir", "omp_nthreads")}
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def run_dir(self) -> Path:
        return self.work_dir / "runs" / self.run_key

    @property
    def status_file(self) -> Path:
        return self.run_dir / "status.json"

    @property
    def progress_dir(self) -> Path:
        return self.run_dir / "progress"

    def chunks(self) -> list[list[dict]]:
        """Pairs in chunks of ``pairs_per_job`` (the last may be shorter)."""
        from ..bids.pairs import chunk_pairs

        return chunk_pairs(self.pairs, self.pairs_per_job)

    def config_json(self) -> str:
        """The network config of the model: it defines the grid every subject is prepared on."""
        from ..inference import resolve_model_files

        return resolve_model_files(self.model or None)[1].read_text()


def init_cohort_wf(plan: CohortPlan):
    """Build the cohort workflow task for ``plan`` (outputs: ``rows``, ``label_rows``, ``reports``, ``failed``)."""
    subject_ids = [s["subject"] for s in plan.subjects]
    baselines = [m for m in plan.methods if m in BASELINE_METHODS]
    run_network = NETWORK_METHOD in plan.methods
    chunks = plan.chunks()
    if not subject_ids or not chunks:
        raise ValueError("nothing to run: the plan has no subjects or no pairs")
    progress = str(plan.progress_dir)

    @workflow.define(outputs=["rows", "label_rows", "reports", "failed"])
    def CohortRegistration(subjects: list, chunks: list, baselines: list, config_json: str):
        prep = add_preparation(plan.work_dir, config_json, plan.skull_strip, subjects)
        shared = dict(subjects=subject_ids, prepared_dirs=prep.prepared_dir, preparation_errors=prep.error,
                      omp_nthreads=plan.omp_nthreads, progress_dir=progress)
        rows, label_rows = [], []
        if run_network:
            reg = workflow.add(RegisterChunk(model=plan.model, device=plan.device, **shared).split(pairs=chunks),
                               name="register")
            ev = workflow.add(EvaluateChunk(rows=reg.rows, subjects=subject_ids, prepared_dirs=prep.prepared_dir,
                                            labels_table=plan.labels_table).combine("register.pairs"),
                              name="evaluate_network")
            rows.append(ev.rows)
            label_rows.append(ev.label_rows)
        if baselines:
            base = workflow.add(BaselineChunk(random_seed=plan.random_seed, **shared)
                                .split(["method", "pairs"], method=baselines, pairs=chunks),
                                name="baseline")
            ev = workflow.add(EvaluateChunk(rows=base.rows, subjects=subject_ids, prepared_dirs=prep.prepared_dir,
                                            labels_table=plan.labels_table)
                              .combine(["baseline.method", "baseline.pairs"]),
                              name="evaluate_baselines")
            rows.append(ev.rows)
            label_rows.append(ev.label_rows)
        all_rows = workflow.add(Gather(a=rows[0], b=rows[-1] if len(rows) > 1 else []), name="gather_rows")
        all_labels = workflow.add(Gather(a=label_rows[0], b=label_rows[-1] if len(label_rows) > 1 else []),
                                  name="gather_label_rows")
        if plan.output_dir is None:
            return all_rows.out, all_labels.out, {}, []
        rep = workflow.add(WriteReports(rows=all_rows.out, label_rows=all_labels.out, output_dir=str(plan.output_dir)),
                           name="reports")
        return all_rows.out, all_labels.out, rep.reports, rep.failed

    return CohortRegistration(subjects=plan.subjects, chunks=chunks,
                              baselines=baselines, config_json=plan.config_json())


@dataclass
class CohortResult:
    """Rows of every pair and method, per-label Dice rows, report paths and the failed pairs."""

    rows: list[dict]
    label_rows: list[dict]
    reports: dict[str, str]
    failed: list[str]
    status_file: Path


def _holds_error(value) -> bool:
    """True for an output holding a row with an error, a non-empty ``error`` string or ``failed`` list."""
    if isinstance(value, dict):
        return bool(value.get("error")) or any(_holds_error(v) for v in value.values() if isinstance(v, (list, dict)))
    if isinstance(value, list):
        return any(_holds_error(v) for v in value)
    return False


def _forget_failed_results(cache_root: Path) -> int:
    """Remove the cached job folders whose result errored or carries error rows; returns how many.

    Pydra caches a result by its inputs' hash, so without this a chunk that returned error rows
    (errors are data) would return the same rows on every re-run instead of retrying its pairs.
    """
    import shutil

    import cloudpickle

    removed = 0
    for result_file in cache_root.glob("*/_result.pklz"):
        try:
            with open(result_file, "rb") as f:
                result = cloudpickle.load(f)
            outputs = {} if result.outputs is None else vars(result.outputs)
            failed = result.errored or any(
                (name in ("error", "failed") and bool(value)) or _holds_error(value) for name, value in outputs.items())
        except Exception:  # an unreadable result is as good as none
            failed = True
        if failed:
            shutil.rmtree(result_file.parent, ignore_errors=True)
            removed += 1
    return removed


def run_cohort(plan: CohortPlan, worker="cf", n_procs: int | None = None, show_progress: bool = True,
               poll_interval: float = 1.0) -> CohortResult:
    """Run the cohort workflow of ``plan`` and return its rows (errors included, never raised per pair).

    worker: ``"cf"`` (processes, ``n_procs``), ``"debug"`` (in this process), ``"slurm"`` (our
    :class:`smgic_pydra.hpc.SlurmArrayWorker` with default arguments, not pydra's own SLURM worker) or
    a pydra worker instance (e.g. a configured ``SlurmArrayWorker``). Only one run per ``run_key`` may use
    a work directory at a time (a second one gets :class:`CohortRunError`). Re-running a killed
    run with the same plan redoes only the unfinished pairs.
    """
    wf = init_cohort_wf(plan)
    total = len(plan.pairs) * len(plan.methods)
    monitor = ProgressMonitor(plan.progress_dir, plan.status_file, total, poll_interval, show_progress)
    out = submit_workflow(wf, plan.run_dir, worker, n_procs, monitor, prepare_cache=_forget_failed_results,
                          what="the cohort workflow")
    rows = flatten_rows(out.rows)
    return CohortResult(rows, flatten_rows(out.label_rows), dict(out.reports), failed_lines(rows), plan.status_file)
