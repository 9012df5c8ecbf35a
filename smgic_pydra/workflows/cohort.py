"""Cohort registration workflow: prepare subjects, then tiles of the pair matrix (register, write, evaluate), report.

Graph (pydra 1.0a12)::

    prepare          PrepareCohortSubject split over subjects, combined (one job per subject)
    <node>           RegisterTile split over methods x tiles, one node per registry node (``register``:
                     SM-GICNet; ``baseline``: ANTs syn/synquick/affine/identity; ``register_fireants``:
                     FireANTs; see :mod:`smgic_pydra.methods.registry`); combined
    reports          WriteReports: pairs.csv/.parquet, dice_per_label.parquet(/.csv), dice_matrix.tsv,
                     summary, index.html (from the tiles' Parquet tables)

Tiles (:func:`smgic_pydra.bids.pairs.tile_pairs`): the pairs are cut into blocks of the N x N
matrix of subjects, ``B`` subjects a side (``B = floor(sqrt(pairs_per_job))``). One job does the up
to ``B**2`` pairs of a tile with the model loaded once and each prepared subject loaded once, and
fuses registration, writing (``outputs``: all | warps | metrics) and evaluation
(:mod:`smgic_pydra.tasks.tile`). The driver holds no Python object per pair in the graph: the
tiles carry their pairs as small integer arrays, and rows travel as Parquet files, never through
pydra's results. Errors are data: a failing pair is a row with ``error``; every other pair
finishes and the reports are written; ``CohortResult.failed`` names the failed pairs.

Work directory layout (``work_dir``)::

    prepared/<grid>/<subject>/    prepared subjects per network grid, e.g. ``128x128x128-1.5mm``
                                  (shared by registration and training runs, reused when complete)
    runs/<run_key>/cache/         pydra cache_root of this run
    runs/<run_key>/progress/      one journal per tile and method (a JSON line per finished pair)
    runs/<run_key>/status.json    progress status (total, done, failed, ETA)

``run_key`` is a hash of the pairs, methods, model and settings, so the same command with the same
work directory resumes. Reuse is decided by content, never by paths: every subject is stamped
(:func:`stamp_subjects`) with the SHA-256 of its input files, and every pair gets a content key
(inputs, the model's weights and config, and the method's settings, with the network precision that runs,
not the setting ``auto``: :meth:`CohortPlan.method_settings`, the one place that lists them) inside its tile
job, which reuses a pair only when its journal and, for the policies that write files, its sidecar and files
match that key (see :mod:`smgic_pydra.tasks.tile`).
A subject is prepared only when its folder's fingerprint matches. Tile jobs always run (this
run's token): pydra's cache never returns a tile, the tile decides per pair. Stale pydra lock files
of a killed run are removed under an exclusive run lock. Pydra itself unpickles its cache files
in ``runs/``, so the work directory must be trusted like the code (keep it private on shared file
systems).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from pydra.compose import workflow

from ..defaults import PAIRS_PER_JOB
from ..methods import METHODS, get_method
from ..tasks import Gather, PrepareCohortSubject, RegisterTile, WriteReports
from ..reports.rows import flatten_rows
from ..output_policy import OUTPUT_POLICIES
from .progress import ProgressMonitor
from .submit import CohortRunError, submit_workflow

NOT_SETTINGS = ("subjects", "pairs", "methods", "work_dir", "output_dir", "pairs_per_job", "omp_nthreads", "device",
                "labels_table", "verify_outputs", "method_options", "outputs", "reportlets", "reports")
"""Plan fields that do not change a pair's outputs; every other field (and any added later) is a setting
(``method_options`` are: each method's own, see :meth:`CohortPlan.method_settings`)."""
BASELINE_SETTINGS = ("skull_strip", "random_seed")
"""The settings the methods that do not use the model depend on (SM-GICNet depends on all of them and on the
model's weights)."""
NOT_RUN_KEY = ("work_dir", "omp_nthreads", "verify_outputs", "outputs", "reportlets", "reports")
"""Plan fields that do not name a run (the same pairs and settings resume whatever the output policy)."""
DONE = "done"


def prepared_root(work_dir, config_json: str) -> str:
    """``work_dir/prepared/<D>x<H>x<W>-<voxel>mm``: where subjects prepared for the network grid of
    ``config_json`` live (one folder per grid, so models on different grids never re-prepare each other's)."""
    from ..config import SMGICNetConfig

    cfg = SMGICNetConfig.from_json(config_json)
    grid = "x".join(str(int(n)) for n in cfg.grid_shape)
    return str(Path(work_dir) / "prepared" / f"{grid}-{cfg.voxel_size_mm:g}mm")


def add_preparation(work_dir, config_json: str, skull_strip: str, subjects):
    """Add the node ``prepare`` (:func:`PrepareCohortSubject` split over ``subjects``, combined) to the
    workflow being defined; its outputs ``prepared_dir`` and ``error`` are lists in subject order."""
    return workflow.add(
        PrepareCohortSubject(prepared_root=prepared_root(work_dir, config_json), config_json=config_json,
                       skull_strip=skull_strip)
        .split("subject", subject=subjects)
        .combine("subject"),
        name="prepare",
    )


@dataclass
class CohortPlan:
    """Everything a cohort run needs, in plain values.

    subjects: subject dicts for :func:`PrepareCohortSubject` (``subject``, ``t1w``, ``mask``, ``labels``).
    pairs: ``(fixed, moving)`` subject keys. output_dir: the pairs' files are named in it (BIDS
    derivatives, :func:`smgic_pydra.bids.derivatives.pair_output_paths`) and the tile tables and
    reports go to ``output_dir/reports``. model: model folder or ``""`` (packaged default).
    pairs_per_job: the tile size, ``B = floor(sqrt(pairs_per_job))`` subjects a side.
    outputs: ``all`` (every file), ``warps`` (forward and inverse warps + sidecar) or ``metrics``
    (no per-pair file; metrics only); metrics are computed the same way for each.
    reportlets: write the figures of each pair and subject (``outputs`` all only). reports:
    write the reports at the end (else only the tile tables, for the group level). verify_outputs:
    compare the SHA-256 of every finished output before reusing it (otherwise only of those whose
    size or modification time changed). method_options: method -> its options (overriding the
    registry's defaults, see :mod:`smgic_pydra.methods.registry`; part of that method's settings and
    recorded in its sidecars).
    """

    subjects: list[dict]
    pairs: list
    methods: list[str]
    work_dir: Path
    output_dir: Path
    model: str = ""
    device: str = "cpu"
    pairs_per_job: int = PAIRS_PER_JOB
    labels_table: str = ""
    skull_strip: str = "none"
    omp_nthreads: int = 1
    random_seed: int = 1
    method_options: dict = field(default_factory=dict)
    extra_key: dict = field(default_factory=dict)
    verify_outputs: bool = False
    outputs: str = "all"
    reportlets: bool = False
    reports: bool = True

    def __post_init__(self) -> None:
        # absolute paths: pydra runs every job in its own cache folder
        self.work_dir = Path(self.work_dir).absolute()
        self.output_dir = Path(self.output_dir).absolute()
        self.model = str(Path(self.model).absolute()) if self.model else ""
        self.labels_table = str(Path(self.labels_table).absolute()) if self.labels_table else ""
        self.pairs = [(str(f), str(m)) for f, m in self.pairs]
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}: choose from {list(METHODS)}")
        for name, options in self.method_options.items():
            get_method(name).merged_options(options)  # a one-line error for an unknown method or setting
        if self.pairs_per_job < 1:
            raise ValueError(f"pairs_per_job must be >= 1, got {self.pairs_per_job}")
        if self.outputs not in OUTPUT_POLICIES:
            raise ValueError(f"outputs must be one of {list(OUTPUT_POLICIES)}, got {self.outputs!r}")

    @property
    def run_key(self) -> str:
        """Short hash of what determines the results (same command + same work dir -> same key)."""
        if "_run_key" not in self.__dict__:
            data = {k: v for k, v in asdict(self).items() if k not in NOT_RUN_KEY}
            text = json.dumps(data, sort_keys=True, default=str)
            self.__dict__["_run_key"] = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self.__dict__["_run_key"]

    def pair_paths(self, fixed: str, moving: str, method: str):
        """The :class:`~smgic_pydra.worldspace.PairOutputPaths` of a pair and method (in :attr:`output_dir`)."""
        from ..bids.derivatives import pair_output_paths

        return pair_output_paths(self.output_dir, moving, fixed, method)

    def tiles(self) -> list[dict]:
        """The tiles of :attr:`pairs` (:func:`smgic_pydra.bids.pairs.tile_pairs`), ids prefixed by the run key."""
        from ..bids.pairs import tile_pairs, tile_side

        if "_tiles" not in self.__dict__:
            self.__dict__["_tiles"] = tile_pairs(self.pairs, tile_side(self.pairs_per_job), self.run_key)
        return self.__dict__["_tiles"]

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
        not in ``NOT_SETTINGS`` and the model (:func:`model_identity`; methods that use the model; the
        others: ``BASELINE_SETTINGS``), and the method's options (:meth:`RegistrationMethod.keyed_options`) when it
        has any."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_SETTINGS}
        if get_method(method).uses_model:
            data["model"] = self.model_identity()
        else:
            data = {k: data[k] for k in BASELINE_SETTINGS}
        options = get_method(method).keyed_options(self.method_options.get(method), self.device)
        return {"method": method, **data, **({"options": options} if options else {})}

    def model_identity(self) -> dict:
        """:func:`model_identity` of the plan's model (loaded and checked once)."""
        if "_model_identity" not in self.__dict__:
            self.__dict__["_model_identity"] = model_identity(self.model)
        return self.__dict__["_model_identity"]

    def model_sha256(self) -> str:
        """SHA-256 of the model's weights (:meth:`model_identity`)."""
        return self.model_identity()["weights_sha256"]

    def config_json(self) -> str:
        """The network config of the model: it defines the grid every subject is prepared on."""
        from ..inference import resolve_model_files

        return resolve_model_files(self.model or None)[1].read_text()


