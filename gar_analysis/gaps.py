"""Fair territorial comparisons: funnel plots, observed vs expected, shrinkage, bright spots.

A raw league table is unfair twice: small units look extreme by chance, and units
serving disadvantaged or rural populations look worse for reasons outside their
control. This module handles both:

* :func:`funnel_table` — each unit's rate against its size with 95 % and 99.8 %
  control limits around a reference value (normal approximation, exact binomial
  or Poisson limits for small units), Spiegelhalter's (2005) over-dispersion
  correction when units vary more than chance allows, and an empirical-Bayes
  shrunken rate beside the raw one;
* :func:`observed_vs_expected` — a composition model (IPS, size, rurality, level,
  sector, priority education) fitted on every school; observed and expected
  totals per unit, O/E with its interval, shrunken O/E;
* :func:`bright_spots` — units significantly above expectation first, then below,
  with what the CRM knows about them and a constructive French sentence;
* :func:`rank_intervals` — ranks always come with their intervals.

``data`` is a table with one row per school (or per unit): rows are summed by
``unit`` before the comparison, so both shapes are accepted; without a
denominator column, :func:`funnel_table` counts the rows. Rows with a missing
value are dropped and reported (``missing="drop"``) or refused (``"raise"``).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from . import config
from .formatting import fmt_number
from .stats import dersimonian_laird_tau2
from .errors import DataError, Problem
from .formatting import fmt_sentence as fmt_fr
from .models import _inverse_link, prepare_design
from .validation import (MissingValuesWarning, _problems_for, check_columns, check_dataframe, drop_missing,
                         numeric_column)

Z95 = float(stats.norm.ppf(0.975))
Z998 = float(stats.norm.ppf(0.999))
POSITIONS = ("au-dessus", "conforme", "en-dessous")
CORRECTIONS = ("auto", "none", "multiplicative", "additive")
#: Below this expected count (n·p0 or n·(1−p0), or p0·exposure), limits are exact.
EXACT_BELOW = 10.0
#: Share of units at 100 % (or 0) from which an indicator is said to be at its ceiling (floor).
BOUND_SHARE = 0.5

CAVEAT_GAPS = ("Un écart à l'attendu signale une situation à comprendre, pas un jugement : il peut venir du "
               "contexte non mesuré, de la qualité des données ou d'une pratique à partager.")


# ---------------------------------------------------------------------------
# exact limits
# ---------------------------------------------------------------------------

def _interp_quantile(cdf_at, ppf, prob: float, n) -> np.ndarray:
    """Interpolated discrete quantile (Spiegelhalter 2005, appendix A.1.1), as a count."""
    r = np.asarray(ppf(prob), float)
    f_r = cdf_at(r)
    f_rm1 = cdf_at(r - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(f_r > f_rm1, (f_r - prob) / (f_r - f_rm1), 0.0)
    return r - alpha


def exact_limits(p0: float, n, prob: float, kind: str = "proportion") -> np.ndarray:
    """Exact control limit(s) at probability ``prob`` around ``p0`` for sizes ``n``.

    Parameters
    ----------
    p0 : float
        Reference proportion (or rate per unit of exposure).
    n : array-like
        Denominators (trials, or exposure for rates).
    prob : float
        Cumulative probability of the limit (0.025 for the lower 95 % limit…).
    kind : {"proportion", "rate"}
        Binomial(n, p0) or Poisson(p0·n) distribution.

    Returns
    -------
    numpy.ndarray
        Limits on the rate scale (count quantile, interpolated, divided by ``n``).
    """
    n = np.asarray(n, float)
    if kind == "proportion":
        dist = stats.binom(np.round(n).astype(int), p0)
    else:
        dist = stats.poisson(p0 * n)
    count = _interp_quantile(dist.cdf, dist.ppf, prob, n)
    if kind == "proportion":
        # at the largest attainable count the interpolation would put the limit just below n, so that
        # every unit at 100 % lay "above" a limit shown as 100 %: nothing can exceed n, the limit is n
        count = np.where(np.asarray(dist.ppf(prob), float) >= np.round(n), np.round(n), count)
    return count / n


def _unit_interval(y, n, kind: str, level: float = 0.95):
    """Exact interval of each unit's own rate (Clopper-Pearson, or Garwood for Poisson)."""
    a = (1 - level) / 2
    y = np.asarray(y, float)
    n = np.asarray(n, float)
    if kind == "proportion":
        lo = np.where(y > 0, stats.beta.ppf(a, y, n - y + 1), 0.0)
        hi = np.where(y < n, stats.beta.ppf(1 - a, y + 1, n - y), 1.0)
        return lo, hi
    lo = np.where(y > 0, stats.chi2.ppf(a, 2 * y) / 2, 0.0) / n
    hi = stats.chi2.ppf(1 - a, 2 * y + 2) / 2 / n
    return lo, hi


def _position(value, low, high) -> np.ndarray:
    value = np.asarray(value, float)
    return np.where(value > high, "au-dessus", np.where(value < low, "en-dessous", "conforme"))


# ---------------------------------------------------------------------------
# over-dispersion (Spiegelhalter 2005)
# ---------------------------------------------------------------------------

def winsor_consistency(winsor: float) -> float:
    """Mean square of a standard normal winsorised at ``winsor`` in each tail (0.679 at 10 %)."""
    if winsor <= 0:
        return 1.0
    c = float(stats.norm.ppf(1 - winsor))
    return 1 - 2 * (c * float(stats.norm.pdf(c)) + winsor) + 2 * c * c * winsor


def overdispersion(z: np.ndarray, s2: np.ndarray, winsor: float = 0.1) -> dict:
    """Estimate over-dispersion from z-scores (Spiegelhalter 2005).

    Parameters
    ----------
    z : array
        Standardised deviations of the units from the reference.
    s2 : array
        Within-unit variances of the indicator (rate scale).
    winsor : float
        Share winsorised in each tail (10 % by default). The mean square of the
        winsorised z-scores is divided by its value under N(0, 1)
        (:func:`winsor_consistency`) so that phi is consistent.

    Returns
    -------
    dict
        ``phi`` (multiplicative factor), ``tau2`` (additive between-unit variance),
        ``statistic`` (I·phi), ``df`` (I − 1), ``p_value`` (χ² test of phi = 1),
        ``overdispersed`` (bool: p < 0.05 and phi > 1), ``n_units``.
    """
    z = np.asarray(z, float)
    s2 = np.asarray(s2, float)
    ok = np.isfinite(z) & (s2 > 0)
    z, s2 = z[ok], s2[ok]
    i = len(z)
    if i < 3:
        return {"phi": 1.0, "tau2": 0.0, "statistic": np.nan, "df": max(i - 1, 0), "p_value": np.nan,
                "overdispersed": False, "n_units": i}
    lo, hi = np.quantile(z, [winsor, 1 - winsor])
    zw = np.clip(z, lo, hi)
    # winsorising shrinks the mean square of N(0, 1) z-scores to k < 1 (0.68 at 10 %): divide by k so that
    # phi estimates the variance ratio itself (else tau2 is underestimated and the corrected limits too narrow)
    phi = float(np.mean(zw ** 2)) / winsor_consistency(winsor)
    stat = i * phi
    p = float(stats.chi2.sf(stat, i - 1))
    w = 1.0 / s2
    denom = w.sum() - (w ** 2).sum() / w.sum()
    tau2 = max(0.0, (stat - (i - 1)) / denom) if denom > 0 else 0.0
    return {"phi": phi, "tau2": float(tau2), "statistic": float(stat), "df": i - 1, "p_value": p,
            "overdispersed": bool(p < 0.05 and phi > 1), "n_units": i}


