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


def _dnma_monthly(ctx: Context) -> tuple[pd.DataFrame, str]:
    """Return the monthly ENT audience (published layout first, else the deprecated file) and its source."""
    if "dnma_monthly" not in ctx._cache:
        from ..sources.dnma import monthly_audience

        weekly = ctx.frame("dnma/profils") if ctx.has("dnma/profils") else None
        ctx._cache["dnma_monthly"] = monthly_audience(ctx.ds.path, weekly)
    return ctx._cache["dnma_monthly"]


@rule("incoherence_dnma", "Accès GAR sans visite de l'ENT", "avertissement", needs=("gar/acces",),
      any_of=("dnma/profils", "dnma/audience"),
      explication="Des accès GAR sont comptés un mois où la mesure d'audience de l'ENT (DNMA) ne relève aucune "
                  "visite dans l'établissement ; or on passe par l'ENT pour accéder au GAR.",
      action="Vérifier le rattachement de l'établissement dans la mesure d'audience (marqueur de l'ENT) ou "
             "l'UAI des accès.")
def incoherence_dnma(ctx: Context) -> pd.DataFrame:
    """Flag school-months with GAR accès but zero ENT visits measured (weeks split into months by days)."""
    m = ctx.monthly
    m = m[m["acces"] > 0]
    got = _dnma_monthly(ctx)
    if got is None:
        return concat_findings([])
    au, source = got
    keep = ctx.known(au["uai"]) & (au["visites"] == 0).fillna(False).to_numpy(bool)
    z = au.loc[keep, ["uai", "mois", "ligne"]].rename(columns={"ligne": "ligne_dnma"})
    z = z.drop_duplicates(["uai", "mois"])
    j = m.merge(z, on=["uai", "mois"], how="inner")
    msg = (j["mois"] + " : " + j["acces"].map(fmt_int).astype("string") + " accès GAR mais aucune visite de l'ENT "
           "mesurée : vérifier le rattachement de l'établissement dans la mesure d'audience.")
    return make_findings("incoherence_dnma", "avertissement", source, msg,
                         ligne=j["ligne_dnma"], uai=j["uai"], mois=j["mois"])


#: ENT resource visits (or GAR accès) in a school year from which a one-sided school is a finding.
ENT_GAR_MIN = 20


@rule("ressources_ent_gar", "Ressources vues dans l'ENT sans accès GAR (ou l'inverse)", "avertissement",
      needs=("gar/acces", "dnma/services"),
      explication="Sur une année scolaire, l'ENT d'un établissement mesure des visites aux services de ressources "
                  "(manuel numérique, ressources multimédia, d'entraînement, dictionnaires…) alors que le GAR ne "
                  "compte aucun accès pour lui, ou l'inverse : le GAR compte des accès mais l'ENT, mesuré, ne "
                  "montre aucune visite de ressource.",
      action="Premier cas : les ressources passent sans doute hors du GAR (liens directs, comptes propres à "
             "l'éditeur) ; vérifier l'inscription au GAR et les abonnements. Second cas : vérifier le médiacentre "
             "(ÉduGAR ne passe pas par l'ENT) et le marquage des services de ressources dans la mesure d'audience.")
def ressources_ent_gar(ctx: Context) -> pd.DataFrame:
    """Flag school years with ENT resource visits but no GAR accès, or GAR accès but no ENT resource visit."""
    from ..dnma import school_year_crossing

    sv = ctx.frame("dnma/services")
    x = school_year_crossing(sv, ctx.monthly)
    x = x[ctx.known(x["uai"])]
    ent_only = (x["visites_ressources_ent"] >= ENT_GAR_MIN) & (x["acces_gar"] == 0)
    gar_only = (x["acces_gar"] >= ENT_GAR_MIN) & (x["visites_ressources_ent"] == 0)
    a, b = x[ent_only], x[gar_only]
    msg_a = (a["annee_scolaire"] + " : " + a["visites_ressources_ent"].map(fmt_int).astype("string")
             + " visites de ressources dans l'ENT mais aucun accès GAR : les ressources passent sans doute hors "
             "du GAR ; vérifier l'inscription au GAR et les abonnements.")
    msg_b = (b["annee_scolaire"] + " : " + b["acces_gar"].map(fmt_int).astype("string")
             + " accès GAR mais aucune visite de ressource mesurée dans l'ENT : vérifier le médiacentre (ÉduGAR) "
             "et le marquage des services de ressources dans la mesure d'audience.")
    src = source_path("dnma/services")
    return concat_findings([
        make_findings("ressources_ent_gar", "avertissement", src, msg_a, ligne=a["ligne"], uai=a["uai"]),
        make_findings("ressources_ent_gar", "avertissement", src, msg_b, ligne=b["ligne"], uai=b["uai"])])


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


