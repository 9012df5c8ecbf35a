"""Device names (``cpu``, ``cuda``, ``cuda:N``): their form, checked without torch, and whether such a device
exists on this machine (imports torch); the CPU threads a job uses."""

from __future__ import annotations

import re

DEVICE_NAME = re.compile(r"cpu|cuda(:\d+)?")
"""The accepted device names."""


def device_problem(name: str) -> str:
    """``""`` if ``name`` is a device of this machine, else the one-line reason (bad form, no CUDA, no such GPU)."""
    if not DEVICE_NAME.fullmatch(name):
        return f"device must be cpu, cuda or cuda:N, got {name!r}"
    if name == "cpu":
        return ""
    import torch

    if not torch.cuda.is_available():
        return f"device {name!r} requested but CUDA is not available on this machine"
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
    return ""


def limit_threads(omp_nthreads: int) -> None:
    """torch's intra-op threads (0: leave torch's default)."""
    if omp_nthreads > 0:
        import torch

        torch.set_num_threads(omp_nthreads)
