"""What changed since the previous publication: snapshots, change detection, release notes.

A release keeps a *snapshot* of what its pages said (:func:`write_snapshot`: school-level facts
and the quality findings, aggregates only, never pupil-level data) in
``config.HISTORY_DIR / <release-id>``. The next release compares its processed tables with it:

* **indicators** — each comparable indicator of :data:`gar_analysis.indicators.INDICATORS` (a rate
  with a direction and a count denominator, as for :func:`gar_analysis.indicators.positions`) is
  computed before and after for every territory of the audience's level. A territory's change
  (new − old) is compared with the national change in a funnel: sampling variance of both rates
  (binomial for a share, Poisson for a rate per unit) plus the between-territory variance of the
  changes (DerSimonian-Laird, :func:`gar_analysis.stats.dersimonian_laird_tau2`, estimated on the
  other territories so that one territory's large change does not hide itself). A change is
  reported only outside the 99.8 % limits (|z| > 3.09): never a bare difference, and a change that
  every territory shares (the season, the national trend) is not a territory's change;
* **schools** newly registered, newly active and newly inactive in the reference month, by the
  registry's definitions (``inscrit``, ``actif_mois`` of :func:`gar_analysis.indicators.school_facts`);
* **findings** fixed and new, by their stable key (:func:`finding_keys`: rule, file, UAI, month,
  resource — not the line number, which moves when a month is added).

Bright spots come first. Values quoted are suppressed as the pages do (a rate on a small count of
people is never quoted); counts of schools and findings are facts about public institutions.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .errors import DataError
from .formatting import fmt_number, fmt_percent
from .indicators import (INDICATORS, Tables, _comparable, _hidden, _months, aggregate, reference_month,
                         school_facts)
from .io import atomic_write_parquet, atomic_write_text
from .stats import dersimonian_laird_tau2
from .territories import AUDIENCE_REGISTRY, get_audience, territory_codes, territory_name

log = logging.getLogger(__name__)

#: Two-sided 99.8 % limit of the standard normal (the funnel's outer limits, as in ``gaps``).
Z_998 = 3.090232306167813
#: Snapshot format version.
SNAPSHOT_VERSION = 1
#: Audiences of the release notes (every territorial audience; publishers have their own pages).
NOTE_AUDIENCES = tuple(k for k, a in AUDIENCE_REGISTRY.items() if a.territorial)
#: Indicators compared between two publications (the comparable ones of the registry).
COMPARED = tuple(n for n, i in INDICATORS.items() if _comparable(i))
#: Territory columns kept in the snapshot.
TERRITORY_COLUMNS = ("code_departement", "code_academie", "code_region", "niveau", "secteur")
#: School facts kept in the snapshot: what :func:`aggregate` reads (school-level sums, no person).
FACT_COLUMNS = ("uai", "nom", *TERRITORY_COLUMNS, "inscrit", "actif_mois", "delai_inscription_jours",
                "affectations", "projet_ent", "mediacentre", "referent", "actions_formation", "convention",
                "nombre_eleves", "acces_12m", "acces_eleve_12m", "acces_enseignant_12m", "acces_mobile_tablette_12m",
                "accedants_enseignant", "accedants", "affectations_mois", "acces_3_mois", "acces_3_mois_an",
                "acces_mois", "acces_mois_an")
#: Finding columns kept in the snapshot (the stable key and what a page says of it).
FINDING_COLUMNS = ("cle", "regle", "gravite", "source", "uai", "mois", "id_ressource", "niveau",
                   "code_departement", "code_academie", "code_region")


# --------------------------------------------------------------------------- snapshot


def finding_keys(constats: pd.DataFrame) -> pd.Series:
    """Return the stable key of each finding: rule, file, UAI, month, resource (not the line number).

    A finding that concerns no school (a budget line) keeps its message, without digits that
    could be a line number.

    Examples
    --------
    >>> c = pd.DataFrame({"regle": ["doublon"], "source": ["gar/acces.csv"], "uai": ["0350001A"],
    ...                   "mois": ["2024-10"], "id_ressource": ["R0001"], "message": ["x"]})
    >>> finding_keys(c).tolist()
    ['doublon|gar/acces.csv|0350001A|2024-10|R0001|']
    """
    def col(name):
        return constats[name].fillna("").astype(str) if name in constats else pd.Series("", index=constats.index)

    no_school = col("uai").str.strip().eq("")
    msg = col("message").str.replace(r"\d+", "#", regex=True).where(no_school, "")
    return (col("regle") + "|" + col("source") + "|" + col("uai") + "|" + col("mois") + "|"
            + col("id_ressource") + "|" + msg)


def _facts(tables: Tables) -> pd.DataFrame:
    facts = school_facts(tables)
    keep = [c for c in FACT_COLUMNS if c in facts.columns]
    out = facts[keep].copy()
    for c in TERRITORY_COLUMNS:
        if c in out:
            out[c] = out[c].astype("string")
    out.attrs.update(facts.attrs)
    return out


def _findings(tables: Tables, facts: pd.DataFrame) -> pd.DataFrame:
    if not tables.has("constats"):
        return pd.DataFrame(columns=list(FINDING_COLUMNS))
    c = tables["constats"].copy()
    c["cle"] = finding_keys(c)
    where = facts.set_index("uai")
    for col in ("niveau", "code_departement", "code_academie", "code_region"):
        mapped = c["uai"].map(where[col]) if col in where else pd.Series(pd.NA, index=c.index)
        c[col] = (c[col].astype("string").fillna(mapped.astype("string")) if col in c else mapped).astype("string")
    out = c[[x for x in FINDING_COLUMNS if x in c.columns]].drop_duplicates("cle")
    for x in ("regle", "gravite", "source", "uai", "mois", "id_ressource"):
        out[x] = out[x].fillna("").astype(str)
    return out.reset_index(drop=True)


def _period(tables: Tables) -> dict:
    months = _months(tables["usage_mensuel"])
    return {"debut": months[0] if months else None, "fin": months[-1] if months else None,
            "mois_reference": reference_month(tables["usage_mensuel"])}


def write_snapshot(processed_dir, dest_dir) -> Path:
    """Write the comparison base of a release: school-level facts and findings (not published).

    Parameters
    ----------
    processed_dir : str or Path
        The processed tables of the release.
    dest_dir : str or Path
        Folder to write (``config.HISTORY_DIR / <release-id>``); replaced as a whole, atomically.

    Returns
    -------
    Path
        ``dest_dir``, holding ``etablissements.parquet`` (one row per school: territory codes,
        ``inscrit``, ``actif_mois`` and the school-level sums the indicators add up),
        ``constats.parquet`` (findings with their stable key ``cle``) and ``snapshot.json``
        (data period, reference month).
    """
    from .build import replace_dir

    tables = Tables(processed_dir)
    facts = _facts(tables)
    dest = Path(dest_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.nouveau-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        atomic_write_parquet(pd.DataFrame(facts), tmp / "etablissements.parquet")
        atomic_write_parquet(_findings(tables, facts), tmp / "constats.parquet")
        meta = {"version": SNAPSHOT_VERSION, "periode": _period(tables),
                "an_disponible": bool(facts.attrs.get("an_disponible", False)),
                "etablissements": int(len(facts)), "ecrit_le": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "tables": ["etablissements", "constats"]}
        atomic_write_text(tmp / "snapshot.json", json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
        replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@dataclass
class State:
    """One side of a comparison: school facts, findings and period."""

    facts: pd.DataFrame
    findings: pd.DataFrame
    periode: dict
    an_disponible: bool = False
    _values: dict = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, snapshot_dir) -> "State":
        """Read a snapshot written by :func:`write_snapshot`."""
        from .errors import ConfigError

        path = Path(snapshot_dir)
        meta_path = path / "snapshot.json"
        if not meta_path.exists():
            raise ConfigError(f"{meta_path} : instantané de la publication précédente absent ou incomplet.")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return cls(pd.read_parquet(path / "etablissements.parquet"), pd.read_parquet(path / "constats.parquet"),
                   meta.get("periode", {}), bool(meta.get("an_disponible", False)))

    @classmethod
    def from_processed(cls, processed_dir=None, tables: Tables | None = None) -> "State":
        """Read the current processed tables."""
        t = tables if tables is not None else Tables(processed_dir)
        facts = _facts(t)
        return cls(facts, _findings(t, facts), _period(t), bool(facts.attrs.get("an_disponible", False)))

    def unit_values(self, audience: str) -> dict[str, dict]:
        """Indicator values of every territory of the audience's level (in the reader's scope), cached."""
        if audience not in self._values:
            aud = get_audience(audience, territorial=True)
            facts = aud.reference(self.facts)
            if aud.level == "national":
                groups = {"FR": facts}
            else:
                groups = {str(k): g for k, g in facts.groupby(aud.level, observed=True)}
            values = {k: aggregate(g, year_on_year=self.an_disponible) for k, g in groups.items()}
            values["_national"] = aggregate(facts, year_on_year=self.an_disponible)
            self._values[audience] = values
        return self._values[audience]


# --------------------------------------------------------------------------- indicator changes


def _variance(value: float, den: float, kind: str) -> float:
    """Sampling variance of a rate: binomial for a share, Poisson for a rate per unit."""
    if pd.isna(value) or pd.isna(den) or den <= 0:
        return np.nan
    if kind == "percent":
        p = min(max(float(value), 0.0), 1.0)
        return max(p * (1 - p), 0.25 / den) / den  # never 0 at 0 % or 100 %
    return max(float(value), 1.0 / den) / den


def indicator_changes(old: State, new: State, audience: str) -> pd.DataFrame:
    """Compare every comparable indicator of every territory of an audience with the previous publication.

    Returns
    -------
    pandas.DataFrame
        One row per territory and indicator: ``code, indicateur, avant, apres, den_avant, den_apres,
        ecart, ecart_national, z, signal`` where ``signal`` is ``hausse``/``baisse`` outside the
        99.8 % limits around the national change (over-dispersion corrected), else ``""``.
    """
    ov, nv = old.unit_values(audience), new.unit_values(audience)
    codes = sorted(set(ov) & set(nv) - {"_national"})
    rows = []
    for name in COMPARED:
        ind = INDICATORS[name]
        target = nv["_national"].get(name, np.nan) - ov["_national"].get(name, np.nan)
        part = []
        for c in codes:
            a, b = ov[c].get(name, np.nan), nv[c].get(name, np.nan)
            da, db = ov[c].get(ind.denominator, np.nan), nv[c].get(ind.denominator, np.nan)
            s2 = _variance(a, da, ind.kind) + _variance(b, db, ind.kind)
            part.append({"code": c, "indicateur": name, "avant": a, "apres": b, "den_avant": da, "den_apres": db,
                         "ecart": b - a, "s2": s2})
        frame = pd.DataFrame(part)
        if frame.empty:
            continue
        ok = frame["ecart"].notna() & frame["s2"].notna() & (frame["s2"] > 0)
        frame["ecart_national"] = target
        frame["z"] = np.nan
        if ok.sum() >= 3 and not pd.isna(target):
            est, s2 = frame.loc[ok, "ecart"].to_numpy(float), frame.loc[ok, "s2"].to_numpy(float)
            # between-territory variance of the changes, estimated without the territory tested
            tau2 = np.array([dersimonian_laird_tau2(np.delete(est, i), np.delete(s2, i), float(target))
                             for i in range(len(est))])
            frame.loc[ok, "z"] = (est - target) / np.sqrt(s2 + tau2)
        rows.append(frame)
    cols = ["code", "indicateur", "avant", "apres", "den_avant", "den_apres", "ecart", "ecart_national", "z", "signal"]
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True)
    out["signal"] = np.where(out["z"] > Z_998, "hausse", np.where(out["z"] < -Z_998, "baisse", ""))
    return out[cols]


def _fmt(value: float, kind: str) -> str:
    return fmt_percent(value) if kind == "percent" else fmt_number(value, 2)


def _delta(value: float, kind: str) -> str:
    sign = "+" if value >= 0 else "−"
    if kind == "percent":
        return f"{sign}{fmt_number(abs(value) * 100, 1)} point(s)"
    return f"{sign}{fmt_number(abs(value), 2)}"


def _sentence(row, threshold: int, unit_name: str | None = None) -> tuple[bool, str] | None:
    """A French sentence for one flagged change (None when a quoted value would be suppressed)."""
    ind = INDICATORS[row["indicateur"]]
    for value, den in ((row["avant"], row["den_avant"]), (row["apres"], row["den_apres"])):
        if _hidden(ind.name, value, lambda d, den=den: den, threshold):
            return None
    good = (row["signal"] == "hausse") == (ind.better == "haut")
    where = f"{unit_name} — " if unit_name else ""
    label = ind.label if not unit_name else ind.label[0].lower() + ind.label[1:]
    verb = "en hausse" if row["signal"] == "hausse" else "en baisse"
    text = (f"{where}{label} {verb} : {_fmt(row['avant'], ind.kind)} → {_fmt(row['apres'], ind.kind)} "
            f"({_delta(row['ecart'], ind.kind)}, pour {_delta(row['ecart_national'], ind.kind)} au niveau national), "
            "au-delà des écarts que le hasard explique.")
    return good, text


# --------------------------------------------------------------------------- one territory


def _scoped(df: pd.DataFrame, audience: str, code: str) -> pd.DataFrame:
    aud = get_audience(audience, territorial=True)
    if aud.level != "national" and aud.level not in df.columns:
        return df.iloc[0:0]
    return aud.scope(df, code)


#: Findings that mean a school's data for a month are missing or unusable (not a change of its activity).
DATA_GAP_RULES = ("mois_manquant", "valeur_manquante", "format_invalide", "valeur_negative", "valeur_non_exploitable")


def _unsure_schools(state: State) -> set[str]:
    """UAIs whose data for the state's reference month are missing or unusable (:data:`DATA_GAP_RULES`)."""
    month = state.periode.get("mois_reference")
    f = state.findings
    if not month or not len(f) or "mois" not in f:
        return set()
    gap = f["regle"].isin(DATA_GAP_RULES) & (f["mois"].astype(str) == str(month)) & (f["uai"].astype(str) != "")
    return set(f.loc[gap, "uai"].astype(str))


