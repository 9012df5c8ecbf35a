"""Training: schedule, pair sampler, checkpoints, exact resume, stage freezing, CLI and real learning."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as load_numpy_safetensors
from scipy import ndimage

from smgic_pydra.cli.train import main as train_main
from smgic_pydra.config import SMGICNetConfig, small_config
from smgic_pydra.losses import TERMS
from smgic_pydra.training import (
    PairSampler,
    RunOptions,
    Trainer,
    TrainingError,
    TrainPlan,
    learning_rate,
    load_checkpoint,
    weights_sha256,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LABEL_MAP = SHARED / "data" / "synthseg_label_maps" / "training_seg_01.nii.gz"
GRID = 32


def _items(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(GRID, GRID, GRID, generator=g)
    smooth = lambda x: torch.from_numpy(ndimage.gaussian_filter(x.numpy(), 1.5)).float()  # noqa: E731
    return [(smooth(base + 0.3 * torch.rand(GRID, GRID, GRID, generator=g)), None) for _ in range(n)]


def _cfg(**changes) -> SMGICNetConfig:
    return small_config(grid_shape=(GRID,) * 3, voxel_size_mm=6.0, **changes)


def _quiet(**changes) -> RunOptions:
    return RunOptions(progress=False, **changes)


def _read_log(out: Path) -> list[dict]:
    with open(out / "training_log.csv", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------- schedule
def test_learning_rate_schedule_closed_form():
    cfg = _cfg(learning_rate=1e-4, lr_decay_start=60000, lr_decay_every=50000, lr_decay_factor=0.5)
    expected = {0: 1e-4, 59999: 1e-4, 60000: 5e-5, 109999: 5e-5, 110000: 2.5e-5, 160000: 1.25e-5}
    for step, lr in expected.items():
        assert learning_rate(cfg, step) == pytest.approx(lr, rel=1e-12)


# ----------------------------------------------------------------------------------------- sampler
def test_pair_sampler_draws_distinct_ordered_pairs_reproducibly():
    items = [(torch.full((4, 4, 4), float(k)), None) for k in range(3)]
    draws = [PairSampler(items, batch_size=2, seed=5).draw_indices() for _ in range(2)]
    assert draws[0] == draws[1]
    sampler = PairSampler(items, seed=1)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(600):
        (pair,) = sampler.draw_indices()
        counts[pair] = counts.get(pair, 0) + 1
    assert set(counts) == {(i, j) for i in range(3) for j in range(3) if i != j}
    assert min(counts.values()) > 60  # 100 expected per ordered pair
    batch = sampler.sample()
    assert batch.moving.shape == (1, 1, 4, 4, 4)
    assert float(batch.moving.flatten()[0]) == batch.indices[0][0]
    assert float(batch.fixed.flatten()[0]) == batch.indices[0][1]
    with pytest.raises(TrainingError, match="at least 2 images"):
        PairSampler(items[:1])


# ------------------------------------------------------------------------------------- checkpoints
def _tensors_equal(a, b) -> bool:
    """Recursive bitwise equality of nested dicts/lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_checkpoint_round_trips_bit_for_bit(tmp_path):
    cfg = _cfg(lambda_antifold=0.25)
    trainer = Trainer(cfg, _items(), tmp_path, TrainPlan(seed=3, last_stage=1, iterations=(10, 0, 0, 0)), _quiet())
    trainer.run(max_steps=2)  # saves on stopping: the optimizer now has Adam moments
    ckpt_dir = tmp_path / "checkpoints" / "stage1-step0000002"
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == ckpt_dir.name
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no temporaries left

    ckpt = load_checkpoint(tmp_path / "checkpoints")  # via the latest pointer
    assert ckpt.path == ckpt_dir
    assert ckpt.config == cfg
    assert ckpt.state["seed"] == 3 and ckpt.state["progress"]["step"] == 2
    model_state = trainer.model.state_dict()
    assert _tensors_equal(ckpt.weights, model_state)
    # independent reader: safetensors' NumPy loader sees the same bits
    numpy_weights = load_numpy_safetensors(str(ckpt_dir / "model.safetensors"))
    assert all(np.array_equal(numpy_weights[k], v.numpy()) for k, v in model_state.items())
    assert _tensors_equal(ckpt.optimizer["optimizer"], trainer.optimizer.state_dict())
    assert len(ckpt.optimizer["optimizer"]["state"]) > 0
    assert weights_sha256(ckpt_dir) == hashlib.sha256((ckpt_dir / "model.safetensors").read_bytes()).hexdigest()


def _losses(rows) -> list[tuple]:
    return [tuple(row[k] for k in ("global_step", "stage", "step", "lr", "frozen", "total", *TERMS)) for row in rows]


