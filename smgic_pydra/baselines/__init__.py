"""ANTs baselines (SyN, SyNQuick, affine, identity) via antspyx: presets as data and their runner."""

from .ants_registration import METHODS, baseline_prepared_pair, register_images, run_antsregistration
from .presets import PRESETS, antsregistration_arguments, is_large_image

__all__ = [
    "METHODS",
    "PRESETS",
    "antsregistration_arguments",
    "baseline_prepared_pair",
    "is_large_image",
    "register_images",
    "run_antsregistration",
]
