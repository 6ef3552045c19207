"""The data manager's quality page: who fixes each finding, where, the list filterable offline, its CSV."""
from __future__ import annotations

import base64
import io
import re

import pandas as pd
import pytest

from gar_analysis.checks import RULES
from gar_analysis.checks.registry import RESPONSABLES, SOURCE_RESPONSABLES, responsable_of
from gar_analysis.checks.report import quality_link, quality_page_html, quality_rows, write_quality_page
from gar_analysis.territories import departements

DEPS = departements().set_index("code_departement")


def _register() -> pd.DataFrame:
    rows = []
    for uai, nom, dep in (("0350001A", "Collège Anne de Bretagne", "35"), ("0350002B", "Lycée Chateaubriand", "35"),
                          ("0380003C", "Collège Stendhal", "38")):
        rows.append({"uai": uai, "nom": nom, "nom_commune": f"Commune {dep}", "code_departement": dep,
                     "code_academie": DEPS.at[dep, "code_academie"], "code_region": DEPS.at[dep, "code_region"]})
    return pd.DataFrame(rows)


def _findings() -> pd.DataFrame:
    return pd.DataFrame({
        "regle": ["uai_inconnu", "acces_avant_inscription", "rupture_serie", "valeur_manquante", "doublon",
                  "valeur_non_exploitable", "ressource_inconnue"],
        "gravite": ["erreur", "erreur", "avertissement", "erreur", "erreur", "info", "erreur"],
        "source": ["gar/acces.csv", "gar/acces.csv", "gar/acces.csv", "referentiel/annuaire.csv", "budget/depenses.csv",
                   "referentiel/annuaire.csv", "gar/acces.csv"],
        "ligne": pd.array([3, 4, 5, 6, 7, 8, 9], dtype="Int64"),
        "uai": ["0999999Z", "0350001A", "0350002B", "0380003C", None, "0350001A", "0350001A"],
        "mois": ["2025-01"] * 7, "id_ressource": [None, "R1", None, None, None, None, "R9"],
        "message": ["UAI absent de l'annuaire.", "Accès avant l'inscription.", "Rupture.",
                    "Cellule vide dans /work/main/data/raw/sample/referentiel/annuaire.csv.", "Doublon.", "Info.",
                    "Ressource absente du catalogue C:\\donnees\\gar\\ressources.csv."]})


def test_every_rule_has_who_fixes_it_in_one_place():
    assert set(RESPONSABLES) <= set(RULES)
    for rid, rule in RULES.items():
        assert rule.responsable == RESPONSABLES.get(rid, "")
        assert responsable_of(rid, "gar/acces.csv")
    # a rule that scans every file: whoever produces the file
    assert responsable_of("valeur_manquante", "referentiel/annuaire.csv") == SOURCE_RESPONSABLES["referentiel"]
    assert responsable_of("valeur_manquante", "budget/depenses.csv") == "collectivité"
    assert responsable_of("valeur_manquante", "gar/ressources.csv") == "éditeur"
    assert responsable_of("ressource_inconnue", "gar/acces.csv") == "éditeur"
    assert responsable_of("incoherence_dnma", "gar/acces.csv") == "ENT"


def test_quality_rows_join_the_register_and_leave_information_out():
    rows = quality_rows(_findings(), _register())
    assert len(rows) == 6  # the « info » finding has nothing to fix
    by_uai = rows.set_index("ligne")
    assert by_uai.at["4", "etablissement"] == "Collège Anne de Bretagne"
    assert by_uai.at["4", "academie"] == "Rennes" and by_uai.at["4", "departement"] == "Ille-et-Vilaine"
    assert by_uai.at["4", "responsable"] == "établissement"
    assert by_uai.at["6", "responsable"] == "rectorat (annuaire des établissements)"
    assert by_uai.at["5", "regle"] == RULES["rupture_serie"].titre
    # a UAI absent from the register: territory from its prefix, no name
    assert by_uai.at["3", "etablissement"] == "" and by_uai.at["3", "code_departement"] == "99"
    assert rows["gravite"].iloc[0] == "Erreur" and rows["gravite"].iloc[-1] == "Avertissement"
    assert "/work" not in " ".join(rows["message"]) and "annuaire.csv" in " ".join(rows["message"])
    assert "C:\\" not in " ".join(rows["message"])


