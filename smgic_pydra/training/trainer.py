"""Progressive four-stage training of SM-GICNet.

Stage ``k`` trains levels ``1..k`` with :func:`~smgic_pydra.losses.stage_loss`; for ``k > 1`` the
levels ``1..k-1`` are frozen for ``cfg.freeze_steps`` steps, then trained jointly. Each stage starts
a fresh Adam over every parameter of the model; frozen and unused parameters have
``requires_grad=False``, get no gradient and are skipped by Adam, so every trainable parameter
(including the new level's) is always stepped.

Outputs in ``out_dir``: ``checkpoints/`` (see :mod:`.checkpoint`), ``training_log.csv`` (one row
of weighted loss terms per step) and, with a :class:`~.validation.Validator`, ``validation_log.csv``
(validation loss and Dice before training, every ``validate_every`` steps and at each stage end).
"""

from __future__ import annotations

import csv
import random
import re
import shutil
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..augmentation import AugmentOptions
from ..config import N_LEVELS, SMGICNetConfig
from ..inference.model_io import CPU_MEMORY_FORMAT
from ..io import atomic_path
from ..losses import TERMS, stage_loss
from ..network import SMGICNet
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ..defaults import CHECKPOINT_EVERY, VALIDATE_EVERY
from ..devices import device_problem
from .errors import TrainingError
from .sampler import PairSampler
from .schedule import learning_rate
from .validation import VALIDATION_COLUMNS, Validator

CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "training_log.csv"
VALIDATION_LOG_FILE = "validation_log.csv"
CHECKPOINT_NAME = re.compile(r"stage(\d)-step(\d{7,})")
LOG_COLUMNS = ("global_step", "stage", "step", "lr", "frozen", "total", *TERMS, "seconds")
RUNNING_DECAY = 0.98
"""Exponential moving average factor of the running loss shown in the progress bar."""


@dataclass
class TrainPlan:
    """What a run trains; recorded in every checkpoint and fixed on resume."""

    seed: int = 0
    first_stage: int = 1
    last_stage: int = N_LEVELS
    iterations: tuple[int, ...] | None = None
    """Steps per stage 1..4; None uses ``cfg.stage_iterations``."""
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    """Random perturbations of each training image (none by default)."""

    @classmethod
    def from_dict(cls, data: dict) -> "TrainPlan":
        """Inverse of ``dataclasses.asdict`` (as saved in checkpoints)."""
        iterations = data.get("iterations")
        return cls(**{**data, "iterations": None if iterations is None else tuple(iterations),
                      "augment": AugmentOptions.from_dict(data.get("augment", {}))})

    def validate(self) -> None:
        if not 1 <= self.first_stage <= self.last_stage <= N_LEVELS:
            raise TrainingError(
                f"stages must satisfy 1 <= first <= last <= {N_LEVELS}, got {self.first_stage}-{self.last_stage}"
            )
        if self.iterations is not None and (len(self.iterations) != N_LEVELS or min(self.iterations) < 0):
            raise TrainingError(f"iterations need {N_LEVELS} non-negative values (stages 1..4), got {self.iterations}")


@dataclass
class RunOptions:
    """How this process runs (may change between a run and its resumption)."""

    device: str = "cpu"
    precision: str = "fp32"
    """``fp32``, or ``bf16`` / ``fp16`` autocast (CUDA only; fp16 with a gradient scaler)."""
    checkpoint_every: int = CHECKPOINT_EVERY
    validate_every: int = VALIDATE_EVERY
    """Steps between validations (0: only before training and at each stage end)."""
    keep_last: int = 3
    """Mid-stage checkpoints kept (older ones are deleted); stage-end checkpoints are always kept."""
    progress: bool = True