def model_identity(model: str | None) -> dict:
    """A model as content keys name it: the SHA-256 of its weights and of its config as canonical JSON (its
    ``ss_steps``, ``range_flow``, ... change the results too), after loading and checking it (:class:`InputError`
    if bad; ``model`` ``""`` or None: the packaged one)."""
    from ..inference import load_model
    from ..io.hashing import sha256_json

    bundle = load_model(model or None)
    return {"weights_sha256": bundle.weights_sha256, "config_sha256": sha256_json(bundle.cfg.to_dict())}


def input_hashes(subject: dict) -> dict[str, str]:
    """SHA-256 of a subject's input files by role (``t1w``, ``mask``, ``labels``)."""
    from ..io.hashing import sha256_file

    return {role: sha256_file(subject[role]) for role in ("t1w", "mask", "labels") if subject.get(role)}


def stamp_subjects(plan: CohortPlan, config_json: str) -> tuple[list[dict], dict[str, dict]]:
    """The plan's subjects stamped for this run, and the SHA-256 of each subject's input files by role.

    Subjects gain ``state``: ``"done"`` when their prepared folder matches their inputs, else this
    run's token (so pydra's cache cannot return a stale preparation). O(subjects): pairs are keyed
    inside their tile jobs.
    """
    from ..config import SMGICNetConfig
    from ..io.hashing import hash_cache
    from ..preparation.prepare import is_prepared, prepared_fingerprint

    token = uuid.uuid4().hex
    cfg = SMGICNetConfig.from_json(config_json)
    root = Path(prepared_root(plan.work_dir, config_json))
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    with hash_cache(plan.work_dir / "hashes.json"):
        hashes = {s["subject"]: input_hashes(s) for s in plan.subjects}
        subjects = [{**s, "state": DONE if is_prepared(root / s["subject"], prepared_fingerprint(s, cfg, plan.skull_strip))
                     else token} for s in plan.subjects]
    return subjects, hashes


