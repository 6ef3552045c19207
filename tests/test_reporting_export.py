"""The HTML page shell (no kernel needed): structure, provenance, banner, self-containment, leak scan, summary."""
from __future__ import annotations

import base64
import json
import re

import nbformat
import pytest

from gar_analysis.reporting.export import (external_references, render_report, report_context, scan_outputs,
                                           scan_text)
from gar_analysis.reporting.index import render_index, update_index
from gar_analysis.reporting.summary import SUMMARY_ENV, read_summary, write_summary

MANIFEST = {"built_at": "2026-11-28T06:00:00+00:00", "version": "0.1.0", "commit": "abc1234", "simulated": True,
            "periode": ["2023-09", "2025-08"], "constats": {"erreur": 3, "avertissement": 1200},
            "sources": [{"fichier": "gar/acces.csv", "lignes": 123456, "modifie": "2026-11-27", "sha256": "ff" * 32}]}
PARAMS = {"audience": "academie", "territoire": "14", "processed_dir": "/x", "seuil_secret": 5, "run_id": "lot"}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 64).decode()


def _executed_notebook(extra_html: str = "") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("x = 1")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": "<h2>Chiffres clés</h2><p class='kpi'>42</p>"
                                                                  + extra_html}),
        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: /home/secret/path"),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)"}),
        nbformat.v4.new_output("display_data", data={"text/html": "<script src='https://cdn.example/x.js'></script>"
                                                                  "<script>alert(2)</script><p>après</p>"}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tableau de bord\n\nPremier paragraphe."), code,
                nbformat.v4.new_markdown_cell("## Usage\n\nTexte.")]
    return nb


def _page(manifest=MANIFEST, extra_html=""):
    ctx = report_context(PARAMS, manifest, title="Tableau de bord", territory_name="académie de Rennes",
                         duration_s=12.34, index_href="../index.html")
    return render_report(_executed_notebook(extra_html), ctx)


def test_page_shell_is_accessible_and_names_audience_and_territory():
    page = _page()
    assert page.count("<h1") == 1
    assert re.search(r"<h1>Tableau de bord – académie de Rennes</h1>", page)
    assert '<html lang="fr">' in page
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert "académie de Rennes" in title and "Académie" in title
    assert '<a class="fr-link lien-evitement" href="#contenu">' in page and 'id="contenu"' in page
    assert re.search(r"République<br/?>française", page)  # DSFR bloc-marque
    crumbs = re.search(r'<nav[^>]*class="fr-breadcrumb".*?</nav>', page, flags=re.DOTALL).group(0)
    assert re.findall(r">([^<>]+)</a>", crumbs) == ["Accueil", "Académie de Rennes", "Tableau de bord"]
    assert 'href="../index.html"' in crumbs and 'href="../index.html#t-academie-14"' in crumbs
    assert 'aria-current="page"' in crumbs
    for tag in ("<header", "<main", "<footer"):
        assert page.count(tag) == 1
    assert 'name="viewport"' in page
    headings = [int(h) for h in re.findall(r"<h([1-6])", page)]
    assert all(b - a <= 1 for a, b in zip(headings, headings[1:])), headings  # no skipped level


def test_no_code_no_script_no_stderr_and_images_embedded():
    page = _page()
    assert "x = 1" not in page and "alert(1)" not in page and "alert(2)" not in page and "<script" not in page
    assert "<p>après</p>" in page
    assert "/home/secret/path" not in page
    assert f"data:image/png;base64,{PNG}" in page and 'alt="Graphique' in page
    assert external_references(page) == []
    assert "@media print" in page and "@media (max-width" in page


def test_provenance_footer_and_simulated_banner():
    page = _page()
    footer = page[page.index("<footer"):]
    assert "Données simulées" in page[:page.index("<footer")]
    for text in ("gar/acces.csv", "123\u202f456", "27/11/2026", "abc1234", "0.1.0", "3 erreurs",
                 "1\u202f200 avertissements", "<code>territoire</code> = <code>14</code>", "12,3 s",
                 "secret statistique", "de 2023-09 à 2025-08"):
        assert text in footer, text
    assert "/x" not in footer  # local paths are not published
    real = _page(manifest={**MANIFEST, "simulated": False})
    assert "Données simulées" not in real and "données réelles" in real


