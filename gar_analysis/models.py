"""Success-factor regressions: what is associated with GAR adoption and usage.

One entry point, :func:`fit_success_factors`, fits a regression of a school-level
outcome (registration 0/1, accès over a school year with pupils as exposure,
share of active months, any continuous indicator) on factors given as columns of
one table with one row per school. It returns a :class:`SuccessFactors` result:
a table of effects (estimate, interval, p-value, odds or rate ratio), average
marginal effects in plain units, diagnostics translated into French warnings,
and, when ``groups`` is given, cluster-robust intervals plus a multilevel variant.

These are associations in observational data, never causes: every output
carries :data:`CAVEAT`.

Design choices (see ``docs/methods.md``):

* rows with a missing value in a column the model uses are left out and
  reported (``missing="drop"``, the default of statsmodels' formula interface),
  or listed in a DataError (``missing="raise"``);
* booleans become 0/1 numbers (term name = column name, e.g. ``referent``);
  string columns are categorical with a fixed reference level
  (:data:`DEFAULT_REFERENCES`, else the first level in alphabetical order), so that
  term names read ``niveau[T.college]``;
* ``binomial`` takes a 0/1 outcome, or a count of successes with ``exposure``
  naming the number of trials (e.g. active months out of measured months);
* ``poisson`` checks over-dispersion and falls back on quasi-Poisson intervals
  (Pearson scale) when the counts vary more than the model allows;
* the multilevel variant uses ``MixedLM`` (gaussian) or
  ``BinomialBayesMixedGLM`` (0/1 outcomes); for counts, statsmodels has no
  random-intercept model with an exposure, so group effects are estimated by
  empirical-Bayes shrinkage of each group's observed / expected ratio.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import stats

from .stats import dersimonian_laird_tau2
from .formatting import fmt_sentence
from .errors import DataError, Problem
from .validation import (_SOURCE, MISSING_POLICIES, MissingValuesWarning, _is_bool_like, _problems_for,  # noqa: F401
                         check_columns, check_dataframe, check_no_missing, drop_missing, numeric_column)

FAMILIES = ("binomial", "poisson", "negative_binomial", "gaussian")

#: Printed with every output of this module.
CAVEAT = ("Ces résultats décrivent des associations observées entre les caractéristiques des établissements "
          "et le résultat étudié, pas des relations de cause à effet : un facteur non mesuré (dynamique de "
          "l'équipe, politique locale, équipement numérique, antériorité de l'ENT) peut expliquer à la fois "
          "le facteur et le résultat.")

#: Reference level of known categorical columns (the others: first in alphabetical order).
DEFAULT_REFERENCES = {"niveau": "ecole", "secteur": "public", "education_prioritaire": ""}

#: Readable French labels of known terms (other terms are shown as they are).
TERM_LABELS = {
    "Intercept": "Constante",
    "referent": "Référent GAR désigné",
    "formation": "Au moins une action de formation",
    "actions_formation": "Action de formation (par action)",
    "convention": "Convention signée par la collectivité",
    "mediacentre": "Médiacentre activé",
    "ips": "IPS (par point)",
    "ips_10": "IPS (+10 points)",
    "rural": "Commune rurale",
    "densite": "Densité de la commune (par hab./km²)",
    "log_eleves": "Taille (log du nombre d'élèves)",
    "ep": "Éducation prioritaire",
    "niveau[T.college]": "Collège (par rapport à l'école)",
    "niveau[T.lycee]": "Lycée (par rapport à l'école)",
    "niveau[T.autre]": "Autre niveau (par rapport à l'école)",
    "secteur[T.prive]": "Privé (par rapport au public)",
}

#: How to read an outcome in a sentence.
OUTCOME_LABELS = {
    "inscrit": "d'inscription au GAR",
    "acces": "accès",
    "acces_eleve": "accès élèves",
    "acces_enseignant": "accès enseignants",
    "mois_actifs": "mois actifs",
}
#: How to read a binomial outcome after "points de pourcentage".
BINOMIAL_LABELS = {"inscrit": "d'inscription au GAR", "mois_actifs": "de mois actifs", "actif": "d'activité"}
EXPOSURE_LABELS = {"nombre_eleves": "élève", "mois_mesures": "mois mesuré"}



def term_label(term: str) -> str:
    """Return a readable French label for a statsmodels term name.

    Examples
    --------
    >>> term_label("referent")
    'Référent GAR désigné'
    >>> term_label("projet_ent[T.Toutatice]")
    'projet_ent : Toutatice'
    """
    if term in TERM_LABELS:
        return TERM_LABELS[term]
    if "[T." in term and term.endswith("]"):
        col, level = term[:-1].split("[T.", 1)
        return f"{col} : {level}"
    return term


# ---------------------------------------------------------------------------
# design
# ---------------------------------------------------------------------------

@dataclass
class _Design:
    frame: pd.DataFrame          # prepared columns (outcome, factors, exposure, groups)
    y: np.ndarray                # outcome (proportion for binomial with trials)
    trials: np.ndarray | None    # binomial trials
    offset: np.ndarray | None    # log exposure
    X: pd.DataFrame              # design matrix
    design_info: object
    kinds: dict                  # factor -> "binary" | "continuous" | "categorical"
    levels: dict                 # categorical factor -> list of levels (reference first)
    groups: pd.Series | None
    missing: dict | None = None  # rows dropped for missing values (see drop_missing)


def _quote(name: str) -> str:
    return name if name.isidentifier() else f'Q("{name}")'


def prepare_design(data: pd.DataFrame, outcome: str, factors: list[str], *, family: str,
                   exposure: str | None = None, groups: str | None = None,
                   references: dict | None = None, source: str = _SOURCE, missing: str = "raise") -> _Design:
    """Validate the inputs and build the design matrix (shared by models and gaps).

    ``missing`` is the policy of :func:`drop_missing` (rows lost are counted per
    ``groups``); the report is kept in ``_Design.missing``.

    Raises
    ------
    DataError
        French message for: unknown column, missing values, constant factor,
        outcome out of range, non-positive exposure.
    """
    check_dataframe(data, source)
    if family not in FAMILIES:
        raise DataError.single(source, f"famille de modèle inconnue : {family!r} (valeurs possibles : "
                                       f"{', '.join(FAMILIES)}).")
    if isinstance(factors, str):
        factors = [factors]
    factors = list(factors)
    if not factors:
        raise DataError.single(source, "aucun facteur explicatif n'a été donné.")
    if len(set(factors)) != len(factors):
        raise DataError.single(source, "un facteur est cité deux fois.")
    if outcome in factors:
        raise DataError.single(source, f"la variable à expliquer « {outcome} » figure aussi parmi les facteurs.",
                               column=outcome)
    if family == "gaussian" and exposure is not None:
        raise DataError.single(source, "l'exposition ne s'utilise pas avec la famille gaussian.", column=exposure)
    cols = [outcome, *factors] + ([exposure] if exposure else []) + ([groups] if groups else [])
    check_columns(data, cols, source)
    data, dropped = drop_missing(data, cols, missing, unit=groups, source=source)

    y = numeric_column(data, outcome, source)
    trials = offset = None
    if exposure is not None:
        e = numeric_column(data, exposure, source)
        bad = e <= 0
        if bad.any():
            raise DataError(_problems_for(bad, exposure, "exposition nulle ou négative : elle doit être "
                                                         "strictement positive.", source))
    if family == "binomial":
        if exposure is None:
            bad = ~y.isin([0.0, 1.0])
            if bad.any():
                raise DataError(_problems_for(bad, outcome, "valeur hors domaine : une variable binaire (0 ou 1, "
                                                            "vrai ou faux) est attendue.", source))
            yv = y.to_numpy()
        else:
            bad = (y < 0) | (y > e) | (y != np.round(y))
            if bad.any():
                raise DataError(_problems_for(bad, outcome, f"valeur hors domaine : un nombre entier de succès "
                                                            f"entre 0 et « {exposure} » est attendu.", source))
            trials = e.to_numpy()
            yv = (y / e).to_numpy()
        if np.unique(yv).size < 2:
            raise DataError.single(source, f"la variable à expliquer « {outcome} » prend une seule valeur : "
                                           "il n'y a rien à expliquer.", column=outcome)
    elif family in ("poisson", "negative_binomial"):
        bad = (y < 0) | (y != np.round(y))
        if bad.any():
            raise DataError(_problems_for(bad, outcome, "valeur hors domaine : un comptage entier positif ou nul "
                                                        "est attendu.", source))
        if (y == 0).all():
            raise DataError.single(source, f"la variable à expliquer « {outcome} » vaut toujours 0.", column=outcome)
        yv = y.to_numpy()
        if exposure is not None:
            offset = np.log(e.to_numpy())
    else:
        if not np.isfinite(y).all():
            raise DataError(_problems_for(~np.isfinite(y), outcome, "valeur infinie.", source))
        if y.nunique() < 2:
            raise DataError.single(source, f"la variable à expliquer « {outcome} » est constante.", column=outcome)
        yv = y.to_numpy()

    refs = {**DEFAULT_REFERENCES, **(references or {})}
    frame = pd.DataFrame(index=data.index)
    kinds: dict = {}
    levels: dict = {}
    problems = []
    for f in factors:
        s = data[f]
        if s.nunique(dropna=True) < 2:
            problems.append(Problem(source, None, f, "facteur constant : il prend une seule valeur dans ces données "
                                                     "et ne peut rien expliquer ; retirez-le du modèle."))
            continue
        if pd.api.types.is_bool_dtype(s) or _is_bool_like(s):
            frame[f] = s.map(lambda v: float(v in (True, "True", "true"))).astype("float64")
            kinds[f] = "binary"
        elif pd.api.types.is_numeric_dtype(s):
            v = s.astype("float64")
            if not np.isfinite(v).all():
                problems += _problems_for(~np.isfinite(v), f, "valeur infinie.", source)
            frame[f] = v
            kinds[f] = "binary" if set(np.unique(v)) <= {0.0, 1.0} else "continuous"
        elif (pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)
              or isinstance(s.dtype, pd.CategoricalDtype)):
            vals = s.astype(str)
            lv = sorted(vals.unique())
            ref = refs.get(f)
            if ref is not None and ref in lv:
                lv = [ref] + [x for x in lv if x != ref]
            frame[f] = pd.Categorical(vals, categories=lv)
            kinds[f] = "categorical"
            levels[f] = lv
        else:
            problems.append(Problem(source, None, f, f"type de colonne non pris en charge ({s.dtype}) : "
                                                     "nombre, booléen ou texte attendu."))
    if problems:
        raise DataError(problems)

    rhs = " + ".join(_quote(f) for f in factors)
    dm = patsy.dmatrix(rhs, frame, return_type="dataframe", NA_action="raise")
    X = dm.astype("float64")
    n, k = X.shape
    if n <= k:
        raise DataError.single(source, f"trop peu d'établissements ({n}) pour estimer {k} paramètres : "
                                       "réduisez le nombre de facteurs ou élargissez le périmètre.")
    rank = np.linalg.matrix_rank(X.to_numpy())
    if rank < k:
        raise DataError.single(source, "colinéarité parfaite : " + _collinear_terms(X)
                               + " portent la même information ; retirez l'un d'eux du modèle.")
    g = data[groups].astype(str) if groups else None
    return _Design(frame=frame, y=np.asarray(yv, dtype=float), trials=trials, offset=offset, X=X,
                   design_info=dm.design_info, kinds=kinds, levels=levels, groups=g, missing=dropped)


def _collinear_terms(X: pd.DataFrame) -> str:
    """Name the terms involved in an exact linear dependence."""
    A = X.to_numpy()
    _, s, vt = np.linalg.svd(A, full_matrices=False)
    null = vt[-1]
    names = [X.columns[i] for i in np.flatnonzero(np.abs(null) > 1e-6) if X.columns[i] != "Intercept"]
    if not names:
        names = list(X.columns)
    return "les termes " + ", ".join(f"« {term_label(t)} »" for t in names)


# ---------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------

@dataclass(repr=False)
class SuccessFactors:
    """Result of :func:`fit_success_factors`.

    In a notebook it displays as an HTML summary (effects, warnings, caveat);
    :meth:`plot` draws the forest plot of the ratios.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per term: ``term, label, estimate, std_error, ci_low, ci_high, p_value,
        ratio, ratio_low, ratio_high`` (ratios = exp for binomial, poisson and
        negative_binomial; NaN for gaussian). ``table.attrs`` holds the caveat.
    marginal_effects : pandas.DataFrame
        Average marginal effects in plain units with intervals and a French sentence.
    diagnostics : dict
        ``vif`` (DataFrame), ``dispersion``, ``alpha`` (NB), ``cooks_max``,
        ``n_influential``, ``influential`` (index labels), ``n``, ``n_groups``.
    warnings : list of str
        Plain-language French warnings.
    multilevel : pandas.DataFrame or None
        Fixed effects of the multilevel variant (same columns as ``table``).
    group_effects : pandas.DataFrame or None
        One row per group: ``group, effect, std_error, ci_low, ci_high, ratio``
        (random intercept or empirical-Bayes log O/E), largest first.
    missing : dict or None
        Rows left out for missing values (``missing="drop"``): ``n_dropped``,
        ``columns``, ``units`` (per group), ``text``; None when none were.
    """

    table: pd.DataFrame
    family: str
    requested_family: str
    outcome: str
    factors: list
    exposure: str | None
    groups: str | None
    cov_type: str
    marginal_effects: pd.DataFrame
    diagnostics: dict
    warnings: list = field(default_factory=list)
    multilevel: pd.DataFrame | None = None
    multilevel_method: str | None = None
    group_effects: pd.DataFrame | None = None
    caveat: str = CAVEAT
    model: object = None
    missing: dict | None = None

    def _headline(self) -> str:
        n_groups = self.diagnostics.get("n_groups")
        groups = f", {n_groups} groupes « {self.groups} »" if n_groups else ""
        return (f"Modèle {self.table.attrs.get('famille', self.family)} de « {self.outcome} » sur "
                f"{self.diagnostics['n']} établissements{groups} (erreurs standard "
                f"{self.table.attrs.get('erreurs_standard', 'modèle')}).")

    def summary_text(self) -> str:
        """A French plain-text summary: effects, warnings and the caveat."""
        lines = [self._headline()]
        for s in self.marginal_effects.get("texte", []):
            lines.append(f"- {s}")
        lines += [f"Attention : {w}" for w in self.warnings]
        lines.append(self.caveat)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<SuccessFactors : {self._headline()}>"

    def _repr_html_(self) -> str:
        """Rich display in a notebook: headline, effects table, average effects, warnings, caveat."""
        import html

        from .reporting.display import table_html
        esc = html.escape
        ref = "0" if self.family == "gaussian" else "1"
        parts = [f"<p><strong>Facteurs de succès</strong> — {esc(self._headline())}</p>",
                 table_html(effects_display(self), "Effets estimés et intervalles de confiance à 95 %",
                            note=f"Au-dessus de {ref} : association positive ; intervalle incluant {ref} : "
                                 "association non établie.")]
        texts = list(self.marginal_effects.get("texte", []))
        if texts:
            parts.append("<p>Effets moyens, à autres facteurs égaux :</p><ul>"
                         + "".join(f"<li>{esc(t)}</li>" for t in texts) + "</ul>")
        if self.warnings:
            parts.append("<p>Points d'attention :</p><ul>" + "".join(f"<li>{esc(w)}</li>" for w in self.warnings)
                         + "</ul>")
        parts.append(f"<p><em>{esc(self.caveat)}</em></p>")
        return "<div class=\"gar-resultat\">" + "".join(parts) + "</div>"

    def plot(self, title: str = ""):
        """Forest plot of the ratios with their 95 % intervals (Matplotlib figure, accessible palette)."""
        from .reporting.charts import forest_figure, style_context

        with style_context():
            return forest_figure(self, title=title)


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------

def _effects_table(names, params, bse, pvalues, ratio: bool, z: float = stats.norm.ppf(0.975)) -> pd.DataFrame:
    params = np.asarray(params, float)
    bse = np.asarray(bse, float)
    t = pd.DataFrame({"term": list(names), "estimate": params, "std_error": bse,
                      "ci_low": params - z * bse, "ci_high": params + z * bse,
                      "p_value": np.asarray(pvalues, float)})
    t.insert(1, "label", t["term"].map(term_label))
    if ratio:
        with np.errstate(over="ignore"):
            t["ratio"] = np.exp(t["estimate"])
            t["ratio_low"] = np.exp(t["ci_low"])
            t["ratio_high"] = np.exp(t["ci_high"])
    else:
        t["ratio"] = t["ratio_low"] = t["ratio_high"] = np.nan
    t.attrs["avertissement"] = CAVEAT
    return t


def _fit_main(d: _Design, family: str, cov_kw: dict):
    """Fit the population-level model; return (results, params, cov, family used, extra)."""
    X = d.X
    extra: dict = {}
    if family == "binomial":
        kw = {"var_weights": d.trials} if d.trials is not None else {}
        model = sm.GLM(d.y, X, family=sm.families.Binomial(), **kw)
        res = model.fit(**cov_kw)
        if d.trials is not None and not cov_kw:
            # proportions with trials: over-dispersion shows in the Pearson scale
            disp = float(res.pearson_chi2 / res.df_resid)
            extra["dispersion"] = disp
            if disp > 1.2 and stats.chi2.sf(res.pearson_chi2, res.df_resid) < 0.05:
                res = model.fit(scale="X2")
                extra["quasi"] = True
        return res, res.params, res.cov_params(), "binomial", extra
    if family == "poisson":
        model = sm.GLM(d.y, X, family=sm.families.Poisson(), offset=d.offset)
        res = model.fit(**cov_kw)
        disp = float(res.pearson_chi2 / res.df_resid)
        extra["dispersion"] = disp
        if not cov_kw and disp > 1.2 and stats.chi2.sf(res.pearson_chi2, res.df_resid) < 0.05:
            res = model.fit(scale="X2")
            extra["quasi"] = True
        return res, res.params, res.cov_params(), "poisson", extra
    if family == "negative_binomial":
        model = sm.NegativeBinomial(d.y, X, offset=d.offset, loglike_method="nb2")
        start = None
        try:  # start from Poisson estimates: faster and more stable
            pois = sm.GLM(d.y, X, family=sm.families.Poisson(), offset=d.offset).fit()
            start = np.append(pois.params.to_numpy(), 0.5)
        except Exception:  # noqa: BLE001 - the NB fit below reports its own failure
            pass
        res = model.fit(start_params=start, disp=0, maxiter=300, method="bfgs", **cov_kw)
        if not res.mle_retvals.get("converged", True):
            res = model.fit(start_params=res.params, disp=0, maxiter=200, method="newton", **cov_kw)
        names = list(X.columns)
        params = res.params[names]
        cov = res.cov_params().loc[names, names]
        extra["alpha"] = float(res.params["alpha"])
        extra["alpha_se"] = float(res.bse["alpha"])
        return res, params, cov, "negative_binomial", extra
    res = sm.OLS(d.y, X).fit(**cov_kw)
    return res, res.params, res.cov_params(), "gaussian", extra


def _inverse_link(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "binomial":
        return 1.0 / (1.0 + np.exp(-eta))
    if family in ("poisson", "negative_binomial"):
        return np.exp(np.minimum(eta, 700))
    return eta


def _marginal_effects(d: _Design, family: str, params: pd.Series, cov: pd.DataFrame, outcome: str,
                      exposure: str | None, n_draws: int = 300, seed: int = 0,
                      max_rows: int = 5000) -> pd.DataFrame:
    """Average marginal effects (discrete changes) with simulation intervals.

    Binary factors: mean predicted difference 1 vs 0; categorical levels: level vs
    reference; continuous factors: +1 unit. Predictions are probabilities
    (binomial), rates per unit of exposure (counts with exposure), counts or values.
    """
    rng = np.random.default_rng(seed)
    beta = params.to_numpy()
    try:
        draws = rng.multivariate_normal(beta, cov.to_numpy(), size=n_draws, method="cholesky")
    except np.linalg.LinAlgError:
        draws = rng.multivariate_normal(beta, cov.to_numpy(), size=n_draws, method="eigh")
    B = np.vstack([beta, draws]).T  # k × (1 + draws)
    X = d.X
    if len(X) > max_rows:  # averages over a random subset: same answer, bounded cost
        X = X.sample(max_rows, random_state=seed)
    base = X.to_numpy()
    cols = {c: i for i, c in enumerate(X.columns)}
    rows = []
    for f, kind in d.kinds.items():
        if kind == "categorical":
            terms = [f"{f}[T.{lv}]" for lv in d.levels[f][1:]]
            contrasts = [(t, [cols[x] for x in terms if x in cols]) for t in terms]
        else:
            contrasts = [(f, [cols[f]])]
        for term, group in contrasts:
            x0, x1 = base.copy(), base.copy()
            j = cols[term]
            if kind == "categorical":
                x0[:, group] = 0.0
                x1[:, group] = 0.0
                x1[:, j] = 1.0
            elif kind == "binary":
                x0[:, j], x1[:, j] = 0.0, 1.0
            else:
                x1[:, j] = base[:, j] + 1.0
            diff = _inverse_link(family, x1 @ B) - _inverse_link(family, x0 @ B)
            ame = diff.mean(axis=0)
            rows.append({"term": term, "label": term_label(term), "kind": kind,
                         "effect": ame[0], "ci_low": np.quantile(ame[1:], 0.025),
                         "ci_high": np.quantile(ame[1:], 0.975)})
    out = pd.DataFrame(rows, columns=["term", "label", "kind", "effect", "ci_low", "ci_high"])
    scale = 100.0 if family == "binomial" else 1.0
    out["unit"] = _effect_unit(family, outcome, exposure)
    for c in ("effect", "ci_low", "ci_high"):
        out[c] = out[c] * scale
    out["texte"] = [_effect_sentence(r, family, outcome, exposure) for r in out.itertuples()]
    out.attrs["avertissement"] = CAVEAT
    return out


def _effect_unit(family: str, outcome: str, exposure: str | None) -> str:
    if family == "binomial":
        return "points de pourcentage"
    what = OUTCOME_LABELS.get(outcome, outcome)
    if exposure:
        return f"{what} par {EXPOSURE_LABELS.get(exposure, exposure)}"
    return what


#: French number for sentences (one formatter for the package: :func:`gar_analysis.formatting.fmt_sentence`).
fmt_fr = fmt_sentence


def _effect_sentence(r, family: str, outcome: str, exposure: str | None) -> str:
    decimals = 1 if family == "binomial" else 2
    what = r.label
    if r.kind == "continuous":
        subject = f"Une unité de plus de « {what} »"
    elif r.kind == "categorical":
        subject = what
    else:
        subject = what
    if family == "binomial":
        amount = f"{fmt_fr(r.effect, decimals, sign=True)} points de pourcentage {BINOMIAL_LABELS.get(outcome, f'de « {outcome} »')}"
    else:
        amount = f"{fmt_fr(r.effect, decimals, sign=True)} {_effect_unit(family, outcome, exposure)}"
    ci = f"IC 95 % : {fmt_fr(r.ci_low, decimals, sign=True)} à {fmt_fr(r.ci_high, decimals, sign=True)}"
    certain = "" if (r.ci_low > 0 or r.ci_high < 0) else " ; l'intervalle inclut zéro : l'association n'est pas établie"
    return f"{subject} : associé à {amount} en moyenne, à autres facteurs égaux ({ci}){certain}."


def _vif(X: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in X.columns if c != "Intercept"]
    A = X.to_numpy()
    out = []
    for c in cols:
        j = X.columns.get_loc(c)
        others = np.delete(A, j, axis=1)
        coef, *_ = np.linalg.lstsq(others, A[:, j], rcond=None)
        resid = A[:, j] - others @ coef
        tss = ((A[:, j] - A[:, j].mean()) ** 2).sum()
        r2 = 1 - (resid ** 2).sum() / tss if tss > 0 else 1.0
        out.append({"term": c, "label": term_label(c), "vif": (1.0 / (1.0 - r2)) if r2 < 1 else np.inf})
    return pd.DataFrame(out, columns=["term", "label", "vif"])


def _influence(res, index: pd.Index) -> dict:
    try:
        cooks = np.asarray(res.get_influence().cooks_distance[0], float)
    except Exception:  # noqa: BLE001 - diagnostics are best effort
        return {"cooks_max": np.nan, "n_influential": None, "influential": []}
    n = len(cooks)
    thr = 4.0 / n
    order = np.argsort(-np.nan_to_num(cooks))
    return {"cooks_max": float(np.nanmax(cooks)), "n_influential": int((cooks > thr).sum()),
            "influential": [index[i] for i in order[:5]], "cooks_threshold": thr}


def _schools(n: int) -> str:
    """« 1 établissement », « 3 établissements » (counts of schools are institutional facts: shown)."""
    return f"{n} établissement" + ("s" if n > 1 else "")


def _check_support(d: _Design, family: str, groups: str | None) -> list[str]:
    """Plain-language warnings when the data cannot support a factor."""
    out = []
    n, k = d.X.shape
    if n < 10 * k:
        out.append(f"Peu d'établissements ({n}) pour {k} paramètres : les estimations sont fragiles ; "
                   "réduisez le nombre de facteurs ou élargissez le périmètre.")
    if family == "binomial" and d.trials is None:
        events = int(min(d.y.sum(), n - d.y.sum()))
        if events < 10 * (k - 1):
            out.append(f"Le résultat le plus rare ne concerne que {events} établissements : trop peu pour "
                       f"{k - 1} facteurs (règle usuelle : au moins 10 par facteur).")
    for f, kind in d.kinds.items():
        if kind == "binary":
            ones = int(d.frame[f].sum())
            small = min(ones, n - ones)
            if small < 10:
                out.append(f"« {term_label(f)} » : seulement {_schools(small)} dans le groupe le moins "
                           "fréquent ; l'effet de ce facteur ne peut pas être estimé de façon fiable.")
        if kind == "categorical":
            counts = d.frame[f].value_counts()
            for lv, c in counts.items():
                if c < 10:
                    out.append(f"« {f} = {lv} » : seulement {_schools(int(c))} ; effet peu fiable.")
        if family == "binomial" and d.trials is None and kind in ("binary", "categorical"):
            tab = pd.crosstab(d.frame[f], d.y)
            if tab.shape[1] == 2 and ((tab == 0).any(axis=1)).any():
                lv = [str(i) for i in tab.index[(tab == 0).any(axis=1)]]
                out.append(f"Séparation : pour « {f} » = {', '.join(lv)}, le résultat est toujours le même ; "
                           "l'effet de ce facteur est indéterminé (rapport infini) et ne doit pas être interprété.")
    if groups is not None:
        ng = d.groups.nunique()
        if 2 <= ng < 20:
            out.append(f"Seulement {ng} groupes « {groups} » : les intervalles robustes par groupe sont "
                       "approximatifs avec moins d'une vingtaine de groupes.")
    return out


def _multilevel(d: _Design, family: str, groups: str) -> tuple[pd.DataFrame | None, str | None, pd.DataFrame | None,
                                                                 list[str]]:
    """Random-intercept variant where statsmodels supports it."""
    notes: list[str] = []
    g = d.groups
    codes, uniques = pd.factorize(g, sort=True)
    try:
        if family == "gaussian":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = sm.MixedLM(d.y, d.X, groups=codes).fit(reml=True)
            names = list(d.X.columns)
            table = _effects_table(names, m.fe_params[names], m.bse_fe[names], m.pvalues[names], ratio=False)
            sd_re = math.sqrt(max(float(m.cov_re.iloc[0, 0]), 0.0))
            re = pd.DataFrame({"group": uniques, "effect": [float(m.random_effects[i].iloc[0]) for i in range(len(uniques))]})
            re["std_error"] = np.nan
            table.attrs["sd_groupe"] = sd_re
            return table, "MixedLM (ordonnée à l'origine aléatoire par groupe, REML)", _finish_groups(re, False), notes
        if family == "binomial" and d.trials is None:
            from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM
            exog_vc = np.zeros((len(codes), len(uniques)))
            exog_vc[np.arange(len(codes)), codes] = 1.0
            import scipy.sparse as sp
            model = BinomialBayesMixedGLM(d.y, d.X.to_numpy(), sp.csr_matrix(exog_vc), np.zeros(len(uniques), int),
                                          vcp_p=1.0, fe_p=5.0, fep_names=list(d.X.columns), vcp_names=[groups])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = model.fit_vb()
            z = r.fe_mean / r.fe_sd
            table = _effects_table(list(d.X.columns), r.fe_mean, r.fe_sd, 2 * stats.norm.sf(np.abs(z)), ratio=True)
            table.attrs["sd_groupe"] = float(np.exp(r.vcp_mean[0]))
            re = pd.DataFrame({"group": uniques, "effect": r.vc_mean, "std_error": r.vc_sd})
            return (table, "BinomialBayesMixedGLM (bayésien variationnel, ordonnée à l'origine aléatoire par groupe)",
                    _finish_groups(re, True), notes)
    except Exception as exc:  # noqa: BLE001 - the population model stays available
        notes.append(f"Le modèle multiniveau n'a pas pu être estimé ({type(exc).__name__}) ; seuls les intervalles "
                     "robustes par groupe sont fournis.")
    return None, None, None, notes


def _finish_groups(re: pd.DataFrame, ratio: bool) -> pd.DataFrame:
    z = stats.norm.ppf(0.975)
    re["ci_low"] = re["effect"] - z * re["std_error"]
    re["ci_high"] = re["effect"] + z * re["std_error"]
    re["ratio"] = np.exp(re["effect"]) if ratio else np.nan
    return re.sort_values("effect", ascending=False, ignore_index=True)


def _eb_group_effects(d: _Design, family: str, mu: np.ndarray, dispersion: float) -> pd.DataFrame:
    """Empirical-Bayes log O/E per group (the documented alternative for counts)."""
    df = pd.DataFrame({"group": d.groups.to_numpy(), "o": d.y * (d.trials if d.trials is not None else 1.0),
                       "e": mu * (d.trials if d.trials is not None else 1.0)})
    if family == "binomial":
        p = mu
        df["v"] = (d.trials if d.trials is not None else 1.0) * p * (1 - p) * dispersion
    else:
        df["v"] = mu * dispersion
    agg = df.groupby("group", sort=True)[["o", "e", "v"]].sum()
    ratio = agg["o"] / agg["e"]
    s2 = agg["v"] / agg["e"] ** 2
    tau2 = dersimonian_laird_tau2(ratio.to_numpy(), s2.to_numpy(), 1.0)
    b = tau2 / (tau2 + s2) if tau2 > 0 else 0.0 * s2
    shrunk = 1 + b * (ratio - 1)
    post_sd = np.sqrt(b * s2)
    re = pd.DataFrame({"group": agg.index, "effect": np.log(shrunk.clip(lower=1e-9)).to_numpy(),
                       "std_error": (post_sd / shrunk.clip(lower=1e-9)).to_numpy()})
    return _finish_groups(re, True)


def fit_success_factors(data: pd.DataFrame, outcome: str, factors: list[str], *, family: str = "binomial",
                        exposure: str | None = None, groups: str | None = None, multilevel: bool = True,
                        references: dict | None = None, marginal_draws: int = 200,
                        missing: str = "drop") -> SuccessFactors:
    """Fit a success-factor regression on one row per school.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per school.
    outcome : str
        Outcome column: 0/1 (binomial), count of successes (binomial with
        ``exposure`` = trials), count (poisson, negative_binomial), number (gaussian).
    factors : list of str
        Factor columns: booleans, numbers or strings (categorical).
    family : {"binomial", "poisson", "negative_binomial", "gaussian"}
        Model family (logit, log and identity links).
    exposure : str, optional
        Pupils for counts (log offset), trials for a binomial count.
    groups : str, optional
        Grouping column (e.g. ``code_academie``): cluster-robust intervals, and a
        multilevel variant when ``multilevel`` is true.
    multilevel : bool
        Also fit the random-intercept variant (or its documented alternative).
    references : dict, optional
        Reference level per categorical factor (overrides :data:`DEFAULT_REFERENCES`).
    marginal_draws : int
        Parameter draws for the intervals of the marginal effects.
    missing : {"drop", "raise"}
        Rows with a missing value in the outcome, a factor, the exposure or the
        groups: left out and reported (``"drop"``, the default, as statsmodels'
        formula interface does: ``result.missing``, a warning, rows lost per
        group), or listed in a DataError (``"raise"``).

    Returns
    -------
    SuccessFactors
        ``.table`` with ``term, estimate, std_error, ci_low, ci_high, p_value, ratio``.

    Raises
    ------
    DataError
        Unknown column, missing values (``missing="raise"``), constant factor, outcome out of range,
        perfect collinearity, or a model that cannot be estimated.
    """
    d = prepare_design(data, outcome, factors, family=family, exposure=exposure, groups=groups,
                       references=references, missing=missing)
    notes = ([d.missing["text"]] if d.missing else []) + _check_support(d, family, groups)
    cluster = groups is not None and d.groups.nunique() >= 2
    if groups is not None and not cluster:
        notes.append(f"Un seul groupe « {groups} » dans les données : ni intervalles robustes par groupe ni modèle "
                     "multiniveau ; les erreurs standard sont celles du modèle.")
    cov_kw = {}
    if cluster:
        codes = pd.factorize(d.groups, sort=True)[0]
        cov_kw = {"cov_type": "cluster", "cov_kwds": {"groups": codes}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res, params, cov, used, extra = _fit_main(d, family, cov_kw)
        except (np.linalg.LinAlgError, ValueError, OverflowError, FloatingPointError) as exc:
            raise DataError.single(_SOURCE, "le modèle n'a pas pu être estimé (" + type(exc).__name__ + ") : "
                                   "vérifiez qu'aucun facteur ne sépare parfaitement les établissements et que "
                                   "les facteurs ne sont pas redondants.") from None
    for w in caught:
        name = type(w.message).__name__ if isinstance(w.message, Warning) else str(w.category)
        if "Separation" in name or "separation" in str(w.message):
            notes.append("Séparation parfaite ou quasi parfaite détectée : un facteur (ou une combinaison) prédit "
                         "exactement le résultat ; les rapports concernés sont infinis et ne doivent pas être lus.")
        elif "Convergence" in name:
            notes.append("L'estimation n'a pas complètement convergé : lisez les résultats avec prudence "
                         "(facteurs trop nombreux ou trop liés ?).")
    names = list(d.X.columns)
    bse = np.sqrt(np.clip(np.diag(cov.loc[names, names].to_numpy()), 0, None))
    zstat = params.to_numpy() / np.where(bse > 0, bse, np.nan)
    if used == "gaussian" and not cluster:
        pvals = res.pvalues[names].to_numpy()
        tq = stats.t.ppf(0.975, res.df_resid)
        table = _effects_table(names, params, bse, pvals, ratio=False, z=tq)
    else:
        pvals = 2 * stats.norm.sf(np.abs(zstat))
        table = _effects_table(names, params, bse, pvals, ratio=used != "gaussian")
    if not np.isfinite(table["std_error"]).all():
        raise DataError.single(_SOURCE, "le modèle n'a pas pu être estimé : intervalles indéterminés (facteur "
                                        "qui sépare parfaitement les établissements ou redondance entre facteurs).")
    if used == "binomial":
        big = table[(table["term"] != "Intercept") & ((table["estimate"].abs() > 8) | (table["std_error"] > 10))]
        if len(big):
            notes.append("Séparation probable : " + ", ".join(f"« {t} »" for t in big["label"])
                         + " ont des effets démesurés ; ces facteurs prédisent presque parfaitement le résultat.")

    diagnostics: dict = {"n": int(len(d.y)), "n_missing": d.missing["n_dropped"] if d.missing else 0,
                         "n_groups": int(d.groups.nunique()) if groups else None,
                         "n_parameters": len(names), **extra}
    vif = _vif(d.X)
    diagnostics["vif"] = vif
    for r in vif.itertuples():
        if r.vif > 10:
            notes.append(f"Colinéarité forte : « {r.label} » est presque entièrement expliqué par les autres facteurs "
                         f"(VIF = {fmt_fr(r.vif, 1)}) ; son effet propre ne peut pas être isolé.")
        elif r.vif > 5:
            notes.append(f"Colinéarité modérée pour « {r.label} » (VIF = {fmt_fr(r.vif, 1)}) : intervalle élargi.")
    if extra.get("quasi"):
        notes.append(f"Les données varient davantage que le modèle ne le prévoit (dispersion = "
                     f"{fmt_fr(extra['dispersion'], 2)}) : intervalles élargis en conséquence (quasi-vraisemblance) ; "
                     "le modèle binomial négatif est une alternative.")
        used_label = "quasi-" + used
    else:
        used_label = used
    if cluster and extra.get("dispersion", 1.0) > 1.5:
        notes.append(f"Sur-dispersion (dispersion = {fmt_fr(extra['dispersion'], 2)}) : les intervalles robustes par "
                     "groupe en tiennent compte.")
    if d.X.shape[0] <= 200000:
        diagnostics.update(_influence(res, d.X.index))
        if np.isfinite(diagnostics.get("cooks_max", np.nan)) and diagnostics["cooks_max"] > 1:
            notes.append("Un petit nombre d'établissements pèse fortement sur les résultats (distance de Cook > 1) : "
                         "vérifiez leurs données avant de conclure.")

    me = _marginal_effects(d, used, params, cov.loc[names, names], outcome, exposure, n_draws=marginal_draws)

    ml = ml_method = gfx = None
    if cluster and multilevel:
        ml, ml_method, gfx, ml_notes = _multilevel(d, used, groups)
        notes += ml_notes
        if gfx is None:
            mu = _inverse_link(used, d.X.to_numpy() @ params.to_numpy()
                               + (d.offset if d.offset is not None else 0.0))
            if used == "gaussian":
                gfx = None
            else:
                disp = 1.0
                if used == "poisson" or (used == "binomial" and d.trials is not None):
                    disp = max(1.0, extra.get("dispersion", 1.0))
                elif used == "negative_binomial":
                    mu_disp = 1 + extra["alpha"] * mu
                    disp = mu_disp
                gfx = _eb_group_effects(d, used, mu, disp)
                ml_method = ("effets de groupe par rapport observé / attendu rétréci (Bayes empirique) : "
                             "statsmodels n'offre pas de modèle multiniveau de comptage avec exposition")
    table.attrs["famille"] = used_label
    table.attrs["erreurs_standard"] = "robustes par groupe" if cluster else "modèle"
    return SuccessFactors(table=table, family=used, requested_family=family, outcome=outcome, factors=list(factors),
                          exposure=exposure, groups=groups, cov_type="cluster" if cluster else "model",
                          marginal_effects=me, diagnostics=diagnostics, warnings=list(dict.fromkeys(notes)),
                          multilevel=ml, multilevel_method=ml_method, group_effects=gfx, model=res,
                          missing=d.missing)


# ---------------------------------------------------------------------------
# report helpers (used by notebooks/reports/facteurs_de_succes.ipynb)
# ---------------------------------------------------------------------------

#: Factors of the success models (columns of etablissements.parquet).
DEFAULT_FACTORS = ("referent", "formation", "convention", "ips_10", "rural", "niveau", "secteur")

#: What could confound each association (shown in the notebook).
CONFOUNDERS = [
    "Un établissement déjà engagé dans le numérique désigne plus volontiers un référent et demande des "
    "formations : le référent peut être un signe de cet engagement autant que sa cause.",
    "Les collectivités qui signent une convention investissent souvent aussi dans l'équipement et l'ENT : "
    "l'effet de la convention peut refléter ces investissements.",
    "L'ancienneté du projet ENT et la date d'inscription au GAR ne sont pas dans le modèle : les établissements "
    "inscrits depuis longtemps ont eu plus de temps pour développer les usages.",
    "L'IPS, la ruralité, le niveau et le secteur décrivent le contexte ; leurs effets ne disent rien de la qualité "
    "du travail des équipes.",
    "Les données du CRM peuvent être incomplètes : un référent ou une formation non saisi affaiblit l'association "
    "mesurée.",
]


def usable_factors(data: pd.DataFrame, factors: list[str]) -> tuple[list[str], list[str]]:
    """Split factors into those that vary in ``data`` and those that are absent or constant."""
    keep, drop = [], []
    for f in factors:
        if f in data.columns and data[f].dropna().nunique() > 1:
            keep.append(f)
        else:
            drop.append(f)
    return keep, drop


def model_frames(schools: pd.DataFrame, yearly: pd.DataFrame | None, audience: str, territoire: str,
                 factors: list[str], annee: str = "") -> dict:
    """Data of the three success models for one audience's territory (its :meth:`Audience.scope`).

    Returns
    -------
    dict
        ``adoption`` (one row per school), ``usage`` and ``mois`` (one row per
        registered school for school year ``annee``, latest by default, registered
        before its start), ``groups`` (``Audience.model_groups``: académie nationally,
        département inside a territory), ``annee``, ``excluded`` (rows dropped for missing values).
    """
    from .territories import get_audience
    aud = get_audience(audience, territorial=True)
    scope, groups = aud.scope(schools, territoire), aud.model_groups
    scope = scope[scope["niveau"].isin(["ecole", "college", "lycee"])]
    cols = list(dict.fromkeys([*factors, groups]))
    adoption = scope.dropna(subset=[c for c in cols if c in scope.columns])
    out = {"groups": groups, "adoption": adoption, "excluded": {"adoption": len(scope) - len(adoption)}}
    if yearly is not None and len(yearly):
        years = sorted(yearly["annee_scolaire"].dropna().astype(str).unique())
        annee = annee or years[-1]
        y = yearly[(yearly["annee_scolaire"].astype(str) == annee) & yearly["uai"].isin(scope["uai"])]
        start = pd.Timestamp(f"{annee[:4]}-09-01")
        y = y[y["inscrit"].fillna(False).astype(bool) & (pd.to_datetime(y["date_inscription"]) < start)]
        y = y[pd.to_numeric(y["nombre_eleves"], errors="coerce").fillna(0) > 0]
        use = y.dropna(subset=[c for c in [*cols, "acces", "nombre_eleves"] if c in y.columns])
        out["usage"] = use
        # trials of the share of active months: months of the school year covered by the data (≤ 12)
        covered = int(min(12, pd.to_numeric(yearly.loc[yearly["annee_scolaire"].astype(str) == annee,
                                                       "mois_actifs"], errors="coerce").max() or 0))
        mois = use.assign(mois_annee=max(covered, 1))
        out["mois"] = mois[mois["mois_actifs"] <= mois["mois_annee"]]
        out["excluded"]["usage"] = len(y) - len(use)
    out["annee"] = annee
    return out


def effects_display(result: SuccessFactors) -> pd.DataFrame:
    """Table of effects for display (French column names, ratios with intervals)."""
    t = result.table[result.table["term"] != "Intercept"]
    ratio = result.family != "gaussian"
    name = {"binomial": "Rapport de cotes", "gaussian": "Effet"}.get(result.family, "Rapport de taux")
    est = t["ratio"] if ratio else t["estimate"]
    lo = t["ratio_low"] if ratio else t["ci_low"]
    hi = t["ratio_high"] if ratio else t["ci_high"]
    return pd.DataFrame({"Facteur": t["label"], name: est.round(2), "IC 95 % bas": lo.round(2),
                         "IC 95 % haut": hi.round(2), "p": t["p_value"].map(lambda p: "< 0,001" if p < 0.001
                                                                             else fmt_fr(p, 3))})


def vif_display(result: SuccessFactors) -> pd.DataFrame:
    """VIF table with a plain reading."""
    v = result.diagnostics["vif"]
    reading = np.where(v["vif"] > 10, "forte colinéarité", np.where(v["vif"] > 5, "colinéarité modérée", "correct"))
    return pd.DataFrame({"Facteur": v["label"], "VIF": v["vif"].round(2), "Lecture": reading})
