"""TemplateFlow templates, offline: a real template (nilearn's MNI152 2009a symmetric, laid out as
TemplateFlow lays it out, :mod:`smgic_pydra.bids.template_example`) found by the templateflow client;
missing files are one line naming the template, the file and the fetch command; `--pairs template:NAME`
writes the NiPreps-named files, ANTsPy applying our from-T1w_to-NAME warp reproduces our
space-NAME image, and the group level writes the mean T1w, log-Jacobian maps and label volumes."""

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.bids.template_example import NAME, TISSUES, make_nilearn_templateflow_home
from smgic_pydra.bids.templates import find_template
from smgic_pydra.io.errors import InputError


@pytest.fixture(scope="module")
def tf_home(tmp_path_factory):
    return make_nilearn_templateflow_home(tmp_path_factory.mktemp("templateflow"))


def test_template_found_offline_with_mask_and_tissue_labels(tf_home):
    files = find_template(f"template:{NAME}:res-2", home=tf_home)
    assert files.t1w.name == f"tpl-{NAME}_res-2_T1w.nii.gz" and files.key == f"tpl-{NAME}"
    assert files.mask.name == f"tpl-{NAME}_res-2_desc-brain_mask.nii.gz"
    assert files.dseg.name == f"tpl-{NAME}_res-2_dseg.nii.gz" and files.labels_tsv.name == f"tpl-{NAME}_dseg.tsv"
    t1w, mask, dseg = (nib.load(p) for p in (files.t1w, files.mask, files.dseg))
    assert t1w.header.get_zooms() == (2.0, 2.0, 2.0) and np.allclose(mask.affine, t1w.affine)
    # an adult brain (the MNI152 head is ~10 % larger than average): 1.4-2.0 litres; tissues inside it only
    litres = np.asarray(mask.dataobj).astype(bool).sum() * 8 / 1e6
    assert 1.4 < litres < 2.0
    labels = np.asarray(dseg.dataobj)
    assert set(np.unique(labels)) == {0, *TISSUES} and not (labels[np.asarray(mask.dataobj) == 0]).any()
    # the mean T1w intensity: WM brighter than GM brighter than CSF, as in a T1w
    means = {n: np.asarray(t1w.dataobj)[labels == i].mean() for i, n in TISSUES.items()}
    assert means["WM"] > means["GM"] > means["CSF"]


@pytest.mark.parametrize("case", ["deleted", "placeholder", "unknown template", "no home"])
def test_missing_template_file_is_one_line_naming_it_and_the_fetch(tf_home, tmp_path, case):
    home = Path(shutil.copytree(tf_home, tmp_path / "tf"))
    mask = home / f"tpl-{NAME}" / f"tpl-{NAME}_res-1_desc-brain_mask.nii.gz"
    spec = NAME
    if case == "deleted":
        mask.unlink()
    elif case == "placeholder":  # TemplateFlow's skeleton: an empty file until fetched
        mask.write_bytes(b"")
    elif case == "unknown template":
        spec = "MNI152NLin2009cAsym:res-1"
    else:
        home = tmp_path / "nowhere"
    with pytest.raises(InputError) as err:
        find_template(spec, home=home)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"template {spec.split(':')[0]}: ")
    assert "import templateflow.api as t; t.get(" in message and str(home) in message
    if case in ("deleted", "placeholder"):
        assert f"tpl-{NAME}_res-1_desc-brain_mask.nii.gz" in message and "desc='brain'" in message


