"""Contract-file loading: typed frames, physical line numbers, all errors at once."""
from __future__ import annotations

import pandas as pd
import pytest

from gar_analysis.contract import CONTRACT, read_contract_file, write_contract_file
from gar_analysis.errors import DataError
from gar_analysis.io import atomic_write_text


def _write(tmp_path, rel, text, encoding="utf-8"):
    p = tmp_path / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(text.encode(encoding))
    return p


ACCES_OK = (
    "mois;uai;id_ressource;profil;support;acces;extra\n"
    "2024-09;0350001A;R1;eleve;mobile;12;x\n"
    "2024-10;0350001A;R1;enseignant;ordinateur;-3;y\n"
)


def test_typed_frame_with_physical_lines_and_extra_columns(tmp_path):
    _write(tmp_path, "gar/acces.csv", "\ufeff" + ACCES_OK)
    df = read_contract_file(tmp_path, "gar/acces")
    assert list(df.index) == [2, 3]
    assert df["acces"].tolist() == [12, -3]          # negatives load: the checks report them
    assert str(df["acces"].dtype) == "Int64"
    assert df["extra"].tolist() == ["x", "y"]


def test_every_problem_reported_with_line_and_column(tmp_path):
    text = ("mois;uai;id_ressource;profil;support;acces\n"
            "2024-13;0350001A;R1;eleve;mobile;12\n"
            "2024-09;0350001A;R1;parent;mobile;douze\n"
            "2024-09;;R1;eleve;velo;3\n")
    _write(tmp_path, "gar/acces.csv", text)
    with pytest.raises(DataError) as err:
        read_contract_file(tmp_path, "gar/acces")
    found = {(p.line, p.column) for p in err.value.problems}
    assert found == {(2, "mois"), (3, "profil"), (3, "acces"), (4, "uai"), (4, "support")}
    assert "gar/acces.csv, ligne 3, colonne « acces »" in str(err.value)


def test_missing_columns_all_listed(tmp_path):
    _write(tmp_path, "gar/acces.csv", "mois;uai;acces\n2024-09;0350001A;1\n")
    with pytest.raises(DataError) as err:
        read_contract_file(tmp_path, "gar/acces")
    assert {p.column for p in err.value.problems} == {"id_ressource", "profil", "support"}
    assert all(p.line == 1 for p in err.value.problems)


def test_wrong_separator(tmp_path):
    _write(tmp_path, "gar/acces.csv", ACCES_OK.replace(";", ","))
    with pytest.raises(DataError, match="séparateur"):
        read_contract_file(tmp_path, "gar/acces")


def test_latin1_names_the_line(tmp_path):
    text = "id_ressource;nom;editeur;type_ressource;degre\nR1;Manuel;Éditions;manuel;second\nR2;Dico;Édi;dico;tous\n"
    _write(tmp_path, "gar/ressources.csv", text, encoding="latin-1")
    with pytest.raises(DataError) as err:
        read_contract_file(tmp_path, "gar/ressources")
    assert err.value.problems[0].line == 2
    assert "UTF-8" in str(err.value)


def test_bad_date_and_missing_file(tmp_path):
    text = ("id_abonnement;uai;id_ressource;date_debut;date_fin;licences;montant_ht\n"
            "A1;0350001A;R1;2024-02-30;2025-08-31;10;99,5\n")
    _write(tmp_path, "gar/abonnements.csv", text)
    with pytest.raises(DataError) as err:
        read_contract_file(tmp_path, "gar/abonnements")
    assert [(p.line, p.column) for p in err.value.problems] == [(2, "date_debut")]
    with pytest.raises(DataError, match="fichier absent"):
        read_contract_file(tmp_path, "gar/acces")


def test_quoted_newline_keeps_physical_line(tmp_path):
    text = ('id_acteur;type;nom;code\n'
            'A1;academie;"Académie\nde Rennes";14\n'
            'A2;inconnu;Autre;\n')
    _write(tmp_path, "crm/acteurs.csv", text)
    with pytest.raises(DataError) as err:
        read_contract_file(tmp_path, "crm/acteurs")
    assert [(p.line, p.column) for p in err.value.problems] == [(4, "type")]


def test_write_then_read_round_trip(tmp_path):
    df = pd.DataFrame({"date": pd.to_datetime(["2024-10-01"]), "uai": ["0350001A"], "type_action": ["formation"]})
    write_contract_file(df, tmp_path, "crm/actions")
    back = read_contract_file(tmp_path, "crm/actions")
    assert back["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-10-01"]
    assert set(CONTRACT) >= {"gar/acces", "crm/actions", "budget/depenses"}


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    with pytest.raises(TypeError):
        atomic_write_text(target, 12345)  # not text: the write fails midway
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_data_contract_document_covers_every_column():
    from gar_analysis.config import DOCS_DIR

    doc = (DOCS_DIR / "data-contract.md").read_text(encoding="utf-8")
    for fs in CONTRACT.values():
        assert f"`{fs.path}`" in doc
        for col in fs.columns:
            assert f"`{col.name}`" in doc, (fs.path, col.name)
