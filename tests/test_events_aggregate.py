"""Tests of ``gar-analysis aggregate`` (gar_analysis.events.aggregate), DuckDB and Spark engines."""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from gar_analysis.cli import main
from gar_analysis.contract import PROFILS, SUPPORTS, read_contract_file
from gar_analysis.errors import ConfigError, DataError
from gar_analysis.events import aggregate_events, discover
from gar_analysis.events.aggregate import FINDING_COLUMNS


@pytest.fixture(scope="module")
def events(generated_events):
    """Clean generated events (conftest ``generated_events``)."""
    return generated_events


def read_events(path):
    df = pads.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    for c in ("uai", "profil", "id_ressource", "support", "mois"):
        df[c] = df[c].astype(object)
    return df


def reference(df, threshold=5):
    """Plain-pandas aggregation of valid events: the expected outputs."""
    ok = (df["profil"].isin(PROFILS) & df["support"].isin(SUPPORTS) & df["uai"].notna()
          & df["id_ressource"].notna() & df["id_accedant"].notna() & df["horodatage"].notna()
          & (df["horodatage"].dt.strftime("%Y-%m") == df["mois"]))
    v = df[ok]
    acces = (v.groupby(["mois", "uai", "id_ressource", "profil", "support"]).size()
             .rename("acces").reset_index())
    actifs = (v.groupby(["mois", "uai", "profil"])["id_accedant"].nunique()
              .rename("accedants_actifs").reset_index())
    actifs["sous_seuil"] = (actifs["accedants_actifs"] < threshold).astype(int)
    return acces, actifs


def as_plain(df, cols):
    out = df[cols].reset_index(drop=True).copy()
    for c in cols:
        out[c] = out[c].astype(int) if c in ("acces", "accedants_actifs", "sous_seuil") else out[c].astype(str)
    return out.sort_values(cols[:-1] if "sous_seuil" not in cols else cols[:3], ignore_index=True)


def assert_matches_reference(out_dir, raw, threshold=5):
    exp_acces, exp_actifs = reference(raw, threshold)
    acces = read_contract_file(out_dir, "gar/acces")
    actifs = read_contract_file(out_dir, "gar/accedants_actifs")
    cols_a = ["mois", "uai", "id_ressource", "profil", "support", "acces"]
    cols_b = ["mois", "uai", "profil", "accedants_actifs", "sous_seuil"]
    pd.testing.assert_frame_equal(as_plain(acces, cols_a), as_plain(exp_acces, cols_a))
    pd.testing.assert_frame_equal(as_plain(actifs, cols_b), as_plain(exp_actifs, cols_b))
    # the Parquet copy holds the same rows
    pq_acces = pq.read_table(out_dir / "gar/acces.parquet").to_pandas()
    pd.testing.assert_frame_equal(as_plain(pq_acces, cols_a), as_plain(exp_acces, cols_a))


def test_aggregation_matches_pandas_reference(events, tmp_path):
    r = aggregate_events(events, tmp_path / "out", threshold=5)
    raw = read_events(events)
    assert_matches_reference(tmp_path / "out", raw)
    assert r.n_events == len(raw) and r.n_excluded == 0 and r.findings.empty
    assert r.acces_rows == len(read_contract_file(tmp_path / "out", "gar/acces"))
    assert r.sous_seuil > 0 and r.engine == "duckdb"
    # outputs sorted, positive counts only
    acces = read_contract_file(tmp_path / "out", "gar/acces")
    assert (acces["acces"] > 0).all()
    keys = acces[["mois", "uai", "id_ressource", "profil", "support"]].astype(str).agg("|".join, axis=1)
    assert keys.is_monotonic_increasing and keys.is_unique


def test_threshold_flags_small_distinct_counts(events, tmp_path):
    aggregate_events(events, tmp_path / "out", threshold=12)
    actifs = read_contract_file(tmp_path / "out", "gar/accedants_actifs")
    flag = actifs["sous_seuil"].astype(int)
    assert ((actifs["accedants_actifs"] < 12) == (flag == 1)).all()
    assert 0 < flag.sum() < len(flag)


def test_no_identifier_leaves_the_aggregation(events, tmp_path):
    out = tmp_path / "out"
    aggregate_events(events, out)
    ids = set(read_events(events)["id_accedant"].sample(300, random_state=1))
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in written} == {"acces.csv", "acces.parquet", "accedants_actifs.csv",
                                         "accedants_actifs.parquet", "constats_evenements.csv",
                                         "agregation_etat.json"}
    for p in written:
        text = p.read_bytes()
        assert not any(i.encode() in text for i in ids), p
        if p.suffix == ".parquet":
            assert "id_accedant" not in pq.read_schema(p).names


