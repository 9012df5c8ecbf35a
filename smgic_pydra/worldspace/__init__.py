"""Network-grid fields -> native-grid millimetre fields, resampling and the written outputs of a pair."""

from .mapping import network_disp_to_world
from .outputs import PairOutputPaths, resample_with_displacement, write_pair_outputs
from .sampling import resample

__all__ = [
    "PairOutputPaths",
    "network_disp_to_world",
    "resample",
    "resample_with_displacement",
    "write_pair_outputs",
]