@rule("rupture_serie", "Rupture de série", "avertissement", any_of=("gar/acces", "dnma/services", "dnma/profils"),
      explication="Les accès mensuels d'un établissement bondissent ou s'effondrent par rapport à son propre "
                  "historique, une fois le rythme saisonnier pris en compte (les vacances ne comptent pas) ; ou "
                  "une mesure de l'audience des ENT (DNMA) cesse d'être relevée partout (comme visites_notes).",
      action="Vérifier le mois concerné : double chargement, robot ou test de charge pour un pic ; panne, "
             "changement d'ENT ou perte de rattachement pour une chute. Une mesure DNMA arrêtée ne se lit pas "
             "comme un abandon du service : l'exclure des comparaisons dans le temps.")
def rupture_serie(ctx: Context) -> pd.DataFrame:
    """Flag school-months far above or below the school's seasonal expectation, and DNMA measures that stop."""
    out = [_dnma_breaks(ctx, name) for name in ("dnma/services", "dnma/profils") if ctx.has(name)]
    if not ctx.has("gar/acces") or not len(ctx.monthly):
        return concat_findings(out)
    sm = series_model(ctx)
    r, c = sm.breaks()
    keep = ~uncertain_months(ctx, sm.uais[r], np.array(sm.months, dtype=object)[c])
    r, c = r[keep], c[keep]
    if not len(r):
        return concat_findings(out)
    uai = sm.uais[r]
    mois = np.array(sm.months, dtype=object)[c]
    obs, exp = sm.x[r, c], sm.expected[r, c]
    lines = ctx.monthly.set_index(["uai", "mois"])["ligne"]
    ligne = lines.reindex(pd.MultiIndex.from_arrays([uai, mois])).to_numpy()
    kind = np.where(obs > exp, "pic", "chute")
    msg = pd.Series([f"{m} : {k} d'accès ({fmt_int(o)} pour environ {fmt_int(round(e))} attendus d'après "
                     "l'historique de l'établissement et la saison) : vérifier les données du mois."
                     for m, k, o, e in zip(mois, kind, obs, exp)], dtype="string")
    out.append(make_findings("rupture_serie", "avertissement", source_path("gar/acces"), msg, ligne=ligne,
                             uai=uai, mois=mois))
    return concat_findings(out)


#: A DNMA measure has stopped when it was positive for at least this many weeks, then zero for at least …
DNMA_BREAK_MIN_WEEKS = 8
#: … this many consecutive weeks (outside July and August) up to the last week of the file.
DNMA_BREAK_ZERO_WEEKS = 4


def _dnma_breaks(ctx: Context, name: str) -> pd.DataFrame:
    """Flag ``visites_*`` measures of a DNMA file whose national weekly total falls to zero and stays there."""
    df = ctx.frame(name)
    cols = [c for c in df.columns if c.startswith("visites_")]
    if not cols or not len(df):
        return concat_findings([])
    weekly = df.groupby("debutsemaine")[cols].sum(min_count=1).sort_index()
    first_line = pd.Series(df.index.to_numpy(), index=df["debutsemaine"].to_numpy()).groupby(level=0).min()
    rows = []
    for c in cols:
        v = weekly[c].fillna(0).to_numpy(float)
        pos = np.flatnonzero(v > 0)
        if len(pos) < DNMA_BREAK_MIN_WEEKS:
            continue
        after = weekly.index[pos[-1] + 1:]
        if int((~after.month.isin([7, 8])).sum()) < DNMA_BREAK_ZERO_WEEKS:  # a summer lull is no break
            continue
        week = weekly.index[pos[-1] + 1]
        rows.append((c, week, int(first_line[week]), v[pos].sum()))
    if not rows:
        return concat_findings([])
    msg = pd.Series([f"« {c} » : plus aucune visite mesurée dans aucun établissement depuis la semaine du "
                     f"{w:%d/%m/%Y} (après {fmt_int(t)} visites auparavant) : la mesure a cessé d'être relevée "
                     "(rupture de série) ; ne pas lire cette chute comme un abandon du service."
                     for c, w, _, t in rows],
                    dtype="string")
    return make_findings("rupture_serie", "avertissement", source_path(name), msg,
                         ligne=[r[2] for r in rows], mois=[f"{r[1]:%Y-%m}" for r in rows])


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
