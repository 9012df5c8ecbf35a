"""Reports that scale: tile files, streamed per-label tables and statistics, dice_matrix.tsv, CSV limit.

References are computed with pandas / numpy / pyarrow / matplotlib directly on the inputs.
"""

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smgic_pydra.io.errors import InputError
from smgic_pydra.reports import structure_stats, write
from smgic_pydra.reports.tables import LABEL_COLUMNS, PAIR_COLUMNS
from smgic_pydra.reports.tiles import (
    TILE_PAIR_COLUMNS,
    iter_label_tables,
    read_pairs_tables,
    tile_files,
    write_tile_tables,
)
from smgic_pydra.reports.write import write_reports


def _tile_rows(method, subjects, seed, fail=()):
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i, fixed in enumerate(subjects):
        for moving in subjects[i + 1:]:
            if (fixed, moving) in fail:
                rows.append({"method": method, "fixed": fixed, "moving": moving, "error": "RuntimeError: boom",
                             "resumed": False})
                continue
            rows.append({"method": method, "fixed": fixed, "moving": moving, "dice_mean": rng.uniform(0.5, 0.9),
                         "folding_percent": rng.uniform(0, 1), "log_jacobian_std": rng.uniform(0, 0.3),
                         "inverse_consistency_mm": rng.uniform(0, 1), "seconds": rng.uniform(1, 2),
                         "forward_seconds": rng.uniform(0.5, 1), "error": "", "content_sha256": f"{i:064x}",
                         "resumed": bool(rng.integers(2))})
            labels += [{"method": method, "fixed": fixed, "moving": moving, "label": label, "name": f"struct{label}",
                        "dice": rng.uniform(0.3, 1.0)} for label in (2, 17, 1035)]
    return rows, labels