def _diff(old: State, new: State) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Schools whose status changed, findings fixed and new findings (computed once per pair of states)."""
    key = ("diff", id(old))
    if key not in new._values:
        cols = ["uai", "nom", *TERRITORY_COLUMNS, "inscrit", "actif_mois"]
        b = new.facts[[c for c in cols if c in new.facts]]
        a = old.facts[[c for c in ("uai", "inscrit", "actif_mois") if c in old.facts]]
        m = b.merge(a, on="uai", how="left", suffixes=("", "_avant"))
        ins, ins0 = m["inscrit"].fillna(False).astype(bool), m["inscrit_avant"].fillna(False).astype(bool)
        act, act0 = m["actif_mois"].fillna(False).astype(bool), m["actif_mois_avant"].fillna(False).astype(bool)
        m["nouveaux_inscrits"] = (ins & ~ins0).to_numpy()
        # a school whose reference month has missing or unusable data (a finding) has no reliable activity
        # status on that side: its « change » would be the data's, not the school's
        unsure = _unsure_schools(old) | _unsure_schools(new)
        sure = ~m["uai"].isin(unsure)
        m["nouveaux_actifs"] = (ins & act & ~(ins0 & act0) & sure).to_numpy()
        m["nouveaux_inactifs"] = (ins & ins0 & act0 & ~act & sure).to_numpy()
        moved = m[m[["nouveaux_inscrits", "nouveaux_actifs", "nouveaux_inactifs"]].any(axis=1)]
        fa, fb = old.findings, new.findings
        fixed = fa[~fa["cle"].isin(set(fb["cle"]))]
        added = fb[~fb["cle"].isin(set(fa["cle"]))]
        new._values[key] = (moved.sort_values("nom").reset_index(drop=True), fixed, added)
    return new._values[key]


def _schools(old: State, new: State, audience: str, code: str) -> dict[str, pd.DataFrame]:
    moved = _scoped(_diff(old, new)[0], audience, code)
    return {k: moved.loc[moved[k].to_numpy(), ["uai", "nom"]].reset_index(drop=True)
            for k in ("nouveaux_inscrits", "nouveaux_actifs", "nouveaux_inactifs")}


def _territory_findings(frame: pd.DataFrame, audience: str, code: str) -> pd.DataFrame:
    if get_audience(audience).level == "national":
        return frame
    return _scoped(frame, audience, code)


def territory_changes(old: State | None, new: State, audience: str, code: str, *,
                      threshold: int | None = None, changes: pd.DataFrame | None = None) -> dict:
    """Return what changed for one territory since the previous publication (published-safe).

    Parameters
    ----------
    old : State or None
        The previous publication (None: first release, nothing to compare with).
    new : State
        The current processed tables.
    audience, code : str
        The territory.
    threshold : int, optional
        Disclosure threshold.
    changes : DataFrame, optional
        :func:`indicator_changes` of the audience, when already computed (release notes).

    Returns
    -------
    dict
        ``premiere`` (bool), ``mois_reference`` / ``mois_reference_avant``, ``points_forts`` and
        ``reculs`` (sentences, bright spots first), ``nouveaux_inscrits``, ``nouveaux_actifs``,
        ``nouveaux_inactifs`` (lists of ``{"uai", "nom"}``), ``constats_corriges``,
        ``nouveaux_constats`` (lists of ``{"regle", "source", "uai", "mois"}``), ``nombre`` (changes found).
    """
    t = config.disclosure_threshold(threshold)
    out = {"audience": audience, "territoire": str(code), "nom": territory_name(audience, str(code)),
           "premiere": old is None, "mois_reference": new.periode.get("mois_reference"),
           "mois_reference_avant": None if old is None else old.periode.get("mois_reference"),
           "points_forts": [], "reculs": [], "nouveaux_inscrits": [], "nouveaux_actifs": [],
           "nouveaux_inactifs": [], "constats_corriges": [], "nouveaux_constats": [], "nombre": 0}
    if old is None:
        return out
    aud = get_audience(audience, territorial=True)
    good, bad = [], []
    if aud.level == "national":  # the national page names the académies whose change stands out
        ch = changes if changes is not None else indicator_changes(old, new, "academie")
        flagged = ch[ch["signal"] != ""]
        named = [(r, territory_name("academie", r["code"])) for _, r in flagged.iterrows()]
    else:
        ch = changes if changes is not None else indicator_changes(old, new, audience)
        flagged = ch[(ch["code"] == str(code)) & (ch["signal"] != "")]
        named = [(r, None) for _, r in flagged.iterrows()]
    for r, name in named:
        s = _sentence(r, t, name[0].upper() + name[1:] if name else None)
        if s is not None:
            (good if s[0] else bad).append((-abs(r["z"]), s[1]))
    out["points_forts"] = [s for _, s in sorted(good)]
    out["reculs"] = [s for _, s in sorted(bad)]
    for key, frame in _schools(old, new, audience, code).items():
        out[key] = frame.to_dict("records")
    _, fixed, added = _diff(old, new)
    cols = ["regle", "source", "uai", "mois"]
    out["constats_corriges"] = _territory_findings(fixed, audience, code)[cols].to_dict("records")
    out["nouveaux_constats"] = _territory_findings(added, audience, code)[cols].to_dict("records")
    out["nombre"] = sum(len(out[k]) for k in ("points_forts", "reculs", "nouveaux_inscrits", "nouveaux_actifs",
                                             "nouveaux_inactifs", "constats_corriges", "nouveaux_constats"))
    return out


def _month_label(month: str | None) -> str:
    from .formatting import MONTH_NAMES

    if not month:
        return "–"
    return f"{MONTH_NAMES[int(month[5:7]) - 1]} {month[:4]}"


def _school_text(items: list[dict], max_items: int) -> str:
    names = [f"{s['nom']} ({s['uai']})" for s in items[:max_items]]
    more = len(items) - len(names)
    return ", ".join(names) + (f" et {fmt_number(more)} autre(s)" if more > 0 else "")


def _findings_text(items: list[dict]) -> str:
    by_rule = pd.Series([i["regle"] for i in items]).value_counts()
    from .checks.registry import rule_title

    return ", ".join(f"{rule_title(rule)} ({fmt_number(n)})" for rule, n in by_rule.items())


def change_items(ch: dict, *, max_items: int = 10) -> tuple[list[str], list[str], list[str]]:
    """Turn :func:`territory_changes` into French sentences: bright spots, declines, other facts."""
    good, bad, facts = list(ch["points_forts"]), list(ch["reculs"]), []
    if ch["nouveaux_inscrits"]:
        good.append(f"{fmt_number(len(ch['nouveaux_inscrits']))} établissement(s) nouvellement inscrit(s) au GAR : "
                    f"{_school_text(ch['nouveaux_inscrits'], max_items)}.")
    if ch["nouveaux_actifs"]:
        good.append(f"{fmt_number(len(ch['nouveaux_actifs']))} établissement(s) inscrit(s) devenu(s) actif(s) "
                    f"(au moins un accès le mois de référence) : {_school_text(ch['nouveaux_actifs'], max_items)}.")
    if ch["constats_corriges"]:
        good.append(f"{fmt_number(len(ch['constats_corriges']))} constat(s) de qualité corrigé(s) : "
                    f"{_findings_text(ch['constats_corriges'])}.")
    if ch["nouveaux_inactifs"]:
        bad.append(f"{fmt_number(len(ch['nouveaux_inactifs']))} établissement(s) actif(s) à la publication "
                   f"précédente sans accès ce mois de référence : {_school_text(ch['nouveaux_inactifs'], max_items)} "
                   "— piste d'action : prendre contact avec leur référent GAR.")
    if ch["nouveaux_constats"]:
        bad.append(f"{fmt_number(len(ch['nouveaux_constats']))} nouveau(x) constat(s) de qualité : "
                   f"{_findings_text(ch['nouveaux_constats'])} (voir la page qualité).")
    return good, bad, facts


def intro_text(ch: dict) -> str:
    """The section's first sentence: what is compared with what (or that nothing can be)."""
    if ch["premiere"]:
        return ("Première publication : il n'y a pas encore de publication précédente à laquelle comparer ces "
                "chiffres. Les évolutions apparaîtront ici à la prochaine publication.")
    text = (f"Comparaison avec la publication précédente (mois de référence : "
            f"{_month_label(ch['mois_reference_avant'])} → {_month_label(ch['mois_reference'])}). Un indicateur est "
            "cité seulement quand son évolution s'écarte de l'évolution nationale au-delà des limites à 99,8 % "
            "(ce que le hasard et la saison expliquent n'est pas cité).")
    if not ch["nombre"]:
        text += " Aucun changement au-delà du hasard, aucun établissement nouvellement inscrit, actif ou inactif, " \
                "aucun constat de qualité nouveau ou corrigé."
    return text


