"""Model files: safetensors weights + JSON config, loaded without unpickling, identified by SHA-256.

A model folder records its weights' SHA-256 in ``model.safetensors.sha256`` (``sha256sum``
format; the packaged model and every model ``train`` writes have one). Loading compares it and
refuses damaged or changed weights; a folder without the file is used with one warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from ..config import SMGICNetConfig
from ..io.errors import InputError, display_path
from ..io.hashing import sha256_file

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
HASH_NAME = WEIGHTS_NAME + ".sha256"
logger = logging.getLogger("smgic_pydra.model")
_warned: set[str] = set()
CPU_MEMORY_FORMAT = torch.channels_last_3d
"""Layout of the convolution weights on the CPU: oneDNN runs 3-D convolutions in it without
reordering (1.5-1.7x faster at 128^3 on 2 cores, the same results to 2e-7)."""


def default_model_dir() -> Path:
    """The packaged default model folder (``smgic_pydra/data/models/default``)."""
    return Path(str(resources.files("smgic_pydra") / "data" / "models" / "default"))


def resolve_model_files(model: str | Path | None) -> tuple[Path, Path]:
    """``(weights, config)`` paths of a model folder, or of a ``.safetensors`` file with ``config.json`` beside it.

    ``None`` selects the packaged default model.
    """
    path = default_model_dir() if model is None else Path(model)
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    config = weights.with_name(CONFIG_NAME)
    for p, what in ((weights, "weights"), (config, "config")):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: model {what} file not found (a model is a folder with {WEIGHTS_NAME} and {CONFIG_NAME})")
    return weights, config


@dataclass
class ModelBundle:
    """A loaded SM-GICNet in eval mode with its config and provenance."""

    model: torch.nn.Module
    cfg: SMGICNetConfig
    weights_sha256: str
    path: Path
    device: torch.device
    warmed_up: bool = field(default=False, repr=False)


def weights_hash_text(sha256: str) -> str:
    """The content of ``model.safetensors.sha256`` for weights of hash ``sha256`` (``sha256sum -c`` reads it)."""
    return f"{sha256}  {WEIGHTS_NAME}\n"


def recorded_weights_sha256(weights: Path) -> str | None:
    """The SHA-256 recorded beside ``weights`` (``None`` without a record); :class:`InputError` when unreadable."""
    record = Path(weights).with_name(HASH_NAME)
    if not record.is_file():
        return None
    fields = record.read_text().split()
    if not fields or len(fields[0]) != 64 or any(c not in "0123456789abcdef" for c in fields[0].lower()):
        raise InputError(display_path(record), "not a SHA-256 record (expected '<64 hex digits>  model.safetensors')")
    return fields[0].lower()


def check_weights(weights: Path, expected_sha256: str | None = None) -> str:
    """The weights' SHA-256, after comparing it with ``expected_sha256`` or else the folder's record.

    Raises :class:`InputError` (one line) on a mismatch; warns once per file without a record.
    """
    actual = sha256_file(weights)
    expected = expected_sha256 or recorded_weights_sha256(weights)
    if expected is None:
        if str(weights) not in _warned:
            _warned.add(str(weights))
            logger.warning("%s: no %s beside the weights, their integrity cannot be checked (SHA-256 %s)",
                           display_path(weights), HASH_NAME, actual)
    elif actual != expected:
        source = "expected" if expected_sha256 else f"recorded in {HASH_NAME}"
        raise InputError(display_path(weights), f"SHA-256 {actual} differs from the {source} {expected}: the weights "
                         "are damaged or were changed; restore them or use another --model")
    return actual


def load_model(model: str | Path | None = None, device: str | torch.device = "cpu",
               expected_sha256: str | None = None) -> ModelBundle:
    """Load weights (safetensors) and config of SM-GICNet onto ``device`` (``cpu``, ``cuda``, ``cuda:N``).

    The weights' hash is checked first (:func:`check_weights`); an unreadable config or weights
    file, or weights that do not fit the config, raise :class:`InputError` naming the file.
    """
    from safetensors.torch import load_file

    from ..network import SMGICNet

    weights, config = resolve_model_files(model)
    sha = check_weights(weights, expected_sha256)
    try:
        cfg = SMGICNetConfig.from_json(config.read_text())
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(display_path(config), f"not a valid model config ({exc})") from None
    net = SMGICNet(cfg)
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise InputError(display_path(weights), f"not a readable safetensors file ({exc})") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(display_path(weights), f"weights do not fit the network of {config.name} ({first})") from None
    device = torch.device(device)
    net.to(device).eval()
    if device.type == "cpu":
        net.to(memory_format=CPU_MEMORY_FORMAT)
    return ModelBundle(net, cfg, sha, weights.parent, device)
