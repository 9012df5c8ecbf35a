"""The pydra tasks on their own: preparation, a registration chunk with a bad pair, resume inside a chunk."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from pydra.engine.submitter import Submitter

from smgic_pydra.config import SMGICNetConfig, small_config
from smgic_pydra.preparation import PreparedSubject, prepare_subject
from smgic_pydra.tasks import PrepareSubject, RegisterChunk


def _run(task, cache):
    with Submitter(worker="debug", cache_root=cache) as sub:
        result = sub(task)
    assert not result.errored
    return result.outputs


def _pair(out, fixed, moving):
    base = out / moving / f"{moving}_to-{fixed}"
    names = {"warp": "warp.nii.gz", "inverse_warp": "inv.nii.gz", "warped": "T1w.nii.gz",
             "warped_labels": "dseg.nii.gz", "jacobian": "jac.nii.gz", "sidecar": "xfm.json"}
    return {"fixed": fixed, "moving": moving, "outputs": {"smgicnet": {k: f"{base}_{v}" for k, v in names.items()}}}


def test_prepare_task_prepares_and_returns_errors_as_data(tmp_path, write_cohort, write_small_model):
    subjects = write_cohort(tmp_path / "raw", 1)
    model = write_small_model(tmp_path / "models")
    cfg_json = (model / "config.json").read_text()
    out = _run(PrepareSubject(subject=subjects[0], prepared_root=str(tmp_path / "prep"), config_json=cfg_json),
               tmp_path / "cache")
    assert out.error == ""
    prepared = PreparedSubject.load(out.prepared_dir)
    assert prepared.grid_shape == (32, 32, 32) and prepared.subject_id == "sub-01"
    # an empty image file (as in the public bids-examples) is an error string naming the file, not a crash
    empty = tmp_path / "raw" / "empty_T1w.nii.gz"
    empty.write_bytes(b"")
    bad = {"subject": "sub-09", "t1w": str(empty)}
    task = PrepareSubject(subject=bad, prepared_root=str(tmp_path / "prep"), config_json=cfg_json)
    out = _run(task, tmp_path / "cache")
    assert out.prepared_dir == "" and out.error.startswith("sub-09: InputError") and str(empty) in out.error
    assert "\n" not in out.error


def test_register_chunk_error_row_does_not_abort_and_resume_skips_done_pairs(tmp_path, write_cohort, write_small_model):
    subjects = write_cohort(tmp_path / "raw", 3)
    model = write_small_model(tmp_path / "models")
    cfg = SMGICNetConfig.from_json((model / "config.json").read_text())
    dirs = []
    for s in subjects[:2]:
        prepare_subject(s["t1w"], tmp_path / "prep" / s["subject"], cfg, labels_path=s["labels"],
                        subject_id=s["subject"])
        dirs.append(str(tmp_path / "prep" / s["subject"]))
    # sub-03 is prepared on another grid than the model's: registering it must fail for that pair only
    other = small_config(grid_shape=(16, 16, 16), voxel_size_mm=8.0)
    prepare_subject(subjects[2]["t1w"], tmp_path / "prep" / "sub-03", other, subject_id="sub-03")
    dirs.append(str(tmp_path / "prep" / "sub-03"))
    out = tmp_path / "out"
    pairs = [_pair(out, "sub-01", "sub-02"), _pair(out, "sub-01", "sub-03"), _pair(out, "sub-02", "sub-04")]
    ids = ["sub-01", "sub-02", "sub-03", "sub-04"]
    task = RegisterChunk(pairs=pairs, subjects=ids, prepared_dirs=dirs + [""],
                         preparation_errors=["", "", "", "sub-04: InputError: x.nii.gz: empty file"],
                         model=str(model), progress_dir=str(tmp_path / "progress"))
    rows = _run(task, tmp_path / "cache").rows
    assert [r["error"] == "" for r in rows] == [True, False, False]
    assert "prepared on (16, 16, 16)" in rows[1]["error"] and "needs (32, 32, 32)" in rows[1]["error"]
    assert rows[2]["error"].startswith("RuntimeError: preparation failed: sub-04: InputError")
    ok = pairs[0]["outputs"]["smgicnet"]
    assert all(Path(p).is_file() for p in ok.values())
    assert not any(Path(p).exists() for p in pairs[1]["outputs"]["smgicnet"].values())
    warped = nib.load(ok["warped"])
    assert warped.shape == nib.load(subjects[0]["t1w"]).shape  # on the fixed subject's native grid
    assert np.isfinite(rows[0]["seconds"]) and rows[0]["seconds"] > 0
    assert len(list((tmp_path / "progress").glob("*.json"))) == 3
    # resume: a new chunk with the finished pair is not redone (sidecar untouched), row flagged resumed
    mtime = Path(ok["sidecar"]).stat().st_mtime_ns
    again = _run(RegisterChunk(pairs=pairs[:1], subjects=ids[:2], prepared_dirs=dirs[:2], preparation_errors=["", ""],
                               model=str(model)), tmp_path / "cache2").rows
    assert again[0]["resumed"] and again[0]["error"] == "" and Path(ok["sidecar"]).stat().st_mtime_ns == mtime
    assert json.loads(Path(ok["sidecar"]).read_text())["fixed"] == "sub-01"


def test_identity_baseline_then_evaluate_gives_closed_form_metrics(tmp_path, write_cohort, write_small_model):
    """A subject registered to an exact copy of itself with zero fields: Dice 1 per label, no folding, 0 mm."""
    from smgic_pydra.tasks import BaselineChunk, EvaluateChunk, WriteReports

    subject = write_cohort(tmp_path / "raw", 1)[0]
    model = write_small_model(tmp_path / "models")
    cfg = SMGICNetConfig.from_json((model / "config.json").read_text())
    dirs = []
    for name in ("sub-01", "sub-02"):  # sub-02: the same files under another subject id
        prepare_subject(subject["t1w"], tmp_path / "prep" / name, cfg, mask_path=subject["mask"],
                        labels_path=subject["labels"], subject_id=name)
        dirs.append(str(tmp_path / "prep" / name))
    pair = _pair(tmp_path / "out", "sub-01", "sub-02")
    pair["outputs"]["identity"] = pair["outputs"].pop("smgicnet")
    pair["metrics"] = {"identity": str(tmp_path / "out" / "metrics.json")}
    rows = _run(BaselineChunk(pairs=[pair], method="identity", subjects=["sub-01", "sub-02"], prepared_dirs=dirs,
                              preparation_errors=["", ""]), tmp_path / "cache").rows
    evaluated = _run(EvaluateChunk(rows=rows, subjects=["sub-01", "sub-02"], prepared_dirs=dirs), tmp_path / "cache")
    (row,) = evaluated.rows
    assert row["error"] == "" and row["dice_mean"] == 1.0 and row["folding_percent"] == 0.0
    assert abs(row["inverse_consistency_mm"]) < 1e-9
    assert {(r["label"], r["dice"]) for r in evaluated.label_rows} == {(2, 1.0), (3, 1.0)}
    assert {r["name"] for r in evaluated.label_rows} == {"Left-Cerebral-White-Matter", "Left-Cerebral-Cortex"}
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["dice_per_label"] == {"2": 1.0, "3": 1.0} and saved["method"] == "identity"
    reports = _run(WriteReports(rows=[evaluated.rows], label_rows=[evaluated.label_rows], output_dir=str(tmp_path)),
                   tmp_path / "cache").reports
    assert Path(reports["pairs"]).read_text().count("\n") == 2 and reports["summary_tsv"].endswith("group_summary.tsv")
