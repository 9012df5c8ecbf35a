"""Pydra 1.0 shell task running the ``antsRegistration`` binary with a preset of :mod:`.presets`.

The command is ``env ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=<n> antsRegistration <arguments>``, with
the arguments built by :func:`.presets.antsregistration_arguments`, the same list the in-process
antspyx runner uses. Outputs (in the task's working folder, named from ``output_prefix``): the
affine ``<prefix>0GenericAffine.mat``, for SyN presets the warps ``<prefix>1Warp.nii.gz`` and
``<prefix>1InverseWarp.nii.gz``, and the warped images.
"""

from __future__ import annotations

from pathlib import Path

from fileformats.generic import File
from pydra.compose import shell

from .ants_registration import OUTPUT_PREFIX, THREADS_ENV
from .presets import PRESETS, antsregistration_arguments, is_large_image


def _threads_arguments(num_threads: int) -> list[str]:
    if int(num_threads) < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return [f"{THREADS_ENV}={int(num_threads)}", "antsRegistration"]


def _preset_arguments(preset: str, fixed_image, moving_image, output_prefix: str, random_seed: int) -> list[str]:
    import nibabel as nib

    large = Path(str(fixed_image)).is_file() and is_large_image(nib.load(str(fixed_image)).shape)
    return antsregistration_arguments(preset, str(fixed_image), str(moving_image), output_prefix, random_seed, large)


OUTPUT_FILES = {
    "affine": "0GenericAffine.mat",
    "warp": "1Warp.nii.gz",
    "inverse_warp": "1InverseWarp.nii.gz",
    "warped": "Warped.nii.gz",
    "inverse_warped": "InverseWarped.nii.gz",
}
"""output name -> file name after the prefix, as antsRegistration writes them (collapsed transforms)."""


def _output(name: str):
    """Callable resolving one output file in the task's working folder (None when ANTs did not write it)."""

    def resolve(output_prefix: str, cache_dir):
        path = Path(cache_dir) / f"{output_prefix}{OUTPUT_FILES[name]}"
        return File(path) if path.exists() else None

    return resolve


@shell.define
class AntsRegistration(shell.Task["AntsRegistration.Outputs"]):
    """``antsRegistration`` with the ``syn`` / ``synquick`` / ``affine`` preset (see :mod:`.presets`).

    The large-image schedule of the scripts is used when a side of the fixed image exceeds 256 voxels.
    """

    executable = "env"
    num_threads: int = shell.arg(default=1, position=1, formatter=_threads_arguments,
                                 help="ITK threads (ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS)")
    preset: str = shell.arg(position=2, allowed_values=sorted(PRESETS), formatter=_preset_arguments,
                            help="syn (antsRegistrationSyN.sh -t s), synquick (antsRegistrationSyNQuick.sh -t s), "
                                 "affine (antsRegistrationSyN.sh -t a)")
    fixed_image: File = shell.arg(argstr=None, help="fixed image (NIfTI)")
    moving_image: File = shell.arg(argstr=None, help="moving image (NIfTI)")
    output_prefix: str = shell.arg(argstr=None, default=OUTPUT_PREFIX, help="prefix of the ANTs output files")
    random_seed: int = shell.arg(argstr=None, default=1, help="--random-seed of antsRegistration (positive)")

    class Outputs(shell.Outputs):
        affine: File | None = shell.out(callable=_output("affine"), help="<prefix>0GenericAffine.mat")
        warp: File | None = shell.out(callable=_output("warp"), help="<prefix>1Warp.nii.gz (SyN presets)")
        inverse_warp: File | None = shell.out(callable=_output("inverse_warp"),
                                              help="<prefix>1InverseWarp.nii.gz (SyN presets)")
        warped: File | None = shell.out(callable=_output("warped"), help="moving image on the fixed grid")
        inverse_warped: File | None = shell.out(callable=_output("inverse_warped"),
                                                help="fixed image on the moving grid")
