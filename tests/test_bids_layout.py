"""Subject discovery on tiny hand-built BIDS datasets: derivatives, sessions, runs, filters and errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.bids import collect_subjects, load_bids_filters, parse_key
from smgic_pydra.io.errors import InputError


def _img(path: Path, affine=np.eye(4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    data = np.ones((3, 3, 3), np.uint8)
    img = nib.MGHImage(data.astype(np.float32), affine) if suffix == ".mgz" else nib.Nifti1Image(data, affine)
    nib.save(img, path)


def make_dataset(root: Path, files, derivatives: dict[str, list[str]] | None = None, description=True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if description:
        (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.10.0"}))
    for rel in files:
        _img(root / rel)
    for name, rels in (derivatives or {}).items():
        deriv = root / "derivatives" / name
        if name != "freesurfer":
            deriv.mkdir(parents=True, exist_ok=True)
            (deriv / "dataset_description.json").write_text(
                json.dumps({"Name": name, "BIDSVersion": "1.10.0", "DatasetType": "derivative"})
            )
        for rel in rels:
            _img(deriv / rel)
    return root


def test_finds_t1w_and_smriprep_derivatives(tmp_path):
    root = make_dataset(
        tmp_path / "ds",
        ["sub-01/anat/sub-01_T1w.nii.gz", "sub-02/anat/sub-02_T1w.nii.gz"],
        {"smriprep": [
            "sub-01/anat/sub-01_desc-brain_mask.nii.gz",
            "sub-01/anat/sub-01_desc-preproc_T1w.nii.gz",
            "sub-01/anat/sub-01_desc-aseg_dseg.nii.gz",
            "sub-01/anat/sub-01_dseg.nii.gz",  # aseg is preferred over the tissue dseg
            "sub-01/anat/sub-01_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz",  # not native: ignored
        ]},
    )
    s1, s2 = collect_subjects(root)
    d = root / "derivatives" / "smriprep" / "sub-01" / "anat"
    assert (s1.subject, s1.session, s1.run, s1.source) == ("01", None, None, "smriprep")
    assert s1.t1w == root / "sub-01/anat/sub-01_T1w.nii.gz"
    assert s1.mask == d / "sub-01_desc-brain_mask.nii.gz"
    assert s1.labels == d / "sub-01_desc-aseg_dseg.nii.gz"
    assert s1.preproc_t1w == d / "sub-01_desc-preproc_T1w.nii.gz"
    assert (s2.mask, s2.labels, s2.source) == (None, None, "raw")
    assert collect_subjects(root, use_derivatives=False)[0].mask is None
    assert s1.as_dict()["t1w"] == str(s1.t1w)


def test_freesurfer_fallback(tmp_path):
    root = make_dataset(
        tmp_path / "ds",
        ["sub-01/anat/sub-01_T1w.nii.gz"],
        {"freesurfer": ["sub-01/mri/norm.mgz", "sub-01/mri/brainmask.mgz", "sub-01/mri/aseg.mgz"]},
    )
    (s,) = collect_subjects(root)
    mri = root / "derivatives" / "freesurfer" / "sub-01" / "mri"
    assert (s.source, s.mask, s.labels) == ("freesurfer", mri / "brainmask.mgz", mri / "aseg.mgz")
    assert s.preproc_t1w == mri / "norm.mgz"
    assert s.freesurfer_dir == mri.parent


def test_sessions_are_chosen_explicitly(tmp_path):
    root = make_dataset(
        tmp_path / "ds",
        ["sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz", "sub-01/ses-2/anat/sub-01_ses-2_T1w.nii.gz",
         "sub-02/anat/sub-02_T1w.nii.gz"],
        {"smriprep": ["sub-01/ses-2/anat/sub-01_ses-2_desc-brain_mask.nii.gz",
                      "sub-01/anat/sub-01_desc-brain_mask.nii.gz",  # subject-level (fMRIPrep longitudinal)
                      "sub-02/anat/sub-02_acq-other_desc-brain_mask.nii.gz"]},  # conflicting entity: unused
    )
    with pytest.raises(InputError, match=r"sub-01: several sessions with a T1w: 1, 2; choose"):
        collect_subjects(root)
    chosen = collect_subjects(root, session_label="ses-2")
    assert [s.key for s in chosen] == ["sub-01_ses-2", "sub-02"]  # sub-02 has no sessions: kept
    assert chosen[0].mask.name == "sub-01_ses-2_desc-brain_mask.nii.gz"
    both = collect_subjects(root, session_label=["1", "2"])
    assert [s.key for s in both] == ["sub-01_ses-1", "sub-01_ses-2", "sub-02"]
    assert [s.mask.name if s.mask else None for s in both] == [
        "sub-01_desc-brain_mask.nii.gz", "sub-01_ses-2_desc-brain_mask.nii.gz", None
    ]
    with pytest.raises(InputError, match=r"no session 3 with a T1w; available: 1, 2"):
        collect_subjects(root, session_label="3")
    filtered = collect_subjects(root, bids_filters={"ses": "1"}, participant_label="01")
    assert [s.key for s in filtered] == ["sub-01_ses-1"]


def test_runs_and_other_duplicates_are_never_picked_silently(tmp_path):
    root = make_dataset(
        tmp_path / "ds",
        ["sub-01/anat/sub-01_run-1_T1w.nii.gz", "sub-01/anat/sub-01_run-2_T1w.nii.gz",
         "sub-02/anat/sub-02_acq-a_T1w.nii.gz", "sub-02/anat/sub-02_acq-b_T1w.nii.gz"],
    )
    with pytest.raises(InputError, match=r"sub-01: several runs with a T1w: 1, 2"):
        collect_subjects(root, participant_label="01")
    (s,) = collect_subjects(root, participant_label="01", run="02")
    assert (s.run, s.t1w.name, s.key) == (2, "sub-01_run-2_T1w.nii.gz", "sub-01_run-2")
    with pytest.raises(InputError, match=r"candidates for the T1w: sub-02_acq-a_T1w.nii.gz, sub-02_acq-b_T1w"):
        collect_subjects(root, participant_label="sub-02")
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"t1w": {"acquisition": "b"}, "bold": {"task": "rest"}}))
    (s,) = collect_subjects(root, participant_label="02", bids_filters=filters)
    assert s.t1w.name == "sub-02_acq-b_T1w.nii.gz"


def test_filter_file_null_and_errors(tmp_path):
    root = make_dataset(tmp_path / "ds", ["sub-01/anat/sub-01_T1w.nii.gz", "sub-01/anat/sub-01_acq-x_T1w.nii.gz"])
    filters = tmp_path / "f.json"
    filters.write_text(json.dumps({"t1w": {"acquisition": None}}))
    assert load_bids_filters(filters) == {"acq": None}
    assert collect_subjects(root, bids_filters=filters)[0].t1w.name == "sub-01_T1w.nii.gz"
    filters.write_text(json.dumps({"t1w": {"colour": "red"}}))
    with pytest.raises(InputError, match=r"f.json: unknown entity 'colour'"):
        load_bids_filters(filters)
    filters.write_text("{not json")
    with pytest.raises(InputError, match="not a readable JSON file"):
        load_bids_filters(filters)


def test_participant_labels_with_or_without_prefix(tmp_path):
    root = make_dataset(tmp_path / "ds", [f"sub-{s}/anat/sub-{s}_T1w.nii.gz" for s in ("01", "02", "ab")])
    assert [s.subject for s in collect_subjects(root, participant_label=["sub-01", "ab"])] == ["01", "ab"]
    with pytest.raises(InputError, match=r"ds: unknown participant label\(s\) 03, 9; known: 01, 02, ab$"):
        collect_subjects(root, participant_label=["sub-03", "9", "01"])


def test_one_line_errors_for_bad_datasets(tmp_path):
    no_desc = make_dataset(tmp_path / "a", ["sub-01/anat/sub-01_T1w.nii.gz"], description=False)
    with pytest.raises(InputError, match=r"a/dataset_description.json: missing: not a BIDS dataset root"):
        collect_subjects(no_desc)
    no_t1 = make_dataset(tmp_path / "b", ["sub-01/anat/sub-01_T1w.nii.gz", "sub-02/anat/sub-02_T2w.nii.gz"])
    with pytest.raises(InputError, match=r"b/sub-02: no usable T1w image"):
        collect_subjects(no_t1)
    empty = make_dataset(tmp_path / "c", ["sub-01/anat/sub-01_T1w.nii.gz"])
    (empty / "sub-02" / "anat").mkdir(parents=True)
    (empty / "sub-02" / "anat" / "sub-02_T1w.nii.gz").write_bytes(b"")  # as in the public bids-examples
    with pytest.raises(InputError) as info:
        collect_subjects(empty)
    assert str(info.value) == f"{empty / 'sub-02/anat/sub-02_T1w.nii.gz'}: empty file (0 bytes) for the T1w"
    empty_mask = make_dataset(tmp_path / "d", ["sub-01/anat/sub-01_T1w.nii.gz"], {"smriprep": []})
    mask = empty_mask / "derivatives/smriprep/sub-01/anat/sub-01_desc-brain_mask.nii.gz"
    mask.parent.mkdir(parents=True)
    mask.write_bytes(b"")
    with pytest.raises(InputError, match=r"sub-01_desc-brain_mask.nii.gz: empty file \(0 bytes\) for the brain mask"):
        collect_subjects(empty_mask)
    with pytest.raises(InputError, match=r"e: no sub-\* folders"):
        collect_subjects(make_dataset(tmp_path / "e", []))


def test_parse_key_round_trip():
    assert parse_key("sub-01_ses-1_run-2") == ("01", "1", 2)
    assert parse_key("01") == ("01", None, None)
    with pytest.raises(ValueError):
        parse_key("sub-01_bad")
