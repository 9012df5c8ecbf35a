"""ANTs baselines run in-process with antspyx (real ANTs 2.5): ``syn``, ``synquick``, ``affine``, ``identity``.

Each method writes the same files as SM-GICNet (:func:`smgic_pydra.worldspace.write_pair_outputs`):
the forward warp (fixed -> moving, fixed native grid), the inverse warp (moving -> fixed, moving
native grid), the warped image and labels, the Jacobian map and a JSON sidecar with the method,
the exact ``antsRegistration`` arguments, threads, seed and measured times.

How: the preset's argument list (:func:`.presets.antsregistration_arguments`) is passed to antspyx's bound ``antsRegistration`` (``ants.registration(args,
None)``), with images as files in a work folder. The ANTs transforms are then composed by
``antsApplyTransforms`` (``ants.apply_transforms(..., compose=...)``) into one displacement field
on the fixed grid (``[1Warp, 0GenericAffine]``) and one on the moving grid
(``[[0GenericAffine, inverted], 1InverseWarp]``), read back as RAS mm fields.

Threads and seed: antsRegistration runs in a fresh process (:mod:`.ants_child`) with
``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` set, because ITK reads that variable once per process (an
earlier ITK call in the caller's process would otherwise fix the thread count). With one thread and
a fixed ``--random-seed`` the result is reproducible bit for bit; with more threads ITK's parallel
sums make it vary slightly from run to run.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from .presets import PRESETS, antsregistration_arguments, is_large_image

METHODS = ("identity", *PRESETS)
"""What :func:`register_images` runs: no registration, or an ANTs preset."""
THREADS_ENV = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"
OUTPUT_PREFIX = "ants_"
GRID_ATOL_MM = 1e-3


def _ants():
    from ..io.errors import MissingToolError

    try:
        import ants
    except ImportError as exc:
        raise MissingToolError("antspyx", "pip install 'smgic-pydra[ants]' (antspyx==0.6.3)") from exc
    return ants


def run_antsregistration(method: str, fixed_path: Path, moving_path: Path, work_dir: Path, seed: int,
                         nthreads: int = 1) -> dict:
    """Run the preset ``method`` with antspyx on two image files, in a fresh process (see the module doc).

    ANTs outputs and its log (``<prefix>log.txt``) go to ``work_dir``.

    Returns ``{"arguments": [...], "seconds": wall time of antsRegistration, "forward": [...],
    "inverse": [...], "inverse_flags": [...], "warped": path of ANTs' own warped image}``.
    """
    import json
    import subprocess
    import sys

    import nibabel as nib

    if int(nthreads) < 1:
        raise ValueError(f"nthreads must be >= 1, got {nthreads}")
    _ants()  # a clear error now when antspyx is missing
    prefix = str(Path(work_dir) / OUTPUT_PREFIX)
    large = is_large_image(nib.load(fixed_path).shape)
    args = antsregistration_arguments(method, str(fixed_path), str(moving_path), prefix, seed, large)
    args_file, seconds_file, log_file = (Path(prefix + n) for n in ("arguments.json", "seconds.json", "log.txt"))
    args_file.write_text(json.dumps(args))
    seconds_file.unlink(missing_ok=True)
    package_root = str(Path(__file__).resolve().parents[2])  # importable even when not installed
    env = {**os.environ, THREADS_ENV: str(int(nthreads)),
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with open(log_file, "w") as log:
        done = subprocess.run([sys.executable, "-m", "smgic_pydra.baselines.ants_child", str(args_file),
                               str(seconds_file)], env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not seconds_file.is_file():
        tail = " | ".join(log_file.read_text(errors="replace").strip().splitlines()[-3:])
        raise RuntimeError(f"antsRegistration ({method}) failed with exit code {done.returncode}: {tail}")
    seconds = json.loads(seconds_file.read_text())["seconds"]
    affine = Path(prefix + "0GenericAffine.mat")
    forward, inverse, flags = [affine], [affine], [True]
    if any(stage["transform"].startswith("SyN") for stage in PRESETS[method]["stages"]):
        forward.insert(0, Path(prefix + "1Warp.nii.gz"))
        inverse.append(Path(prefix + "1InverseWarp.nii.gz"))
        flags.append(False)
    missing = [str(p) for p in forward + inverse if not p.is_file()]
    if missing:
        raise RuntimeError(f"antsRegistration ({method}) did not write {missing}")
    return {"arguments": args, "large_image": large, "seconds": seconds, "forward": [str(p) for p in forward],
            "inverse": [str(p) for p in inverse], "inverse_flags": flags, "warped": prefix + "Warped.nii.gz"}


def compose_displacement(reference_path: Path, source_path: Path, transforms: list[str], invert: list[bool],
                         out_prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Compose ANTs transforms into one displacement field on the reference image's grid.

    Returns ``(disp (X, Y, Z, 3) RAS mm, affine)`` as written by ``antsApplyTransforms``.
    """
    from ..io.itk_warp import read_itk_displacement

    ants = _ants()
    reference, source = ants.image_read(str(reference_path)), ants.image_read(str(source_path))
    path = ants.apply_transforms(reference, source, transformlist=transforms, whichtoinvert=invert,
                                 compose=out_prefix, singleprecision=False)
    if path is None:
        raise RuntimeError(f"antsApplyTransforms did not compose {transforms}")
    return read_itk_displacement(path)


def _check_on_grid(affine: np.ndarray, disp: np.ndarray, img, what: str) -> None:
    if disp.shape[:3] != tuple(img.shape[:3]) or not np.allclose(affine, img.affine, atol=GRID_ATOL_MM):
        raise RuntimeError(f"ANTs composed the {what} field on grid {disp.shape[:3]} / {affine.tolist()}, "
                           f"expected {tuple(img.shape[:3])} / {np.asarray(img.affine).tolist()}")


def save_float_image(img, path: Path) -> Path:
    """``img`` as float32 NIfTI at ``path`` with its affine as qform and sform (code 1), as ITK reads it."""
    import nibabel as nib

    out = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    out.set_qform(img.affine, code=1)
    out.set_sform(img.affine, code=1)
    nib.save(out, path)
    return path


def ants_fields(method: str, fixed_img, moving_img, folder: Path, seed: int,
                nthreads: int) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Run an ANTs preset in ``folder`` and compose its transforms into native-grid fields.

    Returns the forward field (fixed grid), the inverse field (moving grid), both ``(X, Y, Z, 3)``
    RAS mm, the antsRegistration wall time (s) and the sidecar details of the run.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fixed_path = save_float_image(fixed_img, folder / "fixed.nii.gz")
    moving_path = save_float_image(moving_img, folder / "moving.nii.gz")
    run = run_antsregistration(method, fixed_path, moving_path, folder, seed, nthreads)
    compose_start = time.perf_counter()
    fwd, fwd_affine = compose_displacement(fixed_path, moving_path, run["forward"], [False] * len(run["forward"]),
                                           str(folder / "forward_"))
    inv, inv_affine = compose_displacement(moving_path, fixed_path, run["inverse"], run["inverse_flags"],
                                           str(folder / "inverse_"))
    _check_on_grid(fwd_affine, fwd, fixed_img, "forward")
    _check_on_grid(inv_affine, inv, moving_img, "inverse")
    details = {
        "parameters": {
            "script": PRESETS[method]["script"],
            "antsRegistration_arguments": [a.replace(str(folder) + os.sep, "") for a in run["arguments"]],
            "large_image_schedule": run["large_image"],
            "composed_with": "antsApplyTransforms (antspyx apply_transforms compose), double precision",
        },
        "antspyx_version": getattr(_ants(), "__version__", "unknown"),
        "compose_seconds": time.perf_counter() - compose_start,
    }
    return fwd, inv, run["seconds"], details


def baseline_pair(method: str, fixed_img, moving_img, moving_labels_img, nthreads: int = 1, seed: int = 1,
                  work_dir=None, sidecar_extra: dict | None = None):
    """Register ``moving_img`` to ``fixed_img`` (nibabel images, native grids) with an ANTs baseline;
    returns the :class:`~smgic_pydra.worldspace.registered.RegisteredPair` (nothing written).

    method: one of :data:`METHODS`. moving_labels_img: labels on the moving grid, or None.
    work_dir: where ANTs' own files go (kept); None uses a temporary folder.
    """
    from ..methods.native import register_native

    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r}; choose one of {list(METHODS)}")

    def fields():
        if method == "identity":
            return (np.zeros(tuple(fixed_img.shape[:3]) + (3,)), np.zeros(tuple(moving_img.shape[:3]) + (3,)), 0.0,
                    {"parameters": {"description": "no registration: zero displacement fields"}})
        with (nullcontext(work_dir) if work_dir is not None else tempfile.TemporaryDirectory(prefix="smgic-ants-")) as folder:
            return ants_fields(method, fixed_img, moving_img, Path(folder), seed, nthreads)

    sidecar = {"method": method, "threads": int(nthreads), "random_seed": int(seed), **(sidecar_extra or {})}
    return register_native(method, fields, fixed_img, moving_img, moving_labels_img, sidecar)


def baseline_prepared_pair(method: str, fixed, moving, nthreads: int = 1, seed: int = 1, work_dir=None,
                           sidecar_extra: dict | None = None):
    """:func:`baseline_pair` for two prepared subjects (:class:`~smgic_pydra.preparation.PreparedSubject`),
    with the same inputs as SM-GICNet (:func:`smgic_pydra.methods.native.prepared_inputs`)."""
    from ..methods.native import prepared_inputs

    fixed_img, moving_img, labels, extra = prepared_inputs(fixed, moving)
    return baseline_pair(method, fixed_img, moving_img, labels, nthreads, seed, work_dir,
                         {**extra, **(sidecar_extra or {})})

