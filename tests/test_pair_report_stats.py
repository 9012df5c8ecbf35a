"""The pair-accuracy report's statistics (``benchmarks/pair_report.py``): the test over anatomy pairs, the summary
cells and the code versions, against hand-computed values."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import pair_report  # noqa: E402  (benchmarks/ is no package)
from pair_subjects import colin27_pairs, ordered_pairs  # noqa: E402

MAPS = [Path(f"training_seg_{k}.nii.gz") for k in ("13", "14", "15")]
SUBJECTS = {f"{k}{v}": {"subject": f"{k}{v}", "label_map": f"training_seg_{k}.nii.gz"} for k in ("13", "14", "15")
            for v in "ab"}
GROUP_DIFFS = {("training_seg_13.nii.gz", "training_seg_14.nii.gz"): 0.3,
               ("training_seg_13.nii.gz", "training_seg_15.nii.gz"): 0.2,
               ("training_seg_14.nii.gz", "training_seg_15.nii.gz"): -0.1}
"""Mean Dice difference of each map pair; its 4 ordered pairs spread around it by -0.15, -0.05, +0.05, +0.15."""


def _rows(pairs, diff_of, method="m", reference="syn") -> list[dict]:
    rows = []
    for moving, fixed in pairs:
        rows.append({"moving": moving, "fixed": fixed, "method": reference, "dice_mean": 0.5, "forward_seconds": 10.0,
                     "cpu_seconds": 20.0, "error": ""})
        rows.append({"moving": moving, "fixed": fixed, "method": method, "dice_mean": 0.5 + diff_of(moving, fixed),
                     "forward_seconds": 1.0, "cpu_seconds": 2.0, "error": ""})
    return rows


def _held_out_rows() -> list[dict]:
    units = pair_report.anatomy_units(SUBJECTS)
    seen: dict = {}

    def diff_of(moving, fixed):
        group = tuple(sorted((units[moving], units[fixed])))
        k = seen[group] = seen.get(group, -1) + 1
        return GROUP_DIFFS[group] + (-0.15, -0.05, 0.05, 0.15)[k]

    return _rows(ordered_pairs(MAPS, 2), diff_of)


def test_signed_rank_p_matches_a_hand_computed_exact_test():
    """Differences +0.3, +0.2, +0.1, -0.05: ranks 4, 3, 2, 1, T- = 1; of the 16 sign patterns 2 have T- <= 1, so
    p = 2 x 2/16 = 0.25; all of 3 positive: p = 2/2^3 = 0.25; one value or all zero: no test."""
    assert pair_report._signed_rank_p([0.3, 0.2, 0.1, -0.05], method="exact") == pytest.approx(0.25)
    assert pair_report._signed_rank_p([0.1, 0.2, 0.3], method="exact") == pytest.approx(0.25)
    assert pair_report._signed_rank_p([0.1]) is None and pair_report._signed_rank_p([0.0, 0.0]) is None


def test_held_out_pairs_are_tested_over_their_three_map_pairs():
    """12 ordered pairs, 3 maps x 2 versions: 4 per unordered map pair. Map-pair means +0.3, +0.2, -0.1: ranks 3, 2,
    1, T- = 1; 2 of the 8 sign patterns have T- <= 1, p = 2 x 2/8 = 0.5; 2 wins of 3. Per pair: 9 wins of 12."""
    from scipy.stats import wilcoxon

    rows = _held_out_rows()
    c = pair_report.compare(rows, "m", "syn", pair_report.anatomy_units(SUBJECTS))
    assert (c["n_pairs"], c["wins"], c["n_groups"], c["group_wins"]) == (12, 9, 3, 2)
    assert [g["n_pairs"] for g in c["groups"]] == [4, 4, 4]
    assert {tuple(g["anatomies"]): g["dice_diff_mean"] for g in c["groups"]} == pytest.approx(GROUP_DIFFS)
    assert c["group_wilcoxon_p"] == pytest.approx(0.5)
    a, b = ([r["dice_mean"] for r in rows if r["method"] == m] for m in ("m", "syn"))
    assert c["wilcoxon_p"] == wilcoxon(a, b).pvalue  # the per-pair test as before


def test_colin27_pairs_are_tested_over_their_unordered_subject_pairs():
    """Subjects without a label map (one anatomy) are their own units: 6 ordered pairs, 3 subject pairs of 2;
    every mean positive: p = 2/2^3."""
    units = pair_report.anatomy_units({s: {"subject": s, "anatomy": "colin27"} for s in ("c1", "c2", "c3")})
    diffs = {("c1", "c2"): 0.01, ("c2", "c1"): 0.03, ("c1", "c3"): 0.02, ("c3", "c1"): -0.01, ("c2", "c3"): 0.05,
             ("c3", "c2"): 0.04}
    c = pair_report.compare(_rows(colin27_pairs(3), lambda m, f: diffs[(m, f)]), "m", "syn", units)
    assert [(g["anatomies"], g["n_pairs"]) for g in c["groups"]] == [
        (["c1", "c2"], 2), (["c1", "c3"], 2), (["c2", "c3"], 2)]
    assert [g["dice_diff_mean"] for g in c["groups"]] == pytest.approx([0.02, 0.005, 0.045])
    assert (c["n_groups"], c["group_wins"], c["group_wilcoxon_p"]) == (3, 3, pytest.approx(0.25))


def test_summary_cells_mark_a_single_value_and_a_partial_column():
    assert pair_report._fmt(pair_report._mean_std([0.734]), 3, 1) == "0.734 ± –"
    assert pair_report._fmt(pair_report._mean_std([1.0, 3.0, None]), 1, 3) == "2.0 ± 1.4 (2)"
    assert pair_report._fmt(pair_report._mean_std([1.0, 3.0]), 1, 2) == "2.0 ± 1.4"
    assert pair_report._fmt(pair_report._mean_std([None]), 1, 2) == "n/a"


def test_report_shows_map_pair_tests_missing_pairs_and_mixed_code_versions(tmp_path):
    """From result files: the map-pair columns and their note, a method over fewer pairs, a CPU column over 11 of
    12 pairs, and a method whose rows come from two code versions."""
    pairs = ordered_pairs(MAPS, 2)
    rows = _held_out_rows()
    rows[0]["cpu_seconds"] = None  # the reference's CPU seconds of the first pair
    rows.append({"moving": pairs[0][0], "fixed": pairs[0][1], "method": "fireants", "dice_mean": 0.7,
                 "forward_seconds": 5.0, "error": ""})
    for i, row in enumerate(rows):
        code = "b" * 64 if row["method"] == "m" and i < 4 else "a" * 64
        (tmp_path / f"{row['moving']}_to_{row['fixed']}.{row['method']}.json").write_text(
            json.dumps({"key": "k", "key_inputs": {"code_sha256": code}, "row": row}))
    (tmp_path / "benchmark.json").write_text(json.dumps(
        {"what": "test", "voxel_mm": 2, "ordered_pairs": [list(p) for p in pairs], "subjects": SUBJECTS}))
    report = pair_report.write_report(tmp_path, tmp_path / "pair_accuracy_test_2mm")
    text = (tmp_path / "pair_accuracy_test_2mm.md").read_text()
    assert report["summary"]["m"]["code_versions"] == {"a" * 64: 10, "b" * 64: 2}
    assert report["summary"]["m"]["vs_syn"]["group_wilcoxon_p"] == pytest.approx(0.5)
    assert "| syn | 12 | 0 | 0.500 ± 0.000 |" in text and " ± 0.0 (11) |" in text
    assert "| fireants | 1 | 0 | 0.700 ± – |" in text
    assert f"Machines (results): ?, ? cores, bf16 unrecorded ({len(rows)})." in text  # the files record none
    assert "Over fewer than the table's 12 pairs" in text and ": fireants (1)." in text
    assert "from more than one code version" in text and "m (aaaaaaaa: 10, bbbbbbbb: 2)." in text
    p = f"{report['summary']['m']['vs_syn']['wilcoxon_p']:.3g}"
    assert f"| m | 12 | 9 | +0.133 [-0.250, +0.450] | {p} | 3 | 2 | 0.5 | 0.100 | 0.100 (11 pairs) |" in text
    assert "(1-4 ordered pairs each: either direction, any version)" in text  # FireANTs' one pair with SyN
    assert "With n groups the smallest attainable p is 2/2^n (1 for n = 1, 0.25 for n = 3)." in text


def test_rows_of_other_subjects_are_refused_before_any_table_is_written(tmp_path):
    """A stored result whose subject's content SHA-256 differs from benchmark.json's (other synthesis code, or
    older code on another CPU class) is a one-line error, and no report file is written."""
    subjects = {sid: {**spec, "content_sha256": sid * 32} for sid, spec in SUBJECTS.items()}
    for moving, fixed, moving_sha in (("13a", "14b", "13a" * 32), ("14a", "13b", "ff" * 32)):
        row = {"moving": moving, "fixed": fixed, "method": "syn", "dice_mean": 0.5, "error": ""}
        key = {"fixed": {"id": fixed, "sha256": fixed * 32}, "moving": {"id": moving, "sha256": moving_sha}}
        (tmp_path / f"{moving}_to_{fixed}.syn.json").write_text(json.dumps({"key_inputs": key, "row": row}))
    (tmp_path / "benchmark.json").write_text(json.dumps({"what": "test", "voxel_mm": 2, "subjects": subjects}))
    with pytest.raises(ValueError) as err:
        pair_report.write_report(tmp_path, tmp_path / "pair_accuracy_test_2mm")
    assert str(err.value) == (f"{tmp_path}: 1 stored result(s) were computed on other subjects (first: "
                              f"14a_to_13b.syn, moving 14a ffffffffffff against 14a14a14a14a), e.g. synthesized by other "
                              "code or, before it was CPU-independent, on another CPU class; run under another --name")
    assert not list(tmp_path.glob("pair_accuracy_test_2mm.*"))
    pair_report.check_subjects(pair_report.load_rows(tmp_path), {**subjects, "14a": {"content_sha256": "ff" * 32},
                                                                  "13a": {}}, tmp_path)  # consistent: no error


AVX2 = {"cpu_model": "AMD EPYC", "cpu_count": 2, "cpu_bf16_flags": []}


def _timed(method, seconds, machine, known=True, moving="a", fixed="b"):
    return {"moving": moving, "fixed": fixed, "method": method, "cpu_seconds": seconds, "machine": machine,
            "machine_known": known, "dice_mean": 0.5, "forward_seconds": 1.0, "error": ""}


def test_cpu_ratio_is_taken_per_machine_and_pairs_of_two_or_unknown_machines_are_left_out():
    """target_check.cpu_ratio_by_machine: pair a->b on machine A (2 s / 40 s), c->d on B (3 s / 20 s), e->f the two
    rows on A and B (left out: cross-machine), g->h on an unrecorded machine (left out), i->j without the method's CPU
    seconds (not timed: not counted)."""
    import target_check

    rows = [_timed("m", 2.0, "A"), _timed("syn", 40.0, "A"),
            _timed("m", 3.0, "B", moving="c", fixed="d"), _timed("syn", 20.0, "B", moving="c", fixed="d"),
            _timed("m", 1.0, "A", moving="e", fixed="f"), _timed("syn", 50.0, "B", moving="e", fixed="f"),
            _timed("m", 1.0, "U", False, "g", "h"), _timed("syn", 50.0, "U", False, "g", "h"),
            _timed("m", None, "A", moving="i", fixed="j"), _timed("syn", 50.0, "A", moving="i", fixed="j"),
            _timed("synquick", 5.0, "A")]
    by_machine, left_out = target_check.cpu_ratio_by_machine(rows, "m", "syn")
    assert by_machine == {"A": {"ratio": pytest.approx(0.05), "n_pairs": 1, "pairs_within": 1,
                                "worst_pair_ratio": pytest.approx(0.05)},
                          "B": {"ratio": pytest.approx(0.15), "n_pairs": 1, "pairs_within": 0,
                                "worst_pair_ratio": pytest.approx(0.15)}}
    # a second pair on A at 30 s / 100 s: the sum 32 / 140, one of two pairs at most 0.1 on its own, the highest 0.3
    more = rows + [_timed("m", 30.0, "A", moving="k", fixed="l"), _timed("syn", 100.0, "A", moving="k", fixed="l")]
    assert target_check.cpu_ratio_by_machine(more, "m", "syn")[0]["A"] == {
        "ratio": pytest.approx(32 / 140), "n_pairs": 2, "pairs_within": 1, "worst_pair_ratio": pytest.approx(0.3)}
    assert left_out == {"unrecorded": 1, "cross_machine": 1}
    assert target_check.cpu_ratio_by_machine(rows[6:8], "m", "syn") == ({}, {"unrecorded": 1, "cross_machine": 0})


def _write_folder(folder: Path, rows: list[dict], subjects: dict, machine: dict = AVX2) -> Path:
    folder.mkdir()
    for row in rows:
        (folder / f"{row['moving']}_to_{row['fixed']}.{row['method']}.json").write_text(
            json.dumps({"row": row, "machine": machine}))
    (folder / "benchmark.json").write_text(json.dumps({"what": "test", "voxel_mm": 2, "subjects": subjects}))
    return folder


def test_targets_pool_the_held_out_and_colin27_tables(tmp_path):
    """benchmarks/target_check.py: 12 held-out pairs (9 wins, mean +0.1333) and 6 Colin27 pairs of -0.02 each (ids
    prefixed by their folder; no folding recorded): 18 pairs, 9 wins (50 %, not met), mean
    (12 x 0.4/3 - 6 x 0.02) / 18 = +0.08222 (met); CPU 2 s against 20 s (0.1, met), on one machine or, where the
    rows of one CPU model name differ in bf16 units, per machine; SyNQuick 0.01 above the method on one pair (not
    met); the highest folding 0.06 % (not met)."""
    import target_check

    colin = {s: {"subject": s} for s in ("c1", "c2", "c3")}
    held = _rows(ordered_pairs(MAPS, 2), lambda m, f: 0.0)
    for row, plain in zip((r for r in held if r["method"] == "m"), _held_out_rows()[1::2]):
        row["dice_mean"], row["percent_folded"] = plain["dice_mean"], 0.01
    held[1]["percent_folded"] = 0.06
    held.append({**held[0], "method": "synquick", "dice_mean": held[1]["dice_mean"] + 0.01})
    c27 = _rows(colin27_pairs(3), lambda m, f: -0.02)
    folders = [_write_folder(tmp_path / "held", held, SUBJECTS), _write_folder(tmp_path / "c27", c27, colin)]
    rows, units = target_check.pooled_rows(folders)
    assert {r["moving"] for r in rows} == {f"held/{s}" for s in SUBJECTS} | {"c27/c1", "c27/c2", "c27/c3"}
    result = target_check.check(rows, units, "m", "syn", 0.03)
    vs = result["vs_syn"]
    assert (vs["n_pairs"], vs["wins"], vs["n_groups"]) == (18, 9, 6)
    assert vs["dice_diff_mean"] == pytest.approx((12 * 0.4 / 3 - 6 * 0.02) / 18)
    assert vs["cpu_seconds_ratio"] == pytest.approx(0.1) and vs["cpu_pair_ratios"] == pytest.approx([0.1] * 18)
    assert result["vs_synquick"]["dice_diff_min"] == pytest.approx(-0.01) and result["max_percent_folded"] == 0.06
    assert list(result["targets"].values()) == [True, False, True, False, False]
    assert result["versions"] == {"m": {"unrecorded": 18}, "syn": {"unrecorded": 18}, "synquick": {"unrecorded": 1}}
    assert result["cpu_by_machine"] == {"AMD EPYC, 2 cores, bf16 none": {
        "ratio": pytest.approx(0.1), "n_pairs": 18, "pairs_within": 18, "worst_pair_ratio": pytest.approx(0.1)}}
    bf16 = {**AVX2, "cpu_bf16_flags": ["avx512_bf16"]}
    fast = [{**r, "cpu_seconds": 1.0} if r["method"] == "m" else r for r in c27]  # 1 s against 20 s
    mixed = [_write_folder(tmp_path / "held-bf16", held, SUBJECTS),
             _write_folder(tmp_path / "c27-bf16", fast, colin, bf16)]
    verdict = target_check.check(*target_check.pooled_rows(mixed), "m", "syn", 0.03)
    assert verdict["cpu_by_machine"] == {
        "AMD EPYC, 2 cores, bf16 avx512_bf16": {"ratio": pytest.approx(0.05), "n_pairs": 6, "pairs_within": 6,
                                                "worst_pair_ratio": pytest.approx(0.05)},
        "AMD EPYC, 2 cores, bf16 none": {"ratio": pytest.approx(0.1), "n_pairs": 12, "pairs_within": 12,
                                         "worst_pair_ratio": pytest.approx(0.1)}}
    assert verdict["vs_syn"]["cpu_seconds_ratio"] == pytest.approx((24 + 6) / (240 + 120))
    assert "bf16 none: 0.1 (12 pairs; 12 of them at <= 0.1 on their own, the highest 0.1)" in target_check.lines(
        {**verdict, "folders": []})
    assert list(verdict["targets"].values()) == [True, False, True, False, False]
    # Colin27's method rows on the bf16 machine, its SyN rows on the AVX2 one: not a same-machine ratio
    for path in (tmp_path / "c27-bf16").glob("*.syn.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "machine": AVX2}))
    verdict = target_check.check(*target_check.pooled_rows(mixed), "m", "syn", 0.03)
    assert verdict["cpu_pairs_left_out"] == {"unrecorded": 0, "cross_machine": 6}
    assert list(verdict["targets"].values()) == [True, False, False, False, False]
    assert "left out: 6 pairs of two machines, 0 of an unrecorded one" in target_check.lines({**verdict, "folders": []})
    out = tmp_path / "targets.json"
    assert target_check.main([str(f) for f in folders] + ["--method", "m", "--out", str(out)]) == 1  # not all met
    assert json.loads(out.read_text())["targets"] == result["targets"]
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="two folders of one name"):
        target_check.pooled_rows([folders[0], _write_folder(tmp_path / "other" / "held", c27, colin)])
