"""The seeded sample generator: a complete, realistic data directory and its planted truth.

:func:`generate` writes every file of the data contract (plus the register, the
IPS files and the communes in their real published layouts) from one seed, so
that the sample goes through exactly the loaders real data goes through. The
structure (territories, school counts, IPS) is calibrated on real open data
(``data/calibration_departements.csv``, see :mod:`.calibrate`); the behaviour
(adoption, usage) follows known models whose true parameters are written to
``truth.json`` with the planted anomalies.

Everything is vectorised with numpy: no Python loop runs over accès lines.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config, territories
from ..contract import write_contract_file
from ..errors import ConfigError
from ..io import atomic_write_text, csv_text
from . import names as N
from .calibrate import CALIBRATION_FILE, load_calibration
from .dnma import DNMA_RAW_FILES, published_dnma

log = logging.getLogger(__name__)

UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
SCALES = ("mini", "default", "national")
#: Last month of the simulated period; the period covers ``years`` school years ending here.
PERIOD_END_YEAR = 2025
#: School year of the usage model (the last full one).
USAGE_YEAR = "2024-2025"
PROFILS = ("eleve", "enseignant", "documentaliste", "autre_personnel")
SUPPORTS = ("ordinateur", "tablette", "mobile")

#: Share of the real number of schools generated (écoles are scaled up: the IPS file of
#: écoles omits nursery schools, so ×1.52 brings the national total near 60,000).
SCALE_FACTORS = {"mini": 0.01, "default": 0.05, "national": 1.0}
LEVEL_FACTORS = {"ecole": 1.52, "college": 1.0, "lycee": 1.0}

#: Monthly seasonality, September → August (holidays: Toussaint, Noël, hiver, printemps, été).
SEASON = np.array([0.95, 0.88, 1.05, 0.78, 1.08, 0.82, 1.12, 0.84, 0.97, 0.72, 0.06, 0.03])
#: Monthly growth of usage (log scale) over the period.
MONTHLY_GROWTH = 0.012

#: Planted effects (linear-predictor scale), named as the build's columns.
ADOPTION_TERMS = {"Intercept": 0.1, "referent": 0.9, "formation": 0.6, "convention": 0.5, "ips_10": 0.15,
                  "rural": -0.35, "niveau[T.college]": 0.5, "niveau[T.lycee]": 0.4, "secteur[T.prive]": -0.45}
USAGE_TERMS = {"Intercept": 0.9, "referent": 0.3, "formation": 0.25, "convention": 0.2, "ips_10": 0.08,
               "rural": -0.15, "niveau[T.college]": 0.35, "niveau[T.lycee]": 0.15, "secteur[T.prive]": -0.15}
ACADEMIE_SD = 0.3
USAGE_ALPHA = 0.3

#: National fallbacks (mean, sd) of the IPS when a département has no figure.
IPS_FALLBACK = {("ecole", "public"): (102.0, 12.3), ("ecole", "prive"): (116.7, 9.8),
                ("college", "public"): (99.6, 10.7), ("college", "prive"): (115.3, 9.3),
                ("lycee", "public"): (100.0, 12.9), ("lycee", "prive"): (114.5, 11.5)}

ANNUAIRE_HEADER = (
    "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Adresse_1;"
    "Adresse_2;Adresse_3;Code postal;Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;"
    "Ecole_maternelle;Ecole_elementaire;Voie_generale;Voie_technologique;Voie_professionnelle;Telephone;Fax;"
    "Web;Mail;Restauration;Hebergement;ULIS;Apprentissage;Segpa;Section_arts;Section_cinema;Section_theatre;"
    "Section_sport;Section_internationale;Section_europeenne;Lycee_Agricole;Lycee_militaire;"
    "Lycee_des_metiers;Post_BAC;Appartenance_Education_Prioritaire;GRETA;SIREN_SIRET;Nombre_d_eleves;"
    "Fiche_onisep;position;Type_contrat_prive;Libelle_departement;Libelle_academie;Libelle_region;"
    "coordonnee_X;coordonnee_Y;epsg;nom_circonscription;latitude;longitude;precision_localisation;"
    "date_ouverture;date_maj_ligne;etat;ministere_tutelle;etablissement_multi_lignes;rpi_concentre;"
    "rpi_disperse;code_nature;libelle_nature;Code_type_contrat_prive;PIAL;etablissement_mere;"
    "type_rattachement_etablissement_mere;code_bassin_formation;libelle_bassin_formation").split(";")
IPS_ECOLES_HEADER = ["Rentrée scolaire", "Académie", "Code du département", "Département", "UAI",
                     "Nom de l'établissment", "Code INSEE de la commune", "Nom de la commune", "Secteur", "IPS"]
IPS_COLLEGES_HEADER = IPS_ECOLES_HEADER[:-1] + ["Effectifs", "IPS", "Ecart-type de l'IPS"]
IPS_LYCEES_HEADER = ["rentree_scolaire", "academie", "code_du_departement", "departement", "uai",
                     "nom_de_l_etablissment", "code_insee_de_la_commune", "nom_de_la_commune", "secteur",
                     "type_de_lycee", "effectifs_voie_gt", "effectifs_voie_pro", "effectifs_ensemble_gt_pro",
                     "ips_voie_gt", "ips_voie_pro", "ips_ensemble_gt_pro", "ecart_type_de_l_ips_voie_gt",
                     "ecart_type_de_l_ips_voie_pro"]
#: Rentrée written in the IPS files (one row per school).
IPS_RENTREE = "2023-2024"


# --------------------------------------------------------------------------- helpers

def uai_letter(digits: np.ndarray) -> np.ndarray:
    """Return the UAI check letters of 7-digit integers."""
    return np.asarray(list(UAI_LETTERS))[np.asarray(digits) % 23]


def uai_prefix(code_departement: str) -> str:
    """Return the 3-digit UAI prefix of a département (``"035"``, ``"620"`` for 2A, ``"971"``)."""
    if code_departement == "2A":
        return "620"
    if code_departement == "2B":
        return "720"
    return code_departement.zfill(3)


def register_departement(code_departement: str) -> str:
    """Return the département code as the 2023 register writes it (``"035"``, ``"02A"``, ``"971"``)."""
    return code_departement.zfill(3)


def months_of_period(years: int) -> list[str]:
    """Return the months (``YYYY-MM``) of ``years`` school years ending in August 2025."""
    start = PERIOD_END_YEAR - years
    return [f"{y:04d}-{m:02d}" for y in range(start, PERIOD_END_YEAR + 1) for m in range(1, 13)
            if (y, m) >= (start, 9) and (y, m) <= (PERIOD_END_YEAR, 8)]


def _stochastic_round(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    base = np.floor(x)
    return (base + (rng.random(x.shape) < (x - base))).astype(np.int64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _days(d: str) -> np.datetime64:
    return np.datetime64(d, "D")


def _fmt_dates(a: np.ndarray) -> np.ndarray:
    """Format datetime64[D] values as ``YYYY-MM-DD`` strings (NaT → empty)."""
    out = np.datetime_as_string(a.astype("datetime64[D]"), unit="D")
    return np.where(np.isnat(a), "", out)


def _multinomial_rows(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Draw one multinomial per row (counts ``n``, probabilities ``p`` normalised per row)."""
    p = np.asarray(p, dtype=np.float64)
    s = p.sum(axis=1, keepdims=True)
    p = np.divide(p, s, out=np.zeros_like(p), where=s > 0)
    p[:, -1] = np.clip(1.0 - p[:, :-1].sum(axis=1), 0.0, 1.0)
    return rng.multinomial(np.asarray(n, dtype=np.int64), p)


