"""Running pydra workflows on SLURM clusters.

:class:`SlurmArrayWorker` replaces pydra's own ``"slurm"`` worker. It batches the jobs that become
ready together into SLURM job arrays, polls ``squeue`` once per ``poll_interval`` for all of them,
reads each job's final state from the files it writes into the shared cache dir (never from
``sacct``), submits with ``--no-requeue`` (a timed-out job fails once, with a "time limit"
message), and on failure raises the task name, its inputs and the real traceback from the job's
stderr. Usage from a workflow::

    from pydra.engine.submitter import Submitter
    from smgic_pydra.hpc import SlurmArrayWorker

    worker = SlurmArrayWorker(
        sbatch_args="--time=01:00:00 -c 2 --mem=4G",            # every job
        resources={"register": "--gres=gpu:1 --time=04:00:00"},  # node name or task class name
        poll_interval=5,
    )
    with Submitter(worker=worker, cache_root="/shared/scratch/cache") as sub:
        result = sub(my_workflow)

Requirements: ``cache_root`` must be on a file system that the login node and every compute node
share (job pickles, results, stdout/stderr and exit codes live under ``cache_root/slurm_array``),
and the compute nodes must run the same Python environment (``python``, default: this
interpreter). To resume a cancelled run, submit the same workflow again with the same
``cache_root``: finished jobs are taken from pydra's cache and not resubmitted. Every sbatch command
line is kept in ``worker.sbatch_calls`` and appended to ``cache_root/slurm_array/sbatch_commands.txt``.
"""

from __future__ import annotations

from smgic_pydra.hpc.sbatch_args import SbatchArgsError
from smgic_pydra.hpc.worker import SlurmArrayWorker, SlurmJobError, SlurmSubmitError

__all__ = ["SbatchArgsError", "SlurmArrayWorker", "SlurmJobError", "SlurmSubmitError"]
