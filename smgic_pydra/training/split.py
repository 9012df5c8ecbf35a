"""Training / validation split of a cohort by participant (all sessions and runs of a participant on one side)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..bids.layout import parse_key, strip_prefix
from .errors import TrainingError

SPLIT_COLUMNS = ("participant_id", "image", "set")


@dataclass(frozen=True)
class Split:
    """Image keys (``sub-<label>[_ses-<label>][_run-<n>]``) of each side, and how the split was drawn."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    seed: int
    rule: str
    """``fraction 0.2`` or ``participants 03,07``: how the validation participants were chosen."""

    def rows(self) -> list[dict]:
        """One row per image: ``participant_id`` (``sub-<label>``), ``image`` (its key), ``set``."""
        return [{"participant_id": f"sub-{parse_key(k)[0]}", "image": k, "set": side}
                for side, keys in (("train", self.train), ("validation", self.validation)) for k in keys]

    def participants(self, side: str) -> list[str]:
        """Participant labels (without ``sub-``) of ``side`` (``train`` or ``validation``), sorted."""
        return sorted({parse_key(k)[0] for k in getattr(self, side)})


def split_by_participant(keys: Sequence[str], validation: float | Sequence[str] = 0.2, seed: int = 1) -> Split:
    """Split image ``keys`` into training and validation by participant.

    validation: a fraction in ``[0, 1)`` of the participants, drawn with ``numpy.random.default_rng(seed)``
    from the sorted participant labels (at least one when the fraction is positive), or the
    participant labels themselves (with or without ``sub-``). Training needs at least two images.
    """
    keys = sorted(dict.fromkeys(keys))
    participants = sorted({parse_key(k)[0] for k in keys})
    if isinstance(validation, (int, float)):
        if not 0 <= validation < 1:
            raise TrainingError(f"the validation fraction must be in [0, 1), got {validation}")
        n_val = 0 if validation == 0 else max(1, int(round(validation * len(participants))))
        order = np.random.default_rng(seed).permutation(len(participants))
        chosen = {participants[i] for i in order[:n_val]}
        rule = f"fraction {validation:g}"
    else:
        chosen = {strip_prefix(p, "sub-") for p in validation}
        unknown = sorted(chosen - set(participants))
        if unknown:
            raise TrainingError(f"validation participant(s) {', '.join('sub-' + p for p in unknown)} are not in the "
                                f"selected data ({len(participants)} participants)")
        rule = "participants " + ",".join(sorted(chosen))
    val = tuple(k for k in keys if parse_key(k)[0] in chosen)
    train = tuple(k for k in keys if parse_key(k)[0] not in chosen)
    if len(train) < 2:
        raise TrainingError(f"training needs at least 2 images; the split ({rule}) leaves {len(train)} of "
                            f"{len(keys)} for training")
    return Split(train, val, seed, rule)
