"""Register one prepared pair with SM-GICNet: the fields in memory (:func:`smgicnet_pair`, a RegisteredPair that the
caller writes per output policy)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import nibabel as nib
import numpy as np
import torch

from ..affine import HalfwayPair, halfway_pair, register_affine
from ..affine.symmetric import COARSE_LEVELS, DEFAULT_LEVELS
from ..io.images import load_image
from ..metrics.timing import synchronize
from ..preparation import PreparedSubject
from ..network.precision import forward_context, network_precision, precision_record
from ..pipeline_settings import PipelineSettings
from ..refinement import refine_velocity
from ..worldspace.compact import CompactMapping
from ..worldspace.registered import RegisteredPair
from .model_io import ModelBundle
from .network_grid import network_top_level


STAGE_SECONDS = ("forward_seconds", "affine_seconds", "network_seconds", "refine_seconds")
WARM_UP_DEVICES = ("cuda",)
"""Device types whose first network forward per bundle is preceded by an untimed one (kernel selection)."""


def _check_geometry(bundle: ModelBundle, subject: PreparedSubject) -> None:
    spacing = np.linalg.norm(np.asarray(subject.net_affine)[:3, :3], axis=0)
    if subject.grid_shape != tuple(bundle.cfg.grid_shape) or not np.allclose(spacing, bundle.cfg.voxel_size_mm):
        raise ValueError(
            f"subject {subject.subject_id} was prepared on {subject.grid_shape} at {spacing.round(3).tolist()} mm, "
            f"the model needs {tuple(bundle.cfg.grid_shape)} at {bundle.cfg.voxel_size_mm} mm: prepare it with the model's config"
        )


def skull_stripped_native(subject: PreparedSubject) -> nib.Nifti1Image:
    """The subject's source T1w on its native grid, zero outside its brain mask (float32)."""
    img = load_image(subject.source_files["t1"], "image")
    data = np.asarray(img.dataobj, dtype=np.float32)
    if subject.native_mask is not None:
        data = data * subject.native_mask
    return nib.Nifti1Image(data, img.affine)


def _native_grid(subject: PreparedSubject) -> tuple[np.ndarray, tuple]:
    """``(affine, shape)`` of the subject's source T1w (header only)."""
    img = nib.load(subject.source_files["t1"])
    return np.asarray(img.affine, dtype=np.float64), tuple(int(n) for n in img.shape[:3])


@dataclass
class PairFields:
    """Result of :func:`pair_fields`: the halfway views, normalized fields ``(1, 3, D, H, W)`` on the
    network level's halfway grid (CPU, float32; forward = fixed -> moving pull-back, inverse = ``exp(-v)``), the
    pair's :class:`~smgic_pydra.worldspace.compact.CompactMapping` (canonical order) and a record."""

    pair: HalfwayPair
    disp: torch.Tensor
    disp_inv: torch.Tensor
    record: dict
    mapping: CompactMapping | None = None


def _image_sha256(subject: PreparedSubject) -> str:
    return hashlib.sha256(np.ascontiguousarray(subject.image, dtype=np.float32).tobytes()).hexdigest()


def _image_tensor(subject: PreparedSubject, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(subject.image, dtype=np.float32))[None, None].to(device)


def _network_velocity(bundle: ModelBundle, fixed: torch.Tensor, moving: torch.Tensor,
                      precision: str = "fp32", level: int = 4) -> torch.Tensor:
    """The network's total velocity ``(1, 3, *cfg.level_shape(level))`` after the cascade's level ``level``
    (:mod:`.network_grid`), float32, a normal tensor on the bundle's device.

    precision: ``bf16`` (autocast) or ``fp32`` (:func:`smgic_pydra.network.precision.network_precision`).
    """
    with torch.inference_mode(), forward_context(precision, bundle.device.type):
        velocity = bundle.model.velocity(moving, fixed, upto_level=level).float()
    return velocity.clone()  # outside inference mode: usable by autograd in the refinement