def test_notebook_h1_outputs_are_demoted_and_tables_scroll_inside_the_page():
    page = _page(extra_html="<h1>Autre titre</h1><table><caption>c</caption><tr><th scope='col'>a</th></tr>"
                            "<tr><td><table><tr><td>1</td></tr></table></td></tr></table>")
    assert page.count("<h1") == 1 and "<h2>Autre titre</h2>" in page and "<h3>Chiffres clés</h3>" in page
    main = page[page.index("<main"):page.index("</main>")]
    assert main.count('class="defilement"') == 1 and main.count('tabindex="0"') == 1  # nested table not wrapped
    own = _page(extra_html='<div class="gar-table" role="region" aria-label="t" tabindex="0"><table><caption>c'
                           '</caption><tr><td>1</td></tr></table></div>')
    assert 'class="defilement"' not in own[own.index("<main"):own.index("</main>")]  # already scrollable


def test_scan_finds_secrets_and_pupil_identifiers(tmp_path, monkeypatch):
    monkeypatch.setenv("GAR_ROCKETCHAT_TOKEN", "tok-9b8c7d6e5f")
    (tmp_path / "a").mkdir()
    (tmp_path / "a/ok.html").write_text("<p>UAI 0350001A, 12 345 accès</p>" + "A" * 50 + PNG * 10)
    assert scan_outputs(tmp_path) == []
    (tmp_path / "a/r.html").write_text("<p>jeton tok-9b8c7d6e5f</p>")
    (tmp_path / "a/e.ipynb").write_text(json.dumps({"x": "id_accedant;uai\n0123456789AB;1"}))
    (tmp_path / "a/i.json").write_text('{"eleve": "123456789AB"}')
    kinds = sorted((leak.file, leak.kind) for leak in scan_outputs(tmp_path))
    assert kinds == [("a/e.ipynb", "identifiant individuel"), ("a/i.json", "identifiant individuel (format INE)"),
                     ("a/r.html", "secret")]
    assert all("tok-9b8c7d6e5f" not in str(leak) for leak in scan_outputs(tmp_path))
    assert scan_text("rien", ["short"]) == []


def test_summary_roundtrip(tmp_path, monkeypatch):
    monkeypatch.delenv(SUMMARY_ENV, raising=False)
    assert write_summary(["a"], ["b"]) is None  # interactive run: nothing written
    target = tmp_path / "s.json"
    monkeypatch.setenv(SUMMARY_ENV, str(target))
    write_summary(["  Taux d'inscription   élevé ", ""] + [f"f{i}" for i in range(9)], ("Former",))
    data = read_summary(target)
    assert data["points_forts"][0] == "Taux d'inscription élevé" and len(data["points_forts"]) == 5
    assert data["a_corriger"] == ["Former"]
    with pytest.raises(TypeError):
        write_summary("une phrase", [])
    (tmp_path / "bad.json").write_text("[1,")
    assert read_summary(tmp_path / "bad.json") == {"points_forts": [], "a_corriger": []}


def test_index_merges_entries_and_is_accessible(tmp_path):
    base = {"nom": "x", "statut": "ok", "duree_s": 1.5, "erreur": "", "points_forts": [], "a_corriger": []}
    update_index(tmp_path, [{**base, "audience": "academie", "territoire": "14", "notebook": "tableau_de_bord",
                             "html": "academie/14.html", "nom": "académie de Rennes"}], simulated=True)
    update_index(tmp_path, [{**base, "audience": "national", "territoire": "FR", "notebook": "tableau_de_bord",
                             "html": "national/FR.html"},
                            {**base, "audience": "academie", "territoire": "14", "notebook": "tableau_de_bord",
                             "html": "", "statut": "echec", "erreur": "ValueError: <b>", "nom": "académie de Rennes"}])
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    assert [(r["audience"], r["statut"]) for r in index["reports"]] == [("national", "ok"), ("academie", "echec")]
    assert index["simule"] is True and index["run_id"] == tmp_path.name
    portal = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert portal.count("<h1") == 1 and '<html lang="fr">' in portal and "Données simulées" in portal
    assert "ValueError" not in portal and "1,5 s" not in portal and "✓" not in portal  # no run log on the portal
    assert 'href="journal.html"' in portal and "pas disponible dans ce lot" in render_index(index)
    page = (tmp_path / "journal.html").read_text(encoding="utf-8")
    assert page.count("<h1") == 1 and '<html lang="fr">' in page and "Données simulées" in page
    assert "ValueError: &lt;b&gt;" in page  # escaped
    assert '<th scope="row">' in page and "<caption>" in page and "1,5 s" in page
    assert external_references(page) == [] and external_references(portal) == [] and "<script" not in page
