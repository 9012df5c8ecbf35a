"""A small raw BIDS dataset (and sMRIPrep-style derivatives) built from Colin27 and the AAL atlas.

Source anatomy: Debian's ``mricron-data`` (``/usr/share/mricron/templates``): ``ch2.nii.gz``
(Colin27 with skull), ``ch2bet.nii.gz`` (skull-stripped) and ``aal.nii.gz`` (AAL labels 1-116),
all on one 1 mm RAS grid. The template is first brought to ``voxel_mm`` (Gaussian anti-aliasing,
label-aware resampling for AAL).

Each subject (session) has known ground truth, written to its T1w JSON sidecar under
``SyntheticGroundTruth``: the subject's image at world point ``y`` (RAS mm, its own native grid)
is the template at ``T(p + u(p))`` with ``p = T^-1 A^-1 y``, where ``T`` is the downsampled
template grid (voxel -> RAS mm), ``A`` a random affine (RAS mm,
:func:`~smgic_pydra.synthesis.random_affine`) and ``u`` a smooth displacement in template voxels
(:func:`~smgic_pydra.synthesis.random_smooth_displacement`), regenerated from the recorded seed by
:func:`ground_truth_displacement`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from ..io.atomic import save_json, save_nifti
from ..io.errors import InputError, display_path
from ..worldspace.exact_affine import apply_affine, invert_affine, matmul

TEMPLATE_DIR = Path("/usr/share/mricron/templates")
TEMPLATE_FILES = {"head": "ch2.nii.gz", "brain": "ch2bet.nii.gz", "labels": "aal.nii.gz", "names": "aal.nii.txt"}
ORIENTATIONS = (("R", "A", "S"), ("L", "I", "A"), ("L", "P", "S"), ("R", "S", "P"))
"""Native voxel orientations, cycled over subjects (nibabel axis codes)."""
VOXEL_SCALES = ((1.0, 1.0, 1.0), (1.0, 1.0, 1.2), (0.9, 1.1, 1.0), (1.1, 1.0, 0.9))
"""Per-subject anisotropy, multiplied by ``voxel_mm`` (cycled over subjects)."""
FOV_MARGIN_MM = 8.0
DERIV_NAME = "smriprep"
DATASET_NAME = "smgic-pydra Colin27 example"
SYNTHESIS = {
    "max_rotation_deg": 15.0,
    "max_translation_mm": 15.0,
    "scale_range": (0.9, 1.1),
    "max_disp_mm": 6.0,
    "control_spacing_mm": 28.0,
    "gamma_range": (0.75, 1.35),
    "bias_strength_range": (0.1, 0.3),
    "noise_std_range": (0.01, 0.03),
}


@dataclass(frozen=True)
class Template:
    """Colin27 on a ``voxel_mm`` RAS grid: head in ``[0, 1]``, brain-mask fraction (float32), AAL labels (int16).

    The brain mask is ``ch2bet > 0`` or AAL, holes filled.
    """

    head: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    names: list[tuple[int, str]]


def template_paths(template_dir=TEMPLATE_DIR) -> dict[str, Path]:
    """The four source files; :class:`~smgic_pydra.io.InputError` when one is missing."""
    paths = {k: Path(template_dir) / v for k, v in TEMPLATE_FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise InputError(display_path(path), "missing; install Debian's mricron-data package (apt-get install mricron-data)")
    return paths


def load_template(voxel_mm: float = 2.0, template_dir=TEMPLATE_DIR) -> Template:
    """Colin27 (head, brain mask) and AAL resampled to an isotropic ``voxel_mm`` grid covering the same box."""
    import nibabel as nib
    from scipy import ndimage

    from ..worldspace.sampling import resample

    paths = template_paths(template_dir)
    src = nib.load(paths["head"])
    affine = np.asarray(src.affine, dtype=np.float64)
    src_vox = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    factor = voxel_mm / src_vox
    # block-centred coarse grid: each coarse voxel covers `factor` source voxels per axis, so the
    # label vote is a block majority (no half-voxel shift of the labels against the intensities)
    shape = tuple(int(n) for n in np.floor(np.array(src.shape[:3]) / factor))
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] @ np.diag(factor)
    new_affine[:3, 3] = apply_affine(affine, (factor - 1.0) / 2.0)
    sigma = np.sqrt(np.maximum(factor**2 - 1.0, 0.0)) / 2.3548  # to a Gaussian of FWHM one coarse voxel

    def downsample(data):
        data = ndimage.gaussian_filter(data.astype(np.float32), sigma) if np.any(sigma > 0) else data
        out = resample(data, affine, new_affine, shape, order=1)
        return np.clip(out / max(float(out.max()), 1e-6), 0.0, 1.0).astype(np.float32)

    labels = np.asarray(nib.load(paths["labels"]).dataobj).astype(np.int16)
    brain = np.asarray(nib.load(paths["brain"]).dataobj)
    mask = ndimage.binary_fill_holes((brain > 0) | (labels > 0))
    names = []
    for line in paths["names"].read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            names.append((int(parts[0]), parts[1]))
    return Template(
        head=downsample(np.asarray(nib.load(paths["head"]).dataobj)),
        mask=downsample(mask),
        labels=resample(labels, affine, new_affine, shape, order="labels"),
        affine=new_affine,
        names=names,
    )


def native_grid(template: Template, world_affine: np.ndarray, orientation, voxel_sizes) -> tuple[np.ndarray, tuple]:
    """Axis-aligned grid (``orientation`` codes, ``voxel_sizes`` mm) covering the transformed template box.

    Returns ``(affine, shape)``; the box is ``world_affine`` applied to the template's corners, plus
    ``FOV_MARGIN_MM`` on each side.
    """
    import nibabel as nib

    shape = np.array(template.labels.shape)
    corners = np.array([[i, j, k, 1.0] for i, j, k in product(*[(0, n - 1) for n in shape])])
    world = apply_affine(matmul(world_affine, template.affine), corners[:, :3])
    ornt = nib.orientations.axcodes2ornt(orientation)
    rot = np.zeros((3, 3))
    for axis, (world_axis, flip) in enumerate(ornt):
        rot[int(world_axis), axis] = flip
    along = world @ rot  # coordinate of every corner along each native axis direction
    lo, hi = along.min(axis=0) - FOV_MARGIN_MM, along.max(axis=0) + FOV_MARGIN_MM
    voxel_sizes = np.asarray(voxel_sizes, dtype=np.float64)
    native_shape = tuple(int(n) for n in np.ceil((hi - lo) / voxel_sizes) + 1)
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(voxel_sizes)
    affine[:3, 3] = rot @ lo
    return affine, native_shape


def _nifti(data, affine, dtype):
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data).astype(dtype), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    return img


def _draw_deformation(rng: np.random.Generator, template_shape, voxel_mm: float):
    """``(A (4, 4) RAS mm, u (X, Y, Z, 3) template voxels, control spacing)``: the first draws from ``rng``."""
    from ..synthesis import random_affine, random_smooth_displacement

    cfg = SYNTHESIS
    world_affine = random_affine(rng, cfg["max_rotation_deg"], cfg["max_translation_mm"], cfg["scale_range"])
    control = max(2, int(round(cfg["control_spacing_mm"] / voxel_mm)))
    disp = random_smooth_displacement(tuple(template_shape), rng, cfg["max_disp_mm"] / voxel_mm, control)
    return world_affine, disp, control


def ground_truth_displacement(truth: dict) -> np.ndarray:
    """The smooth displacement ``u`` ``(X, Y, Z, 3)`` (template voxels) of a ``SyntheticGroundTruth`` sidecar.

    Regenerated from its ``Seed``; raises ``ValueError`` if the regenerated affine differs from the
    recorded one (the generator changed since the dataset was written).
    """
    affine = np.asarray(truth["TemplateAffine"], dtype=np.float64)
    voxel_mm = float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).mean())
    world_affine, disp, _ = _draw_deformation(np.random.default_rng(truth["Seed"]), truth["TemplateShape"], voxel_mm)
    if not np.allclose(world_affine, truth["AffineTemplateToSubjectRASmm"], atol=1e-9):
        raise ValueError("the regenerated affine differs from the recorded one: the generator has changed")
    return disp


def synthesize_subject(template: Template, seed: list[int], index: int) -> dict:
    """One subject (session) in its own native space, drawn from ``numpy.random.default_rng(seed)``.

    ``index`` picks the orientation and voxel anisotropy. Returns arrays, affine and ground truth.

    Keys: ``t1w`` (head, bias, noise; uint16), ``preproc`` (head without bias or noise; uint16),
    ``mask`` (uint8), ``dseg`` (AAL, int16), ``affine`` (native voxel -> RAS mm) and ``truth``
    (JSON-ready ground truth).
    """
    from ..synthesis import deform_volume, gamma_curve, smooth_random_field
    from ..worldspace.sampling import resample

    cfg = SYNTHESIS
    rng = np.random.default_rng(seed)
    voxel_mm = float(np.sqrt((template.affine[:3, :3] ** 2).sum(axis=0)).mean())
    world_affine, disp, control = _draw_deformation(rng, template.labels.shape, voxel_mm)
    orientation = ORIENTATIONS[index % len(ORIENTATIONS)]
    voxel_sizes = voxel_mm * np.array(VOXEL_SCALES[index % len(VOXEL_SCALES)])
    affine, shape = native_grid(template, world_affine, orientation, voxel_sizes)
    # native voxel -> template world: A^-1 @ native affine
    to_template = matmul(invert_affine(world_affine), affine)

    def to_native(volume, order):
        warped = deform_volume(volume, disp, order=0 if order == "labels" else 1)
        return resample(warped, template.affine, to_template, shape, order=order)

    head = to_native(template.head, 1)
    dseg = to_native(template.labels, "labels").astype(np.int16)
    mask = to_native(template.mask, 1) > 0.5
    gamma = float(rng.uniform(*cfg["gamma_range"]))
    bias_strength = float(rng.uniform(*cfg["bias_strength_range"]))
    noise_std = float(rng.uniform(*cfg["noise_std_range"]))
    preproc = gamma_curve(np.clip(head, 0, 1), gamma)
    bias = 1.0 + bias_strength * smooth_random_field(shape, rng)
    t1w = np.clip(preproc * bias + rng.normal(0.0, noise_std, shape), 0.0, None)
    t1w = np.where(head > 0, t1w, 0.0)  # air outside the field of view of the source stays 0
    scale = 1000.0 / max(float(np.percentile(preproc[mask], 99)), 1e-6)
    truth = {
        "Description": (
            "image(y) = template(T(p + u(p))) with p = T^-1 A^-1 y, for world point y (RAS mm); T = TemplateAffine "
            "(template voxel -> RAS mm), A = AffineTemplateToSubjectRASmm, u = smooth displacement (template "
            "voxels) regenerated from Seed by smgic_pydra.bids.examples.ground_truth_displacement"
        ),
        "Seed": list(seed),
        "Template": "Colin27 ch2 / ch2bet / AAL (Debian mricron-data)",
        "TemplateAffine": template.affine,
        "TemplateShape": template.labels.shape,
        "AffineTemplateToSubjectRASmm": world_affine,
        "MaxDisplacementMm": cfg["max_disp_mm"],
        "ControlSpacingVoxels": control,
        "Gamma": gamma,
        "BiasStrength": bias_strength,
        "NoiseStd": noise_std,
        "Orientation": "".join(orientation),
        "VoxelSizesMm": voxel_sizes,
    }
    return {
        "t1w": np.round(t1w * scale).clip(0, 65535).astype(np.uint16),
        "preproc": np.round(preproc * scale).clip(0, 65535).astype(np.uint16),
        "mask": mask.astype(np.uint8),
        "dseg": dseg,
        "affine": affine,
        "truth": truth,
    }


def _description(name: str, derivative: bool) -> dict:
    from .. import __version__

    desc = {
        "Name": name,
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative" if derivative else "raw",
        "License": "CC0 (synthetic deformations); Colin27 and AAL under their own terms (Debian mricron-data)",
        "Authors": ["smgic-pydra example generator", "Colin27 and AAL authors"],
    }
    if derivative:
        desc["GeneratedBy"] = [
            {
                "Name": "smgic-pydra example generator",
                "Version": __version__,
                "Description": "Ground-truth brain masks, AAL labels and bias-free T1w, in sMRIPrep naming",
            }
        ]
        desc["DatasetLinks"] = {"raw": "../../"}
    else:
        desc["GeneratedBy"] = [{"Name": "smgic-pydra example generator", "Version": __version__}]
    return desc


README = """Synthetic T1w example dataset for smgic-pydra
=============================================