def _top_level(bundle: ModelBundle, settings: PipelineSettings, fixed: PreparedSubject,
               moving: PreparedSubject) -> int:
    """The cascade's last level for the pair (:func:`.network_grid.network_top_level`, the same for both orders)."""
    return network_top_level(settings.network_grid, bundle.cfg.voxel_size_mm,
                             (fixed.native_affine, moving.native_affine))


def _warm_up(bundle: ModelBundle, fixed: PreparedSubject, moving: PreparedSubject, settings: PipelineSettings) -> None:
    """Once per bundle on a :data:`WARM_UP_DEVICES` device: one network forward of the pair's images (the
    network grid's shape, the pair's level and precision), synchronized; called before a pair's clocks start."""
    if bundle.warmed_up or bundle.device.type not in WARM_UP_DEVICES:
        return
    device = bundle.device
    _network_velocity(bundle, _image_tensor(fixed, device), _image_tensor(moving, device),
                      network_precision(settings.precision, device.type), _top_level(bundle, settings, fixed, moving))
    synchronize(device)
    bundle.warmed_up = True


def level_affine(net_affine, grid_shape, level_shape) -> np.ndarray:
    """Index -> RAS mm affine ``(4, 4)`` of a level grid on a network grid: the cascade upsamples with
    ``align_corners=True``, so the corner voxels coincide (level index ``i`` = network index
    ``i (N - 1) / (n - 1)`` per axis)."""
    scale = [(int(n) - 1) / max(int(m) - 1, 1) for n, m in zip(grid_shape, level_shape)]
    return np.asarray(net_affine, dtype=np.float64) @ np.diag([*scale, 1.0])


def pair_fields(bundle: ModelBundle, fixed: PreparedSubject, moving: PreparedSubject,
                settings: PipelineSettings = PipelineSettings()) -> PairFields:
    """Affine (optional) -> network -> refinement (optional) of one prepared pair, timed per stage.

    Order-independent by construction: the pair is computed with the subjects in the order of
    their images' SHA-256, and the other order gets the exact inverse (the inverse affine, the
    views exchanged, ``v -> -v``), so registering B to A inverts registering A to B.

    The network runs up to the level that ``settings.network_grid`` picks for the pair
    (:func:`.network_grid.network_top_level`; the same for both orders). The record holds ``network_level``,
    ``network_grid_shape``, ``affine`` (:meth:`AffineResult.to_sidecar` or None), ``refine`` (the
    refinement's settings, loss before and after, seconds), ``affine_seconds``,
    ``network_seconds``, ``refine_seconds`` and ``forward_seconds`` (their sum plus the resampling
    into the halfway space and the field integration: the registration itself). CUDA work is
    synchronized before each clock reading; the first pair of a bundle on CUDA is preceded by an untimed
    network forward (:func:`_warm_up`).
    """
    device = bundle.device
    _warm_up(bundle, fixed, moving, settings)
    synchronize(device)
    start = time.perf_counter()
    swapped = _image_sha256(fixed) > _image_sha256(moving)
    if swapped:
        fixed, moving = moving, fixed
    levels = DEFAULT_LEVELS if settings.affine_fine else COARSE_LEVELS
    affine = register_affine(fixed, moving, levels=levels, device=device) if settings.affine else None
    pair = halfway_pair(fixed, moving, affine, device)
    fix, mov = _image_tensor(pair.fixed, device), _image_tensor(pair.moving, device)
    synchronize(device)
    network_start = time.perf_counter()
    precision = precision_record(settings.precision, device.type)
    level = _top_level(bundle, settings, fixed, moving)
    velocity = _network_velocity(bundle, fix, mov, precision["network"], level)
    synchronize(device)
    network_seconds = time.perf_counter() - network_start
    velocity, refine_record = refine_velocity(velocity, fix, mov, settings.refine)
    # the mapping lives on the level's grid; its fields are integrated in float32 on the model's device (an
    # export from the compact mapping, on the CPU, gives the same fields: bit for bit from a CPU run, to
    # float32 rounding from a GPU run)
    views = [level_affine(view.net_affine, bundle.cfg.grid_shape, velocity.shape[-3:]) for view in (pair.fixed, pair.moving)]
    mapping = CompactMapping(fixed.subject_id, moving.subject_id, velocity.detach().float().cpu().numpy(),
                             bundle.cfg.ss_steps, *views,
                             None if affine is None else affine.matrix,
                             {s.subject_id: _native_grid(s) for s in (fixed, moving)})
    disp, disp_inv = mapping.network_fields(device)
    if swapped:
        affine = None if affine is None else affine.inverse()
        pair = HalfwayPair(pair.moving, pair.fixed, affine)
        disp, disp_inv = disp_inv, disp
    record = {
        "computed_as": "inverse of moving -> fixed" if swapped else "fixed <- moving",
        "settings": settings.to_dict(),
        "precision": precision,
        "network_level": level,
        "network_grid_shape": list(bundle.cfg.level_shape(level)),
        "affine": None if affine is None else affine.to_sidecar(),
        "refine": refine_record,
        "affine_seconds": 0.0 if affine is None else affine.seconds,
        "network_seconds": network_seconds,
        "refine_seconds": refine_record["seconds"],
        "forward_seconds": time.perf_counter() - start,
    }
    return PairFields(pair, disp, disp_inv, record, mapping)


