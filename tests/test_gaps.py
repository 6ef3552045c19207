"""Fast tests of gar_analysis.gaps against hand-computed answers and small simulations."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gar_analysis.errors import DataError
from gar_analysis.gaps import (bright_spots, comparison_note, exact_limits, funnel_curve, funnel_message,
                               funnel_table, observed_vs_expected, overdispersion, rank_intervals, select_scope)

Z95 = 1.959963984540054
Z998 = 3.090232306167813


def _binom_cdf(r: int, n: int, p: float) -> float:
    return sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(r + 1)) if r >= 0 else 0.0


def _hand_exact(n: int, p: float, prob: float) -> float:
    """Spiegelhalter's interpolated binomial quantile, computed by hand (no scipy)."""
    r = 0
    while _binom_cdf(r, n, p) < prob:
        r += 1
    f_r, f_rm1 = _binom_cdf(r, n, p), _binom_cdf(r - 1, n, p)
    return (r - (f_r - prob) / (f_r - f_rm1)) / n


def test_normal_limits_match_hand_computation():
    data = pd.DataFrame({"u": ["A", "B"], "y": [200, 230], "n": [400, 400]})
    t = funnel_table(data, "y", "n", "u", target=0.5, correction="none").set_index("unit")
    se = math.sqrt(0.5 * 0.5 / 400)
    assert t.loc["A", "lower_95"] == pytest.approx(0.5 - Z95 * se, abs=1e-9)
    assert t.loc["A", "upper_95"] == pytest.approx(0.5 + Z95 * se, abs=1e-9)
    assert t.loc["A", "upper_998"] == pytest.approx(0.5 + Z998 * se, abs=1e-9)
    assert t.loc["A", "expected"] == pytest.approx(200)
    # B: 0.575 is above 0.549 (95 %) but below 0.5773 (99.8 %)
    assert t.loc["B", "position_95"] == "au-dessus"
    assert t.loc["B", "position_998"] == "conforme"
    assert t.loc["A", "position_95"] == "conforme"
    assert {"unit", "numerator", "denominator", "rate", "expected", "lower_95", "upper_95", "lower_998",
            "upper_998", "position_95", "position_998"} <= set(t.reset_index().columns)


def test_exact_binomial_limits_for_small_units():
    data = pd.DataFrame({"u": ["petit", "grand"], "y": [1, 300], "n": [20, 1000]})
    t = funnel_table(data, "y", "n", "u", target=0.3, correction="none").set_index("unit")
    assert bool(t.loc["petit", "exact_limits"]) and not bool(t.loc["grand", "exact_limits"])
    for col, prob in (("lower_95", 0.025), ("upper_95", 0.975), ("lower_998", 0.001), ("upper_998", 0.999)):
        assert t.loc["petit", col] == pytest.approx(_hand_exact(20, 0.3, prob), abs=1e-9)
    # 1/20 = 0.05 lies under the exact lower 95 % limit (≈ 0.081) but above the 99.8 % one
    assert t.loc["petit", "position_95"] == "en-dessous"
    assert t.loc["petit", "position_998"] == "conforme"


def test_exact_poisson_limits_and_rates_on_exposure():
    # accès per pupil may exceed 1: allowed with kind="rate"
    data = pd.DataFrame({"u": ["a", "b", "c"], "acces": [3, 2500, 1100], "eleves": [2, 1000, 500]})
    t = funnel_table(data, "acces", "eleves", "u", kind="rate", target=2.0, correction="none").set_index("unit")
    # unit a: expected count 4 < 10 → exact Poisson limit, checked by hand
    mu = 4.0
    cdf = lambda r: sum(math.exp(-mu) * mu ** k / math.factorial(k) for k in range(r + 1)) if r >= 0 else 0.0
    r = 0
    while cdf(r) < 0.975:
        r += 1
    hand = (r - (cdf(r) - 0.975) / (cdf(r) - cdf(r - 1))) / 2
    assert t.loc["a", "upper_95"] == pytest.approx(hand, abs=1e-9)
    assert t.loc["b", "upper_95"] == pytest.approx(2 + Z95 * math.sqrt(2 / 1000), abs=1e-9)
    assert t.loc["b", "position_998"] == "au-dessus"   # 2.5 vs limit ≈ 2.138
    assert t.loc["c", "rate"] == pytest.approx(2.2)


def test_exact_limits_converge_to_normal():
    n = np.array([5000])
    assert exact_limits(0.4, n, 0.975)[0] == pytest.approx(0.4 + Z95 * math.sqrt(0.24 / 5000), abs=5e-4)


