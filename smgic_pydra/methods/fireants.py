"""FireANTs (PyPI ``fireants``, PyTorch, CPU or CUDA) as a peer method: its brain recipe, moments ->
affine -> greedy diffeomorphic, written as the same files as every other method.

The recipe (options of the registry entry, FireANTs' quickstart values): second-order moments
matching (centre of mass + principal axes, the rotation chosen by CC), then a multi-scale affine
(Adam, local CC), then greedy compositive diffeomorphic registration initialised with that affine
(Adam, local CC, gradient and warp smoothing). Its inputs are scaled to a brain 99th percentile of
``intensity_scale`` (1000) first: its CC's constant 1e-5 makes an empty window score ~1 at 0-1 intensities
(:func:`_scaled`). FireANTs' ``save_as_ants_transforms`` writes the
whole forward mapping (affine included) as an ANTs displacement field on the fixed grid. The inverse
on the moving grid is computed here (:func:`smgic_pydra.worldspace.invert.invert_displacement`,
the affine inverted exactly, the greedy residual by fixed-point iteration): FireANTs' own
``save_inverse=True`` inverts the residual as if the affine were the identity in its normalised
coordinates, which leaves millimetres of inverse-consistency error between images in different
native spaces (5.3 mm mean on the test pair, 4 mm grids). Both fields go to
:func:`smgic_pydra.methods.native.register_native`.

Install: ``fireants`` pins ``simpleitk==2.2.1``; this package uses SimpleITK 2.5.7, which FireANTs'
code runs with. So it is installed without its pins: ``pip install 'smgic-pydra[fireants]'`` then
``pip install --no-deps fireants==1.5.0`` (``scripts/setup-env`` does both).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from .registry import MethodContext, Runner

VERSION = "1.5.0"
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""RAS <-> LPS (its own inverse)."""
INSTALL = f"pip install 'smgic-pydra[fireants]' && pip install --no-deps fireants=={VERSION}"


def _fireants():
    """FireANTs' classes. Its import configures the root logger (``basicConfig(level=INFO)``) and sets its
    own loggers to INFO; both are undone here, so that only its errors are logged."""
    from ..io.errors import MissingToolError

    root_handlers, root_level = list(logging.root.handlers), logging.root.level
    try:
        from fireants.io.image import BatchedImages, Image
        from fireants.registration.affine import AffineRegistration
        from fireants.registration.greedy import GreedyRegistration
        from fireants.registration.moments import MomentsRegistration
    except ImportError as exc:
        raise MissingToolError("fireants", INSTALL) from exc
    finally:
        logging.root.handlers[:], logging.root.level = root_handlers, root_level
        for name in [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "fireants"]:
            logging.getLogger(name).setLevel(logging.ERROR)
    return BatchedImages, Image, MomentsRegistration, AffineRegistration, GreedyRegistration


def fireants_fields(fixed_img, moving_img, folder: Path, device: str = "cpu", options: dict | None = None,
                    seed: int = 1) -> tuple:
    """Register ``moving_img`` to ``fixed_img`` (nibabel, native grids) with FireANTs in ``folder``.

    options: overriding the registry entry's (scales, iterations, learning rates, CC kernel, smoothing).
    Returns ``(forward (X, Y, Z, 3) RAS mm on the fixed grid, inverse on the moving grid, seconds of
    the three stages (the inverse's own time is in the details' ``stage_seconds``), sidecar details)``.
    """
    import torch

    from ..baselines.ants_registration import save_float_image
    from ..io.itk_warp import read_itk_displacement
    from ..worldspace.invert import invert_displacement
    from .registry import get_method

    s = get_method("fireants").merged_options(options)
    BatchedImages, Image, Moments, Affine, Greedy = _fireants()
    folder.mkdir(parents=True, exist_ok=True)
    scale = float(s["intensity_scale"])
    fixed_path = save_float_image(_scaled(fixed_img, scale), folder / "fixed.nii.gz")
    moving_path = save_float_image(_scaled(moving_img, scale), folder / "moving.nii.gz")
    torch.manual_seed(int(seed))
    fixed = BatchedImages([Image.load_file(str(fixed_path), device=device)])
    moving = BatchedImages([Image.load_file(str(moving_path), device=device)])
    common = dict(fixed_images=fixed, moving_images=moving, loss_type="cc", cc_kernel_size=int(s["cc_kernel_size"]),
                  progress_bar=False)
    scales, times = [float(x) for x in s["scales"]], {}

    def timed(name, reg):
        if str(device).startswith("cuda"):
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        reg.optimize()
        if str(device).startswith("cuda"):
            torch.cuda.synchronize(device)
        times[name] = time.perf_counter() - start
        return reg

    moments = timed("moments", Moments(scale=scales[0], moments=2, orientation="rot", **common))
    affine = timed("affine", Affine(scales, [int(n) for n in s["affine_iterations"]], optimizer="Adam",
                                    optimizer_lr=float(s["affine_lr"]), init_rigid=moments.get_affine_init(),
                                    **common))
    greedy = timed("greedy", Greedy(scales, [int(n) for n in s["greedy_iterations"]], deformation_type="compositive",
                                    optimizer="Adam", optimizer_lr=float(s["greedy_lr"]),
                                    smooth_grad_sigma=float(s["smooth_grad_sigma"]),
                                    smooth_warp_sigma=float(s["smooth_warp_sigma"]),
                                    init_affine=affine.get_affine_matrix().detach(), **common))
    warp_file = folder / "fireants_warp.nii.gz"
    with torch.no_grad():
        greedy.save_as_ants_transforms(str(warp_file))
        linear = affine.get_affine_matrix()[0].double().cpu().numpy()  # physical (LPS) fixed -> moving
    fwd, fwd_affine = read_itk_displacement(warp_file)
    _check_grid(fwd, fwd_affine, fixed_img, "forward")
    seconds = sum(times.values())
    start = time.perf_counter()
    inv = invert_displacement(fwd, fixed_img.affine, LPS @ linear @ LPS, moving_img.affine, moving_img.shape)
    times["inverse"] = time.perf_counter() - start
    details = {"parameters": {"recipe": "MomentsRegistration(moments=2) -> AffineRegistration -> "
                              "GreedyRegistration(compositive), local CC", **s},
               "fireants_version": _version(), "device": str(device), "stage_seconds": times}
    return fwd, inv, seconds, details


