"""Progressive training of SM-GICNet: schedule, pair sampler, checkpoints and the trainer."""

from .._lazy import lazy_exports

_EXPORTS = {
    "Checkpoint": ".checkpoint",
    "latest_checkpoint": ".checkpoint",
    "load_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "weights_sha256": ".checkpoint",
    "CheckpointError": ".errors",
    "TrainingError": ".errors",
    "TrainingPreset": ".presets",
    "load_preset": ".presets",
    "preset_names": ".presets",
    "PairBatch": ".sampler",
    "PairSampler": ".sampler",
    "learning_rate": ".schedule",
    "Split": ".split",
    "split_by_participant": ".split",
    "RunOptions": ".trainer",
    "Trainer": ".trainer",
    "TrainPlan": ".trainer",
    "TrainState": ".trainer",
    "resolve_device": ".trainer",
    "seed_everything": ".trainer",
    "Validator": ".validation",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