def test_school_rows_are_aggregated_by_unit():
    schools = pd.DataFrame({"acad": ["X", "X", "Y", "Y", "Y"], "inscrit": [1, 0, 1, 1, 0], "un": [1] * 5})
    t = funnel_table(schools, "inscrit", "un", "acad").set_index("unit")
    assert t.loc["X", "numerator"] == 1 and t.loc["X", "denominator"] == 2
    assert t.loc["Y", "rate"] == pytest.approx(2 / 3)
    assert t.attrs["target"] == pytest.approx(3 / 5)


def test_overdispersion_estimates_match_formula():
    z = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0, -2.0, 1.5, 0.2])
    s2 = np.full(10, 0.01)
    od = overdispersion(z, s2, winsor=0.1)
    lo, hi = np.quantile(z, [0.1, 0.9])
    c = 1.2815515655446004  # Φ⁻¹(0.9)
    k = 1 - 2 * (c * math.exp(-c * c / 2) / math.sqrt(2 * math.pi) + 0.1) + 2 * c * c * 0.1
    assert k == pytest.approx(0.6787, abs=1e-3)
    phi = np.mean(np.clip(z, lo, hi) ** 2) / k
    assert od["phi"] == pytest.approx(phi)
    w = 1 / s2
    assert od["tau2"] == pytest.approx(max(0, (10 * phi - 9) / (w.sum() - (w ** 2).sum() / w.sum())))


def _overdispersed_units(seed=0, k=60, tau=0.08):
    rng = np.random.default_rng(seed)
    n = rng.integers(200, 3000, k)
    p = np.clip(0.4 + rng.normal(0, tau, k), 0.01, 0.99)
    return pd.DataFrame({"u": [f"u{i:02d}" for i in range(k)], "y": rng.binomial(n, p), "n": n})


def test_overdispersion_correction_widens_limits_and_is_visible():
    data = _overdispersed_units()
    raw = funnel_table(data, "y", "n", "u", correction="none")
    auto = funnel_table(data, "y", "n", "u")
    mult = funnel_table(data, "y", "n", "u", correction="multiplicative")
    assert auto.attrs["correction"] == "additive" and (auto["correction"] == "additive").all()
    assert auto.attrs["overdispersion"]["overdispersed"]
    assert (auto["tau2"] > 0).all()
    assert (auto["upper_998"] - auto["lower_998"] > raw["upper_998"] - raw["lower_998"]).all()
    assert (mult["upper_95"] > raw["upper_95"]).all()
    assert (auto["position_998"] != "conforme").sum() < (raw["position_998"] != "conforme").sum()


def test_no_correction_when_units_vary_by_chance():
    data = _overdispersed_units(seed=3, tau=0.0)
    t = funnel_table(data, "y", "n", "u")
    assert t.attrs["correction"] == "aucune"
    assert (t["tau2"] == 0).all()


def test_shrinkage_pulls_small_units_more_and_lowers_error():
    rng = np.random.default_rng(5)
    k = 200
    n = rng.integers(20, 2000, k)
    truth = np.clip(0.3 + rng.normal(0, 0.05, k), 0.01, 0.99)
    data = pd.DataFrame({"u": [f"u{i:03d}" for i in range(k)], "y": rng.binomial(n, truth), "n": n})
    t = funnel_table(data, "y", "n", "u")
    order = np.argsort(data["u"].to_numpy())
    tr = truth[order]
    assert np.mean((t["shrunk_rate"] - tr) ** 2) < np.mean((t["rate"] - tr) ** 2)
    pull = (t["rate"] - t["shrunk_rate"]).abs() / (t["rate"] - t.attrs["target"]).abs()
    small, large = t["denominator"] < 200, t["denominator"] > 1500
    assert pull[small].mean() > pull[large].mean()


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"u": ["a"], "y": [1]}), "colonne absente"),
    (pd.DataFrame({"u": ["a", "b"], "y": [1, 2], "n": [0, 5]}), "dénominateur nul"),
    (pd.DataFrame({"u": ["a", "b"], "y": [1, 2], "n": [-3, 5]}), "dénominateur nul ou négatif"),
    (pd.DataFrame({"u": ["a", "b"], "y": [6, 2], "n": [5, 5]}), "numérateur supérieur"),
    (pd.DataFrame({"u": ["a", "b"], "y": [-1, 2], "n": [5, 5]}), "numérateur négatif"),
    (pd.DataFrame({"u": ["a", " "], "y": [1, 2], "n": [5, 5]}), "unité vide"),
    (pd.DataFrame({"u": ["a", None], "y": [1, 2], "n": [5, 5]}), "valeur manquante"),
    (pd.DataFrame({"u": ["a", "b"], "y": [1, np.nan], "n": [5, 5]}), "valeur manquante"),
    (pd.DataFrame({"u": pd.Series([], dtype=str), "y": [], "n": []}), "vide"),
])
def test_funnel_refuses_bad_input(frame, message):
    with pytest.raises(DataError, match=message):
        funnel_table(frame, "y", "n", "u", missing="raise")


