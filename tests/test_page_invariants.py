"""Every rendered page is checked as its reader would check it (issue #14).

The sample batch is rendered once for one territory of every audience; the HTML is then read
like a DRANE would read it: the units a page lists belong to its territory, a flagged unit lies
outside the limits shown on its row, an alt text's numbers are its table's, the same figure for
the same territory is the same on every page, no cost is computed over a partial year, and no
count of people from 1 to threshold − 1 is printed in the clear.
"""
from __future__ import annotations

import re

import pytest

from gar_analysis import config
from gar_analysis.reporting.batch import editeur_territories, plan_batch, run_batch
from gar_analysis.territories import departements

bs4 = pytest.importorskip("bs4")

TERRITORIES = {"national": ["FR"], "academie": ["04", "14"], "region_academique": ["53"], "region": ["53"],
               "departement": ["35"]}
NNBSP = "\u202f"


def _number(text: str) -> float | None:
    """Read a French number of a cell (``12 345,6``, ``12,3 %``); None for ``c``, ``–`` or text."""
    t = text.replace(NNBSP, "").replace("\xa0", "").replace(" ", "").replace("%", "").replace("€", "")
    t = t.replace("−", "-").replace(",", ".")
    try:
        return float(t)
    except ValueError:
        return None


def _tables(html: str) -> list[dict]:
    """Every table of a page: caption, headers, rows of cell texts."""
    soup = bs4.BeautifulSoup(html, "html.parser")
    out = []
    for table in soup.find_all("table"):
        cap = table.find("caption")
        head = [th.get_text(" ", strip=True) for th in table.find("tr").find_all(["th", "td"])]
        rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in table.find_all("tr")[1:]]
        out.append({"caption": cap.get_text(" ", strip=True) if cap else "", "head": head,
                    "rows": [dict(zip(head, r)) for r in rows if len(r) == len(head)]})
    return out


def _alts(html: str) -> list[str]:
    soup = bs4.BeautifulSoup(html, "html.parser")
    return ([img.get("alt", "") for img in soup.find_all("img")]
            + [svg.get("aria-label", "") for svg in soup.find_all("svg", attrs={"role": "img"})])


@pytest.fixture(scope="module")
def pages(sample_build, tmp_path_factory):
    """Render one territory of each audience (and one publisher) from the sample; return {(audience, file): html}."""
    out_dir = tmp_path_factory.mktemp("pages")
    jobs = []
    for audience, codes in TERRITORIES.items():
        jobs += plan_batch(audience, only=codes, processed_dir=sample_build.processed_dir, run_id="inv")
    first_publisher = next(iter(editeur_territories(sample_build.processed_dir)))
    jobs += plan_batch("editeur", only=[first_publisher], processed_dir=sample_build.processed_dir, run_id="inv")
    result = run_batch(jobs, out_dir=out_dir, run_id="inv", processed_dir=sample_build.processed_dir,
                       progress=False, timeout=600)
    assert not [(e["audience"], e["notebook"], e["erreur"][:300]) for e in result.failures]
    return {(e["audience"], e["html"]): (result.run_dir / e["html"]).read_text(encoding="utf-8")
            for e in result.entries}


def _page(pages, audience: str, name: str) -> str:
    hits = [html for (a, f), html in pages.items() if a == audience and f.endswith(name)]
    assert hits, f"page absente : {audience}/{name}"
    return hits[0]


def test_units_on_a_territory_page_belong_to_it(pages):
    deps = departements()
    names = dict(zip(deps.code_departement, deps.nom_departement))
    for aca in TERRITORIES["academie"]:
        own = {names[c] for c in deps.loc[deps.code_academie == aca, "code_departement"]}
        foreign = set(names.values()) - own
        for page in (f"academie/{aca}.html", f"academie/ecarts_territoriaux-{aca}.html"):
            html = _page(pages, "academie", page)
            listed = {r["Nom"] for t in _tables(html) if t["head"][:1] == ["Nom"] for r in t["rows"]}
            assert listed, page
            assert not listed & foreign, (page, listed & foreign)


def test_a_flagged_unit_lies_outside_the_limits_of_its_row(pages):
    seen = 0
    for (audience, f), html in pages.items():
        for t in _tables(html):
            low = next((h for h in t["head"] if h.startswith("Limite basse")), None)
            high = next((h for h in t["head"] if h.startswith("Limite haute")), None)
            if not (low and high and "Position" in t["head"]):
                continue
            value = next(h for h in t["head"] if h.startswith("Valeur") and "rétrécie" not in h)
            for r in t["rows"]:
                v, lo, hi = _number(r[value]), _number(r[low]), _number(r[high])
                if v is None or lo is None or hi is None:
                    continue
                seen += 1
                if "au-dessus" in r["Position"]:
                    assert v > hi, (f, r)
                elif "en dessous" in r["Position"]:
                    assert v < lo, (f, r)
                else:
                    assert lo <= v <= hi or round(v, 1) in (round(lo, 1), round(hi, 1)), (f, r)
                if "%" in value:
                    assert 0 <= lo <= hi <= 100, (f, r)
    assert seen > 0


