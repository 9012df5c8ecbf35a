"""Measurement helpers; nothing here estimates: :func:`synchronize` before reading a clock, so queued CUDA
kernels are counted (the stage seconds of :mod:`smgic_pydra.inference`), and peak memory."""

from __future__ import annotations

import resource
import sys


def synchronize(device) -> None:
    """Wait for queued CUDA work on ``device`` (a ``torch.device``, a string like ``"cuda:0"``, or None: no-op)."""
    if device is None or "cuda" not in str(device):
        return
    import torch

    torch.cuda.synchronize(torch.device(device))


def peak_rss_mib() -> float:
    """Peak resident memory so far, MiB: the largest of this process and of its finished child processes
    (``getrusage`` ``ru_maxrss``; ANTs baselines run antsRegistration in a child process)."""
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


def peak_cuda_mib(device) -> float | None:
    """Peak CUDA memory allocated by torch on ``device`` since the last reset, MiB; None off CUDA."""
    if device is None or "cuda" not in str(device):
        return None
    import torch

    return torch.cuda.max_memory_allocated(torch.device(device)) / (1024.0 * 1024.0)