def method_nodes(methods) -> dict[str, list[str]]:
    """Workflow node -> its methods among ``methods`` (registry order within a node)."""
    nodes: dict[str, list[str]] = {}
    for name in methods:
        nodes.setdefault(get_method(name).node, []).append(name)
    return nodes


def init_cohort_wf(plan: CohortPlan):
    """Build the cohort workflow task for ``plan`` (outputs: ``summaries``: one per tile and method, ``reports``)."""
    subject_ids = [s["subject"] for s in plan.subjects]
    nodes = method_nodes(plan.methods)
    uses_model = any(get_method(m).uses_model for m in plan.methods)
    if not subject_ids or not plan.pairs:
        raise ValueError("nothing to run: the plan has no subjects or no pairs")
    config_json = plan.config_json()
    subjects, inputs = stamp_subjects(plan, config_json)
    model_sha256 = plan.model_sha256() if uses_model else ""
    settings = {m: plan.method_settings(m) for m in plan.methods}

    # token: new per run, so pydra never answers a run with a cached workflow result (the tiles decide
    # what is done, per pair: an output policy or a file changed since is not in these inputs)
    @workflow.define(outputs=["summaries", "reports"])
    def CohortRegistration(subjects: list, tiles: list, config_json: str, token: str):
        prep = add_preparation(plan.work_dir, config_json, plan.skull_strip, subjects)
        shared = dict(subjects=subject_ids, prepared_dirs=prep.prepared_dir, preparation_errors=prep.error,
                      inputs=inputs, output_dir=str(plan.output_dir), journal_dir=str(plan.progress_dir),
                      model=plan.model, model_sha256=model_sha256, device=plan.device, omp_nthreads=plan.omp_nthreads,
                      random_seed=plan.random_seed, outputs=plan.outputs, reportlets=plan.reportlets,
                      labels_table=plan.labels_table, verify_outputs=plan.verify_outputs, token=token)
        summaries = None
        for node, methods in nodes.items():
            reg = workflow.add(RegisterTile(**shared).split(
                [("method", "options", "settings"), "tile"], method=methods,
                options=[plan.method_options.get(m) for m in methods], settings=[settings[m] for m in methods],
                tile=tiles).combine([f"{node}.method", f"{node}.tile"]), name=node)
            summaries = reg.summary if summaries is None else workflow.add(
                Gather(a=summaries, b=reg.summary), name=f"gather_{node}").out
        summaries = workflow.add(Gather(a=summaries, b=[]), name="gather").out
        if not plan.reports:
            return summaries, {}
        rep = workflow.add(WriteReports(summaries=summaries, output_dir=str(plan.output_dir)), name="reports")
        return summaries, rep.reports

    return CohortRegistration(subjects=subjects, tiles=plan.tiles(), config_json=config_json, token=uuid.uuid4().hex)


