"""Cohort registration workflow: prepare subjects, register pairs in chunks, run baselines, evaluate, report.

Graph (pydra 1.0a12)::

    prepare          PrepareSubject split over subjects, combined (one job per subject)
    <node>           RegisterChunk split over methods x chunks of pairs, one node per registry node
                     (``register``: SM-GICNet, one model load per chunk; ``baseline``: ANTs
                     syn/synquick/affine/identity; ``register_fireants``: FireANTs); see
                     :mod:`smgic_pydra.methods.registry`
    evaluate_<node>  EvaluateChunk on each chunk's rows, combined
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
work directory resumes. Reuse is decided by content, never by paths: before a run, every subject
and pair is stamped (:func:`stamp_plan`) with the SHA-256 of its input files, and every pair and
method with a content key (inputs, model weights and the method's settings from
:meth:`CohortPlan.method_settings`, the one place that lists them). A pair is done only when its
sidecar records the same key and its output files still match their records (size, and SHA-256
when modified; always with ``verify_outputs``) and its metrics are saved; a subject is prepared
only when its folder's fingerprint matches. Everything else gets this run's token, so pydra's
cache (which hashes the task inputs) cannot return a stale or failed result for it, and its
chunk redoes it and replaces the old outputs atomically. Stale pydra lock files of a killed run
are removed under an exclusive run lock. Pydra itself unpickles its cache files in ``runs/``,
so the work directory must be trusted like the code (keep it private on shared file systems).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from pydra.compose import workflow

from ..methods import METHODS, get_method
from ..tasks import EvaluateChunk, Gather, PrepareSubject, RegisterChunk, WriteReports
from ..tasks.rows import failed_lines, flatten_rows
from .progress import ProgressMonitor
from .submit import CohortRunError, submit_workflow

NOT_SETTINGS = ("subjects", "pairs", "methods", "work_dir", "output_dir", "pairs_per_job", "omp_nthreads", "device",
                "labels_table", "verify_outputs", "method_options")
"""Plan fields that do not change a pair's outputs; every other field (and any added later) is a setting
(``method_options`` are: each method's own, see :meth:`CohortPlan.method_settings`)."""
BASELINE_SETTINGS = ("skull_strip", "random_seed")
"""The settings the methods that do not use the model depend on (SM-GICNet depends on all of them and on the
model's weights)."""
DONE = "done"


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
    no reports node). verify_outputs: compare the SHA-256 of every finished output before reusing it
    (otherwise only of those whose size or modification time changed).
    method_options: method -> its options (overriding the registry's defaults, see
    :mod:`smgic_pydra.methods.registry`; part of that method's settings and recorded in its sidecars).
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
    method_options: dict = field(default_factory=dict)
    extra_key: dict = field(default_factory=dict)
    verify_outputs: bool = False

    def __post_init__(self) -> None:
        # absolute paths: pydra runs every job in its own cache folder
        self.work_dir = Path(self.work_dir).absolute()
        self.output_dir = None if self.output_dir is None else Path(self.output_dir).absolute()
        self.model = str(Path(self.model).absolute()) if self.model else ""
        self.labels_table = str(Path(self.labels_table).absolute()) if self.labels_table else ""
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}: choose from {list(METHODS)}")
        for name, options in self.method_options.items():
            get_method(name).merged_options(options)  # a one-line error for an unknown method or setting
        if self.pairs_per_job < 1:
            raise ValueError(f"pairs_per_job must be >= 1, got {self.pairs_per_job}")

    @property
    def run_key(self) -> str:
        """Short hash of what determines the results (same command + same work dir -> same key)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("work_dir", "omp_nthreads", "verify_outputs")}
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

    def method_settings(self, method: str) -> dict:
        """What the outputs of a pair of ``method`` depend on besides its input files: every plan field
        not in ``NOT_SETTINGS`` and the model by its weights' SHA-256 (methods that use the model; the
        others: ``BASELINE_SETTINGS``), and the method's options (registry defaults updated by
        ``method_options``) when it has any."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_SETTINGS}
        entry = get_method(method)
        if entry.uses_model:
            data["model"] = self.model_sha256()
        else:
            data = {k: data[k] for k in BASELINE_SETTINGS}
        options = entry.merged_options(self.method_options.get(method))
        return {"method": method, **data, **({"options": options} if options else {})}

    def model_sha256(self) -> str:
        """SHA-256 of the model's weights, after loading and checking the model once (:class:`InputError` if bad)."""
        if "_model_sha256" not in self.__dict__:
            from ..inference import load_model

            self.__dict__["_model_sha256"] = load_model(self.model or None).weights_sha256
        return self.__dict__["_model_sha256"]

    def config_json(self) -> str:
        """The network config of the model: it defines the grid every subject is prepared on."""
        from ..inference import resolve_model_files

        return resolve_model_files(self.model or None)[1].read_text()


def input_hashes(subject: dict) -> dict[str, str]:
    """SHA-256 of a subject's input files by role (``t1w``, ``mask``, ``labels``)."""
    from ..io.hashing import sha256_file

    return {role: sha256_file(subject[role]) for role in ("t1w", "mask", "labels") if subject.get(role)}


def _pair_state(plan: CohortPlan, pair: dict, method: str, key: str) -> tuple[bool, bool]:
    """``(outputs reusable, metrics saved too)`` for the pair's outputs of ``method`` and content key ``key``."""
    from ..tasks.metrics_io import saved_metrics
    from ..tasks.rows import complete_sidecar, resumed_row

    paths = pair["outputs"][method]
    meta = complete_sidecar(paths, key, full=plan.verify_outputs)
    if meta is None:
        return False, False
    metrics_file = str((pair.get("metrics") or {}).get(method, ""))
    row = resumed_row(method, pair, paths, meta) | {"metrics_file": metrics_file}
    return True, not metrics_file or saved_metrics(row, plan.labels_table or None) is not None


