"""Benchmark subjects: each label map synthesized in several versions, each in its own native space.

A version of a map (subject id ``<map><letter>``, e.g. ``13a``) has its own, seeded and recorded:

* voxel size: isotropic, ``voxel_mm`` times a factor uniform in :data:`VOXEL_FACTOR` (0.8-1.3 mm
  at ``voxel_mm`` 1),
* orientation: one of :data:`ORIENTATIONS` (nibabel axis codes; the versions of a map differ),
* placement: a random rigid + scale transform ``A`` of the anatomy about its brain centroid
  (:func:`smgic_pydra.synthesis.random_affine`: rotations up to 15 degrees, translations up to 15 mm,
  per-axis scales 0.9-1.1), so no two versions share a world position,
* contrast: tissue intensities, blur, bias field, gamma and noise (:func:`smgic_pydra.synthesis.synthesize_t1`).

The native grid covers the placed brain plus ``FOV_MARGIN_MM``; the labels are resampled label-aware
from the 1 mm map (``native voxel -> A^-1 -> map voxel``) and the T1w is synthesized on that grid.
Everything is drawn from ``numpy.random.default_rng([seed, map number, version])``, so a subject
does not depend on which other subjects are made, and computed without BLAS
(:mod:`smgic_pydra.worldspace.exact_affine`) and with the C library's ``pow``
(:func:`smgic_pydra.synthesis.gamma_curve`), so it is the same, bit for bit, on every CPU: a long benchmark
continues across machines (subjects made before this differed between CPU classes). :func:`write_colin27_subject` makes the demo's
subjects instead (one real anatomy, AAL labels), with the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations
from pathlib import Path
from types import SimpleNamespace

import numpy as np

VOXEL_FACTOR = (0.8, 1.3)
ORIENTATIONS = ("RAS", "LIA", "LPS", "RSP", "PIR", "ASL")
PLACEMENT = {"max_rotation_deg": 15.0, "max_translation_mm": 15.0, "scale_range": (0.9, 1.1)}
CONTRAST = {"contrast_jitter": (0.02, 0.08), "bias_strength": (0.05, 0.25), "noise_std": (0.01, 0.04),
            "blur_fwhm_mm": (0.5, 1.5)}
VERSION_LETTERS = "abcdefgh"


@dataclass(frozen=True)
class BenchmarkSubject:
    """Paths of one subject (one native grid), its recorded draws (``spec``) and the SHA-256 of its arrays."""

    subject_id: str
    t1w: Path
    labels: Path
    mask: Path
    spec: dict
    content_sha256: str


def map_number(path: Path) -> str:
    """``training_seg_13.nii.gz`` -> ``"13"``."""
    return Path(path).name.split(".")[0].removeprefix("training_seg_")


def subject_id(map_path: Path, version: int) -> str:
    return f"{map_number(map_path)}{VERSION_LETTERS[version]}"


def draw_spec(map_path: Path, version: int, seed: int, voxel_mm: float) -> tuple[dict, np.random.Generator]:
    """The recorded draws of one version (JSON-ready) and the generator, whose next draws are the T1w's."""
    from smgic_pydra.synthesis import random_affine

    number = int(map_number(map_path))
    rng = np.random.default_rng([seed, number, version])
    order = np.random.default_rng([seed, number]).permutation(len(ORIENTATIONS))
    factor = float(rng.uniform(*VOXEL_FACTOR))
    placement = random_affine(rng, **PLACEMENT)
    contrast = {k: float(rng.uniform(*r)) for k, r in CONTRAST.items()}
    return {"subject": subject_id(map_path, version), "label_map": Path(map_path).name, "version": version,
            "seed": [seed, number, version], "voxel_mm": voxel_mm * factor, "voxel_factor": factor,
            "orientation": ORIENTATIONS[order[version % len(ORIENTATIONS)]],
            "placement_about_centroid": placement.tolist(), "contrast": contrast}, rng


def _content_sha256(*arrays_and_affine) -> str:
    import hashlib

    digest = hashlib.sha256()
    for a in arrays_and_affine:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def write_subject(map_path: Path, version: int, seed: int, voxel_mm: float, out_dir: Path) -> BenchmarkSubject:
    """Synthesize one version (see the module doc): ``<id>_T1w.nii.gz`` (float32), ``<id>_dseg.nii.gz``
    (int16, brain labels), ``<id>_mask.nii.gz`` and ``<id>.json`` (the spec) in ``out_dir``."""
    from scipy import ndimage

    from smgic_pydra.bids.examples import native_grid
    from smgic_pydra.io.atomic import save_json
    from smgic_pydra.synthesis import brain_mask, load_label_map, synthesize_t1
    from smgic_pydra.worldspace.exact_affine import apply_affine, invert_affine, matmul
    from smgic_pydra.worldspace.sampling import resample

    spec, rng = draw_spec(map_path, version, seed, voxel_mm)
    labels, affine = load_label_map(map_path)
    brain = brain_mask(labels)
    lo = np.maximum(np.argwhere(brain).min(axis=0) - 2, 0)
    hi = np.minimum(np.argwhere(brain).max(axis=0) + 3, labels.shape)
    crop = np.where(brain, labels, 0)[tuple(slice(a, b) for a, b in zip(lo, hi))].astype(np.int16)
    crop_affine = affine.copy()
    crop_affine[:3, 3] = apply_affine(affine, lo)
    centroid = apply_affine(affine, np.argwhere(brain).mean(axis=0))
    placement = np.asarray(spec["placement_about_centroid"])
    world = np.eye(4)  # about the centroid: x -> c + t + M (x - c)
    world[:3, :3] = placement[:3, :3]
    world[:3, 3] = centroid + placement[:3, 3] - matmul(placement[:3, :3], centroid[:, None])[:, 0]
    native_affine, shape = native_grid(SimpleNamespace(labels=crop, affine=crop_affine), world,
                                       tuple(spec["orientation"]), np.full(3, spec["voxel_mm"]))
    native = resample(crop, crop_affine, matmul(invert_affine(world), native_affine), shape, "labels").astype(np.int16)
    c = spec["contrast"]
    image = synthesize_t1(native, rng, voxel_size_mm=spec["voxel_mm"], contrast_jitter=c["contrast_jitter"],
                          bias_strength=c["bias_strength"], noise_std=c["noise_std"], blur_fwhm_mm=c["blur_fwhm_mm"])
    mask = ndimage.binary_fill_holes(brain_mask(native)).astype(np.uint8)
    spec = {**spec, "world_affine": world.tolist(), "native_affine": native_affine.tolist(), "shape": list(shape)}
    sid = spec["subject"]
    paths = _save_subject(Path(out_dir), sid, (image, native, mask), native_affine)
    save_json(spec, Path(out_dir) / f"{sid}.json")
    return BenchmarkSubject(sid, *paths, spec=spec, content_sha256=_content_sha256(image, native, mask, native_affine))


