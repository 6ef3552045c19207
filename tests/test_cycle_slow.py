"""``gar-analysis cycle`` on the sample: which pages one académie's change re-renders, reuse, crash and resume.

Slow: each test builds tables or executes notebooks (small ones for the cycles).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_notebook
from gar_analysis import cycle
from gar_analysis.territories import AUDIENCE_REGISTRY, territory_codes

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CODE = {"version": "test", "sources_sha256": "fixe"}
MOVED_FROM, MOVED_TO = "2024-11", "2024-12"  # inside the 12-month window, outside the last 3 months and their year-earlier months


def _move_one_access(data_dir: Path, schools: pd.DataFrame, academie: str) -> pd.DataFrame:
    """In ``gar/acces.csv``, move one accès from March to April for a few schools of one académie.

    The change is real (the monthly series of these schools change) but leaves every
    12-month total, the reference month and the year-on-year figures as they were.
    Returns the rows changed (uai, id_ressource).
    """
    path = data_dir / "gar" / "acces.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split(";")
    col = {c: i for i, c in enumerate(header)}
    mine = schools[schools["code_academie"] == academie]
    wanted = {}
    for niveau in ("lycee", "college", "ecole"):  # one school of each level, so that every audience is concerned
        wanted.update({u: niveau for u in mine.loc[mine["niveau"] == niveau, "uai"].head(40)})
    rows = {}
    for i, line in enumerate(lines[1:], start=1):
        f = line.split(";")
        if len(f) != len(header) or f[col["uai"]] not in wanted or f[col["mois"]] not in (MOVED_FROM, MOVED_TO):
            continue
        key = (f[col["uai"]], f[col["id_ressource"]], f[col["profil"]], f[col["support"]])
        rows.setdefault(key, {})[f[col["mois"]]] = i
    changed, levels = [], set()
    for key, at in rows.items():
        if len(at) < 2 or wanted[key[0]] in levels:
            continue
        a, b = lines[at[MOVED_FROM]].split(";"), lines[at[MOVED_TO]].split(";")
        if int(a[col["acces"]]) < 3:
            continue
        a[col["acces"]] = str(int(a[col["acces"]]) - 1)
        b[col["acces"]] = str(int(b[col["acces"]]) + 1)
        lines[at[MOVED_FROM]], lines[at[MOVED_TO]] = ";".join(a), ";".join(b)
        changed.append({"uai": key[0], "id_ressource": key[1]})
        levels.add(wanted[key[0]])
    assert levels >= {"lycee", "college"}, "échantillon : pas assez de lignes à déplacer"
    path.write_text("\n".join(lines), encoding="utf-8")
    return pd.DataFrame(changed)


def test_one_academie_changed_rerenders_its_pages_and_those_that_aggregate_it(sample_build, tmp_path):
    from gar_analysis.build import build, load_processed

    before = sample_build.processed_dir
    schools = load_processed("etablissements", before)
    academie = schools["code_academie"].value_counts().index[0]
    data = tmp_path / "data"
    shutil.copytree(sample_build.data_dir, data)
    changed = _move_one_access(data, schools, academie)
    after = tmp_path / "processed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build(data, after)

    jobs = cycle.plan_jobs(list(AUDIENCE_REGISTRY), processed_dir=before, release_id="t", reference_dir=None)
    fp_before = cycle.Fingerprints(before, code=CODE)
    fp_after = cycle.Fingerprints(after, code=CODE)
    rerun = {j.html_rel for j in jobs if fp_before.fingerprint(j) != fp_after.fingerprint(j)}

    moved = schools[schools["uai"].isin(changed["uai"])]
    region = moved["code_region"].iloc[0]
    ress = load_processed("ressources", before)
    editeurs = set(ress.loc[ress["id_ressource"].isin(changed["id_ressource"]), "id_editeur"].astype(str))
    by = {(j.audience, j.territoire, j.notebook): j.html_rel for j in jobs}
    expected = {
        # the académie's own pages
        *(by[("academie", academie, nb)] for nb in ("tableau_de_bord", "ecarts_territoriaux", "facteurs_de_succes")),
        # the pages that aggregate it: its région académique and the national pages reading processed tables
        by[("region_academique", region, "tableau_de_bord")],
        *(by[("national", "FR", nb)] for nb in ("tableau_de_bord", "ecarts_territoriaux", "facteurs_de_succes")),
        # local authorities whose funded schools moved: the région (lycées), the départements (collèges)
        *(by[("region", r, "tableau_de_bord")] for r in moved.loc[moved["niveau"] == "lycee", "code_region"]),
        *(by[("departement", d, "tableau_de_bord")]
          for d in moved.loc[moved["niveau"] == "college", "code_departement"]),
        # publishers whose resources' monthly accès moved
        *(by[("editeur", e, "editeur")] for e in editeurs),
    }
    assert rerun == expected
    # and nothing else: every other académie, the national open-data page, the other publishers are reused
    assert by[("national", "FR", "national_opendata")] not in rerun
    assert len(jobs) - len(rerun) > 100


def test_a_change_of_the_national_reference_rerenders_every_page_compared_with_it(sample_build, tmp_path):
    """The honest limit: when one académie's 12-month figures move, every territorial page compares with them."""
    from gar_analysis.build import load_processed

    after = tmp_path / "processed"
    shutil.copytree(sample_build.processed_dir, after)
    usage = load_processed("usage_mensuel", after)
    schools = load_processed("etablissements", after)
    academie = schools["code_academie"].value_counts().index[0]
    last = usage["mois"].astype(str).max()
    hit = usage["uai"].isin(schools.loc[schools["code_academie"] == academie, "uai"]) & (usage["mois"] == last)
    usage.loc[hit, "acces"] = usage.loc[hit, "acces"] * 2
    usage.to_parquet(after / "usage_mensuel.parquet", index=False)
    jobs = [j for j in cycle.plan_jobs(["academie", "departement"], processed_dir=sample_build.processed_dir,
                                       release_id="t", reference_dir=None) if j.notebook == "tableau_de_bord"]
    a = cycle.Fingerprints(sample_build.processed_dir, code=CODE)
    b = cycle.Fingerprints(after, code=CODE)
    assert all(a.components(j)["reference"] != b.components(j)["reference"] for j in jobs)