def test_funnel_error_names_line_and_column():
    frame = pd.DataFrame({"u": ["a", "b"], "y": [1, 2], "n": [5, 0]}, index=[2, 3])
    with pytest.raises(DataError) as err:
        funnel_table(frame, "y", "n", "u")
    assert err.value.problems[0].line == 3 and err.value.problems[0].column == "n"


def test_funnel_curve_brackets_units():
    data = _overdispersed_units()
    t = funnel_table(data, "y", "n", "u", correction="none")
    c = funnel_curve(t)
    assert (c["upper_998"] >= c["upper_95"]).all() and (c["lower_998"] <= c["lower_95"]).all()
    width = (c["upper_95"] - c["lower_95"]).to_numpy()
    assert width[0] > width[-1]  # the funnel narrows as size grows


# --- observed vs expected --------------------------------------------------

def _confounded_schools(seed=11, n=6000):
    """Académie '01' serves low-IPS schools and has no effect of its own; '02' has a real +0.8 effect."""
    rng = np.random.default_rng(seed)
    acad = rng.choice([f"{i:02d}" for i in range(1, 21)], n)
    ips_10 = rng.normal(0, 1.0, n) + np.where(acad == "01", -2.0, 0.0)
    niveau = rng.choice(["ecole", "college", "lycee"], n, p=[0.6, 0.25, 0.15])
    eta = -0.2 + 0.8 * ips_10 + 0.4 * (niveau == "college") + np.where(acad == "02", 0.8, 0.0)
    inscrit = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    eleves = rng.integers(50, 800, n)
    acces = rng.poisson(eleves * np.exp(0.5 + 0.3 * ips_10 + np.where(acad == "02", 0.5, 0.0)))
    return pd.DataFrame({"uai": [f"{i:07d}X" for i in range(n)], "nom": "École", "code_academie": acad,
                         "ips_10": ips_10, "niveau": niveau, "rural": rng.random(n) < 0.3, "inscrit": inscrit,
                         "un": 1, "nombre_eleves": eleves, "acces": acces,
                         "referent": np.where(acad == "02", rng.random(n) < 0.9, rng.random(n) < 0.3),
                         "formation": rng.random(n) < 0.3, "convention": rng.random(n) < 0.5,
                         "actions_formation": rng.poisson(0.5, n), "projet_ent": "ENT commun"})


def test_oe_removes_confounding_by_composition():
    d = _confounded_schools()
    raw = funnel_table(d, "inscrit", "un", "code_academie").set_index("unit")
    oe = observed_vs_expected(d, "inscrit", ["ips_10", "niveau", "rural"], "code_academie").set_index("unit")
    assert raw.loc["01", "position_95"] == "en-dessous"           # raw rate is low …
    assert oe.loc["01", "ci_low"] < 1 < oe.loc["01", "ci_high"]    # … but not beyond its context
    assert oe.loc["01", "position"] == "conforme"
    assert oe.loc["02", "position_998"] == "au-dessus"             # the real effect is found
    assert oe["shrunk_ratio"].idxmax() == "02"
    # logistic model with intercept: totals of observed and expected agree
    assert oe["observed"].sum() == pytest.approx(oe["expected"].sum(), rel=1e-6)
    assert {"unit", "observed", "expected", "ratio", "ci_low", "ci_high", "shrunk_ratio"} <= set(oe.reset_index())


def test_oe_poisson_with_exposure():
    d = _confounded_schools()
    oe = observed_vs_expected(d, "acces", ["ips_10", "niveau"], "code_academie", family="poisson",
                              exposure="nombre_eleves").set_index("unit")
    assert oe.loc["02", "position"] == "au-dessus"
    assert oe.loc["01", "position"] == "conforme"
    assert oe.loc["02", "observed_rate"] == pytest.approx(
        d.loc[d.code_academie == "02", "acces"].sum() / d.loc[d.code_academie == "02", "nombre_eleves"].sum())
    assert oe.attrs["dispersion"] >= 1


