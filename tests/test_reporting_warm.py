"""Warm kernels of the report batch: no state leaks between pages, same pages as cold kernels, table cache."""
from __future__ import annotations

import json
import os
import re

import nbformat
import pandas as pd
import pytest

from conftest import write_notebook
from gar_analysis import build
from gar_analysis.cli import main
from gar_analysis.errors import ConfigError
from gar_analysis.reporting.batch import parse_audiences, plan_audiences, plan_batch, run_batch

TABLE = [{"audience": "academie", "notebook": "page", "titre": "Page", "principal": True},
         {"audience": "departement", "notebook": "page", "titre": "Page", "principal": True}]

#: Each page checks that nothing from the previous page is visible, then leaves state of every kind behind.
LEAKY = [
    'import os, warnings\n'
    'import matplotlib\n'
    'import matplotlib.pyplot as plt\n'
    'vus = sorted(n for n in ("reste", "plt_reste", "df_reste") if n in globals())\n'
    'etat = {"pid": os.getpid(), "vus": vus, "figures": plt.get_fignums(),\n'
    '        "largeur": matplotlib.rcParams["lines.linewidth"], "env": os.environ.get("GAR_TEST_RESTE"),\n'
    '        "filtres": sum(1 for f in warnings.filters if f[2] is UserWarning and f[0] == "error"),\n'
    '        "compteur": get_ipython().execution_count, "resume": os.environ.get("GAR_REPORT_SUMMARY", "")}\n'
    'with open(os.path.join(sortie, territoire + ".json"), "w") as fh:\n'
    '    json_text = __import__("json").dumps(etat)\n'
    '    fh.write(json_text)',
    'reste = territoire\n'
    'plt_reste = plt.figure()\n'
    'matplotlib.rcParams["lines.linewidth"] = 7.5\n'
    'os.environ["GAR_TEST_RESTE"] = territoire\n'
    'warnings.simplefilter("error", UserWarning)\n'
    'if territoire == "14":\n'
    '    raise ValueError("échec planté")\n'
    'if territoire == "15":\n'
    '    import time\n'
    '    time.sleep(120)',
]


def _params(out) -> str:
    return ('audience = "academie"\nterritoire = "16"\nprocessed_dir = ""\nseuil_secret = 5\nrun_id = ""\n'
            f'sortie = {str(out)!r}')


