"""Long simulation: interval coverage of fit_success_factors over ≥ 100 datasets per family (run with -m slow)."""
from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("family", ["binomial", "poisson", "negative_binomial", "gaussian"])
def test_interval_coverage_close_to_95_percent(family, load_benchmark):
    cov = load_benchmark("simulate_models").coverage(family, datasets=100, schools=1500)
    pooled = cov["covered"].sum() / cov["datasets"].sum()
    assert 0.92 <= pooled <= 0.98, (family, pooled)
    assert (cov["coverage"] >= 0.85).all(), cov  # no term badly off
