"""Glossary and methodology pages: generated from the registries, worked examples computed by the package."""
from __future__ import annotations

import re

import pytest

from gar_analysis.formatting import fmt_percent
from gar_analysis.gaps import funnel_table, observed_vs_expected
from gar_analysis.indicators import INDICATORS
from gar_analysis.reporting import reference_pages as rp

bs4 = pytest.importorskip("bs4")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lot")
    paths = rp.write_reference_pages(run_dir)
    assert [p.name for p in paths] == ["glossaire.html", "methodologie.html"]
    return {p.name: p.read_text(encoding="utf-8") for p in paths}


def test_glossary_has_one_anchored_entry_per_indicator(pages):
    soup = bs4.BeautifulSoup(pages["glossaire.html"], "html.parser")
    for key, ind in INDICATORS.items():
        entry = soup.find(id=key)
        assert entry is not None, key
        text = entry.get_text(" ", strip=True)
        assert ind.label in text and ind.window in text and ind.source in text
        if ind.denominator:
            assert INDICATORS[ind.denominator].label.lower() in text
            assert entry.find("a", href=f"#{ind.denominator}")
    symbols = soup.find(id="symboles").find_next("dl").get_text(" ", strip=True)
    assert "Confidentiel" in symbols and "Sans objet" in symbols and "Non disponible" in symbols
    assert len(soup.find_all("h1")) == 1 and soup.find("main") and soup.find("footer")
    assert not re.search(r"https?://", pages["glossaire.html"])


def test_methodology_examples_are_the_package_s_own_results(pages):
    html = pages["methodologie.html"]
    t = funnel_table(rp.EXAMPLE_UNITS, "inscrits", "etablissements", "unite", correction="none")
    assert fmt_percent(t.attrs["target"]) in html
    flagged = t[t["position_998"] != "conforme"]
    assert len(flagged)  # the example shows a unit outside the limits
    first = flagged.iloc[0]
    assert f"{first['unit']} ({fmt_percent(first['rate'])}" in html
    assert f"{fmt_percent(first['lower_998'])} à {fmt_percent(first['upper_998'])}" in html
    small = t.loc[t["denominator"].idxmin()]
    assert f"{fmt_percent(small['rate'])} à {fmt_percent(small['shrunk_rate'])}" in html  # shrinkage
    oe = observed_vs_expected(rp.example_schools(), "inscrit", ["rural"], "unite", correction="none")
    low = oe.sort_values("ratio").iloc[0]
    assert f"rapport {format(low['ratio'], '.2f').replace('.', ',')}" in html
    soup = bs4.BeautifulSoup(html, "html.parser")
    for anchor in ("entonnoir", "observe-attendu", "retrecissement", "secret-statistique"):
        assert soup.find(id=anchor) is not None
    assert soup.find("nav", attrs={"aria-label": "Sommaire de la page"})
    assert 'href="glossaire.html#part_inscrits"' in html  # beside the glossary, not one folder up