# ---------------------------------------------------------------------------
# funnel table
# ---------------------------------------------------------------------------

def _report_dropped(report: dict | None) -> None:
    """Warn (French) that rows were left out for missing values."""
    if report:
        warnings.warn(report["text"], MissingValuesWarning, stacklevel=3)


def _aggregate(data: pd.DataFrame, numerator: str, denominator: str | None, unit: str, kind: str,
               source: str, missing: str = "raise") -> tuple[pd.DataFrame, dict | None]:
    """Sum numerator and denominator (or count rows when ``denominator`` is None) by unit."""
    check_dataframe(data, source)
    if not isinstance(unit, str) or not unit:
        raise DataError.single(source, "le nom de la colonne d'unité (« unit ») est attendu.")
    cols = [c for c in dict.fromkeys([unit, numerator, denominator]) if c is not None]
    check_columns(data, cols, source)
    data, dropped = drop_missing(data, cols, missing, unit=unit, source=source)
    y = numeric_column(data, numerator, source)
    n = numeric_column(data, denominator, source) if denominator is not None else pd.Series(1.0, index=data.index)
    problems: list[Problem] = []
    if (y < 0).any():
        problems += _problems_for(y < 0, numerator, "numérateur négatif : un comptage positif ou nul est attendu.",
                                  source)
    if (n <= 0).any():
        problems += _problems_for(n <= 0, denominator, "dénominateur nul ou négatif : il doit être strictement "
                                                       "positif (retirez les unités sans effectif).", source)
    if kind == "proportion" and (y > n).any():
        problems += _problems_for(y > n, numerator, f"numérateur supérieur au dénominateur « {denominator} » : "
                                                    "une proportion ne peut dépasser 1 (pour un taux par élève, "
                                                    "utilisez kind='rate').", source)
    if problems:
        raise DataError(problems)
    units = data[unit].astype(str).str.strip()
    if (units == "").any():
        raise DataError(_problems_for(units == "", unit, "unité vide : chaque ligne doit être rattachée à une unité.",
                                      source))
    agg = pd.DataFrame({"unit": units, "y": y, "n": n, "k": 1}).groupby("unit", sort=True).sum()
    if (agg["n"] <= 0).any():
        raise DataError.single(source, "une unité a un dénominateur total nul.", column=denominator)
    return agg, dropped