@pytest.mark.parametrize("stop", [2, 3, 4])  # inside stage 1, at its end, inside stage 2's freeze
def test_resumed_run_continues_exactly(tmp_path, stop):
    cfg = _cfg(freeze_steps=2)
    plan = TrainPlan(seed=11, first_stage=1, last_stage=2, iterations=(3, 4, 0, 0))
    straight = Trainer(cfg, _items(), tmp_path / "straight", plan, _quiet(checkpoint_every=100))
    straight.run()

    first = Trainer(cfg, _items(), tmp_path / "resumed", plan, _quiet(checkpoint_every=100))
    first.run(max_steps=stop)
    del first
    torch.manual_seed(12345)  # disturb the global generators: resume must restore them
    np.random.seed(12345)
    resumed = Trainer.resume(tmp_path / "resumed", _items(), _quiet(checkpoint_every=100))
    assert resumed.state.global_step == stop
    resumed.run()

    rows_straight, rows_resumed = _read_log(tmp_path / "straight"), _read_log(tmp_path / "resumed")
    assert len(rows_straight) == 7
    assert _losses(rows_resumed) == _losses(rows_straight)
    final = load_checkpoint(tmp_path / "resumed" / "checkpoints").weights
    assert _tensors_equal(final, straight.model.state_dict())
    with pytest.raises(TrainingError, match="already holds a training run"):
        Trainer(cfg, _items(), tmp_path / "straight", plan, _quiet()).run()


def test_old_mid_stage_checkpoints_are_pruned(tmp_path):
    plan = TrainPlan(seed=0, last_stage=1, iterations=(6, 0, 0, 0))
    Trainer(_cfg(), _items(), tmp_path, plan, _quiet(checkpoint_every=1, keep_last=2)).run()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "stage1-step0000004", "stage1-step0000005", "stage1-step0000006"]


def _level_params(trainer, level):
    return {k: v.detach().clone() for k, v in trainer.model.level_modules(level).state_dict().items()}


def _changed(before, trainer, level) -> bool:
    after = trainer.model.level_modules(level).state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_stage_freezing_and_optimizer_coverage(tmp_path):
    cfg = _cfg(freeze_steps=2, learning_rate=1e-3)
    plan = TrainPlan(seed=0, first_stage=2, last_stage=2, iterations=(0, 4, 0, 0))
    trainer = Trainer(cfg, _items(), tmp_path, plan, _quiet(checkpoint_every=100))
    before = {level: _level_params(trainer, level) for level in (1, 2, 3, 4)}

    trainer.run(max_steps=2)  # the freeze: only level 2 learns
    in_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in trainer.model.parameters()}
    assert all(p.requires_grad for p in trainer.model.level_modules(2).parameters())
    assert not any(p.requires_grad for p in trainer.model.level_modules(1).parameters())
    assert not _changed(before[1], trainer, 1)
    assert _changed(before[2], trainer, 2)

    trainer.run()  # after the freeze: level 1 is trained too; levels 3-4 are not part of stage 2
    assert {id(p) for p in trainer.model.parameters() if p.requires_grad} <= in_optimizer
    assert all(p.requires_grad for p in trainer.model.level_modules(1).parameters())
    assert _changed(before[1], trainer, 1)
    assert not _changed(before[3], trainer, 3) and not _changed(before[4], trainer, 4)
    assert [int(r["frozen"]) for r in _read_log(tmp_path)] == [1, 1, 0, 0]


def test_trainer_rejects_bad_settings(tmp_path):
    with pytest.raises(TrainingError, match="device"):
        Trainer(_cfg(), _items(), tmp_path, options=_quiet(device="gpu0"))
    with pytest.raises(TrainingError, match="network grid"):
        Trainer(small_config(), _items(), tmp_path, options=_quiet())
    with pytest.raises(TrainingError, match="stages"):
        Trainer(_cfg(), _items(), tmp_path, TrainPlan(first_stage=3, last_stage=2), _quiet())


