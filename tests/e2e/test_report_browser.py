"""The report of the tiny demo run, rendered in headless Chromium: every image loads, every section shows its content.

Chromium is Debian's package, installed with apt-get when missing; the test skips only when that is impossible. A
full-page screenshot is saved with the test output (its path is printed).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.browser import Browser, ensure_chromium
from tests.e2e.workflow import TINY_DEMO, snakemake

pytestmark = pytest.mark.e2e

# What the page reports of itself: images (load state) and sections (their tables and figures).
PAGE_STATE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({src: i.src.slice(0, 30), complete: i.complete, width: i.naturalWidth,
                                                 section: i.closest('section') ? i.closest('section').id : null})),
  sections: Array.from(document.querySelectorAll('section')).map(s => ({id: s.id,
      tables: s.querySelectorAll('table').length, figures: s.querySelectorAll('figure img').length,
      rows: s.querySelectorAll('tbody tr').length})),
  nav: Array.from(document.querySelectorAll('nav a')).map(a => a.getAttribute('href')),
  external: performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('file:')),
  links: Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))
})"""


@pytest.fixture(scope="module")
def chromium() -> str:
    executable, why = ensure_chromium()
    if executable is None:
        pytest.skip(f"chromium cannot be installed here: {why}")
    return executable


def test_report_renders_in_chromium(tiny_run, chromium, tmp_path):
    assert tiny_run.result.returncode == 0, tiny_run.result.stderr[-4000:]
    page = tiny_run.workdir / "results" / "report" / "index.html"
    with Browser(chromium, width=1280, height=900) as browser:
        browser.open(page.as_uri())
        state = json.loads(browser.evaluate(PAGE_STATE))
        screenshot = browser.screenshot(tmp_path / "report.png", full_page=True)
    print(f"report screenshot: {screenshot}")

    sections = {s["id"]: s for s in state["sections"]}
    # a section per stage that ran (as summary.json says), none for the others
    summary = json.loads((tiny_run.workdir / "results" / "report" / "summary.json").read_text())
    expected = {"glance", "provenance", *(key for key in ("clip", "cams", "masks", "seg") if summary.get(key))}
    if {"clims", "puzzlecam"} <= set(summary.get("cams", {})) or {"clims", "cam"} <= set(summary.get("cams", {})):
        expected.add("figures")
    assert set(sections) == expected
    assert state["nav"] == [f"#{s['id']}" for s in state["sections"]]
    for section in sections.values():
        assert section["tables"] + section["figures"] > 0, f"section {section['id']} shows nothing"
        assert section["tables"] == 0 or section["rows"] > 0, f"section {section['id']} has an empty table"
    assert sections["cams"]["figures"] >= 2 and sections["cams"]["tables"] >= 3  # curves, bars; mIoU, per class, FP
    assert sections["figures"]["figures"] >= 1 and sections["provenance"]["tables"] >= 3
    if "masks" in sections:
        assert sections["masks"]["figures"] >= 1 and sections["masks"]["tables"] >= 1
    if "seg" in sections:
        assert sections["seg"]["tables"] >= 1

    assert state["images"], "no image on the page"
    for image in state["images"]:
        assert image["complete"] and image["width"] > 0, f"image not loaded: {image}"
        assert image["src"].startswith("data:image/png;base64,")
    assert state["external"] == [] and all(not link.startswith(("http:", "https:", "//")) for link in state["links"])
    assert screenshot.stat().st_size > 10_000


def test_snakemake_report_collects_the_annotated_outputs(tiny_run, tmp_path):
    assert tiny_run.result.returncode == 0, tiny_run.result.stderr[-4000:]
    target = tmp_path / "snakemake_report.html"
    result = snakemake(tiny_run.workdir, TINY_DEMO, "--report", str(target))
    assert result.returncode == 0, result.stderr[-4000:]
    text = target.read_text(encoding="utf-8")
    for category in ('"Report"', '"CAMs"', '"CLIP"'):
        assert category in text, f"category {category} missing from the Snakemake report"
    assert "The results page of this run" in text  # a caption from workflow/report/

