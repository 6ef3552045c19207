"""ENT audience (DNMA) beside GAR use: processed tables and dashboard indicators.

Build side (:func:`dnma_tables`): the published weekly DNMA becomes
``dnma_mensuel`` (per school and month, weeks split by days) and
``croisement_ent_gar`` (per school and school year: ENT visits to the resource
services beside GAR accès, with a plain French finding when one side is
empty). No pupil-level data: every row is a school or coarser.

Dashboard side: functions taking ``(tables, audience, code)`` like those of
:mod:`gar_analysis.indicators` — :func:`ent_gar_crossing`, :func:`device_mix`
(the mobile share of pupils, teachers and parents) and :func:`parent_use`.
Values are unsuppressed; apply :func:`gar_analysis.disclosure.suppress` before display.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .disclosure import Spec, with_spec
from .sources.dnma import SERVICES_RESSOURCES, has_published, weekly_to_monthly
from .sources.dnma import load_dnma as _load_dnma

#: Profils of the device mix and their labels.
DEVICE_PROFILS = {"eleve": "élèves", "enseignant": "enseignants", "parent": "parents"}
DEVICES = {"ordinateur": "ordinateur", "smartphone": "smartphone", "tablette": "tablette",
           "autresappareil": "autres appareils"}
CONSTATS = {
    "ent_sans_gar": "Des ressources sont consultées depuis l'ENT, mais le GAR ne compte aucun accès : elles passent "
                    "sans doute hors du GAR (liens directs, comptes propres à l'éditeur).",
    "gar_sans_ent": "Le GAR compte des accès, mais l'ENT mesuré ne montre aucune visite de ressource : accès par "
                    "ÉduGAR, ou services de ressources non marqués dans la mesure d'audience.",
    "coherent": "Ressources vues des deux côtés (ENT et GAR).",
    "aucun": "Ni visite de ressource dans l'ENT ni accès GAR.",
    "gar_absent": "Accès GAR inconnus : les exports internes du GAR ne sont pas dans les données (seul le côté ENT "
                  "est montré).",
}
#: One-sided threshold (visits or accès in the school year), as the quality rule ``ressources_ent_gar``.
ENT_GAR_MIN = 20
TERRITORY_COLUMNS = ["code_departement", "code_academie", "code_region", "niveau", "secteur"]


#: Disclosure rules of the dashboard's ENT tables: ENT visits are people's acts (suppressed from 1 to
#: threshold − 1, with the shares built on them); counts of schools are institutional facts (shown).
_CROSSING = Spec(people=("visites_ressources_ent", "visites_manuel_numerique", "acces_gar"))
_DEVICES = Spec(people=("visites",), rates={"part_smartphone": "visites"}, implied=("part_smartphone",))
_PARENTS = Spec(people=("visites_parent", "utilisateurs_parent_semaine", "visites_globales"),
                rates={"part_parents": "visites_globales"}, implied=("part_parents",))


def _school_year(mois: pd.Series) -> pd.Series:
    y = mois.str.slice(0, 4).astype(int)
    start = np.where(mois.str.slice(5, 7).astype(int) >= 9, y, y - 1)
    return pd.Series([f"{s}-{s + 1}" for s in start], index=mois.index, dtype="string")


def resource_visits_monthly(services: pd.DataFrame) -> pd.DataFrame:
    """Return ENT visits to the resource services per school and month (``visites_ressources_ent``…)."""
    cols = [f"visites_{s}" for s in SERVICES_RESSOURCES if f"visites_{s}" in services.columns]
    m = weekly_to_monthly(services[["debutsemaine", "uai", *cols]])
    out = m[["uai", "mois", "ligne"]].copy()
    out["visites_manuel_numerique"] = m.get("visites_manuel_numerique", pd.Series(0.0, index=m.index)).fillna(0)
    out["visites_ressources_ent"] = m[cols].fillna(0).sum(axis=1) if cols else 0.0
    return out


def school_year_crossing(services: pd.DataFrame, gar_monthly: pd.DataFrame) -> pd.DataFrame:
    """Cross ENT resource visits and GAR accès per school and school year.

    Only the months the school is measured by the DNMA services dataset count
    on the GAR side, so that an unmeasured month never looks like a gap.

    Parameters
    ----------
    services : pandas.DataFrame
        The weekly services dataset (:func:`~gar_analysis.sources.dnma.read_dnma`).
    gar_monthly : pandas.DataFrame
        ``uai, mois, acces`` (GAR accès per school and month).

    Returns
    -------
    pandas.DataFrame
        ``uai, annee_scolaire, visites_ressources_ent, visites_manuel_numerique,
        acces_gar, mois_mesures, ligne`` (first line of the school's weeks in
        the services file), ``constat`` and ``explication``.
    """
    ent = resource_visits_monthly(services)
    gar = gar_monthly.groupby(["uai", "mois"], as_index=False)["acces"].sum()
    j = ent.merge(gar, on=["uai", "mois"], how="left")
    j["acces"] = j["acces"].fillna(0)
    j["annee_scolaire"] = _school_year(j["mois"].astype("string"))
    g = j.groupby(["uai", "annee_scolaire"]).agg(
        visites_ressources_ent=("visites_ressources_ent", "sum"),
        visites_manuel_numerique=("visites_manuel_numerique", "sum"),
        acces_gar=("acces", "sum"), mois_mesures=("mois", "nunique"), ligne=("ligne", "min")).reset_index()
    for c in ("visites_ressources_ent", "visites_manuel_numerique", "acces_gar"):
        g[c] = g[c].round().astype("int64")
    g["constat"] = np.select(
        [(g["visites_ressources_ent"] >= ENT_GAR_MIN) & (g["acces_gar"] == 0),
         (g["acces_gar"] >= ENT_GAR_MIN) & (g["visites_ressources_ent"] == 0),
         (g["visites_ressources_ent"] > 0) | (g["acces_gar"] > 0)],
        ["ent_sans_gar", "gar_sans_ent", "coherent"], "aucun")
    g["explication"] = g["constat"].map(CONSTATS)
    return g


def dnma_tables(data_dir: str | Path, terr: pd.DataFrame, gar_monthly: pd.DataFrame | None,
                loaded: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Return the processed DNMA tables of a data directory (empty frames without the published DNMA).

    Parameters
    ----------
    data_dir : str or Path
        The data directory.
    terr : pandas.DataFrame
        ``uai`` and the territory columns of every school.
    gar_monthly : pandas.DataFrame or None
        ``uai, mois, acces``; None without the internal GAR exports (then
        ``acces_gar`` is NA and every school's ``constat`` is ``gar_absent``).
    loaded : dict, optional
        DNMA datasets already read (``profils``… → frame), to avoid reading them twice.

    Returns
    -------
    dict
        ``dnma_mensuel`` and ``croisement_ent_gar``.
    """
    data_dir = Path(data_dir)
    loaded = dict(loaded or {})

    def load_dnma(_dir, name):
        if name not in loaded:
            loaded[name] = _load_dnma(_dir, name)
        return loaded[name]

    mensuel = pd.DataFrame(columns=["uai", "mois"])
    crossing = pd.DataFrame(columns=["uai", "annee_scolaire"])
    if has_published(data_dir, "profils"):
        w = load_dnma(data_dir, "profils")
        keep = ["debutsemaine", "uai", *[c for c in w.columns if c.startswith(("visites_", "utilisateurs_"))]]
        m = weekly_to_monthly(w[keep]).drop(columns=["ligne"])
        mensuel = m
        if has_published(data_dir, "profils_appareils"):
            pa = load_dnma(data_dir, "profils_appareils")
            cols = [c for c in pa.columns if c.startswith("visites_")]
            mp = weekly_to_monthly(pa[["debutsemaine", "uai", *cols]]).drop(columns=["ligne", "jours_mesures"])
            mensuel = mensuel.merge(mp, on=["uai", "mois"], how="left")
    if has_published(data_dir, "services"):
        sv = load_dnma(data_dir, "services")
        res = resource_visits_monthly(sv).drop(columns=["ligne"])
        mensuel = mensuel.merge(res, on=["uai", "mois"], how="outer") if len(mensuel) else res
        if gar_monthly is None:
            none = pd.DataFrame({"uai": [], "mois": [], "acces": []})
            crossing = school_year_crossing(sv, none).drop(columns=["ligne"])
            crossing["acces_gar"] = pd.Series(pd.NA, index=crossing.index, dtype="Int64")
            crossing["constat"] = "gar_absent"
            crossing["explication"] = CONSTATS["gar_absent"]
        else:
            crossing = school_year_crossing(sv, gar_monthly).drop(columns=["ligne"])
    if len(mensuel):
        vis = [c for c in mensuel.columns if c.startswith("visites_")]
        mensuel[vis] = mensuel[vis].round().astype("Int64")
        mensuel["annee_scolaire"] = _school_year(mensuel["mois"].astype("string"))
    terr = terr.drop_duplicates("uai")
    mensuel = mensuel.merge(terr, on="uai", how="left", validate="many_to_one")
    crossing = crossing.merge(terr, on="uai", how="left", validate="many_to_one")
    return {"dnma_mensuel": mensuel.reset_index(drop=True), "croisement_ent_gar": crossing.reset_index(drop=True)}


