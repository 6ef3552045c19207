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


def test_figure_html_embeds_png_alt_caption_and_data():
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    data = pd.DataFrame({"nom": ["a", "b"], "acces": [1000, 2000]})
    html = d.figure_html(fig, "Accès : le plus élevé pour b.", caption="Accès par académie", data=data)
    p = _parse(html)
    img = next(a for t, a in p.attrs if t == "img")
    assert img["src"].startswith("data:image/png;base64,") and img["alt"] == "Accès : le plus élevé pour b."
    assert "max-width:100%" in img["style"]
    assert "figcaption" in p.tags and "details" in p.tags and "Données du graphique" in html
    assert f"2{NNBSP}000" in html
    assert not re.search(r"https?://", html)  # self-contained
    assert plt.fignum_exists(fig.number) is False  # closed after rendering
    with pytest.raises(ValueError):
        d.figure_html(plt.figure(), "  ")


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
