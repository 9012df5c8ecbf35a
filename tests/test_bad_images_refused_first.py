"""Bad input images are refused when the plan is built, before anything is written: exit 2, one line naming
the file and the problem, no OUTPUT_DIR (``--plan-only`` too, for what headers show). One row per kind of damage, each applied
to one file of a valid example dataset (the file the run would read: the derivatives' preprocessed T1w,
brain mask or labels)."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main

pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")

DERIV = "derivatives/smriprep/sub-02/anat"
T1W, MASK, LABELS = (f"{DERIV}/sub-02_desc-preproc_T1w.nii.gz", f"{DERIV}/sub-02_desc-brain_mask.nii.gz",
                     f"{DERIV}/sub-02_dseg.nii.gz")


def _replace_data(path: Path, change) -> None:
    img = nib.load(path)
    data = change(np.asanyarray(img.dataobj).copy())
    header = img.header.copy()
    header.set_data_dtype(data.dtype)  # a float NaN stays NaN
    nib.save(nib.Nifti1Image(data, img.affine, header), path)


def _nan(data):
    data = data.astype(np.float32)
    data.flat[data.size // 2] = np.nan
    return data


def _mask_outside(data):  # a mask where the image is zero: it does not overlap the brain
    return (np.arange(data.size).reshape(data.shape) < 8).astype(data.dtype)


def _two_d(path: Path) -> None:
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[:, :, 0], img.affine), path)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _not_nifti(path: Path) -> None:
    path.write_bytes(gzip.compress(b"this is a text file, not a NIfTI image\n" * 20))


def _not_gzip(path: Path) -> None:
    path.write_bytes(b"plain text named .nii.gz\n" * 40)


def _other_grid(path: Path) -> None:
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[1:], img.affine, img.header), path)


CASES = [
    ("T1w with a NaN voxel", T1W, lambda p: _replace_data(p, _nan), "NaN or infinite"),
    ("T1w all zero", T1W, lambda p: _replace_data(p, np.zeros_like), "all zero"),
    ("T1w 2-D", T1W, _two_d, "expected a 3-D volume"),
    ("T1w truncated gzip", T1W, _truncated, "truncated or corrupt"),
    ("T1w not NIfTI but gzip", T1W, _not_nifti, "not a readable NIfTI/MGZ image"),
    ("T1w not gzip", T1W, _not_gzip, "not a readable NIfTI/MGZ image"),
    ("mask empty", MASK, lambda p: _replace_data(p, np.zeros_like), "mask is empty"),
    ("mask outside the brain", MASK, lambda p: _replace_data(p, _mask_outside), "does not overlap"),
    ("mask on another grid", MASK, _other_grid, "grid shape"),
    ("mask not NIfTI", MASK, _not_gzip, "not a readable NIfTI/MGZ image"),
    ("labels not NIfTI", LABELS, _not_nifti, "not a readable NIfTI/MGZ image"),
    ("labels on another grid", LABELS, _other_grid, "grid shape"),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_example_dataset(tmp_path_factory.mktemp("bids") / "bids", n_subjects=2, seed=1, voxel_mm=4.0)


HEADER_CASES = ("T1w 2-D", "T1w not NIfTI but gzip", "T1w not gzip", "mask on another grid", "mask not NIfTI",
                "labels not NIfTI", "labels on another grid")
RUNS = [(*c, False) for c in CASES] + [(*c, True) for c in CASES if c[0] in HEADER_CASES]
"""Every case as a run; those a header shows also with --plan-only (which reads headers, no voxel data, so
that it stays quick for thousands of subjects)."""


@pytest.mark.parametrize("case, target, damage, problem, plan_only", RUNS,
                         ids=[c[0] + (" (--plan-only)" if c[-1] else "") for c in RUNS])
def test_bad_image_is_refused_before_anything_is_written(dataset, tmp_path, capsys, case, target, damage, problem,
                                                         plan_only):
    import shutil

    bids = tmp_path / "bids"
    shutil.copytree(dataset, bids)
    damage(bids / target)
    out = tmp_path / "out"
    extra = ["--plan-only"] if plan_only else []
    assert main([str(bids), str(out), "participant", "-w", str(tmp_path / "work"), "--worker", "debug",
                 "--no-progress", "--skip-bids-validation", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"smgic-bids: error: {bids / target}: ") and problem in err[0], err[0]
    assert not out.exists()
