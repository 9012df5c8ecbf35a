"""Pydra tasks: register two images with a method of the registry (:mod:`smgic_pydra.methods.registry`).

Each task prepares both images (:func:`~smgic_pydra.tasks.prepare.prepare_for_model`), runs the
method's runner (the one the cohort engine's tiles and the Nipype ``RegisterPair`` run) and writes
the pair's files (:meth:`~smgic_pydra.worldspace.registered.RegisteredPair.write`) in the task's folder.

Conventions of the outputs (RAS mm inside; the files are ITK/ANTs'):

* ``forward_warp``: 5-D ``(X, Y, Z, 1, 3)`` displacement, LPS mm, on the fixed image's grid,
  fixed -> moving (pull-back): ``antsApplyTransforms -r fixed -i moving -t forward_warp`` brings
  the moving image onto the fixed grid.
* ``inverse_warp``: the same layout, moving -> fixed, on the moving image's grid.
* ``affine_transform``: ITK ``.mat`` (LPS, fixed -> moving points) of the method's affine stage
  alone (None when it has none); the warps already include it.
* ``composite_transform``: ITK composite ``.h5``: the affine stage, then the residual displacement.
* ``warped_image``: the (masked) moving image on the fixed grid, trilinear; ``jacobian``:
  ``det(I + du/dx)`` of the forward warp on the fixed grid.
* ``sidecar``: JSON with the method, its options, the model's weights SHA-256, seed and the
  seconds of each stage (``forward_seconds``: the registration itself); ``fixed`` / ``moving``: the
  subject ids of :func:`pair_subject_ids`.
"""

from __future__ import annotations

from pathlib import Path

from pydra.compose import python

from ..methods.registry import METHODS
from ..pipeline_settings import quality_options
from .filetypes import PACKAGED_MODEL, Directory, File, Image, Json, NiftiGz

OUTPUTS = ("forward_warp", "inverse_warp", "affine_transform", "composite_transform", "warped_image", "jacobian",
           "sidecar", "forward_seconds")
"""The registration tasks' outputs (see the module docstring), typed by :data:`PairOutputs`."""
PairOutputs = tuple[NiftiGz, NiftiGz, File | None, File, NiftiGz, NiftiGz, Json, float]
FILE_ROLES = {"forward_warp": ("warp", "warp.nii.gz"), "inverse_warp": ("inverse_warp", "inverse_warp.nii.gz"),
              "affine_transform": ("affine", "affine.mat"), "composite_transform": ("warp_h5", "composite.h5"),
              "warped_image": ("warped", "warped.nii.gz"), "jacobian": ("jacobian", "jacobian.nii.gz"),
              "sidecar": ("sidecar", "registration.json")}
"""output -> (:class:`~smgic_pydra.worldspace.PairOutputPaths` role, file name in the task's folder)."""
ANTS_PRESETS = tuple(n for n, m in METHODS.items() if m.runner == METHODS["syn"].runner and m.selectable)


def pair_subject_ids(fixed_image, moving_image) -> tuple[str, str]:
    """``(fixed id, moving id)`` the two images are prepared with: their file names less ``.nii.gz``, ``.nii`` or
    ``.mgz`` when these differ; else (``a/T1w.nii.gz`` and ``b/T1w.nii.gz``, FreeSurfer's ``*/mri/norm.mgz``, one
    file twice) ``<name>_fixed`` and ``<name>_moving``. Always distinct: SM-GICNet's mapping keys the two subjects'
    halfway views and native grids by id."""
    from ..preparation.prepare import subject_id_from

    fixed, moving = (subject_id_from(Path(str(image))) for image in (fixed_image, moving_image))
    return (fixed, moving) if fixed != moving else (f"{fixed}_fixed", f"{moving}_moving")


def register_files(method: str, fixed_image, moving_image, fixed_mask=None, moving_mask=None, *, model=None,
                   options: dict | None = None, device: str = "cpu", num_threads: int = 1, random_seed: int = 1,
                   out_dir=None) -> tuple:
    """Prepare, register and write one pair with registry ``method``; returns the values of :data:`OUTPUTS`.

    out_dir: where the files go (default: the current folder, the task's). options: the method's
    options over its registry defaults (unknown keys and bad values are one-line errors). The subjects' ids
    (the sidecar's ``fixed`` / ``moving``) are :func:`pair_subject_ids`'.
    """
    from ..methods import MethodContext, get_method
    from ..worldspace import PairOutputPaths
    from .prepare import prepare_for_model
    from ..devices import limit_threads

    entry = get_method(method)
    context = MethodContext(model="" if model is None else str(model), device=device, threads=num_threads,
                            seed=random_seed, options=entry.merged_options(options))
    out = Path.cwd() if out_dir is None else Path(out_dir)
    fixed_id, moving_id = pair_subject_ids(fixed_image, moving_image)
    fixed = prepare_for_model(fixed_image, out / "prepared" / "fixed", model, fixed_mask, subject_id=fixed_id)
    moving = prepare_for_model(moving_image, out / "prepared" / "moving", model, moving_mask, subject_id=moving_id)
    limit_threads(num_threads)
    extra = {"fixed_image": str(fixed_image), "moving_image": str(moving_image)}
    pair = entry.make_runner(context)(fixed, moving, extra)
    paths = PairOutputPaths(**{role: out / name for role, name in FILE_ROLES.values()})
    files = pair.write(paths, "full")  # every file: warps, .mat, .h5, warped image, Jacobian, sidecar
    values = [files.get(role) for role, _ in FILE_ROLES.values()]
    return (*values, float(pair.seconds["forward_seconds"]))


