"""The HTML quality report in a real browser: axe-core audit and phone layout."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_checks_rules import clean_world, plant_all, write_world  # noqa: E402

from gar_analysis.checks import quality_report_html, run_checks  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    frames = clean_world()
    plant_all(frames)
    d = tmp_path_factory.mktemp("q")
    html = quality_report_html(run_checks(write_world(frames, d / "data")), title="Qualité des données",
                               simulated=True)
    path = d / "qualite.html"
    path.write_text(html, encoding="utf-8")
    return path




@pytest.mark.parametrize("width", [390, 1280])
def test_quality_report_axe_and_layout(browser, report, width):
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    page = browser.new_page(viewport={"width": width, "height": 900})
    external = []
    page.route("**/*", lambda r: (r.continue_() if r.request.url.startswith(("file:", "data:", "about:"))
                                  else (external.append(r.request.url), r.abort())))
    try:
        page.goto(report.as_uri())
        results = axe_module.Axe().run(page)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    finally:
        page.close()
    bad = [(v["id"], v["impact"]) for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, bad
    assert overflow <= 1, "la page déborde horizontalement (les tableaux doivent défiler dans leur cadre)"
    assert not external
