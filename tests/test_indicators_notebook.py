"""The dashboard notebook, executed with Papermill on the sample and its build.

Checks that it runs for each audience, that every published count in its tables
is at least the disclosure threshold (or ``c``), that a publisher's report holds
no other publisher's name or figure, and that it hands its facts to the batch index.
"""
from __future__ import annotations

import json
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from gar_analysis import config

NOTEBOOK = config.REPORT_NOTEBOOKS_DIR / "tableau_de_bord.ipynb"
EDITEUR_NOTEBOOK = config.REPORT_NOTEBOOKS_DIR / "editeur.ipynb"
SEUIL = 5


def execute(tmp_path: Path, processed_dir: Path, audience: str, territoire: str, monkeypatch) -> dict:
    notebook = EDITEUR_NOTEBOOK if audience == "editeur" else NOTEBOOK
    """Run the notebook; return its outputs' HTML, the summary it wrote and the executed notebook."""
    import papermill as pm

    summary = tmp_path / f"resume-{audience}.json"
    monkeypatch.setenv("GAR_REPORT_SUMMARY", str(summary))
    out = tmp_path / f"{audience}-{territoire}.ipynb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm.execute_notebook(str(notebook), str(out), kernel_name="python3", progress_bar=False,
                            parameters={"audience": audience, "territoire": territoire,
                                        "processed_dir": str(processed_dir), "seuil_secret": SEUIL,
                                        "run_id": "test"}, cwd=str(tmp_path))
    nb = json.loads(out.read_text(encoding="utf-8"))
    html, streams = [], []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if "text/html" in data:
                html.append("".join(data["text/html"]))
            if o.get("output_type") == "stream":
                streams.append("".join(o.get("text", "")))
    return {"html": "\n".join(html), "streams": streams, "nb": nb,
            "summary": json.loads(summary.read_text(encoding="utf-8")) if summary.exists() else None}


