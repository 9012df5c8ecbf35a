"""Training on a cohort: participant split, presets, validation Dice, the ``smgic-bids ... train`` level,
its model folder, and a killed training run that resumes from its checkpoint."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main
from smgic_pydra.config import SMGICNetConfig, small_config
from smgic_pydra.inference.model_io import default_model_dir
from smgic_pydra.io.errors import InputError
from smgic_pydra.training import TrainingError, Validator, load_preset, preset_names, split_by_participant
from smgic_pydra.training.validation import warp_labels

needs_example = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")



def _csv(path: Path, delimiter=",") -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


# ------------------------------------------------------------------------------------------- split
def test_split_by_participant_keeps_sessions_together_and_is_seeded():
    keys = ["sub-01_ses-1", "sub-01_ses-2", "sub-02", "sub-03_ses-a_run-1", "sub-03_ses-a_run-2", "sub-04", "sub-05",
            "sub-06"]
    split = split_by_participant(keys, 0.34, seed=4)
    assert split == split_by_participant(list(reversed(keys)), 0.34, seed=4)  # input order does not matter
    assert len(split.participants("validation")) == 2 and len(split.participants("train")) == 4  # round(0.34 * 6)
    assert sorted(split.train + split.validation) == sorted(keys)
    for participant in ("01", "03"):  # every image of a participant is on one side
        sides = {row["set"] for row in split.rows() if row["participant_id"] == f"sub-{participant}"}
        assert len(sides) == 1
    drawn = {tuple(split_by_participant(keys, 0.34, seed=s).validation) for s in range(12)}
    assert len(drawn) > 3  # the seed changes the draw
    assert split.rule == "fraction 0.34" and split.seed == 4

    explicit = split_by_participant(keys, ["sub-03", "05"])
    assert explicit.validation == ("sub-03_ses-a_run-1", "sub-03_ses-a_run-2", "sub-05")
    assert len(split_by_participant(["sub-02", "sub-04", "sub-05"], 0.2).validation) == 1  # at least one
    assert split_by_participant(keys, 0.0).validation == ()
    with pytest.raises(TrainingError, match="sub-09"):
        split_by_participant(keys, ["09"])
    with pytest.raises(TrainingError, match="at least 2 images"):
        split_by_participant(["sub-01", "sub-02"], ["02"])
    with pytest.raises(TrainingError, match=r"\[0, 1\)"):
        split_by_participant(keys, 1.0)


# ----------------------------------------------------------------------------------------- presets
def test_packaged_presets_match_the_paper_and_the_default_model(tmp_path):
    assert set(preset_names()) >= {"paper", "default-model", "cpu"}
    paper = load_preset("paper")
    assert paper.config == SMGICNetConfig() and paper.iterations == SMGICNetConfig().stage_iterations
    assert not paper.augment.enabled
    # the preset that documents the packaged model trains exactly its config
    default = load_preset("default-model")
    packaged = SMGICNetConfig.from_json((default_model_dir() / "config.json").read_text())
    assert default.config == packaged and default.augment.enabled and sum(default.iterations) == 7800
    cpu = load_preset("cpu")
    assert cpu.config.grid_shape == (64, 64, 64) and cpu.config.voxel_size_mm * 64 == 192.0

    bad = tmp_path / "bad.json"
    for content, problem in (("{", "not a readable JSON"), ('{"config": {}}', "'iterations' required"),
                             ('{"iterations": [1, 2, 3]}', "4 non-negative integers"),
                             ('{"iterations": [1, 1, 1, 1], "config": {"depth": 3}}', "invalid preset settings")):
        bad.write_text(content)
        with pytest.raises(InputError, match=problem) as err:
            load_preset(bad)
        assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="unknown training preset"):
        load_preset("fastest")


# -------------------------------------------------------------------------------------- validation
def test_warp_labels_by_a_whole_voxel_shift_equals_a_roll():
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 5, (1, 1, 16, 12, 10)))
    disp = torch.zeros(1, 3, 16, 12, 10)
    disp[:, 2] = 2 * 2.0 / (16 - 1)  # +2 voxels along D (channel 2 is z = D)
    disp[:, 0] = -1 * 2.0 / (10 - 1)  # -1 voxel along W
    warped = warp_labels(labels, disp)[0, 0].numpy()
    expected = np.roll(np.roll(labels[0, 0].numpy(), -2, axis=0), 1, axis=2)  # I(p + u): shift back
    assert np.array_equal(warped[:-2, :, 1:], expected[:-2, :, 1:])


def test_validation_dice_of_the_identity_equals_simpleitk(tmp_path, write_cohort):
    import SimpleITK as sitk

    from smgic_pydra.network import SMGICNet
    from smgic_pydra.preparation import prepare_subject

    cfg = small_config(grid_shape=(32, 32, 32), voxel_size_mm=4.0)
    subjects = [prepare_subject(s["t1w"], tmp_path / s["subject"], cfg, mask_path=s["mask"], labels_path=s["labels"],
                                subject_id=s["subject"]) for s in write_cohort(tmp_path / "raw", 3)]
    items = [(torch.from_numpy(s.image), torch.from_numpy(s.labels)) for s in subjects]
    model = SMGICNet(cfg)
    with torch.no_grad():
        for level in model.levels:  # velocity 0 everywhere: the identity map at every level
            head = level.body.head if hasattr(level, "body") else level.head
            head.last.weight.zero_()  # (no bias)
    model.train()
    validator = Validator(items[:1], cfg, label_values=[2, 3, 17], partners=items[1:], seed=0)
    assert validator.pairs == [(0, 1), (0, 2)]
    result = validator.evaluate(model, 4, torch.device("cpu"))
    assert model.training  # evaluation leaves the mode as it was

    def sitk_dice(a, b):  # mean over the labels present in the fixed image b (2 and 3; 17 is absent)
        f = sitk.LabelOverlapMeasuresImageFilter()
        f.Execute(sitk.GetImageFromArray(a.astype(np.int32)), sitk.GetImageFromArray(b.astype(np.int32)))
        return np.mean([f.GetDiceCoefficient(int(v)) for v in (2, 3) if np.any(b == v)])

    labels = [s.labels for s in subjects]
    expected = np.mean([sitk_dice(labels[0], labels[j]) for j in (1, 2)] + [sitk_dice(labels[j], labels[0])
                                                                            for j in (1, 2)])
    assert 0.3 < expected < 0.99
    assert result["dice"] == pytest.approx(expected, abs=1e-12)
    assert result["pairs"] == 2 and np.isfinite(result["loss"])
    assert np.isnan(Validator([(items[0][0], None)], cfg, partners=items[1:2]).evaluate(
        model, 1, torch.device("cpu"))["dice"])


# ------------------------------------------------------------------------------- the train level
@pytest.fixture(scope="module")
def example(tmp_path_factory, tiny_preset):
    if not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file():
        pytest.skip("mricron-data not installed")
    root = tmp_path_factory.mktemp("train_example")
    bids = make_example_dataset(root / "bids", n_subjects=3, seed=1, voxel_mm=3.0)
    preset = root / "tiny.json"
    preset.write_text(json.dumps(tiny_preset))
    return bids, preset


def _train_args(bids, out, work, preset, *extra):
    return [str(bids), str(out), "train", "-w", str(work), "--train-preset", str(preset), "--validate-every", "2",
            "--checkpoint-every", "2", "--random-seed", "3", "--skip-bids-validation", "--no-progress", *extra]


@needs_example
@pytest.mark.slow
def test_train_level_writes_a_model_folder_that_registers(example, tmp_path, capsys):
    bids, preset = example
    out, work = tmp_path / "model", tmp_path / "work"
    assert main(_train_args(bids, out, work, preset, "--validation-participants", "02")) == 0

    # the model folder: weights + config (a --model), card, logs, split, provenance
    weights = (out / "model.safetensors").read_bytes()
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["GeneratedBy"][0]["ModelWeightsSHA256"] == hashlib.sha256(weights).hexdigest()
    assert (out / "model.safetensors.sha256").read_text() == f"{hashlib.sha256(weights).hexdigest()}  model.safetensors\n"
    assert description["GeneratedBy"][0]["RandomSeed"] == 3
    assert SMGICNetConfig.from_json((out / "config.json").read_text()).grid_shape == (32, 32, 32)
    split = _csv(out / "split.tsv", "\t")
    assert {(r["participant_id"], r["set"]) for r in split} == {("sub-01", "train"), ("sub-02", "validation"),
                                                                ("sub-03", "train")}
    log = _csv(out / "training_log.csv")
    assert [int(r["global_step"]) for r in log] == list(range(1, 13))
    validation = _csv(out / "validation_log.csv")
    steps = [int(r["global_step"]) for r in validation]
    assert steps[0] == 0 and {3, 6, 9, 12} <= set(steps) and steps == sorted(set(steps))
    assert all(0 <= float(r["dice"]) <= 1 for r in validation)  # AAL labels of the example's dseg.tsv
    summary = _csv(out / "training_summary.csv")
    assert [int(r["stage"]) for r in summary] == [1, 2, 3, 4]
    final = next(r for r in validation if int(r["global_step"]) == 12)
    assert float(summary[-1]["validation_dice"]) == pytest.approx(float(final["dice"]), abs=1e-4)
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the run's index.html: curves, stage and validation tables, split, shown in headless Chromium
    from browser_check import check_report

    page = (out / "index.html").read_text()
    assert page.count("<tr>", page.index('id="validation-table"')) >= len(validation) + 1
    assert "sub-02" in page[page.index('id="split-table"'):]
    seen = check_report(out / "index.html")
    assert seen.problems == [] and seen.images == 1
    card = (out / "MODEL_CARD.md").read_text()
    assert hashlib.sha256(weights).hexdigest() in card and "Validation participants: sub-02." in card
    assert "| 4 | 3 |" in card and "split by participant" in card.lower()
    record = json.loads((out / "training.json").read_text())
    assert record["plan"]["seed"] == 3 and record["dataset"]["split_rule"] == "participants 02"
    assert record["run"]["processes"] == 1

    # the same command again: nothing is trained or rewritten; each run records its settings (logs/)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "logs"}
    assert main(_train_args(bids, out, work, preset, "--validation-participants", "02")) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "logs"} == before
    configs = [json.loads(p.read_text()) for p in sorted((out / "logs").glob("config-*.json"))]
    assert [c["settings"]["analysis_level"] for c in configs] == ["train", "train"]
    assert configs[0]["settings"]["validation_participants"] == ["02"] and configs[0]["settings"]["random_seed"] == 3
    # other settings into the same folder are refused before any work, in one line
    capsys.readouterr()
    assert main(_train_args(bids, out, work, preset, "--iterations", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(out) in err and "new output folder" in err

    # the folder is a model for the participant level
    reg_out = tmp_path / "registrations"
    assert main([str(bids), str(reg_out), "participant", "-w", str(work), "--model", str(out), "--pairs",
                 "reference:01", "--participant-label", "02", "--skip-bids-validation", "--no-progress"]) == 0
    reg_description = json.loads((reg_out / "dataset_description.json").read_text())
    assert reg_description["GeneratedBy"][0]["ModelWeightsSHA256"] == hashlib.sha256(weights).hexdigest()


@needs_example
def test_train_level_rejects_bad_settings_in_one_line(example, tmp_path, capsys):
    bids, preset = example
    for extra, problem in ((["--validation-participants", "07"], "sub-07"), (["--stages", "3-2"], "stages"),
                           (["--iterations", "1,2"], "--iterations"), (["--train-preset", "nope"], "unknown")):
        assert main(_train_args(bids, tmp_path / "o", tmp_path / "w", preset, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("smgic-bids: error:") and "\n" not in err and problem in err, err
    assert not (tmp_path / "o").exists()


@needs_example
@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_run(example, tmp_path):
    bids, preset = example
    longer = json.loads(preset.read_text()) | {"iterations": [4, 4, 4, 6]}
    preset = tmp_path / "longer.json"
    preset.write_text(json.dumps(longer))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(out, work):
        return [sys.executable, "-m", "smgic_pydra.cli.bids_app",
                *_train_args(bids, out, work, preset, "--nprocs", "1", "--validate-every", "0")]

    out, work = tmp_path / "model", tmp_path / "work"
    proc = subprocess.Popen(command(out, work), env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # kill once stage 4 has a mid-stage checkpoint
        if list(work.glob("train/*/checkpoints/stage4-step0000002")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = list(work.glob("train/*/checkpoints"))
    run_dir = run_dir.parent
    assert not (out / "model.safetensors").exists()
    prepared = {p: p.stat().st_mtime_ns for p in work.glob("prepared/*/*/prepared.json")}
    assert len(prepared) == 3

    assert subprocess.run(command(out, work), env=env, capture_output=True).returncode == 0
    processes = [json.loads(line) for line in (run_dir / "processes.jsonl").read_text().splitlines()]
    assert len(processes) == 2 and processes[0]["from_global_step"] == 0
    assert processes[1]["from_global_step"] >= 14  # from a stage-4 checkpoint, not from the start
    assert {p: p.stat().st_mtime_ns for p in work.glob("prepared/*/*/prepared.json")} == prepared  # not redone
    log = _csv(out / "training_log.csv")
    assert [int(r["global_step"]) for r in log] == list(range(1, 19))  # every step once
    assert json.loads((out / "training.json").read_text())["run"]["processes"] == 2

    # the same command, never interrupted, trains the same weights bit for bit
    ref_out, ref_work = tmp_path / "ref_model", tmp_path / "ref_work"
    assert subprocess.run(command(ref_out, ref_work), env=env, capture_output=True).returncode == 0
    assert (ref_out / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    ref_log = _csv(ref_out / "training_log.csv")
    assert [r["total"] for r in ref_log] == [r["total"] for r in log]