def test_tile_round_trip_keeps_every_value(tmp_path):
    a_rows, a_labels = _tile_rows("smgicnet", ["sub-01", "sub-02", "sub-03"], 0, fail={("sub-01", "sub-03")})
    b_rows, b_labels = _tile_rows("syn", ["sub-01", "sub-04"], 1)
    files = [tile_files(tmp_path, "smgicnet", "t0000"), tile_files(tmp_path, "syn", "t0001")]
    assert files[0].pairs == tmp_path / "reports" / "tiles" / "smgicnet" / "t0000_pairs.parquet"
    assert files[0].labels == tmp_path / "reports" / "tiles" / "smgicnet" / "t0000_labels.parquet"
    write_tile_tables(a_rows, a_labels, files[0])
    write_tile_tables(b_rows, b_labels, files[1])
    assert not list(tmp_path.rglob(".tmp-*"))

    pairs = read_pairs_tables([f.pairs for f in files])
    assert list(pairs.columns) == TILE_PAIR_COLUMNS
    expected = pd.DataFrame(a_rows + b_rows)
    for column in TILE_PAIR_COLUMNS:
        want = expected[column] if column in expected else pd.Series([math.nan] * len(expected))
        if column in ("method", "fixed", "moving", "error", "content_sha256"):
            assert pairs[column].tolist() == want.fillna("").tolist(), column
        elif column == "resumed":
            assert pairs[column].dtype == bool and pairs[column].tolist() == want.tolist()
        else:
            np.testing.assert_array_equal(pairs[column].to_numpy(float), want.to_numpy(float), err_msg=column)

    tables = list(iter_label_tables([f.labels for f in files]))
    assert len(tables) == 2
    for table, rows in zip(tables, (a_labels, b_labels)):
        assert table.column_names == LABEL_COLUMNS
        assert table.to_pylist() == rows
    schema = pq.read_schema(files[0].labels)
    assert pa.types.is_dictionary(schema.field("name").type) and schema.field("label").type == pa.int32()

    # the same tile from tables holding every column
    frame_files = tile_files(tmp_path, "syn", "t0002")
    write_tile_tables(pairs.iloc[-1:], pa.Table.from_pylist(b_labels), frame_files)
    assert read_pairs_tables([frame_files.pairs]).equals(pairs.iloc[-1:].reset_index(drop=True))
    assert next(iter_label_tables([frame_files.labels])).to_pylist() == b_labels


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing column", "edited value", "record deleted"])
def test_damaged_tile_file_is_a_one_line_error_naming_it(tmp_path, damage):
    rows, labels = _tile_rows("syn", ["sub-01", "sub-02", "sub-03"], 0)
    good, bad = tile_files(tmp_path, "syn", "t0"), tile_files(tmp_path, "syn", "t1")
    write_tile_tables(rows, labels, good)
    write_tile_tables(rows, labels, bad)
    data = bad.pairs.read_bytes()
    if damage == "garbage":
        bad.pairs.write_bytes(b"not a parquet file at all")
    elif damage == "truncated":
        bad.pairs.write_bytes(data[: len(data) // 2])
    elif damage == "missing column":
        pq.write_table(pq.read_table(bad.pairs).drop_columns(["dice_mean"]), bad.pairs)
    elif damage == "edited value":  # a well-formed table edited by hand: the checksum record tells
        table = pq.read_table(bad.pairs).to_pandas().assign(dice_mean=0.99)
        pq.write_table(pa.Table.from_pandas(table, schema=pq.read_schema(good.pairs), preserve_index=False), bad.pairs)
    else:
        bad.record.unlink()
    with pytest.raises(InputError) as info:
        read_pairs_tables([good.pairs, bad.pairs])
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(bad.pairs.absolute()))
    assert ("without its checksum record" if damage == "record deleted" else "changed since its tile job wrote it") in message
    with pytest.raises(FileNotFoundError):
        read_pairs_tables([tmp_path / "missing_pairs.parquet"])
    bad.labels.write_bytes(b"PAR1 broken")
    with pytest.raises(InputError, match="t1_labels.parquet"):
        list(iter_label_tables([good.labels, bad.labels]))


def _pairs(rows):
    return pd.DataFrame(rows, columns=PAIR_COLUMNS).fillna({"error": ""})


def test_dice_matrix_tsv_holds_the_mean_dice_of_every_ordered_pair(tmp_path):
    rows = [{"method": "syn", "fixed": "sub-01", "moving": "sub-02", "dice_mean": 0.81, "error": ""},
            {"method": "syn", "fixed": "sub-02", "moving": "sub-01", "dice_mean": 0.79, "error": ""},
            {"method": "syn", "fixed": "sub-01", "moving": "sub-03", "dice_mean": 0.5, "error": "RuntimeError: x"},
            {"method": "syn", "fixed": "sub-03", "moving": "sub-02", "dice_mean": 0.7, "error": ""},
            {"method": "affine", "fixed": "sub-04", "moving": "sub-01", "dice_mean": 0.6, "error": ""}]
    paths = write_reports(_pairs(rows), [], tmp_path, html=False)
    matrix = pd.read_csv(paths["dice_matrix"], sep="\t", dtype={"method": str, "fixed": str})
    subjects = ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert list(matrix.columns) == ["method", "fixed", *subjects]
    assert matrix["method"].tolist() == ["affine"] * 4 + ["syn"] * 4
    assert matrix["fixed"].tolist() == subjects * 2
    ok = {(r["method"], r["fixed"], r["moving"]): r["dice_mean"] for r in rows if not r["error"]}
    for _, line in matrix.iterrows():
        for moving in subjects:
            want = ok.get((line["method"], line["fixed"], moving), math.nan)
            assert (math.isnan(want) and math.isnan(line[moving])) or line[moving] == pytest.approx(want, abs=1e-6)
    # empty cells, not "nan", where a pair was not run or failed
    text = paths["dice_matrix"].read_text().splitlines()
    assert text[5].split("\t") == ["syn", "sub-01", "", "0.81", "", ""]


def _label_parts(seed, n_parts=6):
    """Label tables as a tile job writes them: 2 methods, 3 structures, skewed Dice with a few low outliers."""
    rng = np.random.default_rng(seed)
    for part in range(n_parts):
        n = 3000
        dice = np.clip(rng.beta(8, 2, n), 0, 1)
        dice[rng.integers(0, n, 20)] = rng.uniform(0, 0.2, 20)
        frame = pd.DataFrame({"method": rng.choice(["smgicnet", "syn"], n),
                              "fixed": [f"sub-{part:02d}"] * n, "moving": [f"sub-{i % 50:02d}" for i in range(n)],
                              "label": rng.choice([17, 53, 2], n).astype(np.int32), "dice": dice})
        frame.insert(4, "name", frame["label"].map({17: "Left-Hippocampus", 53: "Right-Hippocampus",
                                                    2: "Left-Cerebral-White-Matter"}))
        frame.loc[frame.index[:3], "dice"] = np.nan  # a label missing from both images
        yield frame if part % 2 else pa.Table.from_pandas(frame, preserve_index=False)


def test_streamed_labels_and_per_structure_stats_match_numpy(tmp_path, monkeypatch):
    from matplotlib.cbook import boxplot_stats

    monkeypatch.setattr(structure_stats, "EXACT_VALUES", 2000)  # 3000 values per structure: the histogram path
    full = pd.concat([p if isinstance(p, pd.DataFrame) else p.to_pandas() for p in _label_parts(3)], ignore_index=True)
    rows = [{"method": m, "fixed": "sub-00", "moving": "sub-01", "dice_mean": 0.8, "error": ""}
            for m in ("smgicnet", "syn")]
    paths = write_reports(rows, _label_parts(3), tmp_path, html=False)  # a generator: read once

    stored = pq.read_table(paths["dice_per_label_parquet"]).to_pandas()
    assert len(stored) == len(full)
    np.testing.assert_array_equal(stored["dice"].to_numpy(), full["dice"].to_numpy())
    assert stored["name"].astype(str).tolist() == full["name"].tolist()

    table = pd.read_csv(paths["dice_per_structure"], sep="\t")  # 6 significant digits
    stats = structure_stats.StructureStats()
    for part in _label_parts(3):
        stats.add(part)
    exact = stats.frame()  # full precision
    assert len(table) == len(exact) == 6
    resolution = 1.0 / structure_stats.BINS
    for (_, row), (_, raw) in zip(table.iterrows(), exact.iterrows()):
        values = full.loc[(full["method"] == row["method"]) & (full["label"] == row["label"]), "dice"].dropna().to_numpy()
        assert row["n"] == raw["n"] == len(values) and not row["exact"]
        assert raw["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert raw["std"] == pytest.approx(values.std(ddof=1), rel=1e-10)
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-5)
        assert row["std"] == pytest.approx(values.std(ddof=1), rel=1e-5)
        assert (raw["min"], raw["max"]) == (values.min(), values.max())
        reference = boxplot_stats(values)[0]
        # quartiles within one bin; the whiskers' 1.5 IQR limits add the quartiles' errors: 4 bins
        for ours, theirs, bins in [("q1", "q1", 1), ("median", "med", 1), ("q3", "q3", 1), ("whislo", "whislo", 4),
                                   ("whishi", "whishi", 4)]:
            assert abs(raw[ours] - reference[theirs]) <= bins * resolution, (ours, raw[ours], reference[theirs])
            assert abs(row[ours] - reference[theirs]) <= bins * resolution + 1e-5
        assert abs(row["n_outliers"] - len(reference["fliers"])) <= 0.01 * len(values)


def test_small_structures_get_exact_box_statistics(tmp_path):
    from matplotlib.cbook import boxplot_stats

    labels = [{"method": "syn", "fixed": "a", "moving": f"m{i}", "label": 17, "name": "Left-Hippocampus", "dice": d}
              for i, d in enumerate([0.8, 0.81, 0.79, 0.85, 0.2, 0.83, 0.78])]
    stats = structure_stats.StructureStats()
    stats.add(pd.DataFrame(labels))
    row = stats.frame().iloc[0]
    reference = boxplot_stats(np.array([r["dice"] for r in labels]))[0]
    assert row["exact"] and row["n"] == 7
    for ours, theirs in [("q1", "q1"), ("median", "med"), ("q3", "q3"), ("whislo", "whislo"), ("whishi", "whishi")]:
        assert row[ours] == pytest.approx(reference[theirs], abs=1e-12)
    np.testing.assert_array_equal(row["fliers"], np.sort(reference["fliers"]))


def test_csv_written_only_below_the_row_limit(tmp_path, monkeypatch, caplog):
    rows, labels = _tile_rows("syn", ["sub-01", "sub-02", "sub-03"], 0)  # 3 pair rows, 9 label rows
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "dice_per_label.csv").write_text("stale\n")
    monkeypatch.setattr(write, "CSV_MAX_ROWS", 5)
    paths = write_reports(rows, [pd.DataFrame(labels[:4]), pd.DataFrame(labels[4:])], tmp_path, html=False)
    assert "dice_per_label" not in paths and not (reports / "dice_per_label.csv").exists()
    assert "dice_per_label.csv not written: 9 rows > 5" in caplog.text
    assert pq.read_metadata(paths["dice_per_label_parquet"]).num_rows == 9
    assert pd.read_csv(paths["pairs"])["fixed"].tolist() == sorted(r["fixed"] for r in rows)

    monkeypatch.setattr(write, "CSV_MAX_ROWS", 9)
    monkeypatch.setattr(write, "CSV_BATCH_ROWS", 2)  # copied from the Parquet table in several batches
    paths = write_reports(rows, iter([pd.DataFrame(labels)]), tmp_path, html=False)
    csv = pd.read_csv(paths["dice_per_label"])
    assert list(csv.columns) == LABEL_COLUMNS and len(csv) == 9
    np.testing.assert_allclose(csv["dice"], [r["dice"] for r in labels], rtol=1e-5)
    assert csv["label"].tolist() == [r["label"] for r in labels]

    monkeypatch.setattr(write, "CSV_MAX_ROWS", 2)
    paths = write_reports(rows, [], tmp_path, html=False)
    assert "pairs" not in paths and not (reports / "pairs.csv").exists()
    assert pq.read_table(paths["pairs_parquet"]).num_rows == 3


