"""Evaluation metrics: label Dice, HD95, Jacobian folding, inverse consistency, timing, label tables."""

from .dice import DiceResult, dice_from_files, dice_per_label
from .folding import FoldingStats, folding_stats, folding_stats_from_det, folding_stats_from_file
from .hausdorff import HausdorffResult, hd95_from_files, hd95_per_label
from .inverse_consistency import InverseConsistency, inverse_consistency, inverse_consistency_from_files
from .labels import DEFAULT_LABEL_TABLE, load_label_table
from .timing import peak_cuda_mib, peak_rss_mib, synchronize

__all__ = [
    "DEFAULT_LABEL_TABLE",
    "DiceResult",
    "FoldingStats",
    "HausdorffResult",
    "InverseConsistency",
    "dice_from_files",
    "dice_per_label",
    "folding_stats",
    "folding_stats_from_det",
    "folding_stats_from_file",
    "hd95_from_files",
    "hd95_per_label",
    "inverse_consistency",
    "inverse_consistency_from_files",
    "load_label_table",
    "peak_cuda_mib",
    "peak_rss_mib",
    "synchronize",
]
