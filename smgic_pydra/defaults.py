"""Defaults that several layers share (library dataclasses, Pydra tasks, both command lines), each defined once
(plain data, no heavy import)."""

PAIRS_PER_JOB = 8
"""Pairs per tile job: tiles of ``floor(sqrt(PAIRS_PER_JOB))`` subjects a side."""
RANDOM_SEED = 1
"""Seed of registration (ANTs' sampling, FireANTs) and training; >= 1, since ANTs reads 0 as 'from the clock'."""
CHECKPOINT_EVERY = 500
"""Training steps between checkpoints."""
VALIDATE_EVERY = 1000
"""Training steps between validations (0: only before training and at each stage end)."""
GPU_GRES = "--gres=gpu:1"
"""The SLURM request of a job that runs on a GPU."""
