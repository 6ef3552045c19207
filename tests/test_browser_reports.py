"""Reports in a real browser (Debian's headless Chromium via Playwright) and the axe-core audit.

One dashboard per audience is produced from the session sample, then opened at
390×844 (phone) and 1280×800 (laptop): no horizontal overflow, headline
figures and charts present, no network request; at 320 px, with and without
the WCAG text-spacing style, no horizontal overflow and no clipped text.
The portal (index.html) is searched and its links followed, as a reader would.
Screenshots are saved in
``test-artifacts/``. axe-core audits the portal, the run log and every report: zero
violations of impact ``serious`` or ``critical``; all findings are saved as JSON
beside the screenshots. Skipped when Chromium or Playwright is absent
(``make browser`` installs Chromium).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CHROMIUM, _shared_dir
from gar_analysis import config

pytestmark = pytest.mark.browser

VIEWPORTS = {"telephone": {"width": 390, "height": 844}, "ordinateur": {"width": 1280, "height": 800}}
ARTIFACTS = config.ROOT / "test-artifacts"
#: One territory per audience (editeur: the first publisher of the catalogue).
TERRITORIES = {"national": "FR", "region_academique": "53", "academie": "14", "region": "84",
               "departement": "35", "editeur": None}


@pytest.fixture(scope="session")
def browser_run(sample_build, tmp_path_factory):
    """Run the dashboard once for one territory of each audience (shared by the xdist workers)."""
    from gar_analysis.reporting.batch import editeur_territories, plan_batch, run_batch

    if not (config.REPORT_NOTEBOOKS_DIR / "tableau_de_bord.ipynb").exists():
        pytest.skip("carnet tableau_de_bord absent")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium absent ({CHROMIUM}) : lancez « make browser ».")
    with _shared_dir(tmp_path_factory, "browser_reports") as (folder, todo):
        if todo:
            jobs = []
            for audience, code in TERRITORIES.items():
                code = code or next(iter(editeur_territories(sample_build.processed_dir)))
                jobs += plan_batch(audience, only=[code], notebook="editeur" if audience == "editeur" else "tableau_de_bord",
                                   processed_dir=sample_build.processed_dir, run_id="navigateur")
            run_batch(jobs, out_dir=folder, run_id="navigateur", processed_dir=sample_build.processed_dir,
                      progress=False, timeout=600)
            (folder / ".done").write_text("ok")
    run_dir = folder / "navigateur"
    index = json.loads((run_dir / "index.json").read_text(encoding="utf-8"))
    return run_dir, index


def _open(browser, path: Path, viewport: dict):
    page = browser.new_page(viewport=viewport)
    external = []

    def guard(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "about:")):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    page.route("**/*", guard)
    page.goto(path.as_uri())
    return page, external


def test_every_audience_report_was_produced(browser_run):
    run_dir, index = browser_run
    assert {r["audience"] for r in index["reports"]} == set(TERRITORIES)
    failed = {r["audience"]: r["erreur"][:300] for r in index["reports"] if r["statut"] != "ok"}
    assert not failed
    for r in index["reports"]:
        size = (run_dir / r["html"]).stat().st_size
        assert size < 3 * 1024 * 1024, (r["html"], size)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_reports_fit_the_screen_with_figures_and_charts(browser, browser_run, viewport):
    run_dir, index = browser_run
    ARTIFACTS.mkdir(exist_ok=True)
    pages = [("index", run_dir / "index.html"), ("journal", run_dir / "journal.html")] + [(f"{r['audience']}-{r['territoire']}", run_dir / r["html"])
                                                   for r in index["reports"] if r["statut"] == "ok"]
    for name, path in pages:
        page, external = _open(browser, path, VIEWPORTS[viewport])
        try:
            widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth,"
                                   " document.body.scrollWidth]")
            page.screenshot(path=str(ARTIFACTS / f"{name}-{viewport}.png"), full_page=True)
            assert widths[0] <= widths[1] + 1 and widths[2] <= widths[1] + 1, (name, widths)
            assert external == [], (name, external)
            assert page.locator("h1").count() == 1
            assert page.locator("main").count() == 1 and page.locator("footer").count() == 1
            if name not in ("index", "journal"):
                assert page.locator(".gar-kpis li, .kpi").count() >= 1, name  # headline figures
                imgs = page.locator("figure img, figure svg[role=img]")
                assert imgs.count() >= 1, name  # charts (inline SVG, or PNG for a very heavy one)
                for i in range(imgs.count()):
                    img = imgs.nth(i)
                    assert len(img.get_attribute("alt") or img.get_attribute("aria-label") or "") > 20
                    assert img.evaluate("e => e.tagName.toLowerCase() === 'svg' || (e.complete && e.naturalWidth > 0)")
                    box = img.bounding_box()
                    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS[viewport]["width"] + 1
                assert "Provenance" in page.locator("footer").inner_text()
        finally:
            page.close()


#: WCAG 1.4.12 / RGAA 10.12 text spacing, applied as a user style sheet would.
TEXT_SPACING = ("* { line-height: 1.5 !important; letter-spacing: 0.12em !important;"
                " word-spacing: 0.16em !important; } p { margin-bottom: 2em !important; }")
#: Elements whose text is cut off: hidden overflow (or ellipsis) with more content than room
#: (visually hidden text for screen readers, 1 px by design, excepted).
CLIPPED_JS = """[...document.querySelectorAll('body *')].filter(e => {
  const r = e.getBoundingClientRect();
  if (r.width <= 1 || r.height <= 1 || e.closest('.visuellement-cache')) return false;
  const s = getComputedStyle(e);
  const hides = [s.overflow, s.overflowX, s.overflowY].includes('hidden') || s.textOverflow === 'ellipsis';
  return hides && e.innerText && e.innerText.trim()
         && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1);
}).map(e => e.tagName + '.' + e.className)"""


def test_reports_reflow_at_320_px_and_keep_text_with_spacing(browser, browser_run):
    """RGAA 10.11 (320 CSS px without horizontal scrolling) and 10.12 (text spacing without loss)."""
    run_dir, index = browser_run
    pages = [("index", run_dir / "index.html"), ("journal", run_dir / "journal.html")] + [(f"{r['audience']}-{r['territoire']}", run_dir / r["html"])
                                                   for r in index["reports"] if r["statut"] == "ok"]
    for name, path in pages:
        page, _ = _open(browser, path, {"width": 320, "height": 640})
        try:
            for spacing in (False, True):
                if spacing:
                    page.add_style_tag(content=TEXT_SPACING)
                widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth,"
                                       " document.body.scrollWidth]")
                assert widths[0] <= widths[1] + 1 and widths[2] <= widths[1] + 1, (name, spacing, widths)
                assert page.evaluate(CLIPPED_JS) == [], (name, spacing)
            page.screenshot(path=str(ARTIFACTS / f"{name}-320-espacement.png"), full_page=True)
        finally:
            page.close()


def test_index_works_with_the_keyboard(browser, browser_run):
    run_dir, index = browser_run
    page, _ = _open(browser, run_dir / "index.html", VIEWPORTS["telephone"])
    try:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.classList.contains('lien-evitement')")
        box = page.locator(".lien-evitement").bounding_box()
        assert box["y"] >= 0  # the skip link becomes visible on focus
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#contenu"
        # every report link of the portal (publishers' excepted) and the run log are reachable with Tab
        links = page.locator("main a[href$='.html']")
        assert links.count() == sum(1 for r in index["reports"] if r["html"] and r["audience"] != "editeur") + 1
        hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
        reached = set()
        for _ in range(80):
            page.keyboard.press("Tab")
            href = page.evaluate("document.activeElement.closest('main') && document.activeElement.getAttribute('href')")
            if href and href.endswith(".html"):
                reached.add(href)
        assert reached == hrefs
    finally:
        page.close()


def test_axe_no_serious_or_critical_violation(browser, browser_run):
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    run_dir, index = browser_run
    ARTIFACTS.mkdir(exist_ok=True)
    axe = axe_module.Axe()
    pages = [("index", run_dir / "index.html"), ("journal", run_dir / "journal.html")] + [(f"{r['audience']}-{r['territoire']}", run_dir / r["html"])
                                                   for r in index["reports"] if r["statut"] == "ok"]
    serious, summary = [], {}
    for name, path in pages:
        page, _ = _open(browser, path, VIEWPORTS["ordinateur"])
        try:
            results = axe.run(page)
        finally:
            page.close()
        violations = results.response["violations"]
        summary[name] = [{"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": len(v["nodes"]),
                          "exemple": v["nodes"][0]["html"][:200] if v["nodes"] else ""} for v in violations]
        serious += [(name, v["id"], v["impact"], v["nodes"][0]["html"][:200] if v["nodes"] else "")
                    for v in violations if v["impact"] in ("serious", "critical")]
    (ARTIFACTS / "axe-violations.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1),
                                                    encoding="utf-8")
    assert not serious, serious
    assert summary["index"] == [] and summary["journal"] == [], (summary["index"], summary["journal"])


def test_print_stylesheet_keeps_content(browser, browser_run):
    run_dir, index = browser_run
    r = next(r for r in index["reports"] if r["statut"] == "ok")
    page, _ = _open(browser, run_dir / r["html"], VIEWPORTS["ordinateur"])
    try:
        page.emulate_media(media="print")
        assert page.locator(".lien-evitement").evaluate("e => getComputedStyle(e).display") == "none"
        assert page.locator("main").is_visible() and page.locator("footer").is_visible()
    finally:
        page.close()


def _visible_entries(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('.gar-entree[id]')].filter(e => e.offsetParent !== null)"
                         ".map(e => e.id)")


def test_portal_search_finds_territories_offline_and_explains_publishers(browser, browser_run):
    """Search by name and by code from file://; a publisher's name gives the sentence, never a link."""
    run_dir, index = browser_run
    page, external = _open(browser, run_dir / "index.html", VIEWPORTS["telephone"])
    try:
        box = page.locator("#recherche")
        assert box.is_visible()  # shown by the inline script
        every = _visible_entries(page)
        assert {"t-national-FR", "t-academie-14", "t-departement-35", "t-region_academique-53"} <= set(every)
        box.fill("rennes")
        shown = _visible_entries(page)
        assert "t-academie-14" in shown and "t-national-FR" not in shown and "t-region-84" not in shown
        assert "territoire" in page.locator("#recherche-statut").inner_text()
        box.fill("35")
        shown = _visible_entries(page)
        assert "t-departement-35" in shown and "t-region-84" not in shown and "t-national-FR" not in shown
        box.fill("AUVERGNE-Rhone")  # case and accents folded
        assert "t-region-84" in _visible_entries(page)
        publisher = next(r["nom"] for r in index["reports"] if r["audience"] == "editeur")
        box.fill(publisher)
        status = page.locator("#recherche-statut").inner_text()
        assert "chaque éditeur reçoit son propre lien" in status, status
        assert _visible_entries(page) == []
        assert page.locator("a[href*='editeur/']").count() == 0
        box.fill("")
        assert _visible_entries(page) == every
        assert external == []
    finally:
        page.close()


