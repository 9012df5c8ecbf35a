"""``smgic-train``: progressive training of SM-GICNet on images already on the network grid.

Example::

    smgic-train prepared/*.nii.gz --out runs/demo --device cuda --stages 1-4 --iterations 2000
    smgic-train prepared/ --out runs/demo --resume
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ..config import N_LEVELS, SMGICNetConfig
from ..io import InputError, load_image
from ..training import RunOptions, Trainer, TrainingError, TrainPlan, load_checkpoint
from ..defaults import CHECKPOINT_EVERY, RANDOM_SEED
from ..settings import default
from .options import add_renamed, parse_iterations, parse_stages, positive_int

IMAGE_SUFFIXES = (".nii", ".nii.gz")


def build_parser() -> argparse.ArgumentParser:
    """The command-line arguments of ``smgic-train``."""
    parser = argparse.ArgumentParser(
        prog="smgic-train",
        description="Train SM-GICNet progressively (stages 1-4) on skull-stripped T1 images in [0, 1] "
        "that are already resampled onto the network grid.",
    )
    parser.add_argument("images", nargs="+", type=Path, help="NIfTI images, or folders of *.nii / *.nii.gz")
    parser.add_argument("--out", required=True, type=Path, help="output folder (checkpoints/, training_log.csv)")
    parser.add_argument("--device", default=default("device"), help=f"cpu, cuda or cuda:N (default: {default('device')})")
    parser.add_argument("--precision", default=default("precision"), choices=("fp32", "bf16", "fp16"),
                        help=f"autocast precision on CUDA (default: {default('precision')})")
    add_renamed(parser, "--random-seed", "--seed", dest="seed", type=positive_int, default=None,
                help=f"random seed, >= 1 as in smgic-bids (default: {RANDOM_SEED}; --seed: deprecated alias)")
    parser.add_argument("--stages", default=None,
                        help="stage or range of stages to train, e.g. 4 or 1-4 (default: 1-4)")
    parser.add_argument("--iterations", default=None,
                        help="steps per stage: one number for every stage or four comma-separated numbers "
                        "(default: the config's stage_iterations)")
    parser.add_argument("--config", type=Path, default=None,
                        help="SMGICNetConfig JSON (default: the standard config on the images' grid)")
    add_renamed(parser, "--init-model", "--init", dest="init", type=Path, default=None,
                help="start from the weights (and, without --config, the config) of this checkpoint "
                "folder or run's checkpoints/ folder, e.g. to train stage 4 after stages 1-3 (--init: deprecated alias)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=CHECKPOINT_EVERY,
                        help=f"steps between checkpoints (default: {CHECKPOINT_EVERY})")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its latest checkpoint (config, seed, stages and "
                        "iterations come from the checkpoint)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def image_paths(inputs: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their NIfTI files (sorted)."""
    paths: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.name.endswith(IMAGE_SUFFIXES))
            if not found:
                raise InputError(item, "folder has no .nii or .nii.gz images")
            paths.extend(found)
        else:
            paths.append(item)
    return paths


def load_grid_images(paths: list[Path]) -> tuple[list[torch.Tensor], tuple[int, ...], float]:
    """Images as float32 ``(D, H, W)`` tensors, plus their common shape and (first) voxel size in mm."""
    images, shape, voxel = [], None, None
    for path in paths:
        img = load_image(path, kind="image")
        data = np.asarray(img.dataobj, dtype=np.float32)
        if shape is None:
            shape, voxel = data.shape, float(img.header.get_zooms()[0])
        elif data.shape != shape:
            raise InputError(path, f"grid shape {data.shape} differs from {shape} of {paths[0]}")
        images.append(torch.from_numpy(np.ascontiguousarray(data)))
    return images, shape, voxel


def network_config(config_path: Path | None, shape, voxel_mm: float) -> SMGICNetConfig:
    """The config file's settings, or the default config on the images' grid."""
    try:
        if config_path is not None:
            if not config_path.is_file():
                raise InputError(config_path, "config file not found")
            cfg = SMGICNetConfig.from_json(config_path)
        else:
            cfg = SMGICNetConfig(grid_shape=tuple(int(n) for n in shape), voxel_size_mm=voxel_mm)
    except ValueError as err:
        if isinstance(err, InputError):
            raise
        where = config_path if config_path is not None else "images"
        raise InputError(where, f"invalid network configuration ({err})") from None
    if tuple(cfg.grid_shape) != tuple(shape):
        grids = f"{tuple(cfg.grid_shape)} differs from the images' grid {tuple(shape)}"
        raise InputError(config_path, f"config grid {grids}")
    return cfg


def run(args: argparse.Namespace) -> Path:
    """Train (or resume) as ``args`` say; returns the output folder."""
    images, shape, voxel = load_grid_images(image_paths(args.images))
    items = [(image, None) for image in images]
    options = RunOptions(
        device=args.device,
        precision=args.precision,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
    )
    if args.resume:
        given = (("--config", args.config), ("--init-model", args.init), ("--random-seed (--seed)", args.seed),
                 ("--stages", args.stages), ("--iterations", args.iterations))
        fixed = [flag for flag, value in given if value is not None]
        if fixed:
            raise TrainingError(f"{', '.join(fixed)} cannot be changed when resuming (they come from the checkpoint)")
        trainer = Trainer.resume(args.out, items, options)
    else:
        init = load_checkpoint(args.init) if args.init is not None else None
        if init is not None and args.config is None:
            cfg = init.config
        else:
            cfg = network_config(args.config, shape, voxel)
        first, last = parse_stages(args.stages) if args.stages else (1, N_LEVELS)
        plan = TrainPlan(
            seed=RANDOM_SEED if args.seed is None else args.seed,
            first_stage=first,
            last_stage=last,
            iterations=parse_iterations(args.iterations) if args.iterations else None,
        )
        trainer = Trainer(cfg, items, args.out, plan, options, init_weights=None if init is None else init.weights)
    trainer.run()
    return args.out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``smgic-train``; returns the exit status (2 on bad input or settings)."""
    args = build_parser().parse_args(argv)
    try:
        out = run(args)
    except (InputError, TrainingError) as err:
        print(f"smgic-train: error: {err}", file=sys.stderr)
        return 2
    print(f"smgic-train: done; checkpoints in {out / 'checkpoints'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