@pytest.mark.parametrize("kwargs, message", [
    ({"outcome": "absente"}, "colonne absente"),
    ({"outcome": "acces"}, "hors domaine"),
    ({"covariates": ["code_academie"]}, "ne peut pas être aussi"),
    ({"family": "gamma"}, "famille inconnue"),
    ({"family": "poisson", "outcome": "acces", "exposure": "zero"}, "exposition nulle"),
    ({"covariates": ["constante"]}, "facteur constant"),
])
def test_oe_refuses_bad_input(kwargs, message):
    d = _confounded_schools(n=400).assign(zero=0, constante=1.0)
    args = {"outcome": "inscrit", "covariates": ["ips_10"], **kwargs}
    with pytest.raises(DataError, match=message):
        observed_vs_expected(d, args.pop("outcome"), args.pop("covariates"), "code_academie", **args)


def test_oe_refuses_missing_values_and_empty_units():
    d = _confounded_schools(n=400)
    d.loc[d.index[3], "ips_10"] = np.nan
    with pytest.raises(DataError, match="valeur manquante"):
        observed_vs_expected(d, "inscrit", ["ips_10"], "code_academie", missing="raise")
    d = _confounded_schools(n=400)
    d.loc[d.index[0], "code_academie"] = ""
    with pytest.raises(DataError, match="unité vide"):
        observed_vs_expected(d, "inscrit", ["ips_10"], "code_academie")


# --- bright spots, ranks, scope ----------------------------------------------

def test_bright_spots_above_first_with_crm_facts():
    d = _confounded_schools()
    d.loc[d.code_academie == "03", "actions_formation"] = 0
    oe = observed_vs_expected(d, "inscrit", ["ips_10", "niveau"], "code_academie")
    oe.loc[oe.unit == "03", ["position", "ci_high", "z"]] = ["en-dessous", 0.9, -3.0]
    spots = bright_spots(oe, d, "code_academie", level="95", indicator="inscription au GAR")
    assert spots["sens"].iloc[0] == "point fort" and spots["unit"].iloc[0] == "02"
    order = spots["sens"].map({"point fort": 0, "à accompagner": 1}).to_numpy()
    assert (np.diff(order) >= 0).all()
    top = spots.iloc[0]
    assert top["part_referent"] > 0.8 and "référent GAR" in top["texte"]
    assert "Pratique à documenter et partager" in top["texte"]
    low = spots.set_index("unit").loc["03"]
    assert "0 action(s)" in low["texte"] and "Piste d'accompagnement" in low["texte"]  # actions: shown


def test_rank_intervals_carry_uncertainty():
    data = _overdispersed_units()
    t = rank_intervals(funnel_table(data, "y", "n", "u"))
    assert (t["rang_bas"] <= t["rang"]).all() and (t["rang"] <= t["rang_haut"]).all()
    assert (t["rang_haut"] - t["rang_bas"]).mean() > 1


def test_select_scope_for_local_authorities():
    schools = pd.DataFrame({"code_departement": ["35", "35", "29"], "code_academie": ["14", "14", "14"],
                            "code_region": ["53"] * 3, "niveau": ["college", "lycee", "college"]})
    assert len(select_scope(schools, "departement", "35")) == 1
    assert len(select_scope(schools, "academie", "14")) == 3
    assert len(select_scope(schools, "national", "FR")) == 3


# --- ceiling, masking outliers, one rule for funnels and O/E (issue 14) -------------------------------------

def _ceiling_case() -> pd.DataFrame:
    """30 académies, national rate 2034/2041 (as in the sample): 25 at 100 %, five with a few misses."""
    sizes = [43, 63, 44, 115, 54, 56, 139, 115, 104, 78, 71, 64, 117, 50, 114, 130, 87, 46, 73, 25, 41, 110,
             120, 12, 23, 11, 18, 11, 6, 101]
    misses = {3: 1, 6: 2, 18: 2, 23: 1, 29: 1}
    y = [n - misses.get(i, 0) for i, n in enumerate(sizes)]
    assert sum(y) == 2034 and sum(sizes) == 2041
    return pd.DataFrame({"u": [f"{i:02d}" for i in range(30)], "y": y, "n": sizes})