def _scaled(img, scale: float):
    """``img`` (zero outside the brain) times ``scale / p99`` of its non-zero voxels, float32.

    FireANTs' local CC is ``(cross + 1e-5) / (sd_f sd_m + 1e-5)`` with variances clamped at 1e-5, so it
    depends on the intensity scale: with T1w in 0-1 (our synthetic subjects, many preprocessed
    datasets) a window where either image is constant (the zero background of a skull-stripped
    brain) scores ~1, the best possible; moving the brain out of the fixed brain's windows then
    lowers the loss (measured: the affine stage took a held-out pair from Dice 0.31 after moments to
    0.08). At a scanner-like scale (p99 = 1000) such windows score ~1e-3 and background on background
    still 1, as in ANTs' CC.
    """
    import nibabel as nib

    data = np.asarray(img.dataobj, dtype=np.float32)
    brain = data[data != 0]
    p99 = float(np.percentile(brain, 99)) if brain.size else 0.0
    factor = scale / p99 if p99 > 0 else 1.0
    return nib.Nifti1Image((data * factor).astype(np.float32), img.affine)


def _check_grid(disp, affine, img, what: str) -> None:
    if disp.shape[:3] != tuple(img.shape[:3]) or not np.allclose(affine, img.affine, atol=1e-3):
        raise RuntimeError(f"FireANTs wrote the {what} warp on grid {disp.shape[:3]}, expected {tuple(img.shape[:3])}")


def _version() -> str:
    import importlib.metadata as md

    try:
        return md.version("fireants")
    except md.PackageNotFoundError:
        return "unknown"


def fireants_pair(fixed_img, moving_img, moving_labels_img, device: str = "cpu", options=None, seed: int = 1,
                  sidecar_extra: dict | None = None, work_dir=None):
    """Register native images with FireANTs (see :func:`fireants_fields`); returns the
    :class:`~smgic_pydra.worldspace.registered.RegisteredPair` (nothing written).

    work_dir: where FireANTs' own files go (kept); None: a temporary folder.
    """
    from .native import register_native

    def fields():
        if work_dir is not None:
            return fireants_fields(fixed_img, moving_img, Path(work_dir), device, options, seed)
        with tempfile.TemporaryDirectory(prefix="smgic-fireants-") as folder:
            return fireants_fields(fixed_img, moving_img, Path(folder), device, options, seed)

    sidecar = {"method": "fireants", "random_seed": int(seed), **(sidecar_extra or {})}
    return register_native("fireants", fields, fixed_img, moving_img, moving_labels_img, sidecar)


def make_runner(context: MethodContext, method: str = "fireants") -> Runner:
    """FireANTs on ``context.device`` with ``context.options``, ``context.threads`` torch threads."""
    from .native import prepared_inputs

    def run(fixed, moving, sidecar_extra: dict):
        fixed_img, moving_img, labels, extra = prepared_inputs(fixed, moving)
        return fireants_pair(fixed_img, moving_img, labels, context.device, dict(context.options), context.seed,
                             {**extra, **sidecar_extra})

    return run
