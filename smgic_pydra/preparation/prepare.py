"""Prepare a subject for the network: brain mask, intensity normalisation, grid placement, resampling.

Steps: load and validate the inputs; brain mask (given, ``image > 0``, deepbet or synthstrip);
clip at the 0.01/99.99 percentiles inside the brain and scale to [0, 1] (zero outside); place the
network grid on the brain (:mod:`.grid`); resample onto it (image trilinear; mask trilinear then
``>= 0.5``, which does not depend on the input's axis order; labels label-aware). The result is
saved in ``out_dir`` and reused when the same inputs are prepared again with the same settings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..io.errors import InputError, display_path
from ..io.hashing import sha256_file
from ..io.images import check_mask_overlaps, check_same_grid, load_image, read_header
from ..worldspace.sampling import resample
from .grid import mask_centre_ras, network_affine
from .intensity import CLIP_PERCENTILES, normalize_intensity
from .skullstrip import SKULL_STRIP_METHODS, SKULL_STRIPPERS
from .subject import FORMAT_VERSION, PreparedSubject


def input_fingerprint(source_files: dict[str, str], cfg, skull_strip: str, subject_id: str) -> str:
    """SHA-256 of the input files' bytes and every setting that changes the prepared result."""
    settings = {
        "version": FORMAT_VERSION,
        "files": {role: sha256_file(p) for role, p in sorted(source_files.items())},
        "grid_shape": [int(n) for n in cfg.grid_shape],
        "voxel_size_mm": float(cfg.voxel_size_mm),
        "skull_strip": skull_strip,
        "percentiles": list(CLIP_PERCENTILES),
        "subject_id": subject_id,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _fingerprint(t1_path, cfg, mask_path, labels_path, skull_strip: str, subject_id: str) -> tuple[dict, str]:
    """``(source files by role, input fingerprint)`` of a subject to prepare."""
    sources = {"t1": t1_path, "mask": mask_path, "labels": labels_path}
    sources = {role: display_path(p) for role, p in sources.items() if p is not None}
    return sources, input_fingerprint(sources, cfg, skull_strip, subject_id)


def is_prepared(out_dir, fingerprint: str) -> bool:
    """Whether ``out_dir`` holds a complete prepared subject made from inputs and settings of ``fingerprint``."""
    manifest = PreparedSubject.read_manifest(out_dir)
    return manifest is not None and manifest.get("fingerprint") == fingerprint


def prepared_fingerprint(subject: dict, cfg, skull_strip: str) -> str:
    """The input fingerprint of a :class:`~smgic_pydra.tasks.PrepareSubject` subject dict."""
    return _fingerprint(subject["t1w"], cfg, subject.get("mask"), subject.get("labels"), skull_strip,
                        subject["subject"])[1]


def check_input_headers(t1_path, mask_path=None, labels_path=None):
    """The headers of a subject's input files (:func:`~smgic_pydra.io.images.read_header`: readable, 3-D, a
    valid affine) and the mask and labels on the T1w's grid, reading no voxel data; the first problem
    is a one-line :class:`InputError` naming its file. Returns the T1w's image (its header read, no voxel)."""
    t1_img = read_header(t1_path)
    for path in (mask_path, labels_path):
        if path is not None:
            check_same_grid(t1_img, t1_path, read_header(path), path)
    return t1_img


def load_inputs(t1_path, mask_path=None, labels_path=None) -> tuple:
    """``(t1, mask or None, labels or None)`` nibabel images, each validated (:func:`~smgic_pydra.io.images.load_image`),
    the mask and labels on the T1w's grid and the mask overlapping its nonzero voxels; the first
    problem is a one-line :class:`InputError` naming its file."""
    check_input_headers(t1_path, mask_path, labels_path)
    t1_img = load_image(t1_path, "image")
    mask_img = labels_img = None
    if mask_path is not None:
        mask_img = load_image(mask_path, "mask")
        check_mask_overlaps(t1_img, t1_path, mask_img, mask_path)
    if labels_path is not None:
        labels_img = load_image(labels_path, "labels")
    return t1_img, mask_img, labels_img


def subject_id_from(path: Path) -> str:
    """A subject id from an image file's name: the name less ``.nii.gz``, ``.nii`` or ``.mgz`` (else its stem)."""
    name = path.name
    for suffix in (".nii.gz", ".nii", ".mgz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _brain_mask(t1_path: Path, t1_img, mask_img, skull_strip: str) -> np.ndarray:
    if mask_img is not None:
        return np.asarray(mask_img.dataobj) > 0
    stripper = SKULL_STRIPPERS[skull_strip].mask
    mask = np.asarray(t1_img.dataobj) > 0 if stripper is None else stripper(t1_path, t1_img)
    if not mask.any():
        raise InputError(display_path(t1_path), f"brain mask from skull_strip={skull_strip!r} is empty")
    return mask


def prepare_subject(
    t1_path, out_dir, cfg, mask_path=None, labels_path=None, skull_strip: str = "none", subject_id: str | None = None
) -> PreparedSubject:
    """Prepare one subject on the network grid of ``cfg`` and save it in ``out_dir``.

    t1_path: T1w NIfTI or MGZ, any orientation. With ``skull_strip="none"`` it is already
    skull-stripped (brain = ``image > 0`` unless ``mask_path`` is given); ``"deepbet"`` or
    ``"synthstrip"`` compute the brain mask from a raw head image (not combined with ``mask_path``).
    mask_path / labels_path: on the T1w's grid (brain where ``> 0``; integer labels).
    Reuses ``out_dir`` when it holds a complete result with the same input fingerprint.
    Raises :class:`InputError` for bad inputs, :class:`MissingToolError` for a missing tool.
    """
    if skull_strip not in SKULL_STRIP_METHODS:
        raise ValueError(f"skull_strip must be one of {SKULL_STRIP_METHODS}, got {skull_strip!r}")
    if mask_path is not None and skull_strip != "none":
        raise ValueError("give either a brain mask (mask_path) or a skull-stripping tool, not both")
    t1_path, out_dir = Path(t1_path), Path(out_dir)
    t1_img, mask_img, labels_img = load_inputs(t1_path, mask_path, labels_path)

    subject_id = subject_id or subject_id_from(t1_path)
    sources, fingerprint = _fingerprint(t1_path, cfg, mask_path, labels_path, skull_strip, subject_id)
    if is_prepared(out_dir, fingerprint):
        return PreparedSubject.load(out_dir)

    native_mask = _brain_mask(t1_path, t1_img, mask_img, skull_strip)
    native_affine = np.asarray(t1_img.affine, dtype=np.float64)
    try:
        normalized, clip = normalize_intensity(np.asarray(t1_img.dataobj), native_mask)
    except ValueError as exc:
        raise InputError(display_path(t1_path), str(exc)) from exc
    net_affine = network_affine(mask_centre_ras(native_mask, native_affine), cfg.grid_shape, cfg.voxel_size_mm)
    grid = (net_affine, cfg.grid_shape)
    labels = None if labels_img is None else resample(np.asarray(labels_img.dataobj), native_affine, *grid, "labels")
    subject = PreparedSubject(
        subject_id=subject_id,
        image=np.clip(resample(normalized, native_affine, *grid, 1), 0.0, 1.0),
        mask=resample(native_mask.astype(np.float32), native_affine, *grid, 1) >= 0.5,
        labels=labels,
        net_affine=net_affine,
        native_affine=native_affine,
        native_shape=tuple(int(n) for n in t1_img.shape[:3]),
        source_files=sources,
        native_mask=native_mask,
        skull_strip=skull_strip,
        intensity_clip=clip,
        fingerprint=fingerprint,
    )
    subject.save(out_dir)
    return subject