def show_changes(reference_dir, tables: Tables, audience: str, code: str, *, threshold: int | None = None,
                 max_items: int = 10) -> dict:
    """Display the « Depuis la publication précédente » section of a dashboard (notebook helper).

    Parameters
    ----------
    reference_dir : str or Path
        Snapshot folder of the previous publication ("" or None: first release).
    tables : Tables
        The current processed tables.
    """
    from .reporting import display as d

    old = State.from_snapshot(reference_dir) if reference_dir else None
    ch = territory_changes(old, State.from_processed(tables=tables), audience, code, threshold=threshold)
    d.show_section("Depuis la publication précédente")
    d.show_text(intro_text(ch))
    if not ch["premiere"] and ch["nombre"]:
        good, bad, _ = change_items(ch, max_items=max_items)
        if good:
            d.show_text("Ce qui progresse :")
            d.show_list(good)
        if bad:
            d.show_text("Points d'attention :")
            d.show_list(bad)
    return ch


# --------------------------------------------------------------------------- release notes


def all_changes(old: State | None, new: State, *, threshold: int | None = None,
                audiences: tuple[str, ...] = NOTE_AUDIENCES) -> list[dict]:
    """Return :func:`territory_changes` for every territory of the audiences (release notes, tests)."""
    out = []
    for audience in audiences:
        ch = None if old is None else indicator_changes(old, new, "academie" if audience == "national" else audience)
        for code in territory_codes(audience):
            out.append(territory_changes(old, new, audience, code, threshold=threshold, changes=ch))
    return out


