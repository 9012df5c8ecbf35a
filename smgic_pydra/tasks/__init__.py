"""Pydra 1.0 tasks, one module per step; each is usable on its own in analysis scripts.

:func:`RegisterTile` takes a *tile* of the pair matrix (:mod:`smgic_pydra.tasks.tile`) and returns
its summary; it never raises for a failing pair (errors are data) and skips pairs that are done.
"""

from .gather import Gather
from .prepare import PrepareSubject
from .register import RegisterTile
from .reports import WriteReports
from .train import PackageModel, TrainModel

__all__ = ["Gather", "PackageModel", "PrepareSubject", "RegisterTile", "TrainModel", "WriteReports"]
