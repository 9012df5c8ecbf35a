"""The ``smgic-bids`` command line: its arguments and their parsing and validation into :class:`BidsAppSettings`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .. import __version__
from ..methods import METHODS, selectable_methods
from ..output_policy import OUTPUT_POLICIES, policies_help
from ..pipeline_settings import QUALITY_PRESETS, PipelineSettings
from ..preparation.skullstrip import SKULL_STRIPPERS
from ..settings import BidsAppSettings, default
from .options import device_name, non_negative_int, parse_iterations, parse_stages, positive_int

PROG = "smgic-bids"
METHOD_CHOICES = selectable_methods()


class UsageError(Exception):
    """A bad argument or dataset; the message is one line."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``PROG: error: ...; see --help``), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def selected_methods_text(methods: list[str]) -> str:
    """``--method``'s text for ``methods`` (identity is implied)."""
    return ",".join(m for m in methods if m != "identity")


def build_parser() -> argparse.ArgumentParser:
    """The arguments of ``smgic-bids`` (BIDS-App conventions plus registration options); every default is
    :class:`BidsAppSettings`' (:func:`~smgic_pydra.settings.default`)."""
    methods = selected_methods_text(default("methods"))
    p = OneLineParser(prog=PROG, description="SM-GICNet and ANTs registration of every pair of a BIDS "
                                "dataset, with Dice / folding / inverse-consistency reports; training of SM-GICNet "
                                "on the dataset (analysis level 'train').")
    p.add_argument("bids_dir", type=Path, help="the raw BIDS dataset")
    p.add_argument("output_dir", type=Path, help="the derivatives folder to write (not inside bids_dir, "
                   "except bids_dir/derivatives/<name>); with 'train', the model folder")
    p.add_argument("analysis_level", choices=("participant", "group", "train", "export"),
                   help="participant: register pairs; group: reports; train: train a model on the dataset; "
                        "export: both ANTs warps (+ .mat) of every --outputs compact pair (--participant-label: "
                        "of those moving subjects), exactly as --outputs all writes them")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    g = p.add_argument_group("BIDS selection")
    g.add_argument("--participant-label", "--participant_label", nargs="+", default=default("participant_label"),
                   help="moving subjects to process (train: subjects to train and validate on), with or without "
                   "'sub-' (default: all)")
    g.add_argument("--session-label", nargs="+", default=default("session_label"),
                   help="sessions to use, with or without 'ses-'")
    g.add_argument("--bids-filter-file", type=Path, default=default("bids_filter_file"),
                   help="JSON file of BIDS entity filters")
    g.add_argument("--skip-bids-validation", action="store_true", default=default("skip_bids_validation"),
                   help="do not validate the input dataset")
    g = p.add_argument_group("registration")
    g.add_argument("--model", default=default("model"),
                   help="model folder (model.safetensors + config.json); default: packaged")
    g.add_argument("--method", default=methods, help="comma list of " + "; ".join(
        f"{name}: {METHODS[name].help}" for name in METHOD_CHOICES) + f" (identity is always reported; default: "
        f"{methods})")
    g.add_argument("--method-option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="a method option (VALUE as JSON, e.g. fireants.greedy_iterations=[100,50,25]); repeatable")
    g.add_argument("--refine", type=non_negative_int, default=None, metavar="N",
                   help="smgicnet: Adam steps of test-time refinement of each pair's velocity field on the 3 mm grid "
                   "(before them refine_pre_steps on a 6 mm grid, after them refine_fine_steps on the 1.5 mm grid), 0 "
                   f"for the network alone (default: {PipelineSettings().refine.steps}; = --method-option "
                   "smgicnet.refine=N)")
    g.add_argument("--quality", choices=tuple(QUALITY_PRESETS), default=default("quality"),
                   help="smgicnet's preset, under --refine, --no-affine and --method-option: fast (the network alone "
                   "after the affine, on half the grid for >= 2.85 mm inputs), default (with the refinement) or best "
                   "(8 refinement steps on the network's 1.5 mm grid instead of 4, ~1.5x the time); "
                   f"their Dice and seconds are in the README (default: {default('quality')})")
    g.add_argument("--no-affine", action="store_true",
                   help="smgicnet: no symmetric affine pre-alignment (= --method-option smgicnet.affine=false)")
    g.add_argument("--pairs", default=default("pairs"), help="all | ordered | reference:LABEL | FILE.tsv | "
                   "template:NAME[:res-N] (every selected subject to a TemplateFlow template under TEMPLATEFLOW_HOME, "
                   f"e.g. template:MNI152NLin2009cAsym:res-1; offline) (default: {default('pairs')})")
    g.add_argument("--pairs-per-job", type=positive_int, default=default("pairs_per_job"),
                   help="pairs per job, P: the pairs are cut into tiles of the subjects x subjects pair matrix, "
                        "B = floor(sqrt(P)) subjects a side (up to B x B pairs), each one job that loads the model "
                        f"and each subject once (default: {default('pairs_per_job')})")
    g.add_argument("--outputs", default=default("outputs"), choices=tuple(OUTPUT_POLICIES),
                   help=f"files per pair ({policies_help()}); identity writes none. Metrics are the same for "
                        f"each (default: {default('outputs')})")
    g.add_argument("--plan-only", action="store_true", default=default("plan_only"),
                   help="print the jobs, pairs, estimated bytes and time of the participant level, and exit")
    g.add_argument("--device", type=device_name, default=default("device"), help="cpu, cuda or cuda:N, for "
                   "registration and training; checked on this machine before any work, except with --worker slurm, "
                   f"where the jobs' nodes have the GPUs (default: {default('device')})")
    g.add_argument("--labels", type=Path, default=default("labels"), help="label table TSV (index, name) for "
                   "Dice; wins over the default, which is the dseg.tsv at the root of the labels' derivatives dataset "
                   "when it has one (e.g. the example dataset's 116 AAL labels), else 36 FreeSurfer aseg labels")
    g.add_argument("--skull-strip", default=default("skull_strip"), choices=tuple(SKULL_STRIPPERS),
                   help="skull stripping when the dataset has no brain mask: " + "; ".join(
                       f"{s.name}: {s.help}" for s in SKULL_STRIPPERS.values()) + " (default: refuse subjects "
                   "without a brain mask; 'none' registers whole heads)")
    g = p.add_argument_group("training (analysis level train)")
    g.add_argument("--train-preset", default=default("train_preset"),
                   help="packaged preset (paper, default-model, cpu) or a preset JSON file: network grid, "
                   f"iterations per stage, learning rate, augmentation (default: {default('train_preset')}; paper is "
                   "the paper's schedule)")
    stages = "-".join(str(k) for k in dict.fromkeys(default("stages")))
    g.add_argument("--stages", default=stages, help=f"progressive stages to train, e.g. 4 or 1-4 (default: {stages})")
    g.add_argument("--iterations", default=default("iterations"),
                   help="steps per stage: one number or four comma-separated numbers (default: the preset's)")
    g.add_argument("--init-model", default=default("init_model"),
                   help="start from this model folder, or 'default' for the packaged model (fine-tuning: the "
                   "network comes from it, the schedule from the preset; default: random weights)")
    g.add_argument("--validation-fraction", type=float, default=default("validation_fraction"),
                   help="fraction of participants held out for validation, drawn with --random-seed "
                   f"(default: {default('validation_fraction')}, at least one)")
    g.add_argument("--validation-participants", nargs="+", default=default("validation_participants"),
                   help="participants held out for validation (instead of --validation-fraction)")
    g.add_argument("--checkpoint-every", type=positive_int, default=default("checkpoint_every"),
                   help=f"steps between checkpoints (default: {default('checkpoint_every')})")
    g.add_argument("--validate-every", type=non_negative_int, default=default("validate_every"),
                   help="steps between validations; 0: only before training and at each stage end "
                   f"(default: {default('validate_every')})")
    g = p.add_argument_group("execution")
    g.add_argument("-w", "--work-dir", type=Path, default=default("work_dir"),
                   help=f"work directory (default: ./{default('work_dir')})")
    g.add_argument("--nprocs", type=positive_int, default=default("nprocs"),
                   help="parallel jobs of the cf worker (default: all CPUs)")
    g.add_argument("--omp-nthreads", type=non_negative_int, default=default("omp_nthreads"),
                   help=f"threads per job, 0 for torch's default (default: {default('omp_nthreads')})")
    g.add_argument("--random-seed", type=positive_int, default=default("random_seed"),
                   help="seed (>= 1) recorded with the outputs and used by ANTs; ANTs' 0 means 'from the clock' "
                   f"(default: {default('random_seed')})")
    g.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16", "fp16"),
                   help="participant: the SM-GICNet network's forward, auto (bfloat16 on a CPU with AMX or AVX-512 "
                   "BF16 units, else float32; the default), bf16 or fp32 (= --method-option smgicnet.precision=...); "
                   f"train: autocast on CUDA, fp32, bf16 or fp16 (default: {default('precision')})")
    g.add_argument("--worker", default=default("worker"), choices=("cf", "debug", "slurm"),
                   help=f"pydra worker (default: {default('worker')})")
    g.add_argument("--slurm-args", default=default("slurm_args"), help="sbatch arguments for every job (worker slurm)")
    g.add_argument("--verify-outputs", action="store_true", default=default("verify_outputs"),
                   help="compare the SHA-256 of every finished output with its sidecar's record (participant: before "
                   "reusing it, group: before reporting it); sizes and modification times are always checked")
    g.add_argument("--no-reportlets", dest="reportlets", action="store_false", default=default("reportlets"),
                   help="participant: do not draw the quality-control figures of each pair and subject "
                   "(OUTPUT_DIR/sub-*/figures; the group report then shows the tables and group figures only)")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=default("progress"),
                   help="hide the progress bar")
    g.add_argument("-v", "--verbose", action="count", default=default("verbose"), help="more log output (-vv: debug)")
    return p


