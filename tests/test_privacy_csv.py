"""Spreadsheet-safe CSV (issue #16, item 9): no file written by the tool carries a live formula.

Before the fix, a UAI ``=HYPERLINK(…)`` or a resource id ``+cmd|…`` went as is into the findings
CSV, ``crm/*.csv`` and the aggregated ``gar/acces.csv``. Each writer now goes through
:func:`gar_analysis.io.spreadsheet_safe` (OWASP: a leading ``'``), while true numbers stay numbers.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gar_analysis.checks import read_findings_csv, run_checks
from gar_analysis.cli import main
from gar_analysis.contract import CONTRACT, read_contract_file, write_contract_file

PACKAGE = Path(__file__).resolve().parents[1] / "gar_analysis"
HYPERLINK = '=HYPERLINK("http://x")'
CMD = "+cmd|' /C calc'!A0"
SUM = "@SUM(1)"
ARITH = "-2+3"
PAYLOADS = [HYPERLINK, CMD, SUM, ARITH, "\tTAB", "\rCR"]
VALID_UAI = "0350001L"  # 350001 % 23 = 10 → L


def cells(path: Path) -> list[list[str]]:
    """Return the cells of a ``;`` CSV exactly as a spreadsheet would receive them."""
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""), delimiter=";"))


def live_formulas(rows: list[list[str]]) -> list[str]:
    """Return the cells a spreadsheet would evaluate: formula prefix, and not a plain number."""
    number = re.compile(r"[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]+)?")
    return [c for row in rows for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not number.fullmatch(c)]


# --------------------------------------------------------------------------- the function

def test_payloads_neutralised_numbers_kept():
    from gar_analysis.io import csv_text, spreadsheet_safe

    df = pd.DataFrame({"texte": [*PAYLOADS, "-1.5", "Collège -", "", None],
                       "nombre": [-1.5, -2.0, 3.0, 0.0, 1e-3, -7.0, 8.0, 9.0, 10.0, 11.0],
                       "entier": [-1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                       "mixte": ["c", -1.5, 3, "c", "=1", 5, "-3", 7, "+x", 9]})
    out = spreadsheet_safe(df)
    assert out["texte"].tolist()[:8] == ["'" + p for p in PAYLOADS] + ["-1.5", "Collège -"]
    assert out["nombre"].tolist() == df["nombre"].tolist() and out["nombre"].dtype == "float64"
    assert out["entier"].dtype == "int64"
    assert out["mixte"].tolist() == ["c", -1.5, 3, "c", "'=1", 5, "-3", 7, "'+x", 9]
    assert df["texte"].iloc[0] == HYPERLINK  # input untouched
    assert spreadsheet_safe(out).equals(out)  # idempotent
    text = csv_text(df)
    back = pd.read_csv(io.StringIO(text), sep=";", keep_default_na=False)
    assert back["nombre"].tolist()[0] == -1.5 and back["nombre"].dtype == "float64"
    # a carriage return inside a cell is quoted, not taken for a line break
    assert len(back) == len(df) and back["texte"].tolist()[:8] == out["texte"].tolist()[:8]
    assert "\n-1.5;" not in text and ";-1.5;" in text  # the number is written bare, not quoted
    assert live_formulas(cells_from_text(text)) == []
    assert spreadsheet_safe(pd.DataFrame({"=x": [1]})).columns.tolist() == ["'=x"]


def cells_from_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def test_duckdb_twin_matches():
    import duckdb

    from gar_analysis.io import spreadsheet_safe, spreadsheet_safe_sql

    values = [*PAYLOADS, "-1.5", "-1,5", "+5", "-", "'=x", "ark:/1", "0350001X", "-.5", "1e5", "", None]
    df = pd.DataFrame({"v": pd.Series(values, dtype=object)})
    con = duckdb.connect()
    con.register("t", df)
    got = [r[0] for r in con.execute(f"SELECT {spreadsheet_safe_sql('v')} FROM t").fetchall()]
    expected = spreadsheet_safe(df)["v"].tolist()
    assert got[:-1] == expected[:-1] and got[-1] is None and pd.isna(expected[-1])


def test_every_csv_writer_goes_through_io():
    """``to_csv`` is called in one place, io.csv_text; DuckDB CSV copies use its SQL twin."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "io.py":
            assert ".to_csv(" not in text, path
            assert "csv.writer" not in text and "DictWriter" not in text, path
        if "COPY " in text and "DELIMITER" in text:  # a DuckDB CSV copy (events/aggregate.py)
            assert "spreadsheet_safe_sql" in text, path


