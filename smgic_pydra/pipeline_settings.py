"""Settings of the ``smgicnet`` method's stages around the network (plain data, no torch import).

Stages: symmetric affine pre-alignment (:mod:`smgic_pydra.affine`), the network, test-time
refinement of the pair's velocity field (:mod:`smgic_pydra.refinement`). The dict form
(:meth:`PipelineSettings.to_dict`) is what plans, tasks and sidecars carry; the flat option form
(:meth:`PipelineSettings.to_options`, :meth:`PipelineSettings.option_declarations`) is the method
registry's, each option typed and bounded by its field's ``metadata``.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields

from .methods.options import Option

NETWORK_GRIDS = ("auto", "full", "half")
"""Choices of :attr:`PipelineSettings.network_grid` (:mod:`smgic_pydra.inference.network_grid`)."""


def _bounded(default, **bounds):
    """A dataclass field whose option declaration (:class:`~smgic_pydra.methods.options.Option`) has ``bounds``."""
    return field(default=default, metadata={"option": bounds})


@dataclass(frozen=True)
class RefineSettings:
    """Three stages of Adam steps on a correction of the network's velocity: ``pre_steps`` on the 6 mm grid (the
    128^3 model grid pooled by ``2 factor``), ``steps`` on the 3 mm grid (pooled by ``factor``), ``fine_steps`` on
    the 1.5 mm model grid itself; one objective, learning rate and smoothness weight for all three.

    How the defaults were chosen (tuning pairs only, never the benchmark's: 6 ordered pairs of training maps 01-04,
    2 versions, seed 1, and 6 of Colin27 subjects of seed 2, 2 mm, one thread; Dice means over the pairs, CPU
    seconds a pair on a 2-core AVX2 CPU without bf16 units, busy; ``benchmarks/results/refine_stages_tuning_2mm.json``):

    - the main stage alone, 12 steps at learning rate 0.005 (the default before commit 4d50a7e): 0.7094 / 0.8204,
      37 CPU s. Tried earlier and not kept: smoothness 0.5 and NCC windows 3 and 7 (lower on tuning pairs); 36
      steps and learning rate 0.01 (higher on tuning pairs, lower on the held-out maps; 0.01 +0.0038 on the
      benchmark's Colin27 pairs); smoothness 2.0 (pulls the sets apart: Colin27 likes more travel and smoothing,
      different anatomies do not);
    - ``fine_steps``: the 1.5 mm grid is what more time buys: 4 steps 0.7703 / 0.8243 (every pair higher), 8 steps
      0.7722 / 0.8297, at ~8.7x a main step's cost each (62 and 88 CPU s a pair);
    - ``pre_steps``: 8 steps on the 6 mm grid add smooth travel for 0.5-0.7 CPU s: with 4 fine steps 0.7685 / 0.8341
      (-0.0018 on the training maps, 4 of 6 pairs lower; +0.0098 on Colin27, 6 of 6 higher); alone (before the
      fine stage existed in the default) -0.0019 / +0.0099. Adopted for its Colin27 gain at a small cost on
      different anatomies; weighted as the benchmark weighs its tables (12 pairs of maps, 6 of Colin27), +0.002.
    - default: 8 + 12 + 4 steps, of the settings tried the most accurate at well under a tenth of full SyN's CPU
      time on one CPU (this AVX2 CPU, float32, busy: 60-62 CPU s a pair against SyN's 1239-1559 on the benchmark's
      new 2 mm subjects); ``best`` (:data:`QUALITY_PRESETS`) 8 fine steps:
      0.7733 / 0.8382 (89-93 CPU s), where the 6 mm stage gained on both sets (+0.0011 / +0.0085 against 8 fine
      steps without it).
    A 6 mm grid instead of the 3 mm one lowered Dice; the refined field stays unfolded (at most 0.005 % of brain
    voxels on those pairs). The numbers above ran before the coarse stages carried the velocity and their correction
    in the coarse grid's units and voxel centres (:mod:`..transforms.pooling`; before, they saw the velocity 2.4 %
    (6 mm) and 0.8 % (3 mm) short and their corrections landed stretched). With it, the default: 0.7700 / 0.8333
    (5 of 6 training-map pairs higher, 1 of 6 Colin27 pairs), 60-64 CPU s.

    steps: Adam steps of the main stage (0 = the network alone: no stage runs). factor: the main stage's grid is
    the network grid pooled by ``factor``. learning_rate: Adam's, in normalized units per step. window: local NCC
    window (voxels of the stage's grid, odd). smooth_weight: weight of the smoothness of both maps (voxel units of
    the stage's grid). ss_steps: scaling-and-squaring steps on the stage's grid. fine_steps: Adam steps of a last
    correction on the network grid itself (factor 1). pre_steps: Adam steps of a first correction on the grid
    pooled by ``2 factor``."""

    steps: int = _bounded(12, minimum=0)
    factor: int = _bounded(2, minimum=1)
    learning_rate: float = _bounded(0.005, above=0)
    window: int = _bounded(5, minimum=1, odd=True)
    smooth_weight: float = _bounded(1.0, minimum=0)
    ss_steps: int = _bounded(5, minimum=1)
    fine_steps: int = _bounded(4, minimum=0)
    pre_steps: int = _bounded(8, minimum=0)

    def __post_init__(self) -> None:
        for name, option in _declarations(self, "").items():
            option.check(f"refine {name}", getattr(self, name))

    @property
    def stages(self) -> tuple[tuple[str, int, int], ...]:
        """``(record suffix, factor, steps)`` of the stages that run, in order: ``pre_steps`` (pooled by twice
        ``factor``), the main one (suffix ``""``), the fine one (factor 1); none with ``steps`` 0 (the network
        alone), none of 0 steps."""
        if self.steps <= 0:
            return ()
        stages = (("_pre", 2 * self.factor, self.pre_steps), ("", self.factor, self.steps),
                  ("_fine", 1, self.fine_steps))
        return tuple(stage for stage in stages if stage[2] > 0)


@dataclass(frozen=True)
class PipelineSettings:
    """affine: run the symmetric affine stage first. precision: the network forward's, ``auto`` (bfloat16
    autocast on a CPU with AMX / AVX-512 BF16 units, float32 elsewhere), ``bf16`` or ``fp32``
    (:mod:`smgic_pydra.network.precision`; same Dice on the held-out pairs, see the README).
    network_grid: the cascade's last level, ``full`` (level 4, the model's grid), ``half`` (level 3: half the
    grid, twice the voxel size; the network ~8x cheaper) or ``auto`` (half for inputs whose voxels are at
    least level 3's, e.g. 3 mm data with the 1.5 mm model; :mod:`smgic_pydra.inference.network_grid`).
    ``full`` by default: on 6 pairs of training maps at 3 mm, half cost 0.007 Dice (0.707 vs 0.714, with
    12 refinement steps) for a third less CPU time.
    affine_fine: the affine stage's last level on the 3 mm grid (false: only the 6 mm levels,
    :data:`smgic_pydra.affine.symmetric.COARSE_LEVELS`, half the stage's time for a little Dice).
    refine: :class:`RefineSettings`."""

    affine: bool = True
    affine_fine: bool = True
    precision: str = _bounded("auto", choices=("auto", "bf16", "fp32"))
    network_grid: str = _bounded("full", choices=NETWORK_GRIDS)
    refine: RefineSettings = field(default_factory=RefineSettings)

    def __post_init__(self) -> None:
        for name, option in _declarations(self, "").items():
            if name != "refine":
                option.check(name, getattr(self, name))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_options(self) -> dict:
        """Flat method options (the method registry's form): the top-level fields, ``refine`` (steps) and
        ``refine_<field>`` for the other refinement settings."""
        return {key: option.default for key, option in self.option_declarations().items()}

    def option_declarations(self) -> dict[str, Option]:
        """The flat options with this object's values as defaults, typed and bounded as their fields declare."""
        top = {k: v for k, v in _declarations(self, "").items() if k != "refine"}
        refine = _declarations(self.refine, "refine_")
        return {**top, "refine": refine.pop("refine_steps"), **refine}

    @classmethod
    def from_options(cls, options: dict | None) -> "PipelineSettings":
        """From :meth:`to_options`' form; missing keys take the defaults; an unknown key or a value of the
        wrong type or out of bounds is a one-line ``ValueError``."""
        options = dict(options or {})
        declared = cls().option_declarations()
        if set(options) - set(declared):
            raise ValueError(f"unknown smgicnet option(s) {sorted(set(options) - set(declared))}; known: {sorted(declared)}")
        for key, value in options.items():
            declared[key].check(f"smgicnet.{key}", value)
        refine = {k.removeprefix("refine_"): v for k, v in options.items() if k.startswith("refine_")}
        if "refine" in options:
            refine["steps"] = options["refine"]
        top = {k: v for k, v in options.items() if k != "refine" and not k.startswith("refine_")}
        return cls(**top, refine=RefineSettings(**refine))

    @classmethod
    def from_dict(cls, data: dict | None) -> "PipelineSettings":
        """From :meth:`to_dict`'s form; missing keys take the defaults."""
        data = dict(data or {})
        return cls(**{k: v for k, v in data.items() if k != "refine"}, refine=RefineSettings(**(data.get("refine") or {})))


def _declarations(settings, prefix: str) -> dict[str, Option]:
    """``prefix + field name -> Option`` of a settings dataclass, the object's values as defaults."""
    return {prefix + f.name: Option(getattr(settings, f.name), **f.metadata.get("option", {}))
            for f in fields(settings) if f.default is not MISSING or f.default_factory is not MISSING}


QUALITY_PRESETS = {
    "default": {},
    "fast": {"network_grid": "auto", "refine": 0, "affine_fine": False},
    "best": {"refine_fine_steps": 8},
}
"""``--quality`` presets (``default`` first: choice lists, e.g. the Nipype input's, start with it): smgicnet options
beneath any given explicitly (:func:`quality_options`). ``fast``: the network alone after a coarse affine (its 6 mm
levels only), on half the grid for coarse (>= 2.85 mm) inputs. ``best``: the default with 8 steps on the 1.5 mm
grid instead of 4 (about 1.5x the default's CPU time on the model grid), chosen on tuning pairs only
(:class:`RefineSettings`); held-out Dice and seconds of each in the README. More main-stage steps did not
generalise: on the 12 held-out 2 mm pairs of maps 13-15, 36 steps gave 0.708 against 12 steps' 0.710
(``benchmarks/results/pair_accuracy_heldout22_2mm.md`` at commit d95667f)."""


def quality_options(quality: str) -> dict:
    """The smgicnet options of preset ``quality`` (:data:`QUALITY_PRESETS`); an unknown name is a one-line ``ValueError``."""
    if quality not in QUALITY_PRESETS:
        raise ValueError(f"quality must be one of {', '.join(QUALITY_PRESETS)}, got {quality!r}")
    return dict(QUALITY_PRESETS[quality])
