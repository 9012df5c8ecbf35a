"""Pydra 1.0 tasks, one module per step; each is usable on its own (``Task(...)()``) or in a workflow.

Per-step tasks on files (typed with ``fileformats``; images ``.nii`` or ``.nii.gz``):
:func:`BrainMask`, :func:`PrepareSubject`, :func:`SMGICNetRegistration`, :func:`ANTsRegistration`,
:func:`FireANTsRegistration`, :func:`ApplyWarp`, :func:`LabelDice`, :func:`JacobianFolding`,
:func:`InverseConsistency`, :func:`LabelVolumes`. They raise on bad input (one line naming the file).

The cohort engine's: :func:`PrepareCohortSubject`, and :func:`RegisterTile`, which takes a *tile*
of the pair matrix (:mod:`smgic_pydra.tasks.tile`) and returns its summary; it never raises for a
failing pair (errors are data) and skips pairs that are done.
"""

from .apply_warp import ApplyWarp
from .brain_mask import BrainMask
from .evaluation import InverseConsistency, JacobianFolding, LabelDice, LabelVolumes
from .gather import Gather
from .prepare import PrepareCohortSubject, PrepareSubject
from .register import RegisterTile
from .registration import ANTsRegistration, FireANTsRegistration, SMGICNetRegistration
from .reports import WriteReports
from .train import PackageModel, TrainModel

__all__ = ["ANTsRegistration", "ApplyWarp", "BrainMask", "FireANTsRegistration", "Gather", "InverseConsistency",
           "JacobianFolding", "LabelDice", "LabelVolumes", "PackageModel", "PrepareCohortSubject", "PrepareSubject",
           "RegisterTile", "SMGICNetRegistration", "TrainModel", "WriteReports"]
