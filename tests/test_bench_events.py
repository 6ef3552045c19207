"""The raw-event benchmark script: its variants agree, and its summary is right."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gar_analysis.events import generate_events
from gar_analysis.events.demo import write_demo_data_dir

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_events.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_events", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    base = tmp_path_factory.mktemp("bench")
    data = write_demo_data_dir(base / "data", n_schools=15, n_resources=8, seed=5)
    generate_events(data, 6_000, base / "evenements", seed=11, chunk_size=500)
    return base / "evenements"


def test_variants_compute_the_same_tables(bench, events, tmp_path):
    runs = {v: bench.VARIANTS[v](events, tmp_path / v) for v in ("duckdb", "sql", "pandas", "pandas_str")}
    assert runs["duckdb"]["events"] == 6_000
    for v in ("sql", "pandas", "pandas_str"):
        assert (runs[v]["acces_rows"], runs[v]["actifs_rows"]) == (runs["duckdb"]["acces_rows"],
                                                                   runs["duckdb"]["actifs_rows"]), v


def test_pandas_str_reads_plain_strings(bench, events, monkeypatch):
    import pandas as pd

    seen = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    bench.variant_pandas(events, Path("."))
    bench.variant_pandas_str(events, Path("."))
    assert isinstance(seen[0]["uai"].dtype, pd.CategoricalDtype)  # as generated: Arrow dictionary types
    assert not isinstance(seen[1]["uai"].dtype, pd.CategoricalDtype)


def test_summary_takes_medians_and_ratios(bench):
    def run(variant, seconds, peak, n=100_000_000):
        return {"variant": variant, "n": n, "seconds": seconds, "cpu_s": seconds, "peak_mb": peak,
                "load_before": 1.0, "load_after": 1.5}

    results = [run("duckdb", 30, 2000), run("duckdb", 20, 2100), run("duckdb", 25, 1900),
               run("pandas", 100, 14000), run("sql", 33, 4300),
               {"variant": "pandas_str", "n": 100_000_000, "error": "killed"}]
    summary = {r["variant"]: r for r in bench.summarise(results)}
    assert summary["duckdb"]["seconds"] == 25 and summary["duckdb"]["runs"] == 3
    assert (summary["duckdb"]["min_s"], summary["duckdb"]["max_s"]) == (20, 30)
    assert summary["pandas_str"]["failed"] == 1 and "seconds" not in summary["pandas_str"]
    (line,) = bench.ratios(list(summary.values()))
    assert "pandas / duckdb : durée × 4.00" in line
    assert "mémoire duckdb / pandas 0.14" in line
    assert "duckdb / sql : × 0.76" in line
    assert "échec" in bench.markdown({"date": "d", "machine": "m", "results": results})


def test_pandas_runs_only_where_it_fits(bench, monkeypatch):
    monkeypatch.setattr(bench, "mem_available", lambda: 24 * 2**30)
    assert bench.pandas_fits(100_000_000, 1e9)  # ≈ 14 GB of 24
    assert not bench.pandas_fits(200_000_000, 1e9)  # ≈ 28 GB
    assert not bench.pandas_fits(10_000_000, 1e6)  # size cap
