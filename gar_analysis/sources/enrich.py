"""Enrichment joins with match reports, and the open-data académie table.

Every join here is **many-to-one**: the right-hand side must be unique on the
key (checked: a duplicate key raises :class:`~gar_analysis.errors.DataError`
naming its lines), so a join never multiplies rows. Each join returns the
joined frame (same index, same rows as the left side) and a
:class:`MatchReport` (match rate, unmatched keys) that the quality checks turn
into findings (``uai_inconnu`` and related).

Open-data mode: :func:`academie_table` builds one row per académie from real
published files alone (the ministry's GAR académie datasets, académie-level
IPS and school counts), for the national report ``national_opendata``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config, territories
from ..errors import DataError, Problem

#: Columns of the quality findings (as gar_analysis.checks writes them).
FINDING_COLUMNS = ["regle", "gravite", "source", "ligne", "uai", "mois", "id_ressource", "message"]


@dataclass
class MatchReport:
    """Outcome of one join.

    Attributes
    ----------
    jointure : str
        Name of the join (French, e.g. ``"IPS par UAI"``).
    cle : tuple of str
        Join key(s).
    lignes : int
        Rows of the left side considered (the ``subset``).
    appariees : int
        Rows of them with a match.
    cles_non_appariees : list
        Distinct left keys without a match (sorted; tuples for composite keys).
    cles_droite_non_utilisees : int
        Distinct right keys matched by no left row.
    source : str
        File of the left side, when known (for findings).
    lignes_non_appariees : list of int
        Index labels (physical lines when loaded from a file) of the unmatched rows.
    """

    jointure: str
    cle: tuple[str, ...]
    lignes: int
    appariees: int
    cles_non_appariees: list = field(default_factory=list)
    cles_droite_non_utilisees: int = 0
    source: str = ""
    lignes_non_appariees: list = field(default_factory=list)

    @property
    def taux(self) -> float:
        """Match rate (0–1; NaN when there is nothing to match)."""
        return self.appariees / self.lignes if self.lignes else float("nan")

    def to_dict(self) -> dict:
        """Return a JSON-serialisable summary (at most 50 unmatched keys listed)."""
        return {"jointure": self.jointure, "cle": list(self.cle), "lignes": self.lignes,
                "appariees": self.appariees, "taux": self.taux,
                "non_appariees": len(self.cles_non_appariees),
                "exemples_non_apparies": [str(k) for k in self.cles_non_appariees[:50]],
                "cles_droite_non_utilisees": self.cles_droite_non_utilisees}

    def __str__(self) -> str:
        pct = "n.d." if np.isnan(self.taux) else f"{self.taux:.1%}".replace(".", ",")
        text = (f"{self.jointure} : {self.appariees} ligne(s) appariée(s) sur {self.lignes} ({pct}) ; "
                f"{len(self.cles_non_appariees)} clé(s) sans correspondance")
        if self.cles_non_appariees:
            text += " (ex. " + ", ".join(str(k) for k in self.cles_non_appariees[:5]) + ")"
        return text + "."

    def findings(self, regle: str = "uai_inconnu", gravite: str = "avertissement") -> pd.DataFrame:
        """Return one finding per unmatched row (columns of the quality checks)."""
        rows = []
        key_is_uai = "uai" in self.cle
        for line, key in zip(self.lignes_non_appariees, self._row_keys):
            uai = key[self.cle.index("uai")] if key_is_uai and isinstance(key, tuple) else (key if key_is_uai else "")
            mois = key[self.cle.index("mois")] if "mois" in self.cle and isinstance(key, tuple) else ""
            rows.append({"regle": regle, "gravite": gravite, "source": self.source,
                         "ligne": line if isinstance(line, (int, np.integer)) else pd.NA, "uai": uai, "mois": mois,
                         "id_ressource": "", "message": f"{self.jointure} : clé {key} sans correspondance ; "
                         "vérifier le code ou compléter le fichier de référence."})
        out = pd.DataFrame(rows, columns=FINDING_COLUMNS)
        out["ligne"] = out["ligne"].astype("Int64")
        return out

    _row_keys: list = field(default_factory=list, repr=False)


def _key_values(df: pd.DataFrame, keys: list[str]) -> list:
    if len(keys) == 1:
        return df[keys[0]].tolist()
    return list(df[keys].itertuples(index=False, name=None))


def join_many_to_one(left: pd.DataFrame, right: pd.DataFrame, on: str | list[str], *, name: str,
                     right_on: str | list[str] | None = None, columns: list[str] | None = None,
                     subset: pd.Series | None = None, suffix: str = "_droite") -> tuple[pd.DataFrame, MatchReport]:
    """Left-join ``right`` onto ``left`` by key, asserting many-to-one.

    Parameters
    ----------
    left, right : pandas.DataFrame
        Frames to join; ``right`` must be unique on its key (NA keys ignored).
    on : str or list of str
        Key column(s) of ``left``.
    name : str
        Name of the join for the report (French).
    right_on : str or list of str, optional
        Key column(s) of ``right`` (default: ``on``).
    columns : list of str, optional
        Columns of ``right`` to bring (default: all but the key).
    subset : pandas.Series of bool, optional
        Rows of ``left`` that are expected to match (the report's denominator);
        other rows are joined too but not counted.
    suffix : str, optional
        Suffix of right columns whose name already exists in ``left``.

    Returns
    -------
    (pandas.DataFrame, MatchReport)
        ``left`` with the right columns added (same index and rows), and the report.

    Raises
    ------
    DataError
        When ``right`` has duplicate keys (each duplicated line listed).
    """
    lkeys = [on] if isinstance(on, str) else list(on)
    rkeys = lkeys if right_on is None else ([right_on] if isinstance(right_on, str) else list(right_on))
    cols = columns if columns is not None else [c for c in right.columns if c not in rkeys]
    r = right.loc[right[rkeys].notna().all(axis=1), rkeys + cols]
    dup = r.duplicated(rkeys, keep=False)
    if dup.any():
        src = str(right.attrs.get("source", name))
        probs = [Problem(src, int(i) if isinstance(i, (int, np.integer)) else None, ", ".join(rkeys),
                         f"clé {k} en double : la jointure « {name} » doit être plusieurs-à-un ; dédoublonner "
                         "(par exemple garder une ligne par clé et par année).")
                 for i, k in zip(r.index[dup][:200], _key_values(r[dup], rkeys)[:200])]
        raise DataError(probs)
    r = r.rename(columns={c: (c + suffix if c in left.columns and c not in lkeys else c) for c in cols})
    r = r.rename(columns=dict(zip(rkeys, lkeys)))
    merged = left.merge(r, how="left", on=lkeys, validate="many_to_one", indicator="_apparie")
    assert len(merged) == len(left), "many-to-one join changed the number of rows"
    merged.index = left.index
    matched = merged.pop("_apparie").eq("both")
    mask = pd.Series(True, index=left.index) if subset is None else subset.reindex(left.index).fillna(False).astype(bool)
    considered = merged.loc[mask]
    unmatched_rows = considered.loc[~matched[mask] & considered[lkeys].notna().all(axis=1)]
    unmatched_na = considered.loc[~matched[mask] & considered[lkeys].isna().any(axis=1)]
    keys_unmatched = sorted(set(_key_values(unmatched_rows, lkeys)), key=str)
    used = set(_key_values(merged.loc[matched], lkeys))
    report = MatchReport(
        jointure=name, cle=tuple(lkeys), lignes=int(mask.sum()), appariees=int(matched[mask].sum()),
        cles_non_appariees=keys_unmatched + (["(vide)"] if len(unmatched_na) else []),
        cles_droite_non_utilisees=len(set(_key_values(r, lkeys)) - used),
        source=str(left.attrs.get("source", "")),
        lignes_non_appariees=list(unmatched_rows.index))
    report._row_keys = _key_values(unmatched_rows, lkeys)
    return merged, report


# --------------------------------------------------------------------------- by UAI

def latest_per_uai(df: pd.DataFrame, year_col: str, *, value_col: str | None = None,
                   year: str | None = None) -> pd.DataFrame:
    """Keep one row per UAI: the given year, else the latest year (with a known ``value_col`` if given)."""
    d = df[df["uai"].notna()]
    if year is not None:
        d = d[d[year_col].astype(str) == str(year)]
    elif value_col is not None:
        d = d[d[value_col].notna()]
    d = d.sort_values([year_col]).drop_duplicates("uai", keep="last")
    return d


def enrich_ips(schools: pd.DataFrame, ips: pd.DataFrame, *, rentree: str | None = None,
               subset: pd.Series | None = None) -> tuple[pd.DataFrame, MatchReport]:
    """Add ``ips, ips_ecart_type, ips_rentree, effectifs_ips`` by UAI.

    ``ips`` may concatenate the écoles, collèges and lycées files. Without
    ``rentree``, the latest rentrée with a known IPS is taken for each school.
    By default only écoles, collèges and lycées (``niveau``) count in the match rate.
    """
    right = latest_per_uai(ips, "rentree_scolaire", value_col="ips", year=rentree)
    right = right[["uai", "ips", "ips_ecart_type", "rentree_scolaire", "effectifs"]].rename(
        columns={"rentree_scolaire": "ips_rentree", "effectifs": "effectifs_ips"})
    if subset is None and "niveau" in schools:
        subset = schools["niveau"].isin(["ecole", "college", "lycee"])
    return join_many_to_one(schools, right, "uai", name="IPS par UAI", subset=subset)


def enrich_effectifs(schools: pd.DataFrame, effectifs: pd.DataFrame, *, rentree: str | None = None,
                     subset: pd.Series | None = None) -> tuple[pd.DataFrame, MatchReport]:
    """Add ``effectifs, effectifs_rentree`` (pupil counts, latest rentrée by default) by UAI."""
    right = latest_per_uai(effectifs, "rentree_scolaire", value_col="effectifs", year=rentree)
    right = right[["uai", "effectifs", "rentree_scolaire"]].rename(columns={"rentree_scolaire": "effectifs_rentree"})
    return join_many_to_one(schools, right, "uai", name="Effectifs par UAI", subset=subset)


def enrich_ivac(schools: pd.DataFrame, ivac: pd.DataFrame, *, session: int | None = None,
                subset: pd.Series | None = None) -> tuple[pd.DataFrame, MatchReport]:
    """Add the collèges' value-added indicators (latest DNB session by default) by UAI."""
    d = ivac[ivac["uai"].notna()]
    d = d[d["session"] == session] if session is not None else d.sort_values("session").drop_duplicates("uai", keep="last")
    cols = ["uai", "session", "taux_reussite_g", "va_taux_reussite_g", "note_ecrit_g", "va_note_g"]
    right = d[cols].rename(columns={"session": "ivac_session"})
    if subset is None and "niveau" in schools:
        subset = schools["niveau"].eq("college")
    return join_many_to_one(schools, right, "uai", name="IVAC par UAI", subset=subset)


# --------------------------------------------------------------------------- by commune, académie, school-month

def enrich_communes(schools: pd.DataFrame, communes: pd.DataFrame, *,
                    rural_density: float = config.RURAL_DENSITY) -> tuple[pd.DataFrame, MatchReport]:
    """Add ``population, densite, grille_densite, rural`` by ``code_commune``.

    ``rural`` is True when the density is below ``rural_density`` (NA when unknown).
    """
    cols = [c for c in ("population", "densite", "grille_densite") if c in communes.columns]
    out, rep = join_many_to_one(schools, communes, "code_commune", name="Communes par code INSEE", columns=cols)
    out["rural"] = (out["densite"] < rural_density).astype("boolean").mask(out["densite"].isna())
    return out, rep


def enrich_academies(frame: pd.DataFrame, academie_data: pd.DataFrame, *, prefix: str = "",
                     columns: list[str] | None = None) -> tuple[pd.DataFrame, MatchReport]:
    """Join académie-level data (e.g. the ministry's GAR datasets) onto a frame by ``code_academie``.

    Rows of ``academie_data`` sharing a code are summed first (measures only), so
    that historical labels (CAEN, ROUEN → Normandie) do not multiply rows.
    """
    cols = columns or [c for c in academie_data.columns
                       if c != "code_academie" and pd.api.types.is_numeric_dtype(academie_data[c])]
    agg = academie_data.dropna(subset=["code_academie"]).groupby("code_academie", as_index=False)[cols].sum(min_count=1)
    agg = agg.rename(columns={c: prefix + c for c in cols})
    return join_many_to_one(frame, agg, "code_academie", name="Données par académie")


def enrich_dnma(usage: pd.DataFrame, audience: pd.DataFrame) -> tuple[pd.DataFrame, MatchReport]:
    """Add ENT audience (``visites_dnma, visiteurs_dnma, mesure_dnma``) by school and month."""
    right = audience[["uai", "mois", "visites", "visiteurs"]].rename(
        columns={"visites": "visites_dnma", "visiteurs": "visiteurs_dnma"})
    out, rep = join_many_to_one(usage, right, ["uai", "mois"], name="Audience DNMA par établissement et mois")
    out["mesure_dnma"] = out["visites_dnma"].notna()
    return out, rep


def reports_to_findings(reports: list[MatchReport]) -> pd.DataFrame:
    """Turn match reports into quality findings (``uai_inconnu`` for UAI joins, ``cle_inconnue`` otherwise)."""
    frames = [r.findings("uai_inconnu" if "uai" in r.cle else "cle_inconnue") for r in reports]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FINDING_COLUMNS)


