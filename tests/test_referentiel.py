"""Register, IPS and commune loaders on the real published files and on broken copies."""
from __future__ import annotations

import pandas as pd
import pytest

from gar_analysis.config import SHARED_OPENDATA_DIR
from gar_analysis.errors import DataError
from gar_analysis.sources import DataDir
from gar_analysis.sources.referentiel import (
    ANNUAIRE_COLUMNS, COMMUNES_COLUMNS, IPS_COLUMNS, field_id, load_annuaire, load_communes, load_ips,
    load_reference_file, problems_frame, problems_of,
)

ANNUAIRE = SHARED_OPENDATA_DIR / "dept35-ille-et-vilaine" / "fr-en-annuaire-education.csv"
IPS_ECOLES_2021 = SHARED_OPENDATA_DIR / "ips-ecoles-2021" / "fr-en-ips_ecoles.csv"
IPS_ECOLES_2022 = SHARED_OPENDATA_DIR / "ips-ecoles-2022-2025" / "fr-en-ips-ecoles-ap2022.parquet"
IPS_COLLEGES = SHARED_OPENDATA_DIR / "ips-colleges-2022" / "fr-en-ips-colleges-ap2022.csv"
IPS_COLLEGES_VYZ = SHARED_OPENDATA_DIR / "ips-colleges-2022" / "ips_colleges_simplifie_vyz.csv"
IPS_LYCEES = SHARED_OPENDATA_DIR / "ips-lycees-2022" / "fr-en-ips-lycees-ap2022.parquet"
COMMUNES_2024 = SHARED_OPENDATA_DIR / "communes-2024-population" / "communes.csv"
COMMUNES_2025 = SHARED_OPENDATA_DIR / "communes-france-2025-subset" / "communes-france-2025.csv"


def need(path):
    if not path.exists():
        pytest.skip(f"données partagées absentes : {path}")
    return path


def one_problem(exc: DataError):
    assert exc.problems, "DataError without problems"
    return exc.problems[0]


# --------------------------------------------------------------------------- annuaire, real file

@pytest.fixture(scope="module")
def annuaire():
    return load_annuaire(need(ANNUAIRE))


def test_annuaire_2023_real_file(annuaire):
    df = annuaire
    assert list(df.columns) == ANNUAIRE_COLUMNS
    assert df.attrs["layout"] == "annuaire-2023"
    assert len(df) == 996
    assert df.index[0] == 2 and df.index[-1] == 997  # physical lines, header = 1
    assert set(df.code_departement) == {"35"}  # "035" normalised
    assert set(df.code_academie) == {"14"} and set(df.code_region) == {"53"}
    assert df.niveau.value_counts().to_dict() == {"ecole": 685, "autre": 108, "college": 117, "lycee": 86}
    assert df.education_prioritaire.value_counts().to_dict() == {"": 940, "REP": 50, "REP+": 6}
    assert set(df.secteur.dropna()) == {"public", "prive"}
    assert df.secteur.isna().sum() == 42  # services without sector
    assert df.nombre_eleves.dtype == "Int64" and df.nombre_eleves.isna().sum() == 156
    assert df.latitude.between(47, 49).all() and df.longitude.between(-3, -1).all()
    multi = df[df.multi_lignes]
    assert sorted(multi.uai.unique()) == ["0350778F", "0350852L", "0352072M"]
    assert len(multi) == 6
    assert df.loc[2, "uai"] == "0350122T" and df.loc[2, "nombre_eleves"] == 143
    assert problems_of(df) == ()  # clean published file: nothing left unusable


