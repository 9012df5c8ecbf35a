"""Adam for one tensor, the update of ``torch.optim.Adam`` (no weight decay, no AMSGrad).

The affine stage and the refinement take a few dozen steps per pair. Constructing any
``torch.optim`` optimizer imports ``torch._dynamo`` (and SymPy) on first use: 0.74 s of one CPU
per process with torch 2.13, once per pair in a one-pair job and as much as the whole ``fast``
registration of a 3 mm pair. This class takes the same steps without that import.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam (Kingma & Ba 2015) of ``param`` (a leaf tensor with ``requires_grad``), as
    ``torch.optim.Adam(params=[param], lr, betas, eps)``: the same moment updates, bias corrections and
    step in the same operation order. :meth:`step` reads ``param.grad`` and clears it."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, float(lr), betas, float(eps)
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.steps = 0

    @torch.no_grad()
    def step(self, lr: float | None = None) -> None:
        """One update with learning rate ``lr`` (default: the constructor's)."""
        grad, (beta1, beta2) = self.param.grad, self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = (self.lr if lr is None else lr) / (1 - beta1 ** self.steps)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2 ** self.steps) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)
        self.param.grad = None


def linear_decay(lr: float, step: int, steps: int, end_factor: float = 0.2) -> float:
    """Learning rate of ``step`` (0-based) decaying linearly from ``lr`` to ``end_factor * lr`` at ``steps``
    (``torch.optim.lr_scheduler.LinearLR(start_factor=1, end_factor, total_iters=steps)``'s schedule, in
    closed form)."""
    return lr * (1.0 + (end_factor - 1.0) * min(step, steps) / max(steps, 1))
