"""Change detection since the previous publication, release notes and the digest of changes."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from gar_analysis import changes as C
from gar_analysis.territories import departements


def _facts(seed: int, *, jump: str | None = None, stop: str | None = None, start: str | None = None,
           register: str | None = None, month: str = "2025-06") -> pd.DataFrame:
    """Synthetic school facts: 10 schools per département, usage drawn around the same means each time."""
    rng = np.random.default_rng(seed)
    deps = departements()
    rows = []
    for d in deps.itertuples():
        for k in range(10):
            uai = f"{d.code_departement:0>3}{k:04d}Z"[:8]
            rows.append({"uai": uai, "nom": f"Collège {d.code_departement}-{k}", "code_departement": d.code_departement,
                         "code_academie": d.code_academie, "code_region": d.code_region,
                         "niveau": "college" if k % 2 else "lycee", "secteur": "public"})
    f = pd.DataFrame(rows)
    n = len(f)
    structural = np.random.default_rng(0)  # the same schools, enrolments and registrations every month
    f["nombre_eleves"] = structural.integers(200, 900, n)
    f["inscrit"] = np.arange(n) % 10 != 9
    base = structural.gamma(4, 1.0, n)  # each school's own level of usage
    f["acces_eleve_12m"] = rng.poisson(f["nombre_eleves"] * base * (1.0 + 0.01 * rng.normal(size=n)))
    f["acces_mois"] = rng.poisson(f["nombre_eleves"] * base / 10)
    if jump:
        sel = f["code_academie"] == jump
        f.loc[sel, "acces_eleve_12m"] = (f.loc[sel, "acces_eleve_12m"] * 1.25).round()
    f["acces_12m"] = f["acces_eleve_12m"] + rng.poisson(500, n)
    f["acces_enseignant_12m"] = f["acces_12m"] - f["acces_eleve_12m"]
    f["acces_mobile_tablette_12m"] = rng.poisson(50, n)
    f["accedants_enseignant"] = structural.integers(10, 40, n)
    f["accedants"] = f["accedants_enseignant"] + 100
    f["affectations_mois"] = rng.poisson(250, n)
    f["affectations"] = 10
    f["referent"] = np.arange(n) % 3 == 0
    f["convention"] = True
    f["actions_formation"] = 0
    f["projet_ent"], f["mediacentre"] = "ENT", "M"
    f["delai_inscription_jours"] = 30
    for c in ("acces_3_mois", "acces_3_mois_an", "acces_mois_an"):
        f[c] = f["acces_mois"]
    if start:
        f.loc[f["uai"] == start, "acces_mois"] = 40
    if stop:
        f.loc[f["uai"] == stop, "acces_mois"] = 0
    if register:
        f.loc[f["uai"] == register, ["inscrit", "acces_mois"]] = [True, 30]
    f.loc[~f["inscrit"], "acces_mois"] = 0
    f["actif_mois"] = f["acces_mois"] > 0
    return f


def _findings(keys: list[tuple]) -> pd.DataFrame:
    f = pd.DataFrame(keys, columns=["regle", "source", "uai", "mois", "id_ressource"])
    f["gravite"] = "erreur"
    f["message"] = "x"
    f["cle"] = C.finding_keys(f)
    return f.assign(niveau="college", code_departement="35", code_academie="14", code_region="53")


def _state(facts: pd.DataFrame, findings: pd.DataFrame | None = None, month="2025-06") -> C.State:
    return C.State(facts, findings if findings is not None else _findings([]),
                   {"debut": "2023-09", "fin": month, "mois_reference": month}, True)


def test_same_data_reports_nothing():
    f = _facts(1)
    out = C.all_changes(_state(f), _state(f.copy()), threshold=5, audiences=("national", "academie"))
    assert len(out) == 1 + 30
    assert sum(c["nombre"] for c in out) == 0


def test_noise_alone_stays_quiet_and_a_jump_is_found():
    old = _state(_facts(1))
    quiet = C.all_changes(old, _state(_facts(2, month="2025-09")), threshold=5, audiences=("academie", "departement"))
    flagged = [c for c in quiet if c["points_forts"] or c["reculs"]]
    assert len(flagged) <= 0.05 * len(quiet)
    ch = C.indicator_changes(old, _state(_facts(2, jump="14")), "academie")
    sig = ch[ch["signal"] != ""]
    assert set(sig["code"]) == {"14"}
    assert set(sig["indicateur"]) == {"acces_par_eleve"}
    out = C.territory_changes(old, _state(_facts(2, jump="14")), "academie", "14", threshold=5)
    assert out["points_forts"] and out["points_forts"][0].startswith("Accès des élèves par élève sur 12 mois en hausse")
    assert "au niveau national" in out["points_forts"][0]
    nat = C.territory_changes(old, _state(_facts(2, jump="14")), "national", "FR", threshold=5)
    assert any(s.startswith("Académie de Rennes — accès des élèves") for s in nat["points_forts"])


def test_schools_newly_registered_active_inactive_by_the_registry_definitions():
    f = _facts(1)
    stop = f[(f["code_departement"] == "35") & f["actif_mois"] & (f["niveau"] == "college")]["uai"].iloc[0]
    unreg = f[(f["code_departement"] == "35") & ~f["inscrit"]]["uai"].iloc[0]
    old = _facts(1)
    old.loc[old["uai"] == stop, "acces_mois"] = 10
    old["actif_mois"] = old["acces_mois"] > 0
    new = _facts(1, stop=stop, register=unreg)
    out = C.territory_changes(_state(old), _state(new), "departement", "35", threshold=5)
    assert [s["uai"] for s in out["nouveaux_inscrits"]] == [unreg]
    assert [s["uai"] for s in out["nouveaux_actifs"]] == [unreg]
    assert [s["uai"] for s in out["nouveaux_inactifs"]] == [stop]
    other = C.territory_changes(_state(old), _state(new), "departement", "29", threshold=5)
    assert other["nombre"] == 0
    good, bad, _ = C.change_items(out)
    assert good[0].startswith("1 établissement(s) nouvellement inscrit(s)")  # bright spots first
    assert "nouvellement inscrit" not in " ".join(bad) and stop in " ".join(bad)


def test_a_school_whose_reference_month_has_missing_data_is_not_called_active_or_inactive():
    """A school whose month is missing (a finding) did not start or stop: its data did. Others are still reported."""
    f = _facts(1)
    in35 = f[(f["code_departement"] == "35") & f["actif_mois"] & (f["niveau"] == "college")]["uai"]  # a département's
    gap, stop = in35.iloc[0], in35.iloc[1]                                                         # schools: collèges
    old = _facts(1)
    old.loc[old["uai"] == gap, "acces_mois"] = 0  # its June is missing from the data, not unused
    old["actif_mois"] = old["acces_mois"] > 0
    new = _facts(1, stop=stop)
    missing = _findings([("mois_manquant", "gar/acces.csv", gap, "2025-06", "")])
    out = C.territory_changes(_state(old, missing), _state(new, month="2025-09"), "departement", "35", threshold=5)
    assert gap not in [s["uai"] for s in out["nouveaux_actifs"]]
    assert [s["uai"] for s in out["nouveaux_inactifs"]] == [stop]
    unrelated = _findings([("doublon", "gar/acces.csv", gap, "2025-06", "R0001")])  # a duplicate loses no data
    out = C.territory_changes(_state(old, unrelated), _state(new, month="2025-09"), "departement", "35", threshold=5)
    assert gap in [s["uai"] for s in out["nouveaux_actifs"]]


def test_findings_fixed_and_new_by_their_stable_key():
    a = ("doublon", "gar/acces.csv", "0350001A", "2025-05", "R0001")
    b = ("uai_inconnu", "gar/acces.csv", "0350002B", "2025-05", "")
    c = ("doublon", "gar/acces.csv", "0350003C", "2025-09", "R0002")
    old, new = _findings([a, b]), _findings([b, c])
    new.loc[new["uai"] == b[2], "message"] = "ligne 12 déplacée"  # the line number moves: same finding
    f = _facts(1)
    out = C.territory_changes(_state(f, old), _state(f, new), "academie", "14", threshold=5)
    assert [x["uai"] for x in out["constats_corriges"]] == [a[2]]
    assert [x["uai"] for x in out["nouveaux_constats"]] == [c[2]]


def test_a_change_on_a_small_count_of_people_is_never_quoted():
    row = {"indicateur": "acces_par_eleve", "avant": 2.0, "apres": 9.0, "den_avant": 40.0, "den_apres": 40.0,
           "ecart": 7.0, "ecart_national": 0.1, "z": 5.0, "signal": "hausse"}
    good, text = C._sentence(row, 5)
    assert good and "2,00 → 9,00" in text
    assert C._sentence({**row, "den_apres": 3.0}, 5) is None  # 3 pupils: the rate would reveal them
    share = {**row, "indicateur": "part_actifs_mois", "avant": 0.5, "apres": 0.9, "den_avant": 10.0,
             "den_apres": 10.0, "signal": "hausse"}
    assert C._sentence(share, 5) is not None  # a share of schools: a public fact, quoted


def test_release_notes_first_release_and_changes(tmp_path, monkeypatch):
    old_facts, new_facts = _facts(1), _facts(2, jump="14")
    monkeypatch.setattr(C.State, "from_processed", classmethod(lambda cls, p=None, tables=None: _state(new_facts)))
    snap = tmp_path / "snap"
    snap.mkdir()
    old_facts.to_parquet(snap / "etablissements.parquet")
    _findings([]).to_parquet(snap / "constats.parquet")
    (snap / "snapshot.json").write_text(json.dumps({"periode": {"mois_reference": "2025-06"},
                                                    "an_disponible": True}))
    first = C.release_notes(None, "unused", tmp_path / "r1", release_id="r1")
    assert first["premiere"] and first["territoires"] == 0
    page = (tmp_path / "r1" / "nouveautes.html").read_text(encoding="utf-8")
    assert "première publication, il n'y a rien à comparer" in page and '<html lang="fr">' in page
    summary = C.release_notes(snap, "unused", tmp_path / "r2", release_id="r2", reference_id="r1")
    assert summary["territoires"] >= 1 and summary["points_forts"] >= 1
    doc = json.loads((tmp_path / "r2" / "changements.json").read_text(encoding="utf-8"))
    assert doc["reference"] == "r1" and not doc["premiere"]
    entry = next(e for e in doc["territoires"] if e["audience"] == "academie")
    assert entry["territoire"] == "14" and entry["html"] == "academie/14.html"
    page = (tmp_path / "r2" / "nouveautes.html").read_text(encoding="utf-8")
    assert 'href="academie/14.html"' in page and "Ce qui progresse" in page
    assert "editeur/" not in page


def test_snapshot_of_processed_tables(sample_build, tmp_path):
    dest = C.write_snapshot(sample_build.processed_dir, tmp_path / "history" / "r1")
    meta = json.loads((dest / "snapshot.json").read_text(encoding="utf-8"))
    assert meta["periode"]["mois_reference"] == "2025-06" and meta["periode"]["fin"] == "2025-08"
    facts = pd.read_parquet(dest / "etablissements.parquet")
    assert facts["uai"].is_unique and {"code_academie", "inscrit", "actif_mois"} <= set(facts.columns)
    assert not {"ine", "eleve", "date_naissance"} & set(facts.columns)
    found = pd.read_parquet(dest / "constats.parquet")
    assert found["cle"].is_unique and "uai" in found.columns
    again = C.State.from_snapshot(dest)
    now = C.State.from_processed(sample_build.processed_dir)
    assert sum(c["nombre"] for c in C.all_changes(again, now)) == 0


def test_dashboard_section_first_release_and_with_changes(tmp_path, capsys, monkeypatch):
    from gar_analysis.reporting import display as d

    shown = []
    monkeypatch.setattr(d, "_display", lambda markup: shown.append(markup) or markup)
    monkeypatch.setattr(C.State, "from_processed", classmethod(lambda cls, p=None, tables=None: _state(_facts(2, jump="14"))))
    C.show_changes("", None, "academie", "14")
    assert "Depuis la publication précédente" in shown[0] and "Première publication" in shown[1]
    snap = tmp_path / "snap"
    snap.mkdir()
    _facts(1).to_parquet(snap / "etablissements.parquet")
    _findings([]).to_parquet(snap / "constats.parquet")
    (snap / "snapshot.json").write_text(json.dumps({"periode": {"mois_reference": "2025-06"}, "an_disponible": True}))
    shown.clear()
    ch = C.show_changes(str(snap), None, "academie", "14")
    html = "".join(shown)
    assert ch["points_forts"] and "Ce qui progresse" in html and "juin 2025" in html


@pytest.mark.parametrize("to, message", [("2025-13", "mois invalide"), ("2025-08", "va déjà jusqu'à 2025-08"),
                                         ("2027-01", "au plus 12 mois")])
def test_extend_refuses_a_bad_month(tmp_path, to, message):
    from gar_analysis.errors import ConfigError
    from gar_analysis.sample.extend import extend

    (tmp_path / "truth.json").write_text(json.dumps({"seed": 1, "periode": {"debut": "2023-09", "fin": "2025-08"}}))
    with pytest.raises(ConfigError, match=message):
        extend(tmp_path, to)


def test_extend_cli_errors(tmp_path, capsys):
    from gar_analysis import cli

    assert cli.main(["sample", "--out", str(tmp_path), "--extend-to", "2025-09"]) != 0
    assert "truth.json absent" in capsys.readouterr().err
    assert cli.main(["sample", "--out", str(tmp_path), "--no-changes"]) != 0
    assert "--no-changes ne s'emploie qu'avec --extend-to" in capsys.readouterr().err


# --------------------------------------------------------------------------- against the sample's truth (slow)


def _built(src, dest, *, to, plant):
    from gar_analysis.build import build
    from gar_analysis.sample.extend import extend

    shutil.copytree(src, dest / "data")
    truth = extend(dest / "data", to, plant=plant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build(dest / "data", dest / "processed")
    return truth, C.State.from_processed(dest / "processed")


@pytest.mark.slow
def test_planted_changes_are_found_and_none_invented(sample_build, tmp_path):
    old = C.State.from_snapshot(C.write_snapshot(sample_build.processed_dir, tmp_path / "snap"))
    truth, new = _built(sample_build.data_dir, tmp_path / "planted", to="2025-09", plant=True)
    for rel in ("gar/affectations.csv", "gar/abonnements.csv", "gar/etablissements.csv"):  # lines kept, new ones appended
        before = (sample_build.data_dir / rel).read_bytes()
        assert (tmp_path / "planted" / "data" / rel).read_bytes().startswith(before)
    ch = truth["changements"]
    assert new.periode["mois_reference"] == "2025-09" and ch["mois_reference_avant"] == "2025-06"
    aca = ch["academies"]
    found = C.territory_changes(old, new, "academie", ch["hausse_academie"]["code_academie"])
    assert any(s.startswith("Accès des élèves par élève sur 12 mois en hausse") for s in found["points_forts"])
    assert ch["nouvel_inscrit"] in {s["uai"] for s in
                                    C.territory_changes(old, new, "academie", aca["nouvel_inscrit"])["nouveaux_inscrits"]}
    assert ch["demarre"] in {s["uai"] for s in
                             C.territory_changes(old, new, "academie", aca["demarre"])["nouveaux_actifs"]}
    assert ch["arrete"] in {s["uai"] for s in
                            C.territory_changes(old, new, "academie", aca["arrete"])["nouveaux_inactifs"]}
    nat = C.territory_changes(old, new, "national", "FR")
    fixed = {(x["regle"], x["uai"]) for x in nat["constats_corriges"]}
    assert (ch["anomalie_corrigee"]["regle"], ch["anomalie_corrigee"]["uai"]) in fixed
    assert ("doublon", ch["nouvelle_anomalie"]["uai"]) in {(x["regle"], x["uai"]) for x in nat["nouveaux_constats"]}
    # a month with noise only: indicator changes in at most 5 % of territories, no finding fixed or new
    _, quiet = _built(sample_build.data_dir, tmp_path / "quiet", to="2025-09", plant=False)
    allc = C.all_changes(old, quiet)
    flagged = [c for c in allc if c["points_forts"] or c["reculs"]]
    assert len(flagged) <= 0.05 * len(allc), [(c["audience"], c["territoire"]) for c in flagged]
    # and any change at all (school lists included) in at most 5 % of territories: schools whose month had
    # missing data are not called newly active or inactive
    anything = [c for c in allc if any(c[k] for k in ("points_forts", "reculs", "nouveaux_inscrits", "nouveaux_actifs",
                                                      "nouveaux_inactifs", "constats_corriges", "nouveaux_constats"))]
    assert len(anything) <= 0.05 * len(allc), [(c["audience"], c["territoire"]) for c in anything]
    assert not any(c["nouveaux_inscrits"] or c["constats_corriges"] or c["nouveaux_constats"] for c in allc)


@pytest.mark.slow
def test_dashboard_opens_with_what_changed(sample_build, tmp_path, monkeypatch):
    import papermill as pm

    from gar_analysis import config

    snap = C.write_snapshot(sample_build.processed_dir, tmp_path / "snap")
    facts = pd.read_parquet(snap / "etablissements.parquet")
    now_active = facts[(facts["code_academie"] == "14") & facts["actif_mois"] & facts["inscrit"]]["uai"].iloc[0]
    facts.loc[facts["uai"] == now_active, "actif_mois"] = False  # inactive at the previous publication
    facts.to_parquet(snap / "etablissements.parquet")
    monkeypatch.setenv("GAR_REPORT_SUMMARY", str(tmp_path / "resume.json"))
    html = {}
    for name, ref in (("premiere", ""), ("suivante", str(snap))):
        out = tmp_path / f"{name}.ipynb"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm.execute_notebook(str(config.REPORT_NOTEBOOKS_DIR / "tableau_de_bord.ipynb"), str(out),
                                kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
                                parameters={"audience": "academie", "territoire": "14", "seuil_secret": 5,
                                            "processed_dir": str(sample_build.processed_dir), "run_id": "t",
                                            "reference_dir": ref})
        nb = json.loads(out.read_text(encoding="utf-8"))
        html[name] = "\n".join("".join(o["data"]["text/html"]) for c in nb["cells"] for o in c.get("outputs", [])
                               if "text/html" in o.get("data", {}))
    assert "Première publication" in html["premiere"]
    page = html["suivante"]
    order = [page.index(t) for t in ("L&#x27;essentiel", "Depuis la publication précédente", "Déploiement")]
    assert order == sorted(order)
    assert now_active in page and "devenu(s) actif(s)" in page


def _release(tmp_path, monkeypatch, *, first: bool):
    new_facts = _facts(2, jump="14", start=None)
    unreg = new_facts[(new_facts["code_departement"] == "35") & ~new_facts["inscrit"]]["uai"].iloc[0]
    new_facts.loc[new_facts["uai"] == unreg, ["inscrit", "acces_mois", "actif_mois"]] = [True, 30, True]
    monkeypatch.setattr(C.State, "from_processed", classmethod(
        lambda cls, p=None, tables=None: _state(new_facts, _findings([("doublon", "gar/acces.csv", "0350003C",
                                                                        "2025-09", "R0002")]), month="2025-09")))
    snap = tmp_path / "snap"
    snap.mkdir(exist_ok=True)
    _facts(1).to_parquet(snap / "etablissements.parquet")
    _findings([]).to_parquet(snap / "constats.parquet")
    (snap / "snapshot.json").write_text(json.dumps({"periode": {"mois_reference": "2025-06"}, "an_disponible": True}))
    run = tmp_path / "2025-10-01"
    run.mkdir()
    (run / "index.json").write_text(json.dumps({"run_id": "2025-10-01", "simule": True, "reports": [
        {"audience": "academie", "territoire": "14", "nom": "académie de Rennes", "notebook": "tableau_de_bord",
         "statut": "ok", "html": "academie/14.html", "points_forts": ["Tous les lycées sont inscrits."],
         "a_corriger": []}]}), encoding="utf-8")
    C.release_notes(None if first else snap, "unused", run, release_id="2025-10-01",
                    reference_id=None if first else "2025-07-01", audiences=("national", "academie", "departement"))
    return run, unreg


def test_share_posts_the_changes_not_a_snapshot(tmp_path, monkeypatch, capsys):
    from gar_analysis import cli

    for var in ("GAR_ROCKETCHAT_WEBHOOK", "GAR_ROCKETCHAT_URL", "GAR_ROCKETCHAT_TOKEN", "GAR_ROCKETCHAT_USER_ID",
                "GAR_ROCKETCHAT_CHANNEL", "GAR_REPORTS_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    run, unreg = _release(tmp_path, monkeypatch, first=False)
    assert cli.main(["share", "--run", str(run), "--dry-run", "--base-url", "https://r.example.fr/reports"]) == 0
    out = capsys.readouterr().out
    messages = [json.loads(chunk.split("\n", 1)[1]) for chunk in out.split("# message ")[1:]]
    text = messages[0]["text"]
    assert text.startswith("*Nouveautés de la publication GAR « 2025-10-01 »*")
    assert "« 2025-07-01 » (mois de référence : juin 2025 → septembre 2025)" in text
    assert "https://r.example.fr/reports/2025-10-01/nouveautes.html" in text
    assert "Tous les lycées sont inscrits" not in out  # the snapshot's sentences are not posted
    atts = [a for m in messages for a in m["attachments"]]
    titles = [a["title"] for a in atts]
    assert "Académie de Rennes – Académie" in titles
    rennes = atts[titles.index("Académie de Rennes – Académie")]
    assert rennes["title_link"] == "https://r.example.fr/reports/2025-10-01/academie/14.html"
    assert rennes["text"].startswith("*Ce qui progresse*\n• Accès des élèves par élève sur 12 mois en hausse")
    assert "Nouvellement inscrit(s) au GAR : " in rennes["text"] and unreg in rennes["text"]
    assert "*Points d'attention*\n• Nouveaux constats de qualité : doublon." in rennes["text"]
    # territories with bright spots come first
    goods = ["*Ce qui progresse*" in a["text"] for a in atts]
    assert goods == sorted(goods, reverse=True)


def test_share_on_a_first_release_keeps_the_usual_digest(tmp_path, monkeypatch, capsys):
    from gar_analysis import cli

    monkeypatch.delenv("GAR_ROCKETCHAT_WEBHOOK", raising=False)
    run, _ = _release(tmp_path, monkeypatch, first=True)
    assert json.loads((run / "changements.json").read_text(encoding="utf-8"))["premiere"] is True
    assert cli.main(["share", "--run", str(run), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Synthèse du lot de rapports GAR" in out and "Tous les lycées sont inscrits" in out


def test_a_broken_changements_json_is_named(tmp_path, monkeypatch, capsys):
    from gar_analysis import cli

    monkeypatch.delenv("GAR_ROCKETCHAT_WEBHOOK", raising=False)
    run = tmp_path / "r"
    run.mkdir()
    (run / "index.json").write_text(json.dumps({"run_id": "r", "reports": []}), encoding="utf-8")
    (run / "changements.json").write_text('{"release": "r",\n "territoires": [,]}', encoding="utf-8")
    assert cli.main(["share", "--run", str(run), "--dry-run"]) != 0
    err = capsys.readouterr().err
    assert "changements.json" in err and "ligne 2" in err
