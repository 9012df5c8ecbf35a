"""What one SLURM array task runs: ``python -m smgic_pydra.hpc.run_job JOB.pklz [--rerun]``.

It runs the pickled pydra job with pydra's own ``load_and_run`` (:func:`smgic_pydra.pydra_compat.run_saved_job`) (which writes the job's result, or
its error file, into the shared cache dir). SIGTERM (SLURM's time limit, ``scancel``, preemption)
is turned into a :class:`JobTerminated` exception, so pydra records the error and releases the
job's lock file before SLURM's SIGKILL arrives; the traceback goes to the task's stderr file.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path


class JobTerminated(Exception):
    """SLURM sent SIGTERM to the job (time limit reached, scancel or preemption)."""


def _raise_terminated(signum, frame):
    raise JobTerminated("SLURM sent SIGTERM (time limit reached, scancel or preemption)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job_pkl", type=Path, help="pickled pydra job (_job.pklz)")
    parser.add_argument("--rerun", action="store_true", help="rerun even if a cached result exists")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    from smgic_pydra.pydra_compat import run_saved_job

    run_saved_job(args.job_pkl, rerun=args.rerun)


if __name__ == "__main__":
    main()