def test_no_unit_at_100_percent_is_above_a_limit_of_100_percent():
    """Before: the interpolated exact limit sat just under 1 (shown 100,0) and 25 units were « au-dessus »."""
    t = funnel_table(_ceiling_case(), "y", "n", "u")
    full = t["rate"] == 1.0
    assert full.sum() == 25
    for level in ("95", "998"):
        assert (t.loc[full, f"position_{level}"] == "conforme").all()
        assert ((t[f"lower_{level}"] >= 0) & (t[f"upper_{level}"] <= 1)).all()
        assert (t.loc[full, f"upper_{level}"] == 1.0).all()
    assert t.attrs["ceiling"] and not t.attrs["floor"]
    message = funnel_message(t, "académies")
    assert message.startswith("25 académies sur 30 sont à 100 % : l'indicateur est au plafond")
    assert "aucune unité à 100 % n'est signalée au-dessus de la référence (99,7 %)" in message
    assert funnel_message(funnel_table(_overdispersed_units(), "y", "n", "u")) == ""


def test_floor_is_reported_too():
    data = pd.DataFrame({"u": list("abcdef"), "y": [0, 0, 0, 0, 2, 1], "n": [40, 30, 50, 20, 60, 45]})
    t = funnel_table(data, "y", "n", "u")
    assert t.attrs["floor"] and not t.attrs["ceiling"]
    assert funnel_message(t, "départements").startswith("4 départements sur 6 sont à 0 % : l'indicateur est au "
                                                        "plancher")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("correction", ["auto", "none", "additive", "multiplicative"])
def test_a_unit_is_flagged_only_strictly_outside_its_limits(seed, correction):
    rng = np.random.default_rng(seed)
    n = rng.integers(3, 400, 40)
    p = rng.choice([0.02, 0.5, 0.97, 0.995])
    data = pd.DataFrame({"u": [f"u{i:02d}" for i in range(40)], "y": rng.binomial(n, p), "n": n})
    if data["y"].sum() in (0, n.sum()):
        pytest.skip("référence à 0 ou 1 : refusée par construction")
    t = funnel_table(data, "y", "n", "u", correction=correction)
    for level in ("95", "998"):
        lo, hi, pos = t[f"lower_{level}"], t[f"upper_{level}"], t[f"position_{level}"]
        assert ((lo >= 0) & (hi <= 1) & (lo <= hi)).all()
        assert ((pos == "au-dessus") == (t["rate"] > hi)).all()
        assert ((pos == "en-dessous") == (t["rate"] < lo)).all()


def test_planted_outliers_are_found_with_the_published_default(load_benchmark):
    """Three large units 20 points higher: the moments τ² hides all of them, the winsorised τ² finds them."""
    r = load_benchmark("simulate_gaps").planted_outliers(20)
    assert r["planted"] == 60
    assert r["winsorised_found"] / r["planted"] >= 0.95, r
    assert r["moments_found"] / r["planted"] <= 0.1, r   # the masking the default avoids
    assert r["winsorised_false"] / r["others"] <= 0.01, r


def test_default_flags_at_most_one_percent_of_null_units(load_benchmark):
    """No special cause, with and without over-dispersion: ≤ 1 % of 4 500 units outside 99.8 % (45 units).

    The true rates (docs/quality.md §6) are ≈ 0.15 % and ≈ 0.65 %: a default that doubles the latter fails.
    """
    bench = load_benchmark("simulate_gaps")
    r = bench.null_default(150, designs=bench.NULL_DESIGNS[:2], moments=False)
    for label, res in r.items():
        assert res["units"] == 4500
        assert res["flag_998"] / res["units"] <= 0.01, (label, res)
    assert r["sans sur-dispersion"]["flag_998"] / 4500 <= 0.005
    assert 0.03 <= r["sans sur-dispersion"]["flag_95"] / 4500 <= 0.065  # exact limits are conservative


