"""Shared fixtures: small cohorts of ellipsoid 'brains', a small model, pair specs, a tiny training preset,
the ANTs command-line tools, a torch thread count, and the real SLURM cluster (:mod:`slurm_cluster`).

The helpers are session-scoped fixtures returning functions (factories), so module-scoped fixtures can
use them too. Labels 2 (core) and 3 (shell) of the ellipsoids are FreeSurfer aseg labels, so the
default label table scores them.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from slurm_cluster import slurm_cluster  # noqa: F401  (session fixture: a real single-node cluster)

from smgic_pydra.config import small_config

ANTS_TOOLS = ("antsApplyTransforms",)


@pytest.fixture
def torch_threads(request):
    """Run the test with ``request.param`` torch threads (restored after; use with ``indirect=True``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.fixture
def ants_tools_on_path(tmp_path, monkeypatch):
    """The ANTs command-line tools the tests use: the real binaries when installed; else antspyx's compiled
    ones (the same ANTs 2.5 code, ``ants.internal.get_lib_fn(name)(argv)``) as executables of those names on
    PATH, so command-line wrappers (nipype.interfaces.ants) run real ANTs. Returns name -> path.
    (antspyx ships no executables; its compiled tools do not answer ``--version``.)"""
    missing = [name for name in ANTS_TOOLS if shutil.which(name) is None]
    if missing:
        pytest.importorskip("ants")
        folder = tmp_path / "ants-bin"
        folder.mkdir()
        for name in missing:
            exe = folder / name
            exe.write_text(f"#!{sys.executable}\nimport sys\nfrom ants.internal import get_lib_fn\n\n"
                           f"sys.exit(get_lib_fn({name!r})(sys.argv[1:]))\n")
            exe.chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return {name: shutil.which(name) for name in ANTS_TOOLS}


def _write_ellipsoid_subject(folder: Path, name: str, centre_ras, scale=1.0, seed=0, shape=(36, 36, 36)) -> dict:
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


def _write_cohort(folder: Path, n: int = 3) -> list[dict]:
    """``n`` subject dicts (for :class:`PrepareSubject`) with shifted and scaled ellipsoids."""
    return [_write_ellipsoid_subject(folder, f"sub-{i + 1:02d}", (3.0 * i, -2.0 * i, 2.0 * i), 1.0 + 0.05 * i, seed=i)
            for i in range(n)]


def _write_small_model(folder: Path) -> Path:
    """A randomly initialised 32^3 x 4 mm SM-GICNet written by the training checkpoint writer."""
    import torch

    from smgic_pydra.network import SMGICNet
    from smgic_pydra.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = small_config(grid_shape=(32, 32, 32), voxel_size_mm=4.0)
    return save_checkpoint(folder, "model", SMGICNet(cfg).state_dict(), cfg, {"note": "random init for tests"})


_TINY_PRESET = {"description": "test preset: 32^3 at 6 mm", "iterations": [3, 3, 3, 3],
               "config": {"grid_shape": [32, 32, 32], "voxel_size_mm": 6.0, "freeze_steps": 1, "learning_rate": 1e-3},
               "augment": {"max_rotation_deg": 5.0, "log_gamma_std": 0.1}}
"""A training preset (JSON content) small enough for CPU tests: 12 steps of a few seconds in all."""

def _unordered_pairs(ids: list[str]) -> list[tuple[str, str]]:
    """All N(N-1)/2 pairs ``(fixed, moving)`` with fixed before moving."""
    return [(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids))]


@pytest.fixture(scope="session")
def write_ellipsoid_subject():
    """``write_ellipsoid_subject(folder, name, centre_ras, scale=1.0, seed=0, shape=(36, 36, 36)) -> paths``:
    T1-like image, brain mask and labels of one subject on a 2 mm RAS grid."""
    return _write_ellipsoid_subject


@pytest.fixture(scope="session")
def write_cohort():
    """``write_cohort(folder, n=3) -> subject dicts`` (for PrepareSubject): shifted and scaled ellipsoids."""
    return _write_cohort


@pytest.fixture(scope="session")
def write_small_model():
    """``write_small_model(folder) -> model folder``: a randomly initialised 32^3 x 4 mm SM-GICNet."""
    return _write_small_model


@pytest.fixture(scope="session")
def unordered_pairs():
    """``unordered_pairs(ids) -> [(fixed, moving)]``: the N(N-1)/2 pairs with fixed before moving."""
    return _unordered_pairs


@pytest.fixture(scope="session")
def tiny_preset() -> dict:
    """A training preset (JSON content) small enough for CPU tests: 12 steps of a few seconds in all (a copy:
    tests combine it with ``|``, never change it)."""
    return copy.deepcopy(_TINY_PRESET)
