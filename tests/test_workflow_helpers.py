"""Helpers (no tests) for the task / workflow / CLI tests: small cohorts of ellipsoid 'brains' placed differently.

Labels 2 (core) and 3 (shell) are FreeSurfer aseg labels, so the default label table scores them.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from smgic_pydra.config import small_config


def write_ellipsoid_subject(folder: Path, name: str, centre_ras, scale=1.0, seed=0, shape=(36, 36, 36)) -> dict:
    """T1-like image, brain mask and labels of one subject on a 2 mm RAS grid; returns their paths."""
    rng = np.random.default_rng(seed)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -np.asarray(shape) + 1.0
    ijk = np.indices(shape).reshape(3, -1).astype(float)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4] - np.asarray(centre_ras, float)[:, None]).reshape(3, *shape)
    r = np.sqrt((xyz**2 / (scale * np.array([26.0, 22.0, 18.0]))[:, None, None, None] ** 2).sum(0))
    labels = np.where(r < 1, 3, 0) - np.where(r < 0.5, 1, 0)
    image = np.where(labels == 3, 0.5, 0.0) + np.where(labels == 2, 0.9, 0.0)
    image = (image + rng.normal(0, 0.01, shape) * (labels > 0)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, data in (("t1w", image), ("mask", (labels > 0).astype(np.uint8)), ("labels", labels.astype(np.int16))):
        paths[role] = str(folder / f"{name}_{role}.nii.gz")
        nib.save(nib.Nifti1Image(data, affine), paths[role])
    return {"subject": name, **paths}


def write_cohort(folder: Path, n: int = 3) -> list[dict]:
    """``n`` subject dicts (for :class:`PrepareSubject`) with shifted and scaled ellipsoids."""
    return [write_ellipsoid_subject(folder, f"sub-{i + 1:02d}", (3.0 * i, -2.0 * i, 2.0 * i), 1.0 + 0.05 * i, seed=i)
            for i in range(n)]


def write_small_model(folder: Path) -> Path:
    """A randomly initialised 32^3 x 4 mm SM-GICNet written by the training checkpoint writer."""
    import torch

    from smgic_pydra.network import SMGICNet
    from smgic_pydra.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = small_config(grid_shape=(32, 32, 32), voxel_size_mm=4.0)
    return save_checkpoint(folder, "model", SMGICNet(cfg).state_dict(), cfg, {"note": "random init for tests"})


TINY_PRESET = {"description": "test preset: 32^3 at 6 mm", "iterations": [3, 3, 3, 3],
               "config": {"grid_shape": [32, 32, 32], "voxel_size_mm": 6.0, "freeze_steps": 1, "learning_rate": 1e-3},
               "augment": {"max_rotation_deg": 5.0, "log_gamma_std": 0.1}}
"""A training preset (JSON content) small enough for CPU tests: 12 steps of a few seconds in all."""

ROLE_FILES = {"warp": "warp.nii.gz", "inverse_warp": "inversewarp.nii.gz", "warped": "T1w.nii.gz",
              "warped_labels": "dseg.nii.gz", "jacobian": "jacobian.nii.gz", "sidecar": "xfm.json"}


def pair_specs(pairs, methods, out: Path) -> list[dict]:
    """Pair specs (see smgic_pydra.tasks.rows) with flat test file names under ``out/<moving>/``."""
    specs = []
    for fixed, moving in pairs:
        base = {m: out / moving / f"{moving}_to-{fixed}_method-{m}" for m in methods}
        outputs = {m: {role: f"{b}_{name}" for role, name in ROLE_FILES.items()} for m, b in base.items()}
        specs.append({"fixed": fixed, "moving": moving, "outputs": outputs,
                      "metrics": {m: f"{b}_metrics.json" for m, b in base.items()}})
    return specs


def unordered_pairs(ids: list[str]) -> list[tuple[str, str]]:
    """All N(N-1)/2 pairs ``(fixed, moving)`` with fixed before moving."""
    return [(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids))]
