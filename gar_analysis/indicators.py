"""Dashboard indicators: deployment, CRM follow-up, usage, national ratios, budget, anomalies.

Every function reads the processed tables (see :class:`Tables`) and takes a
territory filter — an *audience* and a territory *code* — so that report
notebooks stay thin. The scope of an audience is the schools its reader decides
on: all schools of the territory for ``national``, ``region_academique`` and
``academie``; the lycées of the région for ``region`` (conseil régional);
the collèges of the département for ``departement`` (conseil départemental).
The national reference of a territory uses the same scope (national lycées for
a région), so that a ratio compares like with like.

The ``editeur`` audience only ever reads the rows of its own resources
(:func:`editeur_usage`): a publisher's report never contains another
publisher's figures, nor a national total from which they could be derived.

Values are returned unrounded and unsuppressed; :func:`publishable` applies
disclosure control (counts below the threshold and rates on small
denominators become ``c``) using the indicator registry :data:`INDICATORS`.

Reference month
    The usage indicators "in the month" use the latest month of the data that
    is a school month (not July or August), so that a summer build does not
    report the holidays. The 12-month window ends with the latest month.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .contract import PROFILS, SUPPORTS
from .disclosure import Spec, _secondary, is_suppressed, suppress_value, with_spec
from .errors import ConfigError, DataError
from .formatting import CODE_LABELS, MONTH_NAMES, fmt_number, fmt_percent
from .publishers import assign_ids, publisher_names, resolve
from .territories import (AUDIENCES, academie_name, departement_name, get_audience, normalize_departement,
                          region_name, territory_codes, territory_name)

#: Months excluded from the reference month (summer holidays).
HOLIDAY_MONTHS = ("07", "08")
#: Usage window (months).
WINDOW_MONTHS = 12
#: A signed convention ending within this many days is "expiring".
EXPIRING_DAYS = 183


@dataclass(frozen=True)
class Indicator:
    """An indicator: one definition that every page, alt text, glossary and digest reads.

    Parameters
    ----------
    name : str
        Identifier (column / key name, and the glossary anchor).
    label : str
        French label, as printed on every page.
    kind : str
        ``count``, ``percent``, ``decimal``, ``days``, ``euros``.
    definition : str
        Plain-French definition for the glossary.
    numerator : str
        What is counted (French), for a rate; for a count, what it counts.
    denominator : str or None
        For a rate: the indicator it is divided by (published beside it).
    population : str
        The schools it is computed on (French).
    window : str
        The period it covers (French).
    people : bool
        Whether it counts people or their acts (pupils, teachers, accès, affectations): such a
        count, and a rate built on one, is suppressed below the threshold. Counts of schools,
        conventions and actions are facts about public institutions and are shown.
    better : str or None
        ``"haut"`` when a higher value is better, ``"bas"`` when lower is better, None when neutral
        (never called above or below).
    implied : bool
        For a rate: a count divided by its denominator, so also suppressed when that count
        (value × denominator) is a small count of people. False for medians and growth rates.
    source : str
        Source files (French).
    editeur : bool
        A figure of a publisher's page about its own catalogue (:func:`editeur_take_up`), not of a territory.
    """

    name: str
    label: str
    kind: str
    definition: str = ""
    numerator: str = ""
    denominator: str | None = None
    population: str = "établissements du périmètre"
    window: str = "dernière situation connue"
    people: bool = False
    better: str | None = "haut"
    implied: bool = True
    source: str = "annuaire de l'éducation, GAR"
    editeur: bool = False


_INS = "établissements inscrits au GAR du périmètre"
_12M = "12 derniers mois des données"
_REF = "mois de référence (dernier mois scolaire des données, hors juillet et août)"
_ABO = "établissements abonnés aux ressources de l'éditeur"
_SRC_ABO = "GAR (abonnements, affectations, accès)"

INDICATORS: dict[str, Indicator] = {i.name: i for i in [
    Indicator("etablissements", "Établissements du périmètre", "count",
              "Nombre d'établissements ouverts du périmètre, placés dans leur territoire selon le référentiel "
              "(département du répertoire).", "établissements", better=None, source="annuaire de l'éducation"),
    Indicator("inscrits", "Établissements inscrits au GAR", "count",
              "Établissements ayant une date d'inscription au GAR.", "établissements inscrits"),
    Indicator("part_inscrits", "Part des établissements inscrits au GAR", "percent",
              "Établissements inscrits au GAR, rapportés aux établissements du périmètre.",
              "établissements inscrits", "etablissements"),
    Indicator("delai_median_jours", "Délai médian d'inscription après le premier établissement du projet ENT (jours)",
              "days", "Médiane, sur les établissements inscrits, du nombre de jours entre l'inscription du premier "
              "établissement de leur projet ENT et la leur.", "jours", "inscrits", _INS, better=None, implied=False),
    Indicator("avec_affectation", "Établissements inscrits avec au moins une affectation", "count",
              "Établissements inscrits ayant affecté au moins une ressource sur la période des données.",
              "établissements", population=_INS, window="toute la période des données"),
    Indicator("part_avec_affectation", "Part des inscrits avec au moins une affectation", "percent",
              "Établissements inscrits avec au moins une affectation, rapportés aux établissements inscrits.",
              "établissements avec affectation", "inscrits", _INS, "toute la période des données"),
    Indicator("actifs_mois", "Établissements actifs le mois de référence", "count",
              "Établissements inscrits ayant au moins un accès le mois de référence.", "établissements",
              population=_INS, window=_REF),
    Indicator("part_actifs_mois", "Part des inscrits actifs le mois de référence", "percent",
              "Établissements inscrits ayant au moins un accès le mois de référence, rapportés aux "
              "établissements inscrits.", "établissements actifs", "inscrits", _INS, _REF),
    Indicator("projets_ent", "Projets ENT couverts", "count", "Projets ENT distincts des établissements inscrits.",
              "projets ENT", population=_INS, better=None),
    Indicator("mediacentres", "Médiacentres utilisés", "count",
              "Médiacentres distincts des établissements inscrits.", "médiacentres", population=_INS, better=None),
    Indicator("referents", "Établissements avec un référent GAR nommé", "count",
              "Établissements dont un contact a le rôle de référent GAR dans le CRM.", "établissements",
              source="CRM (contacts et acteurs)"),
    Indicator("part_referents", "Part des établissements avec un référent GAR", "percent",
              "Établissements avec un référent GAR nommé, rapportés aux établissements du périmètre.",
              "établissements avec référent", "etablissements", source="CRM (contacts et acteurs)"),
    Indicator("etablissements_formes", "Établissements ayant reçu une formation", "count",
              "Établissements ayant reçu au moins une action de formation enregistrée dans le CRM.",
              "établissements", window="toute la période du CRM", source="CRM (actions)"),
    Indicator("part_convention", "Part des établissements couverts par une convention GAR signée", "percent",
              "Établissements dont la collectivité de rattachement (commune, département ou région selon le "
              "niveau) a signé une convention GAR, rapportés aux établissements du périmètre.",
              "établissements couverts", "etablissements", source="CRM (contrats et acteurs)"),
    Indicator("eleves", "Élèves des établissements inscrits", "count",
              "Élèves des établissements inscrits (effectifs du répertoire ou de l'IPS).", "élèves", population=_INS,
              people=True, better=None, source="annuaire de l'éducation, IPS"),
    Indicator("acces", "Accès sur 12 mois", "count",
              "Sessions GAR réussies vers une ressource, tous profils, sur 12 mois.", "accès", window=_12M,
              people=True),
    Indicator("acces_par_eleve", "Accès des élèves par élève sur 12 mois", "decimal",
              "Accès faits par les élèves sur 12 mois, rapportés aux élèves des établissements inscrits.",
              "accès des élèves", "eleves", _INS, _12M, people=True),
    Indicator("enseignants", "Enseignants accédants", "count",
              "Enseignants ayant accédé au moins une fois à une ressource dans la dernière année scolaire.",
              "enseignants", population=_INS, window="dernière année scolaire des données", people=True, better=None),
    Indicator("acces_par_enseignant", "Accès par enseignant accédant sur 12 mois", "decimal",
              "Accès faits par les enseignants sur 12 mois, rapportés aux enseignants accédants.",
              "accès des enseignants", "enseignants", _INS, _12M, people=True),
    Indicator("accedants", "Accédants", "count",
              "Personnes (tous profils) ayant accédé au moins une fois à une ressource dans la dernière année "
              "scolaire.", "accédants", population=_INS, window="dernière année scolaire des données", people=True,
              better=None),
    Indicator("affectations_par_accedant", "Affectations par accédant (mois de référence)", "decimal",
              "Affectations de ressources du mois de référence, rapportées aux accédants.", "affectations",
              "accedants", _INS, _REF, people=True),
    Indicator("part_acces_enseignants", "Part des accès faits par les enseignants", "percent",
              "Accès des enseignants rapportés à tous les accès, sur 12 mois.", "accès des enseignants", "acces",
              window=_12M, people=True, better=None),
    Indicator("part_acces_mobile_tablette", "Part des accès sur mobile ou tablette", "percent",
              "Accès depuis un mobile ou une tablette rapportés à tous les accès, sur 12 mois.",
              "accès sur mobile ou tablette", "acces", window=_12M, people=True, better=None),
    Indicator("ressources_distinctes", "Ressources distinctes utilisées sur 12 mois", "count",
              "Ressources du catalogue ayant eu au moins un accès sur 12 mois ; les identifiants absents du "
              "catalogue (signalés par les contrôles) ne sont pas comptés.", "ressources", window=_12M),
    Indicator("evolution_3_mois", "Évolution des accès des 3 derniers mois sur un an", "percent",
              "Accès des 3 derniers mois rapportés aux accès des 3 mêmes mois un an plus tôt, moins 1.",
              "accès des 3 derniers mois", "acces_3_mois", window="3 derniers mois et les mêmes mois un an plus tôt",
              people=True, implied=False),
    Indicator("evolution_mois_an", "Évolution des accès du mois de référence sur un an", "percent",
              "Accès du mois de référence rapportés aux accès du même mois un an plus tôt, moins 1.",
              "accès du mois de référence", "acces_mois", window=_REF + " et le même mois un an plus tôt",
              people=True, implied=False),
    Indicator("acces_3_mois", "Accès des 3 derniers mois", "count", "Accès des 3 derniers mois des données.",
              "accès", window="3 derniers mois", people=True),
    Indicator("acces_mois", "Accès du mois de référence", "count", "Accès du mois de référence.", "accès",
              window=_REF, people=True),
    # a publisher's page: its own catalogue only
    Indicator("abonnes", "Établissements abonnés à vos ressources", "count",
              "Établissements ayant au moins un abonnement actif le mois de référence à une ressource de l'éditeur.",
              "établissements abonnés", population=_ABO, window=_REF, better=None, source=_SRC_ABO, editeur=True),
    Indicator("abonnes_utilisateurs", "Établissements abonnés ayant utilisé vos ressources", "count",
              "Établissements abonnés ayant au moins un accès à une ressource de l'éditeur le mois de référence.",
              "établissements abonnés utilisateurs", population=_ABO, window=_REF, source=_SRC_ABO, editeur=True),
    Indicator("part_abonnes_utilisateurs", "Part des établissements abonnés ayant utilisé vos ressources", "percent",
              "Établissements abonnés ayant utilisé les ressources de l'éditeur le mois de référence, rapportés "
              "aux établissements abonnés.", "établissements abonnés utilisateurs", "abonnes", _ABO, _REF,
              source=_SRC_ABO, editeur=True),
    Indicator("licences_mois", "Licences achetées actives", "count",
              "Licences des abonnements aux ressources de l'éditeur actifs le mois de référence.", "licences",
              population=_ABO, window=_REF, better=None, source=_SRC_ABO, editeur=True),
    Indicator("affectations_licences_mois", "Affectations de vos ressources", "count",
              "Affectations des ressources de l'éditeur aux élèves et enseignants le mois de référence.",
              "affectations", population=_ABO, window=_REF, people=True, source=_SRC_ABO, editeur=True),
    Indicator("part_licences_affectees", "Part des licences affectées", "percent",
              "Affectations des ressources de l'éditeur le mois de référence, rapportées aux licences actives "
              "(peut dépasser 100 % quand des affectations sont faites sans abonnement).", "affectations",
              "licences_mois", _ABO, _REF, people=True, source=_SRC_ABO, editeur=True),
    Indicator("acces_par_affectation", "Accès par affectation", "decimal",
              "Accès aux ressources de l'éditeur le mois de référence, rapportés à leurs affectations du mois.",
              "accès", "affectations_licences_mois", _ABO, _REF, people=True, source=_SRC_ABO, editeur=True),
]}


# --------------------------------------------------------------------------- tables


class Tables:
    """The processed tables, read once on first use.

    Parameters
    ----------
    processed_dir : str or Path, optional
        Folder of the processed tables ("" or None: ``config.PROCESSED_DIR``).
    frames : dict of str to DataFrame, optional
        Tables given directly (tests); they take precedence over files.
    """

    OPTIONAL = ("acces_ressources", "ressources", "contrats", "actions", "budget", "constats",
                "etablissements_annee", "abonnements")

    def __init__(self, processed_dir: str | Path | None = None, frames: dict | None = None, periode: str = ""):
        self.processed_dir = processed_dir or None
        self._frames = dict(frames or {})
        self._given = bool(frames)  # tables given directly are never memoised (see _memo_key)
        self.periode = str(periode or "").strip()
        self.last_month = None
        if self.periode:
            m = re.match(r"^(\d{4})-(\d{4})$", self.periode)
            if not m or int(m.group(2)) != int(m.group(1)) + 1:
                raise ConfigError(f"Période invalide : {periode!r}. Format attendu : AAAA-AAAA, par exemple 2024-2025.")
            self.last_month = f"{m.group(2)}-08"
        self._cut = set()
        self._facts = None

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            from .build import load_processed

            try:
                self._frames[name] = load_processed(name, self.processed_dir)
            except DataError:
                if name not in self.OPTIONAL:
                    raise
                self._frames[name] = pd.DataFrame()
        if name == "ressources" and len(self._frames[name]) and "id_editeur" not in self._frames[name].columns:
            self._frames[name] = assign_ids(self._frames[name])  # processed before publishers had identifiers
        if self.last_month and name in ("usage_mensuel", "acces_ressources") and name not in self._cut:
            df = self._frames[name]
            if len(df):
                df = df[df["mois"].astype(str) <= self.last_month]
                if df.empty:
                    raise ConfigError(f"Aucune donnée d'usage jusqu'à la fin de la période {self.periode}.")
            self._frames[name] = df
            self._cut.add(name)
        return self._frames[name]

    def has(self, name: str) -> bool:
        """Return True when the table exists and has rows."""
        return len(self[name]) > 0


#: National computations shared by every page of a warm report kernel (see :func:`_memo_key`).
_MEMO: dict = {"fingerprint": None, "values": {}}


def _memo_key(t: Tables, *parts) -> tuple | None:
    """Key of a computation that depends only on the processed tables, or None when not memoised.

    Memoised only while :func:`gar_analysis.build.cache_tables` is on (the batch's warm kernels) and
    for tables read from files: the key holds the folder, the period and every table's mtime and size,
    so a new build is computed again (and the memo of the previous one dropped).
    """
    from . import build

    if build._TABLE_CACHE is None or getattr(t, "_given", True):
        return None
    fingerprint = getattr(t, "_fingerprint", None)
    if fingerprint is None:
        folder = Path(t.processed_dir or config.PROCESSED_DIR).resolve()
        stats = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.glob("*.parquet")))
        fingerprint = t._fingerprint = (str(folder), t.periode, stats)
    if _MEMO["fingerprint"] != fingerprint:
        _MEMO["fingerprint"], _MEMO["values"] = fingerprint, {}
    return parts


def _memo_get(key):
    return None if key is None else _MEMO["values"].get(key)


def _memo_set(key, value):
    if key is not None:
        _MEMO["values"][key] = value
    return value


def _tables(tables) -> Tables:
    if isinstance(tables, Tables):
        return tables
    if isinstance(tables, dict):
        return Tables(frames=tables)
    return Tables(tables)


# --------------------------------------------------------------------------- territory filter


def check_territory(audience: str, code: str, tables=None) -> str:
    """Validate an audience and territory code; return the normalised code.

    Raises
    ------
    ConfigError
        Unknown audience or code, with the list of valid values.
    """
    if audience not in AUDIENCES:
        raise ConfigError(f"Audience inconnue : {audience!r}. Valeurs possibles : {', '.join(AUDIENCES)}.")
    if audience == "editeur":
        if tables is None:
            return str(code)
        t = _tables(tables)
        if not t.has("ressources"):
            raise ConfigError("Aucun catalogue de ressources : pas de rapport d'éditeur possible.")
        return resolve(t["ressources"], str(code))  # the publisher's stable identifier
    code = str(code)
    if audience == "departement":
        code = normalize_departement(code) or code
    valid = territory_codes(audience)
    if code not in valid:
        raise ConfigError(f"Code de territoire inconnu pour l'audience {audience} : {code!r}. "
                          f"Codes possibles : {', '.join(valid)}.")
    return code


def editeurs(tables) -> dict[str, str]:
    """Return the publishers of the catalogue as ``{id_editeur: name}`` (see :mod:`gar_analysis.publishers`)."""
    t = _tables(tables)
    return publisher_names(t["ressources"]) if t.has("ressources") else {}


def editeur_name(tables, editeur: str) -> str:
    """Return the display name of a publisher (by identifier, spelling or unique slug)."""
    pid = check_territory("editeur", editeur, tables)
    return editeurs(tables)[pid]


def select(df: pd.DataFrame, audience: str, code: str) -> pd.DataFrame:
    """Return the rows of a school-level table within the audience's territory and scope.

    See :meth:`gar_analysis.territories.Audience.scope`.
    """
    return get_audience(audience, territorial=True).scope(df, code)


def reference(df: pd.DataFrame, audience: str) -> pd.DataFrame:
    """Return the national rows with the audience's scope (national lycées for ``region``…)."""
    return get_audience(audience).reference(df)


def unit_name(unit: str, code: str, names: dict | None = None) -> str:
    """Return the readable name of a sub-unit code."""
    if unit == "code_academie":
        return academie_name(code)
    if unit == "code_departement":
        return departement_name(code)
    if unit == "code_region":
        return region_name(code)
    if unit == "secteur":
        return CODE_LABELS["secteur"].get(code, code)
    if names is not None:
        return str(names.get(code, code))
    return str(code)


# --------------------------------------------------------------------------- months


def _months(usage: pd.DataFrame) -> list[str]:
    return sorted(usage["mois"].dropna().astype(str).unique().tolist()) if len(usage) else []


def reference_month(usage: pd.DataFrame) -> str | None:
    """Return the latest school month (not July or August) of the usage table."""
    months = _months(usage)
    school = [m for m in months if m[5:7] not in HOLIDAY_MONTHS]
    return (school or months or [None])[-1]


def _shift(month: str, n: int) -> str:
    y, m = int(month[:4]), int(month[5:7])
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def window(usage: pd.DataFrame, months: int = WINDOW_MONTHS) -> list[str]:
    """Return the last ``months`` months of the data (ending with its latest month)."""
    all_months = _months(usage)
    if not all_months:
        return []
    last = all_months[-1]
    return [_shift(last, -k) for k in range(months - 1, -1, -1)]


# --------------------------------------------------------------------------- per-school facts


def school_facts(tables) -> pd.DataFrame:
    """Return one row per school with the usage facts the indicators sum.

    Adds to ``etablissements``: ``acces_12m``, ``acces_eleve_12m``, ``acces_enseignant_12m``,
    ``acces_mobile_tablette_12m``, ``actif_mois`` (bool), ``affectations_mois``, ``acces_mois``,
    ``acces_mois_an`` (same month a year earlier), ``acces_3_mois``, ``acces_3_mois_an``.
    """
    t = _tables(tables)
    if getattr(t, "_facts", None) is not None:
        return t._facts
    key = _memo_key(t, "school_facts")
    if _memo_get(key) is not None:
        t._facts = _memo_get(key).copy(deep=False)  # copy-on-write: a page cannot alter the memo
        return t._facts
    etab = t["etablissements"].copy()
    usage = t["usage_mensuel"]
    months = window(usage)
    ref = reference_month(usage)
    facts = pd.DataFrame({"uai": etab["uai"]})
    if len(usage) and ref is not None:
        u = usage.copy()
        u["mois"] = u["mois"].astype(str)
        for col in ("acces", "acces_eleve", "acces_enseignant", "acces_mobile", "acces_tablette", "affectations"):
            if col not in u.columns:
                u[col] = 0
        w = u[u["mois"].isin(months)]
        g = w.groupby("uai")
        sums = pd.DataFrame({
            "acces_12m": g["acces"].sum(), "acces_eleve_12m": g["acces_eleve"].sum(),
            "acces_enseignant_12m": g["acces_enseignant"].sum(),
            "acces_mobile_tablette_12m": g["acces_mobile"].sum() + g["acces_tablette"].sum()})
        last3 = [_shift(ref, -2), _shift(ref, -1), ref]
        prev3 = [_shift(m, -12) for m in last3]
        for name, ms, col in (("acces_mois", [ref], "acces"), ("acces_mois_an", [_shift(ref, -12)], "acces"),
                              ("acces_3_mois", last3, "acces"), ("acces_3_mois_an", prev3, "acces"),
                              ("affectations_mois", [ref], "affectations")):
            sums[name] = u[u["mois"].isin(ms)].groupby("uai")[col].sum()
        facts = facts.merge(sums.reset_index(), on="uai", how="left")
    cols = ["acces_12m", "acces_eleve_12m", "acces_enseignant_12m", "acces_mobile_tablette_12m", "acces_mois",
            "acces_mois_an", "acces_3_mois", "acces_3_mois_an", "affectations_mois"]
    for c in cols:
        facts[c] = facts[c].fillna(0).astype("int64") if c in facts.columns else 0
    facts["actif_mois"] = facts["acces_mois"] > 0
    # Whether the same month a year earlier is inside the data (else no year-on-year figure).
    facts.attrs["mois_reference"] = ref
    facts.attrs["an_disponible"] = bool(ref and _shift(ref, -12) in _months(usage))
    out = etab.merge(facts, on="uai", how="left", validate="one_to_one")
    out.attrs.update(facts.attrs)
    if key is not None:
        _memo_set(key, out)
        out = out.copy(deep=False)
    t._facts = out
    return out


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").fillna(0)


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b and not pd.isna(b) else np.nan


def aggregate(facts: pd.DataFrame, *, year_on_year: bool = True) -> dict[str, float]:
    """Compute every school-level indicator of :data:`INDICATORS` for a set of schools.

    Parameters
    ----------
    facts : pandas.DataFrame
        Rows of :func:`school_facts` (one per school).
    year_on_year : bool, optional
        Whether the same months a year earlier are in the data.

    Returns
    -------
    dict
        Indicator name → value (NaN when undefined, e.g. a rate on an empty denominator).
    """
    ins = facts[facts["inscrit"].fillna(False).astype(bool)] if "inscrit" in facts else facts.iloc[0:0]
    n, n_ins = len(facts), len(ins)
    v: dict[str, float] = {"etablissements": n, "inscrits": n_ins}
    v["part_inscrits"] = _div(n_ins, n)
    delays = pd.to_numeric(ins.get("delai_inscription_jours", pd.Series(dtype=float)), errors="coerce").dropna()
    v["delai_median_jours"] = float(delays.median()) if len(delays) else np.nan
    v["avec_affectation"] = int((_num(ins.get("affectations", pd.Series(0, index=ins.index))) > 0).sum())
    v["part_avec_affectation"] = _div(v["avec_affectation"], n_ins)
    v["actifs_mois"] = int(ins["actif_mois"].fillna(False).astype(bool).sum()) if n_ins else 0
    v["part_actifs_mois"] = _div(v["actifs_mois"], n_ins)
    for key, col in (("projets_ent", "projet_ent"), ("mediacentres", "mediacentre")):
        vals = ins[col].dropna().astype(str) if col in ins else pd.Series(dtype=str)
        v[key] = int(vals[vals.str.strip() != ""].nunique())
    v["referents"] = int(facts["referent"].fillna(False).astype(bool).sum()) if "referent" in facts else 0
    v["part_referents"] = _div(v["referents"], n)
    v["etablissements_formes"] = int((_num(facts["actions_formation"]) > 0).sum()) if "actions_formation" in facts else 0
    v["part_convention"] = _div(int(facts["convention"].fillna(False).astype(bool).sum()), n) \
        if "convention" in facts else np.nan
    v["eleves"] = float(_num(ins.get("nombre_eleves", pd.Series(0, index=ins.index))).sum())
    v["acces"] = float(_num(facts["acces_12m"]).sum())
    v["acces_par_eleve"] = _div(_num(ins["acces_eleve_12m"]).sum(), v["eleves"])
    v["enseignants"] = float(_num(ins["accedants_enseignant"]).sum()) if "accedants_enseignant" in ins else 0.0
    v["acces_par_enseignant"] = _div(_num(ins["acces_enseignant_12m"]).sum(), v["enseignants"])
    v["accedants"] = float(_num(ins["accedants"]).sum()) if "accedants" in ins else 0.0
    v["affectations_par_accedant"] = _div(_num(ins["affectations_mois"]).sum(), v["accedants"])
    v["part_acces_enseignants"] = _div(_num(facts["acces_enseignant_12m"]).sum(), v["acces"])
    v["part_acces_mobile_tablette"] = _div(_num(facts["acces_mobile_tablette_12m"]).sum(), v["acces"])
    v["ressources_distinctes"] = np.nan  # filled from acces_ressources when available
    v["acces_3_mois"] = float(_num(facts["acces_3_mois"]).sum())
    v["acces_mois"] = float(_num(facts["acces_mois"]).sum())
    if year_on_year:
        v["evolution_3_mois"] = _div(v["acces_3_mois"], _num(facts["acces_3_mois_an"]).sum()) - 1
        v["evolution_mois_an"] = _div(v["acces_mois"], _num(facts["acces_mois_an"]).sum()) - 1
    else:
        v["evolution_3_mois"] = v["evolution_mois_an"] = np.nan
    return v


def _distinct_resources(t: Tables, uais: pd.Series, months: list[str]) -> float:
    """Resources of the catalogue with at least one accès (ids the checks reject are not counted)."""
    if not t.has("acces_ressources"):
        return np.nan
    ar = t["acces_ressources"]
    ar = ar[ar["uai"].isin(set(uais)) & ar["mois"].astype(str).isin(months) & (_num(ar["acces"]) > 0)]
    if t.has("ressources"):
        ar = ar[ar["id_ressource"].isin(set(t["ressources"]["id_ressource"]))]
    return float(ar["id_ressource"].nunique())


def exclusions(tables, audience: str, code: str) -> dict:
    """What the figures of a territory leave out because the checks reject it.

    Returns
    -------
    dict
        ``ressources_inconnues`` (resource ids absent from the catalogue) and ``acces_ressources_inconnues``
        (their accès over 12 months, in the territory); for ``national`` also ``etablissements_hors_annuaire``
        (UAI with usage but absent from the register) and ``acces_hors_annuaire``; ``deplaces`` (schools of the
        territory placed by the register because their codes disagreed with their département).
    """
    t = _tables(tables)
    usage = t["usage_mensuel"]
    months = window(usage)
    local = select(t["etablissements"], audience, code)
    out = {"ressources_inconnues": 0, "acces_ressources_inconnues": 0,
           "deplaces": int(local["territoire_corrige"].fillna(False).astype(bool).sum())
           if "territoire_corrige" in local else 0}
    if t.has("acces_ressources") and t.has("ressources"):
        ar = t["acces_ressources"]
        ar = ar[ar["uai"].isin(set(local["uai"])) & ar["mois"].astype(str).isin(months)]
        unknown = ar[~ar["id_ressource"].isin(set(t["ressources"]["id_ressource"])) & (_num(ar["acces"]) > 0)]
        out["ressources_inconnues"] = int(unknown["id_ressource"].nunique())
        out["acces_ressources_inconnues"] = int(_num(unknown["acces"]).sum())
    if get_audience(audience).level == "national" and len(usage):
        u = usage[usage["mois"].astype(str).isin(months) & ~usage["uai"].isin(set(t["etablissements"]["uai"]))]
        u = u[_num(u["acces"]) > 0]
        out["etablissements_hors_annuaire"] = int(u["uai"].nunique())
        out["acces_hors_annuaire"] = int(_num(u["acces"]).sum())
    return out


def exclusions_text(excl: dict, threshold: int | None = None) -> str:
    """One French sentence saying what the figures leave out (empty when nothing is)."""
    def acces(n):
        return fmt_number(suppress_value(n, threshold=threshold))

    parts = []
    if excl.get("ressources_inconnues"):
        parts.append(f"{fmt_number(excl['ressources_inconnues'])} identifiant(s) de ressource absent(s) du catalogue "
                     f"({acces(excl['acces_ressources_inconnues'])} accès)")
    if excl.get("etablissements_hors_annuaire"):
        parts.append(f"{acces(excl['acces_hors_annuaire'])} accès de {fmt_number(excl['etablissements_hors_annuaire'])} "
                     "établissement(s) absent(s) de l'annuaire")
    text = ""
    if parts:
        text = ("Les chiffres excluent ce que les contrôles de qualité rejettent : " + " ; ".join(parts)
                + " (voir la page qualité).")
    if excl.get("deplaces"):
        text += (f" {fmt_number(excl['deplaces'])} établissement(s) dont les codes académie ou région ne concordaient "
                 "pas avec leur département ont été rattachés au territoire de leur département, selon le référentiel.")
    return text.strip()


# --------------------------------------------------------------------------- territory values


def territory_values(tables, audience: str, code: str) -> pd.DataFrame:
    """Return every indicator of a territory beside its national value, with the ratio.

    Parameters
    ----------
    tables : Tables, dict or path
        The processed tables.
    audience, code : str
        The territory filter (not ``editeur``: see :func:`editeur_usage`).

    Returns
    -------
    pandas.DataFrame
        One row per indicator: ``indicateur, libelle, kind, denominator, valeur, valeur_nationale, ratio``
        (ratio = valeur / valeur_nationale; NaN when undefined). Index: indicator name.
    """
    t = _tables(tables)
    facts = school_facts(t)
    yoy = facts.attrs.get("an_disponible", False)
    local = select(facts, audience, code)
    lv = aggregate(local, year_on_year=yoy)
    months = window(t["usage_mensuel"])
    lv["ressources_distinctes"] = _distinct_resources(t, local["uai"], months)
    key = _memo_key(t, "national_values", audience)
    nv = _memo_get(key)
    if nv is None:
        nat = reference(facts, audience)
        nv = aggregate(nat, year_on_year=yoy)
        nv["ressources_distinctes"] = _distinct_resources(t, nat["uai"], months)
        _memo_set(key, nv)
    nv = dict(nv)
    missing = [name for name, i in INDICATORS.items() if name not in lv and not i.editeur]
    if missing:
        raise ConfigError(f"Indicateur(s) déclaré(s) mais non calculé(s) : {', '.join(missing)}.")
    pos = positions(t, audience, code)
    rows = []
    for name, ind in INDICATORS.items():
        if ind.editeur:
            continue
        a, b = lv[name], nv.get(name, np.nan)
        rows.append({"indicateur": name, "libelle": ind.label, "kind": ind.kind, "denominator": ind.denominator,
                     "valeur": a, "valeur_nationale": b, "ratio": _ratio(a, b, ind),
                     "position": pos.get(name)})
    out = pd.DataFrame(rows).set_index("indicateur", drop=False)
    out.attrs["mois_reference"] = facts.attrs.get("mois_reference")
    return out


def _comparable(ind: Indicator) -> bool:
    """Whether an indicator can be called above or below: a rate with a direction and a count denominator."""
    return ind.kind in ("percent", "decimal") and ind.better is not None and ind.denominator is not None \
        and ind.implied and INDICATORS[ind.denominator].kind == "count"


def _unit_funnel(frame: pd.DataFrame, kind: str, target: float | None = None) -> pd.DataFrame | None:
    """Funnel of units (``unit, num, den``) around the target, over-dispersion corrected (:func:`gaps.funnel_table`).

    None when every unit sits at 0 % or 100 % (nothing to compare, nobody to name).
    """
    from .gaps import funnel_table

    try:
        return funnel_table(frame, "num", "den", "unit", kind=kind,
                            target=None if target is None or pd.isna(target) else float(target))
    except DataError:
        return None


def positions(tables, audience: str, code: str, level: str = "998") -> dict[str, str]:
    """Call each comparable indicator of a territory above, below or within the national funnel.

    The one rule of every card, sentence and digest: the territory is compared with the other
    territories of its level (académies for an académie, départements' collèges for a département…)
    in a funnel around the national value, with the same over-dispersion correction as the gaps page
    (:func:`gar_analysis.gaps.funnel_table`); it is « au-dessus » or « en-dessous » only outside the
    99.8 % limits. The national audience is the reference: no position.

    Returns
    -------
    dict
        Indicator name → ``"au-dessus"``, ``"conforme"`` or ``"en-dessous"`` (comparable indicators only).
    """
    aud = get_audience(audience, territorial=True)
    if aud.level == "national":
        return {}
    t = _tables(tables)
    key = _memo_key(t, "positions", audience, level)
    cached = _memo_get(key)
    if cached is None:  # every unit of the level at once: the same for every page of the audience
        cached = _memo_set(key, _all_positions(t, aud, audience, level))
    units, by_indicator = cached
    if str(code) not in units:
        return {}
    return {name: pos[str(code)] for name, pos in by_indicator.items() if str(code) in pos}


def _all_positions(t: Tables, aud, audience: str, level: str) -> tuple[set, dict]:
    """Return (units of the level, indicator → {unit: position}) for :func:`positions`."""
    facts = reference(school_facts(t), audience)
    yoy = facts.attrs.get("an_disponible", False)
    per_unit = {str(k): aggregate(g, year_on_year=yoy) for k, g in facts.groupby(aud.level, observed=True)}
    out = {}
    for name, ind in INDICATORS.items():
        if not _comparable(ind) or ind.editeur:
            continue
        frame = pd.DataFrame([{"unit": u, "den": v[ind.denominator], "num": v[name] * v[ind.denominator]}
                              for u, v in per_unit.items()]).dropna()
        frame = frame[frame["den"] > 0]
        if len(frame) < 3:
            continue
        kind = "proportion" if ind.kind == "percent" else "rate"
        table = _unit_funnel(frame.assign(num=frame["num"].round()), kind)
        if table is None:
            continue
        out[name] = {str(u): str(p) for u, p in zip(table["unit"].astype(str), table[f"position_{level}"])}
    return set(per_unit), out


def _ratio(a: float, b: float, ind: Indicator) -> float:
    """Value divided by the national value, for a rate only (a count's or a growth rate's ratio reads wrongly)."""
    if ind.kind == "count" or ind.name.startswith("evolution_"):
        return np.nan
    if pd.isna(a) or pd.isna(b) or b == 0:
        return np.nan
    return float(a) / float(b)


def publishable(values: pd.DataFrame, threshold: int | None = None) -> pd.DataFrame:
    """Apply disclosure control to :func:`territory_values` (or :func:`by_unit`) output.

    For a long table (``indicateur, valeur, valeur_nationale, ratio``): a count below the
    threshold, or a rate whose denominator is below it, becomes ``c`` — and so does its ratio.
    For a wide table (one column per indicator), each indicator column is treated the same way.
    """
    t = config.disclosure_threshold(threshold)
    if "indicateur" in values.columns and "valeur" in values.columns:
        out = values.copy().astype({"valeur": object, "valeur_nationale": object, "ratio": object})
        raw = values.set_index("indicateur")
        for idx, row in values.iterrows():
            for col in ("valeur", "valeur_nationale"):
                if _hidden(row["indicateur"], row[col], lambda d: raw.at[d, col] if d in raw.index else np.nan, t):
                    out.at[idx, col] = config.SUPPRESSED
                    out.at[idx, "ratio"] = config.SUPPRESSED
        return out
    out = values.copy()
    hidden_by_total: dict[str, pd.Series] = {}
    for col in values.columns:  # units' counts of people add up to the territory's (published): never one alone hidden
        ind = INDICATORS.get(col)
        if ind is not None and ind.kind == "count" and ind.people:
            first = values[col].map(lambda v: _hidden(col, v, lambda d: np.nan, t))
            hidden_by_total[col] = _secondary(values[col], first, None) & ~first
    for col in values.columns:
        if col not in INDICATORS:
            continue
        out[col] = out[col].astype(object)
        for idx in values.index:
            den = INDICATORS[col].denominator
            extra = bool(hidden_by_total.get(col, pd.Series(False, index=values.index)).at[idx]) or (
                den in hidden_by_total and bool(hidden_by_total[den].at[idx]))
            def denom_of(d, idx=idx):
                return values.at[idx, d] if d in values.columns else np.nan

            if extra or _hidden(col, values.at[idx, col], denom_of, t):
                out.at[idx, col] = config.SUPPRESSED
                if f"ratio_{col}" in out.columns:
                    out[f"ratio_{col}"] = out[f"ratio_{col}"].astype(object)
                    out.at[idx, f"ratio_{col}"] = config.SUPPRESSED
    return out


def _hidden(name: str, value: object, denom_of, threshold: int) -> bool:
    """Whether a published value is suppressed, by the rule of :class:`Indicator` ``people``.

    A count of people (or of their acts) from 1 to threshold − 1 is hidden; zero is shown. A rate
    is hidden with its denominator, and, when it is a count of people divided by its denominator,
    when that implied count is from 1 to threshold − 1. Counts of schools, and rates on them, are shown.
    """
    ind = INDICATORS.get(name)
    if ind is None or is_suppressed(value):
        return is_suppressed(value)
    if ind.kind == "count":
        return ind.people and not pd.isna(value) and 0 < float(value) < threshold
    if ind.denominator:
        d = denom_of(ind.denominator)
        if is_suppressed(d) or (INDICATORS[ind.denominator].people and not pd.isna(d) and 0 < float(d) < threshold):
            return True
        if pd.isna(d) or pd.isna(value):
            return False
        # a share of people and its published denominator must not give back a small count
        implied = round(float(value) * float(d), 6)
        return bool(ind.implied and ind.people and 0 < implied < threshold)
    return False


# --------------------------------------------------------------------------- side by side


def by_unit(tables, audience: str, code: str, unit: str | None = None,
            columns: tuple[str, ...] = ("etablissements", "inscrits", "part_inscrits", "part_avec_affectation",
                                        "part_actifs_mois", "acces", "acces_par_eleve",
                                        "part_acces_mobile_tablette"),
            ratios: tuple[str, ...] | None = ("part_inscrits", "part_actifs_mois", "acces_par_eleve")) -> pd.DataFrame:
    """Return indicators per sub-unit of the territory (académies, départements or schools).

    Each unit's values come with ``ratio_<indicator>`` to the national value for the
    rate indicators listed in ``ratios`` (None: every rate). The denominators of the rates
    are added when missing. Columns: ``code, nom, <indicators…>, <denominators…>, ratio_<rates…>``,
    sorted by name.
    """
    t = _tables(tables)
    unit = unit or get_audience(audience, territorial=True).dashboard_unit
    facts = school_facts(t)
    yoy = facts.attrs.get("an_disponible", False)
    local = select(facts, audience, code)
    nat = aggregate(reference(facts, audience), year_on_year=yoy)
    names = dict(zip(facts["uai"], facts.get("nom", facts["uai"]))) if unit == "uai" else None
    columns = list(columns)
    # the denominators of the rates are published beside them (and needed for disclosure control)
    for c in list(columns):
        den = INDICATORS[c].denominator
        if den and den not in columns:
            columns.append(den)
    rows = []
    for key, grp in local.groupby(unit, dropna=True, observed=True):
        v = aggregate(grp, year_on_year=yoy)
        row = {"code": str(key), "nom": unit_name(unit, str(key), names)}
        row.update({c: v.get(c, np.nan) for c in columns})
        rows.append(row)
    out = pd.DataFrame(rows, columns=["code", "nom", *columns])
    for c in (ratios if ratios is not None else columns):
        if INDICATORS[c].kind != "count":
            out[f"ratio_{c}"] = [_ratio(x, nat.get(c, np.nan), INDICATORS[c]) for x in out[c]]
    return out.sort_values("nom").reset_index(drop=True)


def registration_by(tables, audience: str, code: str, by: tuple[str, ...] = ("niveau", "secteur")) -> pd.DataFrame:
    """Return the share of schools registered by level and sector, with the national share and ratio."""
    t = _tables(tables)
    etab = t["etablissements"]
    local, nat = select(etab, audience, code), reference(etab, audience)

    def _agg(df):
        g = df.groupby(list(by), observed=True)["inscrit"]
        return pd.DataFrame({"etablissements": g.size(), "inscrits": g.sum()})

    a, b = _agg(local), _agg(nat)
    out = a.join(b.rename(columns=lambda c: f"{c}_nat"), how="left").reset_index()
    out["part_inscrits"] = out["inscrits"] / out["etablissements"]
    out["part_nationale"] = out["inscrits_nat"] / out["etablissements_nat"]
    out["ratio"] = out["part_inscrits"] / out["part_nationale"]
    return with_spec(out[[*by, "etablissements", "inscrits", "part_inscrits", "part_nationale", "ratio"]], Spec())


def school_list(tables, audience: str, code: str) -> pd.DataFrame:
    """Return one row per school of the territory (for a département's collèges, a région's lycées).

    Columns: ``uai, nom, niveau, inscrit, actif_mois, referent`` (``oui``/``non``), ``acces`` (12 months),
    ``eleves``, ``acces_par_eleve``, ``anomalies`` (``oui`` when quality findings concern the school). Pass it through :func:`gar_analysis.disclosure.publish`
    before showing it.
    """
    facts = select(school_facts(tables), audience, code)
    yes = {True: "oui", False: "non"}
    out = pd.DataFrame({
        "uai": facts["uai"].astype(str), "nom": facts.get("nom", facts["uai"]).astype(str),
        "niveau": facts["niveau"].astype(str),
        "inscrit": facts["inscrit"].fillna(False).astype(bool).map(yes),
        "actif_mois": facts["actif_mois"].fillna(False).astype(bool).map(yes),
        "referent": facts["referent"].fillna(False).astype(bool).map(yes) if "referent" in facts else "non",
        "acces": _num(facts["acces_12m"]).astype("int64"),
        "eleves": pd.to_numeric(facts["nombre_eleves"], errors="coerce"),
        "acces_par_eleve": _num(facts["acces_eleve_12m"]) / pd.to_numeric(facts["nombre_eleves"], errors="coerce"),
        "anomalies": (_num(facts["anomalies"]) > 0).map(yes) if "anomalies" in facts else "non"})
    return with_spec(out.sort_values("nom").reset_index(drop=True),
                     Spec(people=("acces", "eleves"), rates={"acces_par_eleve": "eleves"}, implied=("acces_par_eleve",),
                          totals={"acces": None, "eleves": None}))


# --------------------------------------------------------------------------- schools to follow up


#: Reasons to follow a school up (``motif`` code → French label), in the order of the pages.
FOLLOW_UP_MOTIFS = {
    "non_inscrit": "Non inscrit au GAR",
    "inactif_mois": "Inscrit, sans accès le mois de référence",
    "sans_referent": "Sans référent GAR nommé",
    "constats_qualite": "Constats de qualité à corriger",
}
FOLLOW_UP_COLUMNS = ["motif", "uai", "nom", "commune", "departement", "niveau", "secteur", "eleves", "detail"]
_NIVEAUX = {"ecole": "école", "college": "collège", "lycee": "lycée"}
_SECTEURS = {"public": "public", "prive": "privé"}


def _follow_frame(rows: pd.DataFrame, motif: str, detail) -> pd.DataFrame:
    """Tidy follow-up rows (:data:`FOLLOW_UP_COLUMNS`), largest schools first, with their disclosure spec."""
    eleves = pd.to_numeric(rows.get("nombre_eleves", pd.Series(np.nan, index=rows.index)), errors="coerce")
    out = pd.DataFrame({
        "motif": FOLLOW_UP_MOTIFS[motif], "uai": rows["uai"].astype(str),
        "nom": rows.get("nom", rows["uai"]).astype(str),
        "commune": rows.get("nom_commune", pd.Series("", index=rows.index)).fillna("").astype(str),
        "departement": rows["code_departement"].astype(str).map(
            {c: departement_name(c) for c in set(rows["code_departement"].dropna().astype(str)) if c}).fillna(""),
        "niveau": rows["niveau"].astype(str).map(lambda n: _NIVEAUX.get(n, n)),
        "secteur": rows["secteur"].astype(str).map(lambda n: _SECTEURS.get(n, n)),
        "eleves": eleves.astype("Int64"), "detail": detail}, index=rows.index)
    out = out.assign(_e=eleves.fillna(-1)).sort_values(["_e", "nom"], ascending=[False, True]).drop(columns="_e")
    # schools are public institutions (shown); their pupils are people (small counts hidden)
    return with_spec(out.reset_index(drop=True)[FOLLOW_UP_COLUMNS], Spec(people=("eleves",)))


def schools_not_registered(tables, audience: str, code: str) -> pd.DataFrame:
    """Schools of the territory and scope not registered in the GAR (registry: not ``inscrits``).

    Returns
    -------
    pandas.DataFrame
        :data:`FOLLOW_UP_COLUMNS`; ``detail``: the school's ENT project when known.
    """
    facts = select(school_facts(tables), audience, code)
    rows = facts[~facts["inscrit"].fillna(False).astype(bool)]
    ent = rows.get("projet_ent", pd.Series(pd.NA, index=rows.index))
    detail = ent.map(lambda p: f"projet ENT : {p}" if isinstance(p, str) and p.strip() else "")
    return _follow_frame(rows, "non_inscrit", detail)


def schools_inactive(tables, audience: str, code: str, month: str | None = None) -> pd.DataFrame:
    """Registered schools without any accès in the month (registry: ``inscrits`` not ``actifs_mois``).

    Parameters
    ----------
    month : str, optional
        ``AAAA-MM``; default the reference month (:func:`reference_month`), as ``actifs_mois``.

    Returns
    -------
    pandas.DataFrame
        :data:`FOLLOW_UP_COLUMNS`; ``detail``: the last month with an accès (« aucun accès » otherwise).
    """
    t = _tables(tables)
    facts = select(school_facts(t), audience, code)
    usage = t["usage_mensuel"]
    ref = facts.attrs.get("mois_reference")
    month = str(month or ref or "")
    u = usage[usage["uai"].isin(set(facts["uai"])) & (_num(usage["acces"]) > 0)]
    u = u[u["mois"].astype(str) <= month] if month else u
    if month == ref:
        active = facts["actif_mois"].fillna(False).astype(bool)
    else:  # the same definition (at least one accès), another month
        active = facts["uai"].isin(set(u.loc[u["mois"].astype(str) == month, "uai"]))
    rows = facts[facts["inscrit"].fillna(False).astype(bool) & ~active.to_numpy()]
    last = u.groupby("uai")["mois"].max().astype(str)
    detail = rows["uai"].map(last).map(lambda m: f"dernier accès : {_month_label(m)}" if isinstance(m, str)
                                       else "aucun accès dans les données")
    out = _follow_frame(rows, "inactif_mois", detail)
    out.attrs["mois"] = month
    return out


def _month_label(month: str) -> str:
    return f"{MONTH_NAMES[int(month[5:7]) - 1]} {month[:4]}"


def schools_without_referent(tables, audience: str, code: str) -> pd.DataFrame:
    """Schools with no contact holding the « référent GAR » role in the CRM (registry: not ``referents``).

    Returns
    -------
    pandas.DataFrame
        :data:`FOLLOW_UP_COLUMNS`; ``detail``: whether the school is registered. Empty when the
        processed tables carry no CRM référent column.
    """
    facts = select(school_facts(tables), audience, code)
    if "referent" not in facts.columns:
        return _follow_frame(facts.iloc[0:0], "sans_referent", pd.Series(dtype=str))
    rows = facts[~facts["referent"].fillna(False).astype(bool)]
    detail = rows["inscrit"].fillna(False).astype(bool).map({True: "inscrit au GAR", False: "non inscrit au GAR"})
    return _follow_frame(rows, "sans_referent", detail)


def schools_with_findings(tables, audience: str, code: str) -> pd.DataFrame:
    """Schools of the territory with quality findings to fix (errors and warnings, as ``anomalies``).

    Returns
    -------
    pandas.DataFrame
        :data:`FOLLOW_UP_COLUMNS`; ``detail``: the number of findings and the rules concerned.
    """
    t = _tables(tables)
    found = findings(t, audience, code)
    facts = select(school_facts(t), audience, code)
    if found.empty:
        return _follow_frame(facts.iloc[0:0], "constats_qualite", pd.Series(dtype=str))
    from .checks.registry import RULES

    serious = found[found["gravite"].isin(["erreur", "avertissement"]) & found["uai"].fillna("").ne("")]
    g = serious.groupby("uai")
    titles = g["regle"].apply(lambda s: ", ".join(RULES[r].titre if r in RULES else str(r)
                                                    for r in dict.fromkeys(s)))
    rows = facts[facts["uai"].isin(set(serious["uai"]))]
    n = rows["uai"].map(g.size())
    detail = [f"{fmt_number(k)} constat(s) : {titles[u]}" for u, k in zip(rows["uai"], n)]
    return _follow_frame(rows, "constats_qualite", pd.Series(detail, index=rows.index, dtype=object))


def schools_to_follow(tables, audience: str, code: str, month: str | None = None) -> pd.DataFrame:
    """Every list of schools to follow up, one tidy table with a ``motif`` column.

    The lists of :data:`FOLLOW_UP_MOTIFS` (a school appears once per motif), each largest first. Pass it
    through :func:`gar_analysis.disclosure.publish` before showing it (pupils' counts are people).
    """
    parts = [schools_not_registered(tables, audience, code), schools_inactive(tables, audience, code, month),
             schools_without_referent(tables, audience, code), schools_with_findings(tables, audience, code)]
    out = pd.concat([p for p in parts if len(p)] or [parts[0]], ignore_index=True)
    return with_spec(out[FOLLOW_UP_COLUMNS], Spec(people=("eleves",)))


def follow_up_summary(follow: pd.DataFrame) -> pd.DataFrame:
    """Count the schools of :func:`schools_to_follow` per motif (every motif, zeros included)."""
    n = follow.groupby("motif").size() if len(follow) else pd.Series(dtype=int)
    out = pd.DataFrame({"motif": list(FOLLOW_UP_MOTIFS.values())})
    out["etablissements"] = out["motif"].map(n).fillna(0).astype("int64")
    return with_spec(out, Spec())  # counts of schools: public institutions, shown


# --------------------------------------------------------------------------- usage over time


def monthly(tables, audience: str, code: str) -> pd.DataFrame:
    """Return the monthly usage of the territory: ``mois, acces, etablissements_actifs, part_actifs``.

    ``part_actifs`` is the share of the territory's registered schools with at least one accès
    that month; every month of the data is present (zeros included).
    """
    t = _tables(tables)
    etab, usage = t["etablissements"], t["usage_mensuel"]
    local = select(etab, audience, code)
    uais = set(local["uai"])
    inscrits = int(local["inscrit"].fillna(False).astype(bool).sum())
    months = _months(usage)
    u = usage[usage["uai"].isin(uais)].copy()
    u["mois"] = u["mois"].astype(str)
    g = u.groupby("mois")
    out = pd.DataFrame({"mois": months})
    out["acces"] = out["mois"].map(g["acces"].sum()).fillna(0).astype("int64")
    out["etablissements_actifs"] = out["mois"].map(u[u["acces"] > 0].groupby("mois")["uai"].nunique()) \
        .fillna(0).astype("int64")
    out["inscrits"] = inscrits
    out["part_actifs"] = out["etablissements_actifs"] / inscrits if inscrits else np.nan
    return with_spec(out, Spec(people=("acces",), totals={"acces": None}))


def seasonality(monthly_df: pd.DataFrame) -> pd.DataFrame:
    """Return the average accès per calendar month and its index (100 = average month).

    Columns: ``mois_calendaire (1–12), libelle, acces_moyen, indice``, school-year order (September first).
    """
    if monthly_df.empty:
        return with_spec(pd.DataFrame(columns=["mois_calendaire", "libelle", "acces_moyen", "indice"]),
                         Spec(people=("acces_moyen",), rates={"indice": "acces_moyen"}))
    m = monthly_df.assign(mois_calendaire=monthly_df["mois"].str[5:7].astype(int))
    avg = m.groupby("mois_calendaire")["acces"].mean()
    order = [9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8]
    out = pd.DataFrame({"mois_calendaire": [k for k in order if k in avg.index]})
    out["libelle"] = [MONTH_NAMES[k - 1] for k in out["mois_calendaire"]]
    out["acces_moyen"] = out["mois_calendaire"].map(avg)
    mean = out["acces_moyen"].mean()
    out["indice"] = out["acces_moyen"] / mean * 100 if mean else np.nan
    return with_spec(out, Spec(people=("acces_moyen",), rates={"indice": "acces_moyen"}))


def usage_mix(tables, audience: str, code: str) -> pd.DataFrame:
    """Return the accès of the last 12 months by profile and by support: ``dimension, categorie, acces, part``."""
    t = _tables(tables)
    usage = t["usage_mensuel"]
    local = select(t["etablissements"], audience, code)
    u = usage[usage["uai"].isin(set(local["uai"])) & usage["mois"].astype(str).isin(window(usage))]
    rows = []
    labels = {"eleve": "élèves", "enseignant": "enseignants", "documentaliste": "documentalistes",
              "autre_personnel": "autres personnels", "ordinateur": "ordinateur", "tablette": "tablette",
              "mobile": "mobile"}
    for dim, cats in (("profil", PROFILS), ("support", SUPPORTS)):
        total = sum(float(_num(u[f"acces_{c}"]).sum()) for c in cats if f"acces_{c}" in u)
        for c in cats:
            n = float(_num(u[f"acces_{c}"]).sum()) if f"acces_{c}" in u else 0.0
            rows.append({"dimension": dim, "categorie": labels[c], "acces": n, "part": _div(n, total)})
    # a share is hidden with its accès (the total of a dimension is the sum of the published accès)
    return with_spec(pd.DataFrame(rows),
                     Spec(people=("acces",), rates={"part": "acces"}, totals={"acces": "dimension"}))


def top_resources(tables, audience: str, code: str, n: int = 10) -> pd.DataFrame:
    """Return the most used resources of the territory over 12 months: ``ressource, editeur, acces, etablissements``."""
    t = _tables(tables)
    if not t.has("acces_ressources"):
        return with_spec(pd.DataFrame(columns=["ressource", "editeur", "acces", "etablissements"]),
                         Spec(people=("acces",)))
    ar = select(t["acces_ressources"], audience, code)
    ar = ar[ar["mois"].astype(str).isin(window(t["usage_mensuel"])) & (_num(ar["acces"]) > 0)]
    g = ar.groupby("id_ressource")
    out = pd.DataFrame({"acces": g["acces"].sum(), "etablissements": g["uai"].nunique()}).reset_index()
    if t.has("ressources"):
        r = t["ressources"].drop_duplicates("id_ressource")[["id_ressource", "nom", "editeur"]]
        out = out.merge(r, on="id_ressource", how="left")
    else:
        out["nom"], out["editeur"] = out["id_ressource"], ""
    out = out.rename(columns={"nom": "ressource"}).sort_values("acces", ascending=False).head(n)
    return with_spec(out[["ressource", "editeur", "acces", "etablissements"]].reset_index(drop=True),
                     Spec(people=("acces",)))


# --------------------------------------------------------------------------- CRM follow-up


def _actor_territory(contrats: pd.DataFrame, etab: pd.DataFrame) -> pd.DataFrame:
    """Add code_departement / code_academie / code_region to contracts from their actor's code."""
    from .territories import departements

    deps = departements()
    dep_to_aca = dict(zip(deps.code_departement, deps.code_academie))
    dep_to_reg = dict(zip(deps.code_departement, deps.code_region))
    aca_to_reg = dict(zip(deps.code_academie, deps.code_region))
    uai_terr = etab.set_index("uai")[["code_departement", "code_academie", "code_region"]] \
        if len(etab) else pd.DataFrame(columns=["code_departement", "code_academie", "code_region"])
    out = contrats.copy()
    typ = out.get("type_acteur", pd.Series("", index=out.index)).astype(str)
    code = out.get("code_acteur", pd.Series("", index=out.index)).fillna("").astype(str).str.strip()
    dep, aca, reg = [], [], []
    for ty, c in zip(typ, code):
        d = a = r = None
        if ty == "departement":
            d = normalize_departement(c)
        elif ty == "commune" and len(c) == 5:
            d = c[:3] if c.startswith("97") else c[:2]
        elif ty == "region":
            r = c
        elif ty == "academie":
            a = c.zfill(2) if c else None
        elif ty == "etablissement" and c in uai_terr.index:
            d, a, r = (str(x) for x in uai_terr.loc[c, ["code_departement", "code_academie", "code_region"]])
        if d and not a:
            a = dep_to_aca.get(d)
        if d and not r:
            r = dep_to_reg.get(d)
        if a and not r:
            r = aca_to_reg.get(a)
        dep.append(d)
        aca.append(a)
        reg.append(r)
    out["code_departement"], out["code_academie"], out["code_region"] = dep, aca, reg
    return out


def _in_territory(df: pd.DataFrame, audience: str, code: str, *, whole_regions: bool) -> pd.Series:
    """Mask of actor rows located in a territory.

    A région actor has no académie: it belongs to an académie's territory when its région
    contains the académie — always when ``whole_regions`` (a list of conventions), and only
    when the région has this single académie otherwise (a sum of spending must not count a
    région's whole budget in each of its académies).
    """
    from .territories import academies

    level = AUDIENCES[audience][0]
    mask = df[level].astype("string").eq(str(code)).fillna(False)
    if level == "code_academie":
        aca = academies()
        reg = aca.loc[aca.code_academie == str(code), "code_region"]
        if len(reg):
            r = reg.iloc[0]
            single = (aca.code_region == r).sum() == 1
            if whole_regions or single:
                mask |= (df["type_acteur"].astype(str) == "region") & (df["code_region"].astype("string") == r).fillna(False)
    return mask.to_numpy()


def conventions(tables, audience: str, code: str, today: pd.Timestamp | None = None) -> pd.DataFrame:
    """Return the GAR and ENT conventions of the territory's local authorities and ENT projects.

    Columns: ``acteur, type_acteur, objet, statut, date_signature, date_fin, expire_bientot``.
    ``expire_bientot`` is True for a signed convention ending within 6 months of ``today``
    (default: the end of the data's latest month). For ``region`` / ``departement`` audiences only
    the authority itself; for a territory, every authority located in it.
    """
    t = _tables(tables)
    cols = ["acteur", "type_acteur", "objet", "statut", "date_signature", "date_fin", "expire_bientot"]
    if not t.has("contrats"):
        return pd.DataFrame(columns=cols)
    c = t["contrats"]
    key = _memo_key(t, "conventions_actors")
    if _memo_get(key) is None:
        c = c[c["objet"].astype(str).str.startswith("convention")]
        c = _memo_set(key, _actor_territory(c, t["etablissements"]))
    c = _memo_get(key).copy(deep=False) if key is not None else c
    level = AUDIENCES[audience][0]
    if audience == "region":
        c = c[(c["type_acteur"] == "region") & (c["code_acteur"].astype(str) == str(code))]
    elif audience == "departement":
        c = c[(c["type_acteur"] == "departement")
              & (c["code_acteur"].map(normalize_departement) == normalize_departement(code))]
    elif level != "national":
        c = c[_in_territory(c, audience, code, whole_regions=True)]
    today = today if today is not None else _data_end(t)
    fin = pd.to_datetime(c["date_fin"], errors="coerce")
    out = pd.DataFrame({
        "acteur": c.get("nom_acteur", c["id_acteur"]).astype(str), "type_acteur": c["type_acteur"].astype(str),
        "objet": c["objet"].astype(str), "statut": c["statut"].astype(str),
        "date_signature": pd.to_datetime(c["date_signature"], errors="coerce"), "date_fin": fin})
    out["expire_bientot"] = (out["statut"] == "signe") & fin.notna() & (fin >= today) \
        & (fin <= today + pd.Timedelta(days=EXPIRING_DAYS))
    # what needs action first: expiring, then pending, then the others
    order = np.where(out["expire_bientot"], 0, np.where(out["statut"] == "en_attente", 1, 2))
    out = out.assign(_o=order).sort_values(["_o", "type_acteur", "acteur"]).drop(columns="_o")
    return out.reset_index(drop=True)[cols]


def _data_end(t: Tables) -> pd.Timestamp:
    months = _months(t["usage_mensuel"])
    if not months:
        return pd.Timestamp.today().normalize()
    return pd.Period(months[-1], "M").end_time.normalize()


def conventions_summary(conv: pd.DataFrame) -> pd.DataFrame:
    """Count conventions by actor type: ``type_acteur, signees, en_attente, expirant``."""
    if conv.empty:
        return with_spec(pd.DataFrame(columns=["type_acteur", "signees", "en_attente", "expirant"]), Spec())
    g = conv.groupby("type_acteur")
    # conventions are facts about public institutions: shown whatever their number
    return with_spec(pd.DataFrame({"signees": g["statut"].apply(lambda s: int((s == "signe").sum())),
                                   "en_attente": g["statut"].apply(lambda s: int((s == "en_attente").sum())),
                                   "expirant": g["expire_bientot"].sum().astype(int)}).reset_index(), Spec())


def training_actions(tables, audience: str, code: str, freq: str = "Q") -> pd.DataFrame:
    """Return the support actions delivered in the territory's schools per quarter and type.

    Columns: ``periode`` (``2024-T1``), ``formation``, ``webinaire``, ``accompagnement``, ``total``.
    """
    t = _tables(tables)
    types = ["formation", "webinaire", "accompagnement"]
    if not t.has("actions"):
        return with_spec(pd.DataFrame(columns=["periode", *types, "total"]), Spec())
    a = select(t["actions"], audience, code)
    if a.empty:
        return with_spec(pd.DataFrame(columns=["periode", *types, "total"]), Spec())
    per = pd.to_datetime(a["date"]).dt.to_period(freq)
    wide = a.assign(periode=per).pivot_table(index="periode", columns="type_action", values="uai",
                                             aggfunc="size", fill_value=0, observed=True)
    wide = wide.reindex(columns=types, fill_value=0)
    full = pd.period_range(wide.index.min(), wide.index.max(), freq=freq)
    wide = wide.reindex(full, fill_value=0)
    wide["total"] = wide.sum(axis=1)
    wide.index = [f"{p.year}-T{p.quarter}" if freq == "Q" else str(p) for p in wide.index]
    # support actions are facts about public institutions: shown whatever their number
    return with_spec(wide.rename_axis("periode").reset_index().astype({c: "int64" for c in [*types, "total"]}), Spec())


# --------------------------------------------------------------------------- budget


def budget(tables, audience: str, code: str) -> pd.DataFrame:
    """Return the digital-resource spending of the territory's local authorities per year.

    Columns: ``annee, depenses_ressources_numeriques, dont_gar, part_gar, mois_acces, acces,
    cout_pour_1000_acces`` where ``acces`` counts the territory's accès of the same calendar year
    (all of them for a territory, the funded level for a région or département), ``mois_acces`` the
    months of that year in the data, and ``cout_pour_1000_acces`` = ``1000 × dont_gar / acces``
    (euros) — only for a complete year (12 months of data): a full year's spending is never divided
    by part of a year's accès (NaN otherwise, shown « z »).
    """
    t = _tables(tables)
    cols = ["annee", "depenses_ressources_numeriques", "dont_gar", "part_gar", "mois_acces", "acces",
            "cout_pour_1000_acces"]
    spec = Spec(people=("acces",), rates={"cout_pour_1000_acces": "acces"})
    if not t.has("budget"):
        return with_spec(pd.DataFrame(columns=cols), spec)
    b = t["budget"].copy()
    b["code"] = b["code"].astype(str)
    level = AUDIENCES[audience][0]
    if audience == "region":
        b = b[(b["niveau"] == "region") & (b["code"] == str(code))]
    elif audience == "departement":
        b = b[(b["niveau"] == "departement") & (b["code"].map(normalize_departement) == normalize_departement(code))]
    elif level != "national":
        key = _memo_key(t, "budget_actors")  # the same for every territory: computed once per build in a warm kernel
        if _memo_get(key) is None:
            b = _memo_set(key, _actor_territory(b.assign(type_acteur=b["niveau"], code_acteur=b["code"]),
                                                t["etablissements"]))
        b = _memo_get(key).copy(deep=False) if key is not None else b
        b = b[_in_territory(b, audience, code, whole_regions=False)]
    if b.empty:
        return with_spec(pd.DataFrame(columns=cols), spec)
    y = b.groupby("annee")[["depenses_ressources_numeriques", "dont_gar"]].sum()
    usage = t["usage_mensuel"]
    local = select(t["etablissements"], audience, code)
    u = usage[usage["uai"].isin(set(local["uai"]))]
    per_year = u.groupby(u["mois"].astype(str).str[:4].astype(int))["acces"].sum()
    months = pd.Series(_months(usage), dtype=str)
    covered = months.groupby(months.str[:4].astype(int)).size() if len(months) else pd.Series(dtype=int)
    y["part_gar"] = y["dont_gar"] / y["depenses_ressources_numeriques"].where(y["depenses_ressources_numeriques"] > 0)
    y["mois_acces"] = covered.reindex(y.index).fillna(0).astype("int64")
    y["acces"] = per_year.reindex(y.index).fillna(0).astype("int64")
    complete = (y["mois_acces"] == 12) & (y["acces"] > 0)
    y["cout_pour_1000_acces"] = (1000 * y["dont_gar"] / y["acces"]).where(complete)
    return with_spec(y.reset_index()[cols], spec)


# --------------------------------------------------------------------------- anomalies


def findings(tables, audience: str, code: str) -> pd.DataFrame:
    """Return the quality findings about the territory's schools (contract columns of the checks)."""
    t = _tables(tables)
    if not t.has("constats"):
        return pd.DataFrame(columns=["regle", "gravite", "source", "ligne", "uai", "mois", "id_ressource", "message"])
    c = t["constats"]
    if AUDIENCES[audience][0] == "national":
        return c.reset_index(drop=True)
    c = select(c.assign(niveau=c["uai"].map(dict(zip(t["etablissements"]["uai"], t["etablissements"]["niveau"])))),
               audience, code)
    return c.drop(columns="niveau").reset_index(drop=True)


def anomalies_summary(found: pd.DataFrame) -> pd.DataFrame:
    """Count findings by rule and severity: ``regle, erreurs, avertissements, informations, etablissements``."""
    cols = ["regle", "erreurs", "avertissements", "informations", "etablissements"]
    if found.empty:
        return with_spec(pd.DataFrame(columns=cols), Spec())
    g = found.groupby("regle")
    out = pd.DataFrame({
        "erreurs": g["gravite"].apply(lambda s: int((s == "erreur").sum())),
        "avertissements": g["gravite"].apply(lambda s: int((s == "avertissement").sum())),
        "informations": g["gravite"].apply(lambda s: int((~s.isin(["erreur", "avertissement"])).sum())),
        "etablissements": g["uai"].apply(lambda s: int(s.fillna("").astype(str).replace("", np.nan).nunique())),
    }).reset_index()
    # findings are facts about the data of public institutions: shown whatever their number
    return with_spec(out.sort_values(["erreurs", "avertissements"], ascending=False).reset_index(drop=True)[cols],
                     Spec())


# --------------------------------------------------------------------------- publisher


def editeur_usage(tables, editeur: str) -> dict[str, pd.DataFrame | dict]:
    """Return the usage of one publisher's own resources — and nothing about any other publisher.

    Parameters
    ----------
    tables : Tables, dict or path
        The processed tables.
    editeur : str
        The publisher (name as in the catalogue; case and accents ignored).

    Returns
    -------
    dict
        ``valeurs`` (dict of headline values), ``mensuel`` (mois, acces, etablissements),
        ``par_academie`` (code, nom, acces, etablissements, acces_par_etablissement, ratio), ``par_ressource``
        (ressource, type_ressource, acces, etablissements, part_acces_enseignants,
        part_acces_mobile_tablette), ``par_support`` (categorie, acces, part). Every row comes from the
        publisher's own resources; ratios compare its académies with its own national average.
    """
    t = _tables(tables)
    pid = check_territory("editeur", editeur, t)
    res = t["ressources"]
    own = res[res["id_editeur"].astype(str) == pid].drop_duplicates("id_ressource")
    ids = set(own["id_ressource"])
    ar = t["acces_ressources"] if t.has("acces_ressources") else pd.DataFrame(columns=["id_ressource"])
    ar = ar[ar["id_ressource"].isin(ids)].copy()
    ar["mois"] = ar["mois"].astype(str)
    months = window(t["usage_mensuel"]) or _months(ar)
    w = ar[ar["mois"].isin(months)]
    active = w[_num(w["acces"]) > 0]
    total = float(_num(w["acces"]).sum())
    mob = float(_num(w.get("acces_mobile", 0)).sum() + _num(w.get("acces_tablette", 0)).sum()) \
        if len(w) else 0.0
    ens = float(_num(w["acces_enseignant"]).sum()) if "acces_enseignant" in w else 0.0
    valeurs = {"ressources": len(own), "ressources_utilisees": int(active["id_ressource"].nunique()),
               "acces": total, "etablissements": int(active["uai"].nunique()),
               "academies": int(active["code_academie"].nunique()) if "code_academie" in active else 0,
               "part_acces_enseignants": _div(ens, total), "part_acces_mobile_tablette": _div(mob, total)}
    valeurs["acces_par_etablissement"] = _div(total, valeurs["etablissements"])
    g = ar.groupby("mois")
    mensuel = pd.DataFrame({"mois": sorted(ar["mois"].unique())})
    mensuel["acces"] = mensuel["mois"].map(g["acces"].sum()).fillna(0).astype("int64")
    mensuel["etablissements"] = mensuel["mois"].map(ar[_num(ar["acces"]) > 0].groupby("mois")["uai"].nunique()) \
        .fillna(0).astype("int64")
    if len(active) and "code_academie" in active:
        ga = active.groupby("code_academie")
        pa = pd.DataFrame({"acces": ga["acces"].sum(), "etablissements": ga["uai"].nunique()}).reset_index()
        pa = pa.rename(columns={"code_academie": "code"})
        pa["nom"] = pa["code"].astype(str).map(academie_name)
        pa["acces_par_etablissement"] = pa["acces"] / pa["etablissements"]
        pa["ratio"] = pa["acces_par_etablissement"] / valeurs["acces_par_etablissement"]
        pa = pa[["code", "nom", "acces", "etablissements", "acces_par_etablissement", "ratio"]].sort_values("nom")
    else:
        pa = pd.DataFrame(columns=["code", "nom", "acces", "etablissements", "acces_par_etablissement", "ratio"])
    gr = w.groupby("id_ressource")
    pr = pd.DataFrame({"acces": gr["acces"].sum(), "etablissements": gr["uai"].apply(
        lambda s: s[w.loc[s.index, "acces"] > 0].nunique())})
    if "acces_enseignant" in w:
        pr["part_acces_enseignants"] = gr["acces_enseignant"].sum() / pr["acces"].where(pr["acces"] > 0)
    if "acces_mobile" in w:
        pr["part_acces_mobile_tablette"] = (gr["acces_mobile"].sum() + gr["acces_tablette"].sum()) \
            / pr["acces"].where(pr["acces"] > 0)
    pr = own[["id_ressource", "nom", "type_ressource"]].merge(pr.reset_index(), on="id_ressource", how="left")
    pr = pr.rename(columns={"nom": "ressource"}).drop(columns="id_ressource")
    pr[["acces", "etablissements"]] = pr[["acces", "etablissements"]].fillna(0).astype("int64")
    pr = pr.sort_values("acces", ascending=False).reset_index(drop=True)
    sup = [{"categorie": s, "acces": float(_num(w[f"acces_{s}"]).sum()) if f"acces_{s}" in w else 0.0}
           for s in SUPPORTS]
    ps = pd.DataFrame(sup)
    ps["part"] = ps["acces"] / total if total else np.nan
    return {"nom": publisher_names(res)[pid], "id_editeur": pid, "valeurs": valeurs, "mensuel": mensuel,
            "par_academie": pa.reset_index(drop=True),
            "par_ressource": pr, "par_support": ps}


def _own_access(t: Tables, pid: str) -> pd.DataFrame:
    """Rows of ``acces_ressources`` for one publisher's resources only (``mois`` as text)."""
    res = t["ressources"]
    ids = set(res.loc[res["id_editeur"].astype(str) == pid, "id_ressource"])
    ar = t["acces_ressources"] if t.has("acces_ressources") else pd.DataFrame(columns=["id_ressource", "mois", "uai"])
    ar = ar[ar["id_ressource"].isin(ids)].copy()
    ar["mois"] = ar["mois"].astype(str)
    return ar


def editeur_year_on_year(tables, editeur: str) -> pd.DataFrame:
    """A publisher's accès month by month over 12 months beside the same month a year earlier.

    Columns: ``mois, acces, mois_an, acces_an, evolution`` (``acces / acces_an − 1``; NaN when the month a
    year earlier is outside the data or had no accès). Its own resources only; the same rule as
    ``evolution_mois_an`` of the territory pages. ``attrs``: ``evolution_mois_an`` and ``evolution_3_mois``
    (reference month and its 3 last months against the same months a year earlier).
    """
    t = _tables(tables)
    pid = check_territory("editeur", editeur, t)
    ar = _own_access(t, pid)
    usage = t["usage_mensuel"]
    months = window(usage)
    known = set(_months(usage))
    per = ar.groupby("mois")["acces"].sum() if len(ar) else pd.Series(dtype="int64")

    def total(ms):
        return float(sum(per.get(m, 0) for m in ms))

    out = pd.DataFrame({"mois": months})
    out["acces"] = out["mois"].map(lambda m: total([m])).astype("int64")
    out["mois_an"] = out["mois"].map(lambda m: _shift(m, -12))
    out["acces_an"] = out["mois_an"].map(lambda m: total([m]) if m in known else np.nan)
    out["evolution"] = [_div(a, b) - 1 if b and not pd.isna(b) else np.nan for a, b in zip(out["acces"], out["acces_an"])]
    ref = reference_month(usage)
    if ref and _shift(ref, -12) in known:
        last3 = [_shift(ref, -2), _shift(ref, -1), ref]
        out.attrs["evolution_mois_an"] = _div(total([ref]), total([_shift(ref, -12)])) - 1
        out.attrs["evolution_3_mois"] = _div(total(last3), total([_shift(m, -12) for m in last3])) - 1
        out.attrs["acces_mois"], out.attrs["acces_3_mois"] = total([ref]), total(last3)
    # the months add up to the publisher's 12-month total (published): secondary suppression
    return with_spec(out, Spec(people=("acces", "acces_an"), rates={"evolution": ("acces_an", "acces")},
                               totals={"acces": None}))


_TAKE_UP_COLUMNS = ["abonnes", "abonnes_utilisateurs", "part_abonnes_utilisateurs", "abonnes_sans_usage",
                    "licences_mois", "affectations_licences_mois", "part_licences_affectees"]


def _take_up(abo: pd.DataFrame, used: set, aff: pd.Series, acces: float) -> dict:
    """Take-up figures of a set of active subscriptions (see the ``editeur`` indicators of :data:`INDICATORS`)."""
    schools = set(abo["uai"])
    v = {"abonnes": len(schools), "abonnes_utilisateurs": len(schools & used)}
    v["abonnes_sans_usage"] = v["abonnes"] - v["abonnes_utilisateurs"]
    v["part_abonnes_utilisateurs"] = _div(v["abonnes_utilisateurs"], v["abonnes"])
    v["licences_mois"] = float(_num(abo["licences"]).sum())
    v["affectations_licences_mois"] = float(aff.sum())
    v["part_licences_affectees"] = _div(v["affectations_licences_mois"], v["licences_mois"])
    v["acces_par_affectation"] = _div(acces, v["affectations_licences_mois"])
    return v


def editeur_take_up(tables, editeur: str) -> dict:
    """Licences bought, affectations and use of one publisher's resources in the reference month.

    Parameters
    ----------
    tables : Tables, dict or path
        The processed tables (``abonnements``, ``acces_ressources``, ``ressources``).
    editeur : str
        The publisher.

    Returns
    -------
    dict
        ``mois`` (reference month), ``valeurs`` (the ``editeur`` indicators of :data:`INDICATORS` plus
        ``abonnes_sans_usage``), ``par_academie`` (``code, nom`` and the same figures per académie of the
        subscribed schools), ``sans_usage`` (subscribed schools without any accès to the publisher's resources in
        the month: ``uai, nom, commune, academie, ressources, licences``). Its own subscriptions and resources only.
    """
    t = _tables(tables)
    pid = check_territory("editeur", editeur, t)
    ref = reference_month(t["usage_mensuel"])
    empty = {"mois": ref, "valeurs": _take_up(pd.DataFrame(columns=["uai", "licences"]), set(), pd.Series(dtype=float),
                                             0.0),
             "par_academie": pd.DataFrame(columns=["code", "nom", *_TAKE_UP_COLUMNS]),
             "sans_usage": pd.DataFrame(columns=["uai", "nom", "commune", "academie", "ressources", "licences"])}
    if ref is None or not t.has("abonnements"):
        return empty
    start, end = pd.Period(ref, "M").start_time, pd.Period(ref, "M").end_time.normalize()
    abo = t["abonnements"]
    abo = abo[(abo["id_editeur"].astype(str) == pid) & (pd.to_datetime(abo["date_debut"]) <= end)
              & (pd.to_datetime(abo["date_fin"]) >= start)]
    ar = _own_access(t, pid)
    ar = ar[ar["mois"] == ref]
    used = set(ar.loc[_num(ar["acces"]) > 0, "uai"])
    aff = _num(ar["affectations"]) if "affectations" in ar else pd.Series(dtype=float)
    out = dict(empty)
    out["valeurs"] = _take_up(abo, used, aff, float(_num(ar["acces"]).sum()))
    rows = []
    abo_aca = abo["code_academie"].astype("string")
    ar_aca = ar["code_academie"].astype("string") if "code_academie" in ar else pd.Series(pd.NA, index=ar.index)
    for code in sorted(set(abo_aca.dropna())):
        sub = abo[(abo_aca == code).fillna(False).to_numpy()]
        local = ar[(ar_aca == code).fillna(False).to_numpy()]
        v = _take_up(sub, used, _num(local["affectations"]) if "affectations" in local else pd.Series(dtype=float),
                     float(_num(local["acces"]).sum()))
        rows.append({"code": str(code), "nom": academie_name(str(code)), **{k: v[k] for k in _TAKE_UP_COLUMNS}})
    out["par_academie"] = pd.DataFrame(rows, columns=["code", "nom", *_TAKE_UP_COLUMNS])
    idle = abo[~abo["uai"].isin(used)]
    if len(idle):
        names = dict(zip(t["ressources"]["id_ressource"], t["ressources"]["nom"]))
        etab = t["etablissements"].drop_duplicates("uai").set_index("uai")
        g = idle.groupby("uai")
        lst = pd.DataFrame({"licences": g["licences"].sum(),
                            "ressources": g["id_ressource"].apply(lambda s: ", ".join(sorted({names.get(r, r) for r in s}))),
                            "code_academie": g["code_academie"].first()}).reset_index()
        lst["nom"] = lst["uai"].map(etab["nom"]) if "nom" in etab else lst["uai"]
        lst["commune"] = lst["uai"].map(etab["nom_commune"]) if "nom_commune" in etab else ""
        lst["academie"] = lst["code_academie"].map(lambda c: academie_name(str(c)) if isinstance(c, str) else "")
        lst = lst.sort_values(["licences", "nom"], ascending=[False, True])
        out["sans_usage"] = lst[["uai", "nom", "commune", "academie", "ressources", "licences"]].reset_index(drop=True)
    return out


def publishable_take_up(out: dict, threshold: int | None = None) -> dict:
    """Apply disclosure control to :func:`editeur_take_up` (returns a new dict).

    Subscribed schools and their licences are facts about institutions (shown); affectations are people's acts:
    hidden from 1 to threshold − 1 with the rates built on them (and the one cell that the total would give back).
    """
    from .disclosure import suppress

    res = dict(out)
    rates = {"part_licences_affectees": "affectations_licences_mois"}
    v = suppress(pd.DataFrame([out["valeurs"]]), ["affectations_licences_mois"],
                 rate_cols=[*rates, "acces_par_affectation"],
                 denominators={**rates, "acces_par_affectation": "affectations_licences_mois"}, threshold=threshold)
    res["valeurs"] = {k: v.at[0, k] for k in v.columns}
    res["par_academie"] = suppress(out["par_academie"], ["affectations_licences_mois"], rate_cols=list(rates),
                                   denominators=rates, threshold=threshold,
                                   totals={"affectations_licences_mois": None})
    res["sans_usage"] = with_spec(out["sans_usage"].copy(), Spec())
    return res


def take_up_table(valeurs: dict) -> pd.DataFrame:
    """Return the publishable take-up values (:func:`publishable_take_up`) as a display table: label, value text."""
    names = [n for n, i in INDICATORS.items() if i.editeur]

    def _text(v, kind):
        if is_suppressed(v):
            return config.SUPPRESSED
        if v is None or pd.isna(v):
            return "–"
        return {"percent": fmt_percent(v), "decimal": fmt_number(v, 2)}.get(kind, fmt_number(v))

    return with_spec(pd.DataFrame({"indicateur": [INDICATORS[n].label for n in names],
                                   "valeur": [_text(valeurs.get(n), INDICATORS[n].kind) for n in names]}), Spec())


# --------------------------------------------------------------------------- key messages


def _fmt(value: float, kind: str) -> str:
    if kind == "percent":
        return fmt_percent(value, 0 if abs(value) >= 0.1 else 1)
    if kind in ("decimal", "days"):
        return fmt_number(value, 1)
    return fmt_number(value)


#: Indicators worth a sentence in "points forts" / "à corriger", with a constructive lever.
MESSAGE_LEVERS = {
    "part_inscrits": "accompagner l'inscription des établissements restants avec leur projet ENT",
    "part_avec_affectation": "aider les inscrits à affecter les ressources à leurs élèves et enseignants",
    "part_actifs_mois": "relancer les établissements inscrits sans accès ce mois-ci (formation, référent)",
    "acces_par_eleve": "faire connaître les ressources disponibles auprès des équipes",
    "acces_par_enseignant": "proposer des temps de prise en main aux enseignants",
    "part_referents": "nommer un référent GAR dans chaque établissement",
    "part_convention": "finaliser les conventions GAR avec les collectivités",
}


def _good(position: object, ind: Indicator) -> bool | None:
    """True for a favourable position, False for an unfavourable one, None within the limits."""
    if position not in ("au-dessus", "en-dessous"):
        return None
    return (position == "au-dessus") == (ind.better == "haut")


def key_messages(values: pd.DataFrame, threshold: int | None = None, *,
                 max_items: int = 4) -> tuple[list[str], list[str]]:
    """Turn :func:`territory_values` into French sentences: strengths first, then levers.

    An indicator is a strength or a lever only when its ``position`` (:func:`positions`, the
    interval rule of the cards) says so; suppressed values are never quoted.

    Returns
    -------
    (list of str, list of str)
        ``points_forts``, ``a_corriger``.
    """
    pub = publishable(values, threshold)
    strong, weak = [], []
    for name, lever in MESSAGE_LEVERS.items():
        if name not in pub.index or "position" not in values.columns:
            continue
        row, raw = pub.loc[name], values.loc[name]
        good = _good(raw["position"], INDICATORS[name])
        if good is None or is_suppressed(row["valeur"]) or is_suppressed(row["ratio"]) or pd.isna(raw["ratio"]):
            continue
        ind = INDICATORS[name]
        text = (f"{ind.label} : {_fmt(raw['valeur'], ind.kind)}, "
                f"pour {_fmt(raw['valeur_nationale'], ind.kind)} au niveau national, au-delà des écarts "
                "que le hasard explique")
        if good:
            strong.append((raw["ratio"], f"{text}."))
        else:
            weak.append((-raw["ratio"], f"{text} : piste d'action, {lever}."))
    strong.sort(reverse=True)
    weak.sort(reverse=True)
    return [s for _, s in strong[:max_items]], [s for _, s in weak[:max_items]]


def title(audience: str, code: str) -> str:
    """Return the report's French title for an audience and territory."""
    if audience == "editeur":
        return f"Tableau de bord du GAR — éditeur {code}"
    return f"Tableau de bord du GAR — {territory_name(audience, code)}"


def unit_messages(units: pd.DataFrame, threshold: int | None = None, *, unit_label: str = "académies",
                  columns: tuple[str, ...] = ("part_inscrits", "part_actifs_mois", "acces_par_eleve"),
                  n: int = 3, national: dict | None = None) -> tuple[list[str], list[str]]:
    """Name the sub-units outside the funnel limits around the national value (bright spots first).

    A unit is named only when it lies outside the 99.8 % limits of :func:`gar_analysis.gaps.funnel_table`
    (over-dispersion corrected), never because it is first or last of a list; at most ``n`` per side,
    strongest first. Suppressed values are left out.

    Parameters
    ----------
    units : pandas.DataFrame
        Output of :func:`by_unit` (with each rate's denominator).
    national : dict, optional
        Indicator → national value (the funnel's target); default: the units' pooled value.

    Returns
    -------
    (list of str, list of str)
        ``points_forts``, ``a_corriger`` (with a constructive lever).
    """
    pub = publishable(units, threshold)
    strong, weak = [], []
    for col in columns:
        ind = INDICATORS.get(col)
        if col not in pub.columns or ind is None or not _comparable(ind) or ind.denominator not in units.columns:
            continue
        ok = units[~pub[col].map(is_suppressed) & units[col].notna() & (pd.to_numeric(units[ind.denominator]) > 0)]
        if len(ok) < 3:
            continue
        frame = pd.DataFrame({"unit": ok["code"].astype(str), "den": pd.to_numeric(ok[ind.denominator]),
                              "num": (pd.to_numeric(ok[col]) * pd.to_numeric(ok[ind.denominator])).round()})
        table = _unit_funnel(frame, "proportion" if ind.kind == "percent" else "rate", (national or {}).get(col))
        if table is None:
            continue
        names = dict(zip(ok["code"].astype(str), ok["nom"]))
        label = ind.label[0].lower() + ind.label[1:]
        fmt = lambda r: f"{names[r['unit']]} ({_fmt(r['rate'], ind.kind)})"  # noqa: E731
        above = table[table["position_998"] == "au-dessus"].sort_values("z_adjusted", ascending=False).head(n)
        below = table[table["position_998"] == "en-dessous"].sort_values("z_adjusted").head(n)
        good, bad = (above, below) if ind.better == "haut" else (below, above)
        if len(good):
            strong.append(f"{unit_label.capitalize()} au-dessus des limites de contrôle — {label} : "
                          + ", ".join(fmt(r) for _, r in good.iterrows()) + ".")
        if len(bad):
            lever = MESSAGE_LEVERS.get(col, "partager les pratiques des territoires en tête")
            weak.append(f"{unit_label.capitalize()} en dessous des limites de contrôle — {label} : "
                        + ", ".join(fmt(r) for _, r in bad.iterrows()) + f" ; piste d'action : {lever}.")
    return strong, weak


_DISPLAY_KIND = {"count": "int", "percent": "percent", "decimal": "decimal", "days": "decimal", "euros": "euros"}


def headline(pub: pd.DataFrame, name: str, *, national: bool = True) -> dict:
    """Return a KPI card (for :func:`gar_analysis.reporting.display.show_headlines`) from publishable values.

    Parameters
    ----------
    pub : pandas.DataFrame
        Output of :func:`publishable` applied to :func:`territory_values`.
    name : str
        Indicator name.
    national : bool, optional
        Whether to show the national value and the ratio (False for the national report itself).
    """
    row = pub.loc[name]
    card = {"label": INDICATORS[name].label, "value": row["valeur"], "kind": _DISPLAY_KIND[INDICATORS[name].kind]}
    if national:
        card["national"] = row["valeur_nationale"]
        card["ratio"] = row["ratio"]
        card["position"] = row.get("position")
    return card


def publishable_editeur(out: dict, threshold: int | None = None) -> dict:
    """Apply disclosure control to every table of :func:`editeur_usage` (returns a new dict).

    The decided rule (``docs/indicators.md``): accès are people's acts, hidden from 1 to threshold − 1 with
    every figure built on them; counts of schools, académies and catalogue resources are shown.
    """
    from .disclosure import suppress

    t = threshold
    res = dict(out)
    on_acces = {"part_acces_enseignants": "acces", "part_acces_mobile_tablette": "acces",
                "acces_par_etablissement": "acces"}
    values = suppress(pd.DataFrame([out["valeurs"]]), ["acces"], rate_cols=list(on_acces), denominators=on_acces,
                      threshold=t, implied=["part_acces_enseignants", "part_acces_mobile_tablette"])
    res["valeurs"] = {k: values.at[0, k] for k in values.columns}
    res["mensuel"] = suppress(out["mensuel"], ["acces"], threshold=t, totals={"acces": None})
    res["par_academie"] = suppress(out["par_academie"], ["acces"], rate_cols=["acces_par_etablissement", "ratio"],
                                   denominators={"acces_par_etablissement": "acces", "ratio": "acces"}, threshold=t,
                                   totals={"acces": None})
    pr = out["par_ressource"]
    rates = [c for c in ("part_acces_enseignants", "part_acces_mobile_tablette") if c in pr]
    res["par_ressource"] = suppress(pr, ["acces"], rate_cols=rates, denominators={c: "acces" for c in rates},
                                    threshold=t, implied=True, totals={"acces": None})
    ps = out["par_support"].assign(_total=out["valeurs"]["acces"])
    res["par_support"] = suppress(ps, ["acces", "_total"], rate_cols=["part"], denominators={"part": "_total"},
                                  threshold=t, implied=True, totals={"acces": None}).drop(columns="_total")
    return res


def editeur_messages(out: dict, threshold: int | None = None) -> tuple[list[str], list[str]]:
    """Strengths and levers of a publisher's report (its own resources only; no small count quoted)."""
    pub = publishable_editeur(out, threshold)
    strong, weak = [], []
    pr = pub["par_ressource"]
    used = pr[~pr["acces"].map(is_suppressed) & (pd.to_numeric(pr["acces"], errors="coerce") > 0)]
    if len(used):
        top = used.iloc[0]
        strong.append(f"Ressource la plus utilisée sur 12 mois : {top['ressource']} "
                      f"({_fmt(float(top['acces']), 'count')} accès).")
    pa = pub["par_academie"]
    ok = pa[~pa["ratio"].map(is_suppressed) & pa["ratio"].notna()]
    table = None
    if len(ok) >= 3:  # named only outside the funnel limits around its own national average, never for a rank
        raw = out["par_academie"].set_index("code").loc[ok["code"]]
        table = _unit_funnel(pd.DataFrame({"unit": raw.index.astype(str), "num": pd.to_numeric(raw["acces"]),
                                           "den": pd.to_numeric(raw["etablissements"])}), "rate")
    if table is not None:
        above = table[table["position_998"] == "au-dessus"].sort_values("z_adjusted", ascending=False)
        names = dict(zip(ok["code"].astype(str), ok["nom"]))
        ratios = dict(zip(ok["code"].astype(str), pd.to_numeric(ok["ratio"])))
        if len(above):
            listed = ", ".join(f"{names[u]} ({_fmt(ratios[u], 'decimal')} fois votre moyenne nationale)"
                               for u in above["unit"].head(3))
            strong.append(f"Académies où l'usage par établissement utilisateur dépasse votre moyenne au-delà du "
                          f"hasard : {listed}.")
    unused = out["par_ressource"][out["par_ressource"]["acces"] == 0]["ressource"].tolist()
    if unused:
        names = ", ".join(unused[:3]) + (" …" if len(unused) > 3 else "")
        weak.append(f"Des ressources du catalogue n'ont eu aucun accès sur 12 mois ({names}) : "
                    "piste d'action, les faire connaître auprès des établissements et vérifier leurs affectations.")
    share = out["valeurs"].get("part_acces_mobile_tablette")
    if not is_suppressed(pub["valeurs"]["part_acces_mobile_tablette"]) and share is not None and not pd.isna(share) \
            and share < 0.05:
        weak.append("Les accès sur mobile ou tablette restent rares : piste d'action, vérifier l'affichage des "
                    "ressources sur petit écran.")
    return strong, weak


# --------------------------------------------------------------------------- publishable tables


_STATUTS = {"signe": "signée", "en_attente": "en attente", "clos": "close"}
TYPES_ACTEUR_LABELS = {"region": "région", "departement": "département", "commune": "commune", "academie": "académie",
          "etablissement": "établissement", "ent": "projet ENT", "editeur": "éditeur"}


def conventions_display(conv: pd.DataFrame) -> pd.DataFrame:
    """Return :func:`conventions` with French labels and dates (``31/10/2025``) for a table."""
    def _date(x):
        return "" if pd.isna(x) else pd.Timestamp(x).strftime("%d/%m/%Y")

    return pd.DataFrame({
        "acteur": conv["acteur"], "type_acteur": conv["type_acteur"].map(lambda t: TYPES_ACTEUR_LABELS.get(t, t)),
        "objet": conv["objet"].str.replace("_", " ", regex=False),
        "statut": conv["statut"].map(lambda s: _STATUTS.get(s, s)),
        "date_signature": conv["date_signature"].map(_date), "date_fin": conv["date_fin"].map(_date),
        "expire_bientot": conv["expire_bientot"].map({True: "oui", False: "non"})}).rename(
        columns={"date_signature": "Signée le", "date_fin": "Fin de validité", "expire_bientot": "Expire sous 6 mois"})


def editeur_findings(tables, editeur: str) -> pd.DataFrame:
    """Return the quality findings about one publisher's own resources."""
    t = _tables(tables)
    pid = check_territory("editeur", editeur, t)
    if not t.has("constats") or not t.has("ressources"):
        return pd.DataFrame(columns=["regle", "gravite", "source", "ligne", "uai", "mois", "id_ressource", "message"])
    res = t["ressources"]
    ids = set(res.loc[res["id_editeur"].astype(str) == pid, "id_ressource"])
    c = t["constats"]
    return c[c["id_ressource"].isin(ids)].reset_index(drop=True)


def values_table(pub: pd.DataFrame, *, national: bool = True) -> pd.DataFrame:
    """Return publishable :func:`territory_values` as a display table: label, value, national value, ratio.

    Values are formatted by their kind (French text); ``c`` stays ``c``; the ratio stays numeric.
    Internal denominators (accès of the last 3 months, of the reference month) are left out.
    """
    def _text(v, kind):
        if is_suppressed(v) or v is None or pd.isna(v):
            return config.SUPPRESSED if is_suppressed(v) else "–"
        return {"percent": fmt_percent(v), "decimal": fmt_number(v, 2), "days": fmt_number(v, 0)}.get(kind,
                                                                                                    fmt_number(v))

    rows = pub[~pub["indicateur"].isin(["acces_3_mois", "acces_mois"])]
    out = pd.DataFrame({"indicateur": rows["libelle"].to_numpy(),
                        "valeur": [_text(v, k) for v, k in zip(rows["valeur"], rows["kind"])]})
    if national:
        out["valeur_nationale"] = [_text(v, k) for v, k in zip(rows["valeur_nationale"], rows["kind"])]
        out["ratio"] = rows["ratio"].to_numpy()
    return out


# --------------------------------------------------------------------------- glossary


def registry_markdown() -> str:
    """Return the glossary of :data:`INDICATORS` as Markdown (the section of ``docs/indicators.md``).

    One entry per indicator, in French, from the registry itself, so that the documentation never
    drifts from what the pages compute (a test compares the two).
    """
    kinds = {"count": "nombre", "percent": "part (%)", "decimal": "taux", "days": "jours", "euros": "euros"}
    lines = ["| identifiant | libellé | définition | numérateur | dénominateur | population | fenêtre | "
             "nature | secret statistique | comparé |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, i in INDICATORS.items():
        den = INDICATORS[i.denominator].label if i.denominator else "–"
        secret = "oui (personnes ou leurs accès)" if i.people else "non (fait institutionnel)"
        compared = "oui (limites à 99,8 %)" if _comparable(i) else "non"
        lines.append(f"| `{name}` | {i.label} | {i.definition} | {i.numerator} | {den} | {i.population} | "
                     f"{i.window} | {kinds[i.kind]} | {secret} | {compared} |")
    return "\n".join(lines)