def test_forest_alt_texts_say_the_numbers_of_their_tables(pages):
    html = _page(pages, "academie", "facteurs_de_succes-04.html")
    alts = " ".join(_alts(html))
    checked = 0
    for t in _tables(html):
        if "IC 95 % bas" not in t["head"] or "Facteur" not in t["head"]:
            continue
        est = t["head"][1]
        for r in t["rows"]:
            assert f"{r['Facteur']} : {r[est]} (de {r['IC 95 % bas']} à {r['IC 95 % haut']})" in alts, r
            checked += 1
    assert checked > 0


def _indicator(html: str, label: str) -> str:
    for t in _tables(html):
        if t["head"][:2] == ["Indicateur", "Valeur"]:
            for r in t["rows"]:
                if r["Indicateur"] == label:
                    return r["Valeur"]
    raise AssertionError(f"indicateur absent : {label}")


def _unit_row(html: str, caption_start: str, name: str) -> dict:
    for t in _tables(html):
        if t["caption"].startswith(caption_start):
            for r in t["rows"]:
                if r.get("Nom") == name:
                    return r
    raise AssertionError(f"ligne absente : {caption_start} / {name}")


def test_the_same_figure_is_the_same_on_every_page(pages):
    rennes = _page(pages, "academie", "academie/14.html")
    national = _page(pages, "national", "national/FR.html")
    bretagne = _page(pages, "region_academique", "region_academique/53.html")
    for label, column in (("Établissements du périmètre", "Établissements du périmètre (nombre)"),
                          ("Part des établissements inscrits au GAR", "Part des établissements inscrits au GAR (%)")):
        own = _indicator(rennes, label)
        for other in (national, bretagne):
            row = _unit_row(other, "Indicateurs par académie", "Rennes")
            assert _number(row[column]) == pytest.approx(_number(own), abs=0.051), (label, row[column], own)
    assert _indicator(bretagne, "Établissements du périmètre") == _indicator(rennes, "Établissements du périmètre")


def test_no_cost_over_a_partial_year(pages):
    checked = 0
    for (audience, f), html in pages.items():
        for t in _tables(html):
            if "Coût pour 1 000 accès (€)" not in t["head"]:
                continue
            for r in t["rows"]:
                months = _number(r["Mois d'accès dans les données (nombre)"])
                if months != 12:
                    assert r["Coût pour 1 000 accès (€)"] in ("z", "c"), (f, r)
                checked += 1
    assert checked > 0


PEOPLE_HEADERS = re.compile(r"^(Accès|Élèves|Enseignants|Accédants|Observé)\b.*\(nombre\)$")


def test_no_count_of_people_below_the_threshold_in_the_clear(pages):
    t_ = config.DISCLOSURE_THRESHOLD
    checked = 0
    for (audience, f), html in pages.items():
        for t in _tables(html):
            if t["caption"].startswith("Part des établissements inscrits au GAR : observé"):
                continue  # observed registered schools: institutions, shown
            for h in t["head"]:
                if not PEOPLE_HEADERS.match(h):
                    continue
                for r in t["rows"]:
                    v = _number(r[h])
                    checked += 1
                    assert v is None or v == 0 or v >= t_, (f, t["caption"], h, r[h])
    assert checked > 0


def _anchors(html: str) -> list[str]:
    soup = bs4.BeautifulSoup(html, "html.parser")
    return [e["id"] for e in soup.select(".gar-figure[id], .gar-table[id]")]


def test_every_figure_has_a_unique_anchor_the_same_for_every_territory(pages):
    """Issue #19: permalinks such as ``academie/04.html#part-inscrits`` name the same figure in every académie."""
    for (audience, f), html in pages.items():
        soup = bs4.BeautifulSoup(html, "html.parser")
        ids = [e["id"] for e in soup.find_all(id=True)]
        assert len(ids) == len(set(ids)), (f, sorted(i for i in ids if ids.count(i) > 1))
        for block in soup.select(".gar-figure, main .gar-table"):
            if block.find_parent("figure"):
                continue  # a chart's data table: the chart's anchor and CSV serve it
            assert block.get("id"), (f, block.get("aria-label") or block.find("figcaption"))
            assert block.select_one("a.gar-csv") and block.select_one(f'a.gar-ancre[href="#{block["id"]}"]'), f
    by_page = {}
    for (audience, f), html in pages.items():
        if audience == "academie":
            by_page.setdefault(f.split("/")[-1].split("-")[0] if "-" in f else "tableau_de_bord", []).append(
                _anchors(html))
    dashboards = by_page["tableau_de_bord"]
    assert len(dashboards) == 2 and "part-inscrits" in dashboards[0]
    common = set(dashboards[0]) & set(dashboards[1])
    # a section absent for lack of data may drop its tables, never rename the others
    assert common and [a for a in dashboards[0] if a in common] == [a for a in dashboards[1] if a in common]
    assert len(common) >= 0.8 * max(len(d) for d in dashboards)
