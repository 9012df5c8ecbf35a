"""Training checkpoints: one directory per save, written atomically, plus a ``latest`` pointer.

Layout of ``<root>/<name>/``:

* ``model.safetensors``: the model's ``state_dict`` (no pickled code);
* ``model.safetensors.sha256``: the weights' SHA-256 (checked when the folder is loaded as a model);
* ``config.json``: :meth:`SMGICNetConfig.to_json`;
* ``state.json``: progress (stage, step, seed, running statistics, the training plan);
* ``optimizer.pt`` / ``rng.pt`` (optional): optimizer, grad-scaler and RNG states, plain tensors and
  numbers saved with :func:`torch.save` and read back with ``torch.load(weights_only=True)``.

``<root>/latest`` holds the name of the newest complete checkpoint directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..config import SMGICNetConfig
from ..inference.model_io import CONFIG_NAME as CONFIG_FILE
from ..inference.model_io import HASH_NAME, weights_hash_text
from ..inference.model_io import WEIGHTS_NAME as MODEL_FILE
from ..io import atomic_path, sha256_file
from .errors import CheckpointError

STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
LATEST_FILE = "latest"


@dataclass
class Checkpoint:
    """A loaded checkpoint; ``optimizer`` and ``rng`` are None when the save had none."""

    path: Path
    weights: dict[str, torch.Tensor]
    config: SMGICNetConfig
    state: dict
    optimizer: dict | None = None
    rng: dict | None = None


def save_checkpoint(
    root: str | Path,
    name: str,
    weights: dict[str, torch.Tensor],
    config: SMGICNetConfig,
    state: dict,
    optimizer: dict | None = None,
    rng: dict | None = None,
) -> Path:
    """Write checkpoint ``root/name`` atomically (temporary directory, then ``os.replace``) and
    point ``root/latest`` at it. An existing checkpoint of the same name is replaced. Returns its path.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in weights.items()}, str(tmp / MODEL_FILE))
        (tmp / HASH_NAME).write_text(weights_hash_text(sha256_file(tmp / MODEL_FILE)))
        (tmp / CONFIG_FILE).write_text(config.to_json())
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))
        if optimizer is not None:
            torch.save(optimizer, tmp / OPTIMIZER_FILE)
        if rng is not None:
            torch.save(rng, tmp / RNG_FILE)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=root))
            os.replace(final, old / name)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with atomic_path(root / LATEST_FILE) as tmp_pointer:
        tmp_pointer.write_text(name + "\n")
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    """The directory named by ``root/latest``, or None when ``root`` has no checkpoint yet."""
    pointer = Path(root) / LATEST_FILE
    if not pointer.is_file():
        return None
    path = Path(root) / pointer.read_text().strip()
    if not (path / MODEL_FILE).is_file():
        raise CheckpointError(f"{pointer}: points to {path.name}, which is not a complete checkpoint")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint directory, or the latest one of a checkpoint root.

    Weights go to ``map_location``; optimizer and RNG states stay on the CPU.
    """
    path = Path(path)
    if (path / LATEST_FILE).is_file():
        path = latest_checkpoint(path)
    for required in (MODEL_FILE, CONFIG_FILE, STATE_FILE):
        if not (path / required).is_file():
            raise CheckpointError(f"{path}: not a checkpoint directory ({required} missing)")
    try:
        config = SMGICNetConfig.from_json(path / CONFIG_FILE)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE}: invalid config ({err})") from None
    weights = load_file(str(path / MODEL_FILE), device=str(map_location))
    state = json.loads((path / STATE_FILE).read_text())
    optional = {}
    for key, filename in (("optimizer", OPTIMIZER_FILE), ("rng", RNG_FILE)):
        file = path / filename
        optional[key] = torch.load(file, map_location="cpu", weights_only=True) if file.is_file() else None
    return Checkpoint(path=path, weights=weights, config=config, state=state, **optional)


def weights_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a weights file, or of ``model.safetensors`` in a checkpoint directory."""
    path = Path(path)
    return sha256_file(path / MODEL_FILE if path.is_dir() else path)