# --------------------------------------------------------------------------- findings CSV

@pytest.fixture
def injected_dir(tmp_path):
    """A tiny data directory whose accès carry formula payloads as UAI and resource id."""
    data = tmp_path / "data"
    (data / "gar").mkdir(parents=True)
    (data / "gar" / "ressources.csv").write_text(
        "id_ressource;nom;editeur;type_ressource;degre\nr1;Dico;Dico Plus;dictionnaire;tous\n", encoding="utf-8")
    rows = [("2024-01", HYPERLINK, "r1"), ("2024-01", SUM, "r1"), ("2024-01", VALID_UAI, CMD),
            ("2024-02", VALID_UAI, ARITH), ("2024-03", VALID_UAI, "r1")]
    frame = pd.DataFrame(rows, columns=["mois", "uai", "id_ressource"]).assign(
        profil="eleve", support="ordinateur", acces=[3, 4, 5, 6, 7])
    buf = io.StringIO()
    frame.to_csv(buf, sep=";", index=False, lineterminator="\n")  # raw input, as a hostile source writes it
    (data / "gar" / "acces.csv").write_text(buf.getvalue(), encoding="utf-8")
    return data


def test_findings_csv_is_spreadsheet_safe(injected_dir, tmp_path):
    out = tmp_path / "constats.csv"
    assert main(["check", "--data", str(injected_dir), "--out", str(out)]) == 0
    rows = cells(out)
    assert live_formulas(rows) == []
    flat = {c for row in rows for c in row}
    for payload in (HYPERLINK, SUM, CMD, ARITH):
        assert "'" + payload in flat, payload  # the finding is there, neutralised
    f = read_findings_csv(out)
    assert set(f.loc[f["regle"] == "uai_invalide", "uai"]) == {"'" + HYPERLINK, "'" + SUM}
    assert set(f.loc[f["regle"] == "ressource_inconnue", "id_ressource"]) == {"'" + CMD, "'" + ARITH}


# --------------------------------------------------------------------------- CRM pull CSVs

def test_crm_pull_files_are_spreadsheet_safe(tmp_path):
    from gar_analysis.integrations.dolibarr import write_crm

    frames = {
        "crm/acteurs": pd.DataFrame({"id_acteur": ["1", "2"], "type": ["etablissement", "commune"],
                                     "nom": [HYPERLINK, "Mairie"], "code": [SUM, "35238"]}),
        "crm/contrats": pd.DataFrame({"id_contrat": ["7"], "id_acteur": ["2"], "objet": [ARITH],
                                      "date_signature": [None], "date_debut": [None], "date_fin": [None],
                                      "statut": ["en_attente"]}),
        "crm/contacts": pd.DataFrame({"id_contact": ["9"], "id_acteur": ["1"], "role": [CMD]}),
        "crm/actions": pd.DataFrame({"date": ["2024-01-15"], "uai": [VALID_UAI], "type_action": ["formation"]}),
    }
    written = write_crm(frames, tmp_path)
    for name, path in written.items():
        rows = cells(path)
        assert live_formulas(rows) == [], name
    assert cells(written["crm/acteurs"])[1][2:] == ["'" + HYPERLINK, "'" + SUM]
    # the files still read back through their contract
    acteurs = read_contract_file(tmp_path, "crm/acteurs")
    assert acteurs["nom"].tolist() == ["'" + HYPERLINK, "Mairie"]
    assert read_contract_file(tmp_path, "crm/contacts")["role"].tolist() == ["'" + CMD]
    # an incremental pull re-reads and rewrites them: still one quote, not two
    write_crm({**frames, "crm/acteurs": frames["crm/acteurs"].iloc[[1]]}, tmp_path, merge=True)
    assert read_contract_file(tmp_path, "crm/acteurs")["nom"].tolist() == ["'" + HYPERLINK, "Mairie"]


