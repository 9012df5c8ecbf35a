"""SM-GICNet: blocks, level nets 1-4, difference weighting and the symmetric cascade."""

from .outputs import LevelOutput, Registration
from .smgicnet import SMGICNet, count_parameters

__all__ = ["LevelOutput", "Registration", "SMGICNet", "count_parameters"]
