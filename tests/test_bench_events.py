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


def test_incremental_table_and_added_month(bench, generated_events, tmp_path):
    assert bench.added_month(generated_events, "last") == max(p.name[5:] for p in generated_events.glob("mois=*"))
    largest = bench.added_month(generated_events, "largest")
    size = {p.name[5:]: sum(f.stat().st_size for f in p.glob("*.parquet")) for p in generated_events.glob("mois=*")}
    assert size[largest] == max(size.values())
    with pytest.raises(SystemExit):
        bench.added_month(generated_events, "1999-01")

    def run(step, seconds, identical=True):
        return {"n": 10_000_000, "month": "2025-08", "month_events": 40_000, "step": step, "seconds": seconds,
                "cpu_s": seconds / 2, "peak_mb": 500, "load_before": 3.0, "load_after": 4.0, "identical": identical}

    results = [run("full", 10), run("full", 12), run("full", 11), run("incremental", 2), run("incremental", 3),
               run("incremental", 1), run("inchange", 0.1)]
    text = bench.markdown_incremental({"date": "d", "machine": "m", "results": results})
    assert "| 10M | 2025-08 (40000) | full | 3 | 11.00 [10.00 – 12.00] | 5.5 | 500" in text
    assert "complète 11.00 s, incrémentale 2.00 s (× 5.5 plus rapide), sans changement 0.10 s" in text
    assert "NON" not in text
    results.append(run("incremental", 2, identical=False))
    assert "| NON |" in bench.markdown_incremental({"date": "d", "machine": "m", "results": results})


def test_full_variant_is_full_every_time(bench, generated_events, tmp_path):
    """The benchmark's ``duckdb`` variant redoes the whole work on a second run; ``incremental`` does not."""
    out = tmp_path / "a"
    bench.variant_duckdb(generated_events, out)
    stamp = (out / "gar/acces.csv").stat().st_mtime_ns
    assert bench.variant_incremental(generated_events, out)["mode"] == "inchangé"
    assert (out / "gar/acces.csv").stat().st_mtime_ns == stamp
    bench.variant_duckdb(generated_events, out)
    assert (out / "gar/acces.csv").stat().st_mtime_ns != stamp  # written again: the whole work redone
    bench.variant_duckdb(generated_events, tmp_path / "b")
    assert bench.same_outputs(out, tmp_path / "b")
