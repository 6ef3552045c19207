"""Loaders of the ENT audience measurement (DNMA), in its published weekly layout.

The DNMA is published by the ministry (DNE) on data.education.gouv.fr as four
wide datasets, one row per school (UAI) per week since 2019-09-02:
``fr-en-dnma-par-uai-profils``, ``-services``, ``-profils-appareils`` and
``-appareils``. A data directory holds them as ``dnma/<dataset id>.csv`` (the
portal's CSV export, ``;``-separated, label or id headers).

Each measure is a triple ``visites_X`` / ``utilisateurs_X`` / ``duree_X``:
visits and distinct users of the week (integers, some cells ``N/A``) and a
duration written ``HH:MM:SS`` with an optional ``:ms`` part. Distinct users
are distinct *within a week*: they are never summed across weeks; a month
shows the day-weighted mean of its weeks' distinct users instead (« utilisateurs
distincts d'une semaine type »).

The old ``dnma/audience.csv`` (``mois;uai;ent;visites;visiteurs``) is still
read when present (deprecated: it is not a published layout).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import SAMPLE_DIR
from ..contract import read_contract_file, read_raw_csv
from ..errors import DataError, Problem

#: The four published datasets: short name → dataset id (file ``dnma/<id>.csv``).
DNMA_DATASETS = {
    "profils": "fr-en-dnma-par-uai-profils",
    "services": "fr-en-dnma-par-uai-services",
    "profils_appareils": "fr-en-dnma-par-uai-profils-appareils",
    "appareils": "fr-en-dnma-par-uai-appareils",
}
#: Context fields shared by the four datasets (API field ids).
CONTEXT = ("debutsemaine", "uai", "academie", "commune", "departement", "region", "ministere",
           "circonscription", "nature_uai", "secteur")
#: Header spellings of CSV exports made with labels → field id.
HEADER_ALIASES = {"debutsemaine": "debutsemaine", "debut_semaine": "debutsemaine", "uai": "uai",
                  "nature_uai": "nature_uai", "natureuai": "nature_uai"}
MEASURES = ("visites", "utilisateurs", "duree")
#: Profils of the profils dataset (``globales`` = every profil together).
PROFILS_DNMA = ("eleve", "parent", "enseignant", "admin_vie_scol_tech")
#: Devices of the profils-appareils dataset (``autresappareil``) and of the appareils dataset (``autreappareil``).
APPAREILS = ("ordinateur", "smartphone", "tablette", "autresappareil")
#: ENT services that are the ENT side of resource use.
SERVICES_RESSOURCES = ("manuel_numerique", "ressource_multimedia", "ressource_orientation", "ressource_production",
                       "ressource_accompagnement_entrainement", "ressource_reference_dictionnaire",
                       "ressource_documentaire")
SECTEURS = ("PU", "PR")
_MEASURE_RE = re.compile(r"^(visites|utilisateurs|duree)_(.+)$")
_DURATION_RE = r"^(\d+):([0-5]?\d):([0-5]?\d)(?::(\d+))?$"


def dnma_path(data_dir: str | Path, dataset: str) -> Path:
    """Return the path of a published DNMA dataset in a data directory (``dnma/<id>.csv``)."""
    return Path(data_dir) / "dnma" / f"{DNMA_DATASETS[dataset]}.csv"


def _normalise_header(h: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", h.strip().lower()).strip("_")
    return HEADER_ALIASES.get(key, key if key in CONTEXT or _MEASURE_RE.match(key) else h.strip())


def parse_duration(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ``HH:MM:SS`` or ``HH:MM:SS:ms`` durations into seconds.

    Parameters
    ----------
    values : Series of str
        Raw cells (``N/A`` and empty cells give NA).

    Returns
    -------
    seconds : Series of float
    bad : Series of bool
        Cells that are neither empty, ``N/A`` nor a duration.

    Examples
    --------
    >>> s, bad = parse_duration(pd.Series(["01:02:03", "00:00:10:500", "N/A", "1h"]))
    >>> s.tolist()[:2], bad.tolist()
    ([3723.0, 10.5], [False, False, False, True])
    """
    codes, uniques = pd.factorize(values.astype("string").str.strip(), use_na_sentinel=True)
    u = pd.Series(uniques, dtype="string")  # durations repeat a lot: parse each distinct value once
    empty = (u == "") | (u.str.upper() == "N/A")
    parts = u.str.extract(_DURATION_RE)
    ok = parts[0].notna()
    num = parts.apply(pd.to_numeric, errors="coerce")
    ms = parts[3].fillna("")
    frac = pd.to_numeric("0." + ms.where(ms != "", "0"), errors="coerce")
    sec_u = (num[0] * 3600 + num[1] * 60 + num[2] + frac).where(ok & ~empty).to_numpy("float64", na_value=np.nan)
    bad_u = (~ok & ~empty).to_numpy(bool)
    has = codes >= 0
    sec = np.where(has, sec_u[np.maximum(codes, 0)] if len(u) else np.nan, np.nan)
    bad = np.where(has, bad_u[np.maximum(codes, 0)] if len(u) else False, False)
    return pd.Series(sec, index=values.index, dtype="float64"), pd.Series(bad, index=values.index, dtype=bool)


