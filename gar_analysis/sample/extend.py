"""A new month arrives: extend an existing sample with the next month(s) of data and planted changes.

:func:`extend` adds to a sample written by :func:`gar_analysis.sample.generate` the months after its
last one, consistently with the files already there: the same schools, subscriptions renewed for a
new school year, each school's accès, affectations and active accédants of its last school month
carried forward with the season and the trend of the generator (Poisson noise on every line). Rows
already written are kept byte for byte (new lines are appended), except where a planted change says
otherwise. The yearly accédants file is not extended: it is published once a school year is over.

With ``plant=True`` (the default) known changes are planted in the last new month and recorded in
``truth.json`` under ``changements``: a school newly registered (and using the GAR), a registered
school that starts using it, an active school that stops, an académie whose usage jumps, an anomaly
fixed (a line removed) and a new anomaly (a duplicated line). With ``plant=False`` nothing changes
beyond noise: the change detection must then stay quiet.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..errors import ConfigError
from ..io import atomic_write_text, csv_text
from .generator import MONTHLY_GROWTH, SEASON, _json

log = logging.getLogger(__name__)

#: Files extended month by month (relative path → month column).
MONTHLY_FILES = {"gar/acces.csv": "mois", "gar/affectations.csv": "mois", "gar/accedants_actifs.csv": "mois"}
#: Factor applied to the accès of the académie whose usage jumps.
JUMP_FACTOR = 3.0
#: Rules whose anomalies sit on a school-month of the accès series (such months are not carried forward).
_SERIES_RULES = ("rupture_serie", "mois_manquant")


def _shift(month: str, n: int) -> str:
    y, m = int(month[:4]), int(month[5:7])
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def _season(month: str) -> float:
    return float(SEASON[(int(month[5:7]) - 9) % 12])


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _append(path: Path, rows: pd.DataFrame) -> None:
    """Append rows to a CSV file (the existing text is kept as it is), atomically."""
    if not len(rows):
        return
    text = path.read_text(encoding="utf-8")
    body = csv_text(rows).split("\n", 1)[1]
    if text and not text.endswith("\n"):
        text += "\n"
    atomic_write_text(path, text + body)


def _drop_lines(path: Path, keep: np.ndarray) -> None:
    """Rewrite a CSV file without some data lines (the other lines kept byte for byte; lines past ``keep`` kept)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    header, data = lines[0], lines[1:]
    trailing = data and data[-1] == ""
    if trailing:
        data = data[:-1]
    keep = np.concatenate([np.asarray(keep, bool), np.ones(max(0, len(data) - len(keep)), bool)])
    kept = [line for line, k in zip(data, keep) if k]
    atomic_write_text(path, "\n".join([header, *kept]) + ("\n" if trailing else ""))


def _mondays(month: str) -> list[str]:
    """Mondays of the whole weeks of a month (``YYYY-MM-DD``), the weeks the DNMA files date by their first day.

    A week that runs into the next month is left out: the build counts a month present as soon as one day is
    measured, and a month of ENT audience without GAR data would become the reference month.
    """
    days = pd.date_range(f"{month}-01", periods=31, freq="D")
    return [d.strftime("%Y-%m-%d") for d in days if d.day_of_week == 0
            and (d + pd.Timedelta(days=6)).strftime("%Y-%m") == month]


def _dnma_weeks(data_dir: Path, months: list[str], base: str, exclude: set[str]) -> None:
    """Append the weeks of the new months to each DNMA file: the base month's whole weeks, week for week.

    Schools carrying a planted anomaly in a DNMA file (or an invalid UAI) are not carried forward, so that
    no anomaly is copied; a school's weeks keep their values (the ENT audience is not the object of the
    planted changes).
    """
    for path in sorted((data_dir / "dnma").glob("*.csv")):
        df = _read(path)
        date_col = df.columns[0]
        uai_col = next(c for c in df.columns if c.lower() == "uai")
        weeks = [w for w in sorted(df[date_col].unique()) if w[:7] == base
                 and (pd.Timestamp(w) + pd.Timedelta(days=6)).strftime("%Y-%m") == base]
        if not weeks or df[date_col].max() >= f"{months[0]}-01":
            continue
        src = df[df[date_col].isin(weeks) & ~df[uai_col].isin(exclude)]
        new = []
        for month in months:
            for k, monday in enumerate(_mondays(month)):
                new.append(src[src[date_col] == weeks[k % len(weeks)]].assign(**{date_col: monday}))
        if new:
            _append(path, pd.concat(new, ignore_index=True))


