"""Fast tests of gar_analysis.models on simulated data with known coefficients."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gar_analysis.errors import DataError
from gar_analysis.models import CAVEAT, fit_success_factors, term_label

TRUTH = {"Intercept": -0.4, "referent": 0.9, "formation": 0.5, "ips_10": 0.3, "rural": -0.2,
         "niveau[T.college]": 0.4, "niveau[T.lycee]": 0.7, "secteur[T.prive]": -0.3}
FACTORS = ["referent", "formation", "ips_10", "rural", "niveau", "secteur"]


def simulate(n=4000, seed=0, family="binomial", acad_sd=0.0, alpha=0.3):
    rng = np.random.default_rng(seed)
    acad = rng.choice([f"{i:02d}" for i in range(1, 31)], n)
    u = dict(zip([f"{i:02d}" for i in range(1, 31)], rng.normal(0, acad_sd, 30)))
    d = pd.DataFrame({
        "referent": rng.random(n) < 0.4, "formation": rng.random(n) < 0.3, "ips_10": rng.normal(0, 1.5, n),
        "rural": rng.random(n) < 0.3, "niveau": rng.choice(["ecole", "college", "lycee"], n, p=[0.6, 0.25, 0.15]),
        "secteur": rng.choice(["public", "prive"], n, p=[0.8, 0.2]), "code_academie": acad,
        "nombre_eleves": rng.integers(50, 900, n)})
    eta = (TRUTH["Intercept"] + TRUTH["referent"] * d.referent + TRUTH["formation"] * d.formation
           + TRUTH["ips_10"] * d.ips_10 + TRUTH["rural"] * d.rural + TRUTH["niveau[T.college]"] * (d.niveau == "college")
           + TRUTH["niveau[T.lycee]"] * (d.niveau == "lycee") + TRUTH["secteur[T.prive]"] * (d.secteur == "prive")
           + d.code_academie.map(u))
    if family == "binomial":
        d["inscrit"] = rng.random(n) < 1 / (1 + np.exp(-eta))
    elif family == "poisson":
        d["acces"] = rng.poisson(d.nombre_eleves * np.exp(eta))
    elif family == "negative_binomial":
        mu = d.nombre_eleves * np.exp(eta)
        d["acces"] = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    else:
        d["score"] = eta + rng.normal(0, 1, n)
    return d, u


def _close_to_truth(table, k=4.0):
    t = table.set_index("term")
    for term, value in TRUTH.items():
        assert abs(t.loc[term, "estimate"] - value) < k * t.loc[term, "std_error"], term


def test_logistic_recovers_known_coefficients():
    d, _ = simulate()
    r = fit_success_factors(d, "inscrit", FACTORS)
    assert {"term", "estimate", "std_error", "ci_low", "ci_high", "p_value", "ratio"} <= set(r.table.columns)
    assert set(TRUTH) == set(r.table["term"])
    _close_to_truth(r.table)
    assert np.allclose(r.table["ratio"], np.exp(r.table["estimate"]))
    assert (r.table["ci_low"] < r.table["estimate"]).all() and (r.table["estimate"] < r.table["ci_high"]).all()
    assert r.table.attrs["avertissement"] == CAVEAT
    assert CAVEAT in r.summary_text()
    assert r.family == "binomial" and r.warnings == []


def test_gaussian_matches_least_squares():
    d, _ = simulate(n=600, family="gaussian")
    r = fit_success_factors(d, "score", FACTORS, family="gaussian")
    X = np.column_stack([np.ones(len(d)), d.niveau == "college", d.niveau == "lycee", d.secteur == "prive",
                         d.referent, d.formation, d.ips_10, d.rural]).astype(float)
    beta = np.linalg.lstsq(X, d.score.to_numpy(), rcond=None)[0]
    assert np.allclose(r.table["estimate"].to_numpy(), beta)
    assert r.table["ratio"].isna().all()


def test_poisson_with_exposure_and_negative_binomial_alpha():
    d, _ = simulate(family="poisson")
    r = fit_success_factors(d, "acces", FACTORS, family="poisson", exposure="nombre_eleves")
    _close_to_truth(r.table)
    assert r.diagnostics["dispersion"] == pytest.approx(1.0, abs=0.15)
    d, _ = simulate(n=2500, family="negative_binomial", alpha=0.3)
    r = fit_success_factors(d, "acces", FACTORS, family="negative_binomial", exposure="nombre_eleves")
    _close_to_truth(r.table)
    assert r.diagnostics["alpha"] == pytest.approx(0.3, abs=4 * r.diagnostics["alpha_se"])


def test_poisson_overdispersion_falls_back_to_quasi_poisson():
    d, _ = simulate(family="negative_binomial", alpha=0.5, n=2000)
    pois = fit_success_factors(d, "acces", FACTORS, family="poisson", exposure="nombre_eleves")
    nb = fit_success_factors(d, "acces", FACTORS, family="negative_binomial", exposure="nombre_eleves")
    assert pois.table.attrs["famille"] == "quasi-poisson"
    assert any("varient davantage" in w for w in pois.warnings)
    assert pois.diagnostics["dispersion"] > 10
    # quasi-Poisson intervals are honest: comparable to the negative binomial ones, not 10× narrower
    ratio = pois.table.set_index("term")["std_error"] / nb.table.set_index("term")["std_error"]
    assert (ratio > 0.5).all()


def test_marginal_effect_of_binary_factor_matches_manual_computation():
    d, _ = simulate(n=3000, seed=4)
    r = fit_success_factors(d, "inscrit", ["referent", "ips_10"], marginal_draws=50)
    b = r.table.set_index("term")["estimate"]
    eta0 = b["Intercept"] + b["ips_10"] * d.ips_10
    manual = np.mean(1 / (1 + np.exp(-(eta0 + b["referent"]))) - 1 / (1 + np.exp(-eta0))) * 100
    me = r.marginal_effects.set_index("term")
    assert me.loc["referent", "effect"] == pytest.approx(manual, rel=1e-9)
    assert me.loc["referent", "ci_low"] < manual < me.loc["referent", "ci_high"]
    assert me.loc["referent", "unit"] == "points de pourcentage"
    text = me.loc["referent", "texte"]
    assert text.startswith("Référent GAR désigné : associé à +") and "points de pourcentage" in text
    assert me.attrs["avertissement"] == CAVEAT


def test_groups_give_cluster_robust_and_multilevel_estimates():
    d, u = simulate(n=3000, seed=2, acad_sd=0.5)
    plain = fit_success_factors(d, "inscrit", FACTORS)
    r = fit_success_factors(d, "inscrit", FACTORS, groups="code_academie")
    assert r.cov_type == "cluster"
    se_plain = plain.table.set_index("term")["std_error"]
    se_cl = r.table.set_index("term")["std_error"]
    assert se_cl["Intercept"] > se_plain["Intercept"]  # académie effects inflate the intercept's uncertainty
    assert r.multilevel is not None and "BinomialBayesMixedGLM" in r.multilevel_method
    _close_to_truth(r.multilevel)
    ge = r.group_effects.assign(truth=lambda g: g["group"].map(u))
    assert np.corrcoef(ge["effect"], ge["truth"])[0, 1] > 0.8
    assert max(u, key=u.get) in set(ge["group"].iloc[:5])  # the largest planted effect is among the top 5


def test_count_groups_use_documented_alternative():
    d, u = simulate(n=3000, seed=3, family="negative_binomial", acad_sd=0.4)
    r = fit_success_factors(d, "acces", FACTORS, family="negative_binomial", exposure="nombre_eleves",
                            groups="code_academie")
    assert "Bayes empirique" in r.multilevel_method
    ge = r.group_effects.assign(truth=lambda g: g["group"].map(u))
    assert np.corrcoef(ge["effect"], ge["truth"])[0, 1] > 0.8


def test_binomial_with_trials_share_of_active_months():
    rng = np.random.default_rng(8)
    n = 1500
    d = pd.DataFrame({"referent": rng.random(n) < 0.5, "mois_mesures": rng.integers(6, 13, n)})
    p = 1 / (1 + np.exp(-(-0.5 + 1.0 * d.referent)))
    d["mois_actifs"] = rng.binomial(d.mois_mesures, p)
    r = fit_success_factors(d, "mois_actifs", ["referent"], exposure="mois_mesures")
    t = r.table.set_index("term")
    assert abs(t.loc["referent", "estimate"] - 1.0) < 4 * t.loc["referent", "std_error"]


def test_warnings_for_separation_collinearity_and_small_groups():
    rng = np.random.default_rng(1)
    n = 300
    d = pd.DataFrame({"x": rng.normal(size=n), "a": rng.random(n) < 0.5, "g": rng.choice(list("abcde"), n)})
    d["x2"] = d["x"] + rng.normal(0, 0.1, n)
    d["y"] = (rng.random(n) < 0.5) | d["a"]        # a = 1 → always registered: separation
    r = fit_success_factors(d, "y", ["x", "x2", "a"], groups="g", multilevel=False)
    text = " ".join(r.warnings)
    assert "Séparation" in text
    assert "Colinéarité forte" in text
    assert "Seulement 5 groupes" in text
    assert r.diagnostics["vif"].set_index("term").loc["x", "vif"] > 10


def test_term_names_and_labels():
    d, _ = simulate(n=800)
    r = fit_success_factors(d, "inscrit", ["niveau", "secteur", "referent"])
    assert list(r.table["term"]) == ["Intercept", "niveau[T.college]", "niveau[T.lycee]", "secteur[T.prive]",
                                     "referent"]
    assert term_label("niveau[T.college]") == "Collège (par rapport à l'école)"
    r = fit_success_factors(d, "inscrit", ["niveau"], references={"niveau": "lycee"})
    assert "niveau[T.ecole]" in set(r.table["term"])


@pytest.mark.parametrize("kwargs, message", [
    ({"factors": ["absent"]}, "colonne absente"),
    ({"factors": ["constant"]}, "facteur constant"),
    ({"outcome": "deux"}, "hors domaine"),
    ({"outcome": "acces", "family": "poisson", "exposure": "zero"}, "exposition nulle"),
    ({"outcome": "negatif", "family": "poisson"}, "hors domaine"),
    ({"family": "tweedie"}, "famille de modèle inconnue"),
    ({"factors": ["referent", "copie"]}, "colinéarité parfaite"),
    ({"factors": ["manquant"], "missing": "raise"}, "valeur manquante"),
    ({"factors": ["inscrit"]}, "figure aussi"),
])
def test_bad_input_gets_clear_french_error(kwargs, message):
    d, _ = simulate(n=200, family="binomial")
    d = d.assign(constant=1, deux=2, zero=0, acces=3, negatif=-1, copie=d.referent.astype(int),
                 manquant=np.where(np.arange(200) == 5, np.nan, 1.0 * np.arange(200)))
    args = {"outcome": "inscrit", "factors": ["referent"], **kwargs}
    with pytest.raises(DataError, match=message):
        fit_success_factors(d, args.pop("outcome"), args.pop("factors"), **args)


def test_not_a_dataframe_or_empty():
    with pytest.raises(DataError, match="DataFrame"):
        fit_success_factors([1, 2], "y", ["x"])
    with pytest.raises(DataError, match="vide"):
        fit_success_factors(pd.DataFrame({"y": [], "x": []}), "y", ["x"])


def test_object_booleans_are_binary_factors():
    d, _ = simulate(n=800)
    d["referent"] = d["referent"].astype(object)
    d["inscrit"] = d["inscrit"].astype(object)
    r = fit_success_factors(d, "inscrit", ["referent", "ips_10"])
    assert "referent" in set(r.table["term"])


def test_a_single_group_falls_back_to_model_errors_with_a_warning():
    # an académie with one département (Paris, La Réunion…) clustered by département
    d, _ = simulate(n=1500, seed=5)
    d["code_departement"] = "75"
    r = fit_success_factors(d, "inscrit", FACTORS, groups="code_departement")
    plain = fit_success_factors(d, "inscrit", FACTORS)
    assert r.cov_type == "model" and r.multilevel is None
    assert any("Un seul groupe" in w for w in r.warnings)
    pd.testing.assert_series_equal(r.table["std_error"], plain.table["std_error"])
