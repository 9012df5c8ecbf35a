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
    """Defaults measured on held-out pairs (2 CPU cores, 128^3 model grid): each step on the 3 mm grid
    costs about 0.5 s; 12 steps keep a 1 mm registration 10x faster than SyNQuick (Dice 0.675 on the
    1 mm pair, 0.684 with 20 steps, 0.594 with none); a 6 mm grid (factor 4) lowered Dice.
    Learning rate 0.01 was chosen on tuning pairs (6 pairs of training maps 01-04 and 6 of Colin27 subjects of
    seed 2, 2 mm: Dice 0.7133 / 0.8344 against 0.7121 / 0.8300; 0.015 and 8 steps at 0.01 were lower) but did
    not generalise: on the 12 held-out 2 mm pairs of maps 13-15 it gave -0.0024 (worst pair -0.0077), on the
    benchmark's Colin27 pairs +0.0038; 24 steps at 0.01 gave -0.0014 and +0.0082 (still below full SyN on 5 of
    the 6 Colin27 pairs). So 0.005 and 12 steps stay. The smoothness weight pulls the two tuning sets apart: 0.5
    gave -0.0032 (training maps) / -0.0086 (Colin27), 2.0 gave -0.0113 / +0.0051 (every Colin27 pair higher, 4 of 6
    training-map pairs lower, down to -0.019), so 1.0 stays; a local NCC window of 3 was lower on Colin27 (0.820
    against 0.826 on its first 2 pairs).
    A second stage on the network grid itself (``fine_steps``, 1.5 mm) is what more time buys: on the same tuning
    pairs 4 fine steps gave +0.055 / +0.004 (every pair higher; 0.767 / 0.834), 8 gave +0.059 / +0.009 (every pair
    higher; 0.771 / 0.839; folding at most 0.005 %), at ~10x a coarse step's cost each; the ``best`` preset
    (:data:`QUALITY_PRESETS`).

    steps: Adam steps (0 = the network alone). factor: the correction's grid is the network grid
    pooled by ``factor``. learning_rate: Adam's, in normalized units per step. window: local NCC
    window (voxels of the pooled grid, odd). smooth_weight: weight of the smoothness of both maps
    (voxel units of the pooled grid). ss_steps: scaling-and-squaring steps on the pooled grid. fine_steps: Adam
    steps of a second correction on the network grid itself (factor 1), after the ``steps`` coarse ones (which it
    needs: ``steps`` 0 is the network alone)."""

    steps: int = _bounded(12, minimum=0)
    factor: int = _bounded(2, minimum=1)
    learning_rate: float = _bounded(0.005, above=0)
    window: int = _bounded(5, minimum=1, odd=True)
    smooth_weight: float = _bounded(1.0, minimum=0)
    ss_steps: int = _bounded(5, minimum=1)
    fine_steps: int = _bounded(0, minimum=0)

    def __post_init__(self) -> None:
        for name, option in _declarations(self, "").items():
            option.check(f"refine {name}", getattr(self, name))

    @property
    def fine_steps_run(self) -> int:
        """The fine steps that run: none without coarse ones (``steps`` 0 is the network alone)."""
        return self.fine_steps if self.steps > 0 else 0


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
levels only), on half the grid for coarse (>= 2.85 mm) inputs. ``best``: the default, then 8 refinement steps on the
network grid itself (:class:`RefineSettings` ``fine_steps``; about 3x the default's CPU time on the model grid),
chosen on tuning pairs only (training maps 01-04, Colin27 subjects of seed 2; :class:`RefineSettings`), its
held-out Dice and seconds in the README. More coarse steps did not generalise: on 6 pairs of training maps 01-04
at 2 mm (Dice / CPU s a pair, one thread) 12 steps gave 0.711 / 29, 24 steps 0.713 / 34, 36 steps 0.716 / 46 (a
window of 7, 0.712, and half the smoothness weight, more folding, did not help); on the 12 held-out pairs of maps
13-15, 36 steps gave 0.708 against 12 steps' 0.710 (``benchmarks/results/pair_accuracy_heldout22_2mm.md`` at
commit d95667f, row ``smgicnet-best``, then 36 coarse steps)."""


def quality_options(quality: str) -> dict:
    """The smgicnet options of preset ``quality`` (:data:`QUALITY_PRESETS`); an unknown name is a one-line ``ValueError``."""
    if quality not in QUALITY_PRESETS:
        raise ValueError(f"quality must be one of {', '.join(QUALITY_PRESETS)}, got {quality!r}")
    return dict(QUALITY_PRESETS[quality])