def funnel_table(data: pd.DataFrame, numerator: str, denominator: str | None = None, unit: str | None = None, *,
                 kind: str = "proportion", target: float | None = None, correction: str = "auto",
                 winsor: float = 0.1, exact_below: float = EXACT_BELOW, tau2_estimator: str = "winsorised",
                 missing: str = "drop") -> pd.DataFrame:
    """Compare units' rates with funnel-plot control limits.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit, or per school (rows are summed by ``unit``).
    numerator : str
        Count column (a 0/1 or boolean column on school rows: e.g. ``inscrit``).
    denominator : str, optional
        Count column of the denominator: e.g. schools (proportion), or pupils
        (rate on an exposure, ``kind="rate"``). When None, each row counts for
        one: on school-level rows, the share of schools.
    unit : str
        Unit column (e.g. ``code_academie``, ``code_departement``, ``uai``).
    kind : {"proportion", "rate"}
        Binomial proportion (numerator ≤ denominator) or Poisson rate per unit
        of exposure (numerator may exceed the denominator).
    target : float, optional
        Reference value p0 (default: pooled rate Σ numerator / Σ denominator).
        Pass the national rate when comparing the units of one territory.
    correction : {"auto", "none", "multiplicative", "additive"}
        Over-dispersion correction (Spiegelhalter 2005). ``auto`` applies the
        additive random-effects limits when the χ² test of over-dispersion on
        winsorised z-scores is significant (p < 0.05), and none otherwise.
    winsor : float
        Share of z-scores winsorised in each tail to estimate over-dispersion.
    tau2_estimator : {"winsorised", "moments"}
        Between-unit variance of the additive limits: Spiegelhalter's (2005)
        published formula on the winsorised φ (default: a few extreme units cannot
        inflate it until they mask themselves) or the method of moments on the raw
        z-scores (DerSimonian-Laird: nominal under pure over-dispersion, but a few
        large outliers widen the limits until none of them is flagged; figures in
        ``docs/quality.md``). Over-dispersion is always *detected* on winsorised z.
    exact_below : float
        Uncorrected limits are exact (interpolated binomial or Poisson quantiles)
        when the expected count n·p0 or n·(1 − p0) is below this.
    missing : {"drop", "raise"}
        Rows with a missing unit, numerator or denominator: left out with a
        :class:`~gar_analysis.validation.MissingValuesWarning` and
        ``attrs["missing"]`` (count, rows lost per unit), as statsmodels'
        formula interface does; or listed in a DataError (``"raise"``).

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``unit, numerator, denominator, n_lignes, rate,
        rate_ci_low, rate_ci_high, expected, z, z_adjusted, lower_95, upper_95,
        lower_998, upper_998, position_95, position_998, exact_limits, correction,
        phi, tau2, shrunk_rate, shrunk_low, shrunk_high``. ``attrs["overdispersion"]``
        holds the test; ``attrs["target"]``, ``attrs["kind"]``, ``attrs["correction"]``,
        ``attrs["missing"]`` (None when no row was left out);
        ``attrs["ceiling"]`` / ``attrs["floor"]`` are True when at least
        :data:`BOUND_SHARE` of the units sit at 100 % / 0 % (a funnel cannot tell
        them apart: :func:`funnel_message` says so). A unit is flagged only when its
        value lies strictly outside its limits, which never leave [0, 1] for a proportion.

    Raises
    ------
    DataError
        Unknown/missing column, missing values (``missing="raise"``), negative
        numerator, zero or negative denominator, numerator above denominator
        (proportions), empty unit.

    Examples
    --------
    >>> schools = pd.DataFrame({"code_academie": ["A"] * 40 + ["B"] * 60,
    ...                         "inscrit": [1] * 30 + [0] * 10 + [1] * 30 + [0] * 30})
    >>> t = funnel_table(schools, "inscrit", unit="code_academie")
    >>> t["unit"].tolist(), t["denominator"].tolist(), t["rate"].tolist()
    (['A', 'B'], [40.0, 60.0], [0.75, 0.5])
    """
    source = "données (funnel_table)"
    if kind not in ("proportion", "rate"):
        raise DataError.single(source, f"type d'indicateur inconnu : {kind!r} (« proportion » ou « rate »).")
    if correction not in CORRECTIONS:
        raise DataError.single(source, f"correction inconnue : {correction!r} ({', '.join(CORRECTIONS)}).")
    agg, dropped = _aggregate(data, numerator, denominator, unit, kind, source, missing)
    _report_dropped(dropped)
    y = agg["y"].to_numpy(float)
    n = agg["n"].to_numpy(float)
    p0 = float(y.sum() / n.sum()) if target is None else float(target)
    if kind == "proportion" and not 0 < p0 < 1:
        raise DataError.single(source, f"valeur de référence {p0} hors de ]0 ; 1[ : toutes les unités sont à 0 % "
                                       "ou à 100 %, la comparaison n'a pas de sens.")
    if kind == "rate" and not p0 > 0:
        raise DataError.single(source, "valeur de référence nulle : aucun événement dans les données.")
    rate = y / n
    s2 = p0 * (1 - p0) / n if kind == "proportion" else p0 / n
    s = np.sqrt(s2)
    z = (rate - p0) / s
    if tau2_estimator not in ("moments", "winsorised"):
        raise DataError.single(source, f"estimateur de τ² inconnu : {tau2_estimator!r} (moments ou winsorised).")
    od = overdispersion(z, s2, winsor)
    od["tau2_winsorised"] = od["tau2"]
    od["tau2_moments"] = dersimonian_laird_tau2(rate, s2, p0)
    od["tau2"] = od["tau2_moments"] if tau2_estimator == "moments" else od["tau2_winsorised"]
    od["tau2_estimator"] = tau2_estimator
    method = correction
    if correction == "auto":
        method = "additive" if od["overdispersed"] else "none"
    out = pd.DataFrame({"unit": agg.index.to_numpy(), "numerator": y, "denominator": n,
                        "n_lignes": agg["k"].to_numpy(), "rate": rate})
    for name, col in ((unit, "unit"), (numerator, "numerator"), (denominator, "denominator")):
        if name is not None and name not in out.columns:
            out[name] = out[col]
    out["rate_ci_low"], out["rate_ci_high"] = _unit_interval(y, n, kind)
    out["expected"] = p0 * n
    out["z"] = z
    upper_cap = 1.0 if kind == "proportion" else np.inf
    exact = np.zeros(len(n), bool)
    if method == "none":
        sd = s
        small = (n * p0 < exact_below) | ((kind == "proportion") & (n * (1 - p0) < exact_below))
        exact = small
    elif method == "multiplicative":
        sd = s * np.sqrt(max(od["phi"], 1.0))
    else:
        sd = np.sqrt(s2 + od["tau2"])
    out["z_adjusted"] = (rate - p0) / sd
    for label, zq, a in (("95", Z95, 0.025), ("998", Z998, 0.001)):
        lo = p0 - zq * sd
        hi = p0 + zq * sd
        if exact.any():
            lo = np.where(exact, exact_limits(p0, n, a, kind), lo)
            hi = np.where(exact, exact_limits(p0, n, 1 - a, kind), hi)
        out[f"lower_{label}"] = np.clip(lo, 0.0, upper_cap)
        out[f"upper_{label}"] = np.clip(hi, 0.0, upper_cap)
        out[f"position_{label}"] = _position(rate, out[f"lower_{label}"], out[f"upper_{label}"])
    out["exact_limits"] = exact
    out["correction"] = {"none": "aucune", "multiplicative": "multiplicative", "additive": "additive"}[method]
    out["phi"] = od["phi"]
    out["tau2"] = od["tau2"] if method == "additive" else 0.0
    # empirical-Bayes shrinkage (DerSimonian-Laird τ², unwinsorised)
    tau2 = dersimonian_laird_tau2(rate, s2, p0)
    b = tau2 / (tau2 + s2)
    out["shrunk_rate"] = p0 + b * (rate - p0)
    post_sd = np.sqrt(b * s2)
    out["shrunk_low"] = np.clip(out["shrunk_rate"] - Z95 * post_sd, 0, upper_cap)
    out["shrunk_high"] = np.clip(out["shrunk_rate"] + Z95 * post_sd, 0, upper_cap)
    at_top = (y >= n) if kind == "proportion" else np.zeros(len(n), bool)
    at_bottom = y <= 0
    out.attrs.update({"target": p0, "kind": kind, "correction": out["correction"].iloc[0],
                      "overdispersion": od, "shrinkage_tau2": tau2, "numerator": numerator,
                      "denominator": denominator, "unit": unit, "avertissement": CAVEAT_GAPS,
                      "ceiling": bool(at_top.mean() >= BOUND_SHARE),
                      "floor": bool(at_bottom.mean() >= BOUND_SHARE), "missing": dropped})
    return out


def funnel_message(table: pd.DataFrame, unit_label: str = "unités") -> str:
    """French sentence for a funnel whose units mostly sit at 100 % (or 0), else ``""``.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`funnel_table`, possibly restricted to a territory's units
        (the units at the bound are counted on its rows).
    unit_label : str
        Plural French noun of the units (« académies », « départements »…).

    Returns
    -------
    str
        E.g. « 25 académies sur 30 sont à 100 % : l'indicateur est au plafond … ».
    """
    if not len(table):
        return ""
    rate = table["rate"].to_numpy(float)
    total = len(rate)
    pct = table.attrs.get("kind") == "proportion"
    target = table.attrs.get("target", np.nan)
    ref = f"{fmt_fr(100 * target, 1)} %" if pct else fmt_fr(target, 2)
    for k, shown, where, word in ((int(np.sum(rate >= 1.0)) if pct else 0, "100 %", "au plafond", "au-dessus"),
                                  (int(np.sum(rate <= 0.0)), "0 %" if pct else "0", "au plancher", "en dessous")):
        if k and k / total >= BOUND_SHARE:
            at = rate >= 1.0 if word == "au-dessus" else rate <= 0.0
            flagged = int((table.loc[at, "position_998"] != "conforme").sum()) if "position_998" in table else 0
            tail = (f" ; aucune unité à {shown} n'est signalée {word} de la référence ({ref})" if not flagged else
                    f" ; {fmt_fr(flagged, 0)} unité(s) à {shown} reste(nt) signalée(s) {word} de la référence "
                    f"({ref}) car leur effectif rend ce résultat improbable par le seul hasard")
            return (f"{fmt_fr(k, 0)} {unit_label} sur {fmt_fr(total, 0)} sont à {shown} : l'indicateur est {where} "
                    f"et ne permet pas de les distinguer{tail}.")
    return ""


