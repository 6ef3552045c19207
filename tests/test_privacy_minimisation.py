"""Data minimisation in ``build`` (issue #16, item 6): extra input columns never reach data/processed/.

Before the fix, ``id_eleve;ine`` added to four input files were carried into the Parquet tables
without a finding. Now the processed tables keep each file's contract columns only and such a
column is an ``identifiant_personnel`` finding naming its file, line and column, never its values.
"""
from __future__ import annotations

import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gar_analysis.build import TABLES
from gar_analysis.checks import RULES, read_findings_csv, run_checks
from gar_analysis.cli import main
from gar_analysis.contract import CONTRACT

FILES = ["crm/actions.csv", "crm/contrats.csv", "budget/depenses.csv", "gar/ressources.csv"]


def pupil_ids(i: int) -> tuple[str, str]:
    """Return a fake pupil id and an INE-shaped value (10 digits + 1 letter) for row ``i``."""
    return f"ELV{i:07d}", f"{9_100_000_000 + i}K"


def add_columns(path, header: str, values) -> None:
    """Append ``;``-separated columns to every line of a contract file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = [lines[0] + ";" + header] + [line + ";" + ";".join(values(i)) for i, line in enumerate(lines[1:])]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def with_pupil_ids(sample_build, tmp_path_factory):
    """The sample with ``id_eleve;ine`` added to four files, built and checked through the CLI."""
    base = tmp_path_factory.mktemp("pii")
    data = base / "data"
    shutil.copytree(sample_build.data_dir, data)
    for rel in FILES:
        add_columns(data / rel, "id_eleve;ine", pupil_ids)
    assert main(["check", "--data", str(data), "--out", str(base / "constats.csv")]) == 0
    assert main(["build", "--data", str(data), "--out", str(base / "processed")]) == 0
    return base


def test_processed_tables_carry_no_extra_column(with_pupil_ids, sample_build):
    processed = with_pupil_ids / "processed"
    tables = sorted(processed.glob("*.parquet"))
    assert len(tables) == len(TABLES)
    for path in tables:
        names = pq.read_schema(path).names
        assert "id_eleve" not in names and "ine" not in names, (path.name, names)
        # same columns as the build of the unmodified sample: nothing travels, nothing is lost
        assert names == pq.read_schema(sample_build.processed_dir / path.name).names, path.name
    # nor any value of theirs, under another name
    ids = {v for i in range(0, 3000, 7) for v in pupil_ids(i)}
    for path in tables:
        df = pd.read_parquet(path)
        text = df.select_dtypes(exclude="number").astype(str)
        assert not text.isin(ids).any().any(), path.name


def test_each_column_is_a_finding_with_file_line_column(with_pupil_ids):
    findings = read_findings_csv(with_pupil_ids / "constats.csv")
    mine = findings[findings["regle"] == "identifiant_personnel"]
    assert sorted(zip(mine["source"], mine["message"].str.extract(r"« (\w+) »")[0])) == sorted(
        (rel, col) for rel in FILES for col in ("id_eleve", "ine"))
    assert (mine["ligne"] == 1).all() and (mine["gravite"] == "erreur").all()
    # the processed findings table carries them too, and no value is ever quoted
    constats = pd.read_parquet(with_pupil_ids / "processed" / "constats.parquet")
    assert (constats["regle"] == "identifiant_personnel").sum() == 8
    text = " ".join(findings["message"].astype(str))
    assert "ELV0000001" not in text and "9100000001K" not in text


def test_identifier_found_by_its_values_under_an_innocent_name(tmp_path, sample_build):
    data = tmp_path / "data"
    shutil.copytree(sample_build.data_dir, data, ignore=shutil.ignore_patterns("acces.csv", "affectations.csv"))
    # line 2 is the first data line: INE values (9 digits + 2 letters) from line 4, e-mails on line 3 only
    add_columns(data / "crm/actions.csv", "reference;contact;commentaire",
                lambda i: (f"{100_000_000 + i}AB" if i >= 2 else "", "jeanne.martin@example.org" if i == 1 else "",
                           "séance -2, 3 élèves"))
    f = run_checks(data, rules=["identifiant_personnel"])
    assert len(f) == 2, f.to_string()
    ine = f[f["message"].str.contains("« reference »")].iloc[0]
    mail = f[f["message"].str.contains("« contact »")].iloc[0]
    n_lines = len((data / "crm/actions.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert ine["source"] == "crm/actions.csv" and ine["ligne"] == 4 and f"{n_lines - 2} valeur(s)" in ine["message"]
    assert "INE" in ine["message"]
    assert mail["ligne"] == 3 and "1 valeur(s)" in mail["message"] and "adresse électronique" in mail["message"]
    assert "jeanne" not in " ".join(f["message"]) and "100000002AB" not in " ".join(f["message"])


def test_clean_sample_has_no_such_finding(sample_build):
    f = run_checks(sample_build.data_dir, rules=["identifiant_personnel"])
    assert f.empty, f.to_string()
    assert RULES["identifiant_personnel"].gravite == "erreur"
    assert set(RULES["identifiant_personnel"].any_of) == set(CONTRACT)


@pytest.mark.parametrize("name", ["ine", "INE", "id_eleve", "Id-Élève", "nom", "prenom", "Prénom", "email",
                                  "e-mail", "courriel", "nom_usage", "date_naissance", "id_accedant"])
def test_personal_names(name):
    from gar_analysis.checks.rules_privacy import personal_name

    assert personal_name(name)


@pytest.mark.parametrize("name", ["commentaire", "montant", "nombre_eleves", "code_postal", "reference", "domaine"])
def test_innocent_names(name):
    from gar_analysis.checks.rules_privacy import personal_name

    assert not personal_name(name)