def _save_subject(out_dir: Path, sid: str, arrays, affine) -> list[Path]:
    """``<sid>_{T1w,dseg,mask}.nii.gz`` of ``(image, labels, mask)`` on one grid (qform = sform, code 1)."""
    import nibabel as nib

    from smgic_pydra.io.atomic import save_nifti

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{sid}_{s}.nii.gz" for s in ("T1w", "dseg", "mask")]
    for data, path in zip(arrays, paths):
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        img.header.set_xyzt_units("mm")
        save_nifti(img, path)
    return paths


COLIN27_SEED = 27
"""Middle part of a Colin27 subject's seed ``[seed, 27, index]`` (the label maps use their number)."""


@lru_cache(maxsize=2)
def _colin27(voxel_mm: float):
    from smgic_pydra.bids.examples import load_template

    return load_template(voxel_mm)


def write_colin27_subject(index: int, seed: int, voxel_mm: float, out_dir: Path) -> BenchmarkSubject:
    """Subject ``c<index + 1>``: the demo's anatomy (:mod:`smgic_pydra.bids.examples`: Colin27, a real T1w,
    with AAL labels 1-116 on a ``voxel_mm`` grid) under its own random affine and smooth deformation, in
    its own orientation and anisotropic voxels (:func:`~smgic_pydra.bids.examples.synthesize_subject`,
    seed ``[seed, 27, index]``). Files as :func:`write_subject`'s; the T1w keeps the skull (the mask
    strips it, as for every method)."""
    from smgic_pydra.bids.examples import synthesize_subject
    from smgic_pydra.io.atomic import json_text, save_json

    drawn = synthesize_subject(_colin27(float(voxel_mm)), [seed, COLIN27_SEED, index], index)
    sid = f"c{index + 1}"
    spec = {"subject": sid, "anatomy": "colin27", "labels": "AAL", "seed": [seed, COLIN27_SEED, index],
            "voxel_mm": voxel_mm, **json.loads(json_text(drawn["truth"]))}
    image = drawn["t1w"].astype(np.float32)
    paths = _save_subject(Path(out_dir), sid, (image, drawn["dseg"], drawn["mask"]), drawn["affine"])
    save_json(spec, Path(out_dir) / f"{sid}.json")
    return BenchmarkSubject(sid, *paths, spec=spec,
                            content_sha256=_content_sha256(image, drawn["dseg"], drawn["mask"], drawn["affine"]))


def colin27_voxel_factor_range() -> list[float]:
    """Smallest and largest per-axis voxel factor of the Colin27 subjects (``bids.examples.VOXEL_SCALES``)."""
    from smgic_pydra.bids.examples import VOXEL_SCALES

    return [float(np.min(VOXEL_SCALES)), float(np.max(VOXEL_SCALES))]


def label_table(subject: BenchmarkSubject) -> dict[int, str]:
    """The labels a subject's Dice and HD95 are measured on: AAL for Colin27 subjects, else the 36 aseg labels."""
    if subject.spec.get("anatomy") == "colin27":
        return dict(_colin27(float(subject.spec["voxel_mm"])).names)
    from smgic_pydra.metrics import load_label_table

    return load_label_table()


def label_table_sha256(subject: BenchmarkSubject) -> str:
    """SHA-256 of :func:`label_table`'s source: the aseg table file's, or the Colin27 AAL names' (JSON)."""
    from smgic_pydra.io.hashing import sha256_file, sha256_json
    from smgic_pydra.metrics import DEFAULT_LABEL_TABLE

    if subject.spec.get("anatomy") == "colin27":
        return sha256_json(label_table(subject))
    return sha256_file(DEFAULT_LABEL_TABLE)


def colin27_pairs(n_subjects: int) -> list[tuple[str, str]]:
    """``(moving, fixed)``: every ordered pair of the first ``n_subjects`` Colin27 subjects."""
    return list(permutations([f"c{i + 1}" for i in range(n_subjects)], 2))


def ordered_pairs(map_paths: list[Path], versions: int) -> list[tuple[str, str]]:
    """``(moving, fixed)`` subject ids: every ordered pair of different maps in different versions,
    version combinations outermost (so the first ``n_maps * (n_maps - 1)`` pairs cover every map pair)."""
    return [(subject_id(m, vm), subject_id(f, vf)) for vm, vf in permutations(range(versions), 2)
            for m, f in permutations(map_paths, 2)]