def test_portal_links_lead_to_every_audience_and_back(browser, browser_run):
    """Follow each portal link (the journal's for the publisher): the page opens, its breadcrumb leads home."""
    run_dir, index = browser_run
    page, external = _open(browser, run_dir / "index.html", VIEWPORTS["ordinateur"])
    try:
        reached = set()
        for r in index["reports"]:
            if r["statut"] != "ok":
                continue
            start = "journal.html" if r["audience"] == "editeur" else "index.html"
            page.goto((run_dir / start).as_uri())
            link = page.locator(f"main a[href='{r['html']}']").first
            link.click()
            page.wait_for_load_state()
            assert page.url.endswith(r["html"]), (r["html"], page.url)
            assert page.locator("h1").count() == 1
            crumbs = page.locator("nav.fr-breadcrumb a")
            assert crumbs.first.inner_text() == "Accueil"
            if r["audience"] != "editeur":
                territory = crumbs.nth(1).get_attribute("href")
                assert territory == f"../index.html#t-{r['audience']}-{r['territoire']}"
            crumbs.first.click()
            page.wait_for_load_state()
            assert page.url.endswith("/index.html") and page.locator("#recherche").count() == 1
            reached.add(r["audience"])
        assert reached == set(TERRITORIES)
        assert external == []
    finally:
        page.close()