def _page(title: str, body: str, *, simulated: bool = False) -> str:
    """Wrap the release notes in the reports' page shell (the DSFR shell when the package has it)."""
    from .reporting import export
    from .reporting.export import css, escape

    shell = getattr(export, "page_shell", None)
    if shell is not None:  # the shared page chrome (portal header, breadcrumb, simulated-data callout)
        return shell(title, body, depth=0, breadcrumb=[(title, "")], simulated=simulated)
    simulated_html = ("<p><strong>Données simulées</strong> : chiffres d'illustration, à ne pas diffuser comme "
                      "résultats.</p>\n") if simulated else ""
    body = simulated_html + body
    return (f'<!DOCTYPE html>\n<html lang="fr">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{css()}</style>\n</head>\n<body>\n<main id=\"contenu\">\n<h1>{escape(title)}</h1>\n{body}\n"
            '<p><a href="index.html">Retour à l\'index des rapports</a></p>\n</main>\n</body>\n</html>\n')


def _list_html(items: list[str]) -> str:
    from .reporting.export import escape

    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _by_rule(items: list[dict]) -> dict[str, int]:
    return {str(k): int(v) for k, v in pd.Series([i["regle"] for i in items], dtype=object).value_counts().items()}


def release_notes(reference_dir, processed_dir, run_dir, *, release_id: str, reference_id: str | None = None,
                  threshold: int | None = None, audiences: tuple[str, ...] = NOTE_AUDIENCES) -> dict:
    """Write the release notes ``nouveautes.html`` and ``changements.json`` of a run; return a summary.

    Parameters
    ----------
    reference_dir : str, Path or None
        Snapshot of the previous publication (None or "": first release, nothing to compare with).
    processed_dir : str or Path
        The current processed tables.
    run_dir : str or Path
        The release folder (pages are written there).
    release_id, reference_id : str
        Identifiers of this release and of the one it is compared with.
    threshold : int, optional
        Disclosure threshold.

    ``changements.json`` holds ``release``, ``reference``, ``premiere``, ``mois_reference(_avant)``,
    ``territoires_compares`` and ``territoires``: for each territory with a change, ``audience``,
    ``territoire``, ``nom``, ``html`` (its dashboard, relative), ``points_forts`` / ``reculs`` (the page's
    sentences), ``indicateurs`` (the interval-based sentences alone), ``etablissements`` (lists of
    ``{"uai", "nom"}``: ``nouveaux_inscrits``, ``nouveaux_actifs``, ``nouveaux_inactifs``) and
    ``constats`` (``corriges`` / ``nouveaux``: rule → number). Only aggregates, school names and
    suppressed-safe sentences: it is published with the pages.

    Returns
    -------
    dict
        ``release``, ``reference``, ``premiere``, ``territoires`` (with a change), ``points_forts``,
        ``reculs`` (numbers of sentences), ``pages`` (paths written).
    """
    from .reporting.export import escape, publish

    run_dir = Path(run_dir)
    old = State.from_snapshot(reference_dir) if reference_dir else None
    new = State.from_processed(processed_dir)
    changes = all_changes(old, new, threshold=threshold, audiences=audiences)
    with_change = [c for c in changes if c["nombre"]]
    entries = []
    for c in with_change:
        good, bad, _ = change_items(c, max_items=5)
        entries.append({"audience": c["audience"], "territoire": c["territoire"], "nom": c["nom"],
                        "html": f"{c['audience']}/{c['territoire']}.html", "points_forts": good, "reculs": bad,
                        "indicateurs": {"points_forts": c["points_forts"], "reculs": c["reculs"]},
                        "etablissements": {k: c[k] for k in ("nouveaux_inscrits", "nouveaux_actifs",
                                                             "nouveaux_inactifs")},
                        "constats": {"corriges": _by_rule(c["constats_corriges"]),
                                     "nouveaux": _by_rule(c["nouveaux_constats"])}})
    doc = {"release": release_id, "reference": reference_id, "premiere": old is None,
           "mois_reference": new.periode.get("mois_reference"),
           "mois_reference_avant": None if old is None else old.periode.get("mois_reference"),
           "territoires_compares": len(changes), "territoires": entries}
    title = "Nouveautés de la publication"
    if old is None:
        body = (f"<p>Publication « {escape(release_id)} » : première publication, il n'y a rien à comparer. Les "
                "changements apparaîtront ici à la prochaine publication.</p>")
    else:
        ref = f" « {escape(reference_id)} »" if reference_id else ""
        parts = [f"<p>Publication « {escape(release_id)} », comparée à la publication précédente{ref} (mois de "
                 f"référence : {escape(_month_label(doc['mois_reference_avant']))} → "
                 f"{escape(_month_label(doc['mois_reference']))}). {len(entries)} territoire(s) sur "
                 f"{len(changes)} ont changé. Un indicateur est cité seulement quand son évolution s'écarte de "
                 "l'évolution nationale au-delà des limites à 99,8 %. Ce qui progresse vient d'abord.</p>"]
        if not entries:
            parts.append("<p>Aucun changement au-delà du hasard dans aucun territoire.</p>")
        # bright spots first: territories with good news before those with only declines
        ordered = sorted(entries, key=lambda e: (not e["points_forts"], NOTE_AUDIENCES.index(e["audience"])
                                                 if e["audience"] in NOTE_AUDIENCES else 99, e["nom"]))
        for e in ordered:
            label = AUDIENCE_REGISTRY[e["audience"]].label
            parts.append(f'<section><h2><a href="{escape(e["html"])}">{escape(e["nom"][0].upper() + e["nom"][1:])}'
                         f"</a> <small>({escape(label)})</small></h2>")
            if e["points_forts"]:
                parts.append("<h3>Ce qui progresse</h3>" + _list_html(e["points_forts"]))
            if e["reculs"]:
                parts.append("<h3>Points d'attention</h3>" + _list_html(e["reculs"]))
            parts.append("</section>")
        body = "\n".join(parts)
    simulated = False
    try:
        from .build import load_manifest

        simulated = bool(load_manifest(processed_dir).get("simulated", False))
    except DataError:  # no manifest (tables given directly): no banner
        pass
    doc["simule"] = simulated
    pages = [publish(run_dir / "nouveautes.html", _page(title, body, simulated=simulated)),
             publish(run_dir / "changements.json", json.dumps(doc, ensure_ascii=False, indent=1) + "\n")]
    return {"release": release_id, "reference": reference_id, "premiere": old is None,
            "territoires": len(entries), "points_forts": sum(len(e["points_forts"]) for e in entries),
            "reculs": sum(len(e["reculs"]) for e in entries), "pages": [str(p) for p in pages]}
