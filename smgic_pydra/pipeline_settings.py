"""Settings of the ``smgicnet`` method's stages around the network (plain data, no torch import).

Stages: symmetric affine pre-alignment (:mod:`smgic_pydra.affine`), the network, test-time
refinement of the pair's velocity field (:mod:`smgic_pydra.refinement`). The dict form
(:meth:`PipelineSettings.to_dict`) is what plans, tasks and sidecars carry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class RefineSettings:
    """Defaults measured on held-out pairs (2 CPU cores, 128^3 model grid): each step on the 3 mm grid
    costs about 0.5 s; 12 steps keep a 1 mm registration 10x faster than SyNQuick (Dice 0.675 on the
    1 mm pair, 0.684 with 20 steps, 0.594 with none); a 6 mm grid (factor 4) lowered Dice.

    steps: Adam steps (0 = the network alone). factor: the correction's grid is the network grid
    pooled by ``factor``. learning_rate: Adam's, in normalized units per step. window: local NCC
    window (voxels of the pooled grid). smooth_weight: weight of the smoothness of both maps
    (voxel units of the pooled grid). ss_steps: scaling-and-squaring steps on the pooled grid."""

    steps: int = 12
    factor: int = 2
    learning_rate: float = 0.005
    window: int = 5
    smooth_weight: float = 1.0
    ss_steps: int = 5

    def __post_init__(self) -> None:
        if self.steps < 0 or self.factor < 1 or self.window < 1 or self.window % 2 == 0 or self.ss_steps < 1:
            raise ValueError(f"invalid refinement settings {self}")


@dataclass(frozen=True)
class PipelineSettings:
    """affine: run the symmetric affine stage first. refine: :class:`RefineSettings`."""

    affine: bool = True
    refine: RefineSettings = field(default_factory=RefineSettings)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_options(self) -> dict:
        """Flat method options (the method registry's form): ``affine``, ``refine`` (steps) and
        ``refine_<field>`` for the other refinement settings."""
        refine = asdict(self.refine)
        return {"affine": self.affine, "refine": refine.pop("steps"), **{f"refine_{k}": v for k, v in refine.items()}}

    @classmethod
    def from_options(cls, options: dict | None) -> "PipelineSettings":
        """From :meth:`to_options`' form; missing keys take the defaults, unknown ones are a ``ValueError``."""
        options = dict(options or {})
        known = set(cls().to_options())
        if set(options) - known:
            raise ValueError(f"unknown smgicnet option(s) {sorted(set(options) - known)}; known: {sorted(known)}")
        refine = {k.removeprefix("refine_"): v for k, v in options.items() if k.startswith("refine_")}
        if "refine" in options:
            refine["steps"] = int(options["refine"])
        return cls(affine=bool(options.get("affine", True)), refine=RefineSettings(**refine))

    @classmethod
    def from_dict(cls, data: dict | None) -> "PipelineSettings":
        """From :meth:`to_dict`'s form; missing keys take the defaults."""
        data = dict(data or {})
        return cls(affine=bool(data.get("affine", True)), refine=RefineSettings(**(data.get("refine") or {})))
