"""Training workflow: prepare every subject once, train SM-GICNet progressively, package the model with its card.

Graph (pydra 1.0a12)::

    prepare   PrepareCohortSubject split over subjects, combined (shared with registration runs)
    train     TrainModel: one job, GPU with ``device="cuda"`` (checkpoints in the run folder)
    package   PackageModel: the model folder OUTPUT_DIR (weights, config, card, curves, split)

Work directory layout (``work_dir``)::

    prepared/<grid>/<subject>/    prepared subjects (see :func:`~.cohort.prepared_root`)
    train/<run_key>/              checkpoints/, training_log.csv, validation_log.csv, processes.jsonl
    train/<run_key>/cache/        pydra cache_root of this run

``run_key`` hashes what determines the trained weights (subjects, split, network config, plan,
initial weights, preparation), not how the run is executed (device, precision, checkpoint and
validation intervals), so the same command resumes a killed run, on another device too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from pydra.compose import workflow

from ..config import SMGICNetConfig
from ..defaults import CHECKPOINT_EVERY, VALIDATE_EVERY
from ..tasks import PackageModel, TrainModel
from ..training import TrainPlan
from ..training.presets import TrainingPreset
from ..training.split import Split
from .cohort import add_preparation
from .submit import submit_workflow

SCHEDULE_FIELDS = ("learning_rate", "freeze_steps", "lr_decay_start", "lr_decay_every", "lr_decay_factor",
                   "stage_iterations", "batch_size")
"""Config fields a preset sets on top of an initial model's config (the rest is the model's)."""


@dataclass
class TrainingPlan:
    """Everything a training run needs, in plain values.

    subjects: :func:`PrepareCohortSubject` dicts (``subject``, ``t1w``, ``mask``, ``labels``) of every image
    of ``split``. init_model: ``""`` (random weights), ``"default"`` (the packaged model) or a model
    folder; with one, the network comes from its config and only the schedule from the preset.
    iterations: steps per stage 1..4 (None: the preset's). dataset: ``name`` and ``source`` for the
    model card; command: the command line, recorded. Treat it as frozen once made: ``config`` and
    ``run_key`` (which hashes the initial weights) are computed once.
    """

    subjects: list[dict]
    split: Split
    preset: TrainingPreset
    work_dir: Path
    output_dir: Path
    first_stage: int = 1
    last_stage: int = 4
    iterations: tuple[int, ...] | None = None
    init_model: str = ""
    seed: int = 1
    device: str = "cpu"
    precision: str = "fp32"
    skull_strip: str = "none"
    labels_table: str = ""
    checkpoint_every: int = CHECKPOINT_EVERY
    validate_every: int = VALIDATE_EVERY
    dataset: dict = field(default_factory=dict)
    command: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir).absolute()
        self.output_dir = Path(self.output_dir).absolute()
        if self.init_model not in ("", "default"):
            self.init_model = str(Path(self.init_model).absolute())
        self.labels_table = str(Path(self.labels_table).absolute()) if self.labels_table else ""
        self.train_plan.validate()

    def _init_files(self) -> tuple[Path, Path] | None:
        from ..inference import resolve_model_files

        return None if not self.init_model else resolve_model_files(
            None if self.init_model == "default" else self.init_model)

    @cached_property
    def config(self) -> SMGICNetConfig:
        """The preset's network config, or the initial model's with the preset's schedule."""
        files = self._init_files()
        if files is None:
            return self.preset.config
        schedule = {k: getattr(self.preset.config, k) for k in SCHEDULE_FIELDS}
        return SMGICNetConfig.from_json(files[1].read_text()).replace(**schedule)

    @property
    def train_plan(self) -> TrainPlan:
        return TrainPlan(seed=self.seed, first_stage=self.first_stage, last_stage=self.last_stage,
                         iterations=tuple(self.iterations or self.preset.iterations), augment=self.preset.augment)

    @property
    def init_weights(self) -> str:
        files = self._init_files()
        return "" if files is None else str(files[0])

    @cached_property
    def run_key(self) -> str:
        """Short hash of what determines the trained weights (same command + same work dir -> same key)."""
        from ..inference.model_io import check_weights

        data = {"subjects": self.subjects, "train": self.split.train, "validation": self.split.validation,
                "config": self.config.to_dict(), "plan": asdict(self.train_plan), "skull_strip": self.skull_strip,
                "init": check_weights(Path(self.init_weights)) if self.init_weights else "", "labels": self.labels_table}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def run_dir(self) -> Path:
        return self.work_dir / "train" / self.run_key

    def label_values(self) -> list[int]:
        """Labels of the validation Dice: the label table's (default: the 36 aseg labels)."""
        from ..metrics.labels import load_label_table

        return sorted(load_label_table(self.labels_table or None))

    def record(self) -> dict:
        """The training record's plan-time part (see :mod:`smgic_pydra.training.model_card`)."""
        from ..augmentation import AugmentOptions

        plan, augment = self.train_plan, self.preset.augment
        changed = {k: v for k, v in asdict(augment).items() if v != getattr(AugmentOptions(), k)}
        init = self.init_model and ("the packaged default model" if self.init_model == "default" else self.init_model)
        labels = self.labels_table or "the 36 FreeSurfer aseg labels"
        return {
            "run_key": self.run_key,
            "dataset": {
                **self.dataset,
                "train_participants": [f"sub-{p}" for p in self.split.participants("train")],
                "validation_participants": [f"sub-{p}" for p in self.split.participants("validation")],
                "train_images": len(self.split.train), "validation_images": len(self.split.validation),
                "split_rule": self.split.rule, "split_seed": self.split.seed,
                "labels": f"label table {labels}" if any(s.get("labels") for s in self.subjects) else "none",
            },
            "preparation": {"skull_strip": self.skull_strip},
            "preset": {"name": self.preset.name, "description": self.preset.description},
            "config": self.config.to_dict(),
            "plan": {**asdict(plan), "augment_text": ", ".join(f"{k} {v}" for k, v in changed.items()) or "none"},
            "init_model": init or None,
            "command": list(self.command),
        }


def init_training_wf(plan: TrainingPlan):
    """Build the training workflow task for ``plan`` (output: ``model_dir``)."""
    config_json = plan.config.to_json()
    ids = [s["subject"] for s in plan.subjects]
    missing = sorted(set(plan.split.train + plan.split.validation) - set(ids))
    if missing:
        raise ValueError(f"the split names images that are not among the subjects: {missing}")

    @workflow.define(outputs=["model_dir"])
    def SMGICNetTraining(subjects: list, config_json: str, plan_json: str, record: dict):
        prep = add_preparation(plan.work_dir, config_json, plan.skull_strip, subjects)
        train = workflow.add(
            TrainModel(subjects=ids, prepared_dirs=prep.prepared_dir, preparation_errors=prep.error,
                       train_ids=list(plan.split.train), validation_ids=list(plan.split.validation),
                       run_dir=str(plan.run_dir), config_json=config_json, plan_json=plan_json,
                       init_weights=plan.init_weights, device=plan.device, precision=plan.precision,
                       checkpoint_every=plan.checkpoint_every, validate_every=plan.validate_every,
                       label_values=plan.label_values()),
            name="train",
        )
        package = workflow.add(
            PackageModel(checkpoint=train.checkpoint, run_dir=str(plan.run_dir), output_dir=str(plan.output_dir),
                         record=record, split_rows=plan.split.rows(), bids_dir=plan.dataset.get("bids_dir", "")),
            name="package",
        )
        return package.model_dir

    return SMGICNetTraining(subjects=plan.subjects, config_json=config_json,
                            plan_json=json.dumps(asdict(plan.train_plan)), record=plan.record())


def run_training(plan: TrainingPlan, worker="cf", n_procs: int | None = None) -> Path:
    """Run the training workflow of ``plan``; returns the model folder. A killed run started again
    with the same plan and work directory continues from its last checkpoint."""
    wf = init_training_wf(plan)
    out = submit_workflow(wf, plan.run_dir, worker, n_procs, what="training")
    return Path(out.model_dir)