def test_files_without_statistics_are_checked_row_by_row(events, tmp_path):
    """The statistics shortcut and the row-by-row check give the same result."""
    copy = tmp_path / "ev"
    for f in events.glob("mois=*/*.parquet"):
        (copy / f.parent.name).mkdir(parents=True, exist_ok=True)
        pq.write_table(pq.read_table(f), copy / f.parent.name / f.name, write_statistics=False)
    files, _ = discover(copy)
    assert files and not any(clean for _, _, clean in files)
    assert all(clean for _, _, clean in discover(events)[0])
    aggregate_events(events, tmp_path / "a")
    aggregate_events(copy, tmp_path / "b")
    for name in ("gar/acces.csv", "gar/accedants_actifs.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# --------------------------------------------------------------------------- bad input

def make_bad_events(events, dest):
    """Copy clean events and add the defects of the issue; return the copy."""
    shutil.copytree(events, dest)
    months = sorted(p.name for p in dest.glob("mois=*"))
    m1, m2, m3, m4 = months[2], months[3], months[4], months[5]
    t = pq.read_table(next((dest / m1).glob("*.parquet")))
    # 1. a partition file with a missing column
    pq.write_table(t.drop_columns(["support"]).slice(0, 50), dest / m1 / "part-sans-support.parquet")
    # 2. unknown profile and support values, a missing id, out-of-month timestamps (plain strings, no stats)
    df = pq.read_table(next((dest / m2).glob("*.parquet"))).slice(0, 40).to_pandas()
    for c in ("uai", "profil", "id_ressource", "support"):
        df[c] = df[c].astype(str)
    df.loc[0:4, "profil"] = "parent"
    df.loc[5:7, "support"] = "console"
    df.loc[8:10, "horodatage"] = pd.Timestamp("2019-01-15 10:00")
    df.loc[11, "id_accedant"] = None
    df.loc[12, "uai"] = None
    (dest / m2 / "part-defauts.parquet").unlink(missing_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), dest / m2 / "part-defauts.parquet")
    # 3. unknown values in an otherwise clean file (statistics prove no null, all in the month),
    #    with accédants seen nowhere else: they must not count as active
    clean = pq.read_table(next((dest / m4).glob("*.parquet"))).slice(0, 30).to_pandas()
    for c in ("uai", "profil", "id_ressource", "support"):
        clean[c] = clean[c].astype(str)
    clean.loc[0:2, "profil"] = "parent"
    clean.loc[3:5, "support"] = "console"
    clean.loc[0:5, "id_accedant"] = [f"{i:016x}" for i in range(6)]
    pq.write_table(pa.Table.from_pandas(clean, preserve_index=False), dest / m4 / "part-vocab.parquet")
    # 4. a file outside any partition, an unreadable file, a wrong type
    pq.write_table(t.slice(0, 5), dest / "perdu.parquet")
    (dest / m3 / "part-casse.parquet").write_bytes(b"PAR1 pas du parquet")
    bad_type = t.slice(0, 5).set_column(0, "horodatage", pa.array(["2024-01-01"] * 5))
    pq.write_table(bad_type, dest / m3 / "part-texte.parquet")
    return dest


@pytest.fixture(scope="module")
def bad_events(events, tmp_path_factory):
    return make_bad_events(events, tmp_path_factory.mktemp("bad") / "evenements")


def test_bad_input_reported_as_findings_and_rest_completes(bad_events, tmp_path):
    r = aggregate_events(bad_events, tmp_path / "out")
    f = r.findings
    assert list(f.columns) == FINDING_COLUMNS
    rules = f.groupby("regle").size().to_dict()
    assert rules == {"colonne_manquante": 1, "valeur_inconnue": 4, "horodatage_hors_partition": 1,
                     "valeur_manquante": 2, "partition_invalide": 1, "fichier_illisible": 1,
                     "type_invalide": 1}
    miss = f[f["regle"] == "colonne_manquante"].iloc[0]
    assert miss["source"].endswith("part-sans-support.parquet") and "support" in miss["message"]
    unknown = f[f["regle"] == "valeur_inconnue"].set_index("regle")["message"].str.cat(sep=" ")
    assert "« parent »" in unknown and "« console »" in unknown
    hors = f[f["regle"] == "horodatage_hors_partition"].iloc[0]
    assert hors["message"].startswith("3 événement(s)") and "mois=" in hors["source"]
    assert (f["gravite"] == "erreur").all()
    assert r.n_files_excluded == 4
    assert r.n_excluded == 5 + 3 + 3 + 1 + 1 + 6
    clean_file = next(p for p, _, ok in discover(bad_events)[0] if p.name == "part-vocab.parquet")
    assert next(ok for p, _, ok in discover(bad_events)[0] if p == clean_file)
    # the valid events, including the good rows of the defective file, are aggregated exactly
    readable = [p for p, _, _ in discover(bad_events)[0]]
    raw = pd.concat([pq.read_table(p).to_pandas().assign(mois=p.parent.name[5:]) for p in readable],
                    ignore_index=True)
    for c in ("uai", "profil", "id_ressource", "support"):
        raw[c] = raw[c].astype(object)
    assert_matches_reference(tmp_path / "out", raw)
    written = pd.read_csv(r.findings_path, sep=";", dtype=str, keep_default_na=False)
    assert len(written) == len(f)