# --------------------------------------------------------------------------- cycles with small notebooks

def _setup(sample_build, tmp_path, pause=1.0):
    nbs = tmp_path / "carnets"
    write_notebook(nbs / "mini.ipynb", ["import time\ntime.sleep(pause)\nprint(audience, territoire)"],
                   title="# Page d'essai",
                   parameters='audience = "national"\nterritoire = "FR"\nprocessed_dir = ""\nseuil_secret = 5\n'
                              f'run_id = ""\nreference_dir = ""\npause = {pause}')
    table = nbs / "carnets.csv"
    table.write_text("audience;notebook;titre;principal\nnational;mini;Essai;oui\n"
                     "region_academique;mini;Essai;oui\n", encoding="utf-8")
    processed = tmp_path / "processed"
    shutil.copytree(sample_build.processed_dir, processed)
    return nbs, table, processed


def _args(sample_build, tmp_path, nbs, table, processed, rid):
    return ["cycle", "--data", str(sample_build.data_dir), "--processed", str(processed),
            "--reports", str(tmp_path / "reports"), "--history", str(tmp_path / "history"),
            "--notebooks-dir", str(nbs), "--notebooks-table", str(table), "--no-refresh", "--share-dry-run",
            "--jobs", "2", "--release-id", rid]


def _cli(args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gar_analysis.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900)