def test_oe_uses_the_funnel_rule_for_between_unit_overdispersion():
    """Académies with real spread: O/E adds the same winsorised τ² as the funnel, and says so."""
    rng = np.random.default_rng(8)
    d = _confounded_schools(seed=8, n=6000)
    effect = dict(zip([f"{i:02d}" for i in range(1, 21)], rng.normal(0, 0.3, 20)))
    mu = d["nombre_eleves"] * np.exp(0.5 + 0.3 * d["ips_10"] + d["code_academie"].map(effect))
    d["acces"] = rng.poisson(mu)
    oe = observed_vs_expected(d, "acces", ["ips_10", "niveau"], "code_academie", family="poisson",
                              exposure="nombre_eleves")
    od = oe.attrs["overdispersion"]
    assert od["overdispersed"] and od["tau2_estimator"] == "winsorised"
    assert oe.attrs["correction"] == "additive" and (oe["tau2"] == od["tau2_winsorised"]).all()
    raw = observed_vs_expected(d, "acces", ["ips_10", "niveau"], "code_academie", family="poisson",
                               exposure="nombre_eleves", correction="none")
    assert (raw["position_998"] != "conforme").sum() > (oe["position_998"] != "conforme").sum()
    for level, suffix in (("95", ""), ("998", "_998")):
        pos = oe[f"position{suffix}"]
        assert ((pos == "au-dessus") == (oe["ratio"] > oe[f"upper_{level}"])).all()
        assert ((pos == "au-dessus") == (oe[f"ci_low{suffix}"] > 1)).all()
        assert ((pos == "en-dessous") == (oe["ratio"] < oe[f"lower_{level}"])).all()


def test_comparison_note_names_the_units_on_which_the_analyses_differ():
    funnel = pd.DataFrame({"unit": ["a", "b", "c"], "position_998": ["au-dessus", "conforme", "conforme"]})
    oe = pd.DataFrame({"unit": ["a", "b", "c"], "ratio": [1.5, 0.5, 1.0],
                       "position": ["au-dessus", "en-dessous", "conforme"],
                       "position_998": ["au-dessus", "en-dessous", "conforme"]})
    note = comparison_note(funnel, oe, names={"b": "Bretagne"})
    assert note.startswith("Les deux analyses ne signalent pas les mêmes unités")
    assert "par le rapport observé / attendu seulement : Bretagne (en dessous)" in note
    assert "entonnoir seulement" not in note and note.count(".") == 1
    assert comparison_note(funnel, oe.assign(position_998=["au-dessus", "conforme", "conforme"])) == ""


def test_published_gap_tables_never_give_back_a_small_count_of_accès():
    """#16 item 4: « c / 8 / 37,5 % » gave 3; « Observé c, Attendu 5,39, rapport 0,56 » gave 3 again."""
    from gar_analysis.gaps import publishable_funnel, publishable_oe

    schools = pd.DataFrame({"uai": ["a", "b", "c"], "nom": ["A", "B", "C"], "code_academie": ["01", "02", "03"]})
    rate = pd.DataFrame({"unit": ["01", "02", "03"], "numerator": [3, 400, 0], "denominator": [8, 1000, 50],
                         "rate": [0.375, 0.4, 0.0], "shrunk_rate": [0.39, 0.4, 0.01], "lower_998": [0.1, 0.35, 0.1],
                         "upper_998": [0.7, 0.45, 0.7], "position_998": ["conforme"] * 3})
    rate.attrs["kind"] = "rate"
    out = publishable_funnel(rate, "code_academie", schools, 5)
    first = out.iloc[0]
    assert first["Numérateur (nombre)"] == "c" and first["Valeur"] == "c" and first["Valeur rétrécie"] == "c"
    assert out.iloc[2]["Numérateur (nombre)"] == 0  # zero accès: shown
    share = rate.assign(numerator=[3, 400, 0])
    share.attrs["kind"] = "proportion"  # 3 schools of 8: an institutional fact, shown
    assert publishable_funnel(share, "code_academie", schools, 5).iloc[0]["Numérateur (nombre)"] == 3
    oe = pd.DataFrame({"unit": ["01", "02"], "n_ecoles": [8, 40], "observed": [3, 300], "expected": [5.39, 280.0],
                       "ratio": [3 / 5.39, 300 / 280], "ci_low": [0.2, 0.9], "ci_high": [1.5, 1.2],
                       "shrunk_ratio": [0.8, 1.05], "shrunk_low": [0.4, 0.9], "shrunk_high": [1.3, 1.2],
                       "position": ["conforme"] * 2, "position_998": ["conforme"] * 2})
    oe.attrs["family"] = "poisson"
    pub = publishable_oe(oe, "code_academie", schools, 5).set_index("Nom")
    row = pub.loc["Académie du Nord"] if "Académie du Nord" in pub.index else pub.iloc[[r for r in range(len(pub))
                                                                                        if pub.iloc[r]["Établissements (nombre)"] == 8][0]]
    for col in ("Observé (nombre)", "Rapport observé / attendu", "IC 95 % bas", "IC 95 % haut", "Rapport rétréci"):
        assert row[col] == "c", col
    big = pub[pub["Établissements (nombre)"] == 40].iloc[0]
    assert big["Observé (nombre)"] == 300