# --------------------------------------------------------------------------- dashboard indicators

def _table(tables, name: str) -> pd.DataFrame:
    from .indicators import _tables

    t = _tables(tables)
    try:
        return t[name]
    except Exception:  # an older build without DNMA tables
        return pd.DataFrame()


def _scope(df: pd.DataFrame, audience: str, code: str) -> pd.DataFrame:
    from .indicators import select

    if not len(df) or "code_academie" not in df.columns:
        return df.iloc[:0]
    return select(df, audience, code)


def _last_year(df: pd.DataFrame) -> pd.DataFrame:
    if not len(df):
        return df
    years = df["annee_scolaire"].dropna().astype(str)
    return df[df["annee_scolaire"].astype(str) == years.max()] if len(years) else df.iloc[:0]


def dnma_available(tables) -> bool:
    """Return whether the processed tables hold the published DNMA."""
    return len(_table(tables, "dnma_mensuel")) > 0


def ent_gar_crossing(tables, audience: str, code: str) -> pd.DataFrame:
    """Return ENT resource visits beside GAR accès for the territory's schools (latest school year).

    Returns
    -------
    pandas.DataFrame
        One row per finding category (``constat``: ``ent_sans_gar``,
        ``gar_sans_ent``, ``coherent``, ``aucun``): ``libelle`` (French),
        ``etablissements``, ``visites_ressources_ent``, ``visites_manuel_numerique``,
        ``acces_gar``; then a ``total`` row. Empty without DNMA services.
    """
    x = _last_year(_scope(_table(tables, "croisement_ent_gar"), audience, code))
    cols = ["constat", "libelle", "etablissements", "visites_ressources_ent", "visites_manuel_numerique", "acces_gar"]
    if not len(x):
        return with_spec(pd.DataFrame(columns=cols), _CROSSING)
    g = x.groupby("constat").agg(etablissements=("uai", "nunique"),
                                 visites_ressources_ent=("visites_ressources_ent", "sum"),
                                 visites_manuel_numerique=("visites_manuel_numerique", "sum"),
                                 acces_gar=("acces_gar", "sum"))
    absent = bool((x["constat"] == "gar_absent").all())
    g = g.reindex(["gar_absent"] if absent else [c for c in CONSTATS if c != "gar_absent"], fill_value=0)
    g["libelle"] = [CONSTATS[c] for c in g.index]
    g.loc["total"] = [x["uai"].nunique(), x["visites_ressources_ent"].sum(), x["visites_manuel_numerique"].sum(),
                      x["acces_gar"].sum(), "Ensemble des établissements mesurés"]
    out = g.rename_axis("constat").reset_index()[cols]
    if absent:
        out["acces_gar"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out.attrs["annee_scolaire"] = str(x["annee_scolaire"].iloc[0])
    return with_spec(out, _CROSSING)


def ent_gar_schools(tables, audience: str, code: str) -> pd.DataFrame:
    """Return the territory's schools whose ENT and GAR disagree (latest school year), with the explanation."""
    x = _last_year(_scope(_table(tables, "croisement_ent_gar"), audience, code))
    if not len(x):
        return pd.DataFrame(columns=["uai", "constat", "visites_ressources_ent", "acces_gar", "explication"])
    x = x[x["constat"].isin(["ent_sans_gar", "gar_sans_ent"])]
    return x[["uai", "constat", "visites_ressources_ent", "acces_gar", "explication"]].reset_index(drop=True)


def _device_rows(m: pd.DataFrame) -> list[dict]:
    rows = []
    for p, label in DEVICE_PROFILS.items():
        counts = {d: float(pd.to_numeric(m.get(f"visites_{p}_{d}", pd.Series(dtype=float)), errors="coerce").sum())
                  for d in DEVICES}
        three = counts["ordinateur"] + counts["smartphone"] + counts["tablette"]
        rows.append({"profil": label, **{f"visites_{d}": v for d, v in counts.items()},
                     "visites": sum(counts.values()),
                     "part_smartphone": counts["smartphone"] / three if three else np.nan})
    return rows


def device_mix(tables, audience: str, code: str) -> pd.DataFrame:
    """Return the device mix of pupils, teachers and parents (latest school year), beside the national one.

    ``part_smartphone`` is the smartphone share of visits on computer, smartphone
    and tablet; the national value has the audience's scope (national collèges
    for a département) (the published definition: pupils 53.8 %, parents 81.7 % in 2025-2026).

    Returns
    -------
    pandas.DataFrame
        ``profil, visites_ordinateur, visites_smartphone, visites_tablette,
        visites_autresappareil, visites, part_smartphone, part_smartphone_national``.
    """
    m = _table(tables, "dnma_mensuel")
    if not len(m) or not any(c.endswith("_smartphone") for c in m.columns):
        return with_spec(pd.DataFrame(columns=["profil", "visites", "part_smartphone", "part_smartphone_national"]),
                         _DEVICES)
    m = _last_year(m)
    local = pd.DataFrame(_device_rows(_scope(m, audience, code)))
    from .indicators import reference

    nat = pd.DataFrame(_device_rows(reference(m, audience) if "niveau" in m.columns else m))
    local["part_smartphone_national"] = nat["part_smartphone"].to_numpy()
    return with_spec(local, _DEVICES)


def parent_use(tables, audience: str, code: str) -> pd.DataFrame:
    """Return parents' ENT use per month of the latest school year.

    Returns
    -------
    pandas.DataFrame
        ``mois, visites_parent, visites_globales, part_parents, utilisateurs_parent_semaine``
        (distinct parents of a typical week of the month, summed over schools:
        never a sum of weekly distinct users across weeks), ``etablissements``.
    """
    m = _last_year(_scope(_table(tables, "dnma_mensuel"), audience, code))
    cols = ["mois", "visites_parent", "visites_globales", "part_parents", "utilisateurs_parent_semaine",
            "etablissements"]
    if not len(m) or "visites_parent" not in m.columns:
        return with_spec(pd.DataFrame(columns=cols), _PARENTS)
    g = m.groupby("mois").agg(visites_parent=("visites_parent", "sum"), visites_globales=("visites_globales", "sum"),
                              utilisateurs_parent_semaine=("utilisateurs_parent_semaine", "sum"),
                              etablissements=("uai", "nunique")).reset_index()
    g["part_parents"] = g["visites_parent"].astype(float) / g["visites_globales"].astype(float).where(
        g["visites_globales"] > 0)
    g["utilisateurs_parent_semaine"] = g["utilisateurs_parent_semaine"].round()
    return with_spec(g[cols], _PARENTS)


def internal_gar_available(tables) -> bool:
    """Return whether the processed tables come with the internal GAR exports (inscriptions or accès).

    Without them (public data only: register, IPS, communes, DNMA), the GAR
    sections of the dashboards have nothing to show and say so.
    """
    schools = _table(tables, "etablissements")
    usage = _table(tables, "usage_mensuel")
    inscrits = bool(len(schools)) and "inscrit" in schools.columns and bool(schools["inscrit"].fillna(False).any())
    acces = bool(len(usage)) and "acces" in usage.columns and float(pd.to_numeric(usage["acces"]).sum()) > 0
    return inscrits or acces