class _Tables(HTMLParser):
    """Collect every table as (headers, rows of cell texts)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row, self._in = [], None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"headers": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._in = "", (tag, dict(attrs).get("scope"))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            if self._in == ("th", "col"):
                self.tables[-1]["headers"].append(self._cell.strip())
            else:
                self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[-1]["rows"].append(self._row)
            self._row = None


#: Headers of counts of people or of their acts (docs/indicators.md, « Secret statistique »); counts of schools,
#: conventions, actions and findings are institutional facts, shown whatever their size.
PEOPLE = re.compile(r"^(Accès|Élèves|Enseignants|Accédants|Affectations|Observé)\b")


def small_published_counts(html: str, threshold: int) -> list[str]:
    """Return the cells of counts of people (header "(nombre)") holding a value from 1 to threshold − 1."""
    p = _Tables()
    p.feed(html)
    bad = []
    for t in p.tables:
        for j, h in enumerate(t["headers"]):
            if "(nombre)" not in h or "par " in h or not PEOPLE.match(h):
                continue
            for row in t["rows"]:
                if j >= len(row):
                    continue
                text = row[j].replace("\u202f", "").replace("\xa0", "").replace(" ", "")
                if re.fullmatch(r"-?\d+", text) and 0 < int(text) < threshold:
                    bad.append(f"{h} = {row[j]}")
    return bad


def test_small_count_detector_works():
    html = ('<table><thead><tr><th scope="col">Nom</th><th scope="col">Accès (nombre)</th></tr></thead>'
            '<tbody><tr><th scope="row">A</th><td>3</td></tr><tr><th scope="row">B</th><td>1\u202f234</td></tr>'
            '<tr><th scope="row">C</th><td>c</td></tr><tr><th scope="row">D</th><td>0</td></tr></tbody></table>')
    assert small_published_counts(html, 5) == ["Accès (nombre) = 3"]  # zero reveals no one
    schools = html.replace("Accès (nombre)", "Établissements (nombre)")
    assert small_published_counts(schools, 5) == []  # an institutional fact


@pytest.fixture(scope="module")
def national(sample_build, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        yield execute(tmp_path_factory.mktemp("tdb-national"), sample_build.processed_dir, "national", "FR", mp)
    finally:
        mp.undo()


def test_national_report_runs_and_leads_with_bright_spots(national):
    html = national["html"]
    order = [html.index(t) for t in ("L&#x27;essentiel", "Ce qui fonctionne", "Pistes de progrès", "Déploiement",
                                     "Usage des ressources", "Tableaux détaillés", "Qualité des données")]
    assert order == sorted(order)
    assert 'class="gar-kpis"' in html and html.count("<figure") >= 4
    assert "Indicateurs par académie" in html and "Rennes" in html
    assert 'href="ecarts_territoriaux-FR.html"' in html
    assert not any("Traceback" in s or "Warning" in s for s in national["streams"])
    errors = [o for c in national["nb"]["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    summary = national["summary"]
    assert summary is not None and summary["a_corriger"]
    # académies are named only outside the 99.8 % limits (#14 item 10): none on the sample is, and the page says so
    assert summary["points_forts"] or "Aucune des académies ne se distingue de la valeur nationale" in html
    assert all("limites de contrôle" in s for s in summary["points_forts"] if s.startswith("Académies"))


def test_national_report_suppresses_small_counts(national):
    assert small_published_counts(national["html"], SEUIL) == []
    for sentence in national["summary"]["points_forts"] + national["summary"]["a_corriger"]:
        assert not re.search(r"\(\d\)", sentence)  # no count below 10 quoted alone in brackets


def test_every_image_has_alt_text(national):
    imgs = re.findall(r"<img\b[^>]*>|<svg\b[^>]*>", national["html"])  # charts are inline SVG (role img)
    assert imgs
    for img in imgs:
        alt = re.search(r'(?:alt|aria-label)="([^"]*)"', img)
        assert alt and len(alt.group(1)) > 30 and alt.group(1).lower() != "graphique"


@pytest.fixture(scope="module")
def editeur(sample_build, tmp_path_factory):
    from gar_analysis.publishers import resolve

    ress = pd.read_parquet(sample_build.processed_dir / "ressources.parquet")
    names = sorted(ress["editeur"].dropna().astype(str).unique())
    mine = names[0]
    mp = pytest.MonkeyPatch()
    try:
        run = execute(tmp_path_factory.mktemp("tdb-editeur"), sample_build.processed_dir, "editeur",
                      resolve(ress, mine), mp)
    finally:
        mp.undo()
    run.update(mine=mine, others=names[1:], ress=ress, processed_dir=sample_build.processed_dir)
    return run


def test_publisher_report_holds_only_its_own_figures(editeur):
    import html as html_lib

    text = html_lib.unescape(editeur["html"])
    assert editeur["mine"] in text
    for other in editeur["others"]:
        assert other not in text, f"le rapport de {editeur['mine']} cite l'éditeur {other}"
    ress = editeur["ress"]
    foreign = ress[ress["editeur"] != editeur["mine"]]
    own_names = set(ress.loc[ress["editeur"] == editeur["mine"], "nom"])
    for name in set(foreign["nom"]) - own_names:
        assert name not in text, f"ressource d'un autre éditeur citée : {name}"
    for rid in foreign["id_ressource"]:
        assert not re.search(rf"\b{re.escape(str(rid))}\b", text), f"identifiant d'une autre ressource : {rid}"
    # neither another publisher's total nor the all-publishers total appears
    ar = pd.read_parquet(editeur["processed_dir"] / "acces_ressources.parquet")
    from gar_analysis.reporting.display import fmt_number

    totals = [ar.loc[ar["editeur"] == o, "acces"].sum() for o in editeur["others"]] + [ar["acces"].sum()]
    for total in totals:
        assert fmt_number(total) not in text
    # the subscriptions' tables: other publishers' licences and subscribed schools never appear
    abo = pd.read_parquet(editeur["processed_dir"] / "abonnements.parquet")
    ids = ress.drop_duplicates("id_ressource").set_index("id_ressource")["editeur"]
    abo = abo.assign(editeur=abo["id_ressource"].map(ids))
    assert "Établissements abonnés à vos ressources" in text and "Vos accès mois par mois" in text
    for other in editeur["others"]:
        theirs = abo[abo["editeur"] == other]
        for total in (theirs["licences"].sum(), abo["licences"].sum()):
            assert fmt_number(total) not in text
    # its own wording: « votre catalogue », never « territoire » (outside the technical parameters list)
    visible = re.sub(r"<dt>Paramètres</dt>.*?</dd>", "", editeur["html"], flags=re.S)
    visible = html_lib.unescape(re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", visible, flags=re.S))
    assert "territoire" not in visible.lower()
    assert small_published_counts(editeur["html"], SEUIL) == []
    assert "Indicateurs par académie" not in text and "Ressources les plus utilisées" not in text
    summary = editeur["summary"]
    assert summary is not None
    for sentence in summary["points_forts"] + summary["a_corriger"]:
        assert all(o not in sentence for o in editeur["others"])


@pytest.mark.slow
@pytest.mark.parametrize("audience, territoire", [("academie", "14"), ("region_academique", "84"),
                                                   ("region", "53"), ("departement", "35")])
def test_territorial_reports_run(sample_build, tmp_path, monkeypatch, audience, territoire):
    run = execute(tmp_path, sample_build.processed_dir, audience, territoire, monkeypatch)
    html = run["html"]
    assert "fois la valeur nationale" in html  # headline cards carry the national ratio
    assert small_published_counts(html, SEUIL) == []
    if audience in ("region", "departement"):
        assert "Établissements du territoire" in html
    if audience in ("academie", "region", "departement"):  # the lists to act on, each with its CSV
        for motif in ("non-inscrit", "inactif-mois", "sans-referent"):
            assert f'id="a-suivre-{motif}"' in html or "aucun établissement" in html
        assert "Établissements à suivre, par motif" in html and "data:text/csv;charset=utf-8," in html
        assert f"../qualite.html#{'region' if audience == 'region' else audience}=" in html
    assert run["summary"] is not None


@pytest.mark.slow
def test_unknown_territory_is_refused(sample_build, tmp_path, monkeypatch):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="Codes possibles"):
        execute(tmp_path, sample_build.processed_dir, "academie", "99", monkeypatch)
