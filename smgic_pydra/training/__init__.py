"""Progressive training of SM-GICNet: schedule, pair sampler, checkpoints and the trainer."""

from .checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint, weights_sha256
from .errors import CheckpointError, TrainingError
from .sampler import PairBatch, PairSampler
from .schedule import learning_rate
from .trainer import RunOptions, Trainer, TrainPlan, TrainState, resolve_device, seed_everything

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "PairBatch",
    "PairSampler",
    "RunOptions",
    "TrainPlan",
    "TrainState",
    "Trainer",
    "TrainingError",
    "latest_checkpoint",
    "learning_rate",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "weights_sha256",
]