def read_dnma(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """Read one published DNMA dataset (CSV export, label or id headers).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    dataset : str, optional
        ``profils``, ``services``, ``profils_appareils`` or ``appareils``
        (stored in ``attrs["dataset"]``; guessed from the file name when None).

    Returns
    -------
    pandas.DataFrame
        Context columns (``debutsemaine`` as datetime, the others as strings,
        NA when absent), then every ``visites_*`` / ``utilisateurs_*`` (Int64,
        ``N/A`` → NA) and ``duree_*`` (seconds, float). Index: physical line.

    Raises
    ------
    DataError
        Naming file, line and column of every bad cell (date that is not a
        Monday, sector other than PU/PR, count or duration unreadable) and of a
        missing ``debutsemaine`` / ``uai`` column or a file without any measure.
    """
    path = Path(path)
    if dataset is None:
        dataset = next((k for k, v in sorted(DNMA_DATASETS.items(), key=lambda kv: -len(kv[1]))
                        if path.stem.startswith(v)), "profils")
    raw = read_raw_csv(path, expected=("debutsemaine", "debutSemaine", "uai", "UAI"))
    raw.columns = [_normalise_header(c) for c in raw.columns]
    problems: list[Problem] = []
    missing = [c for c in ("debutsemaine", "uai") if c not in raw.columns]
    measures = [c for c in raw.columns if _MEASURE_RE.match(c)]
    for c in missing:
        problems.append(Problem(str(path), 1, c, "colonne obligatoire absente (en-têtes attendus : "
                                "« debutsemaine » ou « debutSemaine », « uai » ou « UAI »)."))
    if not measures:
        problems.append(Problem(str(path), 1, None, "aucune colonne de mesure (visites_*, utilisateurs_*, "
                                "duree_*) : ce n'est pas un export de la mesure d'audience DNMA."))
    if problems:
        raise DataError(problems)
    out = pd.DataFrame(index=raw.index)

    def report(mask: pd.Series, col: str, msg: str) -> None:
        for line, value in raw.loc[mask.to_numpy(bool), col].head(200).items():
            problems.append(Problem(str(path), int(line), col, msg.format(value=value)))

    d = raw["debutsemaine"].str.strip()
    date = pd.to_datetime(d.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    report(date.isna(), "debutsemaine",
           "date « {value} » illisible : le lundi de la semaine (AAAA-MM-JJ) est attendu.")
    report(date.notna() & (date.dt.day_of_week != 0), "debutsemaine",
           "« {value} » n'est pas un lundi : la colonne donne le premier jour (lundi) de la semaine mesurée.")
    out["debutsemaine"] = date
    uai = raw["uai"].str.strip()
    report(uai == "", "uai", "UAI manquant : chaque ligne mesure un établissement.")
    out["uai"] = uai.where(uai != "").astype("string")
    for c in CONTEXT[2:]:
        s = raw[c].str.strip() if c in raw.columns else pd.Series("", index=raw.index)
        out[c] = s.where(s != "").astype("string")
    bad_sect = out["secteur"].notna() & ~out["secteur"].isin(SECTEURS)
    report(bad_sect, "secteur", "secteur « {value} » inconnu : PU (public) ou PR (privé) est attendu.")
    for c in measures:
        s = raw[c].str.strip()
        if c.startswith("duree_"):
            out[c], bad = parse_duration(s)
            report(bad, c, "durée « {value} » illisible : HH:MM:SS (éventuellement :ms), N/A ou vide est attendu.")
            continue
        na = (s == "") | (s.str.upper() == "N/A")
        num = pd.to_numeric(s.where(~na), errors="coerce")
        bad = (num.isna() & ~na) | (num.notna() & (num != np.floor(num.fillna(0))))
        report(bad, c, "valeur « {value} » illisible : un nombre entier, N/A ou vide est attendu.")
        out[c] = num.where(~bad).astype("Int64")
    for c in raw.columns:
        if c not in out.columns:
            out[c] = raw[c]
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.column or ""))
        raise DataError(problems)
    out.attrs["dataset"] = dataset
    out.attrs["source"] = str(path)
    return out


