"""Rules on usage: accès against inscription, subscriptions, ENT audience and each school's own series."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .context import Context, fast_isin, fmt_int, source_path
from .registry import concat_findings, make_findings, rule
from .rules_values import active_subscriptions

#: A month whose seasonal factor is below this is a holiday month (summer): never a collapse or a gap.
HOLIDAY_FACTOR = 0.5
#: Minimum number of active months for a school's series to be judged.
MIN_ACTIVE_MONTHS = 6
#: Spike / collapse: observed over expected beyond this factor (either way)…
BREAK_FACTOR = 5.0
#: … and beyond this many robust deviations of the school's own log ratios…
BREAK_MADS = 6.0
#: … and by at least this many accès.
BREAK_MIN_DIFF = 50.0
#: A missing month is a gap when the school was expected to have at least this many accès.
GAP_MIN_EXPECTED = 40.0


def _months_between(a: str, b: str) -> list[str]:
    return pd.period_range(a, b, freq="M").strftime("%Y-%m").tolist()


@rule("acces_avant_inscription", "Accès avant l'inscription", "erreur", needs=("gar/acces", "gar/etablissements"),
      explication="Des accès sont comptés un mois antérieur au mois d'inscription de l'établissement au GAR "
                  "(ou pour un établissement qui n'y est pas inscrit).",
      action="Vérifier la date d'inscription de l'établissement (gar/etablissements.csv) ou l'UAI des accès.")
def acces_avant_inscription(ctx: Context) -> pd.DataFrame:
    """Flag school-months with accès before the school's inscription month."""
    m = ctx.monthly
    et = ctx.frame("gar/etablissements")
    insc = et.dropna(subset=["date_inscription"]).groupby("uai")["date_inscription"].min()
    first = m["uai"].map(insc.dt.strftime("%Y-%m")).astype("string")
    before = (first.notna() & (m["mois"] < first)).to_numpy(bool)
    sub = m.loc[before]
    msg = (sub["mois"] + " : " + sub["acces"].map(fmt_int).astype("string") + " accès avant l'inscription au GAR ("
           + first[before] + ") : vérifier la date d'inscription ou l'UAI des accès.")
    out = [make_findings("acces_avant_inscription", "erreur", source_path("gar/acces"), msg, ligne=sub["ligne"],
                         uai=sub["uai"], mois=sub["mois"])]
    never = m.loc[first.isna().to_numpy(bool) & ~fast_isin(m["uai"], et["uai"])]
    if len(never):
        g = never.groupby("uai").agg(ligne=("ligne", "min"), acces=("acces", "sum"), debut=("mois", "min"),
                                     fin=("mois", "max")).reset_index()
        msg = ("Accès de " + g["debut"] + " à " + g["fin"] + " (" + g["acces"].map(fmt_int).astype("string")
               + ") pour un établissement absent des inscriptions au GAR : compléter gar/etablissements.csv "
               "ou vérifier l'UAI.")
        out.append(make_findings("acces_avant_inscription", "erreur", source_path("gar/acces"), msg,
                                 ligne=g["ligne"], uai=g["uai"]))
    return concat_findings(out)


@rule("acces_sans_abonnement", "Accès sans abonnement actif", "avertissement", needs=("gar/acces", "gar/abonnements"),
      explication="Des accès à une ressource sont comptés un mois où l'établissement n'a aucun abonnement actif "
                  "à cette ressource.",
      action="Vérifier les dates de l'abonnement ou l'identifiant de ressource des accès (ressource gratuite mal "
             "déclarée, abonnement non saisi).")
def acces_sans_abonnement(ctx: Context) -> pd.DataFrame:
    """Flag (school, resource, month) accès without an active subscription."""
    a = ctx.acces_clean
    if not len(a):
        return concat_findings([])
    g = a.assign(_l=a.index).groupby(["uai", "id_ressource", "mois"], observed=True) \
        .agg(acces=("acces", "sum"), ligne=("_l", "min")).reset_index()
    j = active_subscriptions(ctx, g)
    bad = j[(j["actifs"] == 0) & (j["acces"] > 0) & ~j["incertain"]]
    msg = (bad["mois"] + " : " + bad["acces"].map(fmt_int).astype("string") + " accès à la ressource « "
           + bad["id_ressource"] + " » sans abonnement actif de l'établissement : vérifier les dates de "
           "l'abonnement ou l'identifiant de ressource.")
    return make_findings("acces_sans_abonnement", "avertissement", source_path("gar/acces"), msg,
                         ligne=bad["ligne"], uai=bad["uai"], mois=bad["mois"], id_ressource=bad["id_ressource"])


