"""Validation during training: the stage loss and label Dice on fixed pairs of held-out subjects.

Every unordered pair ``{a, b}`` of validation subjects, and of a validation subject with a
training subject (``partners``; so one held-out subject is enough), or a seeded subset of
``max_pairs`` of them, is registered both ways with :meth:`SMGICNet.forward_symmetric` up to the stage's top level, without
augmentation and without gradients. The loss is :func:`~smgic_pydra.losses.stage_loss` of the pair
(GradICON's random sample points from a generator re-seeded at every evaluation, so validation
never changes the training's random streams). Dice: the moving labels are warped (nearest) on the
full network grid by the top level's field (upsampled, normalized units) and compared with the
fixed labels by :func:`~smgic_pydra.metrics.dice.dice_per_label` (mean over the labels present in
the fixed image), averaged over both directions of every pair.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

from ..config import SMGICNetConfig
from ..losses import stage_loss
from ..metrics.dice import dice_per_label
from ..transforms import upsample_field, warp
from .errors import TrainingError

VALIDATION_COLUMNS = ("global_step", "stage", "step", "loss", "dice", "pairs", "seconds")


def warp_labels(labels: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
    """Labels ``(B, 1, D, H, W)`` (integer values) pulled back by ``disp`` ``(B, 3, d, h, w)`` (normalized,
    any grid: resized to the labels' grid), nearest neighbour; returns int64 labels."""
    disp = upsample_field(disp, labels.shape[-3:]) if tuple(disp.shape[-3:]) != tuple(labels.shape[-3:]) else disp
    return warp(labels.to(disp.dtype), disp, mode="nearest").round().long()


class Validator:
    """Evaluates a model on fixed validation pairs; ``items`` (validation subjects) and ``partners``
    (training subjects, paired with each validation subject) are ``(image, labels or None)`` on the
    network grid.

    label_values: the labels that count for Dice (e.g. a label table's indices); None: every
    positive label present. Dice is NaN when a subject has no labels.
    """

    def __init__(
        self,
        items: Sequence[tuple[torch.Tensor, torch.Tensor | None]],
        cfg: SMGICNetConfig,
        label_values: Sequence[int] | None = None,
        partners: Sequence[tuple[torch.Tensor, torch.Tensor | None]] = (),
        max_pairs: int = 16,
        seed: int = 0,
    ):
        n_val, everyone = len(items), [*items, *partners]
        pairs = list(itertools.combinations(range(n_val), 2))
        pairs += [(i, j) for i in range(n_val) for j in range(n_val, len(everyone))]
        if not pairs:
            raise TrainingError(f"validation needs a validation subject and a second subject, got {n_val} and "
                                f"{len(partners)} partner(s)")
        if len(pairs) > max_pairs:
            order = np.random.default_rng(seed).permutation(len(pairs))[:max_pairs]
            pairs = [pairs[i] for i in sorted(order)]
        self.cfg = cfg
        used = sorted({k for pair in pairs for k in pair})
        self.images = {k: torch.as_tensor(everyone[k][0]).reshape(1, 1, *cfg.grid_shape).float() for k in used}
        self.labels = {k: None if everyone[k][1] is None else torch.as_tensor(everyone[k][1]).reshape(
            1, 1, *cfg.grid_shape) for k in used}
        self.pairs = pairs
        self.seed = seed
        self.label_values = None if label_values is None else sorted({int(v) for v in label_values})

    def _dice(self, moving: int, fixed: int, disp: torch.Tensor) -> float:
        if self.labels[moving] is None or self.labels[fixed] is None:
            return math.nan
        warped = warp_labels(self.labels[moving].to(disp.device), disp.float())[0, 0].cpu().numpy()
        target = self.labels[fixed][0, 0].numpy()
        values = self.label_values or [int(v) for v in np.unique(target) if v > 0]
        present = [v for v in values if np.any(target == v)]
        return dice_per_label(warped, target, present).mean if present else math.nan

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, stage: int, device: torch.device,
                 autocast: Callable[[], AbstractContextManager] = nullcontext) -> dict:
        """``{"loss", "dice", "pairs", "seconds"}``: means over the pairs (``dice`` NaN without labels).

        autocast: a factory of the precision context the forward passes run in (the trainer's).
        """
        start = time.perf_counter()
        was_training = model.training
        model.eval()
        generator = torch.Generator(device=device).manual_seed(self.seed)
        losses, dice = [], []
        try:
            for a, b in self.pairs:
                ia, ib = self.images[a].to(device), self.images[b].to(device)
                with autocast():
                    outs_ab, outs_ba = model.forward_symmetric(ia, ib, stage)
                losses.append(stage_loss(outs_ab, outs_ba, self.cfg, stage, generator)[1]["total"])
                dice += [self._dice(a, b, outs_ab[-1].disp), self._dice(b, a, outs_ba[-1].disp)]
        finally:
            model.train(was_training)
        scored = [d for d in dice if not math.isnan(d)]
        return {"loss": float(np.mean(losses)), "dice": float(np.mean(scored)) if scored else math.nan,
                "pairs": len(self.pairs), "seconds": round(time.perf_counter() - start, 3)}
