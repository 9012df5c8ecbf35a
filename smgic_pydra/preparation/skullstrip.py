"""Brain masks from real skull-stripping tools: deepbet (Python) and FreeSurfer's mri_synthstrip (shell).

Both return a boolean mask on the input image's own grid. A missing tool raises
:class:`~smgic_pydra.io.errors.MissingToolError` saying how to install it; nothing is faked.
:data:`SKULL_STRIPPERS` is the one list of them (the CLI's ``--skull-strip`` choices and help read it).
"""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from dataclasses import dataclass
from typing import Callable

from ..io.errors import MissingToolError
from ..io.images import check_same_grid, load_image


@dataclass(frozen=True)
class SkullStripper:
    """A skull-stripping choice: name, one line of CLI help, ``mask(t1_path, t1_img) -> (X, Y, Z) bool``
    (None: the image is already skull-stripped, brain = ``image > 0``) and the pip extra it needs."""

    name: str
    help: str
    mask: Callable | None = None
    extra: str | None = None


def _deepbet(t1_path, t1_img) -> np.ndarray:
    return deepbet_mask(t1_img)


def _synthstrip(t1_path, t1_img) -> np.ndarray:
    return synthstrip_mask(t1_path, t1_img)


SKULL_STRIPPERS: dict[str, SkullStripper] = {s.name: s for s in (
    SkullStripper("none", "the T1w is already skull-stripped (brain: image > 0)"),
    SkullStripper("deepbet", "deepbet (Python, CPU or CUDA)", _deepbet, "skullstrip"),
    SkullStripper("synthstrip", "FreeSurfer's mri_synthstrip (>= 7.3, on PATH)", _synthstrip),
)}
SKULL_STRIP_METHODS = tuple(SKULL_STRIPPERS)


def deepbet_mask(img, threshold: float = 0.5, device: str | None = None) -> np.ndarray:
    """deepbet brain mask ``(X, Y, Z)`` bool of a T1w head image (nibabel, any orientation).

    Uses the weights shipped in the deepbet wheel; runs on CUDA when available (or ``device``
    ``"cpu"``/``"cuda"``), else CPU (about a minute for a 1 mm head).
    """
    try:
        from deepbet import BrainExtraction
    except ImportError as exc:
        raise MissingToolError("deepbet", "pip install 'smgic-pydra[skullstrip]' (or pip install deepbet)") from exc
    import nibabel as nib
    import torch

    use_gpu = torch.cuda.is_available() if device is None else device.startswith("cuda")
    head = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    _, mask_img, _ = BrainExtraction(no_gpu=not use_gpu).run(head, threshold=threshold)
    return np.asarray(mask_img.dataobj) > 0


@lru_cache(maxsize=1)
def synthstrip_task():
    """Pydra shell task ``mri_synthstrip -i <in_file> -m <mask_file>`` (FreeSurfer >= 7.3)."""
    from pydra.compose import shell

    return shell.define("mri_synthstrip -i <in_file:generic/file> -m <out|mask_file:generic/file>", name="SynthStrip")


def synthstrip_mask(t1_path, t1_img) -> np.ndarray:
    """Brain mask ``(X, Y, Z)`` bool from FreeSurfer's ``mri_synthstrip`` run as a Pydra shell task."""
    if shutil.which("mri_synthstrip") is None:
        raise MissingToolError(
            "mri_synthstrip",
            "install FreeSurfer >= 7.3 (or the standalone SynthStrip, "
            "https://surfer.nmr.mgh.harvard.edu/docs/synthstrip/) and put mri_synthstrip on PATH, "
            "or use skull_strip='deepbet'",
        )
    with tempfile.TemporaryDirectory(prefix="smgic-synthstrip-") as work:
        mask_file = Path(work) / "mask.nii.gz"
        task = synthstrip_task()(in_file=Path(t1_path).absolute(), mask_file=mask_file)
        outputs = task(cache_root=Path(work) / "cache")
        mask_img = load_image(outputs.mask_file, "mask")
        check_same_grid(t1_img, t1_path, mask_img, outputs.mask_file)
        return np.asarray(mask_img.dataobj) > 0