@dataclass
class TrainState:
    """Progress: ``step`` steps of ``stage`` are done; ``global_step`` counts all stages."""

    stage: int = 1
    step: int = 0
    global_step: int = 0
    running_loss: float | None = None


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a device that exists here."""
    problem = device_problem(name)
    if problem:
        raise TrainingError(problem)
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _global_rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_rest": list(np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_global_rng_state(state: dict) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), *state["numpy_rest"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Trains :class:`SMGICNet` on in-memory subjects ``(image, labels or None)`` on the network grid.

    Use ``Trainer(cfg, items, out_dir, plan, options).run()`` for a new run and
    ``Trainer.resume(out_dir, items, options).run()`` to continue one exactly. ``init_weights``
    (a ``state_dict``, e.g. a previous run's checkpoint) starts a new run from trained levels, e.g.
    ``first_stage=4`` after a run of stages 1-3. ``validator`` (optional) evaluates held-out pairs
    into ``validation_log.csv``; it never changes what is trained.
    """

    def __init__(
        self,
        cfg: SMGICNetConfig,
        items: Sequence[tuple[torch.Tensor, torch.Tensor | None]],
        out_dir: str | Path,
        plan: TrainPlan | None = None,
        options: RunOptions | None = None,
        init_weights: dict[str, torch.Tensor] | None = None,
        validator: Validator | None = None,
    ):
        self.cfg = cfg
        self.validator = validator
        self.plan = plan or TrainPlan()
        self.plan.validate()
        self.options = options or RunOptions()
        self.out_dir = Path(out_dir)
        self.device = resolve_device(self.options.device)
        if self.options.precision not in ("fp32", "bf16", "fp16"):
            raise TrainingError(f"precision must be fp32, bf16 or fp16, got {self.options.precision!r}")
        if self.options.precision != "fp32" and self.device.type != "cuda":
            raise TrainingError(f"mixed precision {self.options.precision} needs a CUDA device, got {self.device}")
        for name in ("checkpoint_every", "keep_last"):
            if getattr(self.options, name) < 1:
                raise TrainingError(f"{name} must be >= 1, got {getattr(self.options, name)}")
        if self.options.validate_every < 0:
            raise TrainingError(f"validate_every must be >= 0, got {self.options.validate_every}")
        shape = tuple(torch.as_tensor(items[0][0]).shape[-3:]) if len(items) else tuple(cfg.grid_shape)
        if shape != tuple(cfg.grid_shape):
            raise TrainingError(f"images are {shape}, but the network grid is {tuple(cfg.grid_shape)}")

        seed_everything(self.plan.seed)
        self.model = SMGICNet(cfg).to(self.device)
        if self.device.type == "cpu":
            self.model.to(memory_format=CPU_MEMORY_FORMAT)
        if init_weights is not None:
            try:
                self.model.load_state_dict(init_weights)
            except RuntimeError as err:
                raise TrainingError(f"initial weights do not fit this network: {str(err).splitlines()[0]}") from None
        self.sampler = PairSampler(items, cfg.batch_size, seed=self.plan.seed, augment=self.plan.augment)
        self.loss_generator = torch.Generator(device=self.device).manual_seed(self.plan.seed + 1)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.options.precision == "fp16")
        self.state = TrainState(stage=self.plan.first_stage)
        self.optimizer: torch.optim.Optimizer | None = None
        self.history: list[dict] = []
        """Log rows of the steps run by this object."""
        self._validated_at: int | None = None
        """Global step of the newest validation row on disk."""
        self._level_of = {
            id(p): level for level in range(1, N_LEVELS + 1) for p in self.model.level_modules(level).parameters()
        }

    # ------------------------------------------------------------------------------------ resume
    @classmethod
    def resume(
        cls,
        out_dir: str | Path,
        items: Sequence[tuple[torch.Tensor, torch.Tensor | None]],
        options: RunOptions | None = None,
        validator: Validator | None = None,
    ) -> "Trainer":
        """A trainer continuing exactly from the latest checkpoint in ``out_dir`` (config and plan
        from the checkpoint; ``options`` and ``validator`` only change how this process runs)."""
        root = Path(out_dir) / CHECKPOINT_DIR
        path = latest_checkpoint(root)
        if path is None:
            raise TrainingError(f"{out_dir}: no checkpoint to resume from ({root / 'latest'} missing)")
        ckpt = load_checkpoint(path)
        plan = TrainPlan.from_dict(ckpt.state["plan"])
        trainer = cls(ckpt.config, items, out_dir, plan, options, validator=validator)
        trainer.model.load_state_dict(ckpt.weights)
        trainer.state = TrainState(**ckpt.state["progress"])
        if trainer.state.stage <= plan.last_stage:
            trainer._new_optimizer()
            if ckpt.optimizer is not None:
                trainer.optimizer.load_state_dict(ckpt.optimizer["optimizer"])
                trainer.scaler.load_state_dict(ckpt.optimizer["scaler"])
        if ckpt.rng is not None:
            trainer.sampler.load_state_dict({"generator": ckpt.rng["sampler"]})
            trainer.loss_generator.set_state(ckpt.rng["loss"])
            _set_global_rng_state(ckpt.rng["global"])
        trainer._truncate_logs(trainer.state.global_step)
        return trainer

    # ---------------------------------------------------------------------------------- training
    def budget(self, stage: int) -> int:
        """Steps of ``stage``."""
        return int((self.plan.iterations or self.cfg.stage_iterations)[stage - 1])

    def frozen(self, stage: int, step: int) -> bool:
        """Whether levels ``1..stage-1`` are frozen at ``step`` of ``stage``."""
        return stage > 1 and step < self.cfg.freeze_steps

    def run(self, max_steps: int | None = None) -> list[dict]:
        """Train until the plan is done, or for at most ``max_steps`` more steps (then checkpoint).

        Returns the log rows of the steps run by this call.
        """
        fresh = self.state.global_step == 0 and self.state.step == 0
        if fresh and latest_checkpoint(self.out_dir / CHECKPOINT_DIR):
            raise TrainingError(f"{self.out_dir}: already holds a training run; resume it or choose another folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            self._truncate_logs(-1)  # logs left by a run that never checkpointed
            self._validate()
        first_row = len(self.history)
        done = 0
        with open(self.out_dir / LOG_FILE, "a", newline="") as log_file:
            log = csv.DictWriter(log_file, fieldnames=LOG_COLUMNS)
            if log_file.tell() == 0:
                log.writeheader()
            while self.state.stage <= self.plan.last_stage:
                stage, budget = self.state.stage, self.budget(self.state.stage)
                if self.optimizer is None:
                    self._new_optimizer()
                bar = tqdm(
                    total=budget, initial=self.state.step, desc=f"stage {stage}", disable=not self.options.progress
                )
                with bar:
                    while self.state.step < budget:
                        if max_steps is not None and done >= max_steps:
                            self.save()
                            return self.history[first_row:]
                        row = self._train_step()
                        log.writerow(row)
                        log_file.flush()
                        self.history.append(row)
                        done += 1
                        bar.update(1)
                        bar.set_postfix(loss=f"{self.state.running_loss:.4f}")
                        every = self.options.validate_every
                        if every and self.state.global_step % every == 0 and self.state.step < budget:
                            self._validate()
                        if self.state.global_step % self.options.checkpoint_every == 0 and self.state.step < budget:
                            self.save()
                self._validate()
                self.save()  # end of stage: step == budget
                self.state = TrainState(
                    stage=stage + 1, global_step=self.state.global_step, running_loss=self.state.running_loss
                )
                self.optimizer = None
        return self.history[first_row:]

    def _validate(self) -> None:
        """Append a validation row for the current step (once per global step; nothing without a validator)."""
        if self.validator is None or self._validated_at == self.state.global_step:
            return
        result = self.validator.evaluate(self.model, self.state.stage, self.device, self._autocast)
        row = {"global_step": self.state.global_step, "stage": self.state.stage, "step": self.state.step, **result}
        path = self.out_dir / VALIDATION_LOG_FILE
        new = not path.is_file() or path.stat().st_size == 0
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=VALIDATION_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        self._validated_at = self.state.global_step

    def _new_optimizer(self) -> None:
        """Fresh Adam over every model parameter (and a fresh gradient scaler), at each stage start."""
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.learning_rate)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.options.precision == "fp16")

    def _set_trainable(self, stage: int, frozen: bool) -> None:
        """``requires_grad`` on levels ``1..stage`` (only ``stage`` while frozen); off above ``stage``."""
        lowest = stage if frozen else 1
        for p in self.model.parameters():
            level = self._level_of.get(id(p))
            p.requires_grad_(level is None or lowest <= level <= stage)

    def _autocast(self):
        if self.options.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.options.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _train_step(self) -> dict:
        start = time.perf_counter()
        stage, step = self.state.stage, self.state.step
        lr = learning_rate(self.cfg, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        frozen = self.frozen(stage, step)
        self._set_trainable(stage, frozen)
        self.model.train()
        batch = self.sampler.sample(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            outs_ab, outs_ba = self.model.forward_symmetric(batch.moving, batch.fixed, stage)
        total, terms = stage_loss(outs_ab, outs_ba, self.cfg, stage, self.loss_generator)
        if not np.isfinite(terms["total"]):
            raise TrainingError(f"non-finite loss at stage {stage} step {step}: {terms}")
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

        self.state.step += 1
        self.state.global_step += 1
        previous = self.state.running_loss
        self.state.running_loss = (
            terms["total"] if previous is None else RUNNING_DECAY * previous + (1 - RUNNING_DECAY) * terms["total"]
        )
        return {
            "global_step": self.state.global_step,
            "stage": stage,
            "step": self.state.step,
            "lr": lr,
            "frozen": int(frozen),
            **{name: terms[name] for name in ("total", *TERMS)},
            "seconds": round(time.perf_counter() - start, 4),
        }

    # ------------------------------------------------------------------------------- checkpoints
    def save(self) -> Path:
        """Checkpoint the current progress to ``out_dir/checkpoints/stage{k}-step{n}``."""
        state = {
            "plan": asdict(self.plan),
            "progress": asdict(self.state),
            "seed": self.plan.seed,
            "torch_version": torch.__version__,
        }
        optimizer = None
        if self.optimizer is not None:
            optimizer = {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}
        rng = {
            "sampler": self.sampler.generator.get_state(),
            "loss": self.loss_generator.get_state(),
            "global": _global_rng_state(),
        }
        name = f"stage{self.state.stage}-step{self.state.step:07d}"
        path = save_checkpoint(
            self.out_dir / CHECKPOINT_DIR, name, self.model.state_dict(), self.cfg, state, optimizer, rng
        )
        self._prune_checkpoints()
        return path

    def _prune_checkpoints(self) -> None:
        """Delete mid-stage checkpoints beyond the newest ``keep_last`` (stage ends are kept)."""
        mid_stage = []
        for path in (self.out_dir / CHECKPOINT_DIR).iterdir():
            match = CHECKPOINT_NAME.fullmatch(path.name)
            if match and path.is_dir():
                stage, step = int(match[1]), int(match[2])
                if step < self.budget(stage):
                    mid_stage.append(((stage, step), path))
        for _, path in sorted(mid_stage)[: max(0, len(mid_stage) - self.options.keep_last)]:
            shutil.rmtree(path)

    def _truncate_logs(self, global_step: int) -> None:
        """Drop log rows after ``global_step`` (steps run after the checkpoint being resumed)."""
        for name, columns in ((LOG_FILE, LOG_COLUMNS), (VALIDATION_LOG_FILE, VALIDATION_COLUMNS)):
            path = self.out_dir / name
            if not path.is_file():
                continue
            with open(path, newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["global_step"]) <= global_step]
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
            if name == VALIDATION_LOG_FILE and rows:
                self._validated_at = int(rows[-1]["global_step"])