def stamp_plan(plan: CohortPlan, config_json: str) -> tuple[list[dict], list[dict]]:
    """The plan's subjects and pairs stamped for this run (see the module docstring).

    Subjects gain ``state`` (``"done"`` when their prepared folder matches their inputs), pairs gain
    ``inputs`` (SHA-256 of each side's files), ``key`` (method -> content key), ``reuse`` (method ->
    whether the outputs on disk are of that key and unchanged) and ``state`` (method -> ``"done"``
    when they are and their metrics are saved, else this run's token).
    """
    from ..config import SMGICNetConfig
    from ..io.hashing import hash_cache, sha256_json
    from ..preparation.prepare import is_prepared, prepared_fingerprint

    token = uuid.uuid4().hex
    cfg = SMGICNetConfig.from_json(config_json)
    root = Path(prepared_root(plan.work_dir, config_json))
    settings = {m: plan.method_settings(m) for m in plan.methods}
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    with hash_cache(plan.work_dir / "hashes.json"):
        hashes = {s["subject"]: input_hashes(s) for s in plan.subjects}
        subjects = [{**s, "state": DONE if is_prepared(root / s["subject"], prepared_fingerprint(s, cfg, plan.skull_strip))
                     else token} for s in plan.subjects]
        pairs = []
        for pair in plan.pairs:
            inputs = {"fixed": hashes[pair["fixed"]], "moving": hashes[pair["moving"]]}
            key = {m: sha256_json({"inputs": inputs, "settings": settings[m]}) for m in plan.methods}
            checked = {m: _pair_state(plan, pair, m, key[m]) for m in plan.methods}
            pairs.append({**pair, "inputs": inputs, "key": key, "reuse": {m: c[0] for m, c in checked.items()},
                          "state": {m: DONE if c[1] else token for m, c in checked.items()}})
    return subjects, pairs


def method_nodes(methods) -> dict[str, list[str]]:
    """Workflow node -> its methods among ``methods`` (registry order within a node)."""
    nodes: dict[str, list[str]] = {}
    for name in methods:
        nodes.setdefault(get_method(name).node, []).append(name)
    return nodes


def init_cohort_wf(plan: CohortPlan):
    """Build the cohort workflow task for ``plan`` (outputs: ``rows``, ``label_rows``, ``reports``, ``failed``)."""
    from ..bids.pairs import chunk_pairs

    subject_ids = [s["subject"] for s in plan.subjects]
    nodes = method_nodes(plan.methods)
    uses_model = any(get_method(m).uses_model for m in plan.methods)
    if not subject_ids or not plan.pairs:
        raise ValueError("nothing to run: the plan has no subjects or no pairs")
    config_json = plan.config_json()
    subjects, pairs = stamp_plan(plan, config_json)
    chunks = chunk_pairs(pairs, plan.pairs_per_job)
    model_sha256 = plan.model_sha256() if uses_model else ""
    progress = str(plan.progress_dir)

    @workflow.define(outputs=["rows", "label_rows", "reports", "failed"])
    def CohortRegistration(subjects: list, chunks: list, nodes: dict, config_json: str):
        prep = add_preparation(plan.work_dir, config_json, plan.skull_strip, subjects)
        shared = dict(subjects=subject_ids, prepared_dirs=prep.prepared_dir, preparation_errors=prep.error,
                      model=plan.model, model_sha256=model_sha256, device=plan.device, omp_nthreads=plan.omp_nthreads,
                      random_seed=plan.random_seed, progress_dir=progress)
        rows, label_rows = None, None
        for node, methods in nodes.items():
            reg = workflow.add(RegisterChunk(**shared).split(
                [("method", "options"), "pairs"], method=methods,
                options=[plan.method_options.get(m) for m in methods], pairs=chunks), name=node)
            ev = workflow.add(EvaluateChunk(rows=reg.rows, subjects=subject_ids, prepared_dirs=prep.prepared_dir,
                                            labels_table=plan.labels_table).combine([f"{node}.method", f"{node}.pairs"]),
                              name=f"evaluate_{node}")
            rows = ev.rows if rows is None else workflow.add(Gather(a=rows, b=ev.rows), name=f"gather_rows_{node}").out
            label_rows = ev.label_rows if label_rows is None else workflow.add(
                Gather(a=label_rows, b=ev.label_rows), name=f"gather_label_rows_{node}").out
        all_rows = workflow.add(Gather(a=rows, b=[]), name="gather_rows")
        all_labels = workflow.add(Gather(a=label_rows, b=[]), name="gather_label_rows")
        if plan.output_dir is None:
            return all_rows.out, all_labels.out, {}, []
        rep = workflow.add(WriteReports(rows=all_rows.out, label_rows=all_labels.out, output_dir=str(plan.output_dir)),
                           name="reports")
        return all_rows.out, all_labels.out, rep.reports, rep.failed

    return CohortRegistration(subjects=subjects, chunks=chunks, nodes=nodes, config_json=config_json)


@dataclass
class CohortResult:
    """Rows of every pair and method, per-label Dice rows, report paths and the failed pairs."""

    rows: list[dict]
    label_rows: list[dict]
    reports: dict[str, str]
    failed: list[str]
    status_file: Path


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
    out = submit_workflow(wf, plan.run_dir, worker, n_procs, monitor, what="the cohort workflow")
    rows = flatten_rows(out.rows)
    return CohortResult(rows, flatten_rows(out.label_rows), dict(out.reports), failed_lines(rows), plan.status_file)
