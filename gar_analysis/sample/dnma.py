"""The sample's ENT audience (DNMA) in the published weekly layout.

Three of the four published datasets are written, one row per measured school
and week (Mondays) of the last school year: ``profils`` (label headers
``debutSemaine``/``UAI``, as a CSV export made with labels), ``services`` and
``profils-appareils`` (field-id headers). Collèges and lycées of measured ENT
projects are measured, as in the real DNMA (mostly second degré).

Calibration on the published national figures (2025-2026, SOURCE.md of
``gar-dnma-published-figures``): visits by profil (pupils 40.2 %, parents
37.5 %, teachers 19.2 %, staff 3.0 %, 0.14 % in no profil), by device
(pupils' smartphone 53.8 %, parents' 81.7 %), main services (courrier
électronique and vie scolaire about 30 % of visits each, cahier de textes
10 %, production collaborative 7 %), distinct users about 22 % of visits.
Teachers' and staff's devices are not published: assumed mostly on computers.
The ENT resource services (``manuel_numerique``, ``ressource_*``) follow the
school's GAR accès. ``visites_notes`` stops being measured from :data:`NOTES_STOP`
(a series break, like the real one).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import territories
from ..sources.dnma import DNMA_DATASETS, SERVICES_RESSOURCES

#: Sample names of the DNMA frames → (file, BOM).
DNMA_RAW_FILES = {f"dnma/{k}": (f"dnma/{v}.csv", False) for k, v in DNMA_DATASETS.items() if k != "appareils"}
#: Share of visites_globales by profil (published 2025-2026); the remainder is in no profil.
PROFIL_SHARES = {"eleve": 0.4019, "parent": 0.3747, "enseignant": 0.1922, "admin_vie_scol_tech": 0.0298}
#: Device shares by profil (ordinateur, smartphone, tablette, autresappareil).
DEVICE_SHARES = {"eleve": (0.441, 0.537, 0.020, 0.002), "parent": (0.177, 0.816, 0.005, 0.002),
                 "enseignant": (0.80, 0.17, 0.028, 0.002), "admin_vie_scol_tech": (0.90, 0.08, 0.018, 0.002)}
DEVICES = ("ordinateur", "smartphone", "tablette", "autresappareil")
#: Share of visites_globales of the main services.
SERVICE_SHARES = {"courrier_electronique": 0.305, "services_vie_scolaire": 0.305, "cahier_textes": 0.099,
                  "production_collaborative": 0.073, "notes": 0.11}
#: Split of the ENT resource visits between resource services.
RESOURCE_SPLIT = dict(zip(SERVICES_RESSOURCES, (0.45, 0.15, 0.04, 0.03, 0.15, 0.10, 0.08)))
#: Distinct users of a week per visit, by profil.
USERS_PER_VISIT = {"eleve": 0.24, "parent": 0.22, "enseignant": 0.18, "admin_vie_scol_tech": 0.25}
#: First week without any ``visites_notes`` (series break).
NOTES_STOP = "2025-01-06"
CONTEXT_HEADERS_LABELS = ["debutSemaine", "UAI", "academie", "commune", "departement", "region", "ministere",
                          "circonscription", "nature_uai", "secteur"]
CONTEXT_IDS = ["debutsemaine", "uai", "academie", "commune", "departement", "region", "ministere",
               "circonscription", "nature_uai", "secteur"]


def _weeks(months: list[str]) -> pd.DatetimeIndex:
    """Mondays of the weeks lying wholly inside the last school year of ``months``."""
    last = pd.Period(months[-1], "M")
    start_year = last.year if last.month >= 9 else last.year - 1
    start = max(pd.Timestamp(f"{start_year}-09-01"), pd.Timestamp(months[0] + "-01"))
    end = last.end_time.normalize()
    first_monday = start + pd.Timedelta(days=(7 - start.day_of_week) % 7)
    weeks = pd.date_range(first_monday, end - pd.Timedelta(days=6), freq="7D")
    return weeks


def _week_weights(weeks: pd.DatetimeIndex, months: list[str]) -> np.ndarray:
    """Return W (weeks × months): share of each month's total falling in each week (days / days in month)."""
    pos = {m: i for i, m in enumerate(months)}
    w = np.zeros((len(weeks), len(months)))
    for k, monday in enumerate(weeks):
        for d in range(7):
            day = monday + pd.Timedelta(days=d)
            m = day.strftime("%Y-%m")
            if m in pos:
                w[k, pos[m]] += 1.0 / day.days_in_month
    return w