@rule("incoherence_dnma", "Accès GAR sans visite de l'ENT", "avertissement", needs=("gar/acces", "dnma/audience"),
      explication="Des accès GAR sont comptés un mois où la mesure d'audience de l'ENT (DNMA) ne relève aucune "
                  "visite dans l'établissement ; or on passe par l'ENT pour accéder au GAR.",
      action="Vérifier le rattachement de l'établissement dans la mesure d'audience (marqueur de l'ENT) ou "
             "l'UAI des accès.")
def incoherence_dnma(ctx: Context) -> pd.DataFrame:
    """Flag school-months with GAR accès but zero ENT visits measured."""
    m = ctx.monthly
    m = m[m["acces"] > 0]
    au = ctx.frame("dnma/audience")
    keep = ctx.uai_known("dnma/audience") & (au["visites"] == 0).fillna(False).to_numpy(bool)
    z = au.loc[keep, ["uai", "mois"]].assign(ligne_dnma=au.index[keep])
    z = z.drop_duplicates(["uai", "mois"])
    j = m.merge(z, on=["uai", "mois"], how="inner")
    msg = (j["mois"] + " : " + j["acces"].map(fmt_int).astype("string") + " accès GAR mais aucune visite de l'ENT "
           "mesurée : vérifier le rattachement de l'établissement dans la mesure d'audience.")
    return make_findings("incoherence_dnma", "avertissement", source_path("dnma/audience"), msg,
                         ligne=j["ligne_dnma"], uai=j["uai"], mois=j["mois"])