@dataclass
class CohortResult:
    """The tile summaries of a run, its report paths and failed pairs; the rows are read from the tile tables."""

    summaries: list[dict]
    reports: dict[str, str]
    failed: list[str]
    status_file: Path

    @property
    def pairs(self):
        """One row per pair and method (pandas DataFrame, :data:`smgic_pydra.reports.PAIR_COLUMNS` and more)."""
        from ..reports.tiles import read_pairs_tables

        return read_pairs_tables([s["pairs_file"] for s in self.summaries])

    @property
    def rows(self) -> list[dict]:
        """:attr:`pairs` as a list of dicts (small cohorts)."""
        return self.pairs.to_dict("records")

    @property
    def label_rows(self) -> list[dict]:
        """Dice per pair, method and label as a list of dicts (small cohorts; big ones stream the tables)."""
        from ..reports.tiles import iter_label_tables

        return [row for table in iter_label_tables([s["labels_file"] for s in self.summaries]) for row in table.to_pylist()]


def run_cohort(plan: CohortPlan, worker="cf", n_procs: int | None = None, show_progress: bool = True,
               poll_interval: float = 1.0) -> CohortResult:
    """Run the cohort workflow of ``plan`` and return its result (errors are rows, never raised per pair).

    worker: ``"cf"`` (processes, ``n_procs``), ``"debug"`` (in this process), ``"slurm"`` (our
    :class:`smgic_pydra.hpc.SlurmArrayWorker` with default arguments, not pydra's own SLURM worker:
    each ready batch of tiles becomes one job array) or a pydra worker instance (e.g. a configured
    ``SlurmArrayWorker``). Only one run per ``run_key`` may use a work directory at a time (a
    second one gets :class:`CohortRunError`). Re-running a killed run with the same plan redoes
    only the unfinished pairs.
    """
    wf = init_cohort_wf(plan)
    total = len(plan.pairs) * len(plan.methods)
    monitor = ProgressMonitor(plan.progress_dir, plan.status_file, total, poll_interval, show_progress)
    out = submit_workflow(wf, plan.run_dir, worker, n_procs, monitor, what="the cohort workflow")
    summaries = flatten_rows(out.summaries)
    failed = [line for s in summaries for line in s["failed"]]
    return CohortResult(summaries, dict(out.reports), failed, plan.status_file)