def funnel_curve(table: pd.DataFrame, n_points: int = 200) -> pd.DataFrame:
    """Control limits on a grid of sizes, for drawing the funnel.

    Returns
    -------
    pandas.DataFrame
        ``denominator, lower_95, upper_95, lower_998, upper_998`` over a log grid.
    """
    p0 = table.attrs["target"]
    kind = table.attrs["kind"]
    den = table["denominator"]
    grid = np.unique(np.geomspace(max(den.min() * 0.8, 1e-9), den.max() * 1.2, n_points))
    if kind == "proportion":
        grid = np.unique(np.maximum(np.round(grid), 1))
    s2 = p0 * (1 - p0) / grid if kind == "proportion" else p0 / grid
    od = table.attrs["overdispersion"]
    corr = table.attrs["correction"]
    cap = 1.0 if kind == "proportion" else np.inf
    if corr == "multiplicative":
        sd = np.sqrt(s2 * max(od["phi"], 1.0))
    elif corr == "additive":
        sd = np.sqrt(s2 + od["tau2"])
    else:
        sd = np.sqrt(s2)
    out = pd.DataFrame({"denominator": grid})
    exact = np.zeros(len(grid), bool)
    if corr == "aucune":
        exact = (grid * p0 < EXACT_BELOW) | ((kind == "proportion") & (grid * (1 - p0) < EXACT_BELOW))
    for label, zq, a in (("95", Z95, 0.025), ("998", Z998, 0.001)):
        lo, hi = p0 - zq * sd, p0 + zq * sd
        if exact.any():
            lo = np.where(exact, exact_limits(p0, grid, a, kind), lo)
            hi = np.where(exact, exact_limits(p0, grid, 1 - a, kind), hi)
        out[f"lower_{label}"] = np.clip(lo, 0, cap)
        out[f"upper_{label}"] = np.clip(hi, 0, cap)
    return out


# ---------------------------------------------------------------------------
# observed vs expected
# ---------------------------------------------------------------------------

def observed_vs_expected(data: pd.DataFrame, outcome: str, covariates: list[str], unit: str, *,
                         family: str = "binomial", exposure: str | None = None,
                         references: dict | None = None, correction: str = "auto", winsor: float = 0.1,
                         tau2_estimator: str = "winsorised", missing: str = "drop") -> pd.DataFrame:
    """Observed vs expected per unit, given the composition of its schools.

    A GLM of the outcome on the schools' composition (``covariates``) is fitted
    on every row; the expected value of a unit is the sum of its schools'
    predictions. The unit is judged on what it does beyond its context
    (the principle of the ministry's IVAL/IVAC value-added indicators).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per school.
    outcome : str
        0/1 outcome (``binomial``) or count (``poisson``, with ``exposure``).
    covariates : list of str
        Composition columns (booleans, numbers, strings for categories).
    unit : str
        Unit column (must not be a covariate).
    family : {"binomial", "poisson"}
        Logistic model, or log-linear count model with ``exposure`` as offset;
        the Poisson variance is scaled by the Pearson dispersion (quasi-Poisson).
    exposure : str, optional
        Exposure column for counts (e.g. ``nombre_eleves``).
    correction, winsor, tau2_estimator
        Over-dispersion *between units*, handled exactly as in :func:`funnel_table`
        (same test on winsorised z-scores, same additive τ²), so that the funnel and
        the O/E table of one indicator follow the same detection rule: with
        ``"auto"``, when the units' O/E vary more than the model variance allows,
        τ² is added to each unit's variance (``"none"``, ``"additive"`` to force).
    missing : {"drop", "raise"}
        Schools with a missing unit, outcome, covariate or exposure: left out
        with a :class:`~gar_analysis.validation.MissingValuesWarning` and
        ``attrs["missing"]`` (count, schools lost per unit), as statsmodels'
        formula interface does; or listed in a DataError (``"raise"``).

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``unit, n_ecoles, observed, expected, ratio, std_error,
        ci_low, ci_high, ci_low_998, ci_high_998, lower_95, upper_95, lower_998,
        upper_998, z, z_adjusted, p_value, position, position_998, correction,
        tau2, shrunk_ratio, shrunk_low, shrunk_high`` (+ ``observed_rate,
        expected_rate`` per school or per unit of exposure). Intervals:
        O/E ± z·√(V/E² + τ²), V the model variance of O (quasi-Poisson for counts),
        τ² = 0 without over-dispersion; limits 1 ± z·√(V/E² + τ²); a unit is flagged
        when its interval excludes 1, i.e. its ratio lies strictly outside its
        limits. ``attrs["coefficients"]`` holds the composition model,
        ``attrs["overdispersion"]`` the between-unit test.

    Raises
    ------
    DataError
        Unknown or missing column, missing values (``missing="raise"``), outcome out of range,
        non-positive exposure, empty units, unsupported family.
    """
    source = "données (observed_vs_expected)"
    if family not in ("binomial", "poisson"):
        raise DataError.single(source, f"famille inconnue : {family!r} (« binomial » ou « poisson »).")
    if correction not in ("auto", "none", "additive"):
        raise DataError.single(source, f"correction inconnue : {correction!r} (auto, none, additive).")
    if tau2_estimator not in ("moments", "winsorised"):
        raise DataError.single(source, f"estimateur de τ² inconnu : {tau2_estimator!r} (moments ou winsorised).")
    if family == "binomial" and exposure is not None:
        raise DataError.single(source, "l'exposition ne s'utilise qu'avec la famille « poisson ».", column=exposure)
    check_dataframe(data, source)
    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(covariates)
    if unit in covariates:
        raise DataError.single(source, f"l'unité « {unit} » ne peut pas être aussi une variable de composition.",
                               column=unit)
    check_columns(data, [unit, outcome, *covariates] + ([exposure] if exposure else []), source)
    data, dropped = drop_missing(data, [unit, outcome, *covariates, exposure], missing, unit=unit, source=source)
    _report_dropped(dropped)
    units = data[unit].astype(str).str.strip()
    if (units == "").any():
        raise DataError(_problems_for(units == "", unit, "unité vide : chaque établissement doit être rattaché "
                                                         "à une unité.", source))
    d = prepare_design(data, outcome, covariates, family=family, exposure=exposure, source=source)
    import statsmodels.api as sm
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if family == "binomial":
                res = sm.GLM(d.y, d.X, family=sm.families.Binomial()).fit()
                disp = 1.0
            else:
                res = sm.GLM(d.y, d.X, family=sm.families.Poisson(), offset=d.offset).fit()
                disp = max(1.0, float(res.pearson_chi2 / res.df_resid))
        except (np.linalg.LinAlgError, ValueError, OverflowError) as exc:
            raise DataError.single(source, f"le modèle de composition n'a pas pu être estimé ({type(exc).__name__}) : "
                                           "vérifiez les variables de composition.") from None
    eta = d.X.to_numpy() @ res.params.to_numpy() + (d.offset if d.offset is not None else 0.0)
    mu = _inverse_link(family, eta)
    v = mu * (1 - mu) if family == "binomial" else disp * mu
    frame = pd.DataFrame({"unit": units.to_numpy(), "o": d.y, "e": mu, "v": v, "k": 1})
    if exposure is not None:
        frame["x"] = numeric_column(data, exposure, source).to_numpy()
    agg = frame.groupby("unit", sort=True).sum()
    o, e, var = agg["o"].to_numpy(), agg["e"].to_numpy(), agg["v"].to_numpy()
    out = pd.DataFrame({"unit": agg.index.to_numpy(), "n_ecoles": agg["k"].to_numpy(), "observed": o,
                        "expected": e})
    if unit not in out.columns:
        out[unit] = out["unit"]
    out["ratio"] = o / e
    se = np.sqrt(var) / e
    s2 = se ** 2
    out["std_error"] = se
    out["z"] = (out["ratio"] - 1) / se
    # between-unit over-dispersion: the same test and the same additive τ² as the funnel (Spiegelhalter 2005)
    od = overdispersion(out["z"].to_numpy(), s2, winsor)
    od["tau2_winsorised"] = od["tau2"]
    od["tau2_moments"] = dersimonian_laird_tau2(out["ratio"].to_numpy(), s2, 1.0)
    od["tau2"] = od["tau2_moments"] if tau2_estimator == "moments" else od["tau2_winsorised"]
    od["tau2_estimator"] = tau2_estimator
    method = ("additive" if od["overdispersed"] else "none") if correction == "auto" else correction
    tau2_used = od["tau2"] if method == "additive" else 0.0
    sd = np.sqrt(s2 + tau2_used)
    out["z_adjusted"] = (out["ratio"] - 1) / sd
    out["p_value"] = 2 * stats.norm.sf(np.abs(out["z_adjusted"]))
    for suffix, zq in (("", Z95), ("_998", Z998)):
        out[f"ci_low{suffix}"] = np.clip(out["ratio"] - zq * sd, 0, None)
        out[f"ci_high{suffix}"] = out["ratio"] + zq * sd
        label = suffix[1:] or "95"
        out[f"lower_{label}"] = np.clip(1 - zq * sd, 0, None)
        out[f"upper_{label}"] = 1 + zq * sd
        out[f"position{suffix}"] = _position(out["ratio"], out[f"lower_{label}"], out[f"upper_{label}"])
    out["correction"] = "additive" if method == "additive" else "aucune"
    out["tau2"] = tau2_used
    tau2 = dersimonian_laird_tau2(out["ratio"].to_numpy(), s2, 1.0)
    b = tau2 / (tau2 + s2)
    out["shrunk_ratio"] = 1 + b * (out["ratio"] - 1)
    post = np.sqrt(b * s2)
    out["shrunk_low"] = np.clip(out["shrunk_ratio"] - Z95 * post, 0, None)
    out["shrunk_high"] = out["shrunk_ratio"] + Z95 * post
    den = agg["x"].to_numpy() if exposure is not None else agg["k"].to_numpy()
    out["observed_rate"] = o / den
    out["expected_rate"] = e / den
    out.attrs.update({
        "family": family, "outcome": outcome, "covariates": covariates, "exposure": exposure, "unit": unit,
        "dispersion": disp, "shrinkage_tau2": tau2, "overdispersion": od, "correction": out["correction"].iloc[0],
        "coefficients": pd.DataFrame({"term": res.params.index, "estimate": res.params.to_numpy(),
                                      "std_error": res.bse.to_numpy()}),
        "interval": "O/E ± z·√(V/E² + τ²), V = variance du modèle de O, τ² = sur-dispersion entre unités",
        "avertissement": CAVEAT_GAPS, "missing": dropped})
    return out


