"""The network forward's precision: bf16 autocast by default only on a CPU with bf16 units (or when forced), the
velocity close to float32's (reference: the float32 forward of the same weights and inputs)."""

import pytest
import torch

from smgic_pydra.config import small_config
from smgic_pydra.network import SMGICNet
from smgic_pydra.network import precision
from smgic_pydra.network.precision import cpu_bf16_flags, forward_context, network_precision
from smgic_pydra.pipeline_settings import PipelineSettings


def test_precision_choice_and_option():
    assert network_precision("fp32", "cpu") == "fp32" and network_precision("auto", "cuda") == "fp32"
    assert network_precision("bf16", "cpu") == "bf16" and network_precision("bf16", "cuda") == "bf16"
    assert network_precision("auto", "cpu") == ("bf16" if cpu_bf16_flags() else "fp32")
    assert PipelineSettings.from_options({"precision": "fp32"}).precision == "fp32"
    with pytest.raises(ValueError, match="smgicnet.precision must be one of auto, bf16, fp32"):
        PipelineSettings.from_options({"precision": "fp16"})


def test_forced_bf16_on_a_cpu_without_bf16_units_warns(monkeypatch, recwarn):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    with pytest.warns(RuntimeWarning, match="without bf16 units"):
        assert precision.precision_record("bf16", "cpu")["network"] == "bf16"
    assert precision.precision_record("auto", "cpu") == {"setting": "auto", "network": "fp32", "cpu_bf16_flags": []}
    precision.precision_record("bf16", "cuda")
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    assert precision.precision_record("bf16", "cpu")["network"] == "bf16"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_bf16_forward_velocity_is_close_to_fp32():
    torch.manual_seed(0)
    cfg = small_config(grid_shape=(16, 16, 16), voxel_size_mm=8.0)
    net = SMGICNet(cfg).eval()
    shape = (1, 1, *cfg.grid_shape)
    fixed = torch.nn.functional.avg_pool3d(torch.rand(shape), 5, 1, 2)
    moving = torch.roll(fixed, 2, dims=2)
    with torch.inference_mode():
        reference = net.register(moving, fixed).velocity.float()
        with forward_context("bf16", "cpu"):
            low = net.register(moving, fixed).velocity.float()
    assert low.dtype == torch.float32 and reference.abs().mean() > 0
    assert (low - reference).abs().mean() < 0.05 * reference.abs().mean()