# --------------------------------------------------------------------------- open-data mode

#: Files of the open-data mode: role → candidate file names (download names first).
OPENDATA_FILES = {
    "acces_academie": ("fr-en-gar-acces_academie.csv", "fr-en-gar-acces_academie.geojson"),
    "affectations_academie": ("fr-en-gar-affectations_academie2024-2025.csv",
                              "fr-en-gar-affectations_academie2024-2025.geojson"),
    "accedants_degre": ("fr-en-gar-accedants_degre2024-2025.csv",),
    "acces_profil": ("fr-en-gar-acces_profil2024-2025.csv",),
    "affectations_degre": ("fr-en-gar-affectations_degre2024-2025.csv",),
    "annuaire": ("fr-en-annuaire-education.csv", "fr-en-annuaire-education.parquet"),
    "ips_ecoles": ("fr-en-ips-ecoles-ap2022.csv", "fr-en-ips-ecoles-ap2022.parquet", "fr-en-ips_ecoles.csv"),
    "ips_colleges": ("fr-en-ips-colleges-ap2022.csv", "fr-en-ips-colleges-ap2022.parquet"),
    "ips_lycees": ("fr-en-ips-lycees-ap2022.csv", "fr-en-ips-lycees-ap2022.parquet"),
}
#: Files without which the open-data mode cannot run.
OPENDATA_REQUIRED = ("acces_academie",)