def test_quality_page_has_no_internal_names_and_its_csv_is_the_list(tmp_path):
    out = write_quality_page(_findings(), tmp_path / "run" / "qualite.html", schools=_register(), simulated=True)
    html = out.read_text(encoding="utf-8")
    for bad in ("/work", "C:\\", ".py", "gar_analysis", "Traceback", "nan", "<NA>", "None"):
        assert bad not in html, bad
    for rid in RULES:  # rule identifiers are internal names: titles only
        assert rid not in html
    assert html.count("<tr data-uai=") == 6
    assert 'value="academie=' + DEPS.at["35", "code_academie"] + '"' in html
    uri = re.search(r'id="csv-filtre" href="data:text/csv;charset=utf-8;base64,([^"]+)"', html).group(1)
    raw = base64.b64decode(uri)
    assert raw.startswith("\ufeff".encode())
    csv = pd.read_csv(io.StringIO(raw.decode("utf-8-sig")), sep=";", dtype=str, keep_default_na=False)
    assert len(csv) == 6 and csv.columns[0] == "Qui corrige"
    assert set(csv["Établissement"]) >= {"Collège Anne de Bretagne", "Collège Stendhal"}


def test_quality_link_sets_the_filter_of_the_territory():
    assert quality_link("academie", "14") == "../qualite.html#academie=14"
    assert quality_link("departement", "35") == "../qualite.html#departement=35"
    assert quality_link("region", "53") == "../qualite.html#region=53"
    assert quality_link("national", "FR") == "../qualite.html"


def test_quality_page_without_findings_says_nothing_to_fix():
    html = quality_page_html(_findings().iloc[0:0])
    assert "rien à corriger" in html


@pytest.mark.browser
def test_quality_page_filters_offline_from_the_url_hash(browser, tmp_path):
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    out = write_quality_page(_findings(), tmp_path / "qualite.html", schools=_register())
    aca = DEPS.at["35", "code_academie"]
    page = browser.new_page(viewport={"width": 390, "height": 900})
    external = []
    page.route("**/*", lambda r: (r.continue_() if r.request.url.startswith(("file:", "data:", "about:"))
                                  else (external.append(r.request.url), r.abort())))
    try:
        page.goto(out.as_uri() + f"#academie={aca}")
        visible = page.eval_on_selector_all("#constats tbody tr:not([hidden])", "rs => rs.map(r => r.dataset.uai)")
        assert sorted(visible) == ["0350001A", "0350001A", "0350002B"]
        assert page.input_value("#f-territoire") == f"academie={aca}"
        assert "3 constats affichés sur 6" in page.inner_text("#compte")
        page.fill("#f-uai", "0350002")
        visible = page.eval_on_selector_all("#constats tbody tr:not([hidden])", "rs => rs.map(r => r.dataset.uai)")
        assert visible == ["0350002B"]
        assert "uai=0350002" in page.evaluate("location.hash")
        href = page.get_attribute("#csv-filtre", "href")
        from urllib.parse import unquote
        text = unquote(href.split(",", 1)[1])
        assert text.count("\n") == 2 and "0350002B" in text  # header + the one row shown
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        results = axe_module.Axe().run(page)
    finally:
        page.close()
    assert overflow <= 1
    assert not external
    bad = [(v["id"], v["impact"]) for v in results.response["violations"]]
    assert not bad, bad


def test_the_batch_writes_the_run_quality_page_from_the_build_findings(tiny_manifest, tmp_path):
    from gar_analysis.reporting.cli import write_run_quality_page

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert write_run_quality_page(tiny_manifest.processed_dir, run_dir) is None  # no findings kept: no page
    assert not (run_dir / "qualite.html").exists()
    _findings().to_parquet(tiny_manifest.processed_dir / "constats.parquet")
    _register().to_parquet(tiny_manifest.processed_dir / "etablissements.parquet")
    page = write_run_quality_page(tiny_manifest.processed_dir, run_dir)
    assert page == run_dir / "qualite.html"
    html = page.read_text(encoding="utf-8")
    assert "Données simulées" in html and "Collège Stendhal" in html


def test_a_long_list_leaves_its_csv_to_the_script(monkeypatch):
    from gar_analysis.checks import report

    monkeypatch.setattr(report, "INLINE_CSV_ROWS", 3)
    html = quality_page_html(_findings(), schools=_register())
    assert 'id="csv-filtre" href="#"' in html and "base64," not in html
    assert html.count("<tr data-uai=") == 6
