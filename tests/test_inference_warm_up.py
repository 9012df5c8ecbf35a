"""The untimed warm-up forward (CUDA) runs before a pair's clocks start: the first pair of a bundle reports the
network seconds of the later ones. The device type is made to warm up on the CPU; the model's forward sleeps."""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from smgic_pydra.config import small_config
from smgic_pydra.inference import register
from smgic_pydra.inference.model_io import ModelBundle
from smgic_pydra.pipeline_settings import PipelineSettings, RefineSettings
from smgic_pydra.preparation import prepare_subject

FORWARD = 0.5  # s per network forward


class SleepingModel:
    """A network whose forward takes FORWARD seconds and returns a zero velocity."""

    def __init__(self, cfg):
        self.cfg, self.calls = cfg, 0

    def velocity(self, moving, fixed, upto_level=4):
        self.calls += 1
        time.sleep(FORWARD)
        return torch.zeros(1, 3, *self.cfg.level_shape(upto_level))


def test_first_pair_network_seconds_equal_the_later_ones(tmp_path, monkeypatch):
    cfg = small_config(grid_shape=(32, 32, 32), voxel_size_mm=4.0)
    subjects = []
    for i in range(2):
        image = np.zeros((40, 40, 40), np.float32)
        image[8 + i:30 + i, 6:32, 9:31] = np.random.default_rng(i).uniform(0.5, 1.0, (22, 26, 22))
        nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / f"s{i}.nii.gz")
        subjects.append(prepare_subject(tmp_path / f"s{i}.nii.gz", tmp_path / f"prep{i}", cfg, subject_id=f"s{i}"))
    monkeypatch.setattr(register, "WARM_UP_DEVICES", ("cpu",))
    model = SleepingModel(cfg)
    bundle = ModelBundle(model, cfg, "0" * 64, Path("stub"), torch.device("cpu"))
    settings = PipelineSettings(affine=False, refine=RefineSettings(steps=0))
    pairs = []
    for fixed, moving in (subjects, subjects[::-1], subjects):
        before = time.perf_counter()
        pairs.append((before, register.smgicnet_pair(bundle, fixed, moving, settings=settings)))
    assert model.calls == 4 and bundle.warmed_up  # one untimed warm-up, then one forward per pair
    network = [p.seconds["network_seconds"] for _, p in pairs]
    assert min(network) >= FORWARD
    assert network[0] == pytest.approx(np.mean(network[1:]), abs=0.2 * FORWARD)
    assert pairs[0][1].started - pairs[0][0] >= FORWARD  # the pair's total clock starts after the warm-up
    assert pairs[0][1].seconds["forward_seconds"] < network[0] + 0.8 * FORWARD