def find_opendata_files(opendata_dir: str | Path) -> dict[str, Path]:
    """Return the open-data files present in a folder (role → path), searching sub-folders too."""
    root = Path(opendata_dir)
    found: dict[str, Path] = {}
    if not root.exists():
        return found
    for role, names in OPENDATA_FILES.items():
        for name in names:
            hits = sorted(root.rglob(name))
            if hits:
                found[role] = hits[0]
                break
    return found


def opendata_available(opendata_dir: str | Path) -> bool:
    """Return whether the open-data mode can run on this folder."""
    found = find_opendata_files(opendata_dir)
    return all(r in found for r in OPENDATA_REQUIRED)


def _ips_by_academie(ips: pd.DataFrame, niveau: str) -> pd.DataFrame:
    d = latest_per_uai(ips, "rentree_scolaire", value_col="ips")
    g = d.dropna(subset=["code_academie"]).groupby("code_academie")
    out = pd.DataFrame({f"{niveau}s_ips": g.size(), f"ips_{niveau}s": g["ips"].mean().round(1)})
    if d["effectifs"].notna().any():
        w = d.dropna(subset=["effectifs", "ips", "code_academie"])
        wsum = w.assign(p=w["ips"] * w["effectifs"].astype(float)).groupby("code_academie")[["p", "effectifs"]].sum()
        out[f"ips_{niveau}s_pondere"] = (wsum["p"] / wsum["effectifs"].astype(float)).round(1)
        out[f"eleves_{niveau}s"] = wsum["effectifs"].astype("Int64")
    return out.reset_index()


