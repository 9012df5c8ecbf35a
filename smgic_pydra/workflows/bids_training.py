"""The ``train`` level of ``smgic-bids``: train SM-GICNet on a BIDS cohort into a model folder.

The subjects are selected and found as for registration (:func:`smgic_pydra.bids.layout.collect_subjects`),
split into training and validation by participant (seeded by ``--random-seed``, recorded in
``split.tsv`` and the model card), prepared on the preset's network grid and trained with
:func:`~.training.run_training`. OUTPUT_DIR becomes the model folder that ``--model`` takes.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io.errors import InputError, display_path
from ..settings import LOGS_DIR, BidsAppSettings, write_run_config
from .bids_cohort import default_labels_table, subject_spec
from .training import TrainingPlan, run_training


def check_model_output(plan: TrainingPlan) -> None:
    """Refuse an OUTPUT_DIR that holds anything but this run's model (e.g. another model, or registrations);
    its run records (``logs/``) alone are no model."""
    out = plan.output_dir
    if not out.is_dir() or all(path.name == LOGS_DIR for path in out.iterdir()):
        return
    record = out / "training.json"
    try:
        key = json.loads(record.read_text()).get("run_key")
    except (OSError, ValueError):
        key = None
    if key != plan.run_key:
        raise InputError(display_path(out), "output folder is not empty and holds no model of this training run; "
                         "choose a new output folder")


def training_plan(settings: BidsAppSettings) -> TrainingPlan:
    """The :class:`TrainingPlan` of ``smgic-bids BIDS_DIR OUTPUT_DIR train``."""
    from ..bids.layout import collect_subjects, require_brain_masks
    from ..training import load_preset, split_by_participant

    s = settings
    bids_dir = s.bids_dir
    subjects = collect_subjects(bids_dir, s.participant_label, s.session_label, bids_filters=s.bids_filter_file)
    validation = s.validation_participants if s.validation_participants else s.validation_fraction
    split = split_by_participant([subject.key for subject in subjects], validation, s.random_seed)
    first, last = s.stages
    try:
        name = json.loads((bids_dir / "dataset_description.json").read_text()).get("Name") or bids_dir.name
    except (OSError, ValueError):
        name = bids_dir.name
    return TrainingPlan(
        subjects=[subject_spec(subject) for subject in subjects], split=split, preset=load_preset(s.train_preset),
        work_dir=s.work_dir, output_dir=s.output_dir, first_stage=first, last_stage=last, iterations=s.iterations,
        init_model=s.init_model or "", seed=s.random_seed, device=s.device, precision=s.precision,
        skull_strip=require_brain_masks(subjects, s.skull_strip),
        labels_table=str(s.labels or default_labels_table(subjects)), checkpoint_every=s.checkpoint_every,
        validate_every=s.validate_every,
        dataset={"name": name, "source": bids_dir.as_uri(), "bids_dir": str(bids_dir)},
        command=["smgic-bids", *s.command],
    )


def run_train(settings: BidsAppSettings, worker="cf") -> Path:
    """The train level of ``smgic-bids`` with ``worker`` (a name or a pydra worker); returns the model folder."""
    if not settings.skip_bids_validation:
        from ..bids.validation import check_dataset

        check_dataset(settings.bids_dir)
    plan = training_plan(settings)
    check_model_output(plan)
    write_run_config(settings)
    print(f"smgic-bids: training on {len(plan.split.train)} images ({len(plan.split.validation)} for validation), "
          f"preset {plan.preset.name}, stages {plan.first_stage}-{plan.last_stage}; progress: "
          f"{plan.run_dir / 'training_log.csv'}", flush=True)
    model_dir = run_training(plan, worker, settings.nprocs)
    print(f"smgic-bids: model written to {model_dir} (register with --model {model_dir})")
    return model_dir