def test_pages_use_the_vendored_dsfr(browser, browser_run):
    from gar_analysis.reporting import dsfr

    run_dir, index = browser_run
    if not dsfr.available():
        pytest.skip("DSFR non installé (make install le télécharge depuis le registre npm)")
    assert (run_dir / "static/dsfr/dsfr.css").is_file()
    r = next(r for r in index["reports"] if r["statut"] == "ok")
    for path in (run_dir / "index.html", run_dir / "journal.html", run_dir / r["html"]):
        page, external = _open(browser, path, VIEWPORTS["telephone"])
        try:
            page.evaluate("document.fonts.ready")
            assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("Marianne"), path
            assert page.evaluate("document.fonts.check('16px Marianne')"), path
            assert page.locator(".fr-header .fr-logo").is_visible()
            assert external == []
        finally:
            page.close()


def test_fallback_shell_without_dsfr_stays_accessible(browser, browser_run, tmp_path):
    """Without the vendored DSFR (no network at install), the portal and the journal keep axe at zero and reflow."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    from gar_analysis.reporting.index import render_index, render_journal

    run_dir, index = browser_run
    pages = {"portail-secours.html": render_index(index, run_dir=run_dir, dsfr_available=False),
             "journal-secours.html": render_journal(index, dsfr_available=False)}
    for name, html in pages.items():
        assert "dsfr.css" not in html.split("<style>")[0]
        path = run_dir / name
        path.write_text(html, encoding="utf-8")
        try:
            page, external = _open(browser, path, {"width": 320, "height": 640})
            try:
                assert page.evaluate("document.body.className").startswith("gar-secours")
                widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                assert widths[0] <= widths[1] + 1, (name, widths)
                assert page.evaluate(CLIPPED_JS) == [], name
                violations = axe_module.Axe().run(page).response["violations"]
                assert violations == [], (name, [(v["id"], v["nodes"][0]["html"][:200]) for v in violations])
                assert external == []
            finally:
                page.close()
        finally:
            path.unlink()


#: Every chart text's size as displayed: computed font size × the SVG's displayed scale (viewBox → CSS px).
CHART_TEXT_JS = """[...document.querySelectorAll('figure svg[role=img]')].flatMap((svg, k) => {
  const vb = svg.viewBox.baseVal, box = svg.getBoundingClientRect();
  const scale = box.width / vb.width;
  return [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t =>
    [k, t.textContent.trim(), parseFloat(getComputedStyle(t).fontSize) * scale, box.width]);
})"""


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_chart_text_is_legible_as_displayed(browser, browser_run, viewport):
    """Issue #19: at 390 px no chart text is smaller than 12 px as displayed; at 1280 px charts keep their size."""
    run_dir, index = browser_run
    width = VIEWPORTS[viewport]["width"]
    measured = 0
    for r in index["reports"]:
        if r["statut"] != "ok":
            continue
        page, _ = _open(browser, run_dir / r["html"], VIEWPORTS[viewport])
        try:
            texts = page.evaluate(CHART_TEXT_JS)
        finally:
            page.close()
        measured += len(texts)
        small = [(r["html"], k, t, round(px, 1)) for k, t, px, _ in texts if px < 12 - 0.05]
        assert small == [], small[:10]
        if viewport == "ordinateur":  # natural size on a laptop: neither shrunk nor blown up
            assert all(px <= 20 and w <= width for _, _, px, w in texts), r["html"]
    assert measured > 50


