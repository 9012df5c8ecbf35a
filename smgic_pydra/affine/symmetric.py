"""Symmetric multi-resolution affine registration of two prepared brains in their halfway space.

The affine ``A`` (4 x 4) maps fixed RAS mm to moving RAS mm (pull-back: ``moving(A x)`` lies on
``fixed(x)``). It is parameterised by its square root ``S = T(c) expm(L) T(-c)`` (``A = S S``,
``L`` a 4 x 4 generator with 12 free entries, ``c`` a fixed centre in the halfway space): the
fixed image is sampled at ``S^-1 g`` and the moving one at ``S g`` for points ``g`` of a halfway
grid, and the loss is local NCC between the two. Exchanging the images maps ``L`` to ``-L`` and
leaves every step of the optimisation mirrored, so registering B to A gives the inverse of A to B.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import torch

from ..losses.ncc import local_ncc
from ..preparation.grid import network_affine
from ..refinement.adam import Adam, linear_decay
from ..worldspace.sampling import apply_affine
from .moments import moment_candidates
from .world_sampling import pooled, sample_on_grid

DEFAULT_LEVELS = ((4, 12), (4, 28), (2, 12))
"""``(pooling factor, Adam steps)`` from coarse to fine; the first level screens the candidates (each runs it,
the lowest loss goes on), so only the winner pays for the rest. Against 40 screening steps at 6 mm: Dice of
the network after it -0.0009 on average, -0.004 at worst, on 6 pairs of training maps 01-04 at 3 mm; with the
whole default pipeline at 2 mm 0.7110 against 0.7113, 26.6 against 28.7 CPU s a pair."""
COARSE_LEVELS = ((4, 12), (4, 34))
"""The levels without the 3 mm one (``smgicnet.affine_fine=false``, the ``fast`` preset): half the stage's time.
On the 12 held-out 2 mm pairs (``benchmarks/gpu_pipeline.py --device cpu``): affine + network Dice -0.001 on
average (worst pair -0.006), the whole default pipeline -0.002 (worst -0.013), so the default keeps the 3 mm
level; on 6 pairs of training maps 01-04 the whole pipeline gained 0.001."""
SCREENED = 3
"""Moments candidates optimised over the first level: the axes-kept one and the best-scored others."""
TRANSLATION_SCALE_MM = 20.0
"""Millimetres of translation per unit of the generator's translation parameters."""


@dataclass
class AffineResult:
    """Result of :func:`register_affine`; matrices are ``(4, 4)`` float64 in RAS mm.

    matrix: ``A``, fixed -> moving. half: ``S`` with ``S @ S = A`` (fixed -> halfway is ``S``,
    halfway -> moving is ``S``). centre: ``c`` (RAS mm, halfway space), the centre of the
    halfway network grid. candidate: index of the chosen moments candidate. loss: final local NCC.
    """

    matrix: np.ndarray
    half: np.ndarray
    centre: np.ndarray
    candidate: int
    loss: float
    seconds: float
    candidate_losses: list = field(default_factory=list)

    def inverse(self) -> "AffineResult":
        """The result for the images exchanged: ``A^-1``, ``S^-1``, the same halfway centre."""
        return dataclasses.replace(self, matrix=np.linalg.inv(self.matrix), half=np.linalg.inv(self.half))

    def to_sidecar(self) -> dict:
        """JSON-ready parameters (matrix rows, RAS mm) and timing."""
        return {
            "matrix_fixed_to_moving_ras": np.round(self.matrix, 10).tolist(),
            "halfway_centre_ras_mm": np.round(self.centre, 6).tolist(),
            "moments_candidate": self.candidate,
            "candidate_losses": [round(v, 6) for v in self.candidate_losses],
            "final_loss": round(self.loss, 6),
            "seconds": self.seconds,
        }


def _translation(offset) -> np.ndarray:
    t = np.eye(4)
    t[:3, 3] = offset
    return t


def _similarity_half(similarity: np.ndarray) -> np.ndarray:
    """``S`` with ``S @ S = similarity`` for a similarity ``s R x + t`` (4 x 4): ``sqrt(s)`` times the
    rotation by half the angle about the same axis, so a half turn (which has no real principal
    square root) is handled too."""
    from scipy.spatial.transform import Rotation

    linear = similarity[:3, :3]
    scale = np.cbrt(np.linalg.det(linear))
    rotation = Rotation.from_matrix(linear / scale)
    half = np.eye(4)
    half[:3, :3] = np.sqrt(scale) * Rotation.from_rotvec(rotation.as_rotvec() / 2.0).as_matrix()
    half[:3, 3] = np.linalg.solve(half[:3, :3] + np.eye(3), similarity[:3, 3])  # S(S x) = A x
    return half