def flagged_units(table: pd.DataFrame, level: str = "998") -> dict:
    """Units flagged by a funnel or an O/E table at ``level`` ("95" or "998"): {unit: position}."""
    col = f"position_{level}" if f"position_{level}" in table.columns else "position"
    if level == "95" and "ratio" in table.columns:
        col = "position"
    t = table[table[col] != "conforme"]
    return dict(zip(t["unit"].astype(str), t[col]))


def comparison_note(funnel: pd.DataFrame, oe: pd.DataFrame, *, level: str = "998", names=None) -> str:
    """One French sentence saying why a funnel and an O/E table flag different units, else ``""``.

    Both tables treat between-unit over-dispersion the same way (additive τ²,
    Spiegelhalter 2005); what remains is the question each asks: the funnel compares a
    unit with the reference value, O/E with what its schools' composition predicts.

    Parameters
    ----------
    funnel, oe : pandas.DataFrame
        Outputs of :func:`funnel_table` and :func:`observed_vs_expected` for the same
        indicator and the same units.
    level : {"998", "95"}
        The level at which the page shows both positions.
    names : mapping or callable, optional
        Readable name of a unit code (default: the code).

    Returns
    -------
    str
        ``""`` when both flag the same units in the same direction.
    """
    a, b = flagged_units(funnel, level), flagged_units(oe, level)
    if a == b:
        return ""
    name = names if callable(names) else (lambda u: (names or {}).get(u, u))

    def listing(units):
        words = {"au-dessus": "au-dessus", "en-dessous": "en dessous"}
        return ", ".join(f"{name(u)} ({words[pos]})" for u, pos in sorted(units.items()))

    only_f = {u: p for u, p in a.items() if b.get(u) != p}
    only_o = {u: p for u, p in b.items() if a.get(u) != p}
    parts = []
    if only_f:
        parts.append(f"signalé(s) par l'entonnoir seulement : {listing(only_f)}")
    if only_o:
        parts.append(f"signalé(s) par le rapport observé / attendu seulement : {listing(only_o)}")
    lvl = "99,8 %" if level == "998" else "95 %"
    return ("Les deux analyses ne signalent pas les mêmes unités parce qu'elles ne posent pas la même question : "
            "l'entonnoir compare chaque unité à la valeur de référence, le rapport observé / attendu à ce que la "
            f"composition de ses établissements laisse attendre (limites à {lvl} ; " + " ; ".join(parts) + ").")


# ---------------------------------------------------------------------------
# ranks, scope, bright spots
# ---------------------------------------------------------------------------