def load_dnma(data_dir: str | Path, dataset: str = "profils") -> pd.DataFrame:
    """Load one published DNMA dataset of a data directory (``dnma/<dataset id>.csv``)."""
    if dataset not in DNMA_DATASETS:
        raise KeyError(f"Jeu DNMA inconnu : {dataset!r}. Jeux : {', '.join(DNMA_DATASETS)}.")
    path = dnma_path(data_dir, dataset)
    if not path.exists():
        raise DataError.single(path, "fichier absent.")
    return read_dnma(path, dataset)


def load_audience(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load the deprecated ``dnma/audience.csv`` (ENT visits and visitors by school and month).

    Prefer the published layout (:func:`load_dnma`, :func:`monthly_audience`).
    """
    return read_contract_file(data_dir, "dnma/audience")


# --------------------------------------------------------------------------- weeks → months

def week_month_split(debut: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each 7-day week starting at ``debut`` between the month(s) it spans.

    Returns
    -------
    first_month : numpy.ndarray of str
        ``YYYY-MM`` of the week's first day.
    first_days : numpy.ndarray of int
        Days of the week in that month (1 to 7).
    second_month : numpy.ndarray of str
        ``YYYY-MM`` of the week's last day (same as the first when not spanning).

    Examples
    --------
    >>> m1, d1, m2 = week_month_split(pd.Series(pd.to_datetime(["2025-03-31", "2025-03-03"])))
    >>> m1.tolist(), d1.tolist(), m2.tolist()
    (['2025-03', '2025-03'], [1, 7], ['2025-04', '2025-03'])
    """
    d = pd.DatetimeIndex(debut)
    days_left = (d.days_in_month - d.day + 1).to_numpy()
    first_days = np.minimum(7, days_left)
    last = d + pd.Timedelta(days=6)
    return (d.strftime("%Y-%m").to_numpy(object), first_days.astype(int),
            last.strftime("%Y-%m").to_numpy(object))


def weekly_to_monthly(weekly: pd.DataFrame, keys: tuple[str, ...] = ("uai",)) -> pd.DataFrame:
    """Turn weekly DNMA rows into monthly values, splitting each week across months by its days.

    ``visites_*`` of a week spanning two months go to each month in proportion
    of its days in it (a week of Monday 31 March: 1/7 to March, 6/7 to April).
    ``utilisateurs_*`` are distinct per week and are *not* summed: each month
    gets ``utilisateurs_*_semaine``, the mean of its weeks' distinct users
    weighted by their days in the month. ``duree_*`` likewise gets the
    day-weighted mean of the weekly values (``duree_*_semaine``, seconds).

    Parameters
    ----------
    weekly : pandas.DataFrame
        Output of :func:`read_dnma` (``debutsemaine``, keys, measures).
    keys : tuple of str
        Grouping columns besides the month.

    Returns
    -------
    pandas.DataFrame
        ``*keys, mois, jours_mesures`` (days of the month covered by measured
        weeks), ``ligne`` (first line of the month's weeks in the file), then
        visits (float: split weeks give fractions; round for display) and the
        weekly means.
    """
    visits = [c for c in weekly.columns if c.startswith("visites_")]
    means = [c for c in weekly.columns if c.startswith(("utilisateurs_", "duree_"))]
    w = weekly.dropna(subset=["debutsemaine", *keys])
    m1, d1, m2 = week_month_split(w["debutsemaine"])
    line = w.index.to_numpy()
    parts = []
    for months, days in ((m1, d1), (m2, 7 - d1)):
        keep = days > 0
        part = pd.DataFrame({k: w[k].to_numpy()[keep] for k in keys})
        part["mois"] = months[keep]
        part["jours_mesures"] = days[keep]
        part["ligne"] = line[keep]
        frac = days[keep] / 7.0
        for c in visits:
            part[c] = w[c].astype("float64").to_numpy()[keep] * frac
        for c in means:
            v = w[c].astype("float64").to_numpy()[keep]
            part[c + "_semaine"] = v * days[keep]
            part["_n_" + c] = np.where(np.isnan(v), 0, days[keep])
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    agg = {"jours_mesures": "sum", "ligne": "min", **{c: "sum" for c in visits},
           **{c + "_semaine": "sum" for c in means}, **{"_n_" + c: "sum" for c in means}}
    g = long.groupby([*keys, "mois"], sort=True).agg(agg)
    for c in means:
        n = g.pop("_n_" + c)
        g[c + "_semaine"] = (g[c + "_semaine"] / n.where(n > 0)).astype("float64")
    g["jours_mesures"] = g["jours_mesures"].astype("int64")
    g["ligne"] = g["ligne"].astype("int64")
    return g.reset_index()


def has_published(data_dir: str | Path, dataset: str = "profils") -> bool:
    """Return whether a data directory holds a published DNMA dataset."""
    return dnma_path(data_dir, dataset).exists()


def monthly_audience(data_dir: str | Path, weekly: pd.DataFrame | None = None,
                     old: pd.DataFrame | None = None) -> tuple[pd.DataFrame, str] | None:
    """Return the ENT audience per school and month, from whichever DNMA file is present.

    The published profils dataset wins; the deprecated ``dnma/audience.csv``
    is read when it is the only one.

    Parameters
    ----------
    data_dir : str or Path
        The data directory.
    weekly : pandas.DataFrame, optional
        The profils dataset already loaded (:func:`read_dnma`), to avoid reading it twice.
    old : pandas.DataFrame, optional
        The deprecated ``dnma/audience.csv`` already loaded (the build reads it leniently).

    Returns
    -------
    (pandas.DataFrame, str) or None
        Columns ``mois, uai, ent, visites, visiteurs`` (integers: ``visites`` =
        visits split by days; ``visiteurs`` = distinct users of a typical week
        of the month for the published layout, distinct visitors of the month
        for the old file) and ``ligne`` (a line of the source), and the
        source's path relative to the data directory. None without DNMA.
    """
    data_dir = Path(data_dir)
    if weekly is not None or has_published(data_dir):
        w = weekly if weekly is not None else load_dnma(data_dir, "profils")
        cols = ["debutsemaine", "uai", "visites_globales", "utilisateurs_globales"]
        m = weekly_to_monthly(w[[c for c in cols if c in w.columns]])
        out = pd.DataFrame({"mois": m["mois"].astype("string"), "uai": m["uai"].astype("string"),
                            "ent": pd.Series(pd.NA, index=m.index, dtype="string"),
                            "visites": m.get("visites_globales", pd.Series(0.0, index=m.index)).round()
                            .astype("Int64"),
                            "visiteurs": m.get("utilisateurs_globales_semaine", pd.Series(np.nan, index=m.index))
                            .round().astype("Int64"),
                            "ligne": m["ligne"]})
        return out, f"dnma/{DNMA_DATASETS['profils']}.csv"
    if old is not None or (data_dir / "dnma" / "audience.csv").exists():
        a = old if old is not None else load_audience(data_dir)
        return a.assign(ligne=a.index.to_numpy()).reset_index(drop=True), "dnma/audience.csv"
    return None
