"""CPU seconds of the ``smgicnet`` method's stages on the model grid: the ``--plan-only`` time guide's table.

A guide, not a setting: it does not change any result (so it lives apart from
:mod:`smgic_pydra.pipeline_settings`, whose content keys the benchmarks' stored results).
"""

from __future__ import annotations

from ..pipeline_settings import PipelineSettings

STAGE_CPU_SECONDS = {
    "bf16": {"affine": {True: 2.6, False: 1.3}, "network": {4: 5.9, 3: 0.74}, "refine_step": 0.508,
             "refine_fine_step": 4.34, "refine_pre_step": 0.060, "rest": {"full": 2.45, "half": 0.96}},
    "fp32": {"affine": {True: 3.6, False: 2.1}, "network": {4: 15.35, 3: 1.91}, "refine_step": 0.785,
             "refine_fine_step": 6.85, "refine_pre_step": 0.093, "rest": {"full": 3.36, "half": 1.47}},
}
"""Network precision -> CPU seconds (one thread, the packaged 128^3 model) of a pair's stages on the model grid.

``bf16``: a CPU with bf16 units (an AVX-512 BF16 EPYC), the network under bf16 autocast: medians over the 12
held-out 3 mm pairs of ``benchmarks/results/pair_accuracy_idle2_3mm.md`` (an otherwise idle 2-core machine,
one process at a time): affine (``True``: with its 3 mm level; ``False``: without it, ``affine_fine=false``,
``smgicnet-fast``), network (4: the full grid; 3: half the grid, ``smgicnet-fast``), refinement per step
(7.01 s / 12; a step of the fine stage on the full grid, ``fine_steps``: 5.3 s, the CPU seconds of
``smgicnet-best`` less ``smgicnet``'s (then without a fine stage) over 8, on the held-out 2 mm pairs of
``benchmarks/results/pair_accuracy_heldout22_2mm.md`` and on its Colin27 pairs alike), and the rest of the
registration (resampling into the halfway space, field integration): ``full`` 17.96 - 2.63 - 5.88 - 7.01,
``half`` for the half grid without refinement (its fields integrated on the half grid: 2.99 - 1.29 - 0.74).

``fp32``: a CPU without bf16 units (an AVX2-only EPYC), everything in float32: the same stages, medians over
the 4 held-out 3 mm pairs of ``benchmarks/results/pair_accuracy_avx2_3mm.md`` (idle, one process at a
time): affine 3.58 / 2.10, network 15.35 / 1.91, refinement 10.82 s / 12, a fine step 8.36 (the CPU seconds
of ``smgicnet-best`` less ``smgicnet``'s over 8, same pairs), rest 33.11 - 3.58 - 15.35 - 10.82 and
5.48 - 2.10 - 1.91. The two CPUs differ in more than the bf16 units (the AVX2 core ran the float32 affine
1.4x slower), so each table is its CPU class's.

Refinement steps since local NCC's box mean runs as 2-D convolutions: the steps measured above times 0.870
(coarse) and 0.819 (fine), the ratios of ``benchmarks/refine_step_speed.py`` after and before that change (four
runs each, alternating, one session, the AVX2 CPU: ``refine_step_speed_avx2_1t_ab.json``), applied to both tables.
A step of the first stage on the 6 mm grid (``pre_steps``): a main step's times 0.119, their ratio in
``refine_step_speed_avx2_1t_pre.json`` (the AVX2 CPU, load average 4-6 on its 2 cores: the ratio, not the seconds).

The ``--plan-only`` time guide's model-grid part (:func:`grid_cpu_seconds`)."""


def grid_cpu_seconds(options: dict | None = None, level: int = 4, table: str | None = None) -> float:
    """CPU seconds (one thread) of a pair's model-grid stages with the smgicnet ``options``
    (:meth:`~smgic_pydra.pipeline_settings.PipelineSettings.from_options`; None: the defaults), the network run up
    to cascade ``level`` (4: the full grid, 3: half), from :data:`STAGE_CPU_SECONDS`' ``table`` (None: the
    precision the options run the network in on this CPU; ``auto``: bf16 where it has bf16 units)."""
    settings = PipelineSettings.from_options(options)
    if table is None:
        from ..network.precision import network_precision  # here: the network package imports torch

        table = network_precision(settings.precision, "cpu")
    c, stages = STAGE_CPU_SECONDS[table], settings.refine.stages
    rest = c["rest"]["half" if level == 3 and not stages else "full"]
    affine = c["affine"][settings.affine_fine] if settings.affine else 0.0
    refine = sum(c[f"refine{suffix}_step"] * steps for suffix, _, steps in stages)
    return rest + c["network"][level] + affine + refine


def grid_cost_share(options: dict | None, level: int = 4) -> float:
    """:func:`grid_cpu_seconds` of ``options`` and ``level`` on this CPU relative to the defaults' on a CPU with
    bf16 units (the registry's ``grid_seconds``; 1.0 for the defaults there)."""
    return grid_cpu_seconds(options, level) / grid_cpu_seconds(table="bf16")