class _HalfwayObjective:
    """Local NCC of the two images sampled on one pooled halfway grid, as a function of ``L``."""

    def __init__(self, pyramid, centre, grid_shape, voxel_mm, factor, window, device):
        self.images = pyramid[factor]
        self.shape = tuple(int(n) // factor for n in grid_shape)
        grid = network_affine(centre, self.shape, voxel_mm * factor)
        # halfway index -> RAS mm about the centre, and back: the sampling grids are from_centre @ expm(+-L) @ to_centred
        self.to_centred = torch.as_tensor(_translation(-np.asarray(centre)) @ grid, device=device)
        self.from_centre = torch.as_tensor(_translation(centre), device=device)
        self.window = window

    def sampled(self, generator: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for sign, (image, affine) in zip((-1.0, 1.0), self.images):
            half = torch.linalg.matrix_exp(sign * generator).double()
            out.append(sample_on_grid(image, affine, self.from_centre @ half @ self.to_centred, self.shape))
        return out[0], out[1]

    def __call__(self, generator: torch.Tensor) -> torch.Tensor:
        return local_ncc(*self.sampled(generator), self.window)


def _generator(params: torch.Tensor) -> torch.Tensor:
    """4 x 4 generator from 12 parameters (9 linear, 3 translation in units of TRANSLATION_SCALE_MM)."""
    top = torch.cat((params[:9].view(3, 3), params[9:].view(3, 1) * TRANSLATION_SCALE_MM), dim=1)
    return torch.cat((top, torch.zeros(1, 4, dtype=params.dtype, device=params.device)), dim=0)


def _params(generator: np.ndarray) -> np.ndarray:
    return np.concatenate([generator[:3, :3].ravel(), generator[:3, 3] / TRANSLATION_SCALE_MM])


def register_affine(fixed, moving, *, levels=DEFAULT_LEVELS, learning_rate: float = 0.01, window: int = 5,
                    device: str | torch.device = "cpu") -> AffineResult:
    """Affine ``A`` (fixed RAS mm -> moving RAS mm) between two prepared subjects.

    fixed, moving: :class:`~smgic_pydra.preparation.PreparedSubject` on the same network grid
    (``image``, ``mask`` ``(D, H, W)`` and ``net_affine``). Steps: the moments candidates
    (:func:`.moments.moment_candidates`) are scored by local NCC at the coarsest level; the
    axes-kept one and the best-scored others (:data:`SCREENED` in all) run the first level of Adam,
    and the lowest loss goes on over the other ``levels`` (coarse to fine, the learning rate
    decaying linearly to a fifth within each level). Deterministic on the CPU for a given thread count.
    """
    start = time.perf_counter()
    device = torch.device(device)
    voxel_mm = float(np.linalg.norm(np.asarray(fixed.net_affine)[:3, 0]))
    grid_shape = fixed.grid_shape
    centre_index = (np.asarray(grid_shape, dtype=np.float64) - 1.0) / 2.0
    grid_centres = [apply_affine(s.net_affine, centre_index) for s in (fixed, moving)]
    images = [(torch.as_tensor(s.image.astype(np.float32), device=device)[None, None], s.net_affine) for s in (fixed, moving)]
    # each subject pooled once per level: (pooled image, its index affine) for fixed and moving
    pyramid = {factor: [pooled(image, affine, factor) for image, affine in images] for factor, _ in levels}

    def setup(candidate: np.ndarray):
        half = _similarity_half(candidate)
        centre = (half @ np.append(grid_centres[0], 1.0) + np.linalg.solve(half, np.append(grid_centres[1], 1.0)))[:3] / 2.0
        generator = np.real(scipy.linalg.logm(_translation(-centre) @ half @ _translation(centre)))
        return centre, generator

    candidates = moment_candidates(fixed.mask, fixed.net_affine, moving.mask, moving.net_affine)
    scored = []
    with torch.no_grad():
        for candidate in candidates:
            centre, generator = setup(candidate)
            objective = _HalfwayObjective(pyramid, centre, grid_shape, voxel_mm, levels[0][0], window, device)
            loss = float(objective(torch.as_tensor(generator, dtype=torch.float32, device=device)))
            scored.append((loss, centre, generator))
    # a coarse score alone can prefer a wrong axis flip: the first level runs from the axes-kept
    # candidate and the SCREENED best-scored others, and the lowest loss after it wins
    order = [int(i) for i in np.argsort([s[0] for s in scored])]
    screened = [0] + [i for i in order if i != 0][:SCREENED - 1]
    runs = [(i, *_optimise(pyramid, scored[i][1], scored[i][2], levels[:1], grid_shape, voxel_mm, window,
                           learning_rate, device)) for i in screened]
    best, params, loss = min(runs, key=lambda run: run[2])
    centre = scored[best][1]
    params, loss = _optimise(pyramid, centre, params, levels[1:], grid_shape, voxel_mm, window, learning_rate, device,
                             loss)
    generator = _generator(torch.as_tensor(params, dtype=torch.float64)).numpy()
    half = _translation(centre) @ scipy.linalg.expm(generator) @ _translation(-centre)
    return AffineResult(matrix=half @ half, half=half, centre=centre, candidate=best, loss=loss,
                        seconds=time.perf_counter() - start, candidate_losses=[s[0] for s in scored])


def _optimise(pyramid, centre, start, levels, grid_shape, voxel_mm, window, learning_rate, device, loss=float("nan")):
    """Adam over ``levels`` from ``start`` (a 4 x 4 generator or 12 parameters); ``(parameters, last loss)``."""
    start = np.asarray(start, dtype=np.float64)
    initial = _params(start) if start.shape == (4, 4) else start
    params = torch.tensor(initial, dtype=torch.float32, device=device, requires_grad=True)
    for factor, steps in levels:
        objective = _HalfwayObjective(pyramid, centre, grid_shape, voxel_mm, factor, window, device)
        optimizer = Adam(params, lr=learning_rate)
        for step in range(steps):
            value = objective(_generator(params))
            value.backward()
            optimizer.step(linear_decay(learning_rate, step, steps))
            loss = float(value.detach())
    return params.detach().cpu().double().numpy(), loss
