"""Open an HTML report in headless Chromium (Debian's ``chromium``, driven by playwright without a
browser download) and check it as a person would see it.

:func:`check_report` asserts: no console error, no page error and no failed request while loading;
every ``<img>`` decoded with a non-zero size on the page; every ``<object>`` (reportlet) loaded an
SVG document drawn with a non-zero size; every linked figure (``.svg`` / ``.png``) opens on its own
with a non-zero size; the screenshots of the page and of each reportlet are not blank.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def browser_or_skip():
    """The playwright sync API, or skip the test when playwright or Debian's chromium is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium not installed (scripts/setup-env installs it)")
    return sync_api


def not_blank(png: bytes) -> bool:
    """True when a screenshot has more than 1 % of its pixels away from its most common colour and
    some contrast (grey-level standard deviation above 5)."""
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    values, counts = np.unique(grey, return_counts=True)
    background = values[np.argmax(counts)]
    return float(np.mean(np.abs(grey - background) > 8)) > 0.01 and float(grey.std()) > 5.0


@dataclass
class PageCheck:
    """What a check saw: images and reportlets drawn, figure links opened, problems found."""

    images: int = 0
    reportlets: int = 0
    linked_figures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _watch(page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))


IMAGE_SIZES = """() => [...document.images].map(i => ({src: i.src.slice(0, 60), complete: i.complete,
  natural: i.naturalWidth * i.naturalHeight,
  shown: i.getBoundingClientRect().width * i.getBoundingClientRect().height}))"""
SVG_SIZE = """() => { const r = document.documentElement; const b = r.getBoundingClientRect();
  return {tag: r.tagName.toLowerCase(), area: b.width * b.height, children: r.childElementCount}; }"""


def check_report(path: Path, screenshot: Path | None = None, width: int = 1200) -> PageCheck:
    """Open ``path`` in headless Chromium, check it (see the module docstring) and return what it saw."""
    sync_api = browser_or_skip()
    path = Path(path).absolute()
    seen = PageCheck()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            _watch(page, seen.problems)
            page.goto(path.as_uri(), wait_until="load")
            for image in page.evaluate(IMAGE_SIZES):
                seen.images += 1
                if not (image["complete"] and image["natural"] > 0 and image["shown"] > 0):
                    seen.problems.append(f"image not shown: {image}")
            frames = {frame.url: frame for frame in page.frames}
            for element in page.query_selector_all("object"):
                seen.reportlets += 1
                box = element.bounding_box()
                frame = frames.get(element.evaluate("el => el.data"))  # the object's SVG document
                svg = frame.evaluate(SVG_SIZE) if frame is not None else None
                if not box or box["width"] * box["height"] <= 0 or not svg or svg["tag"] != "svg" or svg["area"] <= 0:
                    seen.problems.append(f"reportlet not shown: {element.get_attribute('data')} box={box} svg={svg}")
                    continue
                element.scroll_into_view_if_needed()
                if not not_blank(element.screenshot()):
                    seen.problems.append(f"reportlet blank: {element.get_attribute('data')}")
            shot = page.screenshot(full_page=True)
            if screenshot is not None:
                Path(screenshot).write_bytes(shot)
            if not not_blank(shot):
                seen.problems.append("page screenshot is blank")
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            figures = sorted({h for h in hrefs if h.startswith("file:") and h.rsplit(".", 1)[-1] in ("svg", "png")})
            for href in figures:
                seen.linked_figures.append(href)
                figure_page = browser.new_page(viewport={"width": 900, "height": 700})
                _watch(figure_page, seen.problems)
                try:
                    figure_page.goto(href, wait_until="load")
                except sync_api.Error as exc:
                    seen.problems.append(f"linked figure not opened: {href}: {exc.message.splitlines()[0]}")
                    figure_page.close()
                    continue
                if href.endswith(".svg"):
                    size = figure_page.evaluate(SVG_SIZE)
                    if size["tag"] != "svg" or size["area"] <= 0 or size["children"] == 0:
                        seen.problems.append(f"linked figure not drawn: {href} {size}")
                if not not_blank(figure_page.screenshot()):
                    seen.problems.append(f"linked figure blank: {href}")
                figure_page.close()
            for href in {h for h in hrefs if h.startswith("file:") and h not in figures}:
                if not Path(unquote(urlparse(href).path)).exists():
                    seen.problems.append(f"broken link: {href}")
        finally:
            browser.close()
    return seen


def hover_changes(path: Path, selector: str, width: int = 1200) -> bool:
    """True when the first element matching ``selector`` looks different while the pointer is over
    it (the before / after flicker of a registration reportlet)."""
    sync_api = browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(Path(path).absolute().as_uri(), wait_until="load")
            element = page.query_selector(selector)
            element.scroll_into_view_if_needed()
            still = element.screenshot()
            element.hover()
            page.wait_for_timeout(700)  # the flicker animation lasts 1 s
            return element.screenshot() != still
        finally:
            browser.close()