_PAIR_DOC = """
    Args:
        fixed_image: fixed T1w (.nii or .nii.gz, any orientation), skull-stripped or with fixed_mask.
        moving_image: moving T1w, the image brought onto the fixed grid.
        fixed_mask: brain mask on the fixed image's grid (brain where > 0; default: fixed_image > 0).
        moving_mask: brain mask on the moving image's grid.{extra}

    Returns:
        forward_warp: ITK/ANTs displacement field (LPS mm), fixed -> moving, on the fixed grid.
        inverse_warp: ITK/ANTs displacement field, moving -> fixed, on the moving grid.
        affine_transform: ITK .mat of the affine stage alone (LPS, fixed -> moving), or None.
        composite_transform: ITK composite .h5 (affine stage, then the residual field).
        warped_image: the masked moving image on the fixed grid (trilinear).
        jacobian: det(I + du/dx) of the forward warp on the fixed grid.
        sidecar: JSON: method, options, model weights SHA-256, seed, stage seconds.
        forward_seconds: seconds of the registration itself (no reading or writing).
    """


def _documented(extra: str):
    def wrap(function):
        function.__doc__ += _PAIR_DOC.format(extra=extra)
        return function
    return wrap


@_documented("""
        model: SM-GICNet model folder (default: the packaged model).
        refine: Adam steps of test-time refinement of the velocity field on the 3 mm grid (0: none, nor the 6 and
            1.5 mm stages around them; None: options' refine, else the preset's, else the registry's).
        affine: run the symmetric affine stage first (None: options' affine, else the preset's, else the
            registry's: yes).
        quality: the preset (fast, default or best; ``smgic_pydra.pipeline_settings.QUALITY_PRESETS``) under
            refine, affine and options.
        options: further smgicnet options (registry keys, e.g. refine_factor, or affine and refine themselves:
            given both as an argument and in options with different values is a ValueError).
        device: cpu, cuda or cuda:N.
        num_threads: torch threads.""")
def smgicnet_registration(fixed_image: Image, moving_image: Image, fixed_mask: Image | None = None,
                          moving_mask: Image | None = None, model: Directory = PACKAGED_MODEL,
                          refine: int | None = None, affine: bool | None = None, quality: str = "default",
                          options: dict | None = None, device: str = "cpu", num_threads: int = 1) -> PairOutputs:
    """Register moving_image to fixed_image with SM-GICNet (symmetric affine, the network, refinement)."""
    options = dict(options or {})
    stages = {key: value for key, value in (("affine", affine), ("refine", refine)) if value is not None}
    clashes = [f"{key}={value!r} and options[{key!r}]={options[key]!r}" for key, value in stages.items()
               if key in options and options[key] != value]
    if clashes:
        raise ValueError(f"smgicnet: {'; '.join(clashes)} disagree: give one")
    return register_files("smgicnet", fixed_image, moving_image, fixed_mask, moving_mask, model=model,
                          options={**quality_options(quality), **options, **stages}, device=device,
                          num_threads=num_threads)


SMGICNetRegistration = python.define(smgicnet_registration, outputs=OUTPUTS, name="SMGICNetRegistration")
"""Pydra task of :func:`smgicnet_registration`."""


@_documented("""
        preset: syn (antsRegistrationSyN.sh -t s), synquick (antsRegistrationSyNQuick.sh -t s) or affine (-t a).
        num_threads: ITK threads.
        random_seed: seed of ANTs' metric sampling (>= 1).""")
def ants_registration(fixed_image: Image, moving_image: Image, fixed_mask: Image | None = None,
                      moving_mask: Image | None = None, preset: str = "synquick", num_threads: int = 1,
                      random_seed: int = 1) -> PairOutputs:
    """Register moving_image to fixed_image with ANTs 2.5 (antspyx), the preset's stages and defaults."""
    return register_files(preset, fixed_image, moving_image, fixed_mask, moving_mask, num_threads=num_threads,
                          random_seed=random_seed)


ANTsRegistration = python.define(ants_registration, outputs=OUTPUTS, name="ANTsRegistration", inputs={
    "preset": python.arg(type=str, default="synquick", allowed_values=ANTS_PRESETS,
                         help="ANTs preset: " + ", ".join(ANTS_PRESETS))})
"""Pydra task of :func:`ants_registration`."""


@_documented("""
        options: FireANTs options over the registry's (scales, affine_iterations, greedy_iterations, ...).
        device: cpu, cuda or cuda:N.
        num_threads: torch threads.
        random_seed: torch seed (>= 1).""")
def fireants_registration(fixed_image: Image, moving_image: Image, fixed_mask: Image | None = None,
                          moving_mask: Image | None = None, options: dict | None = None, device: str = "cpu",
                          num_threads: int = 1, random_seed: int = 1) -> PairOutputs:
    """Register moving_image to fixed_image with FireANTs (moments -> affine -> greedy diffeomorphic)."""
    return register_files("fireants", fixed_image, moving_image, fixed_mask, moving_mask, options=options,
                          device=device, num_threads=num_threads, random_seed=random_seed)


FireANTsRegistration = python.define(fireants_registration, outputs=OUTPUTS, name="FireANTsRegistration")
"""Pydra task of :func:`fireants_registration`."""