def _take(values, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Return ``values[codes]`` as a pandas string array (vectorised in Arrow: fast for millions of rows)."""
    import pyarrow as pa

    table = pa.array(np.asarray(values, dtype=object).astype(str).tolist(), pa.large_string())
    return pd.array(table.take(pa.array(np.asarray(codes, dtype=np.int64))), dtype="str")


@dataclass
class Period:
    """The simulated period and its school years."""

    months: list[str]

    @property
    def debut(self) -> str:
        return self.months[0]

    @property
    def fin(self) -> str:
        return self.months[-1]

    @property
    def start_date(self) -> np.datetime64:
        return _days(self.debut + "-01")

    @property
    def end_date(self) -> np.datetime64:
        return _days(f"{PERIOD_END_YEAR}-08-31")

    @property
    def school_years(self) -> list[str]:
        first = int(self.debut[:4])
        return [f"{y}-{y + 1}" for y in range(first, PERIOD_END_YEAR)]

    def month_starts(self) -> np.ndarray:
        return np.array([_days(m + "-01") for m in self.months])


# --------------------------------------------------------------------------- structure

def _calibration() -> pd.DataFrame:
    cal = load_calibration(CALIBRATION_FILE)
    deps = territories.departements()
    cal = deps.merge(cal, on="code_departement", how="left")
    # Fallbacks for départements without commune figures (Paris, Mayotte): dense, small communes.
    fill = {"log_pop_mean": 9.5, "log_pop_sd": 0.6, "log_area_mean": 1.8, "log_area_sd": 0.5,
            "part_communes_rurales": 0.1, "lat_sd": 0.05, "lon_sd": 0.07}
    cal = cal.fillna(fill)
    for niveau in ("college", "lycee"):
        col = f"log_eleves_mean_{niveau}"
        cal[col] = cal[col].fillna(cal[col].median())
    return cal


def _communes(cal: pd.DataFrame, n_ecoles: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Synthetic communes per département, with population, area and coordinates."""
    frames = []
    for i, row in enumerate(cal.itertuples(index=False)):
        dep = row.code_departement
        cap = 99 if len(dep) == 3 else 999
        n = int(np.clip(round(n_ecoles[i] * 0.75) + 2, 2, cap))
        logpop = rng.normal(row.log_pop_mean, row.log_pop_sd, n)
        logarea = row.log_area_mean + 0.35 * (logpop - row.log_pop_mean) / max(row.log_pop_sd, 0.1) \
            * row.log_area_sd + rng.normal(0, row.log_area_sd * 0.85, n)
        logpop[0] = row.log_pop_mean + 3.0 * row.log_pop_sd  # the chef-lieu
        logarea[0] = row.log_area_mean + 0.8
        pop = np.maximum(np.round(np.exp(logpop)), 30).astype(np.int64)
        area = np.round(np.clip(np.exp(logarea), 0.5, 20000), 2)
        numbers = np.sort(rng.choice(np.arange(1, cap + 1), size=n, replace=False))
        width = 2 if len(dep) == 3 else 3
        codes = [f"{dep}{k:0{width}d}" for k in numbers]
        roots = rng.integers(0, len(N.COMMUNE_ROOTS), n)
        pre = rng.integers(0, len(N.COMMUNE_PREFIXES), n)
        suf = rng.integers(0, len(N.COMMUNE_SUFFIXES), n)
        noms = [f"{N.COMMUNE_PREFIXES[a]}{N.COMMUNE_ROOTS[b]}{N.COMMUNE_SUFFIXES[c]}"
                for a, b, c in zip(pre, roots, suf)]
        lat = row.latitude + rng.normal(0, row.lat_sd, n)
        lon = row.longitude + rng.normal(0, row.lon_sd, n)
        frames.append(pd.DataFrame({"code_commune": codes, "nom_commune": noms, "code_departement": dep,
                                    "population": pop, "superficie_km2": area, "lat": lat, "lon": lon}))
    com = pd.concat(frames, ignore_index=True)
    com["densite"] = com.population / com.superficie_km2
    return com


def _schools(cal: pd.DataFrame, scale: str, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw the schools (level, sector, département, commune, pupils, IPS…) and the communes."""
    f = SCALE_FACTORS[scale]
    counts = {}
    for niveau in ("ecole", "college", "lycee"):
        for secteur in ("public", "prive"):
            x = cal[f"n_{niveau}_{secteur}"].to_numpy(float) * LEVEL_FACTORS[niveau] * f
            k = _stochastic_round(x, rng)
            if secteur == "public":
                k = np.maximum(k, 1)
            counts[(niveau, secteur)] = k
    n_ecoles = counts[("ecole", "public")] + counts[("ecole", "prive")]
    communes = _communes(cal, n_ecoles, rng)
    rows = []
    for (niveau, secteur), k in counts.items():
        dep_idx = np.repeat(np.arange(len(cal)), k)
        rows.append(pd.DataFrame({"dep_idx": dep_idx, "niveau": niveau, "secteur": secteur}))
    s = pd.concat(rows, ignore_index=True)
    s = s.sort_values(["dep_idx", "niveau", "secteur"], kind="stable").reset_index(drop=True)
    n = len(s)
    # commune of each school, weighted by population (collèges and lycées in larger towns)
    com_idx = np.empty(n, dtype=np.int64)
    dep_of_com = communes.code_departement.to_numpy()
    pop = communes.population.to_numpy(float)
    codes = cal.code_departement.to_numpy()
    first = {d: i for i, d in reversed(list(enumerate(dep_of_com)))}
    sizes = communes.groupby("code_departement", sort=False).size()
    for d_i, dep in enumerate(codes):
        mask = (s.dep_idx.to_numpy() == d_i)
        lo, m = first[dep], int(sizes[dep])
        p_pop = pop[lo:lo + m]
        for lvl, expo in (("ecole", 0.85), ("college", 1.3), ("lycee", 1.5)):
            sel = np.flatnonzero(mask & (s.niveau.to_numpy() == lvl))
            if len(sel):
                w = p_pop ** expo
                com_idx[sel] = lo + rng.choice(m, size=len(sel), p=w / w.sum())
    s["com_idx"] = com_idx
    cm = communes.iloc[com_idx].reset_index(drop=True)
    s["code_departement"] = codes[s.dep_idx]
    dmeta = territories.departements().set_index("code_departement")
    s["code_academie"] = dmeta.code_academie.reindex(s.code_departement).to_numpy()
    s["code_region"] = dmeta.code_region.reindex(s.code_departement).to_numpy()
    s["code_commune"] = cm.code_commune.to_numpy()
    s["nom_commune"] = cm.nom_commune.to_numpy()
    s["densite"] = cm.densite.to_numpy()
    s["rural"] = (cm.population.to_numpy() / cm.superficie_km2.to_numpy()) < config.RURAL_DENSITY
    s["latitude"] = np.round(cm.lat.to_numpy() + rng.normal(0, 0.01, n), 6)
    s["longitude"] = np.round(cm.lon.to_numpy() + rng.normal(0, 0.01, n), 6)
    # IPS
    mean = np.empty(n)
    sd = np.empty(n)
    for (niveau, secteur), (m0, s0) in IPS_FALLBACK.items():
        sel = ((s.niveau == niveau) & (s.secteur == secteur)).to_numpy()
        mm = cal[f"ips_mean_{niveau}_{secteur}"].to_numpy(float)[s.dep_idx[sel]]
        ss = cal[f"ips_sd_{niveau}_{secteur}"].to_numpy(float)[s.dep_idx[sel]]
        mean[sel] = np.where(np.isnan(mm), m0, mm)
        sd[sel] = np.clip(np.where(np.isnan(ss), s0, ss), 5.0, 20.0)
    logd = np.log10(np.maximum(s.densite.to_numpy(), 1.0))
    ips = rng.normal(mean - 2.0 * s.rural.to_numpy() + 0.5 * (logd - 2.0), sd)
    s["ips"] = np.round(np.clip(ips, 50.0, 160.0), 1)
    # pupils
    lv = s.niveau.to_numpy()
    prive = (s.secteur == "prive").to_numpy()
    log_e = np.where(lv == "ecole", 4.55 + 0.15 * np.minimum(logd, 4.0) + rng.normal(0, 0.45, n), 0.0)
    lc = cal.log_eleves_mean_college.to_numpy(float)[s.dep_idx]
    ll = cal.log_eleves_mean_lycee.to_numpy(float)[s.dep_idx]
    log_e = np.where(lv == "college", lc + rng.normal(0, 0.35, n), log_e)
    type_lycee = np.where(lv == "lycee", rng.choice(["LEGT", "LP", "LPO"], size=n, p=[0.42, 0.32, 0.26]), "")
    log_e = np.where(lv == "lycee", ll + rng.normal(0, 0.4, n) - 0.4 * (type_lycee == "LP")
                     + 0.2 * (type_lycee == "LPO"), log_e)
    log_e -= 0.15 * prive
    lo_hi = {"ecole": (15, 800), "college": (80, 1400), "lycee": (80, 2800)}
    eleves = np.exp(log_e)
    for lvl, (a, b) in lo_hi.items():
        eleves = np.where(lv == lvl, np.clip(eleves, a, b), eleves)
    s["nombre_eleves"] = np.round(eleves).astype(np.int64)
    s["type_lycee"] = type_lycee
    # priority education (public écoles and collèges with a low IPS)
    p_ep = 0.85 / (1 + np.exp((s.ips.to_numpy() - 84.0) / 4.0))
    ep = (~prive) & (lv != "lycee") & (rng.random(n) < p_ep)
    plus = ep & (s.ips.to_numpy() < 76.0) & (rng.random(n) < 0.7)
    s["education_prioritaire"] = np.where(plus, "REP+", np.where(ep, "REP", ""))
    # UAIs: département prefix + 4 unique digits + check letter
    uai = np.empty(n, dtype=object)
    for d_i, dep in enumerate(codes):
        sel = np.flatnonzero(s.dep_idx.to_numpy() == d_i)
        if not len(sel):
            continue
        digits = int(uai_prefix(dep)) * 10000 + rng.choice(10000, size=len(sel), replace=False)
        uai[sel] = [f"{x:07d}{UAI_LETTERS[x % 23]}" for x in digits]
    s["uai"] = uai
    s["nom"] = _school_names(s, rng)
    return s, communes


def _school_names(s: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    n = len(s)
    persons = rng.integers(0, len(N.PERSONS), n)
    privs = rng.integers(0, len(N.PRIVATE_NAMES), n)
    places = rng.integers(0, len(N.PLACES), n)
    kind = rng.random(n)
    out = []
    for lv, sec, tl, p, q, r, k, com in zip(s.niveau, s.secteur, s.type_lycee, persons, privs, places, kind,
                                           s.nom_commune):
        if lv == "ecole":
            base = "Ecole primaire" if k < 0.5 else "Ecole élémentaire"
            out.append(f"{base} privée {N.PRIVATE_NAMES[q]}" if sec == "prive"
                       else f"{base} publique {N.PLACES[r] if k < 0.7 else N.PERSONS[p]}")
        elif lv == "college":
            out.append(f"Collège {N.PRIVATE_NAMES[q]}" if sec == "prive" else f"Collège {N.PERSONS[p]}")
        else:
            label = {"LEGT": "Lycée général et technologique", "LP": "Lycée professionnel",
                     "LPO": "Lycée polyvalent"}[tl]
            out.append(f"{label} {N.PRIVATE_NAMES[q] if sec == 'prive' else N.PERSONS[p]}")
    return out


# --------------------------------------------------------------------------- ENT projects

def _projects(s: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """ENT projects (region for lycées, département or région for collèges, académie for écoles)."""
    deps = territories.departements()
    rows = []
    for reg in territories.regions().itertuples():
        rows.append(("region", reg.code_region, f"ENT {reg.nom_region}", "2017-09-01", 5 * 365))
    for dep in deps.itertuples():
        rows.append(("departement", dep.code_departement, f"ENT collèges {dep.nom_departement}",
                     "2018-09-01", 5 * 365))
    for aca in territories.academies().itertuples():
        rows.append(("academie", aca.code_academie, f"ENT écoles {territories.academie_label(aca.code_academie)}",
                     "2020-09-01", 4 * 365 + 60))
    p = pd.DataFrame(rows, columns=["perimetre", "code", "projet_ent", "debut", "etendue"])
    n = len(p)
    offs = (rng.random(n) * p.etendue.to_numpy()).astype(int)
    launch = np.array([_days(d) for d in p.debut]) + offs.astype("timedelta64[D]")
    # launches on the first of a month (a deployment wave)
    p["lancement"] = launch.astype("datetime64[M]").astype("datetime64[D]")
    vendor = rng.integers(0, len(N.ENT_VENDORS), n)
    p["vendeur"] = vendor
    p["ent"] = [N.ENT_VENDORS[v][1] for v in vendor]
    p["dnma"] = rng.random(n) < 0.8
    # collèges of about half the départements join their région's project
    p["rejoint_region"] = (p.perimetre == "departement") & (rng.random(n) < 0.5)
    return p


def _assign_projects(s: pd.DataFrame, p: pd.DataFrame) -> np.ndarray:
    key = {(r.perimetre, r.code): i for i, r in enumerate(p.itertuples())}
    out = np.empty(len(s), dtype=np.int64)
    joins = {r.code for r in p.itertuples() if r.rejoint_region}
    for i, (lv, dep, aca, reg) in enumerate(zip(s.niveau, s.code_departement, s.code_academie, s.code_region)):
        if lv == "lycee" or (lv == "college" and dep in joins):
            out[i] = key[("region", reg)]
        elif lv == "college":
            out[i] = key[("departement", dep)]
        else:
            out[i] = key[("academie", aca)]
    return out


# --------------------------------------------------------------------------- CRM factors and outcomes

def _authorities(s: pd.DataFrame, communes: pd.DataFrame, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Convention status of each local authority (région, département, commune hosting an école)."""
    out = {}
    specs = {"region": (territories.regions().code_region.to_numpy(), 0.7),
             "departement": (territories.departements().code_departement.to_numpy(), 0.6),
             "commune": (np.unique(s.loc[s.niveau == "ecole", "code_commune"].to_numpy()), 0.45)}
    for niveau, (codes, p_signe) in specs.items():
        n = len(codes)
        u = rng.random(n)
        statut = np.where(u < p_signe, "signe", np.where(u < p_signe + 0.2, "en_attente",
                                                          np.where(u < p_signe + 0.3, "clos", "")))
        out[niveau] = pd.DataFrame({"code": codes, "statut": statut,
                                    "ancien_clos": (statut == "signe") & (rng.random(n) < 0.3)})
    return out


def _factors(s: pd.DataFrame, auth: dict[str, pd.DataFrame], rng: np.random.Generator) -> None:
    n = len(s)
    second = (s.niveau != "ecole").to_numpy()
    s["referent"] = rng.random(n) < _sigmoid(-0.75 + 0.3 * second)
    s["formation"] = rng.random(n) < _sigmoid(-1.35 + 0.7 * s.referent.to_numpy())
    signe = {k: set(v.code[v.statut == "signe"]) for k, v in auth.items()}
    conv = np.where(s.niveau == "ecole", s.code_commune.isin(signe["commune"]),
                    np.where(s.niveau == "college", s.code_departement.isin(signe["departement"]),
                             s.code_region.isin(signe["region"])))
    s["convention"] = conv.astype(bool)
    s["ips_10"] = (s.ips - 100.0) / 10.0


def _design(s: pd.DataFrame) -> dict[str, np.ndarray]:
    return {"Intercept": np.ones(len(s)), "referent": s.referent.to_numpy(float),
            "formation": s.formation.to_numpy(float), "convention": s.convention.to_numpy(float),
            "ips_10": s.ips_10.to_numpy(float), "rural": s.rural.to_numpy(float),
            "niveau[T.college]": (s.niveau == "college").to_numpy(float),
            "niveau[T.lycee]": (s.niveau == "lycee").to_numpy(float),
            "secteur[T.prive]": (s.secteur == "prive").to_numpy(float)}


def _academie_effects(s: pd.DataFrame, rng: np.random.Generator) -> dict[str, float]:
    """Draw académie random intercepts, orthogonal to the académies' composition.

    The draws are residualised (weighted by the number of schools ``s`` of each
    académie) on the académie means of the design's covariates, then rescaled to
    their original spread: académie effects are then genuine departures from what
    composition predicts, and omitting them does not bias the covariates' effects.
    """
    codes = territories.academies().code_academie.tolist()
    u = rng.normal(0.0, ACADEMIE_SD, len(codes))
    X = pd.DataFrame(_design(s)).drop(columns="Intercept")
    grp = X.groupby(s.code_academie.to_numpy())
    Z = grp.mean().reindex(codes).fillna(0.0).to_numpy()
    w = grp.size().reindex(codes).fillna(0.0).to_numpy()
    A = np.column_stack([np.ones(len(codes)), Z]) * np.sqrt(w)[:, None]
    beta = np.linalg.lstsq(A, u * np.sqrt(w), rcond=None)[0]
    r = u - np.column_stack([np.ones(len(codes)), Z]) @ beta
    r *= u.std() / max(r.std(), 1e-9)
    r -= np.average(r, weights=np.maximum(w, 1e-9))
    r = np.round(r, 4)
    return dict(zip(codes, (float(x) for x in r)))


def _linear_predictor(s: pd.DataFrame, terms: dict[str, float], acad: dict[str, float]) -> np.ndarray:
    X = _design(s)
    eta = sum(terms[t] * X[t] for t in terms)
    return eta + s.code_academie.map(acad).to_numpy(float)


def _registration(s: pd.DataFrame, p: pd.DataFrame, period: Period, rng: np.random.Generator) -> None:
    """Adoption (logistic) and registration dates (deployment waves after each project's launch)."""
    n = len(s)
    s["inscrit"] = rng.random(n) < _sigmoid(s.eta_adoption.to_numpy())
    launch = p.lancement.to_numpy().astype("datetime64[D]")[s.projet.to_numpy()]
    horizon = (period.end_date - launch).astype("timedelta64[D]").astype(np.int64).astype(float)
    scale = 240.0
    u = rng.random(n) * (1 - np.exp(-horizon / scale))
    delay = np.floor(-scale * np.log1p(-u)).astype(np.int64)
    date = launch + delay.astype("timedelta64[D]")
    s["date_inscription"] = np.where(s.inscrit, date, np.datetime64("NaT"))
    s["mediacentre"] = np.where(rng.random(n) < 0.08, "EduGAR", p.ent.to_numpy()[s.projet.to_numpy()])


# --------------------------------------------------------------------------- catalogue and subscriptions

def _catalogue() -> pd.DataFrame:
    """The resource catalogue (fixed: independent of the seed)."""
    rng = np.random.default_rng(12345)
    rows = []
    k = 0
    for e, editeur in enumerate(N.EDITEURS):
        n_res = 5
        types = rng.choice(len(N.RESOURCE_TYPES), size=n_res, p=[0.4, 0.08, 0.16, 0.08, 0.06, 0.1, 0.07, 0.05])
        for t in types:
            k += 1
            typ = N.RESOURCE_TYPES[t]
            degre = rng.choice(["premier", "second", "tous"], p=[0.3, 0.5, 0.2])
            subject = N.SUBJECTS[rng.integers(len(N.SUBJECTS))]
            cycle = {"premier": "cycle 3", "second": rng.choice(["collège", "lycée", "cycle 4"]),
                     "tous": "tous niveaux"}[degre]
            nom = f"{typ.capitalize()} {subject} {cycle}" if typ in ("manuel numérique", "soutien scolaire",
                                                                     "banque de ressources") \
                else f"{typ.capitalize()} {editeur.split()[-1]} {cycle}"
            prix = 0.0 if (typ == "banque de ressources" and rng.random() < 0.5) else round(rng.uniform(1.5, 9), 2)
            rows.append({"id_ressource": f"R{k:04d}", "nom": nom, "editeur": editeur, "type_ressource": typ,
                         "degre": degre, "popularite": float(np.round(rng.lognormal(0, 0.8), 4)),
                         "prix": prix, "mobile": float(np.round(rng.uniform(0.6, 1.5), 3))})
    return pd.DataFrame(rows)


def _subscriptions(s: pd.DataFrame, cat: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Choose each registered school's resources (Gumbel top-k); return an index matrix (−1 = none)."""
    n = len(s)
    kmax = 5
    eligible_first = cat.degre.isin(["premier", "tous"]).to_numpy()
    eligible_second = cat.degre.isin(["second", "tous"]).to_numpy()
    ecole = (s.niveau == "ecole").to_numpy()
    elig = np.where(ecole[:, None], eligible_first[None, :], eligible_second[None, :])
    keys = np.log(cat.popularite.to_numpy())[None, :] + rng.gumbel(size=(n, len(cat)))
    keys = np.where(elig, keys, -np.inf)
    top = np.argsort(-keys, axis=1, kind="stable")[:, :kmax]
    k = np.where(ecole, 1 + rng.binomial(2, 0.4, n),
                 np.where(s.niveau == "college", 2 + rng.binomial(2, 0.5, n), 2 + rng.binomial(3, 0.5, n)))
    res = np.where(np.arange(kmax)[None, :] < k[:, None], top, -1)
    res[~s.inscrit.to_numpy()] = -1
    return res


# --------------------------------------------------------------------------- usage

def _split_year(rng, school_idx, totals, month_w, res, res_w, prof_p, supp_p, mobile, chunk=4000):
    """Split yearly totals into (school, month, resource, profil, support) counts, exactly.

    Successive multinomial draws (months, then resources, profils, supports), by chunks of
    schools to bound memory. ``mobile`` multiplies the mobile share per resource.
    Returns arrays (school, month, resource, profil, support, count) of the positive cells.
    """
    out = []
    for c0 in range(0, len(school_idx), chunk):
        sl = slice(c0, c0 + chunk)
        si, tot = school_idx[sl], totals[sl]
        m = _multinomial_rows(rng, tot, month_w[sl])                       # (S, 12)
        cs, cm = np.nonzero(m)
        cnt = m[cs, cm]
        sch = si[cs]
        r = _multinomial_rows(rng, cnt, res_w[sch])                        # (cells, K)
        c1, ck = np.nonzero(r)
        cnt1 = r[c1, ck]
        sch1, mon1 = sch[c1], cm[c1]
        res1 = res[sch1, ck]
        pr = _multinomial_rows(rng, cnt1, prof_p[sch1])                    # (cells, 4)
        c2, cp = np.nonzero(pr)
        cnt2 = pr[c2, cp]
        factor = np.ones((len(c2), 3))
        factor[:, 2] = mobile[res1[c2]]
        sp = _multinomial_rows(rng, cnt2, supp_p[sch1[c2]] * factor)
        c3, cu = np.nonzero(sp)
        out.append((sch1[c2][c3], mon1[c2][c3], res1[c2][c3], cp[c3], cu, sp[c3, cu]))
    if not out:
        z = np.zeros(0, dtype=np.int64)
        return (z,) * 6
    return tuple(np.concatenate(parts) for parts in zip(*out))


def _usage(s, cat, res, period, acad_u, rng):
    """Monthly accès lines; the usage-year totals follow the planted negative binomial model."""
    n = len(s)
    months = period.month_starts()
    nm = len(months)
    eleves = s.nombre_eleves.to_numpy(float)
    eta = _linear_predictor(s, USAGE_TERMS, acad_u)
    mu = eleves * np.exp(eta)
    frailty = rng.gamma(1.0 / USAGE_ALPHA, USAGE_ALPHA, n)            # NB2 = Poisson-gamma mixture
    # month weights: seasonality × growth; active from the registration month on
    season = np.tile(SEASON, nm // 12 + 1)[:nm]
    trend = np.exp(MONTHLY_GROWTH * (np.arange(nm) - (nm - 12)))      # 1 at the start of the last year
    reg_month = s.date_inscription.to_numpy().astype("datetime64[M]").astype("datetime64[D]")
    active = months[None, :] >= reg_month[:, None]
    active &= s.inscrit.to_numpy()[:, None]
    w_all = season[None, :] * trend[None, :] * active
    usage_year = period.school_years.index(USAGE_YEAR)
    year_of_month = np.repeat(np.arange(nm // 12), 12)
    # resource weights within a school
    res_w = np.where(res >= 0, cat.popularite.to_numpy()[np.maximum(res, 0)] * rng.lognormal(0, 0.5, res.shape), 0.0)
    # profils and supports
    second = (s.niveau != "ecole").to_numpy()
    prof = np.array([0.78, 0.17, 0.02, 0.03])
    prof_p = np.tile(prof, (n, 1))
    prof_p[~second, 2] = 0.0
    prof_p *= rng.dirichlet(np.full(4, 60.0), n)
    mobile = np.clip(rng.normal(0.2, 0.04, n), 0.08, 0.35)
    tablette = np.where(second, rng.uniform(0.03, 0.09, n), rng.uniform(0.08, 0.2, n))
    supp_p = np.column_stack([1 - mobile - tablette, tablette, mobile])
    parts = []
    year_totals = {}
    for y in range(nm // 12):
        cols = np.flatnonzero(year_of_month == y)
        w = w_all[:, cols]
        full = (season * trend)[cols].sum()
        share = w.sum(axis=1) / full
        rel = full / (season * trend)[year_of_month == usage_year].sum()
        lam = mu * frailty * rel * share
        tot = rng.poisson(lam)
        tot[share == 0] = 0
        year_totals[period.school_years[y]] = tot
        idx = np.flatnonzero(tot > 0)
        sch, mon, rr, pp, su, cnt = _split_year(rng, idx, tot[idx], w[idx], res, res_w, prof_p, supp_p,
                                                cat.mobile.to_numpy())
        parts.append((sch, mon + cols[0], rr, pp, su, cnt))
    sch, mon, rr, pp, su, cnt = (np.concatenate(x) for x in zip(*parts))
    order = np.lexsort((su, pp, rr, s.uai.to_numpy().argsort().argsort()[sch], mon))
    acces = pd.DataFrame({"mois": _take(period.months, mon[order]),
                          "uai": _take(s.uai, sch[order]),
                          "id_ressource": _take(cat.id_ressource, rr[order]),
                          "profil": _take(PROFILS, pp[order]),
                          "support": _take(SUPPORTS, su[order]),
                          "acces": cnt[order]})
    arrays = {"sch": sch[order], "mon": mon[order], "res": rr[order], "prof": pp[order], "cnt": cnt[order]}
    return acces, year_totals, arrays


# --------------------------------------------------------------------------- other GAR files

def _abonnements(s, cat, res, period, rng):
    """Yearly subscriptions of each registered school to its resources, with licences and amounts."""
    teachers = np.maximum(1, np.round(s.nombre_eleves.to_numpy() / np.where(s.niveau == "ecole", 22, 13)))
    rows = []
    reg = s.date_inscription.to_numpy()
    for y, sy in enumerate(period.school_years):
        y0 = _days(f"{sy[:4]}-09-01")
        y1 = _days(f"{sy[5:]}-08-31")
        ok = s.inscrit.to_numpy() & (reg <= y1)
        si, kk = np.nonzero((res >= 0) & ok[:, None])
        m = len(si)
        start = np.maximum(reg[si], y0)
        lic_e = np.ceil(s.nombre_eleves.to_numpy()[si] * rng.uniform(0.6, 1.0, m)).astype(np.int64)
        lic_t = np.ceil(teachers[si] * rng.uniform(0.6, 1.0, m)).astype(np.int64) + (s.niveau.to_numpy()[si] != "ecole")
        r = res[si, kk]
        montant = np.round((lic_e + lic_t) * cat.prix.to_numpy()[r] * rng.uniform(0.9, 1.1, m), 2)
        rows.append(pd.DataFrame({"s": si, "r": r, "year": y, "date_debut": start, "date_fin": y1,
                                  "lic_e": lic_e, "lic_t": lic_t, "montant_ht": montant}))
    ab = pd.concat(rows, ignore_index=True).sort_values(["year", "s", "r"], kind="stable").reset_index(drop=True)
    ab["id_abonnement"] = [f"AB{i:07d}" for i in range(1, len(ab) + 1)]
    ab["licences"] = ab.lic_e + ab.lic_t
    return ab


def _affectations(s, ab, period):
    """Licences assigned each month of an active subscription (never above its licences)."""
    months = period.month_starts()
    rows = []
    second = (s.niveau != "ecole").to_numpy()
    for y in sorted(ab.year.unique()):
        a = ab[ab.year == y]
        cols = np.arange(12 * y, 12 * y + 12)
        start_m = a.date_debut.to_numpy().astype("datetime64[M]").astype("datetime64[D]")
        act = months[cols][None, :] >= start_m[:, None]
        ai, mi = np.nonzero(act)
        start_idx = (start_m.astype("datetime64[M]") - months[0].astype("datetime64[M]")).astype(np.int64)
        since = cols[mi] - start_idx[ai]
        fill = np.minimum(0.95, 0.6 + 0.04 * since)
        lic_e = a.lic_e.to_numpy()[ai]
        lic_t = a.lic_t.to_numpy()[ai]
        sch = a.s.to_numpy()[ai]
        r = a.r.to_numpy()[ai]
        el = np.floor(lic_e * fill).astype(np.int64)
        en = np.floor((lic_t - second[sch]) * fill).astype(np.int64)
        doc = second[sch].astype(np.int64)
        for p_i, val in ((0, el), (1, en), (2, doc)):
            keep = val > 0
            rows.append((cols[mi][keep], sch[keep], r[keep], np.full(keep.sum(), p_i), val[keep]))
    mon, sch, r, p, v = (np.concatenate(x) for x in zip(*rows))
    rank = s.uai.to_numpy().argsort().argsort()
    order = np.lexsort((p, r, rank[sch], mon))
    return mon[order], sch[order], r[order], p[order], v[order]


def _accedants(s, period, rng):
    """Users holding GAR access, by school year and profil (pupils never above enrolment)."""
    rows = []
    reg = s.date_inscription.to_numpy()
    n = len(s)
    second = (s.niveau != "ecole").to_numpy()
    eleves = s.nombre_eleves.to_numpy()
    teachers = np.maximum(1, np.round(eleves / np.where(second, 13, 22))).astype(np.int64)
    base_e = rng.uniform(0.8, 0.98, n)
    for sy in period.school_years:
        y1 = _days(f"{sy[5:]}-08-31")
        ok = s.inscrit.to_numpy() & (reg <= y1)
        el = np.minimum(eleves, np.round(eleves * np.clip(base_e + rng.normal(0, 0.01, n), 0.5, 1.0)))
        en = teachers + rng.integers(0, 3, n)
        doc = np.where(second, 1 + rng.integers(0, 2, n), 0)
        autre = 1 + rng.poisson(2, n)
        for p_i, val in enumerate((el, en, doc, autre)):
            keep = ok & (val > 0)
            rows.append(pd.DataFrame({"annee_scolaire": sy, "s": np.flatnonzero(keep), "p": p_i,
                                      "accedants": val[keep].astype(np.int64)}))
    acc = pd.concat(rows, ignore_index=True)
    acc["uai"] = s.uai.to_numpy()[acc.s]
    acc = acc.sort_values(["annee_scolaire", "uai", "p"], kind="stable").reset_index(drop=True)
    return acc


def _accedants_actifs(s, acc, arrays, period, rng):
    """Distinct active accédants per month and profil (≤ accès, ≤ accédants of the year)."""
    n = len(s)
    key = (arrays["mon"].astype(np.int64) * n + arrays["sch"]) * 4 + arrays["prof"]
    uk, inv = np.unique(key, return_inverse=True)
    tot = np.bincount(inv, weights=arrays["cnt"]).astype(np.int64)
    prof = uk % 4
    sch = (uk // 4) % n
    mon = uk // 4 // n
    year = mon // 12
    cap = np.zeros((len(period.school_years), n, 4), dtype=np.int64)
    ys = {sy: i for i, sy in enumerate(period.school_years)}
    cap[acc.annee_scolaire.map(ys).to_numpy(), acc.s.to_numpy(), acc.p.to_numpy()] = acc.accedants.to_numpy()
    frac = rng.uniform(0.3, 0.6, len(uk))
    act = np.minimum.reduce([tot, cap[year, sch, prof], np.maximum(1, np.round(tot * frac)).astype(np.int64)])
    keep = act > 0
    return pd.DataFrame({"mois": _take(period.months, mon[keep]), "uai": _take(s.uai, sch[keep]),
                         "profil": _take(PROFILS, prof[keep]), "accedants_actifs": act[keep]})


def _audience(s, p, arrays, period, rng):
    """DNMA audience: a line for every measured school-month, zeros included."""
    n = len(s)
    nm = len(period.months)
    months = period.month_starts()
    proj = s.projet.to_numpy()
    measured = p.dnma.to_numpy()[proj]
    launch = p.lancement.to_numpy()[proj].astype("datetime64[M]").astype("datetime64[D]")
    mask = measured[:, None] & (months[None, :] >= launch[:, None])
    acc_sm = np.zeros((n, nm), dtype=np.int64)
    np.add.at(acc_sm, (arrays["sch"], arrays["mon"]), arrays["cnt"])
    season = np.tile(SEASON, nm // 12 + 1)[:nm]
    eleves = s.nombre_eleves.to_numpy(float)
    ent_season = np.where(season < 0.05, season / 6.0, season)  # ENTs are almost idle in August
    lam = eleves[:, None] * rng.uniform(2.0, 6.0, n)[:, None] * ent_season[None, :]
    visites = rng.poisson(lam) + acc_sm
    visiteurs = np.minimum(visites, rng.binomial(np.round(eleves * 1.1).astype(np.int64)[:, None],
                                                 np.clip(0.65 * season, 0, 0.95)[None, :]))
    visiteurs = np.where((visites > 0) & (visiteurs == 0), 1, visiteurs)
    si, mi = np.nonzero(mask)
    rank = s.uai.to_numpy().argsort().argsort()
    order = np.lexsort((rank[si], mi))
    si, mi = si[order], mi[order]
    return pd.DataFrame({"mois": _take(period.months, mi), "uai": _take(s.uai, si),
                         "ent": _take(p.ent, proj[si]), "visites": visites[si, mi],
                         "visiteurs": visiteurs[si, mi]})


# --------------------------------------------------------------------------- CRM and budget

def _random_dates(rng, n, start, end):
    a, b = _days(start), _days(end)
    d = a + rng.integers(0, int((b - a).astype(int)) + 1, n).astype("timedelta64[D]")
    return d


def _crm(s, communes, p, auth, cat, rng):
    deps = territories.departements()
    acteurs = []
    for a in territories.academies().itertuples():
        acteurs.append(("academie", territories.academie_label(a.code_academie, capitalize=True), a.code_academie))
    for r in territories.regions().itertuples():
        acteurs.append(("region", f"Région {r.nom_region}", r.code_region))
    for d in deps.itertuples():
        acteurs.append(("departement", f"Département {d.nom_departement}", d.code_departement))
    com_names = dict(zip(communes.code_commune, communes.nom_commune))
    for c in auth["commune"].code:
        acteurs.append(("commune", f"Commune de {com_names[c]}", c))
    n = len(s)
    followed = s.referent.to_numpy() | s.formation.to_numpy() | (rng.random(n) < 0.4)
    for uai, nom in zip(s.uai[followed], s.nom[followed]):
        acteurs.append(("etablissement", nom, uai))
    siren = 300_000_000 + rng.choice(700_000_000, size=len(N.EDITEURS) + len(N.ENT_VENDORS), replace=False)
    for i, e in enumerate(N.EDITEURS):
        acteurs.append(("editeur", e, str(siren[i])))
    for j, (v, _) in enumerate(N.ENT_VENDORS):
        acteurs.append(("ent", v, str(siren[len(N.EDITEURS) + j])))
    act = pd.DataFrame(acteurs, columns=["type", "nom", "code"])
    act.insert(0, "id_acteur", [f"ACT{i:06d}" for i in range(1, len(act) + 1)])
    id_of = {(t, c): i for t, c, i in zip(act.type, act.code, act.id_acteur)}

    # contracts
    contrats = []
    for niveau, a in auth.items():
        for code, statut, old in zip(a.code, a.statut, a.ancien_clos):
            ida = id_of[(niveau, code)]
            if old:
                sig = _random_dates(rng, 1, "2015-01-01", "2018-12-31")[0]
                contrats.append((ida, "convention_gar", sig, sig, sig + np.timedelta64(3 * 365, "D"), "clos"))
            if statut == "signe":
                sig = _random_dates(rng, 1, "2019-09-01", "2024-06-30")[0]
                contrats.append((ida, "convention_gar", sig, sig, sig + np.timedelta64(6 * 365, "D"), "signe"))
            elif statut == "en_attente":
                contrats.append((ida, "convention_gar", np.datetime64("NaT"), np.datetime64("NaT"),
                                 np.datetime64("NaT"), "en_attente"))
            elif statut == "clos":
                sig = _random_dates(rng, 1, "2016-01-01", "2019-12-31")[0]
                contrats.append((ida, "convention_gar", sig, sig, sig + np.timedelta64(4 * 365, "D"), "clos"))
    for pr in p.itertuples():
        if pr.perimetre in ("region", "departement"):
            ida = id_of[(pr.perimetre, pr.code)]
            contrats.append((ida, "convention_ent", pr.lancement - np.timedelta64(120, "D"),
                             pr.lancement, pr.lancement + np.timedelta64(8 * 365, "D"), "signe"))
    for e in N.EDITEURS:
        sig = _random_dates(rng, 1, "2018-01-01", "2023-06-30")[0]
        contrats.append((id_of[("editeur", act.code[act.nom == e].iloc[0])], "licence", sig, sig,
                         sig + np.timedelta64(5 * 365, "D"), "signe"))
    ctr = pd.DataFrame(contrats, columns=["id_acteur", "objet", "date_signature", "date_debut", "date_fin",
                                          "statut"])
    ctr.insert(0, "id_contrat", [f"CTR{i:06d}" for i in range(1, len(ctr) + 1)])
    for c in ("date_signature", "date_debut", "date_fin"):
        ctr[c] = _fmt_dates(ctr[c].to_numpy().astype("datetime64[D]"))

    # contacts (roles only, no names)
    contacts = []
    for uai, ref, fol in zip(s.uai, s.referent, followed):
        if ref:
            contacts.append((id_of[("etablissement", uai)], "referent_gar"))
            if rng.random() < 0.1:
                contacts.append((id_of[("etablissement", uai)], "referent_gar"))
        elif fol and rng.random() < 0.25:
            contacts.append((id_of[("etablissement", uai)], "referent_numerique"))
    for a in territories.academies().code_academie:
        contacts.append((id_of[("academie", a)], "drane"))
        if rng.random() < 0.5:
            contacts.append((id_of[("academie", a)], "drane"))
    for niveau, a in auth.items():
        for code, statut in zip(a.code, a.statut):
            if statut == "signe" or (niveau != "commune" and rng.random() < 0.5):
                contacts.append((id_of[(niveau, code)], "referent_numerique"))
    for j, (v, _) in enumerate(N.ENT_VENDORS):
        contacts.append((id_of[("ent", act.code[act.nom == v].iloc[0])], "chef_de_projet"))
    for e in N.EDITEURS:
        contacts.append((id_of[("editeur", act.code[act.nom == e].iloc[0])], "correspondant_editeur"))
    cts = pd.DataFrame(contacts, columns=["id_acteur", "role"])
    cts.insert(0, "id_contact", [f"CT{i:06d}" for i in range(1, len(cts) + 1)])

    # training and support actions at schools
    rows = []
    k_form = np.where(s.formation, 1 + rng.poisson(0.6, n), 0)
    for t, k in (("formation", k_form), ("webinaire", rng.binomial(2, 0.12, n)),
                 ("accompagnement", rng.binomial(1, 0.15, n))):
        si = np.repeat(np.arange(n), k)
        d = _random_dates(rng, len(si), "2022-09-01", "2025-06-30")
        wd = (d.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
        d = d + np.where(wd >= 5, 7 - wd, 0).astype("timedelta64[D]")
        rows.append(pd.DataFrame({"date": d, "uai": s.uai.to_numpy()[si], "type_action": t}))
    actions = pd.concat(rows, ignore_index=True).drop_duplicates(["date", "uai", "type_action"])
    actions = actions.sort_values(["date", "uai", "type_action"], kind="stable").reset_index(drop=True)
    actions["date"] = _fmt_dates(actions.date.to_numpy().astype("datetime64[D]"))
    return act, ctr, cts, actions


def _budget(s, ab, auth, period, rng):
    """Yearly digital-resource spending per local authority (GAR share ≤ total)."""
    funder = np.where(s.niveau == "ecole", "commune", np.where(s.niveau == "college", "departement", "region"))
    code = np.where(s.niveau == "ecole", s.code_commune, np.where(s.niveau == "college", s.code_departement,
                                                                  s.code_region))
    a = pd.DataFrame({"annee": ab.date_debut.to_numpy().astype("datetime64[Y]").astype(int) + 1970,
                      "niveau": funder[ab.s], "code": code[ab.s], "montant": ab.montant_ht.to_numpy()})
    gar = a.groupby(["annee", "niveau", "code"]).montant.sum().to_dict()
    years = sorted({int(m[:4]) for m in period.months})
    rows = []
    base = {"region": (2e5, 2e6), "departement": (5e4, 5e5), "commune": (300.0, 2e4)}
    for niveau in ("region", "departement", "commune"):
        codes = auth[niveau].code.to_numpy()
        lo, hi = base[niveau]
        level = rng.uniform(lo, hi, len(codes))
        for y in years:
            g = np.array([gar.get((y, niveau, c), 0.0) for c in codes])
            total = g * rng.uniform(1.2, 2.5, len(codes)) + level * rng.uniform(0.8, 1.2, len(codes))
            rows.append(pd.DataFrame({"annee": y, "niveau": niveau, "code": codes,
                                      "depenses_ressources_numeriques": np.round(total, 2),
                                      "dont_gar": np.round(g, 2)}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------- published layouts

def _annuaire(s: pd.DataFrame) -> pd.DataFrame:
    n = len(s)
    deps = territories.departements().set_index("code_departement")
    lv = s.niveau.to_numpy()
    tl = s.type_lycee.to_numpy()
    prive = (s.secteur == "prive").to_numpy()
    col = {c: np.full(n, "", dtype=object) for c in ANNUAIRE_HEADER}
    col["Identifiant_de_l_etablissement"] = s.uai.to_numpy()
    col["Nom_etablissement"] = s.nom.to_numpy()
    col["Type_etablissement"] = np.select([lv == "ecole", lv == "college"], ["Ecole", "Collège"], "Lycée")
    col["Statut_public_prive"] = np.where(prive, "Privé", "Public")
    col["Adresse_1"] = np.asarray([f"{1 + i % 97} rue {N.PLACES[i % len(N.PLACES)]}" for i in range(n)])
    col["Code postal"] = np.asarray([c[:2] + "0" + c[-2:] if len(c) == 5 else c for c in s.code_commune])
    col["Code_commune"] = s.code_commune.to_numpy()
    col["Nom_commune"] = s.nom_commune.to_numpy()
    col["Code_departement"] = np.asarray([register_departement(d) for d in s.code_departement])
    col["Code_academie"] = s.code_academie.to_numpy()
    col["Code_region"] = s.code_region.to_numpy()
    col["Ecole_maternelle"] = np.where(lv == "ecole", "1", "")
    col["Ecole_elementaire"] = np.where(lv == "ecole", "1", "")
    for c, ok in (("Voie_generale", (tl == "LEGT") | (tl == "LPO")), ("Voie_technologique", (tl == "LEGT") | (tl == "LPO")),
                  ("Voie_professionnelle", (tl == "LP") | (tl == "LPO"))):
        col[c] = np.where(lv == "ecole", "", np.where(ok, "1", "0"))
    col["Mail"] = np.asarray([f"ce.{u.lower()}@ac-exemple.fr" for u in s.uai])
    col["Restauration"] = "1"
    col["Hebergement"] = np.where(lv == "lycee", "1", "0")
    col["Appartenance_Education_Prioritaire"] = s.education_prioritaire.to_numpy()
    col["Nombre_d_eleves"] = s.nombre_eleves.astype(str).to_numpy()
    col["position"] = np.asarray([f"{a}, {b}" for a, b in zip(s.latitude, s.longitude)])
    col["Type_contrat_prive"] = np.where(prive, "CONTRAT D'ASSOCIATION TOUTES CLASSES", "SANS OBJET")
    col["Libelle_departement"] = deps.nom_departement.reindex(s.code_departement).to_numpy()
    col["Libelle_academie"] = deps.nom_academie.reindex(s.code_departement).to_numpy()
    col["Libelle_region"] = deps.nom_region.reindex(s.code_departement).to_numpy()
    col["latitude"] = s.latitude.astype(str).to_numpy()
    col["longitude"] = s.longitude.astype(str).to_numpy()
    col["precision_localisation"] = "Numéro de rue"
    col["date_ouverture"] = "1970-09-01"
    col["date_maj_ligne"] = "2023-06-08"
    col["etat"] = "OUVERT"
    col["ministere_tutelle"] = "MINISTERE DE L'EDUCATION NATIONALE"
    col["etablissement_multi_lignes"] = "0"
    col["rpi_concentre"] = np.where(lv == "ecole", "0", "")
    col["code_nature"] = np.select([lv == "ecole", lv == "college", tl == "LEGT", tl == "LP"],
                                   ["151", "340", "300", "320"], "306")
    col["libelle_nature"] = np.select([lv == "ecole", lv == "college", tl == "LEGT", tl == "LP"],
                                      ["ECOLE DE NIVEAU ELEMENTAIRE", "COLLEGE",
                                       "LYCEE ENSEIGNT GENERAL ET TECHNOLOGIQUE", "LYCEE PROFESSIONNEL"],
                                      "LYCEE POLYVALENT")
    col["Code_type_contrat_prive"] = np.where(prive, "30", "99")
    return pd.DataFrame(col)


_ACADEMIE_LABEL = {"28": "LA REUNION"}


def _ips_labels(s: pd.DataFrame) -> dict[str, np.ndarray]:
    """Académie and département labels as the IPS files write them (upper case, hyphens)."""
    deps = territories.departements()
    aca = {c: _ACADEMIE_LABEL.get(c, territories.slug(n).upper().replace(" ", "-"))
           for c, n in zip(deps.code_academie, deps.nom_academie)}
    dep = {c: territories.slug(n).upper().replace(" ", "-") for c, n in zip(deps.code_departement,
                                                                           deps.nom_departement)}
    return {"aca": s.code_academie.map(aca).to_numpy(), "dep": s.code_departement.map(dep).to_numpy(),
            "code_dep": s.code_departement.str.zfill(3).to_numpy(),
            "secteur": np.where(s.secteur == "prive", "privé sous contrat", "public")}


def _ips_files(s: pd.DataFrame, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    out = {}
    for niveau, name in (("ecole", "referentiel/ips_ecoles"), ("college", "referentiel/ips_colleges"),
                         ("lycee", "referentiel/ips_lycees")):
        sub = s[s.niveau == niveau]
        lab = _ips_labels(sub)
        m = len(sub)
        sd = np.round(rng.uniform(22, 36, m), 1)
        if niveau in ("ecole", "college"):
            df = pd.DataFrame({"Rentrée scolaire": IPS_RENTREE, "Académie": lab["aca"],
                               "Code du département": lab["code_dep"], "Département": lab["dep"],
                               "UAI": sub.uai.to_numpy(), "Nom de l'établissment": sub.nom.str.upper().to_numpy(),
                               "Code INSEE de la commune": sub.code_commune.to_numpy(),
                               "Nom de la commune": sub.nom_commune.str.upper().to_numpy(),
                               "Secteur": lab["secteur"]})
            if niveau == "college":
                df["Effectifs"] = sub.nombre_eleves.to_numpy().astype(float)
                df["IPS"] = sub.ips.to_numpy()
                df["Ecart-type de l'IPS"] = sd
            else:
                df["IPS"] = sub.ips.to_numpy()
        else:
            tl = sub.type_lycee.to_numpy()
            eff = sub.nombre_eleves.to_numpy().astype(float)
            gt_share = np.where(tl == "LEGT", 1.0, np.where(tl == "LP", 0.0, np.round(rng.uniform(0.5, 0.8, m), 2)))
            eff_gt = np.round(eff * gt_share)
            eff_pro = eff - eff_gt
            ips = sub.ips.to_numpy()
            gap = rng.uniform(10, 25, m)
            ips_gt = np.round(np.where(tl == "LPO", ips + gap * (1 - gt_share), ips), 1)
            ips_pro = np.round(np.where(tl == "LPO", ips - gap * gt_share, ips), 1)
            df = pd.DataFrame({"rentree_scolaire": IPS_RENTREE, "academie": lab["aca"],
                               "code_du_departement": lab["code_dep"], "departement": lab["dep"],
                               "uai": sub.uai.to_numpy(), "nom_de_l_etablissment": sub.nom.str.upper().to_numpy(),
                               "code_insee_de_la_commune": sub.code_commune.to_numpy(),
                               "nom_de_la_commune": sub.nom_commune.str.upper().to_numpy(),
                               "secteur": lab["secteur"], "type_de_lycee": tl,
                               "effectifs_voie_gt": np.where(eff_gt > 0, eff_gt, np.nan),
                               "effectifs_voie_pro": np.where(eff_pro > 0, eff_pro, np.nan),
                               "effectifs_ensemble_gt_pro": eff,
                               "ips_voie_gt": np.where(eff_gt > 0, ips_gt, np.nan),
                               "ips_voie_pro": np.where(eff_pro > 0, ips_pro, np.nan),
                               "ips_ensemble_gt_pro": ips,
                               "ecart_type_de_l_ips_voie_gt": np.where(eff_gt > 0, sd, np.nan),
                               "ecart_type_de_l_ips_voie_pro": np.where(eff_pro > 0, np.round(sd * 0.85, 1),
                                                                        np.nan)})
        out[name] = df.reset_index(drop=True)
    return out


# --------------------------------------------------------------------------- main entry point

RAW_FILES = {"referentiel/annuaire": ("referentiel/annuaire.csv", True),
             "referentiel/ips_ecoles": ("referentiel/ips_ecoles.csv", False),
             "referentiel/ips_colleges": ("referentiel/ips_colleges.csv", True),
             "referentiel/ips_lycees": ("referentiel/ips_lycees.csv", False)}


def build_frames(seed: int = config.SAMPLE_SEED, scale: str = "default", years: int = 2) -> tuple[dict, dict]:
    """Generate every frame of the sample and its planted effects (no anomaly yet, nothing written).

    Parameters
    ----------
    seed : int
        Seed of the random generator.
    scale : {"default", "national"}
        About 3,000 schools, or the national size (about 60,000).
    years : int
        Number of school years, by month, ending in August 2025 (≥ 1).

    Returns
    -------
    frames : dict
        Contract name → DataFrame as it will be written (dates as ``YYYY-MM-DD`` strings;
        ``referentiel/*`` frames in their published layouts, every cell a string or number).
    truth : dict
        The planted truth (without anomalies).
    """
    if scale not in SCALES:
        raise ConfigError(f"Échelle inconnue : {scale!r}. Valeurs possibles : {', '.join(SCALES)}.")
    if not 1 <= int(years) <= 6:
        raise ConfigError(f"Nombre d'années scolaires invalide : {years} (entre 1 et 6).")
    rng = np.random.default_rng(seed)
    period = Period(months_of_period(int(years)))
    t0 = time.perf_counter()
    cal = _calibration()
    s, communes = _schools(cal, scale, rng)
    p = _projects(s, rng)
    s["projet"] = _assign_projects(s, p)
    auth = _authorities(s, communes, rng)
    _factors(s, auth, rng)
    acad_a = _academie_effects(s, rng)
    s["eta_adoption"] = _linear_predictor(s, ADOPTION_TERMS, acad_a)
    _registration(s, p, period, rng)
    usage_sample = (s.inscrit & (s.date_inscription < _days(USAGE_YEAR[:4] + "-09-01"))).to_numpy()
    acad_u = _academie_effects(s[usage_sample], rng)
    cat = _catalogue()
    res = _subscriptions(s, cat, rng)
    log.info("structure: %d établissements (%.1f s)", len(s), time.perf_counter() - t0)
    acces, year_totals, arrays = _usage(s, cat, res, period, acad_u, rng)
    log.info("accès: %d lignes (%.1f s)", len(acces), time.perf_counter() - t0)
    ab = _abonnements(s, cat, res, period, rng)
    mon, sch, r, pr, val = _affectations(s, ab, period)
    acc = _accedants(s, period, rng)
    actifs = _accedants_actifs(s, acc, arrays, period, rng)
    audience = _audience(s, p, arrays, period, rng)
    acc_sm = np.zeros((len(s), len(period.months)), dtype=np.int64)
    np.add.at(acc_sm, (arrays["sch"], arrays["mon"]), arrays["cnt"])
    dnma = published_dnma(s, audience, acc_sm, list(period.months), np.random.default_rng([int(seed), 18]))
    acteurs, contrats, contacts, actions = _crm(s, communes, p, auth, cat, rng)
    budget = _budget(s, ab, auth, period, rng)

    reg = s[s.inscrit].copy()
    frames: dict[str, pd.DataFrame] = {
        "gar/etablissements": pd.DataFrame({
            "uai": reg.uai.to_numpy(), "date_inscription": _fmt_dates(reg.date_inscription.to_numpy()),
            "mediacentre": reg.mediacentre.to_numpy(),
            "projet_ent": p.projet_ent.to_numpy()[reg.projet.to_numpy()]}),
        "gar/ressources": cat[["id_ressource", "nom", "editeur", "type_ressource", "degre"]].copy(),
        "gar/abonnements": pd.DataFrame({
            "id_abonnement": ab.id_abonnement, "uai": _take(s.uai, ab.s.to_numpy()),
            "id_ressource": _take(cat.id_ressource, ab.r.to_numpy()),
            "date_debut": _fmt_dates(ab.date_debut.to_numpy().astype("datetime64[D]")),
            "date_fin": _fmt_dates(ab.date_fin.to_numpy().astype("datetime64[D]")),
            "licences": ab.licences.to_numpy(), "montant_ht": ab.montant_ht.to_numpy()}),
        "gar/affectations": pd.DataFrame({
            "mois": _take(period.months, mon), "uai": _take(s.uai, sch),
            "id_ressource": _take(cat.id_ressource, r), "profil": _take(PROFILS, pr),
            "affectations": val}),
        "gar/accedants": pd.DataFrame({"annee_scolaire": acc.annee_scolaire, "uai": acc.uai,
                                       "profil": np.asarray(PROFILS)[acc.p], "accedants": acc.accedants}),
        "gar/acces": acces,
        "gar/accedants_actifs": actifs,
        **dnma,
        "crm/acteurs": acteurs,
        "crm/contrats": contrats,
        "crm/contacts": contacts,
        "crm/actions": actions,
        "budget/depenses": budget,
        "referentiel/communes": communes[communes.code_commune.isin(set(s.code_commune))][
            ["code_commune", "population", "superficie_km2"]].reset_index(drop=True),
        "referentiel/annuaire": _annuaire(s),
        **_ips_files(s, rng),
    }
    from importlib.metadata import PackageNotFoundError, version
    try:
        ver = version("gar-analysis")
    except PackageNotFoundError:  # pragma: no cover
        ver = "0.1.0"
    truth = {
        "seed": int(seed), "scale": scale, "generated_by": f"gar-analysis {ver}",
        "periode": {"debut": period.debut, "fin": period.fin},
        "effects": {
            "adoption": {"family": "binomial", "outcome": "inscrit", "terms": dict(ADOPTION_TERMS),
                         "academie_sd": ACADEMIE_SD, "academie": acad_a},
            "usage": {"family": "negative_binomial", "outcome": "acces", "exposure": "nombre_eleves",
                      "annee_scolaire": USAGE_YEAR, "terms": dict(USAGE_TERMS), "alpha": USAGE_ALPHA,
                      "academie_sd": ACADEMIE_SD, "academie": acad_u,
                      "population": "établissements inscrits avant le 1er septembre 2024"},
        },
        "effectifs": {"etablissements": int(len(s)), "inscrits": int(s.inscrit.sum()),
                      "echantillon_usage": int(usage_sample.sum()),
                      "acces_annee_usage": int(year_totals[USAGE_YEAR].sum())},
    }
    log.info("cadres prêts (%.1f s)", time.perf_counter() - t0)
    return frames, truth


def _plant(frames: dict, rng: np.random.Generator, scale: str) -> list[dict]:
    try:
        from . import anomalies
    except ImportError:  # the anomaly module is not there yet
        log.warning("gar_analysis.sample.anomalies absent : aucune anomalie plantée.")
        return []
    return list(anomalies.plant_anomalies(frames, rng, scale) or [])


def write_frames(frames: dict, out: Path) -> list[Path]:
    """Write contract frames and published-layout frames to a data directory (atomically, file by file)."""
    written = []
    for name, df in frames.items():
        if name in RAW_FILES or name in DNMA_RAW_FILES:
            rel, bom = RAW_FILES.get(name) or DNMA_RAW_FILES[name]
            text = csv_text(df)
            written.append(atomic_write_text(out / rel, ("\ufeff" if bom else "") + text))
        else:
            written.append(write_contract_file(df, out, name))
    return written


def generate(out: str | Path = config.SAMPLE_DIR, seed: int = config.SAMPLE_SEED, scale: str = "default",
             years: int = 2) -> dict:
    """Generate the sample data directory and its ``truth.json``.

    Parameters
    ----------
    out : str or Path
        Data directory to write (created if needed).
    seed : int
        Seed: the same seed gives byte-identical files.
    scale : {"default", "national"}
        Size of the sample.
    years : int
        Number of school years (by month) ending in August 2025.

    Returns
    -------
    dict
        The planted truth, as written to ``truth.json``.

    Examples
    --------
    >>> truth = generate("/tmp/sample", seed=1)  # doctest: +SKIP
    >>> sorted(truth["effects"])                  # doctest: +SKIP
    ['adoption', 'usage']
    """
    out = Path(out)
    frames, truth = build_frames(seed, scale, years)
    truth["anomalies"] = _plant(frames, np.random.default_rng([int(seed), 1]), scale)
    write_frames(frames, out)
    atomic_write_text(out / "truth.json", json.dumps(truth, ensure_ascii=False, indent=1, default=_json) + "\n")
    return truth


def _json(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return str(x)