def test_contract_writer_keeps_negative_numbers(tmp_path):
    df = pd.DataFrame({"annee": [2024, 2024], "niveau": ["region", "commune"], "code": ["53", ARITH],
                       "depenses_ressources_numeriques": [-1.5, 1200.0], "dont_gar": [-1.5, 300.5]})
    path = write_contract_file(df, tmp_path, "budget/depenses")
    rows = cells(path)
    assert rows[1] == ["2024", "region", "53", "-1.5", "-1.5"]
    assert rows[2][2] == "'" + ARITH
    back = read_contract_file(tmp_path, "budget/depenses")
    assert back["depenses_ressources_numeriques"].tolist() == [-1.5, 1200.0]


# --------------------------------------------------------------------------- aggregated gar/acces.csv

def test_aggregated_acces_is_spreadsheet_safe_and_reads_back(tmp_path):
    from gar_analysis.events import aggregate_events

    part = tmp_path / "evenements" / "mois=2024-01"
    part.mkdir(parents=True)
    keys = [(HYPERLINK, "r1"), (SUM, "r1"), (VALID_UAI, CMD), (VALID_UAI, ARITH), (VALID_UAI, "r1")]
    rows = [(u, r, k) for k, (u, r) in enumerate(keys) for _ in range(k + 1)]
    table = pa.table({
        "horodatage": pa.array([datetime(2024, 1, 10, 9)] * len(rows), pa.timestamp("us")),
        "uai": [u for u, _, _ in rows],
        "id_accedant": [f"p{i}" for i in range(len(rows))],
        "profil": ["eleve"] * len(rows),
        "id_ressource": [r for _, r, _ in rows],
        "support": ["ordinateur"] * len(rows),
    })
    pq.write_table(table, part / "part-0.parquet")
    out = tmp_path / "out"
    aggregate_events(tmp_path / "evenements", out, threshold=5)
    for f in ("acces.csv", "accedants_actifs.csv"):
        assert live_formulas(cells(out / "gar" / f)) == [], f
    # the loaders read it back, neutralised keys included, counts intact
    acces = read_contract_file(out, "gar/acces")
    got = dict(zip(zip(acces["uai"], acces["id_ressource"]), acces["acces"]))
    assert got == {("'" + HYPERLINK, "r1"): 1, ("'" + SUM, "r1"): 2, (VALID_UAI, "'" + CMD): 3,
                   (VALID_UAI, "'" + ARITH): 4, (VALID_UAI, "r1"): 5}
    pq_acces = pq.read_table(out / "gar" / "acces.parquet").to_pandas()
    assert sorted(pq_acces["uai"]) == sorted(acces["uai"])  # the Parquet copy says the same
    # …and a neutralised key is a finding, never a silent match (the catalogue holds the raw id)
    (out / "gar" / "ressources.csv").write_text(
        "id_ressource;nom;editeur;type_ressource;degre\n"
        f"r1;Dico;Dico Plus;dictionnaire;tous\n\"{CMD}\";Calc;X;manuel;tous\n", encoding="utf-8")
    f = run_checks(out, rules=["uai_invalide", "ressource_inconnue"])
    assert set(f.loc[f["regle"] == "uai_invalide", "uai"]) == {"'" + HYPERLINK, "'" + SUM}
    assert set(f.loc[f["regle"] == "ressource_inconnue", "id_ressource"]) == {"'" + CMD, "'" + ARITH}


@pytest.mark.parametrize("payload", [HYPERLINK, "\rCR", ARITH])
def test_every_contract_file_round_trips(tmp_path, payload):
    """A payload in any text column of any contract file is written neutralised and read back."""
    for name, fs in CONTRACT.items():
        row = {}
        for col in fs.columns:
            if col.values:
                row[col.name] = col.values[0]
            elif col.kind == "str":
                row[col.name] = payload
            else:
                row[col.name] = {"int": -3, "float": -1.5, "date": "2024-01-15", "month": "2024-01",
                                 "school_year": "2023-2024"}[col.kind]
        path = write_contract_file(pd.DataFrame([row]), tmp_path, name)
        assert live_formulas(cells(path)) == [], name
        back = read_contract_file(tmp_path, name)
        for col in fs.columns:
            if col.kind == "str" and not col.values:
                assert back[col.name].iloc[0] == "'" + payload, (name, col.name)
            if col.kind in ("int", "float"):
                assert float(back[col.name].iloc[0]) == {"int": -3, "float": -1.5}[col.kind], (name, col.name)
