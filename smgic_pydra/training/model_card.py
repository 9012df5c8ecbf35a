"""The model card (``MODEL_CARD.md``) written by a training run, from its training record and stage summary.

The training record (``training.json`` beside the weights) holds, in plain JSON: ``dataset``
(name, source, participants and images per side, split rule and seed, label table),
``preparation``, ``preset``, ``config``, ``plan`` (seed, stages, iterations, augmentation),
``init_model``, ``run`` (device, precision, seconds, processes that trained it),
``weights_sha256``, ``parameters``, ``versions`` and ``command``.
"""

from __future__ import annotations

import json
import math

SUMMARY_HEADER = ("stage", "iterations", "training loss (first / last 100)", "s / step",
                  "validation loss", "validation Dice")


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def render_model_card(record: dict, summary: list[dict], baseline: dict | None) -> str:
    """Markdown of the card. summary: :func:`~.curves.stage_summary` rows; baseline: the validation
    row before any training (``loss``, ``dice``), or None."""
    data, plan, run, cfg = record["dataset"], record["plan"], record["run"], record["config"]
    grid = "x".join(str(n) for n in cfg["grid_shape"])
    lines = [
        f"# SM-GICNet trained on {data['name']} (smgic-pydra {record['versions']['smgic_pydra']})",
        "",
        f"Weights `model.safetensors` (SHA-256 `{record['weights_sha256']}`, {record['parameters']:,} parameters), "
        f"configuration `config.json` (network grid {grid} at {cfg['voxel_size_mm']:g} mm, `{cfg['attention_gate']}` "
        f"attention gates, T = {cfg['ss_steps']}). Use it with "
        "`smgic-bids BIDS_DIR OUTPUT_DIR participant --model <this folder>`.",
        "",
        "## Data",
        f"BIDS dataset `{data['name']}` ({data['source']}). Split by participant ({data['split_rule']}, seed "
        f"{data['split_seed']}; `split.tsv`): training {len(data['train_participants'])} participants / "
        f"{data['train_images']} images, validation {len(data['validation_participants'])} participants / "
        f"{data['validation_images']} images.",
        f"Training participants: {', '.join(data['train_participants'])}.",
        f"Validation participants: {', '.join(data['validation_participants']) or 'none'}.",
        f"Preparation: skull stripping `{record['preparation']['skull_strip']}`, intensities clipped at the "
        "0.01/99.99 percentiles in the brain and scaled to [0, 1], the network grid centred on the brain; no "
        "affine pre-registration.",
        f"Labels for validation Dice: {data['labels']}.",
        "",
        "## Training",
        f"Preset `{record['preset']['name']}`: {record['preset']['description']}",
        f"Stages {plan['first_stage']}-{plan['last_stage']} with {' / '.join(str(n) for n in plan['iterations'])} "
        f"iterations, Adam at {cfg['learning_rate']:g}, lower levels frozen for the first {cfg['freeze_steps']} "
        f"iterations of each stage, batch {cfg['batch_size']}, seed {plan['seed']}.",
        f"Augmentation (each image independently): {plan['augment_text']}.",
        f"Initial weights: {record['init_model'] or 'random (from scratch)'}.",
        f"Device `{run['device']}`, precision {run['precision']}, {run['seconds'] / 60:.1f} minutes of training in "
        f"{run['processes']} process(es) (a killed run resumes from its last checkpoint).",
        "",
        "## Validation",
    ]
    if not data["validation_images"]:
        lines.append("No validation participants were held out: the numbers below are training losses only.")
    if baseline is not None:
        lines.append(f"Before training: validation loss {_number(baseline['loss'])}, "
                     f"Dice {_number(baseline['dice'])} (the initial weights).")
    lines += [""] + _table(SUMMARY_HEADER, [
        (r["stage"], r["iterations"], f"{_number(r['loss_first100'])} / {_number(r['loss_last100'])}",
         _number(r["seconds_per_step"]), _number(r["validation_loss"]), _number(r["validation_dice"]))
        for r in summary])
    lines += [
        "",
        "Validation Dice: moving labels warped (nearest) on the network grid by the stage's field, mean over the "
        "labels present in the fixed image, averaged over both directions of the validation pairs. Curves: "
        "`training_curves.png`; every step: `training_log.csv`, `validation_log.csv`.",
        "",
        "## Configuration",
        "The network and loss settings (`config.json`):",
        "",
        "```json",
        json.dumps(cfg, indent=1, sort_keys=True),
        "```",
        "",
        "## Limitations",
        f"* Trained on {data['train_images']} images of one dataset: check the validation Dice, and evaluate with "
        "`smgic-bids ... participant --method smgicnet,synquick` on subjects it was not trained on.",
        "* Images must be prepared the way it was trained (skull-stripped T1w; the grid and field of view above).",
        "",
        f"Command: `{' '.join(record['command'])}`",
        f"Versions: {', '.join(f'{k} {v}' for k, v in record['versions'].items())}.",
    ]
    return "\n".join(lines) + "\n"