#: Cells of the first table outside a figure, as a reader sees them.
TABLE_JS = """(() => { const w = [...document.querySelectorAll('.gar-table[id]')].find(e => !e.closest('figure'));
  return [w.id, [...w.querySelectorAll('tr')].map(tr => [...tr.querySelectorAll('th,td')].map(c => c.innerText.trim()))];
})()"""


def _plain(cell: str) -> str:
    """A displayed cell as the CSV writes it: no thousands separator, no unit, no formula prefix."""
    import re

    stripped = cell.replace("\u202f", "").replace("\xa0", "").removesuffix("%").removesuffix("€").strip()
    return stripped if re.fullmatch(r"[−-]?\d+(,\d+)?", stripped) else cell


def test_csv_download_matches_the_table_and_anchors_work(browser, browser_run, tmp_path):
    """Issue #19: one CSV per page type, downloaded as a reader would, equals the table it sits under."""
    import csv
    import io

    run_dir, index = browser_run
    checked = 0
    for r in index["reports"]:
        if r["statut"] != "ok":
            continue
        page, _ = _open(browser, run_dir / r["html"], VIEWPORTS["ordinateur"])
        try:
            anchor, rows = page.evaluate(TABLE_JS)
            link = page.locator(f"#{anchor} a.gar-csv")
            with page.expect_download() as info:
                link.click()
            download = info.value
            page_name = f"{r['audience']}-{Path(r['html']).stem}"
            assert download.suggested_filename == f"{page_name}-{anchor}.csv"
            target = tmp_path / download.suggested_filename
            download.save_as(target)
            raw = target.read_bytes()
            assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: a spreadsheet reads the accents
            got = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
            assert got[0] == rows[0]  # French headers, as displayed
            shown = [[_plain(c) for c in row] for row in rows[1:]]
            assert [[c.removeprefix("'") for c in row] for row in got[1:len(shown) + 1]] == shown
            # the permalink goes to the table, and a definition link goes to the glossary entry
            assert page.locator(f'#{anchor} a.gar-ancre[href="#{anchor}"]').count() == 1
            page.goto((run_dir / r["html"]).as_uri() + f"#{anchor}")
            assert page.evaluate(f"document.getElementById('{anchor}').getBoundingClientRect().top") < 200
            checked += 1
        finally:
            page.close()
    assert checked == len(TERRITORIES)


def test_glossary_and_methodology_pass_axe_and_fit_a_phone(browser, tmp_path):
    """Issue #19: the reference pages have zero axe-core violations and reflow at 390 px."""
    from gar_analysis.reporting.reference_pages import write_reference_pages

    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    axe = axe_module.Axe()
    for path in write_reference_pages(tmp_path):
        page, external = _open(browser, path, VIEWPORTS["telephone"])
        try:
            widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1] + 1, (path.name, widths)
            violations = axe.run(page).response["violations"]
            assert external == []
        finally:
            page.close()
        assert [(v["id"], v["impact"], v["nodes"][0]["html"][:150]) for v in violations] == [], path.name
