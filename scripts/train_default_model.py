#!/usr/bin/env python3
"""Train the packaged default SM-GICNet on subjects synthesized from the SynthSeg label maps.

Three steps, each a subcommand (the training step is resumable and can be split over several
runs, e.g. on a GPU machine with a per-command time limit):

  prepare  label maps -> T1-like skull-stripped subjects in their own native spaces -> network grid;
           writes a compact data file (uint8 images) and split.json (train / validation / test).
  train    progressive four-stage training on the training subjects (augmented), for at most
           --budget-s seconds per call; call again with the same --out to continue exactly.
  package  copy the final weights and config into smgic_pydra/data/models/default.

The held-out test subjects are never used here; benchmarks/pair_accuracy.py evaluates on them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

TEST_IDS = (13, 14, 15)
VALIDATION_IDS = (12,)
PRESET = "default-model"
"""smgic_pydra/data/training_presets/default-model.json: grid, schedule, learning rate and augmentation."""


def label_map_path(folder: Path, index: int) -> Path:
    return folder / f"training_seg_{index:02d}.nii.gz"


def prepare(args) -> None:
    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.synthesis import write_synthetic_subject
    from smgic_pydra.training import load_preset

    cfg = load_preset(PRESET).config
    out = Path(args.out)
    ids = [i for i in range(1, 16) if i not in TEST_IDS]
    images, labels = [], []
    for index in ids:
        rng = np.random.default_rng(args.seed + index)
        native = write_synthetic_subject(label_map_path(Path(args.label_maps), index), out / "native", f"sub-{index:02d}", rng)
        prepared = prepare_subject(
            native.t1w, out / "prepared" / native.subject_id, cfg, mask_path=native.mask, labels_path=native.labels,
            subject_id=native.subject_id,
        )
        images.append(np.round(prepared.image * 255).astype(np.uint8))
        labels.append(prepared.labels.astype(np.int16))
        print(f"prepared {native.subject_id}", flush=True)
    split = {
        "train": [f"sub-{i:02d}" for i in ids if i not in VALIDATION_IDS],
        "validation": [f"sub-{i:02d}" for i in VALIDATION_IDS],
        "test": [f"sub-{i:02d}" for i in TEST_IDS],
        "source": "SynthSeg training label maps training_seg_XX (Apache-2.0), one synthetic T1-like image each",
        "seed": args.seed,
    }
    np.savez_compressed(out / "grid_data.npz", ids=np.array([f"sub-{i:02d}" for i in ids]), images=np.stack(images),
                        labels=np.stack(labels))
    (out / "split.json").write_text(json.dumps(split, indent=2))
    (out / "config.json").write_text(cfg.to_json())


def train(args) -> None:
    import torch

    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.training import load_preset
    from smgic_pydra.training.checkpoint import latest_checkpoint
    from smgic_pydra.training.trainer import CHECKPOINT_DIR, RunOptions, TrainPlan, Trainer

    data_dir = Path(args.data)
    data = np.load(data_dir / "grid_data.npz")
    split = json.loads((data_dir / "split.json").read_text())
    ids = list(data["ids"])
    items = [(torch.from_numpy(data["images"][ids.index(s)].astype(np.float32) / 255.0), None) for s in split["train"]]
    options = RunOptions(device=args.device, precision=args.precision, checkpoint_every=args.checkpoint_every,
                         progress=False)
    out = Path(args.out)
    if latest_checkpoint(out / CHECKPOINT_DIR) is not None:
        trainer = Trainer.resume(out, items, options)
    else:
        preset = load_preset(PRESET)
        cfg = SMGICNetConfig.from_json((data_dir / "config.json").read_text())
        iterations = tuple(int(n) for n in args.iterations.split(",")) if args.iterations else preset.iterations
        plan = TrainPlan(seed=args.seed, iterations=iterations, augment=preset.augment)
        trainer = Trainer(cfg, items, out, plan, options)
    start = time.monotonic()
    while time.monotonic() - start < args.budget_s and trainer.state.stage <= trainer.plan.last_stage:
        rows = trainer.run(max_steps=args.chunk)
        if rows:
            last = rows[-1]
            print(f"stage {last['stage']} step {last['step']} loss {last['total']:.4f} "
                  f"({last['seconds']:.3f} s/step, {time.monotonic() - start:.0f} s)", flush=True)
        if not rows:
            break


def package(args) -> None:
    from smgic_pydra.inference.model_io import CONFIG_NAME, WEIGHTS_NAME, default_model_dir
    from smgic_pydra.training.checkpoint import latest_checkpoint

    source = latest_checkpoint(Path(args.run) / "checkpoints")
    target = default_model_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        shutil.copyfile(source / name, target / name)
    print(f"packaged {source} -> {target}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--label-maps", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=prepare)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--device", default="cuda")
    t.add_argument("--precision", default="bf16")
    t.add_argument("--iterations", default=None, help="steps per stage, e.g. 1200,1200,1800,6000 (default: the preset's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--budget-s", type=float, default=500)
    t.add_argument("--chunk", type=int, default=200, help="steps between progress lines and checkpoints")
    t.add_argument("--checkpoint-every", type=int, default=100000)
    t.set_defaults(func=train)
    k = sub.add_parser("package")
    k.add_argument("--run", required=True)
    k.set_defaults(func=package)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
