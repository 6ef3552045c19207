"""benchmarks/bench_batch.py measures only what both sides produced (issue 14)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_batch")


def test_no_speedup_unless_both_sides_produced_every_page(bench):
    """Before: « Accélération : ×4.6 » was printed while the batch had produced 0 of 12 reports."""
    codes = [f"{i:02d}" for i in range(1, 13)]
    pages = [Path(f"/x/{c}.html") for c in codes]
    ratio, reason = bench.speedup(codes, {"boucle": 46.0, "lot": 10.0}, pages, [])
    assert ratio is None
    assert reason.startswith("Pas d'accélération calculée : le lot a produit 0 page(s) sur 12 (manquent : 01, "
                             "02, 03, 04, 05 …)")
    ratio, reason = bench.speedup(codes, {"boucle": 46.0, "lot": 10.0}, pages[:11], pages)
    assert ratio is None and "la boucle a produit 11 page(s) sur 12 (manquent : 12)" in reason
    assert bench.speedup(codes, {"boucle": 46.0, "lot": 10.0}, pages, pages) == (4.6, "")


def test_relative_processed_is_resolved_against_the_current_directory(bench, tmp_path, monkeypatch):
    (tmp_path / "data" / "processed").mkdir(parents=True)
    (tmp_path / "data" / "processed" / "manifest.json").write_text(json.dumps({}))
    monkeypatch.chdir(tmp_path)
    got = bench._ensure_processed(tmp_path / "out", "data/processed")
    assert got.is_absolute() and got == (tmp_path / "data" / "processed").resolve()
    with pytest.raises(SystemExit, match="Tables traitées introuvables : .*absent"):
        bench._ensure_processed(tmp_path / "out", "absent")


def test_loop_subset_is_evenly_spaced_and_named_like_the_batch_pages(bench):
    from types import SimpleNamespace

    jobs = [SimpleNamespace(audience="academie", stem=f"{i:02d}") for i in range(10)]
    assert [j.stem for j in bench.subset(jobs, 4)] == ["00", "02", "05", "07"]
    assert bench.subset(jobs, None) == jobs and bench.subset(jobs, 99) == jobs
    assert bench.page_id(jobs[3]) == "academie__03"
