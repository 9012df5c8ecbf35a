"""Nipype 1 interfaces (``SimpleInterface``, niworkflows style) over the same functions as the Pydra tasks.

Drop SM-GICNet (or any registry method) into an existing Nipype pipeline: :class:`PrepareSubject`,
:class:`RegisterPair` (:class:`SMGICNetRegistration`, :class:`ANTsBaseline`), :class:`ApplyWarp` and
:class:`PairMetrics`. The warps they write are ITK/ANTs displacement fields, so
``nipype.interfaces.ants.ApplyTransforms`` applies them too (``workflows/nipype_pipeline.py``).
Importing this package needs only core dependencies (nipype, pydra); the rest is imported when a node runs.
"""

from .metrics import PairMetrics
from .preparation import PrepareSubject
from .registration import ANTsBaseline, RegisterPair, SMGICNetRegistration
from .warp import ApplyWarp

__all__ = ["ANTsBaseline", "ApplyWarp", "PairMetrics", "PrepareSubject", "RegisterPair", "SMGICNetRegistration"]