def smgicnet_pair(
    bundle: ModelBundle,
    fixed: PreparedSubject,
    moving: PreparedSubject,
    sidecar_extra: dict | None = None,
    settings: PipelineSettings = PipelineSettings(),
) -> RegisteredPair:
    """Register ``moving`` to ``fixed`` (:func:`pair_fields`) and map the fields to the native grids
    in millimetres; returns the pair in memory (nothing written). The fields hold the whole mapping
    (affine included); the seconds hold ``forward_seconds`` (the registration: affine, network,
    refinement) and each stage's. The pair's clocks (these and ``started``) start after the untimed first
    forward on CUDA (:func:`_warm_up`)."""
    for subject in (fixed, moving):
        _check_geometry(bundle, subject)
    _warm_up(bundle, fixed, moving, settings)
    start = time.perf_counter()
    fields_ = pair_fields(bundle, fixed, moving, settings)
    fixed_img, moving_img = skull_stripped_native(fixed), skull_stripped_native(moving)
    fwd, inv, _ = fields_.mapping.dense_fields(fixed.subject_id, network=(fields_.disp, fields_.disp_inv)
                                               if fields_.mapping.fixed == fixed.subject_id
                                               else (fields_.disp_inv, fields_.disp))
    labels_path = moving.source_files.get("labels")
    moving_labels = None if labels_path is None else load_image(labels_path, "labels")
    record = fields_.record
    sidecar = {
        "method": "smgicnet",
        "fixed": fixed.subject_id,
        "moving": moving.subject_id,
        "fixed_source": fixed.source_files,
        "moving_source": moving.source_files,
        "model": {"path": str(bundle.path), "weights_sha256": bundle.weights_sha256, "config": bundle.cfg.to_dict()},
        "device": str(bundle.device),
        "threads": torch.get_num_threads(),  # on the CPU the refinement's sums depend on it (float rounding)
        "pipeline": record["settings"],
        "precision": record["precision"],
        "network_level": record["network_level"],
        "network_grid_shape": record["network_grid_shape"],
        "affine": record["affine"],
        "refinement": record["refine"],
        "computed_as": record["computed_as"],
        **{k: record[k] for k in STAGE_SECONDS},
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(sidecar_extra or {}),
    }
    affine_ras = None if fields_.pair.affine is None else fields_.pair.affine.matrix
    return RegisteredPair("smgicnet", fixed_img, moving_img, moving_labels, fwd, inv, sidecar,
                          {k: record[k] for k in STAGE_SECONDS}, affine_ras=affine_ras, started=start,
                          compact=fields_.mapping)
