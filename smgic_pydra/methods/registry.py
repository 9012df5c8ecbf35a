"""The one list of registration methods: name, how each runs, what it needs, its CLI help and report label.

Everything that lists methods reads :data:`METHODS`: the ``--method`` choices and help of
``smgic-bids``, the cohort workflow (one node per :attr:`RegistrationMethod.node`), the SLURM
resources (``--gres=gpu:1`` for every node with a GPU method when ``--device`` is CUDA), the
pair-accuracy benchmark and the report tables.

Adding a method is one module (``smgic_pydra/methods/<name>.py`` with a ``make_runner(context,
name)`` returning ``run(fixed, moving, sidecar_extra) -> RegisteredPair``, usually through
:func:`smgic_pydra.methods.native.register_native`) plus one :class:`RegistrationMethod`
entry below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

from ..pipeline_settings import PipelineSettings
from ..defaults import GPU_GRES
from .options import Option
from .stage_costs import grid_cost_share, grid_cpu_seconds


@dataclass(frozen=True)
class MethodContext:
    """What a method's runner gets from the run: the CLI / settings object's values for it.

    model: SM-GICNet model folder (``""``: the packaged one); model_sha256: its weights' expected
    SHA-256 (``""``: the folder's record). device: ``cpu``, ``cuda`` or
    ``cuda:N`` (ignored by CPU-only methods). threads: threads per job (``--omp-nthreads``).
    seed: random seed (ANTs sampling, FireANTs' torch seed). options: the method's own options
    (its :attr:`RegistrationMethod.options` updated by the user's), recorded in each sidecar.
    """

    model: str = ""
    model_sha256: str = ""
    device: str = "cpu"
    threads: int = 1
    seed: int = 1
    options: Mapping = field(default_factory=dict)


Runner = Callable[..., object]
"""``run(fixed: PreparedSubject, moving: PreparedSubject, sidecar_extra: dict) -> RegisteredPair``
(:class:`~smgic_pydra.worldspace.registered.RegisteredPair`: the fields in memory; the tile job
writes and evaluates them); ``sidecar_extra`` (the content key and input hashes) goes into the sidecar."""


@dataclass(frozen=True)
class RegistrationMethod:
    """One registration method.

    name: ``--method`` value, BIDS ``desc-`` label and report key. label: the report's name for
    it. help: one line for the CLI. runner: ``"module:function"``, a ``make_runner(MethodContext,
    name) -> Runner`` imported only when the method runs (optional dependencies stay optional).
    node: the workflow node that runs it (its pydra job name and SLURM resources key; methods with
    the same node share one node, split over methods). gpu: ``"no"`` (CPU only), ``"optional"``
    (runs on ``--device``, fast on a CPU too) or ``"preferred"`` (runs on ``--device``, slow on a
    CPU). threads: whether it uses ``--omp-nthreads`` threads. memory_gib: peak memory of one 1 mm
    pair (GiB; the plan's guide for ``--mem``): the largest resident set of the 1 mm pairs of
    ``benchmarks/pair_accuracy.py`` (``results/pair_accuracy_*_1mm.json``, registration and writing in a fresh
    process: identity 1.95, synquick 5.35, smgicnet 2.86 without the 1.5 mm refinement stage and 3.51 with
    it, as the default since commit 4d50a7e), rounded up; syn: synquick's times the two's ratio at 2 mm (1482 / 977
    MiB); fireants: its CPU run at 1 mm (``pair_accuracy_avx2_1mm.json``); affine: estimated. cpu_seconds: seconds
    of one 1 mm pair end to end (registration and every output) on the 2-core CI CPU, a guide for
    ``--plan-only``: smgicnet: its ``grid_seconds`` plus the native-grid part of the 1 mm pairs of
    ``results/pair_accuracy_idle2_1mm.md`` (CPU seconds minus registration seconds, means over its 12 pairs:
    34.7 - 16.8); syn and synquick: the median over the pairs of a benchmark of each pair's CPU seconds scaled
    to a fixed image of :data:`~smgic_pydra.workflows.plan_summary.REFERENCE_VOXELS` (synquick: 163 s on the 12
    idle 1 mm pairs of ``results/pair_accuracy_idle2_1mm.md``, 176 s on the 2 mm pairs of
    ``results/pair_accuracy_heldout22_2mm.md``; syn: 3630 s on those 2 mm pairs); fireants (its CPU run, one
    thread): 1246 s, its 1 mm pair of ``results/pair_accuracy_avx2_1mm.md`` (2931 s on 17.0 M voxels); its cost
    grows faster than its voxels, so the guide is about 3x high for 2 mm pairs (414 s scaled on the 2 mm
    pairs above); scaled from the 3 mm peers benchmark for affine. grid_seconds: the part of
    ``cpu_seconds`` that does not grow with the images' voxels (``--plan-only`` scales only the rest by
    the fixed image's voxels): smgicnet's affine, network and refinement run on the model's grid,
    whatever the images (CPU seconds with one thread and the default options on a CPU with bf16 units, the
    network in bfloat16, on the packaged model's 128^3 grid: :func:`smgic_pydra.methods.stage_costs.grid_cpu_seconds`,
    from its stage table; scaled by the grid's voxels for another model); affine: ANTs' per-pair floor, the fit through its 3 mm pair (28 CPU s, wall seconds times the
    run's CPU share in ``time_guide_3mm_fp32.json``) and its 1 mm ``cpu_seconds``; 0 (all per voxel) for
    the others. grid_share: ``(options, level) -> float``, the share of ``grid_seconds`` a pair costs with the
    method's merged options and the network run up to cascade ``level`` (4 full, 3 half) on this CPU (smgicnet:
    :func:`smgic_pydra.methods.stage_costs.grid_cost_share`, about 1.7 for the defaults on a CPU without bf16
    units), or None (always all of it).
    extra: the pip extra that installs it (None: core).
    options: default method options (override per run; recorded in the sidecar). selectable:
    False for ``identity`` (always reported, not a ``--method`` choice). uses_model: it reads the
    SM-GICNet model (its weights hash goes into ``dataset_description.json``). writes_outputs: False for
    ``identity`` (a baseline, not a transform anyone applies: only its metrics rows, no file under any
    ``--outputs``).
    """

    name: str
    label: str
    help: str
    runner: str
    node: str
    gpu: str = "no"
    threads: bool = True
    memory_gib: float = 1.0
    cpu_seconds: float = 60.0
    grid_seconds: float = 0.0
    grid_share: Callable[[dict, int], float] | None = None
    extra: str | None = None
    options: Mapping[str, Option] = field(default_factory=dict)
    check: Callable[[dict], object] | None = None
    selectable: bool = True
    uses_model: bool = False
    writes_outputs: bool = True

    def __post_init__(self) -> None:
        if self.gpu not in ("no", "optional", "preferred"):
            raise ValueError(f"{self.name}: gpu must be 'no', 'optional' or 'preferred', got {self.gpu!r}")
        typed = {key: value if isinstance(value, Option) else Option(value) for key, value in self.options.items()}
        object.__setattr__(self, "options", MappingProxyType(typed))

    @property
    def uses_gpu(self) -> bool:
        """Runs on ``--device`` (so a CUDA run asks SLURM for a GPU for its node)."""
        return self.gpu != "no"

    def make_runner(self, context: MethodContext) -> Runner:
        """The method's pair runner for ``context`` (imports the method's module now)."""
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(module), function)(context, self.name)

    @property
    def defaults(self) -> dict:
        """``key -> default`` of the method's options."""
        return {key: option.default for key, option in self.options.items()}

    def merged_options(self, overrides: Mapping | None) -> dict:
        """Default options updated by ``overrides``; an unknown key, or a value of the wrong JSON type or out
        of its option's bounds, is a one-line ``ValueError``."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.options))
        if unknown:
            raise ValueError(f"method {self.name}: unknown option(s) {unknown}; known: {sorted(self.options) or 'none'}")
        merged = {**self.defaults, **{key: self.options[key].check(f"{self.name}.{key}", value)
                                      for key, value in overrides.items()}}
        if self.check is not None:
            self.check(merged)
        return merged

    def keyed_options(self, overrides: Mapping | None, device: str) -> dict:
        """:meth:`merged_options` as content keys hold them: a model method's ``precision`` as what runs on
        ``device`` on this machine (``auto``: bf16 or fp32 by device and CPU,
        :func:`~smgic_pydra.network.precision.device_precision`). A cohort's tile jobs key their pairs with what
        runs on their node (:func:`~smgic_pydra.tasks.register.RegisterTile`), the plan with what runs on the
        planning machine."""
        merged = self.merged_options(overrides)
        if self.uses_model:
            from ..network.precision import device_precision

            merged["precision"] = device_precision(merged["precision"], device)
        return merged


def _check_fireants(options: dict) -> None:
    """FireANTs runs one affine and one greedy level per scale: the three lists have the same length."""
    lengths = {key: len(options[key]) for key in ("scales", "affine_iterations", "greedy_iterations")}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"fireants options scales, affine_iterations and greedy_iterations need one value per "
                         f"scale, got lengths {lengths}")


_FIREANTS_OPTIONS = {
    "scales": Option([4, 2, 1], "downsampling factor of each level", minimum=1),
    "affine_iterations": Option([200, 100, 50], "Adam steps of the affine stage per scale", minimum=0),
    "greedy_iterations": Option([200, 100, 50], "Adam steps of the greedy stage per scale", minimum=0),
    "cc_kernel_size": Option(5, "local CC window (voxels)", minimum=1, odd=True),
    "smooth_grad_sigma": Option(1.0, "gradient smoothing (voxels)", minimum=0),
    "smooth_warp_sigma": Option(0.25, "warp smoothing (voxels)", minimum=0),
    "greedy_lr": Option(0.5, "greedy stage learning rate", above=0),
    "affine_lr": Option(3e-3, "affine stage learning rate", above=0),
    "intensity_scale": Option(1000.0, "brain intensities given to FireANTs are scaled so that their 99th percentile "
                              "is this (its CC adds 1e-5 to numerator and denominator: at a 0-1 scale a window "
                              "where one image is constant scores ~1, and the affine pushes the brain out of view)",
                              above=0),
}

_ANTS = "smgic_pydra.methods.ants:make_runner"
_SMGICNET_GRID = grid_cpu_seconds(table="bf16")  # the defaults' grid part on a CPU with bf16 units
_ANTS_NOTE = "ANTs 2.5 via antspyx, the script's stages and defaults"

METHODS: dict[str, RegistrationMethod] = {m.name: m for m in (
    RegistrationMethod(
        "smgicnet", "SM-GICNet",
        "SM-GICNet: symmetric affine, the network, test-time refinement (--refine, --no-affine; CPU or --device cuda)",
        "smgic_pydra.methods.smgicnet:make_runner", node="register", gpu="optional", memory_gib=3.6,
        cpu_seconds=_SMGICNET_GRID + 17.9, grid_seconds=_SMGICNET_GRID, grid_share=grid_cost_share,
        uses_model=True, options=PipelineSettings().option_declarations(), check=PipelineSettings.from_options),
    RegistrationMethod("syn", "ANTs SyN", f"antsRegistrationSyN.sh -t s ({_ANTS_NOTE})", _ANTS, node="baseline",
                       memory_gib=8.2, cpu_seconds=3630.0, extra="ants"),
    RegistrationMethod("synquick", "ANTs SyNQuick", f"antsRegistrationSyNQuick.sh -t s ({_ANTS_NOTE})", _ANTS,
                       node="baseline", memory_gib=5.4, cpu_seconds=163.0, extra="ants"),
    RegistrationMethod("affine", "ANTs affine", f"antsRegistrationSyN.sh -t a, rigid + affine ({_ANTS_NOTE})", _ANTS,
                       node="baseline", memory_gib=2.5, cpu_seconds=80.0, grid_seconds=23.1, extra="ants"),
    RegistrationMethod(
        "fireants", "FireANTs", "FireANTs moments -> affine -> greedy diffeomorphic (PyTorch; best with --device cuda)",
        "smgic_pydra.methods.fireants:make_runner", node="register_fireants", gpu="preferred", memory_gib=4.1,
        cpu_seconds=1246.0,
        extra="fireants", options=_FIREANTS_OPTIONS, check=_check_fireants),
    RegistrationMethod("identity", "identity", "no registration: zero displacement fields (always reported)", _ANTS,
                       node="baseline", threads=False, memory_gib=2.0, cpu_seconds=15.0,
                       selectable=False, writes_outputs=False),
)}
"""name -> method, in the order the CLI lists them."""


def get_method(name: str) -> RegistrationMethod:
    """The method called ``name``; an unknown name is a one-line ``ValueError`` listing the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {','.join(METHODS)}") from None


def selectable_methods() -> tuple[str, ...]:
    """The ``--method`` choices (every method but ``identity``)."""
    return tuple(name for name, m in METHODS.items() if m.selectable)


def report_label(name: str) -> str:
    """The report label of method ``name`` (the name itself for a method not in the registry)."""
    return METHODS[name].label if name in METHODS else name


def gpu_resources(device: str, gres: str = GPU_GRES) -> dict[str, str]:
    """SLURM resources by workflow node: ``gres`` for every node running a GPU method when ``device`` is CUDA."""
    if not device.startswith("cuda"):
        return {}
    return {m.node: gres for m in METHODS.values() if m.uses_gpu}
