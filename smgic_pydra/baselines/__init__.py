"""ANTs baselines (SyN, SyNQuick, affine, identity) via antspyx: presets as data and their runner."""

from .ants_registration import METHODS, baseline_pair, baseline_prepared_pair, run_antsregistration
from .presets import PRESETS, antsregistration_arguments, is_large_image

__all__ = [
    "METHODS",
    "PRESETS",
    "antsregistration_arguments",
    "baseline_pair",
    "baseline_prepared_pair",
    "is_large_image",
    "run_antsregistration",
]
