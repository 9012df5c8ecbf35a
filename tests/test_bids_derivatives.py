"""Derivatives naming: exact names, PairOutputPaths, sidecars, dataset_description, and the BIDS validator."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.io.itk_affine import write_itk_affine_mat
from smgic_pydra.bids import (
    SubjectInputs,
    check_output_dirs,
    pair_output_paths,
    report_paths,
    validate_dataset,
    warped_sidecars,
    write_dataset_description,
)
from smgic_pydra.io.atomic import save_json
from smgic_pydra.io.errors import InputError
from smgic_pydra.worldspace import PairOutputPaths


def _subject(raw: Path, sub: str, ses: str | None = None) -> SubjectInputs:
    anat = raw / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat"
    stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
    return SubjectInputs(subject=sub, session=ses, run=None, t1w=anat / f"{stem}_T1w.nii.gz")


def test_exact_names(tmp_path):
    p = pair_output_paths(tmp_path, "sub-02", "01", "smgicnet")
    assert isinstance(p, PairOutputPaths)
    names = {role: path.relative_to(tmp_path).as_posix() for role, path in p.as_dict().items()}
    a = "sub-02/anat/sub-02_"
    assert names == {
        "warp": a + "from-sub02_to-sub01_desc-smgicnet_mode-image_xfm.nii.gz",
        "inverse_warp": a + "from-sub01_to-sub02_desc-smgicnet_mode-image_xfm.nii.gz",
        "warped": a + "space-sub01_desc-smgicnet_T1w.nii.gz",
        "warped_labels": a + "space-sub01_desc-smgicnet_dseg.nii.gz",
        "jacobian": a + "space-sub01_desc-smgicnet_jacobian.nii.gz",
        "sidecar": a + "from-sub02_to-sub01_desc-smgicnet_mode-image_xfm.json",
        "warp_h5": a + "from-sub02_to-sub01_desc-smgicnet_mode-image_xfm.h5",
        "affine": a + "from-sub02_to-sub01_desc-smgicnetaffine_xfm.mat",
        # --outputs compact: one file per unordered pair, under the first subject in sorted order
        "compact": "sub-01/anat/sub-01_from-sub01_to-sub02_desc-smgicnet_mode-velocity_xfm.h5",
    }
    s = pair_output_paths(tmp_path, "sub-03_ses-1", "sub-03_ses-2", "syn", warp_h5=False, labels=False)
    assert s.warp.relative_to(tmp_path).as_posix() == (
        "sub-03/ses-1/anat/sub-03_ses-1_from-sub03ses1_to-sub03ses2_desc-syn_mode-image_xfm.nii.gz"
    )
    assert s.warp_h5 is None and s.warped_labels is None
    # methods side by side never collide
    assert not set(p.as_dict().values()) & set(pair_output_paths(tmp_path, "sub-02", "01", "syn").as_dict().values())
    with pytest.raises(ValueError):
        pair_output_paths(tmp_path, "sub-02", "01", "smgic-net")
    with pytest.raises(ValueError):
        pair_output_paths(tmp_path, "sub-02", "sub-02", "syn")
    assert report_paths(tmp_path).pairs == tmp_path / "reports" / "pairs.csv"


def test_description_is_idempotent_and_refuses_mixing(tmp_path):
    out, raw = tmp_path / "out", tmp_path / "raw"
    path = write_dataset_description(out, "0.1.0", "ab" * 32, 7, raw)
    desc = json.loads(path.read_text())
    assert desc["DatasetType"] == "derivative"
    gen = desc["GeneratedBy"][0]
    got = (gen["Name"], gen["Version"], gen["ModelWeightsSHA256"], gen["RandomSeed"])
    assert got == ("smgic-pydra", "0.1.0", "ab" * 32, 7)
    write_dataset_description(out, "0.1.0", "ab" * 32, 7, raw)  # a second participant job
    with pytest.raises(InputError, match="another smgic-pydra version, model or seed"):
        write_dataset_description(out, "0.1.0", "ab" * 32, 8, raw)


def _write_outputs(out: Path, raw: Path, subjects, methods) -> None:
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm")
    for m in subjects:
        for f in subjects:
            if m is f:
                continue
            for method in methods:
                p = pair_output_paths(out, m, f, method)
                for role, path in p.as_dict().items():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if role == "sidecar":
                        save_json({"moving": m.key, "fixed": f.key}, path)
                    elif role in ("warp_h5", "compact"):
                        path.write_bytes(b"\x89HDF")
                    elif role == "affine":
                        write_itk_affine_mat(path, np.eye(4))
                    else:
                        nib.save(img, path)
                for path, content in warped_sidecars(p, m, f, raw, method, skull_stripped=False).items():
                    save_json(content, path)
    for report in vars(report_paths(out)).values():
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("a,b\n1,2\n")


def test_derivative_names_pass_the_bids_validator(tmp_path):
    out, raw = tmp_path / "out", tmp_path / "raw"
    subjects = [_subject(raw, "01"), _subject(raw, "02"), _subject(raw, "03", "1"), _subject(raw, "03", "2")]
    write_dataset_description(out, "0.1.0", "ab" * 32, 0, raw)
    _write_outputs(out, raw, subjects, ["smgicnet", "syn"])
    warped = pair_output_paths(out, subjects[1], subjects[0], "syn").warped
    sidecar = json.loads(warped.with_name(warped.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["SpatialReference"] == "bids:raw:sub-01/anat/sub-01_T1w.nii.gz"
    assert validate_dataset(out) == []


def test_validator_reports_errors(tmp_path):
    """The same outputs without .bidsignore, or with a sidecar missing, are rejected: the check can fail."""
    out, raw = tmp_path / "out", tmp_path / "raw"
    subjects = [_subject(raw, "01"), _subject(raw, "02")]
    write_dataset_description(out, "0.1.0", None, None, raw)
    _write_outputs(out, raw, subjects, ["smgicnet"])
    (out / ".bidsignore").unlink()
    warped = pair_output_paths(out, subjects[0], subjects[1], "smgicnet").warped
    warped.with_suffix("").with_suffix(".json").unlink()
    codes = {(e.code, Path(e.location).name) for e in validate_dataset(out)}
    assert ("NOT_INCLUDED", "sub-01_from-sub01_to-sub02_desc-smgicnet_mode-image_xfm.nii.gz") in codes
    assert ("SIDECAR_KEY_REQUIRED", warped.name) in codes


def test_output_and_work_folders_are_checked(tmp_path):
    raw = tmp_path / "raw"
    (raw / "derivatives").mkdir(parents=True)
    check_output_dirs(raw, raw / "derivatives" / "smgic", tmp_path / "work")  # the BIDS-App convention
    check_output_dirs(raw, tmp_path / "out")
    for out, message in ((raw, "inside the raw BIDS dataset"), (raw / "sub-01" / "x", "inside the raw BIDS dataset"),
                         (raw / "derivatives", "derivatives folder itself")):
        with pytest.raises(InputError, match=message):
            check_output_dirs(raw, out)
    with pytest.raises(InputError, match="work folder inside the BIDS dataset"):
        check_output_dirs(raw, tmp_path / "out", raw / "derivatives" / "work")
