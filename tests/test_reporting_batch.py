"""The report batch with tiny notebooks: parallel runs, failures, timeouts, refusals, index, leaks."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from conftest import write_notebook
from gar_analysis.cli import main
from gar_analysis.errors import ConfigError
from gar_analysis.reporting.batch import audience_territories, plan_batch, run_batch
from gar_analysis.reporting.export import external_references, scan_outputs

TABLE = [{"audience": a, "notebook": "tableau_de_bord", "titre": "Tableau de bord", "principal": True}
         for a in ("national", "academie", "departement", "editeur")]
TABLE.append({"audience": "academie", "notebook": "annexe", "titre": "Annexe", "principal": False})

DASHBOARD = [
    'from IPython.display import HTML, display\n'
    'display(HTML(f"<h2>Chiffres clés</h2><p class=\'kpi\'>Territoire {territoire}</p>"))',
    'import matplotlib\nmatplotlib.use("module://matplotlib_inline.backend_inline")\n'
    'import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 3, 2]); plt.show()',
    'import os\nprint("clé :", os.environ.get("DOLAPIKEY"))',
    'from gar_analysis.reporting.summary import write_summary\n'
    'write_summary([f"Territoire {territoire} : usage en hausse"], ["Nommer un référent GAR"])',
    'if territoire == "14":\n    raise ValueError("échec planté pour le test")',
    'if territoire == "15":\n    import time\n    time.sleep(300)',
]


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    write_notebook(folder / "tableau_de_bord.ipynb", DASHBOARD, title="# Tableau de bord de test")
    write_notebook(folder / "annexe.ipynb", ['print("annexe", territoire)'], title="# Annexe")
    return folder


def test_plan_refuses_unknown_audience_with_valid_values():
    with pytest.raises(ConfigError, match="Audience inconnue.*national.*academie.*editeur"):
        plan_batch("rectorat", all_territories=True, table=TABLE)


def test_plan_refuses_unknown_territory_listing_codes(notebooks):
    with pytest.raises(ConfigError, match=r"inconnu.*99.*Codes possibles : 01, 02"):
        plan_batch("academie", only=["14", "99"], notebooks_dir=notebooks, table=TABLE)


def test_plan_refuses_bad_notebook_period_and_parameter(notebooks):
    with pytest.raises(ConfigError, match="Carnets possibles : tableau_de_bord, annexe"):
        plan_batch("academie", only=["14"], notebook="inconnu", notebooks_dir=notebooks, table=TABLE)
    with pytest.raises(ConfigError, match="Période invalide"):
        plan_batch("academie", only=["14"], period="2025-2024", notebooks_dir=notebooks, table=TABLE)
    with pytest.raises(ConfigError, match="Paramètre.*inconnu.*periode.*Paramètres possibles : audience"):
        plan_batch("academie", only=["14"], period="2024-2025", notebooks_dir=notebooks, table=TABLE)
    with pytest.raises(ConfigError, match="soit --all"):
        plan_batch("academie", notebooks_dir=notebooks, table=TABLE)


def test_plan_jobs_codes_names_and_file_names(notebooks):
    jobs = plan_batch("academie", only=["14", "2", "14"], notebooks_dir=notebooks, table=TABLE, run_id="r1")
    assert [(j.territoire, j.notebook) for j in jobs] == [("14", "tableau_de_bord"), ("02", "tableau_de_bord"),
                                                           ("14", "annexe"), ("02", "annexe")]
    assert jobs[0].nom == "académie de Rennes" and jobs[0].html_rel == "academie/14.html"
    assert jobs[2].html_rel == "academie/annexe-14.html"
    assert jobs[2].executed_rel == "academie/executed/annexe-14.ipynb"
    assert jobs[0].parameters == {"audience": "academie", "territoire": "14", "processed_dir": "",
                                  "seuil_secret": 5, "run_id": "r1"}
    assert len(plan_batch("academie", all_territories=True, notebook="tableau_de_bord",
                          notebooks_dir=notebooks, table=TABLE)) == 30


def test_editeur_codes_come_from_the_catalogue(tmp_path, notebooks):
    pd.DataFrame({"id_ressource": ["r1", "r2", "r3"], "editeur": ["Éditions Nathan", "Belin Éducation", "Éditions Nathan"]}
                 ).to_parquet(tmp_path / "ressources.parquet")
    assert audience_territories("editeur", tmp_path) == {"belin-education": "Belin Éducation",
                                                         "editions-nathan": "Éditions Nathan"}
    jobs = plan_batch("editeur", only=["Belin Éducation"], processed_dir=tmp_path, notebooks_dir=notebooks,
                      table=TABLE)
    assert [j.territoire for j in jobs] == ["belin-education"]
    with pytest.raises(ConfigError, match="Codes possibles : belin-education, editions-nathan"):
        plan_batch("editeur", only=["hachette"], processed_dir=tmp_path, notebooks_dir=notebooks, table=TABLE)


def test_cli_refuses_before_any_notebook_runs(tmp_path, notebooks, capsys):
    out = tmp_path / "reports"
    code = main(["reports", "--audience", "academie", "--only", "14", "ZZ", "--out", str(out), "--run-id", "x",
                 "--notebooks-dir", str(notebooks)])
    assert code == 2
    assert "ZZ" in capsys.readouterr().err
    assert not out.exists()
    assert main(["reports", "--audience", "mairie", "--all", "--out", str(out)]) == 2
    assert main(["reports", "--audience", "academie", "--all", "--jobs", "0", "--out", str(out)]) == 2
    assert main(["reports", "--audience", "academie", "--all", "--run-id", "../x", "--out", str(out)]) == 2
    assert not out.exists()


def test_batch_survives_failure_and_hang_and_writes_index(tmp_path, notebooks, tiny_manifest, monkeypatch):
    fake_secret = "sk-test-7f3a9c2e1b5d"
    monkeypatch.setenv("DOLAPIKEY", fake_secret)
    out = tmp_path / "reports"
    code = main(["reports", "--audience", "academie", "--only", "14", "15", "16", "--notebook", "tableau_de_bord",
                 "--jobs", "2", "--timeout", "6", "--out", str(out), "--run-id", "lot1", "--no-progress",
                 "--processed", str(tiny_manifest.processed_dir), "--notebooks-dir", str(notebooks)])
    assert code == 1  # one failure and one timeout: the command says so
    run_dir = out / "lot1"
    index = json.loads((run_dir / "index.json").read_text(encoding="utf-8"))
    assert index["run_id"] == "lot1"
    by_code = {r["territoire"]: r for r in index["reports"]}
    assert set(by_code) == {"14", "15", "16"}
    for r in index["reports"]:
        assert {"audience", "territoire", "nom", "notebook", "statut", "html", "duree_s", "erreur",
                "points_forts", "a_corriger"} <= set(r)
    ok, failed, hung = by_code["16"], by_code["14"], by_code["15"]
    assert ok["statut"] == "ok" and ok["html"] == "academie/16.html" and ok["nom"] == "académie de Toulouse"
    assert ok["points_forts"] == ["Territoire 16 : usage en hausse"]
    assert ok["a_corriger"] == ["Nommer un référent GAR"]
    assert failed["statut"] == "echec" and "échec planté pour le test" in failed["erreur"] and failed["html"] == ""
    assert hung["statut"] == "echec" and "Délai dépassé" in hung["erreur"]
    assert hung["duree_s"] < 6 + 30
    # executed notebooks are kept for audit, also for the failures
    for code_ in ("14", "15", "16"):
        assert (run_dir / f"academie/executed/tableau_de_bord-{code_}.ipynb").exists()
    assert not (run_dir / "academie/14.html").exists()
    page = (run_dir / "academie/16.html").read_text(encoding="utf-8")
    assert "Territoire 16" in page and "data:image/png;base64," in page
    assert "<code>" in page and "import matplotlib" not in page  # no code cell in the report
    assert external_references(page) == []
    index_html = (run_dir / "journal.html").read_text(encoding="utf-8")
    assert 'href="academie/16.html"' in index_html and "✗ échec" in index_html and "✓ réussi" in index_html
    assert "échec planté pour le test" in index_html
    assert 'href="academie/16.html"' in (run_dir / "index.html").read_text(encoding="utf-8")
    log = (run_dir / "batch.log").read_text(encoding="utf-8")
    assert "academie/14" in log and "terminé" in log
    # the planted secret is nowhere in the outputs; the kernel did not even receive it
    assert scan_outputs(run_dir, [fake_secret]) == []
    assert "clé : None" in page


def test_batch_merges_audiences_in_one_run(tmp_path, notebooks, tiny_manifest):
    out = tmp_path / "reports"
    common = dict(out_dir=out, run_id="mois", n_jobs=2, timeout=60, manifest=tiny_manifest.manifest, progress=False)
    jobs = plan_batch("national", all_territories=True, notebooks_dir=notebooks, table=TABLE)
    assert run_batch(jobs, **common).ok
    jobs = plan_batch("academie", only=["16"], notebooks_dir=notebooks, table=TABLE)
    result = run_batch(jobs, **common)
    assert result.ok and [e["notebook"] for e in result.entries] == ["tableau_de_bord", "annexe"]
    index = json.loads((out / "mois/index.json").read_text(encoding="utf-8"))
    assert [(r["audience"], r["territoire"], r["notebook"]) for r in index["reports"]] == [
        ("national", "FR", "tableau_de_bord"), ("academie", "16", "annexe"), ("academie", "16", "tableau_de_bord")]
    assert (out / "mois/national/FR.html").exists() and (out / "mois/academie/annexe-16.html").exists()
    assert oct(os.stat(out / "mois/index.html").st_mode & 0o777) == "0o644"


def test_a_missing_notebook_fails_the_batch_loudly(tmp_path, notebooks, capsys):
    """Before: the default set skipped a missing notebook with a warning, so deleting one failed nothing."""
    folder = tmp_path / "nb"
    write_notebook(folder / "tableau_de_bord.ipynb", ['print(territoire)'])
    with pytest.raises(ConfigError, match=r"Carnet introuvable : .*annexe\.ipynb\. Carnets présents : "
                                          r"tableau_de_bord"):
        plan_batch("academie", only=["14"], notebooks_dir=folder, table=TABLE)
    with pytest.raises(ConfigError, match="Carnet introuvable"):
        plan_batch("academie", only=["14"], notebook="annexe", notebooks_dir=folder, table=TABLE)
    assert [j.notebook for j in plan_batch("academie", only=["14"], notebook="tableau_de_bord",
                                           notebooks_dir=folder, table=TABLE)] == ["tableau_de_bord"]
    # through the command, with the real notebooks.csv: the folder lacks its other notebooks → exit 2, nothing run
    out = tmp_path / "out"
    code = main(["reports", "--audience", "academie", "--only", "16", "--notebooks-dir", str(notebooks),
                 "--out", str(out), "--run-id", "r", "--no-progress"])
    assert code == 2 and "Carnet introuvable" in capsys.readouterr().err
    assert not out.exists()


def test_relative_processed_dir_reaches_the_notebooks_resolved(tmp_path, notebooks, monkeypatch):
    """Before: « --processed data/processed » reached the notebooks as is, and they run in another folder."""
    monkeypatch.chdir(tmp_path)
    jobs = plan_batch("academie", only=["14"], notebook="tableau_de_bord", processed_dir="data/processed",
                      notebooks_dir=notebooks, table=TABLE)
    assert jobs[0].parameters["processed_dir"] == str(tmp_path.resolve() / "data" / "processed")
    jobs = plan_batch("academie", only=["14"], notebook="tableau_de_bord", notebooks_dir=notebooks, table=TABLE)
    assert jobs[0].parameters["processed_dir"] == ""
