"""The pipeline's Adam against ``torch.optim.Adam`` (with ``LinearLR``), and that it does not import torch._dynamo."""

import subprocess
import sys

import torch

from smgic_pydra.refinement.adam import Adam, linear_decay


def _loss(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a @ p - b) ** 2).sum() + (p ** 4).sum()


def test_steps_equal_torch_optim_adam_with_a_linear_learning_rate_decay():
    torch.manual_seed(0)
    a, b = torch.randn(20, 12), torch.randn(20)
    ours, theirs = torch.zeros(12, requires_grad=True), torch.zeros(12, requires_grad=True)
    reference = torch.optim.Adam([theirs], lr=0.05)
    schedule = torch.optim.lr_scheduler.LinearLR(reference, 1.0, 0.2, total_iters=30)
    optimizer = Adam(ours, lr=0.05)
    for step in range(40):  # 10 steps past the decay's end: the rate stays at a fifth
        reference.zero_grad()
        _loss(theirs, a, b).backward()
        reference.step()
        schedule.step()
        _loss(ours, a, b).backward()
        optimizer.step(linear_decay(0.05, step, 30))
        assert ours.grad is None
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert theirs.detach().norm() > 0.5  # it moved


def test_constant_rate_on_a_volume_equals_torch_optim_adam():
    torch.manual_seed(1)
    target = torch.randn(1, 3, 6, 5, 4)
    ours, theirs = torch.zeros_like(target, requires_grad=True), torch.zeros_like(target, requires_grad=True)
    reference, optimizer = torch.optim.Adam([theirs], lr=0.01), Adam(ours, lr=0.01)
    for _ in range(12):
        reference.zero_grad()
        ((theirs - target) ** 2).mean().backward()
        reference.step()
        ((ours - target) ** 2).mean().backward()
        optimizer.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-8)


def test_a_refinement_in_a_fresh_process_does_not_import_torch_dynamo():
    """torch.optim's optimizers import torch._dynamo (and SymPy) when first constructed: ~0.7 s a process."""
    code = ("import sys, torch\nfrom smgic_pydra.pipeline_settings import RefineSettings\n"
            "from smgic_pydra.refinement import refine_velocity\ntorch.manual_seed(0)\n"
            "images = torch.rand(2, 1, 1, 8, 8, 8)\n"
            "v, record = refine_velocity(torch.zeros(1, 3, 8, 8, 8), *images, RefineSettings(steps=2, window=3))\n"
            "assert record['loss_after'] < record['loss_before']\nprint('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
