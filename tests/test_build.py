"""Processed tables: one row per school, joins that never multiply rows, manifest, atomicity."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from gar_analysis.build import TABLES, build, build_tables, load_manifest, load_processed, school_year
from gar_analysis.contract import read_contract_file
from gar_analysis.errors import DataError
from gar_analysis.sources import DataDir


def test_school_year():
    assert school_year(pd.Series(["2024-08", "2024-09", "2025-01"])).tolist() == [
        "2023-2024", "2024-2025", "2024-2025"]


def test_tables_and_manifest(sample_build):
    man = load_manifest(sample_build.processed_dir)
    assert set(man["outputs"]) == set(TABLES)
    assert man["simulated"] is True
    files = {s["fichier"]: s for s in man["sources"]}
    acces_lines = sum(1 for _ in (sample_build.data_dir / "gar/acces.csv").open("rb")) - 1
    assert files["gar/acces.csv"]["lignes"] == acces_lines
    for name in TABLES:
        assert len(load_processed(name, sample_build.processed_dir)) == man["outputs"][name]["lignes"]


def test_one_row_per_school_and_totals_preserved(sample_build):
    ds = DataDir(sample_build.data_dir)
    schools = load_processed("etablissements", sample_build.processed_dir)
    assert schools["uai"].is_unique
    assert set(schools["uai"]) == set(ds.annuaire["uai"])
    # every accès of a school of the register is counted once
    acces = ds.acces
    known = acces[acces["uai"].isin(schools["uai"])]
    assert schools["acces"].sum() == known["acces"].sum()
    monthly = load_processed("usage_mensuel", sample_build.processed_dir)
    assert not monthly.duplicated(["uai", "mois"]).any()
    assert monthly["acces"].sum() == acces["acces"].sum()
    per_res = load_processed("acces_ressources", sample_build.processed_dir)
    assert per_res["acces"].sum() == acces["acces"].sum()
    assert (schools["acces_eleve"] + schools["acces_enseignant"] + schools["acces_documentaliste"]
            + schools["acces_autre_personnel"]).equals(schools["acces"])


def test_no_pupil_level_columns(sample_build):
    for name in TABLES:
        cols = set(load_processed(name, sample_build.processed_dir).columns)
        assert not cols & {"id_accedant", "nom_eleve", "prenom", "email"}, name


def test_crm_factors_follow_their_definitions(sample_build):
    ds = DataDir(sample_build.data_dir)
    schools = load_processed("etablissements", sample_build.processed_dir).set_index("uai")
    act, con = ds.acteurs, ds.contacts
    ref_ids = set(con.loc[con["role"] == "referent_gar", "id_acteur"])
    ref_uai = set(act.loc[act["type"].eq("etablissement") & act["id_acteur"].isin(ref_ids), "code"])
    assert set(schools.index[schools["referent"]]) == ref_uai & set(schools.index)
    n_form = ds.actions.query("type_action == 'formation'").groupby("uai").size()
    assert schools["actions_formation"].reindex(n_form.index).dropna().astype(int).equals(
        n_form[n_form.index.isin(schools.index)].astype(int))
    assert 0.1 < schools["convention"].mean() < 0.9


def test_planted_ips_errors_do_not_reach_the_models(sample_build):
    schools = load_processed("etablissements", sample_build.processed_dir)
    assert schools["ips"].dropna().between(40, 180).all()


def test_failed_build_leaves_previous_tables(sample_build, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_build.data_dir, data)
    out = tmp_path / "processed"
    shutil.copytree(sample_build.processed_dir, out)
    before = (out / "manifest.json").read_text()
    (data / "gar/acces.csv").write_text("mois;uai\n2024-09;X\n", encoding="utf-8")
    findings = pd.read_parquet(out / "constats.parquet")
    with pytest.raises(DataError, match="gar/acces.csv"):
        build(data, out, findings=findings)
    assert (out / "manifest.json").read_text() == before
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_register_is_required(tmp_path):
    with pytest.raises(DataError, match="annuaire"):
        build_tables(tmp_path, findings=pd.DataFrame())


def test_load_processed_errors(tmp_path):
    with pytest.raises(ValueError, match="Table inconnue"):
        load_processed("nope", tmp_path)
    with pytest.raises(DataError, match="gar-analysis build"):
        load_processed("etablissements", tmp_path)
