"""Enrichment joins on the real Ille-et-Vilaine and IPS files, and the open-data académie table."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from gar_analysis.config import SHARED_OPENDATA_DIR
from gar_analysis.errors import DataError
from gar_analysis.sources.enrich import (
    FINDING_COLUMNS, academie_table, enrich_academies, enrich_communes, enrich_dnma, enrich_effectifs, enrich_ips,
    enrich_ivac, find_opendata_files, join_many_to_one, opendata_available, opendata_summary, reports_to_findings,
)
from gar_analysis.sources.opendata import load_effectifs, load_gar_opendata, load_ivac
from gar_analysis.sources.referentiel import load_annuaire, load_communes, load_ips

D35 = SHARED_OPENDATA_DIR / "dept35-ille-et-vilaine"


def need(path):
    if not path.exists():
        pytest.skip(f"données partagées absentes : {path}")
    return path


@pytest.fixture(scope="module")
def annuaire():
    return load_annuaire(need(D35 / "fr-en-annuaire-education.csv"))


@pytest.fixture(scope="module")
def schools(annuaire):
    return annuaire.drop_duplicates("uai")


@pytest.fixture(scope="module")
def ips_all():
    return pd.concat([
        load_ips(need(SHARED_OPENDATA_DIR / "ips-ecoles-2022-2025" / "fr-en-ips-ecoles-ap2022.parquet")),
        load_ips(need(SHARED_OPENDATA_DIR / "ips-colleges-2022" / "fr-en-ips-colleges-ap2022.csv")),
        load_ips(need(SHARED_OPENDATA_DIR / "ips-lycees-2022" / "fr-en-ips-lycees-ap2022.parquet")),
    ])


# --------------------------------------------------------------------------- generic join

def test_join_never_multiplies_rows_and_reports():
    left = pd.DataFrame({"uai": ["A", "B", "C", None], "x": [1, 2, 3, 4]}, index=[10, 11, 12, 13])
    right = pd.DataFrame({"uai": ["A", "B", "Z"], "y": [0.1, 0.2, 0.9]})
    out, rep = join_many_to_one(left, right, "uai", name="test")
    assert list(out.index) == [10, 11, 12, 13] and len(out) == 4
    assert out.y.tolist()[:2] == [0.1, 0.2] and out.y.isna().tolist()[2:] == [True, True]
    assert (rep.lignes, rep.appariees) == (4, 2) and rep.taux == 0.5
    assert rep.cles_non_appariees == ["C", "(vide)"] and rep.cles_droite_non_utilisees == 1
    assert rep.lignes_non_appariees == [12]
    assert "2 ligne(s) appariée(s) sur 4 (50,0%)" in str(rep)
    f = rep.findings()
    assert list(f.columns) == FINDING_COLUMNS and f.uai.tolist() == ["C"] and f.ligne.tolist() == [12]


def test_join_refuses_duplicate_right_keys():
    left = pd.DataFrame({"uai": ["A"]})
    right = pd.DataFrame({"uai": ["A", "A", "B"], "y": [1, 2, 3]}, index=[5, 6, 7])
    with pytest.raises(DataError) as err:
        join_many_to_one(left, right, "uai", name="doublons")
    assert [p.line for p in err.value.problems] == [5, 6]
    assert "plusieurs-à-un" in str(err.value)


# --------------------------------------------------------------------------- real files

def test_annuaire_multi_line_uais_block_a_join(annuaire):
    eff = load_effectifs(need(D35 / "fr-en-effectifs-second-degre.csv"))
    with pytest.raises(DataError) as err:
        join_many_to_one(eff, annuaire[["uai", "niveau"]], "uai", name="niveau")
    dup = {(p.line, str(p.message).split()[1]) for p in err.value.problems}
    assert {u for _, u in dup} == {"0350778F", "0350852L", "0352072M"}  # the 3 multi-line UAIs
    assert len(dup) == 6 and all(p.file.endswith("fr-en-annuaire-education.csv") for p in err.value.problems)


def test_effectifs_pseudo_uais_are_unmatched(schools):
    eff = load_effectifs(need(D35 / "fr-en-effectifs-second-degre.csv"))
    assert len(eff) == 823
    out, rep = join_many_to_one(eff, schools[["uai", "niveau"]], "uai", name="Effectifs → annuaire")
    assert len(out) == 823
    pseudo = sorted(k for k in rep.cles_non_appariees if k.endswith("O"))
    assert pseudo == ["0350708O", "0350821O", "0350932O", "0350933O", "0350935O", "0350937O", "0351019O",
                      "0351122O"]
    assert rep.appariees == 806 and round(rep.taux, 3) == 0.979
    findings = reports_to_findings([rep])
    assert set(findings.regle) == {"uai_inconnu"} and "0351122O" in set(findings.uai)
    assert findings.ligne.notna().all()


def test_ips_join_rate_and_known_gaps(schools, ips_all):
    out, rep = enrich_ips(schools, ips_all)
    assert len(out) == len(schools)
    assert rep.lignes == 885 and rep.appariees == 687  # écoles, collèges and lycées of the register
    assert round(rep.taux, 3) == 0.776
    unmatched = schools[schools.uai.isin(rep.cles_non_appariees)]
    # the IPS is not published for nursery schools: most unmatched écoles are maternelles
    assert (unmatched.niveau == "ecole").sum() == 159
    assert out.loc[out.uai == "0352778E", "ips_rentree"].iloc[0] == "2024-2025"
    matched = out[out.ips.notna()]
    assert matched.ips.between(50, 160).all()
    lycee = out[(out.niveau == "lycee") & out.ips.notna()]
    assert lycee.effectifs_ips.notna().all() and lycee.ips_ecart_type.notna().all()


def test_ips_2021_labels_join(schools):
    ips21 = load_ips(need(SHARED_OPENDATA_DIR / "ips-ecoles-2021" / "fr-en-ips_ecoles.csv"))
    out, rep = enrich_ips(schools, ips21, subset=schools.niveau.eq("ecole"))
    assert (rep.lignes, rep.appariees) == (685, 534)


def test_effectifs_ivac_communes_joins(schools):
    eff = load_effectifs(need(D35 / "fr-en-effectifs-second-degre.csv"))
    out, rep = enrich_effectifs(schools, eff, subset=schools.niveau.isin(["college", "lycee"]))
    assert (rep.lignes, rep.appariees) == (200, 163)
    assert set(out.effectifs_rentree.dropna()) <= {"2019-2020", "2018-2019"}
    ivac = load_ivac(need(SHARED_OPENDATA_DIR / "ivac-colleges" / "valeur-ajoutee-colleges_original.csv"))
    out, rep = enrich_ivac(schools, ivac)
    assert (rep.lignes, rep.appariees) == (116, 107)
    assert set(out.ivac_session.dropna()) == {2023}
    com = load_communes(need(SHARED_OPENDATA_DIR / "communes-2024-population" / "communes.csv"))
    out, rep = enrich_communes(schools, com)
    assert (rep.lignes, rep.appariees) == (993, 992) and rep.cles_non_appariees == ["35112"]
    assert out.rural.sum() == 261 and out.rural.isna().sum() == 1
    rennes = out[out.code_commune == "35238"]
    assert (~rennes.rural).all()


def test_dnma_join_by_school_month():
    usage = pd.DataFrame({"uai": ["A", "A", "B"], "mois": ["2024-09", "2024-10", "2024-09"], "acces": [5, 6, 7]})
    aud = pd.DataFrame({"mois": ["2024-09", "2024-10"], "uai": ["A", "A"], "ent": ["x", "x"],
                        "visites": [10, 0], "visiteurs": [3, 0]})
    out, rep = enrich_dnma(usage, aud)
    assert out.mesure_dnma.tolist() == [True, True, False]
    assert out.visites_dnma.tolist()[:2] == [10, 0]
    assert rep.cles_non_appariees == [("B", "2024-09")]
    f = rep.findings()
    assert f.uai.tolist() == ["B"] and f.mois.tolist() == ["2024-09"]


def test_academie_join_sums_historical_labels():
    base = pd.DataFrame({"code_academie": ["70", "14"]})
    gar = pd.DataFrame({"code_academie": ["70", "70", "14"], "acces": [1, 2, 5]})
    out, rep = enrich_academies(base, gar)
    assert out.acces.tolist() == [3, 5] and rep.taux == 1.0


# --------------------------------------------------------------------------- open-data mode

def _write_gar_files(folder, *, labels=False):
    """Académie-level GAR files in the published field layout (records are not in ../shared)."""
    geo = json.loads(need(SHARED_OPENDATA_DIR / "contours-academies-2020" / "fr-en-contour-academies-2020.geojson")
                     .read_text(encoding="utf-8"))
    rows = []
    for i, feat in enumerate(geo["features"]):
        p = feat["properties"]
        rows.append({"libelle_aca": p["name"], "libelle_aca_majuscules": p["libelle_aca_majuscules"],
                     "libelle_region_2016": p["libelle_region_2016"], "code_academie": p["code_academie"],
                     "code_region_2016": p["code_region_2016"], "acces": 100_000 + 1000 * i,
                     "affectations": 50_000 + 10 * i})
    df = pd.DataFrame(rows)
    acces = df.drop(columns="affectations")
    if labels:
        acces = acces.rename(columns={"acces": "Accès", "code_academie": "Code académie"})
    acces.to_csv(folder / "fr-en-gar-acces_academie.csv", sep=";", index=False)
    df.drop(columns="acces").to_csv(folder / "fr-en-gar-affectations_academie2024-2025.csv", sep=";", index=False)
    return df


def test_gar_opendata_loader_labels_and_ids(tmp_path):
    df = _write_gar_files(tmp_path, labels=True)
    gar = load_gar_opendata(tmp_path / "fr-en-gar-acces_academie.csv")
    assert gar.attrs["layout"] == "gar-academie"
    assert gar.code_academie.notna().all() and gar.code_academie.nunique() == 30
    assert gar.acces.sum() == df.acces.sum()
    deg = tmp_path / "deg.csv"
    deg.write_text("Degré;Accédants\npremier;1200\nsecond;NS\n", encoding="utf-8")
    d = load_gar_opendata(deg)
    assert d.columns.tolist() == ["degre", "accedants"] and pd.isna(d.accedants.iloc[1])
    assert len(d.attrs["problemes"]) == 1


def test_academie_table_open_data_mode(tmp_path):
    folder = tmp_path / "opendata"
    folder.mkdir()
    assert not opendata_available(folder)
    with pytest.raises(DataError) as err:
        academie_table(folder)
    assert "gar-analysis download" in str(err.value)
    df = _write_gar_files(folder)
    for rel, name in (("ips-colleges-2022/fr-en-ips-colleges-ap2022.csv", "fr-en-ips-colleges-ap2022.csv"),
                      ("ips-lycees-2022/fr-en-ips-lycees-ap2022.parquet", "fr-en-ips-lycees-ap2022.parquet"),
                      ("ips-ecoles-2021/fr-en-ips_ecoles.csv", "fr-en-ips_ecoles.csv")):
        (folder / name).symlink_to(need(SHARED_OPENDATA_DIR / rel))
    assert opendata_available(folder) and len(find_opendata_files(folder)) == 5
    table, reports = academie_table(folder)
    assert len(table) == 30 and table.code_academie.is_unique
    assert table.acces.sum() == df.acces.sum() and table.affectations.notna().all()
    assert table.colleges.sum() == 6973 and table.lycees.sum() == 3598 and table.ecoles.sum() == 32091
    rennes = table.set_index("code_academie").loc["14"]
    assert 100 < rennes.ips_colleges < 115 and rennes.etablissements > 1000
    assert table.acces_par_etablissement.notna().all()
    assert all(r.taux == 1.0 for r in reports)
    forts, corriger = opendata_summary(table)
    assert forts and corriger and all(isinstance(s, str) for s in forts + corriger)
