"""Progressive training of SM-GICNet: schedule, pair sampler, checkpoints and the trainer."""

from .checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint, weights_sha256
from .errors import CheckpointError, TrainingError
from .presets import TrainingPreset, load_preset, preset_names
from .sampler import PairBatch, PairSampler
from .schedule import learning_rate
from .split import Split, split_by_participant
from .trainer import RunOptions, Trainer, TrainPlan, TrainState, resolve_device, seed_everything
from .validation import Validator

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "PairBatch",
    "PairSampler",
    "RunOptions",
    "Split",
    "TrainPlan",
    "TrainState",
    "Trainer",
    "TrainingError",
    "TrainingPreset",
    "Validator",
    "latest_checkpoint",
    "learning_rate",
    "load_checkpoint",
    "load_preset",
    "preset_names",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "split_by_participant",
    "weights_sha256",
]