def _figure_svg(html: str, figure_id: str) -> str:
    import base64
    import re

    section = html[html.index(f'<h2 id="{figure_id}">'):]
    return base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', section).group(1)).decode()


def test_group_page_of_a_large_cohort_lists_counts_and_rasterizes(tmp_path, monkeypatch):
    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    from smgic_pydra.reports import group_figures, group_page

    subjects = [f"sub-{i:02d}" for i in range(30)]
    rng = np.random.default_rng(4)
    rows = [{"method": "syn", "fixed": f, "moving": m, "dice_mean": rng.uniform(0.6, 0.9),
             "folding_percent": rng.uniform(0, 1), "seconds": rng.uniform(5, 9), "error": ""}
            for i, f in enumerate(subjects) for m in subjects[i + 1:]]
    for row in rows[:12]:
        row.update(dice_mean=math.nan, error="RuntimeError: boom")
    small = write_reports(rows, [], tmp_path / "small")["index"].read_text()
    assert small.count("<tr><td>ANTs SyN</td>") == len(rows) + 12  # every pair, and the failed ones again
    assert "<image" not in _figure_svg(small, "dice-vs-folding") and "sub-07" in _figure_svg(small, "dice-matrix")

    monkeypatch.setattr(group_page, "MAX_LISTED_PAIRS", 100)
    monkeypatch.setattr(group_page, "MAX_LISTED_FAILED", 5)
    monkeypatch.setattr(group_figures, "MAX_VECTOR_POINTS", 100)
    monkeypatch.setattr(group_figures, "MAX_VECTOR_SUBJECTS", 10)
    monkeypatch.setattr(group_figures, "MAX_TICK_SUBJECTS", 10)
    html = write_reports(rows, [], tmp_path / "large")["index"].read_text()
    assert 'id="pairs-table"' not in html and f"{len(rows)} pair rows: too many to list here" in html
    failed = html[html.index('id="failed-table"'):html.index("</table>", html.index('id="failed-table"'))]
    assert failed.count("<tr><td>") == 5 and "12 failed pair rows; the first 5 are listed" in html
    scatter, strip, matrix = (_figure_svg(html, f) for f in ("dice-vs-folding", "seconds", "dice-matrix"))
    for svg in (scatter, strip, matrix):
        assert "<image" in svg
    # one marker per point when drawn as vectors, none once rasterized
    assert _figure_svg(small, "dice-vs-folding").count("<use") >= len(rows) - 12 > scatter.count("<use")
    assert "sub-07" not in matrix and "30 subjects, clustered order" in matrix
    assert len(html) < len(small)


def test_no_tiles_yet_gives_empty_tables_and_a_page(tmp_path):
    pytest.importorskip("jinja2")
    paths = write_reports(read_pairs_tables([]), iter_label_tables([]), tmp_path)
    assert pq.read_table(paths["pairs_parquet"]).num_rows == 0 == pq.read_table(paths["dice_per_label_parquet"]).num_rows
    assert pd.read_csv(paths["summary_csv"]).empty and "0 subjects, 0 pairs" in paths["index"].read_text()