class SeriesModel:
    """Expected monthly accès of each school: its own level × the seasonal pattern.

    The seasonal factor of a month is the median, over schools with a long
    enough series, of their accès that month divided by their median active
    month. A school's level is the median of its accès divided by the seasonal
    factor over its active term-time months. Expected = level × factor.

    Parameters
    ----------
    monthly : pandas.DataFrame
        ``uai, mois, acces, ligne`` (one row per school-month with accès).
    """

    def __init__(self, monthly: pd.DataFrame):
        self.months = sorted(monthly["mois"].unique().tolist())
        if self.months:
            self.months = _months_between(self.months[0], self.months[-1])
        self.uais, ucode = np.unique(monthly["uai"].to_numpy(str), return_inverse=True) if len(monthly) \
            else (np.array([], dtype=str), np.array([], dtype=int))
        mpos = {m: i for i, m in enumerate(self.months)}
        mcode = monthly["mois"].map(mpos).to_numpy(int) if len(monthly) else np.array([], dtype=int)
        n_u, n_m = len(self.uais), len(self.months)
        x = np.zeros((n_u, n_m))
        np.add.at(x, (ucode, mcode), monthly["acces"].to_numpy(float))
        present = np.zeros((n_u, n_m), dtype=bool)
        present[ucode, mcode] = True
        self.x = x
        self.present = present
        self.active = x > 0
        idx = np.arange(n_m)
        self.first = np.where(self.active.any(1), np.where(self.active, idx, n_m).min(1), -1)
        self.last = np.where(self.active.any(1), np.where(self.active, idx, -1).max(1), -1)
        self.n_active = self.active.sum(1)
        self.inside = (idx[None, :] >= self.first[:, None]) & (idx[None, :] <= self.last[:, None])
        self.judged = self.n_active >= MIN_ACTIVE_MONTHS
        # seasonal factor
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: schools without term months
            med = np.nanmedian(np.where(self.active, x, np.nan), axis=1) if n_u else np.array([])
            norm = np.where(self.inside & self.judged[:, None], x / med[:, None], np.nan)
            self.season = np.nan_to_num(np.nanmedian(norm, axis=0), nan=0.0) if n_u else np.zeros(n_m)
            term = self.season >= HOLIDAY_FACTOR
            ratio = np.where(self.active & term[None, :], x / np.where(self.season > 0, self.season, np.nan), np.nan)
            self.level = np.nanmedian(ratio, axis=1) if n_u else np.array([])
            self.expected = self.level[:, None] * self.season[None, :]
            logr = np.log(np.where(self.active & term[None, :], x / self.expected, np.nan))
            dev = np.abs(logr - np.nanmedian(logr, axis=1)[:, None])
            self.mad = np.nan_to_num(1.4826 * np.nanmedian(dev, axis=1), nan=0.0)
        self.term = term

    def breaks(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (row, month) positions of spikes and collapses."""
        with np.errstate(invalid="ignore", divide="ignore"):
            e = self.expected
            logr = np.log(self.x / e)
            limit = np.maximum(np.log(BREAK_FACTOR), BREAK_MADS * self.mad)[:, None]
            spike = self.active & (logr > limit) & (self.x - e >= BREAK_MIN_DIFF)
            collapse = self.active & self.term[None, :] & (logr < -limit) & (e - self.x >= BREAK_MIN_DIFF)
            hit = (spike | collapse) & self.judged[:, None] & np.isfinite(e)
        return np.nonzero(hit)

    def gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (row, month) positions of months missing between active months."""
        with np.errstate(invalid="ignore"):
            hit = (~self.present & self.inside & self.term[None, :] & self.judged[:, None]
                   & (self.expected >= GAP_MIN_EXPECTED))
        return np.nonzero(hit)


def uncertain_months(ctx: Context, uai, mois) -> np.ndarray:
    """Return which (school, month) pairs have an accès line left out for its form (count unknown)."""
    inv = ctx.invalid("gar/acces")
    if not inv.any():
        return np.zeros(len(uai), dtype=bool)
    a = ctx.frame("gar/acces").loc[inv, ["uai", "mois"]]
    pairs = set(zip(a["uai"].tolist(), a["mois"].tolist()))
    whole = set(a.loc[a["mois"].isna(), "uai"].dropna().tolist())
    return np.fromiter(((u, m) in pairs or u in whole for u, m in zip(uai, mois)), dtype=bool, count=len(uai))


def series_model(ctx: Context) -> SeriesModel:
    """Return the series model of the data directory (computed once)."""
    if not hasattr(ctx, "_series_model"):
        ctx._series_model = SeriesModel(ctx.monthly)
    return ctx._series_model


@rule("rupture_serie", "Rupture de série", "avertissement", needs=("gar/acces",),
      explication="Les accès mensuels d'un établissement bondissent ou s'effondrent par rapport à son propre "
                  "historique, une fois le rythme saisonnier pris en compte (les vacances ne comptent pas).",
      action="Vérifier le mois concerné : double chargement, robot ou test de charge pour un pic ; panne, "
             "changement d'ENT ou perte de rattachement pour une chute.")
def rupture_serie(ctx: Context) -> pd.DataFrame:
    """Flag school-months far above or below the school's seasonal expectation."""
    if not len(ctx.monthly):
        return concat_findings([])
    sm = series_model(ctx)
    r, c = sm.breaks()
    keep = ~uncertain_months(ctx, sm.uais[r], np.array(sm.months, dtype=object)[c])
    r, c = r[keep], c[keep]
    if not len(r):
        return concat_findings([])
    uai = sm.uais[r]
    mois = np.array(sm.months, dtype=object)[c]
    obs, exp = sm.x[r, c], sm.expected[r, c]
    lines = ctx.monthly.set_index(["uai", "mois"])["ligne"]
    ligne = lines.reindex(pd.MultiIndex.from_arrays([uai, mois])).to_numpy()
    kind = np.where(obs > exp, "pic", "chute")
    msg = pd.Series([f"{m} : {k} d'accès ({fmt_int(o)} pour environ {fmt_int(round(e))} attendus d'après "
                     "l'historique de l'établissement et la saison) : vérifier les données du mois."
                     for m, k, o, e in zip(mois, kind, obs, exp)], dtype="string")
    return make_findings("rupture_serie", "avertissement", source_path("gar/acces"), msg, ligne=ligne,
                         uai=uai, mois=mois)


@rule("mois_manquant", "Mois manquant", "avertissement", needs=("gar/acces",),
      explication="Un mois sans aucun accès apparaît au milieu de la série d'un établissement qui en a "
                  "d'ordinaire beaucoup ce mois-là : c'est plus probablement une remontée manquante qu'un vrai zéro.",
      action="Vérifier que les accès du mois ont bien été transmis et chargés ; recharger le mois si besoin.")
def mois_manquant(ctx: Context) -> pd.DataFrame:
    """Flag months missing from a school's series between active months."""
    if not len(ctx.monthly):
        return concat_findings([])
    sm = series_model(ctx)
    r, c = sm.gaps()
    keep = ~uncertain_months(ctx, sm.uais[r], np.array(sm.months, dtype=object)[c])
    r, c = r[keep], c[keep]
    if not len(r):
        return concat_findings([])
    uai = sm.uais[r]
    mois = np.array(sm.months, dtype=object)[c]
    exp = sm.expected[r, c]
    msg = pd.Series([f"{m} : aucun accès alors qu'environ {fmt_int(round(e))} étaient attendus entre deux mois "
                     "actifs : vérifier que les accès du mois ont été transmis." for m, e in zip(mois, exp)],
                    dtype="string")
    return make_findings("mois_manquant", "avertissement", source_path("gar/acces"), msg, uai=uai, mois=mois)


__all__ = ["SeriesModel", "series_model"]
