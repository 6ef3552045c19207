"""Tests of the accessible display helpers (French numbers, tables, figures, KPI cards)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gar_analysis.reporting import display as d  # noqa: E402

NNBSP = "\u202f"


@pytest.mark.parametrize("value, decimals, expected", [
    (12345.6, 1, f"12{NNBSP}345,6"), (1234567, 0, f"1{NNBSP}234{NNBSP}567"), (0.5, 2, "0,50"),
    (-0.04, 1, "0,0"), (999, 0, "999"), (2.5, 0, "2"), (3.5, 0, "4"), ("c", 0, "c"), (None, 0, "–"),
    (float("nan"), 1, "–"), (pd.NA, 0, "–"), (float("inf"), 0, "–"), (-1234.5, 1, f"-1{NNBSP}234,5"),
])
def test_fmt_number_french(value, decimals, expected):
    assert d.fmt_number(value, decimals) == expected


def test_fmt_percent_and_others():
    assert d.fmt_percent(0.1234) == f"12,3{NNBSP}%"
    assert d.fmt_percent(1, 0) == f"100{NNBSP}%"
    assert d.fmt_percent("c") == "c" and d.fmt_percent(None) == "–"
    assert d.fmt_ratio(1.126) == "1,13"
    assert d.fmt_euros(12345) == f"12{NNBSP}345{NNBSP}€"
    assert d.fmt_month("2024-09") == "septembre 2024" and d.fmt_month("n/a") == "n/a"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))


def _parse(markup):
    p = _Tags()
    p.feed(markup)
    return p


def test_table_html_is_accessible():
    df = pd.DataFrame({"nom": ["Rennes", "Nice"], "etablissements": [1234, "c"], "part_inscrits": [0.5, "c"]})
    html = d.table_html(df, "Inscription par académie", note="Source : GAR.", threshold=5)
    p = _parse(html)
    assert "caption" in p.tags and "script" not in p.tags
    scopes = [a.get("scope") for t, a in p.attrs if t == "th"]
    assert scopes == ["col", "col", "col", "row", "row"]
    assert f"1{NNBSP}234" in html and f"50,0{NNBSP}%" in html
    assert "Établissements du périmètre (nombre)" in html and "Part des établissements inscrits au GAR (%)" in html  # registry label + unit
    assert "secret statistique" in html and "entre 1 et 4" in html
    wrapper = p.attrs[0][1]
    assert "overflow-x:auto" in wrapper["style"] and wrapper["tabindex"] == "0" and wrapper["role"] == "region"


def test_table_without_c_has_no_footnote_and_caption_is_required():
    html = d.table_html(pd.DataFrame({"nom": ["a"], "n": [10]}), "Légende")
    assert "secret statistique" not in html
    with pytest.raises(ValueError):
        d.table_html(pd.DataFrame({"n": [1]}), "")
    html = d.table_html(pd.DataFrame({"n": range(30)}), "Long", max_rows=10)
    assert html.count("<tr>") == 11 and "10 premières lignes sur 30" in html


def test_text_is_escaped():
    html = d.table_html(pd.DataFrame({"nom": ["<script>x</script>"]}), "L")
    assert "<script>" not in html


def test_figure_html_embeds_svg_alt_caption_data_and_links():
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    data = pd.DataFrame({"nom": ["a", "b"], "acces": [1000, 2000]})
    d.reset_anchors()
    html = d.figure_html(fig, "Accès : le plus élevé pour b.", caption="Accès par académie", data=data)
    p = _parse(html)
    svg = next(a for t, a in p.attrs if t == "svg")
    assert svg["role"] == "img" and svg["aria-label"] == "Accès : le plus élevé pour b."
    fig_attrs = next(a for t, a in p.attrs if t == "figure")
    assert fig_attrs["id"] == "acces-par-academie"
    assert "figcaption" in p.tags and "details" in p.tags and "Données du graphique" in html
    assert f"2{NNBSP}000" in html
    assert '<text' in html  # text stays text (svg.fonttype none)
    assert not re.search(r"https?://", html)  # self-contained
    assert plt.fignum_exists(fig.number) is False  # closed after rendering
    assert _csv(html) == [["Nom", "Accès sur 12 mois (nombre)"], ["a", "1000"], ["b", "2000"]]
    with pytest.raises(ValueError):
        d.figure_html(plt.figure(), "  ")


def _csv(html: str, index: int = 0) -> list[list[str]]:
    """Decode the n-th CSV download of a fragment: BOM, then ``;``-separated rows."""
    import csv
    import io
    from urllib.parse import unquote

    uris = re.findall(r'class="gar-csv" href="data:text/csv;charset=utf-8,([^"]*)"', html)
    text = unquote(uris[index].replace("&#x27;", "'").replace("&amp;", "&").replace("&quot;", '"'))
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


def test_anchors_are_stable_unique_and_independent_of_the_territory():
    d.reset_anchors()
    a = d.anchor_id("Tous les indicateurs — académie de Rennes")
    b = d.anchor_id("Tous les indicateurs — académie de Lyon")
    assert (a, b) == ("tous-les-indicateurs", "tous-les-indicateurs-2")
    assert d.anchor_id("x", "part_inscrits") == "part-inscrits"
    d.reset_anchors()  # a new page (setup_style calls it)
    assert d.anchor_id("Tous les indicateurs — académie de Lyon") == "tous-les-indicateurs"
    d.setup_style()
    assert d.anchor_id("Accès (nombre)") == "acces"
    assert d.anchor_id("2024 : accès") == "f-2024"  # an id never starts with a digit


def test_table_has_anchor_permalink_glossary_links_and_published_csv():
    d.reset_anchors()
    df = pd.DataFrame({"nom": ["=HYPERLINK(x)", "@B", "C"], "niveau": ["college", "lycee", "ecole"],
                       "etablissements": [1200, 0, 5], "inscrits": [300, 0, 2],
                       "part_inscrits": [0.25, float("nan"), "c"], "acces": ["c", 12, 40]})
    html = d.table_html(df, "Inscription — académie de Rennes", anchor="part-inscrits")
    p = _parse(html)
    wrapper = next(a for t, a in p.attrs if t == "div")
    assert wrapper["id"] == "part-inscrits"
    assert 'href="#part-inscrits"' in html  # visible permalink
    assert 'download="part-inscrits.csv"' in html
    for key in ("etablissements", "inscrits", "part_inscrits", "acces"):
        assert f'href="../glossaire.html#{key}"' in html
    rows = _csv(html)
    assert rows[0] == ["Nom", "Niveau", "Établissements du périmètre (nombre)", "Établissements inscrits au GAR (nombre)",
                       "Part des établissements inscrits au GAR (%)", "Accès sur 12 mois (nombre)"]
    assert rows[1] == ["'=HYPERLINK(x)", "collège", "1200", "300", "25,0", "c"]  # formula neutralised, c stays c
    assert rows[2] == ["'@B", "lycée", "0", "0", "z", "12"]  # a rate on a zero denominator is z (sans objet)
    assert rows[3] == ["C", "école", "5", "2", "c", "40"]
    # the page shows the same cells, with the symbols explained under the table
    assert ">collège<" in html and '<abbr title="sans objet">z</abbr>' in html and "z : sans objet" in html
    assert "x : non disponible" not in html


def test_missing_value_is_x_unless_declared_not_applicable():
    d.reset_anchors()
    df = pd.DataFrame({"annee": ["2023", "2024"], "cout_pour_1000_acces": [float("nan"), 12.5],
                       "depenses_ressources_numeriques": [None, 1000.0]})
    html = d.table_html(df, "Budget", missing={"cout_pour_1000_acces": "z"})
    assert _csv(html)[1] == ["2023", "z", "x"]
    assert "z : sans objet" in html and "x : non disponible" in html


def test_download_attaches_the_whole_list_published_by_its_spec():
    from gar_analysis.disclosure import Spec, with_spec

    d.reset_anchors()
    full = with_spec(pd.DataFrame({"uai": [f"03500{i:02d}A" for i in range(30)], "acces": list(range(30))}),
                     Spec(people=("acces",)))
    html = d.table_html(full.head(3).astype({"acces": object}).assign(acces=["0", "c", "c"]), "Écoles à suivre",
                        anchor="ecoles", download=full, threshold=5)
    rows = _csv(html)
    assert len(rows) == 31  # all schools in the CSV, 3 on the page
    assert [r[1] for r in rows[1:7]] == ["0", "c", "c", "c", "c", "5"]  # the publication rule still applies
    assert html.count("<tr>") == 1 + 3


def test_chart_text_is_at_least_12_px_on_a_phone():
    d.setup_style()
    df = pd.DataFrame({"nom": [f"Département {i}" for i in range(20)], "v": [i / 20 for i in range(20)]})
    fig = d.bar_chart(df, "nom", "v", national=0.5, xlabel="Part (%)")
    svg = d.chart_svg(fig, "Barres.", "essai")
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))
    sizes = [float(x) for x in re.findall(r"font-size: ([\d.]+)px", svg)]
    assert sizes and min(sizes) * d.PHONE_COLUMN_PX / width >= d.MIN_CHART_TEXT_PX
    ids = re.findall(r'\sid="([^"]+)"', svg)
    assert ids and all(i.startswith("essai-") for i in ids)  # unique in a page with several charts


def test_codes_read_as_french_labels():
    from gar_analysis.formatting import code_label

    assert code_label("niveau", "lycee") == "lycée" and code_label("secteur", "prive") == "privé sous contrat"
    assert code_label("audience", "region_academique") == "Région académique"
    html = d.table_html(pd.DataFrame({"secteur": ["prive"], "inscrit": [True]}), "Secteurs")
    assert ">privé sous contrat<" in html and ">oui<" in html


def test_toc_lists_h2_headings_of_long_pages():
    d.reset_anchors()
    page = "".join(d.section_html(t) for t in ("L'essentiel", "Déploiement", "Usage"))
    toc = d.toc_html(page)
    assert 'href="#l-essentiel"' in toc and 'href="#usage"' in toc and 'aria-label="Sommaire' in toc
    assert d.toc_html(d.section_html("Seul")) == ""


def test_headlines_say_ratio_in_words():
    html = d.headlines_html([
        {"label": "Part inscrite", "value": 0.8, "kind": "percent", "national": 0.6, "ratio": 0.8 / 0.6,
         "position": "au-dessus"},
        {"label": "Accès", "value": "c", "national": 1000, "ratio": "c"},
        {"label": "Délai", "value": 10, "kind": "int", "ratio": 0.5, "position": "en-dessous"},
        {"label": "Part active", "value": 0.4, "kind": "percent", "ratio": 0.5, "position": "conforme"}])
    assert html.count("<li") == 4
    assert f"80,0{NNBSP}%" in html and "National : 60,0" in html
    assert "▲ 1,33 fois la valeur nationale (au-dessus, au-delà du hasard)" in html
    assert "rapport au national : c" in html and "▼ 0,50 fois la valeur nationale (en dessous" in html
    # half the national value, but within the limits: no arrow, said in words
    assert "● 0,50 fois la valeur nationale (écart dans les limites du hasard)" in html


def test_banner_section_and_style():
    assert "Données simulées" in d.banner_simulated_html()
    assert d.section_html("Usage des ressources", 3) == '<h3 id="usage-des-ressources">Usage des ressources</h3>'
    with pytest.raises(ValueError):
        d.section_html("x", 7)
    pal = d.setup_style()
    assert [tuple(c) for c in pal] == list(d.chart_palette())
    import matplotlib as mpl
    cycle = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    assert mpl.colors.to_hex(cycle[1]) == mpl.colors.to_hex(d.chart_palette()[1])  # darkened orange in use


def test_chart_palette_contrasts_with_the_background_and_keeps_hues():
    import colorsys

    import seaborn as sns

    base = sns.color_palette("colorblind")
    pal = d.chart_palette()
    assert len(pal) == len(base) == 10
    assert min(d.contrast_ratio(c, "#ffffff") for c in base) < 1.5  # seaborn's yellow: why this exists
    for old, new in zip(base, pal):
        assert 3.1 <= d.contrast_ratio(new, "#ffffff") < 3.4 or new == tuple(old)  # darkened no more than needed
        h_old, _, s_old = colorsys.rgb_to_hls(*old)
        h_new, _, s_new = colorsys.rgb_to_hls(*new)
        assert abs(h_old - h_new) < 0.01 and abs(s_old - s_new) < 0.02
    assert pal[0] == tuple(base[0])  # already dark enough: unchanged


def test_contrast_ratio_matches_wcag_examples():
    assert d.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert d.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert d.contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


def test_show_functions_return_markup(capsys):
    out = d.show_table(pd.DataFrame({"nom": ["a"], "n": [10]}), "Légende")
    assert out.startswith('<div class="gar-table"')
    assert d.show_list([]) == "" and "<li>x</li>" in d.show_list(["x"])
    assert 'href="ecarts_territoriaux-14.html"' in d.show_links([("ecarts_territoriaux-14.html", "Écarts")])


def test_format_frame_guesses_kinds():
    df = pd.DataFrame({"part_x": [0.5], "ratio_part_x": [1.234], "acces_par_eleve": [12.34], "n": [3.0],
                       "cout_par_acces": [0.123], "nom": ["x"]})
    f = d.format_frame(df)
    assert f.iloc[0].tolist() == [f"50,0{NNBSP}%", "1,23", "12,3", "3", f"0,12{NNBSP}€", "x"]


def test_fmt_number_survives_huge_values():
    from gar_analysis.reporting.display import fmt_number

    assert fmt_number(3.2e40, 2) == "3,2E40"
    assert fmt_number(-1e20) == "-1E20"


def test_a_very_long_csv_is_cut_and_says_so(monkeypatch):
    monkeypatch.setattr(d, "MAX_CSV_URI", 2_000)
    d.reset_anchors()
    df = pd.DataFrame({"uai": [f"03500{i:03d}A" for i in range(500)], "nom": ["Collège"] * 500})
    html = d.table_html(df, "Liste", max_rows=10)
    rows = _csv(html)
    assert 10 < len(rows) - 1 < 500 and "Le fichier CSV est limité aux" in html
    assert len(re.search(r'href="(data:text/csv[^"]*)"', html).group(1)) <= 2_000