def _int(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def extend(data_dir, to: str, *, plant: bool = True) -> dict:
    """Add the months after the sample's last month, up to ``to`` (``YYYY-MM``), and update ``truth.json``.

    Parameters
    ----------
    data_dir : str or Path
        A sample folder written by ``gar-analysis sample`` (with its ``truth.json``).
    to : str
        Last month to write (after the sample's last month).
    plant : bool, optional
        Plant known changes in the last new month (default); False: noise only.

    Returns
    -------
    dict
        The updated truth.
    """
    data_dir = Path(data_dir)
    truth_path = data_dir / "truth.json"
    if not truth_path.exists():
        raise ConfigError(f"{truth_path} : truth.json absent ; --extend-to prolonge un échantillon écrit par "
                          "« gar-analysis sample ».")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(to)):
        raise ConfigError(f"--extend-to : mois invalide « {to} » (format attendu AAAA-MM, par exemple 2025-09).")
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    last = truth["periode"]["fin"]
    if to <= last:
        raise ConfigError(f"--extend-to {to} : l'échantillon va déjà jusqu'à {last} ; choisir un mois postérieur.")
    months = []
    m = _shift(last, 1)
    while m <= to:
        months.append(m)
        m = _shift(m, 1)
    if len(months) > 12:
        raise ConfigError(f"--extend-to {to} : au plus 12 mois à la fois (l'échantillon s'arrête en {last}).")
    seed = int(truth.get("seed", config.SAMPLE_SEED))
    rng = np.random.default_rng([seed, 30, int(to.replace("-", "")), int(plant)])

    acces = _read(data_dir / "gar/acces.csv")
    aff = _read(data_dir / "gar/affectations.csv")
    actifs = _read(data_dir / "gar/accedants_actifs.csv")
    etab = _read(data_dir / "gar/etablissements.csv")
    ab = _read(data_dir / "gar/abonnements.csv")
    cat = set(_read(data_dir / "gar/ressources.csv")["id_ressource"])
    ann = _read(data_dir / "referentiel/annuaire.csv")
    register = ann.drop_duplicates("Identifiant_de_l_etablissement")
    registered = set(etab["uai"]) & set(register["Identifiant_de_l_etablissement"])
    anomalies = truth.get("anomalies", [])
    touched = {a["uai"] for a in anomalies if a.get("uai")}

    # ---- the base month of each school: its last school month, or the one before when an anomaly sits on it
    school_months = sorted(m for m in acces["mois"].unique() if m[5:7] not in ("07", "08") and m <= last)
    base, before = school_months[-1], school_months[-2]
    bad_base = {a["uai"] for a in anomalies if a["regle"] in _SERIES_RULES and a.get("mois") in (base,)}
    acc_n = _int(acces["acces"])
    clean = (acces["uai"].isin(registered) & acces["id_ressource"].isin(cat) & (acc_n > 0)).to_numpy()
    key = ["uai", "id_ressource", "profil", "support"]
    a_base = acces[clean & (acces["mois"] == base).to_numpy() & ~acces["uai"].isin(bad_base).to_numpy()]
    a_prev = acces[clean & (acces["mois"] == before).to_numpy() & acces["uai"].isin(bad_base).to_numpy()]
    carried = pd.concat([a_base.assign(_from=base), a_prev.assign(_from=before)]).drop_duplicates(key)

    # ---- subscriptions renewed for each new school year
    new_ab = []
    years = sorted({int(m[:4]) for m in months if m[5:7] == "09"} | {int(m[:4]) - 1 for m in months
                                                                        if m[5:7] < "09"})
    next_id = int(ab["id_abonnement"].str[2:].str.extract(r"(\d+)")[0].astype(float).max()) + 1
    for y in years:
        end = f"{y}-08-31"
        # a subscription carrying a planted anomaly (inverted dates, negative value) is renewed clean:
        # its own line keeps the anomaly, the school keeps its access
        last_day = ab[["date_debut", "date_fin"]].max(axis=1)
        cur = ab[(last_day == end) & ab["uai"].isin(registered) & ab["id_ressource"].isin(cat)].copy()
        for col in ("licences", "montant_ht"):
            cur[col] = cur[col].str.lstrip("-")
        cur = cur.drop_duplicates(["uai", "id_ressource"])
        have = ab[ab["date_debut"] == f"{y}-09-01"][["uai", "id_ressource"]]
        cur = cur.merge(have, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
        if len(cur):
            ren = cur.copy()
            ren["id_abonnement"] = [f"AB{next_id + i:07d}" for i in range(len(ren))]
            next_id += len(ren)
            ren["date_debut"], ren["date_fin"] = f"{y}-09-01", f"{y + 1}-08-31"
            new_ab.append(ren)
    new_ab = pd.concat(new_ab, ignore_index=True) if new_ab else ab.iloc[0:0]
    subs = pd.concat([ab, new_ab])
    subs = subs[subs["date_debut"] <= subs["date_fin"]]

    def subscribed(rows: pd.DataFrame, month: str) -> np.ndarray:
        first, end = f"{month}-01", f"{month}-28"
        act = subs[(subs["date_debut"] <= end) & (subs["date_fin"] >= first)][["uai", "id_ressource"]]
        act = act.drop_duplicates()
        return rows[["uai", "id_ressource"]].merge(act, how="left", indicator=True)["_merge"].eq("both").to_numpy()

    # ---- planted changes (decided once, applied to the last new month)
    plan: dict = {}
    acad_of = dict(zip(register["Identifiant_de_l_etablissement"], register["Code_academie"]))
    dep_of = dict(zip(register["Identifiant_de_l_etablissement"], register["Code_departement"]))
    if plant:
        usable = sorted(registered - touched)
        active_base = set(a_base["uai"])
        per_school = a_base[a_base["uai"].isin(usable)].groupby("uai")["acces"].apply(lambda s: _int(s).sum())
        busy = sorted(per_school[per_school >= 100].index)
        inactive = sorted(u for u in usable if u not in active_base and u not in bad_base)
        unregistered = sorted(set(register["Identifiant_de_l_etablissement"]) - set(etab["uai"]) - touched)
        unregistered = [u for u in unregistered
                        if register.loc[register["Identifiant_de_l_etablissement"] == u, "Type_etablissement"]
                        .iloc[0] in ("Collège", "Lycée")]
        acad_sizes = pd.Series([acad_of[u] for u in registered if u in acad_of]).value_counts()
        mid = acad_sizes[(acad_sizes >= acad_sizes.median())].index.sort_values()
        plan["hausse_academie"] = str(mid[int(rng.integers(len(mid)))])
        stop_pool = [u for u in busy if acad_of.get(u) != plan["hausse_academie"]]
        plan["arrete"] = str(stop_pool[int(rng.integers(len(stop_pool)))])
        plan["demarre"] = str(inactive[int(rng.integers(len(inactive)))]) if inactive else None
        plan["nouvel_inscrit"] = str(unregistered[int(rng.integers(len(unregistered)))]) if unregistered else None
        donors = [u for u in busy if u not in (plan["arrete"],) and acad_of.get(u) != plan["hausse_academie"]]
        plan["donneur"] = str(donors[int(rng.integers(len(donors)))])
        fixable = [a for a in anomalies if a["regle"] == "uai_invalide" and a["source"] == "gar/acces.csv"]
        plan["corrigee"] = fixable[int(rng.integers(len(fixable)))] if fixable else None

    new_rows = {"gar/acces.csv": [], "gar/affectations.csv": [], "gar/accedants_actifs.csv": []}
    new_etab = []
    for i, month in enumerate(months):
        planted_here = plant and i == len(months) - 1
        rows = carried.copy()
        f_from = rows["_from"].map(lambda b: _season(month) / _season(b)
                                   * np.exp(MONTHLY_GROWTH * (int(month[:4]) * 12 + int(month[5:7])
                                                             - int(b[:4]) * 12 - int(b[5:7])))).to_numpy()
        if planted_here:
            f_from = f_from * np.where(rows["uai"].map(acad_of).eq(plan["hausse_academie"]).to_numpy(),
                                       JUMP_FACTOR, 1.0)
            rows = rows.assign(_f=f_from)
            rows = rows[rows["uai"] != plan["arrete"]]
            f_from = rows.pop("_f").to_numpy()
            extra = []
            donor = carried[carried["uai"] == plan["donneur"]]
            for who in (plan["demarre"], plan["nouvel_inscrit"]):
                if who:
                    extra.append(donor.assign(uai=who))
            if extra:
                ex = pd.concat(extra)
                fx = ex["_from"].map(lambda b: _season(month) / _season(b)).to_numpy()
                rows, f_from = pd.concat([rows, ex]), np.concatenate([f_from, fx])
        rows = rows.assign(mois=month)
        if planted_here:  # subscriptions of the schools that start, like the donor's
            donor_subs = subs[(subs["uai"] == plan["donneur"]) & (subs["date_debut"] <= f"{month}-28")
                              & (subs["date_fin"] >= f"{month}-01")].drop_duplicates("id_ressource")
            for who in (plan["demarre"], plan["nouvel_inscrit"]):
                if who:
                    add = donor_subs.assign(uai=who)
                    add["id_abonnement"] = [f"AB{next_id + k:07d}" for k in range(len(add))]
                    next_id += len(add)
                    new_ab = pd.concat([new_ab, add], ignore_index=True)
                    subs = pd.concat([subs, add])
        counts = rng.poisson(_int(rows["acces"]).to_numpy() * f_from)
        rows["acces"] = counts
        rows = rows[(counts > 0) & subscribed(rows, month)]
        out = rows[["mois", "uai", "id_ressource", "profil", "support", "acces"]]
        if planted_here:  # a new anomaly: one line loaded twice
            dup_pool = sorted(set(out["uai"]) - touched - {plan["demarre"], plan["nouvel_inscrit"]}
                              - {u for u in out["uai"] if acad_of.get(u) == plan["hausse_academie"]})
            plan["doublon"] = str(dup_pool[int(rng.integers(len(dup_pool)))])
            line = out[out["uai"] == plan["doublon"]].iloc[[0]]
            out = pd.concat([out, line])
            plan["doublon_ressource"] = str(line["id_ressource"].iloc[0])
        new_rows["gar/acces.csv"].append(out)
        # affectations and active accédants: the base month's, capped by the licences, with noise
        used = set(out["uai"])
        af = aff[(aff["mois"] == base) & aff["uai"].isin(registered) & aff["id_ressource"].isin(cat)
                 & (_int(aff["affectations"]) >= 0)].drop_duplicates(["uai", "id_ressource", "profil"])
        if planted_here:
            af = pd.concat([af[af["uai"] != plan["arrete"]]]
                           + [af[af["uai"] == plan["donneur"]].assign(uai=w)
                              for w in (plan["demarre"], plan["nouvel_inscrit"]) if w])
        af = af.assign(mois=month)
        af = af[subscribed(af, month)]
        lic = subs[(subs["date_debut"] <= f"{month}-28") & (subs["date_fin"] >= f"{month}-01")]
        lic = lic.assign(licences=_int(lic["licences"])).groupby(["uai", "id_ressource"])["licences"].sum()
        cap = pd.MultiIndex.from_frame(af[["uai", "id_ressource"]]).map(lambda k: lic.get(k, 0)).to_numpy()
        val = np.minimum(rng.poisson(_int(af["affectations"]).to_numpy()), cap)
        per = af.assign(_v=val).groupby(["uai", "id_ressource"])["_v"].transform("sum").to_numpy()
        val = np.where(per > cap, np.floor(val * cap / np.maximum(per, 1)), val).astype(int)
        new_rows["gar/affectations.csv"].append(af.assign(affectations=val)[aff.columns])
        ac = actifs[(actifs["mois"] == base) & actifs["uai"].isin(used) & (_int(actifs["accedants_actifs"]) >= 0)]
        ac = ac.drop_duplicates(["uai", "profil"])
        if planted_here:
            ac = pd.concat([ac] + [actifs[(actifs["mois"] == base) & (actifs["uai"] == plan["donneur"])].assign(uai=w)
                                   for w in (plan["demarre"], plan["nouvel_inscrit"]) if w])
        ac = ac.assign(mois=month, accedants_actifs=rng.poisson(_int(ac["accedants_actifs"]).to_numpy()))
        new_rows["gar/accedants_actifs.csv"].append(ac[actifs.columns])
        if planted_here and plan["nouvel_inscrit"]:
            donor_row = etab[etab["uai"] == plan["donneur"]].iloc[[0]]
            same_dep = etab[etab["uai"].map(dep_of).eq(dep_of.get(plan["nouvel_inscrit"]))]
            ref = same_dep.iloc[[0]] if len(same_dep) else donor_row
            new_etab.append(ref.assign(uai=plan["nouvel_inscrit"], date_inscription=f"{month}-01"))

    # ---- write: appended lines; the planted fix removes one line
    for rel, frames in new_rows.items():
        _append(data_dir / rel, pd.concat(frames, ignore_index=True))
    _append(data_dir / "gar/abonnements.csv", new_ab[ab.columns])
    if new_etab:
        _append(data_dir / "gar/etablissements.csv", pd.concat(new_etab)[etab.columns])
    if (data_dir / "dnma").is_dir():
        dnma_touched = {a["uai"] for a in anomalies if a.get("source", "").startswith("dnma/") and a.get("uai")}
        _dnma_weeks(data_dir, months, base, dnma_touched | (set(acces["uai"]) - registered))
    changes: dict = {"planted": bool(plant), "mois": months, "mois_reference_avant": base,
                     "mois_reference": [m for m in months if m[5:7] not in ("07", "08")][-1]
                     if any(m[5:7] not in ("07", "08") for m in months) else base}
    if plant:
        fix = plan["corrigee"]
        if fix:
            hit = ((acces["uai"] == fix["uai"]) & (acces["mois"] == fix["mois"])
                   & (acces["id_ressource"] == fix["id_ressource"])).to_numpy()
            _drop_lines(data_dir / "gar/acces.csv", ~hit)
            truth["anomalies"] = [a for a in anomalies if a is not fix]
        month = months[-1]
        new_anomaly = {"regle": "doublon", "source": "gar/acces.csv", "uai": plan["doublon"], "mois": month,
                       "id_ressource": plan["doublon_ressource"]}
        truth["anomalies"] = truth.get("anomalies", []) + [new_anomaly]
        changes.update({
            "nouvel_inscrit": plan["nouvel_inscrit"], "demarre": plan["demarre"], "arrete": plan["arrete"],
            "hausse_academie": {"code_academie": plan["hausse_academie"], "facteur": JUMP_FACTOR,
                                "indicateur": "acces_par_eleve"},
            "anomalie_corrigee": fix, "nouvelle_anomalie": new_anomaly,
            "academies": {k: acad_of.get(v) for k, v in (("nouvel_inscrit", plan["nouvel_inscrit"]),
                                                          ("demarre", plan["demarre"]),
                                                          ("arrete", plan["arrete"])) if v}})
    truth["periode"]["fin"] = months[-1]
    truth.setdefault("extensions", []).append(changes)
    truth["changements"] = changes
    atomic_write_text(truth_path, json.dumps(truth, ensure_ascii=False, indent=1, default=_json) + "\n")
    return truth
