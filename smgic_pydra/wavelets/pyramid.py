"""The 3-level Haar pyramid of one image and the inputs each network level receives.

Decomposition step ``k`` (1..3) splits ``LLL_{k-1}`` (``LLL_0`` = the image) into ``LLL_k`` at
``N / 2**k`` and 7 detail bands; the energy map ``EM_k`` is the sum of squares of those 7 bands
(same grid as ``LLL_k``). Only ``EM_1`` and ``EM_2`` are used (``EM_3`` is never computed).

Scaling (``SMGICNetConfig``), applied after the whole raw chain is computed (the chain itself is
exactly ``pywt.dwtn(., 'haar')`` applied three times to the approximation):

* ``lll_normalize``: ``LLL_k / (2*sqrt(2))**k``, the local mean, so a ``[0, 1]`` image gives
  ``[0, 1]`` bands; False keeps the raw orthonormal scale (``(2*sqrt(2))**k`` x the local mean).
* ``energy_normalize``: ``raw`` = the plain sum of squares of the raw detail bands;
  ``percentile`` = raw divided, per sample, by the ``energy_percentile``-th percentile of its
  positive values (by 1 when there are none; rounding noise is not positive); ``log1p`` = ``log1p`` of the raw map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import N_LEVELS, SMGICNetConfig
from .haar import haar_dwt3d

N_DECOMPOSITIONS = 3
LLL_GAIN = 2.0 * math.sqrt(2.0)
"""Orthonormal 3-D Haar gain of the approximation per decomposition step."""


@dataclass
class WaveletPyramid:
    """Haar pyramid of a ``(B, 1, D, H, W)`` image; ``lll[k-1]`` is ``LLL_k``, ``energy[k-1]`` is ``EM_k``."""

    image: torch.Tensor
    """The image itself, ``(B, 1, D, H, W)``."""
    lll: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    """``LLL_1..LLL_3``, ``(B, 1, N/2**k)``, scaled per ``lll_normalize``."""
    energy: tuple[torch.Tensor, torch.Tensor]
    """``EM_1, EM_2``, ``(B, 1, N/2**k)``, scaled per ``energy_normalize``."""

    def level_inputs(self, level: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(image input, energy map or None)`` of network level ``level`` (1..4).

        Level 1: ``LLL_3``; level 2: ``LLL_2`` and ``EM_2``; level 3: ``LLL_1`` and ``EM_1``;
        level 4: the image.
        """
        if not 1 <= level <= N_LEVELS:
            raise ValueError(f"level must be 1..{N_LEVELS}, got {level}")
        if level == N_LEVELS:
            return self.image, None
        step = N_LEVELS - level  # decomposition step feeding this level: 3, 2, 1
        return self.lll[step - 1], (self.energy[step - 1] if step <= 2 else None)


def _percentile_scale(energy: torch.Tensor, approx: torch.Tensor, percentile: float) -> torch.Tensor:
    """Per-sample ``percentile``-th percentile of the positive energies, ``(B, 1, 1, 1, 1)``.

    Energies below ``eps * max(approx**2)`` (rounding noise, e.g. of a constant image) do not count as
    positive; the scale is 1 when no value is positive.
    """
    eps = torch.finfo(energy.dtype).eps
    scales = []
    for sample, sample_approx in zip(energy.detach(), approx.detach()):
        positive = sample[sample > eps * sample_approx.square().amax()]
        value = torch.quantile(positive, percentile / 100.0) if positive.numel() else energy.new_ones(())
        scales.append(torch.where(value > 0, value, torch.ones_like(value)))
    return torch.stack(scales).view(-1, 1, 1, 1, 1)


def _scale_energy(energy: torch.Tensor, approx: torch.Tensor, cfg: SMGICNetConfig) -> torch.Tensor:
    """Scale the raw energy map of one step (``approx`` = that step's raw approximation)."""
    if cfg.energy_normalize == "percentile":
        return energy / _percentile_scale(energy, approx, cfg.energy_percentile)
    if cfg.energy_normalize == "log1p":
        return torch.log1p(energy)
    return energy


def wavelet_pyramid(image: torch.Tensor, cfg: SMGICNetConfig) -> WaveletPyramid:
    """Pyramid of ``image`` ``(B, 1, D, H, W)`` (sides divisible by 8), scaled as ``cfg`` says.

    Computed with autocast disabled, in the image's floating dtype.
    """
    if image.ndim != 5 or image.shape[1] != 1:
        raise ValueError(f"wavelet_pyramid needs a (B, 1, D, H, W) image, got shape {tuple(image.shape)}")
    if any(n % 2**N_DECOMPOSITIONS for n in image.shape[-3:]):
        raise ValueError(f"wavelet_pyramid needs sides divisible by 8, got {tuple(image.shape[-3:])}")
    with torch.autocast(device_type=image.device.type, enabled=False):
        lll, energy = [], []
        approx = image
        for step in range(1, N_DECOMPOSITIONS + 1):
            bands = haar_dwt3d(approx)
            approx = bands[:, :, 0]
            lll.append(approx / LLL_GAIN**step if cfg.lll_normalize else approx)
            if step < N_DECOMPOSITIONS:
                energy.append(_scale_energy(bands[:, :, 1:].square().sum(dim=2), approx, cfg))
    return WaveletPyramid(image=image, lll=tuple(lll), energy=tuple(energy))
