"""The network forward's precision: bfloat16 autocast on CPUs with bf16 units, float32 elsewhere.

``auto`` (the default of the ``smgicnet.precision`` option) runs the forward under
``torch.autocast("cpu", dtype=torch.bfloat16)`` when the CPU has AMX or AVX-512 BF16 units (Linux
``/proc/cpuinfo`` flags ``amx_bf16`` / ``avx512_bf16``: Intel Sapphire Rapids and later, AMD Zen 4
and later), and in float32 on other CPUs and on CUDA. ``bf16`` forces autocast on any device (on a CPU
without the units with a warning: a 32-channel 3x3x3 convolution at 32^3 took 6.3 s instead of 0.03 s in
float32 on an AVX2 core, so the 128^3 forward would take most of an hour; on CUDA see
``benchmarks/results/gpu_pipeline_cuda.json``), ``fp32`` turns it off. The velocity leaves the network in
float32 either way; the affine stage, the refinement and the field integration run in float32.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path

PRECISIONS = ("auto", "bf16", "fp32")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's bf16 feature flags among :data:`BF16_FLAGS` (empty where unknown: not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    flags = set(line.partition(":")[2].split())
    return tuple(f for f in BF16_FLAGS if f in flags)


def network_precision(setting: str, device_type: str) -> str:
    """``"bf16"`` or ``"fp32"``: what the forward runs in for ``setting`` (:data:`PRECISIONS`) on ``device_type``."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {setting!r}")
    if setting != "auto":
        return setting
    return "bf16" if device_type == "cpu" and cpu_bf16_flags() else "fp32"


def device_precision(setting: str, device: str) -> str:
    """:func:`network_precision` on the device named ``device`` (``cpu``, ``cuda``, ``cuda:N``), from this machine."""
    return network_precision(setting, device.partition(":")[0])


def forward_context(precision: str, device_type: str):
    """The autocast context of ``precision`` (``bf16``: autocast to bfloat16 on ``device_type``; ``fp32``: none)."""
    if precision != "bf16":
        return nullcontext()
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16)


def precision_record(setting: str, device_type: str) -> dict:
    """The sidecar's record: the setting, what ran and the CPU's bf16 flags (a ``RuntimeWarning`` where bf16 is
    forced on a CPU without bf16 units)."""
    network, flags = network_precision(setting, device_type), list(cpu_bf16_flags())
    if network == "bf16" and device_type == "cpu" and not flags:
        warnings.warn("smgicnet.precision=bf16 on a CPU without bf16 units (no amx_bf16 / avx512_bf16): the "
                      "network's convolutions run about 200x slower than in float32; use auto or fp32",
                      RuntimeWarning, stacklevel=2)
    return {"setting": setting, "network": network, "cpu_bf16_flags": flags}
