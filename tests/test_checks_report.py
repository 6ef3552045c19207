"""Tests of the ``gar-analysis check`` command (exit codes, CSV) and of the HTML quality report."""
from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_checks_rules import SCHOOLS, clean_world, plant_all, write_world  # noqa: E402

from gar_analysis.checks import COLUMNS, RULES, quality_report_html, read_findings_csv, run_checks  # noqa: E402
from gar_analysis.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    clean = write_world(clean_world(), tmp_path_factory.mktemp("clean"))
    frames = clean_world()
    plant_all(frames)
    planted = write_world(frames, tmp_path_factory.mktemp("planted"))
    return clean, planted


@pytest.fixture(scope="module")
def planted_findings(dirs):
    return run_checks(dirs[1])


# --------------------------------------------------------------------------- CLI

def test_cli_writes_csv_and_html_and_exits_0_whatever_it_finds(dirs, tmp_path, capsys):
    out = tmp_path / "q" / "constats.csv"
    assert main(["check", "--data", str(dirs[1]), "--out", str(out), "--format", "html"]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ";".join(COLUMNS)
    back = read_findings_csv(out)
    assert set(back["gravite"]) <= {"erreur", "avertissement", "info"}
    assert (back["regle"] == "uai_invalide").any() and back["ligne"].notna().any()
    assert "Constats écrits" in capsys.readouterr().out
    html = (tmp_path / "q" / "constats.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "uai_invalide" in html


def test_cli_fail_on_erreur(dirs, tmp_path):
    assert main(["check", "--data", str(dirs[1]), "--out", str(tmp_path / "a.csv"), "--fail-on", "erreur"]) == 1
    other = tmp_path / "rapport.html"
    assert main(["check", "--data", str(dirs[0]), "--out", str(tmp_path / "b.csv"), "--fail-on", "erreur",
                 "--html", str(other)]) == 0
    assert "Aucune erreur ni aucun avertissement" in other.read_text(encoding="utf-8")


def test_cli_unreadable_file_is_one_error_and_the_others_are_checked(dirs, tmp_path, capsys):
    bad = tmp_path / "bad"
    write_world(clean_world(), bad)
    (bad / "gar/acces.csv").write_bytes("mois;uai;id_ressource;profil;support;acces\n2024-01;é;R1;eleve;ordinateur;1\n"
                                        .encode("latin-1"))
    assert main(["check", "--data", str(bad), "--out", str(tmp_path / "c.csv")]) == 0
    f = pd.read_csv(tmp_path / "c.csv", sep=";", dtype=str)
    err = f[f["gravite"] == "erreur"]
    assert err["regle"].tolist() == ["fichier_illisible"] and err["source"].tolist() == ["gar/acces.csv"]
    assert "ligne 2" in err["message"].iloc[0] and "UTF-8" in err["message"].iloc[0]
    assert main(["check", "--data", str(bad), "--out", str(tmp_path / "e.csv"), "--fail-on", "erreur"]) == 1
    capsys.readouterr()
    assert main(["check", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "d.csv")]) == 2
    assert "absent" in capsys.readouterr().err
    assert not (tmp_path / "d.csv").exists()


def test_cli_partial_directory_lists_skipped_rules(dirs, tmp_path):
    part = tmp_path / "part"
    frames = clean_world()
    write_world({"referentiel/annuaire": frames["referentiel/annuaire"]}, part)
    out = tmp_path / "f.csv"
    assert main(["check", "--data", str(part), "--out", str(out)]) == 0
    f = read_findings_csv(out)
    skipped = f[f["message"].str.contains("non effectué")]
    assert len(skipped) == skipped["regle"].nunique() >= 10
    assert (skipped["gravite"] == "info").all()


# --------------------------------------------------------------------------- HTML

class _Outline(HTMLParser):
    """Collect what the accessibility checks need."""

    def __init__(self):
        super().__init__()
        self.tags, self.headings, self.ths, self.attrs = [], [], [], {}
        self.tables = self.captions = 0
        self.stack = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.setdefault(tag, []).append(a)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "th":
            self.ths.append(a.get("scope"))
        if tag == "table":
            self.tables += 1
        if tag == "caption":
            self.captions += 1


def _outline(html: str) -> _Outline:
    p = _Outline()
    p.feed(html)
    return p


def test_report_is_accessible_and_self_contained(planted_findings):
    html = quality_report_html(planted_findings, title="Qualité des données du test")
    o = _outline(html)
    assert '<html lang="fr">' in html
    assert o.headings.count(1) == 1 and o.headings[0] == 1
    assert all(b - a <= 1 for a, b in zip(o.headings, o.headings[1:])), o.headings
    assert o.tables == o.captions > 3
    assert o.ths and all(s in ("col", "row") for s in o.ths)
    assert {"main", "header", "footer"} <= set(o.tags)
    assert any(a.get("href") == "#contenu" for a in o.attrs["a"])
    assert 'name="viewport"' in html
    assert not re.search(r"(src|href)=\"https?://", html) and "<script" not in html


def test_report_content(planted_findings):
    html = quality_report_html(planted_findings, title="Qualité")
    for rid in ("uai_invalide", "rupture_serie", "depense_incoherente"):
        assert f'id="qualite-{rid}"' in html
        assert html.count(RULES[rid].action.replace("'", "&#x27;")) == 1
    assert "Que faire ?" in html
    assert "Rennes" in html                              # counts by académie (from the UAI)
    assert "gar/acces.csv" in html and "Part des lignes concernées" in html
    # share of rows affected, French formatting: 5 lines of 51 in gar/acces.csv
    n = planted_findings.attrs["lignes"]["gar/acces.csv"]
    assert n == 51
    assert "\u202f%" in html and "," in re.search(r"\d+,\d\u202f%", html).group(0)
    assert SCHOOLS[1] in html


def test_report_fragment_for_dashboards(planted_findings):
    frag = quality_report_html(planted_findings, title="Qualité des données", standalone=False)
    o = _outline(frag)
    assert frag.lstrip().startswith("<section") and "<html" not in frag and "<h1" not in frag
    assert o.headings[0] == 2 and all(b - a <= 1 for a, b in zip(o.headings, o.headings[1:]))


def test_report_of_clean_data_is_constructive(dirs):
    """Before: ``"Rien à corriger" not in html or …`` passed whatever the report said."""
    findings = run_checks(dirs[0])
    html = quality_report_html(findings, title="Qualité", simulated=True)
    assert "Aucune erreur ni aucun avertissement" in html and "Données simulées" in html
    assert not (findings["gravite"] != "info").any()
    # a rule whose file is absent is « non effectué » (one info line saying so), not a finding to fix
    skipped = findings["message"].str.contains("non effectué", regex=False)
    # no finding at all → the detail says so; only information → each one is detailed, never « Rien à corriger »
    assert ("<p>Rien à corriger.</p>" in html) == findings[~skipped].empty
    statuses = re.findall(r"<td>(aucun constat|non effectué|<a href=[^>]+>voir le détail</a>)</td>", html)
    assert len(statuses) == len(RULES)
    assert sum(s == "aucun constat" for s in statuses) == len(RULES) - findings[~skipped]["regle"].nunique() - sum(
        s == "non effectué" for s in statuses)


def test_report_limits_rows_and_counts_french(planted_findings):
    many = pd.concat([planted_findings[planted_findings["regle"] == "valeur_negative"]] * 800, ignore_index=True)
    many.attrs["lignes"] = {"gar/abonnements.csv": 12345}
    html = quality_report_html(many, title="Qualité", first_rows=5)
    assert "5 premiers sur 1\u202f600" in html
    assert "12\u202f345" in html


#: (text, background) pairs of the report's style sheet.
PALETTE_PAIRS = [("#1a1a1a", "#ffffff"), ("#4a4a4a", "#ffffff"), ("#ffffff", "#a4001d"), ("#ffffff", "#7a4100"),
                 ("#ffffff", "#1f4e79"), ("#0b4f8a", "#ffffff"), ("#1a1a1a", "#f3f4f6"), ("#1a1a1a", "#fff4d6"),
                 ("#1a1a1a", "#eef5ee"), ("#4a4a4a", "#f3f4f6")]
#: Colours of borders only (not text, not a text background).
BORDER_ONLY = {"#c8c8c8", "#2e6b30"}


def _palette_problem(css: str, fg: str, bg: str) -> str:
    from gar_analysis.reporting.display import contrast_ratio

    missing = [c for c in (fg, bg) if c not in css]
    if missing:
        return f"couleur(s) absente(s) de la feuille de style : {missing}"
    ratio = contrast_ratio(fg, bg)
    return f"contraste {ratio:.2f} < 4,5" if ratio < 4.5 else ""


@pytest.mark.parametrize("fg,bg", PALETTE_PAIRS)
def test_palette_contrast(fg, bg):
    """Before: ``… or bg == "#ffffff"`` skipped the style-sheet check for every pair on white."""
    from gar_analysis.checks.report import CSS

    assert _palette_problem(CSS, fg, bg) == ""


def test_every_colour_of_the_style_sheet_is_checked_and_the_check_can_fail():
    from gar_analysis.checks.report import CSS

    colours = set(re.findall(r"#[0-9a-f]{6}\b", CSS.lower()))
    assert colours - BORDER_ONLY == {c for pair in PALETTE_PAIRS for c in pair}
    lighter = CSS.replace("--muted:#4a4a4a", "--muted:#9a9a9a")
    assert "absente" in _palette_problem(lighter, "#4a4a4a", "#ffffff")   # the grey checked is no longer used
    assert "contraste" in _palette_problem(lighter, "#9a9a9a", "#ffffff")  # and its replacement is too light


def test_report_accepts_processed_constats_table(planted_findings, tmp_path):
    """The dashboards pass the processed `constats` table (parquet, extra columns, "" for no UAI)."""
    t = planted_findings.copy()
    t["uai"] = t["uai"].fillna("")
    t["code_departement"] = "35"
    t.to_parquet(tmp_path / "constats.parquet", index=False)
    back = pd.read_parquet(tmp_path / "constats.parquet")
    frag = quality_report_html(back, title="Qualité des données — Ille-et-Vilaine", standalone=False)
    assert "Part des lignes concernées" in frag and "–" in frag
    assert 'id="qualite-uai_invalide"' in frag