@pytest.mark.slow
@pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")
def test_template_run_nipreps_files_antspy_applies_our_warp_and_group(tf_home, tmp_path, monkeypatch, capsys):
    import ants
    import pandas as pd

    from smgic_pydra.cli.bids_app import main

    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tf_home))
    bids = make_example_dataset(tmp_path / "bids", n_subjects=2, seed=0, voxel_mm=3.0)
    out, work = tmp_path / "out", tmp_path / "work"
    common = ["-w", str(work), "--refine", "2", "--no-progress", "--skip-bids-validation"]
    # a missing template file: one line, exit 2, before any work (nothing written)
    assert main([str(bids), str(out), "participant", "--pairs", "template:MNI152NLin2009cAsym", *common]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "template MNI152NLin2009cAsym" in err and "t.get(" in err
    assert not out.exists()

    spec = f"template:{NAME}:res-2"
    assert main([str(bids), str(out), "participant", "--pairs", spec, *common]) == 0
    anat = out / "sub-01" / "anat"
    assert sorted(p.name for p in anat.iterdir()) == sorted([
        "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.nii.gz",
        "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.json",
        "sub-01_from-MNI152NLin2009aSym_to-T1w_mode-image_xfm.nii.gz",
        "sub-01_space-MNI152NLin2009aSym_desc-preproc_T1w.nii.gz",
        "sub-01_space-MNI152NLin2009aSym_desc-logjacobian_map.nii.gz",
        "sub-01_space-T1w_atlas-MNI152NLin2009aSym_dseg.nii.gz"])
    # a second run finds every subject done (same content key): nothing is rewritten
    stamp = (anat / "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.nii.gz").stat().st_mtime_ns
    assert main([str(bids), str(out), "participant", "--pairs", spec, *common]) == 0
    assert (anat / "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.nii.gz").stat().st_mtime_ns == stamp

    # ANTsPy (ITK) applies our forward warp to the skull-stripped subject, onto the template grid
    template = find_template(spec, home=tf_home)
    src = bids / "derivatives" / "smriprep" / "sub-01" / "anat"
    t1w, mask = src / "sub-01_desc-preproc_T1w.nii.gz", src / "sub-01_desc-brain_mask.nii.gz"
    subject = nib.load(t1w)
    brain = tmp_path / "brain.nii.gz"
    nib.save(nib.Nifti1Image(subject.get_fdata() * (nib.load(mask).get_fdata() > 0), subject.affine), brain)
    theirs = ants.apply_transforms(
        fixed=ants.image_read(str(template.t1w)), moving=ants.image_read(str(brain)),
        transformlist=[str(anat / "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.nii.gz")],
        interpolator="linear").numpy()
    ours = nib.load(anat / "sub-01_space-MNI152NLin2009aSym_desc-preproc_T1w.nii.gz").get_fdata()
    assert ours.shape == theirs.shape == nib.load(template.t1w).shape
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.9999
    assert np.quantile(np.abs(ours - theirs), 0.999) < 1e-3 * np.abs(theirs).max()
    # the registration worked: the warped brain covers the template's brain mask
    tpl_mask = nib.load(template.mask).get_fdata() > 0
    assert 2 * (tpl_mask & (ours > 0)).sum() / (tpl_mask.sum() + (ours > 0).sum()) > 0.85
    # the template's tissue labels on the subject's grid: no new values, over the subject's brain
    labels = np.asarray(nib.load(anat / "sub-01_space-T1w_atlas-MNI152NLin2009aSym_dseg.nii.gz").dataobj)
    assert labels.shape == subject.shape and set(np.unique(labels)) <= {0, *TISSUES}
    subject_mask = nib.load(mask).get_fdata() > 0
    assert 2 * ((labels > 0) & subject_mask).sum() / ((labels > 0).sum() + subject_mask.sum()) > 0.85

    # group: mean warped T1w, the log-Jacobian maps and the label volumes, against nibabel/numpy
    assert main([str(bids), str(out), "group", "-w", str(work)]) == 0
    reports = out / "reports"
    warped = [nib.load(out / s / "anat" / f"{s}_space-{NAME}_desc-preproc_T1w.nii.gz").get_fdata() for s in ("sub-01", "sub-02")]
    mean = nib.load(reports / f"tpl-{NAME}_desc-mean_T1w.nii.gz")
    assert np.allclose(mean.get_fdata(), (warped[0] + warped[1]) / 2, atol=1e-4)
    assert np.allclose(mean.affine, nib.load(template.t1w).affine)
    maps = nib.load(reports / f"tpl-{NAME}_desc-logjacobian_maps.nii.gz")
    assert maps.shape == (*nib.load(template.t1w).shape, 2)
    assert list(pd.read_csv(reports / f"tpl-{NAME}_subjects.tsv", sep="\t")["subject"]) == ["sub-01", "sub-02"]
    volumes = pd.read_csv(reports / f"tpl-{NAME}_label_volumes.tsv", sep="\t").set_index(["subject", "index"])
    voxel_mm3 = abs(np.linalg.det(subject.affine[:3, :3]))
    for index in TISSUES:
        assert volumes.loc[("sub-01", index), "volume_mm3"] == pytest.approx((labels == index).sum() * voxel_mm3)
    # each run that wrote recorded its settings (the refused first run none)
    levels = [json.loads(p.read_text())["settings"] for p in sorted((out / "logs").glob("config-*.json"))]
    assert [(s["analysis_level"], s["pairs"]) for s in levels] == [("participant", spec)] * 2 + [("group", "all")]
