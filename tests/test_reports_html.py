"""Reportlets and the group report: shown in headless Chromium, numbers from the rows of pairs.csv."""

import csv
import math
import re
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser_check import check_report, hover_changes

from smgic_pydra.bids import derivatives
from smgic_pydra.bids.examples import TEMPLATE_DIR, make_example_dataset
from smgic_pydra.cli.bids_app import main
from smgic_pydra.reports import group_figures as gf
from smgic_pydra.reports.anatomy import canonical
from smgic_pydra.reports.pair_figures import centre_jacobians
from smgic_pydra.reports.subject_figures import field_of_view_slices

pytest.importorskip("lxml")
pytest.importorskip("jinja2")
needs_example = pytest.mark.skipif(not (TEMPLATE_DIR / "ch2bet.nii.gz").is_file(), reason="mricron-data not installed")


@pytest.fixture(scope="module")
def demo(tmp_path_factory, write_small_model):
    """The demo on a small scale: participant (all pairs of 3 subjects, SM-GICNet + identity) then group."""
    root = tmp_path_factory.mktemp("report")
    bids = make_example_dataset(root / "bids", n_subjects=3, seed=2, voxel_mm=3.0)
    model = write_small_model(root / "models")
    out, work = root / "derivatives" / "smgicnet", root / "work"
    common = ["-w", str(work), "--no-progress"]
    assert main([str(bids), str(out), "participant", "--model", str(model), "--pairs-per-job", "3", "--nprocs", "1",
                 "--skip-bids-validation", *common]) == 0
    assert main([str(bids), str(out), "group", *common]) == 0
    return out


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _number(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


@needs_example
@pytest.mark.slow
def test_demo_report_in_headless_chromium(demo, tmp_path):
    page = demo / "reports" / "index.html"
    seen = check_report(page, tmp_path / "index.png")
    assert seen.problems == []
    assert seen.images == 4  # per-structure Dice, Dice vs folding, seconds, Dice matrix (all pairs of 3 subjects)
    # every pair's three reportlets (identity has none) and every subject's preparation are linked and opened
    linked = {Path(href).name for href in seen.linked_figures}
    for row in _csv_rows(demo / "reports" / "pairs.csv"):
        paths = derivatives.pair_figure_paths(demo, row["moving"], row["fixed"], row["method"]).as_dict()
        assert (set(Path(p).name for p in paths.values()) <= linked) == (row["method"] != "identity")
    assert {f"{s}_desc-brain_mask.svg" for s in ("sub-01", "sub-02", "sub-03")} <= linked
    assert seen.reportlets >= 3 * 3 + 3  # worst pairs' reportlets and the subjects' preparations
    # the registration reportlet flickers between before and after under the pointer
    assert hover_changes(page, 'object[data-role="registration"]')
    # offline: nothing is fetched from the network
    assert not re.search(r"""(src|href|data)=["']https?:""", page.read_text())


@needs_example
@pytest.mark.slow
def test_report_numbers_come_from_the_rows_of_pairs_csv(demo):
    rows = _csv_rows(demo / "reports" / "pairs.csv")
    methods = sorted({r["method"] for r in rows})
    ok = [r for r in rows if not r["error"]]

    # summary table of index.html = mean / sample std of pairs.csv (statistics module)
    html = (demo / "reports" / "index.html").read_text()
    table = html[html.index('id="summary-table"'):html.index("</table>", html.index('id="summary-table"'))]
    for method in methods:
        dice = [float(r["dice_mean"]) for r in ok if r["method"] == method]
        cells = re.search(rf'<tr data-method="{method}">(.*?)</tr>', table, re.S).group(1)
        assert f"{statistics.mean(dice):.3f} ± {statistics.stdev(dice):.3f}" in cells

    # per-pair reportlets: the Dice and folding in their titles are the pair's row of pairs.csv
    for row in ok:
        if row["method"] == "identity":
            continue
        paths = derivatives.pair_figure_paths(demo, row["moving"], row["fixed"], row["method"])
        text = paths.jacobian.read_text() + paths.displacement.read_text()
        expected = f"(Dice {float(row['dice_mean']):.3f}, folding {float(row['folding_percent']):.3f} %)"
        assert text.count(expected) == 2

    # group figures drawn from the tables read back: their artists hold the csv's numbers
    pairs = pd.read_csv(demo / "reports" / "pairs.csv", dtype={"error": str}).fillna({"error": ""})
    labels = pd.read_csv(demo / "reports" / "dice_per_label.csv")
    scatter = gf.dice_vs_folding_figure(pairs, methods)
    for method in methods:
        points = next(c for c in scatter.axes[0].collections if c.get_gid() == method).get_offsets()
        expected = sorted((float(r["folding_percent"]), float(r["dice_mean"])) for r in ok if r["method"] == method)
        np.testing.assert_allclose(sorted(map(tuple, np.asarray(points))), expected)
    # per-structure boxes from dice_per_structure.tsv: its medians are those of dice_per_label.csv
    structures = pd.read_csv(demo / "reports" / "dice_per_structure.tsv", sep="\t")
    boxes = gf.dice_per_structure_figure(structures, methods)
    names = [t.get_text() for t in boxes.axes[0].get_yticklabels()]  # sorted by median, the ends shown
    assert set(names) <= set(labels["name"]) and len(names) == min(labels["label"].nunique(), 2 * gf.STRUCTURES_SHOWN)
    label_rows = _csv_rows(demo / "reports" / "dice_per_label.csv")
    for method in methods:
        segments = next(c for c in boxes.axes[0].collections if c.get_gid() == f"median:{method}").get_segments()
        assert len(segments) == len(names)
        for name, segment in zip(names, segments):
            values = [float(r["dice"]) for r in label_rows if r["method"] == method and r["name"] == name]
            assert segment[0][0] == pytest.approx(statistics.median(values), abs=1e-5) if values else \
                math.isnan(segment[0][0])
    matrix = gf.dice_matrix_figure(pairs, methods)
    for ax, method in zip(matrix.axes, methods):
        shown = np.asarray(ax.images[0].get_array().filled(np.nan))
        order = [t.get_text() for t in ax.get_yticklabels()]
        for r in ok:
            if r["method"] == method:
                a, b = order.index(r["moving"]), order.index(r["fixed"])
                assert shown[a, b] == shown[b, a] == pytest.approx(float(r["dice_mean"]))
        assert np.isnan(np.diag(shown)).all()


def _rows(errors=()):
    rows = []
    for fixed, moving, dice in [("sub-01", "sub-02", 0.8), ("sub-01", "sub-03", 0.6), ("sub-02", "sub-03", 0.7)]:
        rows.append({"method": "syn", "fixed": fixed, "moving": moving, "dice_mean": dice, "folding_percent": 0.0,
                     "inverse_consistency_mm": 0.1, "seconds": 10.0,
                     "error": "RuntimeError: boom (at x.py:1)" if (fixed, moving) in errors else ""})
    return rows


def test_group_page_lists_failed_pairs_and_worst_pairs_first(tmp_path):
    from smgic_pydra.reports import write_reports

    (tmp_path / "dataset_description.json").write_text("{}")
    paths = write_reports(_rows(errors=[("sub-01", "sub-02")]), [], tmp_path)
    html = paths["index"].read_text()
    failed = html[html.index('id="failed-table"'):]
    assert "sub-02</td><td>sub-01</td><td class=\"error\">RuntimeError: boom (at x.py:1)" in failed
    worst = html[html.index('id="worst"'):html.index('id="subjects"')]
    # lowest Dice first; the failed pair is not among them
    assert worst.index("sub-03 &rarr; sub-01") < worst.index("sub-03 &rarr; sub-02")
    assert "sub-02 &rarr; sub-01" not in worst
    assert 'id="dice-matrix"' in html  # every unordered pair of three subjects


def test_dice_matrix_only_for_all_pairs_and_clusters_groups_together():
    pairs = pd.DataFrame(_rows())
    assert gf.is_all_pairs(pairs) and not gf.is_all_pairs(pairs.iloc[:2])
    # two groups {a, b, c} and {d, e}: high Dice inside a group, low across
    subjects = ["a", "d", "b", "e", "c"]
    group = {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1}
    rows = [{"method": "m", "fixed": f, "moving": m, "dice_mean": 0.9 if group[f] == group[m] else 0.3, "error": ""}
            for i, f in enumerate(subjects) for m in subjects[i + 1:]]
    names, matrix = gf.dice_matrix(pd.DataFrame(rows), "m")
    order = [names[i] for i in gf.cluster_order(matrix)]
    labels = [group[s] for s in order]
    assert labels in ([0, 0, 0, 1, 1], [1, 1, 0, 0, 0])


def test_field_of_view_is_the_network_box_and_slab_jacobian_is_the_closed_form():
    # native grid: 1 mm, 40^3 voxels, LPS-ordered axes; network grid: 10^3 voxels of 2 mm centred at the origin
    native = np.diag([-1.0, -1.0, 1.0, 1.0])
    native[:3, 3] = [20.0, 20.0, -20.0]
    net = np.diag([2.0, 2.0, 2.0, 1.0])
    net[:3, 3] = -9.0
    vol = canonical(np.zeros((40, 40, 40), np.float32), native)
    fov = field_of_view_slices(vol, {"z": [20], "x": [20], "y": [20]}, net, (10, 10, 10))
    # the network sees RAS mm [-10, 10] on every axis: canonical voxel centres at -19.5+...; 20 of them inside
    world = vol.affine[:3, 3][0] + np.arange(40) * vol.affine[0, 0]
    inside = (world >= -10) & (world <= 10)
    assert fov["z"][0].sum() == inside.sum() ** 2 and fov["x"][0][:, 0].sum() == 0
    # a linear displacement u = A x has det(I + A) everywhere
    a = np.array([[0.1, 0.02, 0.0], [0.0, -0.2, 0.05], [0.03, 0.0, 0.3]])
    zooms = np.diag([1.0, 2.0, 1.5, 1.0])
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in (12, 10, 8)], indexing="ij"), axis=-1)
    disp = (ijk @ zooms[:3, :3].T) @ a.T
    for det in centre_jacobians(canonical(disp, zooms), (6, 5, 4)):
        assert det == pytest.approx(np.linalg.det(np.eye(3) + a), rel=1e-9)