# --------------------------------------------------------------------------------------------- CLI
def test_cli_trains_resumes_and_reports_bad_input(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for k, (image, _) in enumerate(_items()):
        nib.save(nib.Nifti1Image(image.numpy(), np.diag([6.0, 6.0, 6.0, 1.0])), images / f"sub-{k}.nii.gz")
    out = tmp_path / "run"
    args = [str(images), "--out", str(out), "--stages", "1-2", "--iterations", "2,1,0,0", "--no-progress"]
    args += ["--seed", "4"]
    assert train_main(args + ["--checkpoint-every", "1"]) == 0
    ckpt = load_checkpoint(out / "checkpoints")
    assert ckpt.state["progress"]["stage"] == 2 and ckpt.state["plan"]["seed"] == 4
    assert ckpt.config.grid_shape == (GRID,) * 3 and ckpt.config.voxel_size_mm == 6.0
    assert len(_read_log(out)) == 3
    # resuming a finished run trains nothing more
    assert train_main([str(images), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert len(_read_log(out)) == 3

    # a new run of stage 3 from the first run's weights: levels 1-2 stay frozen (freeze_steps = 3000)
    stage3 = tmp_path / "stage3"
    assert train_main([str(images), "--out", str(stage3), "--init", str(out / "checkpoints"), "--stages", "3",
                       "--iterations", "0,0,1,0", "--no-progress"]) == 0
    weights3 = load_checkpoint(stage3 / "checkpoints").weights
    level12 = [k for k in ckpt.weights if k.startswith(("levels.0.", "levels.1."))]
    assert level12 and all(torch.equal(weights3[k], ckpt.weights[k]) for k in level12)
    assert [r["stage"] for r in _read_log(stage3)] == ["3"]

    bad = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((16, 16, 16), np.float32), np.eye(4)), bad)
    assert train_main([str(images / "sub-0.nii.gz"), str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.nii.gz" in err and "grid shape" in err
    assert train_main([str(images), "--out", str(out), "--resume", "--seed", "1"]) == 2
    assert "--seed" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- learning
def _labels_on_grid(n: int) -> tuple[np.ndarray, float]:
    """A real label map on an ``n``^3 grid covering 192 mm around the brain (nearest, centre samples)."""
    from smgic_pydra.synthesis import load_label_map

    labels, _ = load_label_map(LABEL_MAP)
    labels = np.where(labels >= 100, 0, labels)  # extra-cerebral tissue is removed (skull-stripped)
    centre = np.round(np.mean(np.nonzero(labels), axis=1)).astype(int) + 96
    padded = np.pad(labels, 96)
    crop = padded[tuple(slice(c - 96, c + 96) for c in centre)]
    step = 192 // n
    return crop[step // 2 :: step, step // 2 :: step, step // 2 :: step], float(step)


def _mean_dice(warped: np.ndarray, target: np.ndarray) -> float:
    labels = [v for v in np.unique(target) if v > 0 and np.count_nonzero(target == v) >= 8]
    scores = []
    for v in labels:
        a, b = warped == v, target == v
        scores.append(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))
    return float(np.mean(scores))


@pytest.mark.slow
def test_training_learns_a_known_deformation(tmp_path):
    if not LABEL_MAP.is_file():
        pytest.skip(f"shared label maps not available ({LABEL_MAP})")
    from smgic_pydra.synthesis import deform_volume, random_smooth_displacement, synthesize_t1

    fixed_labels, voxel_mm = _labels_on_grid(GRID)
    rng = np.random.default_rng(0)
    fixed = synthesize_t1(fixed_labels, rng, voxel_size_mm=voxel_mm)
    true_disp = random_smooth_displacement(fixed_labels.shape, rng, max_disp_vox=2.0, control_spacing=8)
    moving_labels = deform_volume(fixed_labels, true_disp, order=0)
    moving = synthesize_t1(moving_labels, rng, voxel_size_mm=voxel_mm)  # new contrast draw, deformed anatomy
    identity_dice = _mean_dice(moving_labels, fixed_labels)

    cfg = _cfg(learning_rate=1e-3, freeze_steps=0)
    items = [(torch.from_numpy(fixed), None), (torch.from_numpy(moving), None)]
    plan = TrainPlan(seed=0, first_stage=1, last_stage=4, iterations=(60, 60, 100, 15))
    trainer = Trainer(cfg, items, tmp_path, plan, _quiet(checkpoint_every=10**6))
    rows = trainer.run()

    for stage in (2, 3, 4):
        totals = [r["total"] for r in rows if r["stage"] == stage]
        assert np.mean(totals[-5:]) < np.mean(totals[:5]) - 0.05, stage

    with torch.no_grad():
        disp = trainer.model.register(torch.from_numpy(moving)[None, None], torch.from_numpy(fixed)[None, None]).disp
    u = disp[0].numpy().astype(np.float64) * (GRID - 1) / 2.0  # normalized -> voxels; channels (x, y, z) = (k, j, i)
    coords = np.indices(fixed_labels.shape) + u[::-1]
    warped_labels = ndimage.map_coordinates(moving_labels, coords, order=0, mode="nearest")
    learned_dice = _mean_dice(warped_labels, fixed_labels)
    assert learned_dice > identity_dice + 0.2, (identity_dice, learned_dice)


def test_train_cli_old_option_names_are_deprecated_aliases():
    from smgic_pydra.cli.parser import build_parser as bids_parser
    from smgic_pydra.cli.train import build_parser

    with pytest.warns(DeprecationWarning, match="--seed is deprecated; use --random-seed"):
        old = build_parser().parse_args(["x", "--out", "o", "--seed", "3", "--init", "m"])
    new = build_parser().parse_args(["x", "--out", "o", "--random-seed", "3", "--init-model", "m"])
    assert (old.seed, old.init) == (new.seed, new.init) == (3, Path("m"))
    assert new.checkpoint_every == bids_parser().parse_args(["b", "o", "train"]).checkpoint_every == 500
