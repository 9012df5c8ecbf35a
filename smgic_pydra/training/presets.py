"""Training presets: named data files that fix the network grid, the schedule and the augmentation.

A preset is a JSON file ``{"description": str, "config": {SMGICNetConfig overrides},
"iterations": [n1, n2, n3, n4], "augment": {AugmentOptions fields}}``. The packaged ones live in
``smgic_pydra/data/training_presets/`` (``paper``, ``default-model``, ``cpu``); any file of the same
form can be given by path.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..augmentation import AugmentOptions
from ..config import N_LEVELS, SMGICNetConfig
from ..io.errors import InputError, display_path
from ..io.json_file import read_json

PRESET_KEYS = {"description", "config", "iterations", "augment"}


def presets_dir() -> Path:
    """The folder of the packaged presets."""
    return Path(str(resources.files("smgic_pydra") / "data" / "training_presets"))


def preset_names() -> list[str]:
    """Names of the packaged presets."""
    return sorted(p.stem for p in presets_dir().glob("*.json"))


@dataclass(frozen=True)
class TrainingPreset:
    """A loaded preset: the network config, steps per stage 1..4 and the augmentation."""

    name: str
    description: str
    config: SMGICNetConfig
    iterations: tuple[int, int, int, int]
    augment: AugmentOptions


def load_preset(name_or_path: str | Path) -> TrainingPreset:
    """A packaged preset by name, or a preset file by path; :class:`InputError` (one line) when invalid."""
    path = Path(name_or_path)
    if not path.suffix:
        path = presets_dir() / f"{name_or_path}.json"
        if not path.is_file():
            raise InputError(str(name_or_path), f"unknown training preset; choose from {', '.join(preset_names())} "
                             "or give a preset JSON file")
    shown = display_path(path)
    data = read_json(path, "training preset file")
    if not isinstance(data, dict) or set(data) - PRESET_KEYS or "iterations" not in data:
        raise InputError(shown, f"a training preset is a JSON object with keys {sorted(PRESET_KEYS)} "
                         "('iterations' required)")
    iterations = data["iterations"]
    if (not isinstance(iterations, list) or len(iterations) != N_LEVELS
            or not all(isinstance(n, int) and n >= 0 for n in iterations)):
        raise InputError(shown, f"'iterations' must be {N_LEVELS} non-negative integers, got {iterations!r}")
    try:
        config = SMGICNetConfig.from_dict(data.get("config", {}))
        augment = AugmentOptions.from_dict(data.get("augment", {}))
    except (TypeError, ValueError) as exc:
        raise InputError(shown, f"invalid preset settings ({exc})") from None
    return TrainingPreset(path.stem, str(data.get("description", "")), config, tuple(iterations), augment)