def test_annuaire_2026_layout_and_field_ids(tmp_path):
    text = need(ANNUAIRE).read_text(encoding="utf-8-sig")
    header, body = text.split("\n", 1)
    cols = header.rstrip("\r").split(";")
    renames = {"Code postal": "Code_postal", "coordonnee_X": "coordX_origine", "coordonnee_Y": "coordY_origine",
               "epsg": "epsg_origine", "etablissement_multi_lignes": "multi_uai"}
    drop = cols.index("Nombre_d_eleves")
    lines = [";".join(c for i, c in enumerate(line.rstrip("\r").split(";")) if i != drop)
             for line in body.splitlines() if line]
    new_header = ";".join(renames.get(c, c) for i, c in enumerate(cols) if i != drop)
    p2026 = tmp_path / "annuaire_2026.csv"
    p2026.write_text(new_header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    df = load_annuaire(p2026)
    assert df.attrs["layout"] == "annuaire-2026"
    assert list(df.columns) == ANNUAIRE_COLUMNS
    assert df.nombre_eleves.isna().all() and df.nombre_eleves.dtype == "Int64"
    assert df.multi_lignes.sum() == 6
    # ids export (slugified headers), as the portal gives with use_labels=false
    pids = tmp_path / "annuaire_ids.csv"
    pids.write_text(";".join(field_id(c) for c in new_header.split(";")) + "\n" + "\n".join(lines) + "\n",
                    encoding="utf-8")
    ids = load_annuaire(pids)
    pd.testing.assert_frame_equal(ids, df)


def test_annuaire_unknown_layout_lists_missing_columns(tmp_path):
    p = tmp_path / "annuaire.csv"
    p.write_text("Identifiant_de_l_etablissement;Nom_etablissement;Code_commune\n0350122T;Ecole;35016\n",
                 encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_annuaire(p)
    missing = {pb.column for pb in err.value.problems}
    assert {"Type_etablissement", "Statut_public_prive", "latitude", "etat"} <= missing
    assert all(pb.line == 1 and pb.file == str(p) for pb in err.value.problems)
    assert "colonne obligatoire absente" in str(err.value)


def _broken_copy(tmp_path, name, edit):
    """Copy the real register into tmp_path with ``edit(lines) -> lines`` applied."""
    lines = need(ANNUAIRE).read_text(encoding="utf-8-sig").splitlines()
    p = tmp_path / name
    p.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return p, lines[0].split(";")


def _set_cell(lines, line_no, column, value):
    header = lines[0].split(";")
    cells = lines[line_no - 1].split(";")
    cells[header.index(column)] = value
    lines[line_no - 1] = ";".join(cells)
    return lines


def test_annuaire_missing_column(tmp_path):
    def drop_etat(lines):
        i = lines[0].split(";").index("etat")
        return [";".join(c for j, c in enumerate(line.split(";")) if j != i) for line in lines]
    p, _ = _broken_copy(tmp_path, "a.csv", drop_etat)
    with pytest.raises(DataError) as err:
        load_annuaire(p)
    pb = one_problem(err.value)
    assert (pb.file, pb.line, pb.column) == (str(p), 1, "etat")


def test_annuaire_wrong_separator(tmp_path):
    p, _ = _broken_copy(tmp_path, "a.csv", lambda lines: [line.replace(";", ",") for line in lines])
    with pytest.raises(DataError) as err:
        load_annuaire(p)
    pb = one_problem(err.value)
    assert pb.file == str(p) and pb.line == 1
    assert "séparateur" in pb.message and "virgule" in pb.message


def test_annuaire_latin1(tmp_path):
    text = need(ANNUAIRE).read_text(encoding="utf-8-sig")
    p = tmp_path / "latin1.csv"
    p.write_bytes(text.encode("latin-1", errors="replace"))
    with pytest.raises(DataError) as err:
        load_annuaire(p)
    pb = one_problem(err.value)
    assert pb.file == str(p)
    # first non-ASCII character: "… du 1er degré de Bruz" on line 2
    assert (pb.line, pb.column) == (2, "nom_circonscription")
    assert "UTF-8" in pb.message


def test_annuaire_bad_numbers_and_dates_all_reported(tmp_path):
    def edit(lines):
        _set_cell(lines, 5, "latitude", "48,1x")
        _set_cell(lines, 7, "Nombre_d_eleves", "beaucoup")
        _set_cell(lines, 9, "date_ouverture", "2023-13-45")
        return lines
    p, _ = _broken_copy(tmp_path, "a.csv", edit)
    with pytest.raises(DataError) as err:
        load_annuaire(p)
    where = {(pb.line, pb.column) for pb in err.value.problems}
    assert where == {(5, "latitude"), (7, "Nombre_d_eleves"), (9, "date_ouverture")}
    assert all(pb.file == str(p) for pb in err.value.problems)
    assert "« beaucoup »" in str(err.value)


def test_annuaire_decimal_comma_and_unknown_values_reported(tmp_path):
    def edit(lines):
        _set_cell(lines, 2, "latitude", "47,5")
        _set_cell(lines, 3, "Statut_public_prive", "Mixte")
        _set_cell(lines, 4, "Code_departement", "975")
        _set_cell(lines, 6, "longitude", "")
        return lines
    p, _ = _broken_copy(tmp_path, "a.csv", edit)
    df = load_annuaire(p)
    assert df.loc[2, "latitude"] == 47.5
    assert pd.isna(df.loc[3, "secteur"])
    assert df.loc[4, "code_departement"] == "975"
    probs = problems_frame(df)
    assert {(3, "Statut_public_prive"), (4, "Code_departement"), (6, "latitude")} <= set(zip(probs.ligne, probs.colonne))
    assert pd.isna(df.loc[6, "longitude"]) and len(df) == 996  # kept, not dropped
    assert probs.message.str.contains("Mixte").any()


# --------------------------------------------------------------------------- IPS, real files

def test_ips_ecoles_2021_labels():
    df = load_ips(need(IPS_ECOLES_2021))
    assert list(df.columns) == IPS_COLUMNS
    assert len(df) == 32091 and df.uai.is_unique
    assert set(df.rentree_scolaire) == {"2021-2022"} and set(df.niveau) == {"ecole"}
    assert df.code_departement.str.len().le(3).all() and "01" in set(df.code_departement)
    assert "001" not in set(df.code_departement)
    assert df.code_academie.notna().all() and df.code_academie.nunique() == 30
    assert set(df.secteur) == {"public", "prive"}
    assert df.ips.between(40, 170).all()
    assert df.ips_ecart_type.isna().all() and df.effectifs.isna().all()


@pytest.fixture(scope="module")
def ips_ecoles_2022():
    return load_ips(need(IPS_ECOLES_2022))


def test_ips_ecoles_2022_2025_ids_parquet_ns_reported(ips_ecoles_2022):
    df = ips_ecoles_2022
    assert len(df) == 97080
    assert set(df.rentree_scolaire) == {"2022-2023", "2023-2024", "2024-2025"}
    assert df.ips.isna().sum() == 6926  # published "NS"
    probs = problems_frame(df)
    assert len(probs) == 6926 and set(probs.colonne) == {"ips"}
    assert probs.message.str.contains("NS").all()
    assert set(probs.ligne) == set(df.index[df.ips.isna()])
    assert df.code_academie.nunique() == 30
    assert df.loc[df.uai == "0352778E", "code_departement"].iloc[0] == "35"


def test_ips_colleges_labels_and_simplified_copy():
    df = load_ips(need(IPS_COLLEGES))
    assert len(df) == 6973 and set(df.niveau) == {"college"}
    assert df.effectifs.dtype == "Int64" and df.effectifs.notna().all()
    first = df.iloc[0]
    assert (first.uai, first.ips, first.ips_ecart_type, first.effectifs) == ("0010005A", 110.4, 31.3, 540)
    vyz = load_ips(need(IPS_COLLEGES_VYZ))
    assert set(vyz.uai) == set(df.uai)
    assert set(vyz.rentree_scolaire) == {"2023-2024"}  # a single year "2023" = rentrée 2023


def test_ips_lycees_ids_parquet_pooled_sd():
    df = load_ips(need(IPS_LYCEES))
    assert len(df) == 3598 and set(df.niveau) == {"lycee"}
    row = df[df.uai == "0010032E"].iloc[0]
    # GT: 475 pupils, IPS 105.9, sd 36.6; PRO: 109, 74.8, 24.7; whole school 584, 100.1
    assert row.effectifs == 584 and row.ips == 100.1
    assert row.ips_ecart_type == pytest.approx(36.7, abs=0.1)
    assert df.ips_ecart_type.notna().all()


def test_ips_lycees_multi_year_labels_csv_with_ns_and_decimal_comma(tmp_path):
    p = tmp_path / "ips_lycees.csv"
    p.write_text(
        "\ufeffRentrée scolaire;Académie;Code du département;Département;UAI;Nom de l'établissment;"
        "Code INSEE de la commune;Nom de la commune;Secteur;Type de lycée;Effectifs voie GT;Effectifs voie PRO;"
        "Effectifs Ensemble GT-PRO;IPS voie GT;IPS voie PRO;IPS Ensemble GT-PRO;Ecart-type de l'IPS voie GT;"
        "Ecart-type de l'IPS voie PRO\n"
        "2021-2022;CAEN;014;CALVADOS;0140013N;LYCEE A;14118;CAEN;public;LEGT;800;;800;112,5;;112,5;30,1;\n"
        "2022-2023;NORMANDIE;014;CALVADOS;0140013N;LYCEE A;14118;CAEN;public;LEGT;810;;810;113,0;;113,0;30,0;\n"
        "2022-2023;LA_REUNION;974;LA REUNION;9740001A;LYCEE B;97411;ST DENIS;privé sous contrat;LP;;12;12;;ND;ND;;NS\n",
        encoding="utf-8")
    df = load_ips(p)
    assert df.attrs["layout"] == "ips-lycees"
    assert df.uai.tolist() == ["0140013N", "0140013N", "9740001A"]
    assert df.rentree_scolaire.tolist() == ["2021-2022", "2022-2023", "2022-2023"]
    assert df.code_academie.tolist() == ["70", "70", "28"]  # CAEN before Normandie
    assert df.ips.iloc[0] == 112.5 and df.ips_ecart_type.iloc[0] == 30.1
    assert pd.isna(df.ips.iloc[2]) and df.effectifs.iloc[2] == 12
    assert df.secteur.tolist() == ["public", "public", "prive"]
    probs = problems_frame(df)
    assert (4, "IPS Ensemble GT-PRO") in set(zip(probs.ligne, probs.colonne))
    assert probs.message.str.contains("ND").any()


def test_ips_bad_school_year_and_number(tmp_path):
    text = need(IPS_COLLEGES).read_text(encoding="utf-8-sig").splitlines()
    cells = text[3].split(";")
    cells[0] = "2022-2024"
    text[3] = ";".join(cells)
    cells = text[10].split(";")
    cells[10] = "cent"
    text[10] = ";".join(cells)
    p = tmp_path / "ips.csv"
    p.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_ips(p)
    where = {(pb.line, pb.column) for pb in err.value.problems}
    assert where == {(4, "Rentrée scolaire"), (11, "IPS")}


def test_ips_unknown_layout(tmp_path):
    p = tmp_path / "ips.csv"
    p.write_text("UAI;Valeur\n0010005A;100\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_ips(p)
    cols = {pb.column for pb in err.value.problems}
    assert "Rentrée scolaire" in cols and all(pb.line == 1 for pb in err.value.problems)


# --------------------------------------------------------------------------- communes

def test_communes_contract_file(tmp_path):
    p = tmp_path / "communes.csv"
    p.write_text("code_commune;population;superficie_km2\n35238;225081;50,39\n1001;832;15.95\n97411;0;0\n",
                 encoding="utf-8")
    df = load_communes(p)
    assert list(df.columns) == COMMUNES_COLUMNS
    assert df.code_commune.tolist() == ["35238", "01001", "97411"]
    assert df.densite.iloc[0] == pytest.approx(225081 / 50.39)
    assert pd.isna(df.densite.iloc[2])


def test_communes_real_files():
    df = load_communes(need(COMMUNES_2024))
    assert df.code_commune.is_unique
    assert df.attrs["doublons"] == 1232  # communes déléguées sharing their commune's code
    rennes = df.set_index("code_commune").loc["35238"]
    assert rennes.population > 200_000 and rennes.densite > 4000
    sub = load_communes(need(COMMUNES_2025))
    assert len(sub) == 483 and sub.grille_densite.notna().all()


def test_communes_bad_number(tmp_path):
    p = tmp_path / "communes.csv"
    p.write_text("code_commune;population;superficie_km2\n35238;beaucoup;50\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_communes(p)
    pb = one_problem(err.value)
    assert (pb.line, pb.column) == (2, "population")


# --------------------------------------------------------------------------- dispatch

def test_load_reference_file_and_datadir(tmp_path):
    ref = tmp_path / "referentiel"
    ref.mkdir()
    (ref / "annuaire.csv").write_bytes(need(ANNUAIRE).read_bytes())
    (ref / "ips_colleges.csv").write_bytes(need(IPS_COLLEGES).read_bytes())
    ds = DataDir(tmp_path)
    assert len(ds.annuaire) == 996
    assert set(ds.ips_colleges.niveau) == {"college"}
    df = load_reference_file(ref / "ips_colleges.csv", "referentiel/ips_colleges")
    assert len(df) == 6973
    with pytest.raises(KeyError):
        load_reference_file(ref / "annuaire.csv", "referentiel/inconnu")


def test_problems_survive_frame_operations(ips_ecoles_2022):
    df = ips_ecoles_2022
    sub = df[df.code_departement == "35"].copy()
    assert len(problems_of(sub)) == len(problems_of(df))


def test_ips_forced_level_accepts_simpler_layout_and_empty_file(tmp_path):
    p = tmp_path / "ips_colleges.csv"
    p.write_text("rentree_scolaire;uai;ips\n2023-2024;0010005A;101,5\n", encoding="utf-8")
    df = load_reference_file(p, "referentiel/ips_colleges")
    assert df.niveau.tolist() == ["college"] and df.ips.tolist() == [101.5]
    assert df.ips_ecart_type.isna().all()
    empty = tmp_path / "vide.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_ips(empty)
    assert err.value.problems[0].line == 1 and "vide" in str(err.value)