def rank_intervals(table: pd.DataFrame, estimate: str = "shrunk_rate", low: str = "shrunk_low",
                   high: str = "shrunk_high", n_sim: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Ranks with 95 % intervals, simulated from each unit's (normal) interval.

    Rank 1 = highest value. Returns the table with ``rang``, ``rang_bas``,
    ``rang_haut`` added (never a bare league table).
    """
    rng = np.random.default_rng(seed)
    m = table[estimate].to_numpy(float)
    sd = (table[high].to_numpy(float) - table[low].to_numpy(float)) / (2 * Z95)
    draws = rng.normal(m, np.maximum(sd, 1e-12), size=(n_sim, len(m)))
    ranks = (-draws).argsort(axis=1).argsort(axis=1) + 1
    out = table.copy()
    out["rang"] = (-m).argsort().argsort() + 1
    out["rang_bas"] = np.quantile(ranks, 0.025, axis=0).astype(int)
    out["rang_haut"] = np.quantile(ranks, 0.975, axis=0).astype(int)
    return out


def select_scope(schools: pd.DataFrame, audience: str, territoire: str) -> pd.DataFrame:
    """Schools of one audience's territory (all schools for ``national``): :meth:`Audience.scope`."""
    from .territories import get_audience
    return get_audience(audience, territorial=True).scope(schools, territoire)


def unit_name(unit: str, code: str, schools: pd.DataFrame | None = None) -> str:
    """Readable name of a unit (académie, département, région or school)."""
    from . import territories as t
    if unit == "code_academie":
        return t.academie_label(code, capitalize=True)
    if unit == "code_departement":
        return t.departement_name(code)
    if unit == "code_region":
        return t.region_name(code)
    if unit == "uai" and schools is not None and "nom" in schools.columns:
        hit = schools.loc[schools["uai"].astype(str) == str(code), "nom"]
        if len(hit) and pd.notna(hit.iloc[0]):
            return f"{hit.iloc[0]} ({code})"
    return str(code)


def crm_facts(schools: pd.DataFrame, unit: str) -> pd.DataFrame:
    """What the CRM holds per unit: référent, training, conventions, ENT project.

    Returns
    -------
    pandas.DataFrame
        Indexed by unit: ``n_ecoles, part_referent, actions_formation,
        part_formation, part_convention, projets_ent``.
    """
    df = schools.copy()
    df["_u"] = df[unit].astype(str)
    cols = {}
    g = df.groupby("_u", sort=True)
    cols["n_ecoles"] = g.size()
    for src, dst in (("referent", "part_referent"), ("formation", "part_formation"),
                     ("convention", "part_convention")):
        if src in df.columns:
            cols[dst] = g[src].apply(lambda s: pd.to_numeric(s.astype("float64"), errors="coerce").mean())
    if "actions_formation" in df.columns:
        cols["actions_formation"] = g["actions_formation"].apply(
            lambda s: pd.to_numeric(s, errors="coerce").fillna(0).sum())
    if "projet_ent" in df.columns:
        def top(s):
            s = s.dropna().astype(str)
            s = s[s.str.strip() != ""]
            return ", ".join(s.value_counts().index[:3].tolist())
        cols["projets_ent"] = g["projet_ent"].apply(top)
    return pd.DataFrame(cols)


def bright_spots(table: pd.DataFrame, schools: pd.DataFrame, unit: str, *, level: str = "998",
                 threshold: int | None = None, indicator: str = "") -> pd.DataFrame:
    """Units significantly above expectation first, then below, with CRM facts.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`funnel_table` (positions at ``level``) or
        :func:`observed_vs_expected` (``position`` from the 95 % O/E interval, or
        ``position_998`` when ``level="998"``).
    schools : pandas.DataFrame
        ``etablissements`` table (one row per school) with ``unit`` and the CRM
        facts ``referent, actions_formation, formation, convention, projet_ent``.
    unit : str
        Unit column of ``schools``.
    level : {"95", "998"}
        Funnel limits or O/E interval used to flag a unit.
    threshold : int, optional
        Disclosure threshold: counts below it are written "moins de N".
    indicator : str
        What is compared (French), used in the sentences.

    Returns
    -------
    pandas.DataFrame
        ``unit, nom, sens (point fort | à accompagner), position, valeur, bas, haut,
        n_ecoles, part_referent, actions_formation, part_formation, part_convention,
        projets_ent, texte``: above first (strongest first), then below.
    """
    threshold = config.disclosure_threshold(threshold)
    is_oe = "ratio" in table.columns
    if is_oe:
        pos_col = "position" if level == "95" else "position_998"
        lo_col, hi_col = ("ci_low", "ci_high") if level == "95" else ("ci_low_998", "ci_high_998")
        val_col = "ratio"
    else:
        pos_col = f"position_{level}"
        lo_col, hi_col = "rate_ci_low", "rate_ci_high"
        val_col = "rate"
    zcol = "z" if is_oe else "z_adjusted"
    flagged = table[table[pos_col] != "conforme"].copy()
    flagged["_order"] = np.where(flagged[pos_col] == "au-dessus", 0, 1)
    flagged["_strength"] = np.where(flagged[pos_col] == "au-dessus", -flagged[zcol], flagged[zcol])
    flagged = flagged.sort_values(["_order", "_strength"])
    facts = crm_facts(schools, unit)
    national = crm_facts(schools.assign(_all="FR"), "_all").iloc[0]
    rows = []
    for r in flagged.itertuples(index=False):
        code = str(r.unit)
        f = facts.loc[code] if code in facts.index else pd.Series(dtype=float)
        row = {"unit": code, "nom": unit_name(unit, code, schools),
               "sens": "point fort" if getattr(r, pos_col) == "au-dessus" else "à accompagner",
               "position": getattr(r, pos_col), "valeur": getattr(r, val_col), "bas": getattr(r, lo_col),
               "haut": getattr(r, hi_col)}
        for c in ("n_ecoles", "part_referent", "actions_formation", "part_formation", "part_convention",
                  "projets_ent"):
            row[c] = f.get(c, np.nan) if len(f) else np.nan
        row["texte"] = _spot_sentence(row, national, is_oe, table.attrs, threshold, indicator, unit)
        rows.append(row)
    cols = ["unit", "nom", "sens", "position", "valeur", "bas", "haut", "n_ecoles", "part_referent",
            "actions_formation", "part_formation", "part_convention", "projets_ent", "texte"]
    out = pd.DataFrame(rows, columns=cols)
    out.attrs["avertissement"] = CAVEAT_GAPS
    return out


def _count_text(x) -> str:
    """A count of schools or of actions: a fact about public institutions, shown whatever its size."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "non renseigné"
    return fmt_fr(int(round(float(x))), 0)


def _pct(x) -> str:
    return fmt_fr(100 * float(x), 0) + " %"


def _spot_sentence(row: dict, national: pd.Series, is_oe: bool, attrs: dict, threshold: int,
                   indicator: str, unit: str) -> str:
    above = row["sens"] == "point fort"
    what = indicator or ("résultat" if is_oe else "taux")
    if is_oe:
        head = (f"{row['nom']} : {what} {'au-dessus' if above else 'en dessous'} de ce que la composition de ses "
                f"établissements laisse attendre (rapport observé / attendu {fmt_fr(row['valeur'], 2)}, "
                f"intervalle {fmt_fr(row['bas'], 2)} à {fmt_fr(row['haut'], 2)}).")
    else:
        mult = 100 if attrs.get("kind") == "proportion" else 1
        unit_s = " %" if mult == 100 else ""
        dec = 1 if mult == 100 else 2
        head = (f"{row['nom']} : {what} à {fmt_fr(mult * row['valeur'], dec)}{unit_s} "
                f"(intervalle {fmt_fr(mult * row['bas'], dec)} à {fmt_fr(mult * row['haut'], dec)}{unit_s}), "
                f"{'au-dessus' if above else 'en dessous'} de la référence "
                f"({fmt_fr(mult * attrs.get('target', np.nan), dec)}{unit_s}) au-delà des limites de contrôle.")
    known = []
    levers = []
    if unit != "uai" and pd.notna(row.get("n_ecoles")):
        known.append(f"{_count_text(row['n_ecoles'])} établissements")
    for key, label, lever in (("part_referent", "ont un référent GAR", "la désignation d'un référent GAR"),
                              ("part_convention", "relèvent d'une collectivité ayant signé une convention",
                               "la convention avec la collectivité"),
                              ("part_formation", "ont bénéficié d'une action de formation", "les actions de formation")):
        v = row.get(key)
        if v is None or not pd.notna(v):
            continue
        ref = national.get(key, np.nan)
        if unit == "uai":
            known.append(("a" if v >= 0.5 else "n'a pas encore") + " " + {
                "part_referent": "de référent GAR désigné", "part_convention": "de convention avec sa collectivité",
                "part_formation": "bénéficié d'une action de formation"}[key])
        else:
            known.append(f"{_pct(v)} {label} (moyenne : {_pct(ref)})")
        if pd.notna(ref):
            if above and v > ref + 0.05:
                levers.append(lever)
            if not above and v < ref - 0.05:
                levers.append(lever)
    if pd.notna(row.get("actions_formation")):
        known.append(f"{_count_text(row['actions_formation'])} action(s) de formation enregistrée(s)")
    if isinstance(row.get("projets_ent"), str) and row["projets_ent"]:
        known.append(f"projet ENT : {row['projets_ent']}")
    facts = ("Ce que l'on sait : " + " ; ".join(known) + ".") if known else "Le CRM ne contient pas encore d'information sur cette unité."
    if above:
        practice = ("Pratique à documenter et partager : " + ", ".join(levers) + ", plus fréquent(e)s qu'en moyenne."
                    if levers else "Pratique à documenter : un échange avec l'équipe locale permettra d'identifier "
                                   "ce qui fonctionne (les facteurs suivis par le CRM ne l'expliquent pas).")
    else:
        practice = ("Piste d'accompagnement : " + ", ".join(levers) + ", moins fréquent(e)s qu'en moyenne."
                    if levers else "Piste d'accompagnement : vérifier la qualité des données et échanger avec "
                                   "l'équipe locale sur les freins rencontrés.")
    return f"{head} {facts} {practice}"


# ---------------------------------------------------------------------------
# report helpers (used by notebooks/reports/ecarts_territoriaux.ipynb)
# ---------------------------------------------------------------------------

#: Composition of a school used by the O/E model (columns of etablissements.parquet).
DEFAULT_COVARIATES = ("ips_10", "log_eleves", "rural", "niveau", "secteur", "ep")
POSITION_SYMBOLS = {"au-dessus": "▲ au-dessus", "conforme": "● conforme", "en-dessous": "▼ en dessous"}
_MARKERS = {"au-dessus": "^", "conforme": "o", "en-dessous": "v"}


def school_indicators(schools: pd.DataFrame) -> pd.DataFrame:
    """Add the per-school columns the comparisons count, as the indicator registry defines them.

    ``un`` (1 per school), ``inscrit`` (0/1), ``actif_mois`` (registered with at least one accès in the
    reference month, 0/1), ``acces_eleve_12m`` (pupils' accès over 12 months) and ``nombre_eleves``:
    the numerators and denominators of ``part_inscrits``, ``part_actifs_mois`` and ``acces_par_eleve``
    in :data:`gar_analysis.indicators.INDICATORS`, so that a label means the same on every page.

    Parameters
    ----------
    schools : pandas.DataFrame
        :func:`gar_analysis.indicators.school_facts` (the processed ``etablissements`` with their usage facts).
    """
    missing = [c for c in ("acces_eleve_12m", "actif_mois") if c not in schools.columns]
    if missing:
        from .errors import ConfigError
        raise ConfigError("Les écarts territoriaux lisent les faits d'usage par établissement "
                          f"(colonnes absentes : {', '.join(missing)}) : passer indicators.school_facts(tables).")
    s = schools.copy()
    s["un"] = 1
    s["inscrit"] = s["inscrit"].fillna(False).astype(bool).astype(int)
    s["actif_mois"] = ((s["inscrit"] == 1) & s["actif_mois"].fillna(False).astype(bool)).astype(int)
    s["acces_eleve_12m"] = pd.to_numeric(s["acces_eleve_12m"], errors="coerce").fillna(0)
    return s


def _complete(schools: pd.DataFrame, cols: list[str]) -> tuple[pd.DataFrame, int]:
    ok = schools[cols].notna().all(axis=1)
    return schools[ok], int((~ok).sum())


def territorial_analysis(schools: pd.DataFrame, audience: str, territoire: str, *,
                         covariates: tuple | list = DEFAULT_COVARIATES) -> dict:
    """All comparisons of one report: funnels, O/E tables and bright spots.

    The reference values and the composition models are national (all schools);
    the units compared are those inside the territory (``Audience.comparison_unit``), each
    computed over the territory's own schools only.

    Returns
    -------
    dict
        ``unit``, ``unit_label``, ``funnels`` (list of dicts: titre, table, kind),
        ``oe`` (list of dicts: titre, table), ``spots`` (DataFrame),
        ``excluded`` (schools without complete composition), ``scope`` (schools).
    """
    from .territories import get_audience, unit_label
    unit = get_audience(audience, territorial=True).comparison_unit
    s = school_indicators(schools)
    scope = select_scope(s, audience, territoire)
    if scope.empty:
        raise DataError.single("etablissements", f"aucun établissement pour le territoire {territoire!r} "
                                                 f"de l'audience {audience!r}.")
    in_scope = s.index.isin(scope.index)
    # a unit of the territory is its schools inside the scope, never the same code's schools elsewhere
    # (a foreign département's school listed by the académie, the collèges of a lycée's département…)
    scope_units = set(scope[unit].astype(str))
    s = s[~s[unit].astype(str).isin(scope_units) | in_scope]
    out = {"unit": unit, "unit_label": unit_label(unit), "funnels": [], "oe": [], "scope": scope}
    per_school = unit == "uai"
    registered = s[(s["inscrit"] == 1)]
    expo = registered[pd.to_numeric(registered["nombre_eleves"], errors="coerce").fillna(0) > 0]
    from .indicators import INDICATORS
    specs = []
    if not per_school:
        specs.append((INDICATORS["part_inscrits"].label, s, "inscrit", "un", "proportion"))
        specs.append((INDICATORS["part_actifs_mois"].label, registered, "actif_mois", "un", "proportion"))
    specs.append((INDICATORS["acces_par_eleve"].label, expo, "acces_eleve_12m", "nombre_eleves", "rate"))
    for titre, frame, num, den, kind in specs:
        if not frame[unit].astype(str).isin(scope_units).any():
            continue
        # limits and over-dispersion from every unit of the same kind nationally, then the territory's units
        t = funnel_table(frame, num, den, unit, kind=kind)
        t = _keep_units(t, scope_units)
        out["funnels"].append({"titre": titre, "table": t, "kind": kind, "people": kind == "rate"})
    cov = [c for c in covariates if c in s.columns]
    full, n_excl = _complete(s, cov)
    out["excluded"] = n_excl
    oe_specs = []
    if not per_school:
        oe_specs.append((INDICATORS["part_inscrits"].label, full, "inscrit", "binomial", None))
    reg = full[(full["inscrit"] == 1) & (pd.to_numeric(full["nombre_eleves"], errors="coerce").fillna(0) > 0)]
    oe_specs.append((INDICATORS["acces_par_eleve"].label, reg, "acces_eleve_12m", "poisson", "nombre_eleves"))
    for titre, frame, outcome, family, exposure in oe_specs:
        if not frame[unit].astype(str).isin(scope_units).any():
            continue
        usable = [c for c in cov if frame[c].nunique() > 1]
        t = observed_vs_expected(frame, outcome, usable, unit, family=family, exposure=exposure)
        out["oe"].append({"titre": titre, "table": _keep_units(t, scope_units), "family": family})
    spots = []
    for item in out["oe"]:
        sp = bright_spots(item["table"], scope, unit, level="998", indicator=_lower_first(item["titre"]))
        sp.insert(3, "indicateur", item["titre"])
        spots.append(sp)
    all_spots = pd.concat(spots, ignore_index=True) if spots else pd.DataFrame()
    if len(all_spots):
        all_spots["_o"] = (all_spots["sens"] != "point fort").astype(int)
        all_spots = all_spots.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)
        all_spots["resume"] = [_short(r) for r in all_spots.itertuples()]
    out["spots"] = all_spots
    out["deplaces"] = int(scope["territoire_corrige"].fillna(False).astype(bool).sum()) \
        if "territoire_corrige" in scope.columns else 0
    return out


def _keep_units(table: pd.DataFrame, units: set) -> pd.DataFrame:
    """Rows of the territory's units, keeping the national attributes (target, over-dispersion)."""
    out = table[table["unit"].astype(str).isin(units)].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _short(r) -> str:
    if r.sens == "point fort":
        return (f"{r.nom} : {_lower_first(r.indicateur)} au-dessus de l'attendu compte tenu de la composition des "
                f"établissements (rapport observé / attendu {fmt_fr(r.valeur, 2)}) : une pratique à documenter et "
                "partager.")
    return (f"{r.nom} : {_lower_first(r.indicateur)} en dessous de l'attendu compte tenu de la composition des "
            f"établissements (rapport observé / attendu {fmt_fr(r.valeur, 2)}) : un accompagnement à construire "
            "avec l'équipe locale.")


def publishable_funnel(table: pd.DataFrame, unit: str, schools: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Funnel table for display: names, French columns, small counts suppressed (``c``)."""
    from .disclosure import suppress
    pct = table.attrs.get("kind") == "proportion"
    m = 100.0 if pct else 1.0
    out = pd.DataFrame({
        "nom": [unit_name(unit, u, schools) for u in table["unit"]],
        "numerateur": table["numerator"], "denominateur": table["denominator"],
        "valeur": m * table["rate"], "valeur_retrecie": m * table["shrunk_rate"],
        "limite_basse_998": m * table["lower_998"], "limite_haute_998": m * table["upper_998"],
        "position": table["position_998"].map(POSITION_SYMBOLS)})
    if not pct:  # accès and pupils are counts of people: the rate gives back the accès, hidden with them
        both = ("denominateur", "numerateur")
        out = suppress(out, ["numerateur", "denominateur"], rate_cols=["valeur", "valeur_retrecie"],
                       denominators={"valeur": both, "valeur_retrecie": both}, threshold=threshold)
    # a share of schools (registered, active) is an institutional fact: shown whatever the number
    out = _distinct_decimals(out, ["valeur", "valeur_retrecie", "limite_basse_998", "limite_haute_998"],
                             table["position_998"].to_numpy())
    unit_s = " (%)" if pct else ""
    return out.rename(columns={"nom": "Nom", "numerateur": "Numérateur (nombre)", "denominateur": "Dénominateur (nombre)",
                               "valeur": f"Valeur{unit_s}", "valeur_retrecie": f"Valeur rétrécie{unit_s}",
                               "limite_basse_998": f"Limite basse à 99,8 %{unit_s}",
                               "limite_haute_998": f"Limite haute à 99,8 %{unit_s}", "position": "Position"})


def _distinct_decimals(out: pd.DataFrame, cols: list[str], positions) -> pd.DataFrame:
    """Format value and limits as French text with as many decimals as a reader needs to see a flag.

    One decimal (two below 10) unless a flagged unit's value and the limit it crosses would read the same
    (« 100,0 » above a limit « 100,0 »): then more, up to four, for the whole table.
    """
    num = {c: pd.to_numeric(out[c].where(out[c] != config.SUPPRESSED), errors="coerce") for c in cols}
    base = 1 if num["valeur"].abs().max(skipna=True) >= 10 else 2
    decimals = base
    for d in range(base, 5):
        decimals = d
        v, lo, hi = (num[c].round(d) for c in ("valeur", "limite_basse_998", "limite_haute_998"))
        ok = ~((positions == "au-dessus") & (v <= hi)) & ~((positions == "en-dessous") & (v >= lo))
        if ok.all():
            break
    out = out.copy()
    for c in cols:
        out[c] = [config.SUPPRESSED if x == config.SUPPRESSED else fmt_number(x, decimals) for x in out[c]]
    return out


def publishable_oe(table: pd.DataFrame, unit: str, schools: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """O/E table for display, with intervals, ranks with intervals, small counts suppressed."""
    from .disclosure import suppress
    t = rank_intervals(table, "shrunk_ratio", "shrunk_low", "shrunk_high")
    out = pd.DataFrame({
        "nom": [unit_name(unit, u, schools) for u in t["unit"]], "n_ecoles": t["n_ecoles"],
        "observe": t["observed"], "attendu": t["expected"], "rapport": t["ratio"],
        "ic_bas": t["ci_low"], "ic_haut": t["ci_high"], "rapport_retreci": t["shrunk_ratio"],
        "rang": [f"{a} (entre {b} et {c})" for a, b, c in zip(t["rang"], t["rang_bas"], t["rang_haut"])],
        "position": t["position_998"].map(POSITION_SYMBOLS)})
    out = out.sort_values("rapport_retreci", ascending=False, ignore_index=True)
    if table.attrs.get("family", "poisson") != "binomial":
        # observed accès are counts of people's acts: hidden from 1 to threshold − 1, and with them every
        # figure that gives them back (ratio × expected = observed; the intervals and shrunk ratio bound it)
        with_observed = ["rapport", "ic_bas", "ic_haut", "rapport_retreci"]
        out = suppress(out, ["observe"], rate_cols=with_observed, denominators=dict.fromkeys(with_observed, "observe"),
                       threshold=threshold)
    # registered schools are institutional facts: an O/E of registration is shown whatever the number
    return out.rename(columns={"nom": "Nom", "n_ecoles": "Établissements (nombre)", "observe": "Observé (nombre)",
                               "attendu": "Attendu (nombre)", "rapport": "Rapport observé / attendu",
                               "ic_bas": "IC 95 % bas", "ic_haut": "IC 95 % haut",
                               "rapport_retreci": "Rapport rétréci", "rang": "Rang (intervalle à 95 %)",
                               "position": "Position"})
