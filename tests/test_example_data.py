"""The example BIDS dataset built from Colin27 / AAL: deterministic, valid BIDS, truly different native spaces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.processing import resample_from_to
from scipy import ndimage

from smgic_pydra.bids import collect_subjects, validate_dataset
from smgic_pydra.bids.examples import TEMPLATE_DIR, ground_truth_displacement, make_example_dataset
from smgic_pydra.io.errors import InputError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2.nii.gz").is_file(), reason="Debian mricron-data not installed")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_example_dataset(tmp_path_factory.mktemp("ex") / "colin27", n_subjects=3, seed=0, two_session_subjects=1)


def _data(path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def _truth(subject) -> dict:
    sidecar = subject.t1w.with_name(subject.t1w.name.replace(".nii.gz", ".json"))
    return json.loads(sidecar.read_text())["SyntheticGroundTruth"]


def _dice(a, b) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_script_and_function_are_deterministic(tmp_path):
    """The script and the function give the same voxels for a seed; another seed differs."""
    subprocess.run(
        [sys.executable, str(REPO / "bids_examples" / "make_example_dataset.py"), str(tmp_path / "a"),
         "--subjects", "1", "--voxel-mm", "4", "--seed", "3"],
        check=True, capture_output=True,
    )
    make_example_dataset(tmp_path / "b", n_subjects=1, seed=3, voxel_mm=4)
    make_example_dataset(tmp_path / "c", n_subjects=1, seed=4, voxel_mm=4)
    rel = "sub-01/anat/sub-01_T1w.nii.gz"
    a, b, c = (nib.load(tmp_path / d / rel) for d in "abc")
    np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    np.testing.assert_array_equal(a.affine, b.affine)
    assert not np.allclose(a.affine, c.affine)
    assert not list(tmp_path.glob(".tmp-*"))  # built in a temporary folder, then moved


def test_passes_bids_validator_with_derivatives(dataset):
    assert validate_dataset(dataset, recursive=True) == []


def test_layout_finds_every_subject_and_derivative(dataset):
    subjects = collect_subjects(dataset, session_label=["1", "2"])
    assert [s.key for s in subjects] == ["sub-01", "sub-02", "sub-03_ses-1", "sub-03_ses-2"]
    for s in subjects:
        assert s.source == "smriprep"
        assert s.t1w.is_file() and s.mask.is_file() and s.labels.is_file() and s.preproc_t1w.is_file()
        # derivatives share the raw T1w's grid
        for other in (s.mask, s.labels, s.preproc_t1w):
            np.testing.assert_allclose(nib.load(other).affine, nib.load(s.t1w).affine)
    assert sum(f.stat().st_size for f in dataset.rglob("*") if f.is_file()) < 15e6


def test_subjects_are_in_different_native_spaces(dataset):
    subjects = collect_subjects(dataset, session_label=["1", "2"])
    imgs = [nib.load(s.mask) for s in subjects]
    codes = {nib.aff2axcodes(img.affine) for img in imgs}
    assert {("R", "A", "S"), ("L", "I", "A")} <= codes
    assert len({tuple(np.round(img.header.get_zooms()[:3], 2)) for img in imgs}) >= 2  # anisotropic too
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            assert not np.allclose(imgs[i].affine, imgs[j].affine)
            # identity (world-space) overlap of the brains, resampled by nibabel/scipy
            moved = resample_from_to(imgs[j], imgs[i], order=0).get_fdata() > 0
            dice = _dice(moved, _data(subjects[i].mask) > 0)
            assert dice < 0.87, (subjects[i].key, subjects[j].key, dice)


def test_ground_truth_affine_brings_subjects_back_to_the_template(dataset):
    """Undoing the recorded affine A puts the AAL labels back onto Colin27's AAL (up to the smooth warp)."""
    aal = nib.load(TEMPLATE_DIR / "aal.nii.gz")
    aal_data = np.asarray(aal.dataobj)
    for s in collect_subjects(dataset, session_label=["1", "2"]):
        a = np.array(_truth(s)["AffineTemplateToSubjectRASmm"])
        dseg = nib.load(s.labels)
        in_template = nib.Nifti1Image(_data(s.labels), np.linalg.inv(a) @ dseg.affine)
        back = resample_from_to(in_template, aal, order=0).get_fdata()
        naive = resample_from_to(dseg, aal, order=0).get_fdata()
        undone = _dice(back > 0, aal_data > 0)
        assert undone > 0.88, (s.key, undone)
        assert undone > _dice(naive > 0, aal_data > 0) + 0.1
        # same labels where both are labelled: the warp is smooth and a few mm
        both = (back > 0) & (aal_data > 0)
        assert np.mean(back[both] == aal_data[both]) > 0.75


def test_labels_are_aal_values_with_table(dataset):
    names = (TEMPLATE_DIR / "aal.nii.txt").read_text().split()
    aal_values = set(np.unique(np.asarray(nib.load(TEMPLATE_DIR / "aal.nii.gz").dataobj)).tolist())
    table = (dataset / "derivatives" / "smriprep" / "dseg.tsv").read_text().splitlines()
    assert table[0] == "index\tname" and len(table) == 117 and table[1] == f"1\t{names[1]}"
    for s in collect_subjects(dataset, session_label=["1", "2"]):
        dseg = _data(s.labels)
        assert np.issubdtype(dseg.dtype, np.integer)
        values = set(np.unique(dseg).tolist())
        assert values <= aal_values and len(values) > 100


def test_full_ground_truth_maps_label_centroids_back(dataset):
    """Pulling each labelled voxel y back through A and the regenerated warp u (scipy, on the 1 mm
    AAL) lands every AAL label's centroid near its Colin27 centroid, clearly better than A alone."""
    aal = nib.load(TEMPLATE_DIR / "aal.nii.gz")
    labels = np.arange(1, 117)
    ref = np.array(ndimage.center_of_mass(np.ones(aal.shape), np.asarray(aal.dataobj), labels))
    ref = ref @ aal.affine[:3, :3].T + aal.affine[:3, 3]
    for s in collect_subjects(dataset, session_label=["1", "2"]):
        truth = _truth(s)
        u = ground_truth_displacement(truth)
        assert 5.0 < 2.0 * np.abs(u).max() < 7.0  # several mm of nonlinear warp (2 mm template voxels)
        t, a = np.array(truth["TemplateAffine"]), np.array(truth["AffineTemplateToSubjectRASmm"])
        img = nib.load(s.labels)
        dseg = np.asarray(img.dataobj)
        idx = np.argwhere(dseg > 0)
        lab = dseg[dseg > 0]
        p = (np.linalg.inv(a @ t) @ img.affine)[:3] @ np.c_[idx, np.ones(len(idx))].T  # template voxels
        up = np.stack([ndimage.map_coordinates(u[..., c], p, order=1, mode="nearest") for c in range(3)])
        errors = {}
        for name, q in (("full", p + up), ("affine", p)):
            world = (t[:3, :3] @ q).T + t[:3, 3]
            cents = np.array([world[lab == k].mean(axis=0) for k in labels])
            errors[name] = np.linalg.norm(cents - ref, axis=1).mean()
        assert errors["full"] < 1.2 and errors["full"] < 0.75 * errors["affine"], (s.key, errors)


def test_refuses_to_replace_another_folder(tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match="not an smgic-pydra example dataset; refusing to replace it"):
        make_example_dataset(other, n_subjects=1, voxel_mm=4)
    assert (other / "thesis.tex").is_file()
