"""The ``train`` level of ``smgic-bids``: train SM-GICNet on a BIDS cohort into a model folder.

The subjects are selected and found as for registration (:func:`smgic_pydra.bids.layout.collect_subjects`),
split into training and validation by participant (seeded by ``--random-seed``, recorded in
``split.tsv`` and the model card), prepared on the preset's network grid and trained with
:func:`~.training.run_training`. OUTPUT_DIR becomes the model folder that ``--model`` takes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..io.errors import InputError, display_path
from .bids_cohort import default_labels_table, subject_spec
from .training import TrainingPlan, run_training


def check_model_output(plan: TrainingPlan) -> None:
    """Refuse an OUTPUT_DIR that holds anything but this run's model (e.g. another model, or registrations)."""
    out = plan.output_dir
    if not out.is_dir() or not any(out.iterdir()):
        return
    record = out / "training.json"
    try:
        key = json.loads(record.read_text()).get("run_key")
    except (OSError, ValueError):
        key = None
    if key != plan.run_key:
        raise InputError(display_path(out), "output folder is not empty and holds no model of this training run; "
                         "choose a new output folder")


def training_plan(args, bids_dir: Path, output_dir: Path, work_dir: Path) -> TrainingPlan:
    """The :class:`TrainingPlan` of ``smgic-bids BIDS_DIR OUTPUT_DIR train`` (``args``: its parsed arguments)."""
    from ..bids.layout import collect_subjects, require_brain_masks
    from ..cli.train import parse_iterations, parse_stages
    from ..training import load_preset, split_by_participant

    subjects = collect_subjects(bids_dir, args.participant_label, args.session_label,
                                bids_filters=args.bids_filter_file)
    validation = args.validation_participants if args.validation_participants else args.validation_fraction
    split = split_by_participant([s.key for s in subjects], validation, args.random_seed)
    first, last = parse_stages(args.stages)
    try:
        name = json.loads((bids_dir / "dataset_description.json").read_text()).get("Name") or bids_dir.name
    except (OSError, ValueError):
        name = bids_dir.name
    return TrainingPlan(
        subjects=[subject_spec(s) for s in subjects], split=split, preset=load_preset(args.train_preset),
        work_dir=work_dir, output_dir=output_dir, first_stage=first, last_stage=last,
        iterations=parse_iterations(args.iterations) if args.iterations else None, init_model=args.init_model or "",
        seed=args.random_seed, device=args.device, precision=args.precision,
        skull_strip=require_brain_masks(subjects, args.skull_strip),
        labels_table=str(args.labels or default_labels_table(subjects)), checkpoint_every=args.checkpoint_every,
        validate_every=args.validate_every,
        dataset={"name": name, "source": bids_dir.as_uri(), "bids_dir": str(bids_dir)},
        command=["smgic-bids", *(getattr(args, "argv", None) or sys.argv[1:])],
    )


def run_train(args, bids_dir: Path, output_dir: Path, work_dir: Path) -> Path:
    """The train level of ``smgic-bids``; returns the model folder."""
    if not args.skip_bids_validation:
        from ..bids.validation import check_dataset

        check_dataset(bids_dir)
    plan = training_plan(args, bids_dir, output_dir, work_dir)
    check_model_output(plan)
    print(f"smgic-bids: training on {len(plan.split.train)} images ({len(plan.split.validation)} for validation), "
          f"preset {plan.preset.name}, stages {plan.first_stage}-{plan.last_stage}; progress: "
          f"{plan.run_dir / 'training_log.csv'}", flush=True)
    model_dir = run_training(plan, args.worker_obj, args.nprocs)
    print(f"smgic-bids: model written to {model_dir} (register with --model {model_dir})")
    return model_dir
