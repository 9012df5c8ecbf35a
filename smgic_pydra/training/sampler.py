"""Random ordered pairs of subjects held in memory on the network grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..augmentation import AugmentOptions, augment_volume
from .errors import TrainingError


@dataclass
class PairBatch:
    """A batch of ordered pairs: ``(B, 1, D, H, W)`` images, labels (or None) of the same shape."""

    moving: torch.Tensor
    fixed: torch.Tensor
    moving_labels: torch.Tensor | None
    fixed_labels: torch.Tensor | None
    indices: list[tuple[int, int]]
    """``(moving, fixed)`` subject indices of every pair."""


class PairSampler:
    """Draws random ordered pairs ``(i, j)``, ``i != j``, uniformly from ``n (n - 1)`` pairs.

    items: ``(image, labels or None)`` per subject; images ``(D, H, W)`` or ``(1, D, H, W)`` on the
    network grid, all the same shape. Each drawn image is augmented independently (``augment``).
    Draws come from an own seeded ``torch.Generator``, whose state is saved with checkpoints
    (``state_dict`` / ``load_state_dict``).
    """

    def __init__(
        self,
        items: Sequence[tuple[torch.Tensor, torch.Tensor | None]],
        batch_size: int = 1,
        seed: int = 0,
        augment: AugmentOptions | None = None,
    ):
        if len(items) < 2:
            raise TrainingError(f"training needs at least 2 images to form pairs, got {len(items)}")
        if batch_size < 1:
            raise TrainingError(f"batch size must be >= 1, got {batch_size}")
        self.images = [self._as_volume(image) for image, _ in items]
        shape = self.images[0].shape
        for k, image in enumerate(self.images):
            if image.shape != shape:
                raise TrainingError(f"image {k} has shape {tuple(image.shape[1:])}, expected {tuple(shape[1:])}")
        self.labels = [None if labels is None else self._as_volume(labels) for _, labels in items]
        self.batch_size = batch_size
        self.augment = augment or AugmentOptions()
        self.generator = torch.Generator().manual_seed(seed)

    @staticmethod
    def _as_volume(tensor: torch.Tensor) -> torch.Tensor:
        tensor = torch.as_tensor(tensor)
        if tensor.dim() == 3:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 4 or tensor.shape[0] != 1:
            raise TrainingError(f"expected a (D, H, W) or (1, D, H, W) volume, got shape {tuple(tensor.shape)}")
        return tensor

    def __len__(self) -> int:
        """Number of subjects."""
        return len(self.images)

    def draw_indices(self) -> list[tuple[int, int]]:
        """``batch_size`` random ordered pairs of distinct subjects."""
        n = len(self.images)
        first = torch.randint(0, n, (self.batch_size,), generator=self.generator)
        offset = torch.randint(1, n, (self.batch_size,), generator=self.generator)
        return [(int(i), int((i + o) % n)) for i, o in zip(first, offset)]

    def sample(self, device: torch.device | str = "cpu") -> PairBatch:
        """The next batch, moved to ``device``."""
        pairs = self.draw_indices()

        volumes = {"moving": [], "fixed": [], "moving_labels": [], "fixed_labels": []}
        for pair in pairs:
            for side, index in zip(("moving", "fixed"), pair):
                image = self.images[index][None].to(device).float()
                labels = self.labels[index]
                labels = None if labels is None else labels[None].to(device)
                if self.augment.enabled:
                    image, labels = augment_volume(image, labels, self.augment, self.generator)
                volumes[side].append(image)
                volumes[f"{side}_labels"].append(labels)
        batch = {k: None if any(v is None for v in vs) else torch.cat(vs) for k, vs in volumes.items()}
        return PairBatch(**batch, indices=pairs)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
