"""Measured wall-clock times (seconds) and peak memory; nothing here estimates.

``Timer`` times a block with ``time.perf_counter``; on a CUDA device it synchronizes before
starting and before stopping, so queued kernels are counted. ``time_forward`` runs a callable a
number of untimed warm-up times first (CUDA context, cuDNN autotuning, allocator) and then times it.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field


def synchronize(device) -> None:
    """Wait for queued CUDA work on ``device`` (a ``torch.device``, a string like ``"cuda:0"``, or None: no-op)."""
    if device is None or "cuda" not in str(device):
        return
    import torch

    torch.cuda.synchronize(torch.device(device))


@dataclass
class Timer:
    """Context manager: ``with Timer(device) as t: ...``; then ``t.seconds`` (wall time of the block, s)."""

    device: object = None
    seconds: float = float("nan")
    _start: float = field(default=0.0, repr=False)

    def __enter__(self) -> "Timer":
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def time_forward(fn, *args, device=None, warmup: int = 1, repeats: int = 1, **kwargs) -> tuple[object, list[float]]:
    """Call ``fn(*args, **kwargs)`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns the last result and the list of measured seconds (one per timed call).
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    for _ in range(warmup):
        fn(*args, **kwargs)
    seconds, result = [], None
    for _ in range(repeats):
        with Timer(device) as timer:
            result = fn(*args, **kwargs)
        seconds.append(timer.seconds)
    return result, seconds


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
