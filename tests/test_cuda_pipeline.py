"""On CUDA (skipped without a GPU): the whole pair (affine, network, refinement, native fields) gives the
mapping the CPU gives, in float32; its compact mapping exported on the CPU gives its fields to rounding;
bf16 autocast on CUDA stays close.

Reference: the same pair and weights on the CPU in float32.
"""

import numpy as np
import pytest
import torch

from smgic_pydra.config import SMGICNetConfig
from smgic_pydra.inference import load_model, resolve_model_files, smgicnet_pair
from smgic_pydra.pipeline_settings import PipelineSettings
from smgic_pydra.preparation.prepare import prepare_subject

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_cuda_pair_matches_the_cpu_in_fp32_and_bf16_stays_close(tmp_path, write_ellipsoid_subject, write_small_model):
    model = write_small_model(tmp_path / "model")
    cfg = SMGICNetConfig.from_json(resolve_model_files(model)[1].read_text())
    subjects = [write_ellipsoid_subject(tmp_path, "a", (0.0, 0.0, 0.0)),
                write_ellipsoid_subject(tmp_path, "b", (4.0, -3.0, 2.0), 1.1, seed=1)]
    prepared = [prepare_subject(s["t1w"], tmp_path / "prep" / s["subject"], cfg, mask_path=s["mask"],
                                labels_path=s["labels"], subject_id=s["subject"]) for s in subjects]
    settings = PipelineSettings.from_options({"precision": "fp32", "refine": 4})
    cpu = smgicnet_pair(load_model(model, "cpu"), *prepared, settings=settings)
    cuda_bundle = load_model(model, "cuda")
    gpu = smgicnet_pair(cuda_bundle, *prepared, settings=settings)
    assert gpu.sidecar["device"].startswith("cuda") and gpu.sidecar["precision"]["network"] == "fp32"
    scale = np.abs(cpu.forward).mean()
    assert scale > 0.1  # mm: the pair moved
    assert np.abs(gpu.forward - cpu.forward).max() < 0.02 * np.abs(cpu.forward).max()
    assert np.abs(gpu.inverse - cpu.inverse).mean() < 0.005 * np.abs(cpu.inverse).mean()
    # the GPU run's compact mapping exported on the CPU (integration and native fields there): float32 rounding
    exported, _, _ = gpu.compact.dense_fields(prepared[0].subject_id)
    assert np.abs(exported - gpu.forward).max() < 1e-3  # mm
    low = smgicnet_pair(cuda_bundle, *prepared, settings=PipelineSettings.from_options({"precision": "bf16", "refine": 4}))
    assert low.sidecar["precision"]["network"] == "bf16"
    assert np.abs(low.forward - cpu.forward).mean() < 0.05 * scale