Subjects are Colin27 (ch2, from Debian's mricron-data) moved by known random affine transforms
(rotations up to 15 degrees, translations up to 15 mm, scaling 0.9-1.1) and smooth nonlinear warps
of several millimetres, with random gamma, bias field and noise, each written in its own native
space (different orientations and voxel sizes). derivatives/smriprep holds the ground-truth brain
masks, AAL labels (label-aware resampling) and bias-free T1w images in sMRIPrep naming.
Ground truth transform parameters: sub-*/[ses-*/]anat/*_T1w.json, key SyntheticGroundTruth.
Regenerate with: python bids_examples/make_example_dataset.py OUT_DIR
"""


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        return
    try:
        name = json.loads((out_dir / "dataset_description.json").read_text()).get("Name")
    except (OSError, ValueError):
        name = None
    if name != DATASET_NAME:
        problem = "exists and is not an smgic-pydra example dataset; refusing to replace it"
        raise InputError(display_path(out_dir), problem)


def make_example_dataset(
    out_dir,
    n_subjects: int = 4,
    seed: int = 0,
    voxel_mm: float = 2.0,
    two_session_subjects: int = 0,
    template_dir=TEMPLATE_DIR,
) -> Path:
    """Write the example dataset to ``out_dir`` and return its path.

    An existing ``out_dir`` is replaced only when it is empty or an earlier example dataset
    (:class:`InputError` otherwise, so no other folder is ever deleted).

    Subjects ``sub-01 .. sub-NN``; the last ``two_session_subjects`` of them get ``ses-1`` and
    ``ses-2`` (independent draws). Deterministic for a given ``seed``. The dataset is built in a
    temporary folder beside ``out_dir`` and moved into place at the end.
    """
    if n_subjects < 1 or not 0 <= two_session_subjects <= n_subjects:
        raise ValueError(
            "need n_subjects >= 1 and 0 <= two_session_subjects <= n_subjects, "
            f"got {n_subjects} and {two_session_subjects}"
        )
    out_dir = Path(out_dir).absolute()
    _check_replaceable(out_dir)
    tmp = out_dir.parent / f".tmp-{out_dir.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        _build(tmp, n_subjects, seed, voxel_mm, two_session_subjects, template_dir)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _build(root: Path, n_subjects, seed, voxel_mm, two_session_subjects, template_dir) -> None:
    template = load_template(voxel_mm, template_dir)
    deriv = root / "derivatives" / DERIV_NAME
    save_json(_description(DATASET_NAME, derivative=False), root / "dataset_description.json")
    deriv_desc = _description("smgic-pydra Colin27 example: ground-truth anatomy", derivative=True)
    save_json(deriv_desc, deriv / "dataset_description.json")
    (root / "README").write_text(README)
    lines = ["index\tname"] + [f"{i}\t{n}" for i, n in template.names]
    (deriv / "dseg.tsv").write_text("\n".join(lines) + "\n")
    participants = ["participant_id\tn_sessions"]
    draw = 0
    for s in range(1, n_subjects + 1):
        sub = f"sub-{s:02d}"
        sessions = ["1", "2"] if s > n_subjects - two_session_subjects else [None]
        participants.append(f"{sub}\t{len(sessions)}")
        for ses in sessions:
            data = synthesize_subject(template, [seed, draw], draw)
            draw += 1
            rel = Path(sub) / (f"ses-{ses}" if ses else "") / "anat"
            stem = sub + (f"_ses-{ses}" if ses else "")
            affine = data["affine"]
            save_nifti(_nifti(data["t1w"], affine, np.uint16), root / rel / f"{stem}_T1w.nii.gz")
            save_json({"SyntheticGroundTruth": data["truth"]}, root / rel / f"{stem}_T1w.json")
            save_nifti(_nifti(data["preproc"], affine, np.uint16), deriv / rel / f"{stem}_desc-preproc_T1w.nii.gz")
            save_nifti(_nifti(data["mask"], affine, np.uint8), deriv / rel / f"{stem}_desc-brain_mask.nii.gz")
            save_nifti(_nifti(data["dseg"], affine, np.int16), deriv / rel / f"{stem}_dseg.nii.gz")
            sources = {"Sources": [f"bids:raw:{rel.as_posix()}/{stem}_T1w.nii.gz"]}
            save_json({"SkullStripped": False, **sources}, deriv / rel / f"{stem}_desc-preproc_T1w.json")
            save_json({"Type": "Brain", **sources}, deriv / rel / f"{stem}_desc-brain_mask.json")
            dseg_meta = {"Description": "AAL atlas labels (see dseg.tsv)", **sources}
            save_json(dseg_meta, deriv / rel / f"{stem}_dseg.json")
    (root / "participants.tsv").write_text("\n".join(participants) + "\n")
    save_json(
        {"n_sessions": {"Description": "Number of sessions of the participant"}}, root / "participants.json"
    )
    (deriv / "README").write_text(README)
