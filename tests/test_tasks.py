"""The pydra tasks on their own: preparation, a tile with bad pairs, resume inside a tile, closed-form metrics."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from pydra.engine.submitter import Submitter

from smgic_pydra.config import SMGICNetConfig, small_config
from smgic_pydra.preparation import PreparedSubject, prepare_subject
from smgic_pydra.bids.derivatives import pair_output_paths
from smgic_pydra.reports.tiles import iter_label_tables, read_pairs_tables
from smgic_pydra.tasks import PrepareCohortSubject, RegisterTile


def _run(task, cache):
    with Submitter(worker="debug", cache_root=cache) as sub:
        result = sub(task)
    assert not result.errored
    return result.outputs


def _tile(pairs, tile_id="t1") -> dict:
    """A tile (smgic_pydra.tasks.tile) of ``(fixed, moving)`` pairs."""
    fixed, moving = sorted({f for f, _ in pairs}), sorted({m for _, m in pairs})
    return {"id": tile_id, "fixed": fixed, "moving": moving,
            "pairs": np.array([[fixed.index(f), moving.index(m)] for f, m in pairs], dtype=np.int32)}


def _tile_task(tile, ids, dirs, errors, out, journal, method="smgicnet", **kw):
    inputs = {k: {"t1w": k} for k in ids}  # stand-in input hashes: the content keys only need to be stable
    return RegisterTile(tile=tile, subjects=ids, prepared_dirs=dirs, preparation_errors=errors, inputs=inputs,
                        settings={"method": method}, output_dir=str(out), journal_dir=str(journal), method=method, **kw)


def test_prepare_task_prepares_and_returns_errors_as_data(tmp_path, write_cohort, write_small_model):
    subjects = write_cohort(tmp_path / "raw", 1)
    model = write_small_model(tmp_path / "models")
    cfg_json = (model / "config.json").read_text()
    out = _run(PrepareCohortSubject(subject=subjects[0], prepared_root=str(tmp_path / "prep"), config_json=cfg_json),
               tmp_path / "cache")
    assert out.error == ""
    prepared = PreparedSubject.load(out.prepared_dir)
    assert prepared.grid_shape == (32, 32, 32) and prepared.subject_id == "sub-01"
    # an empty image file (as in the public bids-examples) is an error string naming the file, not a crash
    empty = tmp_path / "raw" / "empty_T1w.nii.gz"
    empty.write_bytes(b"")
    bad = {"subject": "sub-09", "t1w": str(empty)}
    task = PrepareCohortSubject(subject=bad, prepared_root=str(tmp_path / "prep"), config_json=cfg_json)
    out = _run(task, tmp_path / "cache")
    assert out.prepared_dir == "" and out.error.startswith("sub-09: InputError") and str(empty) in out.error
    assert "\n" not in out.error


def test_register_tile_error_rows_do_not_abort_and_resume_skips_done_pairs(tmp_path, write_cohort, write_small_model):
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
    pairs = [("sub-01", "sub-02"), ("sub-01", "sub-03"), ("sub-02", "sub-04")]
    ids = ["sub-01", "sub-02", "sub-03", "sub-04"]
    errors = ["", "", "", "sub-04: InputError: x.nii.gz: empty file"]
    summary = _run(_tile_task(_tile(pairs), ids, dirs + [""], errors, out, tmp_path / "journal", model=str(model)),
                   tmp_path / "cache").summary
    rows = read_pairs_tables([summary["pairs_file"]]).to_dict("records")
    assert [r["error"] == "" for r in rows] == [True, False, False] and len(summary["failed"]) == 2
    assert "prepared on (16, 16, 16)" in rows[1]["error"] and "needs (32, 32, 32)" in rows[1]["error"]
    assert rows[2]["error"].startswith("RuntimeError: preparation failed: sub-04: InputError")
    ok = pair_output_paths(out, "sub-02", "sub-01", "smgicnet")
    # --outputs all (the default): warps, warped image and labels, sidecar; no Jacobian, .h5 or compact file
    assert {r for r, p in ok.as_dict().items() if Path(p).is_file()} == {"warp", "inverse_warp", "affine", "warped",
                                                                        "warped_labels", "sidecar"}
    assert not any(p.exists() for p in pair_output_paths(out, "sub-03", "sub-01", "smgicnet").as_dict().values())
    warped = nib.load(ok.warped)
    assert warped.shape == nib.load(subjects[0]["t1w"]).shape  # on the fixed subject's native grid
    assert np.isfinite(rows[0]["seconds"]) and rows[0]["seconds"] > 0 and 0 < rows[0]["dice_mean"] <= 1
    assert len((tmp_path / "journal" / "smgicnet__t1.jsonl").read_text().splitlines()) == 3
    # resume: another tile (another tile size) with the finished pair does not redo it (sidecar untouched):
    # it is evaluated from its files, to the same metrics, and flagged resumed
    mtime = ok.sidecar.stat().st_mtime_ns
    again = _run(_tile_task(_tile(pairs[:1], "t2"), ids[:2], dirs[:2], ["", ""], out, tmp_path / "journal",
                            model=str(model)), tmp_path / "cache2").summary
    (row,) = read_pairs_tables([again["pairs_file"]]).to_dict("records")
    assert row["resumed"] and row["error"] == "" and ok.sidecar.stat().st_mtime_ns == mtime
    assert row["dice_mean"] == rows[0]["dice_mean"] and row["inverse_consistency_mm"] == rows[0]["inverse_consistency_mm"]
    assert json.loads(ok.sidecar.read_text())["fixed"] == "sub-01"


def test_identity_tile_gives_closed_form_metrics_and_reports(tmp_path, write_cohort, write_small_model):
    """A subject registered to an exact copy of itself with zero fields: Dice 1 per label, no folding, 0 mm."""
    from smgic_pydra.tasks import WriteReports

    subject = write_cohort(tmp_path / "raw", 1)[0]
    model = write_small_model(tmp_path / "models")
    cfg = SMGICNetConfig.from_json((model / "config.json").read_text())
    dirs = []
    for name in ("sub-01", "sub-02"):  # sub-02: the same files under another subject id
        prepare_subject(subject["t1w"], tmp_path / "prep" / name, cfg, mask_path=subject["mask"],
                        labels_path=subject["labels"], subject_id=name)
        dirs.append(str(tmp_path / "prep" / name))
    ids = ["sub-01", "sub-02"]
    summary = _run(_tile_task(_tile([("sub-01", "sub-02")]), ids, dirs, ["", ""], tmp_path / "out",
                              tmp_path / "journal", method="identity", outputs="metrics"), tmp_path / "cache").summary
    (row,) = read_pairs_tables([summary["pairs_file"]]).to_dict("records")
    assert row["error"] == "" and row["dice_mean"] == 1.0 and row["folding_percent"] == 0.0
    assert abs(row["inverse_consistency_mm"]) < 1e-9
    labels = [r for t in iter_label_tables([summary["labels_file"]]) for r in t.to_pylist()]
    assert {(r["label"], r["dice"]) for r in labels} == {(2, 1.0), (3, 1.0)}
    assert {r["name"] for r in labels} == {"Left-Cerebral-White-Matter", "Left-Cerebral-Cortex"}
    assert not list((tmp_path / "out").glob("sub-*"))  # outputs metrics: no per-pair file
    reports = _run(WriteReports(summaries=[summary], output_dir=str(tmp_path)), tmp_path / "cache").reports
    assert Path(reports["pairs"]).read_text().count("\n") == 2 and reports["summary_tsv"].endswith("group_summary.tsv")


def test_register_tile_keys_pairs_with_the_precision_that_runs_on_its_node(tmp_path, write_cohort, write_small_model,
                                                                           monkeypatch):
    """A tile planned on a machine with bf16 units (its settings say bf16) but run on one without them keys its
    pair with fp32, what ran there, so neither machine's result passes for the other's."""
    from smgic_pydra.methods import get_method
    from smgic_pydra.network import precision
    from smgic_pydra.tasks.tile import pair_key

    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())  # this node: no bf16 units
    subjects = write_cohort(tmp_path / "raw", 2)
    model = write_small_model(tmp_path / "models")
    cfg = SMGICNetConfig.from_json((model / "config.json").read_text())
    dirs = []
    for s in subjects:
        prepare_subject(s["t1w"], tmp_path / "prep" / s["subject"], cfg, subject_id=s["subject"])
        dirs.append(str(tmp_path / "prep" / s["subject"]))
    ids, options = ["sub-01", "sub-02"], {"refine": 0}
    planned = {"method": "smgicnet", "options": {**get_method("smgicnet").merged_options(options), "precision": "bf16"}}
    inputs = {k: {"t1w": k} for k in ids}
    task = RegisterTile(tile=_tile([("sub-01", "sub-02")]), subjects=ids, prepared_dirs=dirs, preparation_errors=["", ""],
                        inputs=inputs, settings=planned, output_dir=str(tmp_path / "out"),
                        journal_dir=str(tmp_path / "journal"), options=options, model=str(model), outputs="metrics")
    (row,) = read_pairs_tables([_run(task, tmp_path / "cache").summary["pairs_file"]]).to_dict("records")
    ran = {**planned, "options": {**planned["options"], "precision": "fp32"}}
    assert row["error"] == "" and row["content_sha256"] == pair_key(inputs, "sub-01", "sub-02", ran)
    assert row["content_sha256"] != pair_key(inputs, "sub-01", "sub-02", planned)
