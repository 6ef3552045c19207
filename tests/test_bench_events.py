"""The raw-event benchmark script: its variants agree, and its summary is right."""
from __future__ import annotations

from pathlib import Path

import pytest

@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_events")


def test_variants_compute_the_same_tables(bench, generated_events, tmp_path):
    runs = {v: bench.VARIANTS[v](generated_events, tmp_path / v) for v in ("duckdb", "sql", "pandas", "pandas_str")}
    assert runs["duckdb"]["events"] == 12_000
    for v in ("sql", "pandas", "pandas_str"):
        assert (runs[v]["acces_rows"], runs[v]["actifs_rows"]) == (runs["duckdb"]["acces_rows"],
                                                                   runs["duckdb"]["actifs_rows"]), v


def test_pandas_str_reads_plain_strings(bench, generated_events, monkeypatch):
    import pandas as pd

    seen = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    bench.variant_pandas(generated_events, Path("."))
    bench.variant_pandas_str(generated_events, Path("."))
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
    assert bench.pandas_fits("pandas", 100_000_000, 1e9)  # ≈ 14 GB of 24
    assert bench.pandas_fits("pandas_str", 100_000_000, 1e9)  # ≈ 20 GB
    assert not bench.pandas_fits("pandas", 200_000_000, 1e9)  # ≈ 28 GB
    assert not bench.pandas_fits("pandas_str", 120_000_000, 1e9)  # ≈ 23.8 GB, pandas alone would fit
    assert bench.pandas_fits("pandas", 120_000_000, 1e9)
    assert not bench.pandas_fits("pandas", 10_000_000, 1e6)  # size cap
