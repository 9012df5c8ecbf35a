"""``smgic-bids BIDS_DIR OUTPUT_DIR {participant,group,train}``: the BIDS App of smgic-pydra.

``participant`` registers every pair whose *moving* subject is selected (so one job per
participant can run in parallel into the same OUTPUT_DIR: every pair writes its own files, all
atomically) and evaluates it, tile by tile (a Parquet table of rows per tile of the pair matrix and
method; ``--outputs`` decides which per-pair files are written). ``group`` reads only those
derivatives (it never indexes the raw data again) and writes the group reports
(:mod:`smgic_pydra.reports.write`): ``pairs.parquet`` / ``.csv``, ``dice_per_label.parquet`` / ``.csv``
(CSVs while small), ``group_summary.csv/.tsv`` (mean +- std per method), ``dice_matrix.tsv``,
``dice_per_structure.tsv`` and ``index.html``. Both exit with status 1
when a pair failed (the failed pairs are named on stderr) and 2 on bad arguments or data.
``train`` trains SM-GICNet on the selected subjects (split into training and validation by
participant) and writes the model folder OUTPUT_DIR, which ``--model`` takes; it exits with 1 when
training failed and 2 on bad arguments or data.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..defaults import GPU_GRES

from ..methods import gpu_resources
from .parser import PROG, UsageError, parse_settings


def check_locations(bids_dir: Path, output_dir: Path, work_dir: Path, writes: bool = True) -> None:
    """A BIDS dataset at ``bids_dir``, output / work folders outside its raw data, the work folder
    outside OUTPUT_DIR and, when the level ``writes`` (participant, train), both folders writable
    by this user: checked before anything is written (one-line errors)."""
    from ..bids.derivatives import check_output_dirs

    if not bids_dir.is_dir():
        raise UsageError(f"{bids_dir}: BIDS dataset folder not found")
    if not (bids_dir / "dataset_description.json").is_file():
        raise UsageError(f"{bids_dir}: not a BIDS dataset (dataset_description.json is missing)")
    check_output_dirs(bids_dir, output_dir, work_dir)
    if not writes:
        return
    if work_dir.resolve().is_relative_to(output_dir.resolve()):
        raise UsageError(f"{work_dir}: the work folder (-w) is or is inside OUTPUT_DIR {output_dir}; its prepared/ "
                         "and runs/ folders do not belong in the derivatives: use a folder outside")
    for folder, what in ((output_dir, "output folder"), (work_dir, "work folder (-w)")):
        check_writable(folder, what)


def check_writable(folder: Path, what: str) -> None:
    """``folder`` (or the existing folder it would be created in) is writable by this user, else :class:`UsageError`."""
    import os

    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        shown = "" if existing == folder else f" ({existing} is where it would be created)"
        raise UsageError(f"{folder}: {what} not writable by this user{shown}")


def check_device(settings) -> None:
    """``--device`` exists on this machine (participant and train levels; with ``--worker slurm`` the jobs'
    nodes have the GPUs, so only its form was checked), else :class:`UsageError` before any work."""
    from ..devices import device_problem

    if settings.analysis_level == "group" or settings.worker == "slurm":
        return
    problem = device_problem(settings.device)
    if problem:
        raise UsageError(f"--device: {problem}")


def make_worker(worker: str, device: str = "cpu", slurm_args: str = ""):
    """The pydra worker of ``--worker``: ``SlurmArrayWorker`` for slurm, whose GPU methods' tiles (their
    registry nodes, e.g. ``register``) and training job (node ``train``) also ask for a GPU when
    ``device`` is CUDA."""
    if worker != "slurm":
        return worker
    from ..hpc import SlurmArrayWorker

    gpu = gpu_resources(device)
    if gpu:
        gpu["train"] = GPU_GRES
    return SlurmArrayWorker(sbatch_args=slurm_args, resources=gpu)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format=f"{PROG}: %(levelname)s: %(message)s")
    if verbose == 0:  # our own one-line summary replaces pydra's multi-line crash notice
        logging.getLogger("pydra").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``smgic-bids``; returns 0, 1 (some pairs or the training failed) or 2 (bad arguments or data)."""
    from ..io.errors import InputError, InputErrors, MissingToolError
    from ..training import TrainingError

    try:
        settings = parse_settings(argv)
    except SystemExit as done:  # argparse: --help, --version (0) or a malformed argument (2, one line printed)
        return int(done.code or 0)
    except (UsageError, TrainingError) as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    _setup_logging(settings.verbose)
    from ..settings import write_run_config
    from ..workflows import CohortRunError, bids_cohort, bids_template, bids_training

    try:
        check_device(settings)
        check_locations(settings.bids_dir, settings.output_dir, settings.work_dir,
                        writes=settings.analysis_level != "group")
        if settings.analysis_level == "participant":
            if bids_template.is_template_run(settings.pairs):  # every subject to a TemplateFlow template
                failed = bids_template.run_template_participant(settings)
            else:
                worker = make_worker(settings.worker, settings.device, settings.slurm_args)
                failed = bids_cohort.run_participant(settings, worker)
        elif settings.analysis_level == "export":
            from ..worldspace.export import export_output_dir

            failed = export_output_dir(settings.output_dir, settings.participant_label, verify=settings.verify_outputs)
            write_run_config(settings)
        elif settings.analysis_level == "train":
            bids_training.run_train(settings, make_worker(settings.worker, settings.device, settings.slurm_args))
            failed = []
        else:
            failed = (bids_template.run_template_group(settings.output_dir)
                      if bids_template.template_runs(settings.output_dir)
                      else bids_cohort.run_group(settings.output_dir, settings.verify_outputs))
            write_run_config(settings)
    except InputErrors as err:  # one line per bad input
        for line in err.errors:
            print(f"{PROG}: error: {' '.join(str(line).split())}", file=sys.stderr)
        return 2
    except (UsageError, InputError, MissingToolError, OSError, ValueError, TrainingError) as err:
        # OSError: e.g. a permission or disk-full error while writing
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except CohortRunError as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    if failed:
        print(f"{PROG}: {len(failed)} pair(s) failed:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
