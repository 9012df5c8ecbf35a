"""The group page's "Dice per structure" with an atlas of 116 structures: sorted by median, the lowest and
highest shown with the axis and legend on the first screen (headless Chromium), every structure in a table."""

import base64
import re

import numpy as np
import pytest

from browser_check import CHROMIUM, browser_or_skip

from smgic_pydra.reports import write_reports

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

N_STRUCTURES = 116
METHODS = ("smgicnet", "synquick", "identity")


def _cohort():
    """Pair rows and per-label Dice rows of 5 subjects (10 pairs) x 3 methods x 116 structures (seeded)."""
    rng = np.random.default_rng(7)
    subjects = [f"sub-{i:02d}" for i in range(1, 6)]
    pairs = [(f, m) for i, f in enumerate(subjects) for m in subjects[i + 1:]]
    base = rng.uniform(0.3, 0.85, N_STRUCTURES)
    rows, labels = [], []
    for k, method in enumerate(METHODS):
        for fixed, moving in pairs:
            dice = np.clip(base - 0.15 * k + rng.normal(0, 0.05, N_STRUCTURES), 0, 1)
            rows.append({"method": method, "fixed": fixed, "moving": moving, "dice_mean": float(dice.mean()),
                         "folding_percent": 0.0, "inverse_consistency_mm": 0.1, "seconds": 5.0, "error": ""})
            labels += [{"method": method, "fixed": fixed, "moving": moving, "label": label + 1,
                        "name": f"Structure_{label + 1:03d}", "dice": float(d)} for label, d in enumerate(dice)]
    return rows, labels


def _independent_order(labels, method):
    """Structure names by their numpy median Dice of ``method`` (then label), and those medians and quartiles."""
    values = {}
    for r in labels:
        if r["method"] == method:
            values.setdefault((r["label"], r["name"]), []).append(r["dice"])
    stats = {name: (np.median(v), *np.percentile(v, [25, 75])) for (label, name), v in values.items()}
    order = sorted(values, key=lambda key: (np.median(values[key]), key[0]))
    return [name for _, name in order], stats


def _figure_svg(html: str) -> str:
    section = html[html.index('<h2 id="dice-per-structure">'):]
    return base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', section).group(1)).decode()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    rows, labels = _cohort()
    out = tmp_path_factory.mktemp("structures")
    (out / "dataset_description.json").write_text("{}")
    return write_reports(rows, labels, out)["index"], labels


def test_structures_sorted_by_median_lowest_and_highest_shown_all_in_the_table(page):
    path, labels = page
    html = path.read_text()
    order, stats = _independent_order(labels, "smgicnet")
    svg = _figure_svg(html)
    # the figure names the 8 lowest and 8 highest structures, in that order, and says how many are left out
    shown = re.findall(r"Structure_\d{3}", svg)
    assert shown == order[:8] + order[-8:]
    assert f"{N_STRUCTURES - 16} structures between" in svg
    assert "8 structures with the lowest and the 8 with the highest median Dice of SM-GICNet (of 116" in html
    # the table lists every structure in the same order, with numpy's median [Q1, Q3] of SM-GICNet
    start = html.index('id="dice-per-structure-table"')
    table = html[start:html.index("</table>", start)]
    listed = re.findall(r'<tr><td>(Structure_\d{3})</td><td class="num">(\d+)</td><td class="num">([^<]+)</td>', table)
    assert [name for name, _, _ in listed] == order
    for name, n, cell in listed:
        median, q1, q3 = stats[name]
        assert n == "10" and cell == f"{median:.3f} [{q1:.3f}, {q3:.3f}]"


def test_dice_per_structure_axis_and_legend_on_the_first_screen(page, tmp_path):
    sync_api = browser_or_skip()
    path, _ = page
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            view = browser.new_page(viewport={"width": 1200, "height": 900})
            view.goto(path.absolute().as_uri() + "#dice-per-structure", wait_until="load")
            view.locator("#dice-per-structure").scroll_into_view_if_needed()
            view.evaluate("document.getElementById('dice-per-structure').scrollIntoView()")
            heading = view.locator("#dice-per-structure").bounding_box()
            figure = view.locator("#dice-per-structure + figure img").bounding_box()
            scroller = view.locator("#dice-per-structure-table").locator("xpath=..").bounding_box()
            rows = view.locator("#dice-per-structure-table tbody tr").count()
            view.screenshot(path=str(tmp_path / "dice_per_structure.png"))
        finally:
            browser.close()
    # the whole figure (legend above the boxes, Dice axis at its top and bottom) fits under its heading
    assert heading["y"] >= 0 and figure["y"] > heading["y"]
    assert figure["height"] > 200 and figure["y"] + figure["height"] <= 900
    # every structure is in the table, which scrolls in a box of a few hundred pixels
    assert rows == N_STRUCTURES and scroller["height"] < 450
