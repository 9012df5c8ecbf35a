"""Pydra 1.0 tasks, one module per step; each is usable on its own in analysis scripts.

Chunk tasks take *pair specs* and return *rows* (see :mod:`smgic_pydra.tasks.rows`); they never
raise for a failing pair (errors are data) and skip pairs whose outputs are already complete.
"""

from .evaluate import EvaluateChunk
from .gather import Gather
from .prepare import PrepareSubject
from .register import BaselineChunk, RegisterChunk
from .reports import WriteReports
from .train import PackageModel, TrainModel

__all__ = ["BaselineChunk", "EvaluateChunk", "Gather", "PackageModel", "PrepareSubject", "RegisterChunk", "TrainModel",
           "WriteReports"]