def test_no_state_leaks_from_one_page_to_the_next_in_a_warm_kernel(tmp_path, tiny_manifest):
    states = tmp_path / "etats"
    states.mkdir()
    folder = tmp_path / "nb"
    write_notebook(folder / "page.ipynb", LEAKY, parameters=_params(states))
    jobs = plan_batch("academie", only=["16", "17", "14", "15", "18"], notebooks_dir=folder, table=TABLE)
    result = run_batch(jobs, out_dir=tmp_path / "out", run_id="r", n_jobs=1, timeout=5,
                       manifest=tiny_manifest.manifest, progress=False)
    status = {e["territoire"]: e["statut"] for e in result.entries}
    assert status == {"16": "ok", "17": "ok", "14": "echec", "15": "echec", "18": "ok"}
    assert "échec planté" in result.entries[2]["erreur"] and "Délai dépassé" in result.entries[3]["erreur"]
    s = {code: json.loads((states / f"{code}.json").read_text()) for code in ("16", "17", "14", "15", "18")}
    for code, state in s.items():  # every page starts clean, whatever the previous page left
        assert state["vus"] == [] and state["figures"] == [], code
        assert state["largeur"] == s["16"]["largeur"] != 7.5 and state["env"] is None and state["filtres"] == 0
        assert state["compteur"] == 4, code  # as in a new kernel (checked cold): the counter restarts each page
        assert state["resume"].endswith(f".page-{code}.resume.json")
    # one kernel served 16, 17 and 14; the failure replaced it (15), the timeout too (18)
    assert s["16"]["pid"] == s["17"]["pid"] == s["14"]["pid"]
    assert len({s["14"]["pid"], s["15"]["pid"], s["18"]["pid"]}) == 3
    # the executed notebooks stay valid Papermill outputs
    nb = nbformat.read(tmp_path / "out/r/academie/executed/page-17.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["parameters"] in tags and ["injected-parameters"] in tags
    assert nb.metadata["papermill"]["parameters"]["territoire"] == "17"
    injected = nb.cells[tags.index(["injected-parameters"])]
    assert 'territoire = "17"' in injected.source and injected.execution_count == 2
    assert nb.cells[tags.index(["parameters"])].execution_count == 1
    assert all(c.metadata["papermill"]["status"] == "completed" for c in nb.cells)


def test_warm_pages_equal_cold_pages_on_tiny_notebook(tmp_path, tiny_manifest):
    folder = tmp_path / "nb"
    write_notebook(folder / "page.ipynb", [
        'import matplotlib.pyplot as plt\nfrom IPython.display import HTML, display\n'
        'display(HTML(f"<p>Territoire {territoire}</p>"))\n'
        'fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 3, 2]); ax.set_title(territoire); plt.show()'])
    pages = {}
    for warm in (True, False):
        jobs = plan_batch("academie", only=["17", "16"], notebooks_dir=folder, table=TABLE)
        result = run_batch(jobs, out_dir=tmp_path / str(warm), run_id="r", n_jobs=1, timeout=60,
                           manifest=tiny_manifest.manifest, progress=False, warm=warm)
        assert result.ok
        pages[warm] = normalise((tmp_path / str(warm) / "r/academie/16.html").read_text(encoding="utf-8"))
    assert pages[True] == pages[False]


def normalise(page: str) -> str:
    """Drop what differs between two renderings of the same page: times, dates, durations."""
    page = re.sub(r"\d{2}/\d{2}/\d{4} à \d{2}:\d{2}( UTC)?", "DATE", page)
    page = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?", "DATE", page)
    return re.sub(r"\d+([,.]\d+)?\s?s\b", "DUREE", page)


@pytest.mark.slow
def test_warm_pages_equal_cold_pages_on_the_real_dashboard(tmp_path, sample_build):
    pages = {}
    for warm in (True, False):
        # warm: Lyon's page runs second in a kernel that rendered Grenoble's first
        jobs = plan_batch("academie", only=["08", "10"], notebook="tableau_de_bord",
                          processed_dir=sample_build.processed_dir)
        result = run_batch(jobs if warm else jobs[1:], out_dir=tmp_path / str(warm), run_id="r", n_jobs=1,
                           processed_dir=sample_build.processed_dir, progress=False, warm=warm)
        assert result.ok, result.failures
        pages[warm] = normalise((tmp_path / str(warm) / "r/academie/10.html").read_text(encoding="utf-8"))
    assert "Lyon" in pages[True] and pages[True] == pages[False]


def test_table_cache_sees_a_new_build_and_cannot_be_altered(tmp_path):
    path = tmp_path / "ressources.parquet"
    pd.DataFrame({"id_ressource": ["r1", "r2"], "n": [1, 2]}).to_parquet(path)
    build.cache_tables(True)
    try:
        first = build.load_processed("ressources", tmp_path)
        first.loc[0, "n"] = 99  # a notebook altering its copy
        first["ajout"] = 1
        again = build.load_processed("ressources", tmp_path)
        assert again["n"].tolist() == [1, 2] and "ajout" not in again
        pd.DataFrame({"id_ressource": ["r3"], "n": [3]}).to_parquet(path)  # a new build
        os.utime(path, ns=(1, 1_000_000_000))
        assert build.load_processed("ressources", tmp_path)["id_ressource"].tolist() == ["r3"]
        assert len(build._TABLE_CACHE) == 1  # the older build was dropped
    finally:
        build.cache_tables(False)
    assert build._TABLE_CACHE is None


def test_several_audiences_in_one_batch(tmp_path, tiny_manifest):
    assert parse_audiences(["all"]) == ["national", "region_academique", "academie", "region", "departement",
                                        "editeur"]
    assert parse_audiences(["departement,academie"]) == ["departement", "academie"]
    with pytest.raises(ConfigError, match="Audience inconnue : 'rectorat'.*all, national"):
        parse_audiences(["academie", "rectorat"])
    folder = tmp_path / "nb"
    write_notebook(folder / "page.ipynb", ['print(audience, territoire)'])
    with pytest.raises(ConfigError, match="--only ne s'emploie qu'avec une seule audience"):
        plan_audiences(["academie", "departement"], only=["16"], notebooks_dir=folder, table=TABLE)
    jobs = plan_audiences(["departement", "academie"], all_territories=True, notebooks_dir=folder, table=TABLE)
    assert [j.audience for j in jobs[:1] + jobs[-1:]] == ["academie", "departement"]
    assert len(jobs) == 30 + 101


def test_cli_runs_several_audiences_in_one_run(tmp_path, tiny_manifest, monkeypatch):
    folder = tmp_path / "nb"
    for name in ("tableau_de_bord", "ecarts_territoriaux", "facteurs_de_succes"):
        write_notebook(folder / f"{name}.ipynb", ['print(audience, territoire)'])
    out = tmp_path / "out"
    code = main(["reports", "--audience", "academie", "region", "--notebook", "tableau_de_bord", "--all",
                 "--out", str(out), "--run-id", "r", "--no-progress", "--jobs", "2",
                 "--processed", str(tiny_manifest.processed_dir), "--notebooks-dir", str(folder)])
    assert code == 0
    index = json.loads((out / "r/index.json").read_text(encoding="utf-8"))
    assert {r["audience"] for r in index["reports"]} == {"academie", "region"}
    assert len(index["reports"]) == 30 + 18 and all(r["statut"] == "ok" for r in index["reports"])


def test_memoised_national_computations_give_the_same_figures(sample_build):
    """In a warm kernel, school facts, national values, positions and actors are computed once per build."""
    from gar_analysis import indicators as ind

    pages = [("academie", "10"), ("academie", "08"), ("departement", "69"), ("region", "84"),
             ("region_academique", "84")]

    def figures():
        out = []
        for audience, code in pages:
            t = ind.Tables(sample_build.processed_dir)  # a new Tables per page, as a notebook makes
            out.append((ind.territory_values(t, audience, code), ind.positions(t, audience, code),
                        ind.conventions(t, audience, code), ind.budget(t, audience, code)))
        return out

    cold = figures()
    build.cache_tables(True)
    try:
        warm, again = figures(), figures()
        assert ind._MEMO["values"]  # the memo was used
    finally:
        build.cache_tables(False)
    for a, b, c in zip(cold, warm, again):
        pd.testing.assert_frame_equal(a[0], b[0])
        pd.testing.assert_frame_equal(a[0], c[0])
        assert a[1] == b[1] == c[1]
        for i in (2, 3):
            pd.testing.assert_frame_equal(a[i].reset_index(drop=True), c[i].reset_index(drop=True))
    assert any(c[1] for c in cold)  # some positions are called