def _fmt_duration(seconds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = np.round(seconds).astype(np.int64)
    base = np.char.add(np.char.add(np.char.zfill((s // 3600).astype(str), 2), ":"),
                       np.char.add(np.char.add(np.char.zfill((s // 60 % 60).astype(str), 2), ":"),
                                   np.char.zfill((s % 60).astype(str), 2)))
    ms = rng.random(len(s)) < 0.1
    out = np.where(ms, np.char.add(base, np.char.add(":", rng.integers(0, 1000, len(s)).astype(str))), base)
    return out.astype(object)


def _triple(out: dict, key: str, visits: np.ndarray, users_per_visit: float, rng, cap=None) -> None:
    """Add ``visites_key``, ``utilisateurs_key``, ``duree_key`` (``N/A`` where no visit)."""
    n = len(visits)
    users = np.maximum(1, np.round(visits * users_per_visit * rng.uniform(0.85, 1.15, n))).astype(np.int64)
    if cap is not None:
        users = np.minimum(users, cap)
    dur = _fmt_duration(rng.lognormal(np.log(290.0), 0.35, n), rng)
    none = visits <= 0
    out[f"visites_{key}"] = visits.astype(np.int64)
    out[f"utilisateurs_{key}"] = np.where(none, "N/A", users.astype(str)).astype(object)
    out[f"duree_{key}"] = np.where(none, "N/A", dur).astype(object)


def published_dnma(s: pd.DataFrame, audience: pd.DataFrame, acces_sm: np.ndarray, months: list[str],
                   rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Build the weekly DNMA frames from the monthly ENT audience model and the GAR accès.

    Parameters
    ----------
    s : pandas.DataFrame
        The sample's schools (``uai, niveau, secteur, code_*, nom_commune, nombre_eleves``).
    audience : pandas.DataFrame
        Monthly ENT visits (``mois, uai, visites``) of measured school-months.
    acces_sm : numpy.ndarray
        GAR accès per school (row of ``s``) and month (column of ``months``).
    months : list of str
        The sample's months.
    rng : numpy.random.Generator

    Returns
    -------
    dict of str to pandas.DataFrame
        ``dnma/profils``, ``dnma/services``, ``dnma/profils_appareils``, rows
        sorted by week then UAI, columns in the published layout.
    """
    second = s["niveau"].isin(["college", "lycee"]).to_numpy()
    row_of = pd.Series(np.arange(len(s)), index=s["uai"].to_numpy())
    aud = audience[audience["uai"].isin(set(s.loc[second, "uai"]))]
    mpos = {m: i for i, m in enumerate(months)}
    schools = np.unique(aud["uai"].to_numpy().astype(str))
    spos = {u: i for i, u in enumerate(schools)}
    v = np.zeros((len(schools), len(months)))
    measured = np.zeros_like(v, dtype=bool)
    si = aud["uai"].map(spos).to_numpy()
    mi = aud["mois"].map(mpos).to_numpy()
    v[si, mi] = aud["visites"].to_numpy(float)
    measured[si, mi] = True
    rows = row_of.reindex(schools).to_numpy()
    a = acces_sm[rows].astype(float)
    weeks = _weeks(months)
    w = _week_weights(weeks, months)
    wv = v @ w.T                                  # schools × weeks
    wa = a @ w.T
    wm = (measured.astype(float) @ (w > 0).T) > 0
    wi, wk = np.nonzero(wm)
    order = np.lexsort((wi, wk))
    wi, wk = wi[order], wk[order]
    n = len(wi)
    noise = rng.lognormal(0.0, 0.08, n)
    glob = np.round(wv[wi, wk] * noise).astype(np.int64)
    glob = np.where((wv[wi, wk] > 0) & (glob == 0), 1, glob)
    sch = s.iloc[rows[wi]]
    deps = territories.departements().set_index("code_departement")
    names = dict(zip(territories.academies()["code_academie"], territories.academies()["nom_academie"]))
    ctx = {
        "debutsemaine": weeks[wk].strftime("%Y-%m-%d").to_numpy(object),
        "uai": schools[wi].astype(object),
        "academie": sch["code_academie"].map(names).to_numpy(object),
        "commune": sch["nom_commune"].str.upper().to_numpy(object),
        "departement": deps["nom_departement"].reindex(sch["code_departement"]).str.upper().to_numpy(object),
        "region": deps["nom_region"].reindex(sch["code_departement"]).str.upper().to_numpy(object),
        "ministere": np.full(n, "MENJ", dtype=object),
        "circonscription": np.full(n, "", dtype=object),
        "nature_uai": np.where(sch["niveau"].to_numpy() == "college", "COLLEGE", "LYCEE").astype(object),
        "secteur": np.where(sch["secteur"].to_numpy() == "prive", "PR", "PU").astype(object),
    }
    eleves = sch["nombre_eleves"].to_numpy(np.int64)
    # --- profils
    shares = np.array(list(PROFIL_SHARES.values()))
    mix = rng.dirichlet(shares * 200, n) * shares.sum()
    prof = {p: np.floor(glob * mix[:, j]).astype(np.int64) for j, p in enumerate(PROFIL_SHARES)}
    out: dict = {}
    users_tot = np.zeros(n, dtype=np.int64)
    for p, vis in prof.items():
        cap = eleves if p == "eleve" else (np.maximum(1, 2 * eleves) if p == "parent" else None)
        _triple(out, p, vis, USERS_PER_VISIT[p], rng, cap)
        users_tot += pd.to_numeric(pd.Series(out[f"utilisateurs_{p}"]), errors="coerce").fillna(0).to_numpy(np.int64)
    g: dict = {}
    _triple(g, "globales", glob, 0.22, rng)
    g["utilisateurs_globales"] = np.where(glob > 0, np.maximum(users_tot, 1).astype(str), "N/A").astype(object)
    profils = pd.DataFrame({**ctx, **g, **out})
    profils.columns = CONTEXT_HEADERS_LABELS + list(profils.columns[len(CONTEXT_IDS):])
    # --- services
    svc: dict = {}
    stop = weeks[wk] >= pd.Timestamp(NOTES_STOP)
    for name, share in SERVICE_SHARES.items():
        vis = np.round(glob * share * rng.uniform(0.8, 1.2, n)).astype(np.int64)
        if name == "notes":
            vis = np.where(stop, 0, vis)
        _triple(svc, name, vis, 0.3, rng)
    ent_res = np.round(wa[wi, wk] * rng.uniform(0.9, 1.3, n))
    ent_res = np.where((wa[wi, wk] > 0) & (ent_res == 0), 1, ent_res)
    for name, share in RESOURCE_SPLIT.items():
        _triple(svc, name, np.round(ent_res * share).astype(np.int64)
                if name != "manuel_numerique" else np.ceil(ent_res * share).astype(np.int64), 0.5, rng)
    services = pd.DataFrame({**ctx, **svc})
    # --- profils × appareils
    dev: dict = {}
    for p, vis in prof.items():
        sh = np.array(DEVICE_SHARES[p])
        split = rng.dirichlet(sh * 400 + 1e-3, n)
        for j, d in enumerate(DEVICES):
            _triple(dev, f"{p}_{d}", np.floor(vis * split[:, j]).astype(np.int64), USERS_PER_VISIT[p], rng)
    appareils = pd.DataFrame({**ctx, **dev})
    return {"dnma/profils": profils, "dnma/services": services, "dnma/profils_appareils": appareils}