def test_cli_aggregate(bad_events, tmp_path, capsys):
    assert main(["aggregate", "--events", str(bad_events), "--out", str(tmp_path / "o"),
                 "--threshold", "3", "--memory-limit", "500MB", "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert "gar/acces.csv" in out and "constat(s)" in out and "colonne_manquante" in err
    assert read_contract_file(tmp_path / "o", "gar/accedants_actifs")["sous_seuil"].notna().all()
    assert not list((tmp_path / "o").rglob("*.tmp"))


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["aggregate", "--events", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 2
    assert "répertoire d'événements absent" in capsys.readouterr().err
    (tmp_path / "vide").mkdir()
    with pytest.raises(DataError, match="aucun fichier Parquet"):
        aggregate_events(tmp_path / "vide", tmp_path / "o")
    with pytest.raises(ConfigError, match="moteur inconnu"):
        aggregate_events(tmp_path / "vide", tmp_path / "o", engine="polars")


# --------------------------------------------------------------------------- Spark

def _spark_available() -> bool:
    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


@pytest.mark.slow  # a JVM start and a few Spark jobs: 20-30 s on an idle 2-core machine
@pytest.mark.skipif(not _spark_available(), reason="pyspark ou Java absent")
def test_spark_engine_gives_identical_outputs(bad_events, tmp_path):
    a = aggregate_events(bad_events, tmp_path / "duckdb", engine="duckdb")
    b = aggregate_events(bad_events, tmp_path / "spark", engine="spark")
    for name in ("gar/acces.csv", "gar/accedants_actifs.csv", "gar/acces.parquet"):
        ta = (tmp_path / "duckdb" / name)
        tb = (tmp_path / "spark" / name)
        if name.endswith(".csv"):
            assert ta.read_bytes() == tb.read_bytes(), name
        else:
            assert pq.read_table(ta).equals(pq.read_table(tb))
    pd.testing.assert_frame_equal(a.findings, b.findings)
    assert (a.n_events, a.n_excluded, a.sous_seuil) == (b.n_events, b.n_excluded, b.sous_seuil)
    assert np.isclose(a.n_events, b.n_events) and b.engine == "spark"


# --------------------------------------------------------------------------- distinct counts on hashes

def test_keyed_distinct_equals_string_distinct(bad_events, tmp_path, monkeypatch):
    """The two-phase count on integer keys, and its fallback on strings, give the same files."""
    import gar_analysis.events.aggregate as agg

    aggregate_events(bad_events, tmp_path / "keyed")
    calls = []

    def collide(con):  # as if two (mois, uai, profil) groups shared a 64-bit key
        calls.append(con.execute("SELECT count(*) FROM groupes").fetchone()[0])
        return False

    monkeypatch.setattr(agg, "_keys_unique", collide)
    aggregate_events(bad_events, tmp_path / "strings")
    assert calls and calls[0] > 0
    for name in ("gar/acces.csv", "gar/accedants_actifs.csv", "constats_evenements.csv"):
        assert (tmp_path / "keyed" / name).read_bytes() == (tmp_path / "strings" / name).read_bytes(), name


def test_hash_distinct_is_exact_on_near_identical_pseudonyms(tmp_path):
    """200 000 pseudonyms differing by one character in a single group: the hash count is exact."""
    n = 200_000
    ids = [f"{i:016x}" for i in range(n)] + [f"{i:016x}" for i in range(0, n, 7)]  # repeats
    t = pa.table({"horodatage": pa.array([pd.Timestamp("2024-03-04 10:00")] * len(ids), pa.timestamp("us")),
                  "uai": ["0750001A"] * len(ids), "id_accedant": ids, "profil": ["eleve"] * len(ids),
                  "id_ressource": ["R1"] * len(ids), "support": ["mobile"] * len(ids)})
    (tmp_path / "ev" / "mois=2024-03").mkdir(parents=True)
    pq.write_table(t, tmp_path / "ev" / "mois=2024-03" / "part-0.parquet")
    r = aggregate_events(tmp_path / "ev", tmp_path / "out")
    actifs = read_contract_file(tmp_path / "out", "gar/accedants_actifs")
    assert actifs["accedants_actifs"].astype(int).tolist() == [n]
    assert r.n_events == len(ids)