def test_cycles_reuse_unchanged_pages_and_resume_after_a_kill(sample_build, tmp_path):
    nbs, table, processed = _setup(sample_build, tmp_path)
    layout = cycle.Layout(tmp_path / "reports", tmp_path / "history")

    first = _cli(_args(sample_build, tmp_path, nbs, table, processed, "r1"))
    assert first.returncode == 0, first.stderr
    m1 = cycle.read_manifest(layout.releases / "r1")
    n = len(m1["pages"])
    assert n == 1 + len(territory_codes("region_academique"))
    assert m1["statut"] == "complete" and m1["publiee"] and cycle.latest_release(layout) == "r1"
    assert m1["etapes"]["check_build"].startswith("ignore")  # tables already built from these exact files
    assert {p["statut"] for p in m1["pages"].values()} == {"ok"}
    assert m1["entrees"] and all(len(e["sha256"]) == 64 and e["lignes"] >= 0 for e in m1["entrees"])
    assert m1["code"]["sources_sha256"] and m1["reference"] is None and m1["periode"]
    assert (layout.releases / "r1" / "nouveautes.html").is_file()
    assert json.loads((layout.releases / "r1" / "partage.json").read_text())["messages"]

    second = _cli(_args(sample_build, tmp_path, nbs, table, processed, "r2"))
    assert second.returncode == 0, second.stderr
    m2 = cycle.read_manifest(layout.releases / "r2")
    assert {(p["statut"], p.get("reutilise_de")) for p in m2["pages"].values()} == {("reutilise", "r1")}
    assert {k: p["empreinte"] for k, p in m2["pages"].items()} == {k: p["empreinte"] for k, p in m1["pages"].items()}
    assert cycle.latest_release(layout) == "r2"
    for key in m2["pages"]:  # the reused page is the same file (hard link), listed in the portal
        assert os.path.samefile(layout.releases / "r1" / key, layout.releases / "r2" / key)
    index = json.loads((layout.releases / "r2" / "index.json").read_text())
    assert len([e for e in index["reports"] if e["statut"] == "ok"]) == n

    # the notebook changes: every page must be redone; the cycle is killed mid-way
    write_notebook(nbs / "mini.ipynb", ["import time\ntime.sleep(pause)\nprint('v2', audience, territoire)"],
                   title="# Page d'essai",
                   parameters='audience = "national"\nterritoire = "FR"\nprocessed_dir = ""\nseuil_secret = 5\n'
                              'run_id = ""\nreference_dir = ""\npause = 1.0')
    proc = subprocess.Popen([sys.executable, "-m", "gar_analysis.cli",
                             *_args(sample_build, tmp_path, nbs, table, processed, "r3")],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index3 = layout.releases / "r3" / "index.json"
    deadline = time.monotonic() + 600
    done = []
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = [e for e in json.loads(index3.read_text())["reports"] if e["statut"] == "ok"]
        except (OSError, ValueError, KeyError):
            done = []
        if len(done) >= 4:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "le cycle s'est terminé avant d'être interrompu"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert cycle.latest_release(layout) == "r2"  # still the previous complete release
    assert (layout.latest / "index.json").is_file()
    m3 = cycle.read_manifest(layout.releases / "r3")
    assert m3["statut"] == "en_cours" and not m3["publiee"]
    finished = {e["html"] for e in json.loads(index3.read_text())["reports"] if e["statut"] == "ok"}
    assert 4 <= len(finished) < n

    fourth = _cli(_args(sample_build, tmp_path, nbs, table, processed, "r4"))
    assert fourth.returncode == 0, fourth.stderr
    m4 = cycle.read_manifest(layout.releases / "r4")
    reused = {k for k, p in m4["pages"].items() if p["statut"] == "reutilise"}
    assert reused == finished  # the pages the killed cycle had finished are not redone
    assert all(m4["pages"][k]["reutilise_de"] == "r3" for k in reused)
    assert {p["statut"] for k, p in m4["pages"].items() if k not in reused} == {"ok"}
    assert cycle.latest_release(layout) == "r4"
    assert "v2" in (layout.releases / "r4" / next(iter(m4["pages"]))).read_text(encoding="utf-8")


def test_the_comparison_base_counts_only_for_pages_that_read_it(sample_build, tmp_path):
    from gar_analysis import changes

    base = changes.write_snapshot(sample_build.processed_dir, tmp_path / "history" / "r0")
    jobs = cycle.plan_jobs(["academie"], processed_dir=sample_build.processed_dir, release_id="t",
                           reference_dir=base)
    first = cycle.Fingerprints(sample_build.processed_dir, code=CODE)
    compared = cycle.Fingerprints(sample_build.processed_dir, code=CODE, reference_dir=base)
    for job in jobs:
        if job.notebook == "tableau_de_bord":  # declares reference_dir: compared for the first time → redone
            assert job.parameters["reference_dir"] == str(base)
            assert first.components(job)["base_de_comparaison"] is None
            assert compared.fingerprint(job) != first.fingerprint(job)
        else:  # reads no base: reused
            assert "base_de_comparaison" not in compared.components(job)
            assert compared.fingerprint(job) == first.fingerprint(job)
