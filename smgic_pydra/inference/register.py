"""Register one prepared pair with SM-GICNet and write its native-space outputs."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import nibabel as nib
import numpy as np
import torch

from ..io.images import load_image
from ..preparation import PreparedSubject
from ..worldspace import PairOutputPaths, network_disp_to_world, write_pair_outputs
from .model_io import ModelBundle


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def network_fields(bundle: ModelBundle, fixed: PreparedSubject, moving: PreparedSubject) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Normalized forward and inverse fields ``(1, 3, D, H, W)`` on the CPU, and the forward time in seconds.

    On CUDA the timed forward is synchronized and preceded (once per bundle) by an untimed warm-up
    (kernel selection); on the CPU the first call is timed as it is.
    """
    to_tensor = lambda s: torch.from_numpy(np.ascontiguousarray(s.image, dtype=np.float32))[None, None].to(bundle.device)  # noqa: E731
    mov, fix = to_tensor(moving), to_tensor(fixed)
    with torch.inference_mode():
        if not bundle.warmed_up and bundle.device.type == "cuda":
            bundle.model.register(mov, fix)
            bundle.warmed_up = True
        _synchronize(bundle.device)
        start = time.perf_counter()
        result = bundle.model.register(mov, fix)
        _synchronize(bundle.device)
        seconds = time.perf_counter() - start
    return result.disp.float().cpu(), result.disp_inv.float().cpu(), seconds


def register_pair(
    bundle: ModelBundle,
    fixed: PreparedSubject,
    moving: PreparedSubject,
    paths: PairOutputPaths,
    sidecar_extra: dict | None = None,
) -> dict:
    """Register ``moving`` to ``fixed`` and write every output (see :func:`write_pair_outputs`).

    Returns a row: method, fixed, moving, forward_seconds (network only), total_seconds (including
    loading the native images, mapping the fields to millimetres and writing), and the files.
    """
    start = time.perf_counter()
    for subject in (fixed, moving):
        _check_geometry(bundle, subject)
    disp, disp_inv, forward_seconds = network_fields(bundle, fixed, moving)
    fixed_img, moving_img = skull_stripped_native(fixed), skull_stripped_native(moving)
    fwd = network_disp_to_world(disp, fixed, moving, fixed_img.affine, fixed_img.shape)
    inv = network_disp_to_world(disp_inv, moving, fixed, moving_img.affine, moving_img.shape)
    labels_path = moving.source_files.get("labels")
    moving_labels = None if labels_path is None else load_image(labels_path, "labels")
    sidecar = {
        "method": "smgicnet",
        "fixed": fixed.subject_id,
        "moving": moving.subject_id,
        "fixed_source": fixed.source_files,
        "moving_source": moving.source_files,
        "model": {"path": str(bundle.path), "weights_sha256": bundle.weights_sha256, "config": bundle.cfg.to_dict()},
        "device": str(bundle.device),
        "forward_seconds": forward_seconds,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(sidecar_extra or {}),
    }
    # total time is known only after writing; the sidecar records the time up to the write
    sidecar["seconds_before_write"] = time.perf_counter() - start
    write_pair_outputs(paths, fixed_img, moving_img, moving_labels, fwd, inv, sidecar)
    return {
        "method": "smgicnet",
        "fixed": fixed.subject_id,
        "moving": moving.subject_id,
        "forward_seconds": forward_seconds,
        "total_seconds": time.perf_counter() - start,
        "files": {k: str(v) for k, v in paths.as_dict().items()},
    }
