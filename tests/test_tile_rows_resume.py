"""A tile job's rows: the seconds of a pair evaluated from its files are those of the fresh pair (writing
included), labels erased by the warp are counted, and the per-label rows hold only the Dice the mean averages."""

from __future__ import annotations

import json
import time

import nibabel as nib
import numpy as np
import pytest

from smgic_pydra.config import small_config
from smgic_pydra.io.images import load_image
from smgic_pydra.preparation import prepare_subject
from smgic_pydra.reports.structure_stats import StructureStats
from smgic_pydra.reports.tiles import iter_label_tables, read_pairs_tables
from smgic_pydra.tasks.tile import run_tile
from smgic_pydra.worldspace import registered
from smgic_pydra.worldspace.registered import RegisteredPair

SHIFT = 4  # voxels (1 mm) along the first axis: warped[i] = moving[i + SHIFT]
TABLE = {2: "big", 5: "moving only", 7: "small", 9: "fixed only"}
WRITE_DELAY = 0.3  # s added to writing the outputs


def _labels(kind: str) -> np.ndarray:
    data = np.zeros((40, 40, 40), np.int16)
    if kind == "fixed":
        data[8:33, 8:33, 8:33] = 2
        data[34:37, 2:5, 2:5] = 7
        data[34:37, 34:37, 34:37] = 9
    else:
        data[5:30, 5:30, 5:30] = 2
        data[1:3, 2:5, 2:5] = 7  # pulled from i + 4 >= 4 only: the warp erases it
        data[20:24, 33:37, 33:37] = 5
    return data


@pytest.fixture()
def pair(tmp_path):
    cfg = small_config(grid_shape=(32, 32, 32), voxel_size_mm=4.0)
    dirs = []
    for key, kind in (("sub-01", "fixed"), ("sub-02", "moving")):
        labels = _labels(kind)
        image = np.where(labels > 0, 0.4 + 0.05 * labels, 0.0).astype(np.float32)
        mask = np.zeros(labels.shape, np.uint8)
        mask[3:38, 3:38, 3:38] = 1
        files = {}
        for role, data in (("t1", image), ("mask", mask), ("labels", labels)):
            files[role] = tmp_path / f"{key}_{role}.nii.gz"
            nib.save(nib.Nifti1Image(data, np.eye(4)), files[role])
        dirs.append(str(prepare_subject(files["t1"], tmp_path / "prep" / key, cfg, mask_path=files["mask"],
                                        labels_path=files["labels"], subject_id=key).folder))
    (tmp_path / "table.tsv").write_text("index\tname\n" + "".join(f"{k}\t{v}\n" for k, v in TABLE.items()))
    return {"dirs": dirs, "table": str(tmp_path / "table.tsv"), "out": str(tmp_path / "out"), "tmp": tmp_path}


def _runner():
    """A registration that shifts by SHIFT mm along x: warped[i] = moving[i + SHIFT]."""
    def run(fixed, moving, extra):
        started = time.perf_counter()
        images = [load_image(s.source_files["t1"], "image") for s in (fixed, moving)]
        shift = np.zeros((40, 40, 40, 3), np.float32)
        shift[..., 0] = SHIFT
        return RegisteredPair("smgicnet", *images, load_image(moving.source_files["labels"], "labels"), shift, -shift,
                              {"method": "smgicnet", "forward_seconds": 0.01, **extra}, {"forward_seconds": 0.01},
                              started=started)
    return run


def _run(pair, journal: str) -> tuple[dict, list[dict]]:
    tile = {"id": "t0", "fixed": ["sub-01"], "moving": ["sub-02"], "pairs": np.array([[0, 0]], np.int32)}
    summary = run_tile("smgicnet", tile, _runner, subjects=["sub-01", "sub-02"], prepared_dirs=pair["dirs"],
                       preparation_errors=["", ""], inputs={"sub-01": {}, "sub-02": {}}, settings={},
                       output_dir=pair["out"], outputs="all", labels_table=pair["table"],
                       journal=str(pair["tmp"] / journal))
    (row,) = read_pairs_tables([summary["pairs_file"]]).to_dict("records")
    (labels,) = iter_label_tables([summary["labels_file"]])
    return row, labels.to_pylist()


def test_resumed_pair_reports_the_fresh_seconds_and_the_same_label_rows(pair, monkeypatch):
    write = registered.write_pair_outputs

    def slow_write(*args, **kwargs):
        time.sleep(WRITE_DELAY)
        return write(*args, **kwargs)

    monkeypatch.setattr(registered, "write_pair_outputs", slow_write)
    fresh, fresh_labels = _run(pair, "fresh.jsonl")
    assert fresh["error"] == "" and not fresh["resumed"]
    sidecar = json.loads(next((pair["tmp"] / "out").rglob("*_xfm.json")).read_text())
    assert fresh["seconds"] == sidecar["total_seconds"]  # writing included ...
    assert fresh["seconds"] >= sidecar["seconds_before_write"] + WRITE_DELAY  # ... and it is in the sidecar

    resumed, resumed_labels = _run(pair, "other_run.jsonl")  # another run: evaluated from the files
    assert resumed["resumed"] and resumed["seconds"] == fresh["seconds"]
    for key in ("dice_mean", "hd95_mm", "labels_lost", "forward_seconds", "folding_percent"):
        assert resumed[key] == fresh[key]
    assert resumed_labels == fresh_labels


def test_label_rows_hold_the_dice_the_mean_averages_and_erased_labels_are_counted(pair):
    row, label_rows = _run(pair, "j.jsonl")
    fixed, moving = _labels("fixed"), _labels("moving")
    warped = np.zeros_like(moving)
    warped[:-SHIFT] = moving[SHIFT:]
    written = next((pair["tmp"] / "out").rglob("*_dseg.nii.gz"))
    np.testing.assert_array_equal(np.asarray(nib.load(written).dataobj), warped)  # the set-up holds

    def dice(label):
        w, f = warped == label, fixed == label
        return 2.0 * np.sum(w & f) / (w.sum() + f.sum())

    in_fixed = [k for k in TABLE if np.any(fixed == k)]
    assert in_fixed == [2, 7, 9]  # 5 is only in the moving (and warped) labels
    got = {r["label"]: r["dice"] for r in label_rows}
    assert got == pytest.approx({k: dice(k) for k in in_fixed}, abs=1e-12)
    assert row["dice_mean"] == pytest.approx(np.mean(list(got.values())), abs=1e-12)
    present = [set(np.unique(a)) & set(TABLE) for a in (fixed, moving, warped)]
    assert row["labels_lost"] == len((present[0] & present[1]) - present[2]) == 1  # label 7
    stats = StructureStats()
    stats.add(next(iter_label_tables([next((pair["tmp"] / "out").rglob("t0_labels.parquet"))])))
    assert sorted(stats.frame()["label"]) == [2, 7, 9]


def test_pairs_table_of_an_earlier_version_reads_labels_lost_as_nan():
    import pyarrow as pa

    from smgic_pydra.io.errors import InputError
    from smgic_pydra.reports.tiles import ADDED_COLUMNS, conform, pair_schema

    old = pa.table({f.name: pa.array([0.5] if pa.types.is_floating(f.type) else [False] if f.name == "resumed"
                                     else ["x"]) for f in pair_schema() if f.name not in ADDED_COLUMNS})
    table = conform(old, pair_schema())
    assert table.column_names == pair_schema().names and np.isnan(table.column("labels_lost")[0].as_py())
    with pytest.raises(InputError, match="missing columns dice_mean"):
        conform(old.drop(["dice_mean"]), pair_schema())
