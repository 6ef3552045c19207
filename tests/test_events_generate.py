"""Tests of the raw-event generator (gar_analysis.events.generate)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from gar_analysis.contract import PROFILS, SUPPORTS, read_contract_file, write_contract_file
from gar_analysis.errors import DataError
from gar_analysis.events import EVENT_COLUMNS, generate_events
from gar_analysis.events.demo import write_demo_data_dir


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_demo_data_dir(tmp_path_factory.mktemp("data"), n_schools=25, n_resources=12, seed=7)


def read_events(path):
    t = pads.dataset(path, format="parquet", partitioning="hive").to_table()
    df = t.to_pandas()
    for c in ("uai", "profil", "id_ressource", "support", "mois"):
        df[c] = df[c].astype(str)
    return df


def test_generates_exact_count_partitioned_by_month(data_dir, tmp_path):
    info = generate_events(data_dir, 20_000, tmp_path / "ev", seed=3, chunk_size=700)
    assert info["n_events"] == 20_000
    files = sorted((tmp_path / "ev").glob("mois=*/part-*.parquet"))
    assert len(files) == info["n_files"]
    assert all(re.fullmatch(r"mois=\d{4}-\d{2}", f.parent.name) for f in files)
    # chunking: no file above the chunk size, several files in a busy month
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    assert max(sizes) <= 700 and len(files) > len(info["months"])
    schema = pq.read_schema(files[0])
    assert schema.names == list(EVENT_COLUMNS)
    assert str(schema.field("horodatage").type) == "timestamp[us]"
    df = read_events(tmp_path / "ev")
    assert len(df) == 20_000
    assert df.groupby("mois").size().to_dict() == info["months"]
    # every timestamp in its partition's month
    assert (df["horodatage"].dt.strftime("%Y-%m") == df["mois"]).all()
    assert set(df["profil"]) <= set(PROFILS) and set(df["support"]) <= set(SUPPORTS)
    assert df["id_accedant"].str.fullmatch(r"[0-9a-f]{16}").all()


def test_events_consistent_with_schools_and_subscriptions(data_dir, tmp_path):
    generate_events(data_dir, 30_000, tmp_path / "ev", seed=5)
    df = read_events(tmp_path / "ev")
    etabs = read_contract_file(data_dir, "gar/etablissements").set_index("uai")
    subs = read_contract_file(data_dir, "gar/abonnements")
    assert set(df["uai"]) <= set(etabs.index)
    # no event before the school's inscription month
    first = df.groupby("uai")["horodatage"].min()
    insc = etabs.loc[first.index, "date_inscription"].dt.to_period("M")
    assert (first.dt.to_period("M") >= insc).all()
    # every (school, resource, month) is covered by a subscription active that month
    pairs = df[["uai", "id_ressource", "mois"]].drop_duplicates()
    m = pairs.merge(subs, on=["uai", "id_ressource"])
    start = pd.PeriodIndex(m["mois"], freq="M").start_time
    end = pd.PeriodIndex(m["mois"], freq="M").end_time
    m["actif"] = (m["date_debut"] <= end) & (m["date_fin"] >= start)
    covered = m.groupby(["uai", "id_ressource", "mois"])["actif"].any()
    assert len(covered) == len(pairs) and covered.all()


def test_seasonality_and_distinct_accedants(data_dir, tmp_path):
    generate_events(data_dir, 40_000, tmp_path / "ev", seed=11)
    df = read_events(tmp_path / "ev")
    by_month = df.groupby(df["horodatage"].dt.month).size()
    assert by_month.get(8, 0) < 0.2 * by_month[11]  # August nearly empty, November busy
    hours = df["horodatage"].dt.hour
    assert ((hours >= 8) & (hours < 18)).mean() > 0.6
    # pupils are many, a school's accédants return: fewer distinct ids than events
    per = df.groupby(["mois", "uai", "profil"])["id_accedant"].agg(["size", "nunique"])
    assert per["nunique"].sum() < 0.8 * per["size"].sum()
    assert df["profil"].value_counts().idxmax() == "eleve"


def test_reproducible_with_seed_and_replaces_previous_run(data_dir, tmp_path):
    generate_events(data_dir, 5_000, tmp_path / "a", seed=1)
    generate_events(data_dir, 5_000, tmp_path / "b", seed=1)
    generate_events(data_dir, 5_000, tmp_path / "c", seed=2)
    a, b, c = (read_events(tmp_path / x).sort_values(["horodatage", "id_accedant"], ignore_index=True)
               for x in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a["id_accedant"].equals(c["id_accedant"])
    generate_events(data_dir, 300, tmp_path / "a", seed=1)  # a smaller run replaces the old files
    assert len(read_events(tmp_path / "a")) == 300


def test_no_subscription_is_a_data_error(data_dir, tmp_path):
    d = tmp_path / "vide"
    write_contract_file(read_contract_file(data_dir, "gar/etablissements"), d, "gar/etablissements")
    subs = read_contract_file(data_dir, "gar/abonnements")
    subs["uai"] = "0000000A"  # only unregistered schools
    write_contract_file(subs, d, "gar/abonnements")
    with pytest.raises(DataError, match="abonnement"):
        generate_events(d, 100, tmp_path / "ev")


def test_pool_sizes_from_accedants_file(data_dir, tmp_path):
    d = write_demo_data_dir(tmp_path / "d", n_schools=3, n_resources=4, seed=2)
    uais = read_contract_file(d, "gar/etablissements")["uai"].tolist()
    acc = pd.DataFrame([{"annee_scolaire": "2024-2025", "uai": u, "profil": p,
                         "accedants": 2 if p == "eleve" else 1} for u in uais for p in PROFILS])
    write_contract_file(acc, d, "gar/accedants")
    generate_events(d, 3_000, tmp_path / "ev", seed=4)
    df = read_events(tmp_path / "ev")
    distinct = df.groupby(["uai", "profil"])["id_accedant"].nunique()
    assert distinct.max() <= 2 and np.all(distinct.xs("enseignant", level="profil") == 1)