def parse_methods(text: str) -> list[str]:
    """Methods of ``--method`` in the given order, plus ``identity`` (always reported)."""
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHOD_CHOICES]
    if unknown or not methods:
        raise UsageError(f"--method: unknown method(s) {unknown or [text]}; choose from {','.join(METHOD_CHOICES)}")
    return list(dict.fromkeys(methods + ["identity"]))


def parse_method_options(items: list[str], methods: list[str] | None = None) -> dict[str, dict]:
    """``--method-option METHOD.KEY=VALUE`` items as method -> {key: value} (VALUE parsed as JSON, else text),
    each checked against its registry declaration (type, bounds); with ``methods``, an option of a
    method that is not selected is refused too."""
    options: dict[str, dict] = {}
    for item in items:
        name, _, value = item.partition("=")
        method, _, key = name.partition(".")
        if not (method and key and _):
            raise UsageError(f"--method-option {item!r}: expected METHOD.KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        options.setdefault(method.strip().lower(), {})[key.strip()] = parsed
    for method, values in options.items():
        if method not in METHODS:
            raise UsageError(f"--method-option: unknown method {method!r}; choose from {','.join(METHOD_CHOICES)}")
        if methods is not None and method not in methods:
            given = ", ".join(f"{method}.{key}" for key in values)
            raise UsageError(f"--method-option {given}: method {method} is not selected (--method "
                             f"{','.join(m for m in methods if m != 'identity')}); add it or drop the option")
        try:
            METHODS[method].merged_options(values)
        except ValueError as err:
            raise UsageError(f"--method-option: {err}") from None
    return options


def smgicnet_shortcuts(args) -> list[str]:
    """``--refine``, ``--no-affine`` and (outside train) ``--precision`` as ``--method-option`` items (items given
    later win: explicit ones come after these; :class:`BidsAppSettings` puts ``--quality``'s preset beneath them)."""
    items = [] if args.refine is None else [f"smgicnet.refine={args.refine}"]
    if args.precision is not None and args.analysis_level != "train":
        items.append(f'smgicnet.precision="{args.precision}"')
    return items + (["smgicnet.affine=false"] if args.no_affine else [])


def parse_settings(argv: list[str] | None = None) -> BidsAppSettings:
    """Parse and validate ``smgic-bids``' arguments (argparse exits 2 on malformed ones; :class:`UsageError`
    or :class:`~smgic_pydra.training.TrainingError`, one line, on bad values)."""
    args = build_parser().parse_args(argv)
    if args.analysis_level == "train" and args.precision == "auto":
        raise UsageError("--precision auto is for registration; training takes fp32, bf16 or fp16")
    if args.plan_only and args.analysis_level != "participant":
        raise UsageError(f"--plan-only applies to the participant level, not {args.analysis_level}")
    methods = parse_methods(args.method)
    given = {f.name: getattr(args, f.name) for f in fields(BidsAppSettings) if hasattr(args, f.name)} | dict(
        bids_dir=args.bids_dir.absolute(), output_dir=args.output_dir.absolute(), work_dir=args.work_dir.absolute(),
        methods=methods, method_options=parse_method_options(smgicnet_shortcuts(args) + args.method_option, methods),
        stages=parse_stages(args.stages), iterations=parse_iterations(args.iterations) if args.iterations else None,
        precision=(args.precision if args.analysis_level == "train" else None) or default("precision"),
        command=list(sys.argv[1:] if argv is None else argv),
    )
    try:
        return BidsAppSettings(**given)
    except ValueError as err:  # the settings' own checks (quality, precision)
        raise UsageError(str(err)) from None
