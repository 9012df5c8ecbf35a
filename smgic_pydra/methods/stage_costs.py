"""CPU seconds of the ``smgicnet`` method's stages on the model grid: the ``--plan-only`` time guide's table.

A guide, not a setting: it does not change any result (so it lives apart from
:mod:`smgic_pydra.pipeline_settings`, whose content keys the benchmarks' stored results).
"""

from __future__ import annotations

from ..pipeline_settings import PipelineSettings

STAGE_CPU_SECONDS = {"affine": {True: 4.0, False: 2.0}, "network": {4: 5.45, 3: 0.62}, "refine_step": 0.567,
                     "rest": {"full": 2.4, "half": 1.0}}
"""CPU seconds (one thread, the packaged 128^3 model, the network in bf16) of a pair's stages on the model grid:
medians over the 12 held-out 3 mm pairs of ``benchmarks/results/pair_accuracy_idle_3mm.md`` (an otherwise idle
2-core machine, one process at a time): affine (``True``: with its 3 mm level; ``False``: without it,
``affine_fine=false``, half: 1.59 against 3.13 s on the 12 held-out 2 mm pairs of ``benchmarks/gpu_pipeline.py``),
network (4: the full grid; 3: half the grid, ``smgicnet-fast``),
refinement per step (6.8 s / 12), and the rest of the registration (resampling into the halfway space, field
integration): ``full`` 18.66 - 4.0 - 5.45 - 6.8, ``half`` for the half grid without refinement (its fields
integrated on the half grid: 5.89 - 4.24 - 0.62). The ``--plan-only`` time guide's model-grid part
(:func:`grid_cpu_seconds`)."""


def grid_cpu_seconds(options: dict | None = None, level: int = 4) -> float:
    """CPU seconds (one thread) of a pair's model-grid stages with the smgicnet ``options``
    (:meth:`~smgic_pydra.pipeline_settings.PipelineSettings.from_options`; None: the defaults), the network run up to cascade ``level``
    (4: the full grid, 3: half), from :data:`STAGE_CPU_SECONDS`."""
    settings = PipelineSettings.from_options(options)
    c, steps = STAGE_CPU_SECONDS, settings.refine.steps
    rest = c["rest"]["half" if level == 3 and steps == 0 else "full"]
    affine = c["affine"][settings.affine_fine] if settings.affine else 0.0
    return rest + c["network"][level] + affine + c["refine_step"] * steps


def grid_cost_share(options: dict | None, level: int = 4) -> float:
    """:func:`grid_cpu_seconds` of ``options`` and ``level`` relative to the defaults' (1.0)."""
    return grid_cpu_seconds(options, level) / grid_cpu_seconds()