def academie_table(opendata_dir: str | Path) -> tuple[pd.DataFrame, list[MatchReport]]:
    """Build the open-data académie table from real published files.

    Parameters
    ----------
    opendata_dir : str or Path
        Folder of ``gar-analysis download`` (or any folder holding the files of
        :data:`OPENDATA_FILES`).

    Returns
    -------
    (pandas.DataFrame, list of MatchReport)
        One row per académie (the 30, codes as in the register):
        ``code_academie, nom_academie, code_region, nom_region``, GAR measures
        (``acces``, ``affectations``), school counts (``etablissements``,
        ``ecoles``, ``colleges``, ``lycees`` from the register when present,
        else from the IPS files), mean IPS by level (``ips_ecoles`` …), and
        ``acces_par_etablissement``; plus the reports of every join.

    Raises
    ------
    DataError
        When a required file (the GAR accès by académie) is absent.
    """
    from .opendata import load_gar_opendata
    from .referentiel import load_annuaire, load_ips

    files = find_opendata_files(opendata_dir)
    missing = [r for r in OPENDATA_REQUIRED if r not in files]
    if missing:
        raise DataError.single(Path(opendata_dir), "données ouvertes du GAR absentes ("
                               + ", ".join(OPENDATA_FILES[m][0] for m in missing)
                               + ") : lancer « gar-analysis download » ou indiquer le bon dossier.")
    base = territories.academies()[["code_academie", "nom_academie", "code_region", "nom_region"]].copy()
    reports: list[MatchReport] = []
    for role, measure in (("acces_academie", "acces"), ("affectations_academie", "affectations")):
        if role not in files:
            continue
        gar = load_gar_opendata(files[role])
        if measure not in gar.columns:
            continue
        base, rep = enrich_academies(base, gar, columns=[measure])
        rep.jointure = f"GAR {measure} par académie"
        reports.append(rep)
    counts = None
    if "annuaire" in files:
        ann = load_annuaire(files["annuaire"])
        ann = ann[ann["etat"].fillna("").str.upper().str.startswith("OUVERT") & ann["niveau"].ne("autre")]
        ann = ann.drop_duplicates("uai")
        counts = (ann.groupby(["code_academie", "niveau"]).size().unstack(fill_value=0)
                  .reindex(columns=["ecole", "college", "lycee"], fill_value=0)
                  .rename(columns={"ecole": "ecoles", "college": "colleges", "lycee": "lycees"}).reset_index())
    for niveau in ("ecole", "college", "lycee"):
        role = f"ips_{niveau}s"
        if role not in files:
            continue
        ips = load_ips(files[role], niveau=niveau)
        part = _ips_by_academie(ips, niveau)
        base, rep = join_many_to_one(base, part, "code_academie", name=f"IPS des {niveau}s par académie")
        reports.append(rep)
    if counts is None:
        counts = base[["code_academie"]].copy()
        for niveau in ("ecole", "college", "lycee"):
            col = f"{niveau}s_ips"
            counts[f"{niveau}s"] = base[col].fillna(0).astype(int) if col in base else 0
        counts_source = "IPS"
    else:
        counts_source = "annuaire"
    base, rep = join_many_to_one(base, counts, "code_academie", name=f"Établissements par académie ({counts_source})",
                                 columns=["ecoles", "colleges", "lycees"])
    reports.append(rep)
    for c in ("ecoles", "colleges", "lycees"):
        base[c] = base[c].fillna(0).astype("Int64")
    base["etablissements"] = (base["ecoles"] + base["colleges"] + base["lycees"]).astype("Int64")
    if "acces" in base:
        base["acces_par_etablissement"] = (base["acces"].astype(float)
                                           / base["etablissements"].astype(float).replace(0, np.nan)).round(1)
    ips_cols = [c for c in ("ips_ecoles", "ips_colleges", "ips_lycees") if c in base]
    if ips_cols:
        base["ips_moyen"] = base[ips_cols].mean(axis=1).round(1)
    base.attrs = {"sources": {k: str(v) for k, v in files.items()}, "comptage": counts_source}
    return base.reset_index(drop=True), reports


def opendata_summary(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Return (points_forts, a_corriger) sentences (French, aggregated figures) for the batch index."""
    forts, corriger = [], []
    if "acces" in table and table["acces"].notna().any():
        known = table.dropna(subset=["acces"])
        total = int(known["acces"].sum())
        forts.append(f"{total:,} accès aux ressources via le GAR publiés pour {len(known)} académies.".replace(",", "\u202f"))
        if "acces_par_etablissement" in known and known["acces_par_etablissement"].notna().any():
            top = known.sort_values("acces_par_etablissement", ascending=False).iloc[0]
            forts.append("Usage le plus intense rapporté au nombre d'établissements : "
                         f"{territories.academie_label(top.code_academie)}.")
            low = known.sort_values("acces_par_etablissement").iloc[0]
            corriger.append(f"Accompagner en priorité l'{territories.academie_label(low.code_academie)}, où l'usage "
                            "rapporté au nombre d'établissements est le plus faible.")
        absent = table.loc[table["acces"].isna(), "nom_academie"].tolist()
        if absent:
            corriger.append("Compléter les données publiées pour : " + ", ".join(absent) + ".")
    return forts, corriger
