"""ANTs registration presets as data: the stages of ``antsRegistrationSyN.sh`` and ``antsRegistrationSyNQuick.sh``.

The in-process runner (:mod:`.ants_registration`, via antspyx) builds its ``antsRegistration``
command with :func:`antsregistration_arguments`.

The values are those of the ANTs 2.5 scripts (``Scripts/antsRegistrationSyN.sh`` and
``antsRegistrationSyNQuick.sh``), with their defaults: CC radius 4 (SyN), 32 MI bins, histogram
matching off, double precision (``--float 0``), winsorizing at [0.005, 0.995], linear
interpolation, centre-of-mass initialisation, and the "large image" schedule when a side of the
fixed image exceeds 256 voxels. antspyx's own ``antsRegistrationSyN[s]`` recreation differs (CC
radius 2, SyN step 0.2, no winsorizing, no large-image schedule), so it is not used. The only
addition to the scripts' command is ``--random-seed`` (the scripts leave the seed to ANTs, which then
seeds from the clock; ANTs also treats seed 0 that way, so seeds must be positive).

``syn`` = ``antsRegistrationSyN.sh -t s``; ``synquick`` = ``antsRegistrationSyNQuick.sh -t s``;
``affine`` = ``antsRegistrationSyN.sh -t a`` (rigid + affine).
"""

from __future__ import annotations

LARGE_IMAGE_SIDE = 256
"""A fixed image with a side larger than this (voxels) uses the scripts' large-image schedule."""

LINEAR_METRIC = "MI[{fixed},{moving},1,32,Regular,0.25]"
SCHEDULES = {
    # schedule -> size -> (shrink factors, smoothing sigmas)
    "linear": {"standard": ("8x4x2x1", "3x2x1x0vox"), "large": ("12x8x4x2", "4x3x2x1vox")},
    "syn": {"standard": ("8x4x2x1", "3x2x1x0vox"), "large": ("10x6x4x2x1", "5x3x2x1x0vox")},
}

PRESETS: dict[str, dict] = {
    "syn": {
        "script": "antsRegistrationSyN.sh -t s",
        "stages": [
            {"transform": "Rigid[0.1]", "metric": LINEAR_METRIC, "schedule": "linear",
             "convergence": {"standard": "[1000x500x250x100,1e-6,10]", "large": "[1000x500x250x100,1e-6,10]"}},
            {"transform": "Affine[0.1]", "metric": LINEAR_METRIC, "schedule": "linear",
             "convergence": {"standard": "[1000x500x250x100,1e-6,10]", "large": "[1000x500x250x100,1e-6,10]"}},
            {"transform": "SyN[0.1,3,0]", "metric": "CC[{fixed},{moving},1,4]", "schedule": "syn",
             "convergence": {"standard": "[100x70x50x20,1e-6,10]", "large": "[100x100x70x50x20,1e-6,10]"}},
        ],
    },
    "synquick": {
        "script": "antsRegistrationSyNQuick.sh -t s",
        "stages": [
            {"transform": "Rigid[0.1]", "metric": LINEAR_METRIC, "schedule": "linear",
             "convergence": {"standard": "[1000x500x250x0,1e-6,10]", "large": "[1000x500x250x0,1e-6,10]"}},
            {"transform": "Affine[0.1]", "metric": LINEAR_METRIC, "schedule": "linear",
             "convergence": {"standard": "[1000x500x250x0,1e-6,10]", "large": "[1000x500x250x0,1e-6,10]"}},
            {"transform": "SyN[0.1,3,0]", "metric": "MI[{fixed},{moving},1,32]", "schedule": "syn",
             "convergence": {"standard": "[100x70x50x0,1e-6,10]", "large": "[100x100x70x50x0,1e-6,10]"}},
        ],
    },
    "affine": {
        "script": "antsRegistrationSyN.sh -t a",
        "stages": [
            {"transform": "Rigid[0.1]", "metric": LINEAR_METRIC, "schedule": "linear",
             "convergence": {"standard": "[1000x500x250x100,1e-6,10]", "large": "[1000x500x250x100,1e-6,10]"}},
            {"transform": "Affine[0.1]", "metric": LINEAR_METRIC, "schedule": "linear",
             "convergence": {"standard": "[1000x500x250x100,1e-6,10]", "large": "[1000x500x250x100,1e-6,10]"}},
        ],
    },
}
"""method -> the script it reproduces and its stages (metric templates take ``{fixed}`` and ``{moving}``)."""

FORBIDDEN_IN_PATHS = ",[]"


def is_large_image(shape) -> bool:
    """The scripts' test: any side of the fixed image larger than 256 voxels."""
    return any(int(n) > LARGE_IMAGE_SIDE for n in shape[:3])


def antsregistration_arguments(method: str, fixed: str, moving: str, output_prefix: str, random_seed: int,
                               large_image: bool = False) -> list[str]:
    """The ``antsRegistration`` argument list (without the program name) of a preset.

    fixed / moving: image paths (no ``,``, ``[`` or ``]``: ANTs splits its options on them).
    random_seed: a positive integer (ANTs seeds from the clock for 0, which is not reproducible).
    Outputs: ``<prefix>0GenericAffine.mat``, for SyN presets ``<prefix>1Warp.nii.gz`` and
    ``<prefix>1InverseWarp.nii.gz``, and ``<prefix>Warped.nii.gz`` / ``<prefix>InverseWarped.nii.gz``.
    """
    if method not in PRESETS:
        raise ValueError(f"unknown ANTs preset {method!r}; choose one of {sorted(PRESETS)}")
    if int(random_seed) < 1:
        raise ValueError(f"random_seed must be a positive integer (ANTs seeds from the clock for 0), got {random_seed}")
    for what, path in (("fixed", fixed), ("moving", moving), ("output prefix", output_prefix)):
        if any(ch in str(path) for ch in FORBIDDEN_IN_PATHS):
            raise ValueError(f"{what} path {path!r} contains one of {FORBIDDEN_IN_PATHS!r}, "
                             "which antsRegistration cannot parse")
    size = "large" if large_image else "standard"
    args = [
        "--verbose", "1",
        "--dimensionality", "3",
        "--float", "0",
        "--output", f"[{output_prefix},{output_prefix}Warped.nii.gz,{output_prefix}InverseWarped.nii.gz]",
        "--interpolation", "Linear",
        "--use-histogram-matching", "0",
        "--winsorize-image-intensities", "[0.005,0.995]",
        "--initial-moving-transform", f"[{fixed},{moving},1]",
    ]
    for stage in PRESETS[method]["stages"]:
        shrink, sigmas = SCHEDULES[stage["schedule"]][size]
        args += [
            "--transform", stage["transform"],
            "--metric", stage["metric"].format(fixed=fixed, moving=moving),
            "--convergence", stage["convergence"][size],
            "--shrink-factors", shrink,
            "--smoothing-sigmas", sigmas,
        ]
    return args + ["--random-seed", str(int(random_seed))]
