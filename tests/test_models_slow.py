"""Long simulation: interval coverage of fit_success_factors over ≥ 100 datasets per family (run with -m slow)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "simulate_models.py"


def _bench():
    spec = importlib.util.spec_from_file_location("simulate_models", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("family", ["binomial", "poisson", "negative_binomial", "gaussian"])
def test_interval_coverage_close_to_95_percent(family):
    cov = _bench().coverage(family, datasets=100, schools=1500)
    pooled = cov["covered"].sum() / cov["datasets"].sum()
    assert 0.92 <= pooled <= 0.98, (family, pooled)
    assert (cov["coverage"] >= 0.85).all(), cov  # no term badly off
