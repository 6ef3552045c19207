"""Interval coverage of fit_success_factors over simulated datasets with known coefficients.

Usage::

    .venv/bin/python benchmarks/simulate_models.py [--datasets 100] [--schools 1500] [--write]

For each family (binomial, poisson, negative_binomial, gaussian) and each
dataset, the 95 % interval of every term is checked against its true value.
``--write`` replaces the figures section of docs/quality.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gar_analysis.models import fit_success_factors  # noqa: E402

TRUTH = {"Intercept": -0.4, "referent": 0.9, "formation": 0.5, "convention": 0.3, "ips_10": 0.3, "rural": -0.2,
         "niveau[T.college]": 0.4, "niveau[T.lycee]": 0.7, "secteur[T.prive]": -0.3}
FACTORS = ["referent", "formation", "convention", "ips_10", "rural", "niveau", "secteur"]
FAMILIES = ("binomial", "poisson", "negative_binomial", "gaussian")
COUNT_SHIFT = -3.0  # log accès per pupil of the reference school, for counts


def simulate(family: str, n: int, rng: np.random.Generator, acad_sd: float = 0.0, alpha: float = 0.3):
    """One dataset: schools with the factors of etablissements.parquet and a known linear predictor."""
    acad = rng.choice([f"{i:02d}" for i in range(1, 31)], n)
    u = dict(zip([f"{i:02d}" for i in range(1, 31)], rng.normal(0, acad_sd, 30)))
    d = pd.DataFrame({
        "referent": rng.random(n) < 0.4, "formation": rng.random(n) < 0.3, "convention": rng.random(n) < 0.5,
        "ips_10": rng.normal(0, 1.5, n), "rural": rng.random(n) < 0.3,
        "niveau": rng.choice(["ecole", "college", "lycee"], n, p=[0.6, 0.25, 0.15]),
        "secteur": rng.choice(["public", "prive"], n, p=[0.8, 0.2]), "code_academie": acad,
        "nombre_eleves": rng.integers(30, 900, n)})
    eta = np.full(n, TRUTH["Intercept"])
    for f in ("referent", "formation", "convention", "ips_10", "rural"):
        eta = eta + TRUTH[f] * d[f].astype(float).to_numpy()
    eta = eta + TRUTH["niveau[T.college]"] * (d.niveau == "college") + TRUTH["niveau[T.lycee]"] * (d.niveau == "lycee")
    eta = eta + TRUTH["secteur[T.prive]"] * (d.secteur == "prive") + d.code_academie.map(u).to_numpy()
    eta = np.asarray(eta, float)
    if family == "binomial":
        d["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    elif family == "poisson":
        d["y"] = rng.poisson(d.nombre_eleves * np.exp(eta + COUNT_SHIFT))
    elif family == "negative_binomial":
        mu = d.nombre_eleves * np.exp(eta + COUNT_SHIFT)
        d["y"] = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    else:
        d["y"] = eta + rng.normal(0, 1, n)
    return d


def coverage(family: str, datasets: int = 100, schools: int = 1500, seed: int = 1, groups: bool = False,
             acad_sd: float = 0.0) -> pd.DataFrame:
    """Share of datasets whose 95 % interval covers the true value, per term.

    Returns
    -------
    pandas.DataFrame
        ``term, covered, datasets, coverage, mean_estimate, truth``.
    """
    rng = np.random.default_rng(seed)
    hits = {t: 0 for t in TRUTH}
    est = {t: [] for t in TRUTH}
    done = 0
    for _ in range(datasets):
        d = simulate(family, schools, rng, acad_sd=acad_sd)
        exposure = "nombre_eleves" if family in ("poisson", "negative_binomial") else None
        r = fit_success_factors(d, "y", FACTORS, family=family, exposure=exposure,
                                groups="code_academie" if groups else None, multilevel=False, marginal_draws=10)
        t = r.table.set_index("term")
        for term, value in TRUTH.items():
            true = value + (COUNT_SHIFT if term == "Intercept" and exposure else 0.0)
            hits[term] += int(t.loc[term, "ci_low"] <= true <= t.loc[term, "ci_high"])
            est[term].append(t.loc[term, "estimate"] - (COUNT_SHIFT if term == "Intercept" and exposure else 0.0))
        done += 1
    out = pd.DataFrame({"term": list(TRUTH), "covered": [hits[t] for t in TRUTH]})
    out["datasets"] = done
    out["coverage"] = out["covered"] / done
    out["mean_estimate"] = [float(np.mean(est[t])) for t in TRUTH]
    out["truth"] = list(TRUTH.values())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=int, default=100)
    p.add_argument("--schools", type=int, default=1500)
    p.add_argument("--write", action="store_true", help="write the figures into docs/quality.md")
    args = p.parse_args(argv)
    t0 = time.time()
    rows = []
    details = []
    for fam in FAMILIES:
        c = coverage(fam, args.datasets, args.schools)
        rows.append({"famille": fam, "intervalles": int(c["datasets"].sum()),
                     "couverture": c["covered"].sum() / c["datasets"].sum(),
                     "min_terme": c["coverage"].min(), "max_terme": c["coverage"].max()})
        details.append(c.assign(famille=fam))
        print(fam, f"{rows[-1]['couverture']:.3f}", flush=True)
    c = coverage("binomial", args.datasets, args.schools, seed=7, groups=True, acad_sd=0.0)
    rows.append({"famille": "binomial + erreurs robustes par académie", "intervalles": int(c["datasets"].sum()),
                 "couverture": c["covered"].sum() / c["datasets"].sum(), "min_terme": c["coverage"].min(),
                 "max_terme": c["coverage"].max()})
    details.append(c.assign(famille="binomial + cluster"))
    summary = pd.DataFrame(rows)
    elapsed = time.time() - t0
    md = _markdown(summary, pd.concat(details), args, elapsed)
    print(md)
    if args.write:
        _write(md)
    return 0


def _markdown(summary: pd.DataFrame, details: pd.DataFrame, args, elapsed: float) -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    lines = [f"Mesuré le {dt.date.today().isoformat()} par `benchmarks/simulate_models.py --datasets {args.datasets} "
             f"--schools {args.schools}` ({os.cpu_count()} cœurs, {ram:.0f} Go, Python {platform.python_version()}, "
             f"{elapsed:.0f} s).", "",
             "| famille | intervalles vérifiés | couverture à 95 % | terme le plus bas | terme le plus haut |",
             "|---|---:|---:|---:|---:|"]
    for r in summary.itertuples():
        lines.append(f"| {r.famille} | {r.intervalles} | {r.couverture:.3f} | {r.min_terme:.2f} | {r.max_terme:.2f} |")
    lines += ["", "Détail par terme (couverture ; moyenne des estimations ; vraie valeur) :", "",
              "| famille | terme | couverture | moyenne estimée | vraie valeur |", "|---|---|---:|---:|---:|"]
    for r in details.itertuples():
        lines.append(f"| {r.famille} | `{r.term}` | {r.coverage:.2f} | {r.mean_estimate:.3f} | {r.truth:.3f} |")
    return "\n".join(lines) + "\n"


def _write(md: str) -> None:
    from _docs import write_section

    write_section("quality.md", "simulate_models", md)


if __name__ == "__main__":
    sys.exit(main())
