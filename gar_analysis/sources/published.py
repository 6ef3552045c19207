"""Loaders and reconciliation of the GAR figures the ministry publishes (school year 2024-2025).

Datasets of data.education.gouv.fr (DNE, Licence Ouverte 2.0), pre-aggregated
at the source (no school, no month):

- by académie: ``fr-en-gar-acces_academie``, ``fr-en-gar-accedants_academie2024-2025``,
  ``fr-en-gar-affectations_academie2024-2025`` (31 rows: 30 académies and one
  « Autres » row whose codes are null), joined on ``libelle_aca``;
- by profil: ``fr-en-gar-acces_profil2024-2025`` (the literal ``Null`` is a profil
  value, shown as « profil non renseigné »);
- by degré: ``fr-en-gar-accedants_degre2024-2025``, ``fr-en-gar-affectations_degre2024-2025``;
- the resource catalogue ``fr-en-gestionnaire-dacces-aux-ressources-gar-liste_des_ressources-2026``.

Files are the portal's CSV exports (``;``), field-id or label headers (labels
are slugified to field ids), found anywhere under an open-data folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import territories
from ..contract import read_raw_csv
from ..errors import DataError, Problem
from .referentiel import field_id

#: Dataset ids by role.
GAR_PUBLISHED = {
    "acces_academie": "fr-en-gar-acces_academie",
    "accedants_academie": "fr-en-gar-accedants_academie2024-2025",
    "affectations_academie": "fr-en-gar-affectations_academie2024-2025",
    "acces_profil": "fr-en-gar-acces_profil2024-2025",
    "accedants_degre": "fr-en-gar-accedants_degre2024-2025",
    "affectations_degre": "fr-en-gar-affectations_degre2024-2025",
    "ressources": "fr-en-gestionnaire-dacces-aux-ressources-gar-liste_des_ressources-2026",
}
#: School year the published figures cover.
PUBLISHED_YEAR = "2024-2025"
#: Label of the row of académie datasets with null codes.
AUTRES_LABEL = "Autres (Saint-Pierre-et-Miquelon, Polynésie française, Andorre)"
#: Display label of the literal ``Null`` profil.
NULL_PROFIL_LABEL = "profil non renseigné"
MEASURES = ("accedants", "acces", "affectations")
#: National totals of the académie datasets, 2024-2025 (SOURCE.md of ``gar-dnma-published-figures``): used
#: to reconcile when only some académie rows are at hand.
NATIONAL_TOTALS = {"accedants": 10_829_562, "acces": 54_096_270, "affectations": 86_549_678}
#: Académie rows of the complete datasets (30 académies and « Autres »).
ACADEMIE_ROWS = 31
#: Sections of the dashboards that need the internal GAR exports (public data cannot support them).
NEEDS_INTERNAL = (
    "inscriptions et déploiement par établissement (gar/etablissements.csv)",
    "accès, affectations et accédants par établissement et par mois (gar/acces.csv, gar/affectations.csv, "
    "gar/accedants.csv)",
    "abonnements et licences (gar/abonnements.csv)",
    "écarts territoriaux et facteurs de succès à l'échelle des établissements",
    "croisement des visites de ressources de l'ENT avec les accès GAR (côté GAR)",
)
_ACADEMIE_FIELDS = ("libelle_aca", "libelle_aca_majuscules", "libelle_region_2016", "code_academie",
                    "code_region_2016")
_RESSOURCE_FIELDS = ("type", "cout", "libelle_de_l_editeur", "libelle_du_distributeur_technique_dtr",
                     "libelle_du_distributeur_commercial_dcr", "nouveau")
#: Label headers seen on the portal → field id (besides the slug of the label).
_ALIASES = {"libelle_academie": "libelle_aca", "academie": "libelle_aca", "acces": "acces", "acces_gar": "acces",
            "accedants": "accedants", "editeur": "libelle_de_l_editeur", "cout_de_la_ressource": "cout"}


def find_published(folder: str | Path) -> dict[str, Path]:
    """Return the published GAR files present under a folder (role → path; CSV exports)."""
    root = Path(folder)
    found: dict[str, Path] = {}
    if not root.exists():
        return found
    for role, ds in GAR_PUBLISHED.items():
        hits = sorted(root.rglob(f"{ds}.csv"))
        if hits:
            found[role] = hits[0]
    return found


def _read(path: str | Path, required: tuple[str, ...], what: str) -> tuple[pd.DataFrame, list[Problem]]:
    path = Path(path)
    raw = read_raw_csv(path, expected=required)
    raw.columns = [_ALIASES.get(field_id(c), field_id(c)) for c in raw.columns]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise DataError([Problem(str(path), 1, c, f"colonne absente : ce fichier n'est pas {what} "
                                 f"(colonnes attendues : {', '.join(required)}).") for c in missing])
    return raw, []


def _count(raw: pd.DataFrame, col: str, path: Path, problems: list[Problem]) -> pd.Series:
    s = raw[col].str.strip().str.replace("\u202f", "", regex=False).str.replace(" ", "", regex=False)
    empty = s == ""
    num = pd.to_numeric(s.where(~empty), errors="coerce")
    bad = (num.isna() & ~empty) | (num.notna() & ((num < 0) | (num != np.floor(num.fillna(0)))))
    for line, value in raw.loc[bad.to_numpy(bool), col].head(100).items():
        problems.append(Problem(str(path), int(line), col, f"valeur « {value} » illisible : un nombre entier "
                                "positif ou nul est attendu."))
    return num.where(~bad).astype("Int64")


def _finish(out: pd.DataFrame, problems: list[Problem], path: Path) -> pd.DataFrame:
    if problems:
        raise DataError(sorted(problems, key=lambda p: (p.line or 0, p.column or "")))
    out.attrs["source"] = str(path)
    return out


def read_academie(path: str | Path) -> pd.DataFrame:
    """Read one (or a combined) GAR académie dataset.

    Returns
    -------
    pandas.DataFrame
        ``libelle_aca`` (always filled: the join key), ``code_academie`` (NA on
        the « Autres » row), ``nom_academie`` (« Autres (…) » for that row),
        ``autres`` (bool) and the measures present among ``accedants, acces,
        affectations`` (Int64). Index: physical line.

    Raises
    ------
    DataError
        Naming file, line and column of an empty ``libelle_aca``, a repeated
        one or an unreadable count.
    """
    path = Path(path)
    raw, problems = _read(path, ("libelle_aca",), "un jeu GAR par académie")
    if not any(m in raw.columns for m in MEASURES):
        raise DataError.single(path, "aucune mesure (accedants, acces, affectations) : ce n'est pas un jeu GAR "
                               "par académie.", line=1)
    lib = raw["libelle_aca"].str.strip()
    for line in raw.index[(lib == "").to_numpy()]:
        problems.append(Problem(str(path), int(line), "libelle_aca", "libellé d'académie manquant : c'est la clé "
                                "de jointure des jeux par académie."))
    for line, value in lib[lib.duplicated() & (lib != "")].items():
        problems.append(Problem(str(path), int(line), "libelle_aca", f"académie « {value} » en double."))
    out = pd.DataFrame({"libelle_aca": lib.astype("string")}, index=raw.index)
    code = raw["code_academie"].str.strip() if "code_academie" in raw.columns else pd.Series("", index=raw.index)
    guessed = lib.map(territories.academie_code)
    out["code_academie"] = code.where(code != "", guessed).astype("string")
    out["code_academie"] = out["code_academie"].map(lambda c: territories.academie_code(c) if pd.notna(c) else c) \
        .astype("string")
    out["autres"] = (lib.str.lower() == "autres").to_numpy() | out["code_academie"].isna().to_numpy()
    out["nom_academie"] = out["code_academie"].map(
        lambda c: territories.academie_name(c) if pd.notna(c) else pd.NA).astype("string")
    out.loc[out["autres"], "nom_academie"] = np.where(lib[out["autres"]].str.lower() == "autres", AUTRES_LABEL,
                                                      lib[out["autres"]])
    for m in MEASURES:
        if m in raw.columns:
            out[m] = _count(raw, m, path, problems)
    return _finish(out, problems, path)


def academie_figures(paths: dict[str, Path] | list[Path]) -> pd.DataFrame:
    """Join the three académie datasets on ``libelle_aca`` (the « Autres » row kept and labelled).

    Parameters
    ----------
    paths : dict or list of Path
        The files (any of the three datasets, or a combined file).

    Returns
    -------
    pandas.DataFrame
        One row per ``libelle_aca``: ``code_academie, nom_academie, autres`` and
        ``accedants, acces, affectations``, then ``acces_par_accedant`` and
        ``affectations_par_accedant``.
    """
    files = list(paths.values()) if isinstance(paths, dict) else list(paths)
    out = None
    for p in files:
        df = read_academie(p)
        if out is None:
            out = df.reset_index(drop=True)
            continue
        new = [m for m in MEASURES if m in df.columns and m not in out.columns]
        out = out.merge(df[["libelle_aca", *new]], on="libelle_aca", how="outer", validate="one_to_one")
        for c in ("code_academie", "nom_academie"):
            fill = out["libelle_aca"].map(dict(zip(df["libelle_aca"], df[c])))
            out[c] = out[c].fillna(fill) if c in out else fill
        out["autres"] = out["code_academie"].isna()
        out.loc[out["autres"] & out["nom_academie"].isna(), "nom_academie"] = AUTRES_LABEL
    if out is None:
        raise DataError.single(Path("."), "aucun jeu GAR par académie fourni.")
    for m in MEASURES:
        if m not in out.columns:
            out[m] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    acc = out["accedants"].astype("float64")
    out["acces_par_accedant"] = out["acces"].astype("float64") / acc.where(acc > 0)
    out["affectations_par_accedant"] = out["affectations"].astype("float64") / acc.where(acc > 0)
    return out.sort_values(["autres", "nom_academie"]).reset_index(drop=True)


def read_profil(path: str | Path) -> pd.DataFrame:
    """Read the accès-by-profil dataset; the literal ``Null`` becomes « profil non renseigné ».

    Returns
    -------
    pandas.DataFrame
        ``profil`` (as published), ``libelle`` (display label), ``non_renseigne`` (bool), ``acces``.
    """
    path = Path(path)
    raw, problems = _read(path, ("profil", "acces"), "le jeu GAR par profil")
    prof = raw["profil"].str.strip()
    null = prof.str.lower().isin(["null", ""])
    out = pd.DataFrame({"profil": prof.astype("string"),
                        "libelle": prof.where(~null, NULL_PROFIL_LABEL).astype("string"),
                        "non_renseigne": null.to_numpy()}, index=raw.index)
    out["acces"] = _count(raw, "acces", path, problems)
    return _finish(out, problems, path)


def read_degre(path: str | Path) -> pd.DataFrame:
    """Read a by-degré dataset (``degre`` and ``accedants`` or ``affectations``)."""
    path = Path(path)
    raw, problems = _read(path, ("degre",), "un jeu GAR par degré")
    out = pd.DataFrame({"degre": raw["degre"].str.strip().astype("string")}, index=raw.index)
    for m in MEASURES:
        if m in raw.columns:
            out[m] = _count(raw, m, path, problems)
    return _finish(out, problems, path)


def read_ressources(path: str | Path) -> pd.DataFrame:
    """Read the GAR resource catalogue (type, cost, publisher, distributors, new).

    Returns
    -------
    pandas.DataFrame
        Every published field (field ids), ``nouveau`` as boolean (« oui »,
        « true », « 1 » → True), empty cells as NA.
    """
    path = Path(path)
    raw, problems = _read(path, ("type", "cout", "libelle_de_l_editeur"), "le catalogue des ressources du GAR")
    out = raw.apply(lambda s: s.str.strip()).replace("", pd.NA).astype("string")
    if "nouveau" in out.columns:
        v = out["nouveau"].str.lower()
        ok = v.isna() | v.isin(["oui", "non", "true", "false", "1", "0", "vrai", "faux"])
        for line, value in out.loc[~ok.to_numpy(bool), "nouveau"].head(100).items():
            problems.append(Problem(str(path), int(line), "nouveau",
                                    f"valeur « {value} » illisible : oui/non attendu."))
        out["nouveau"] = v.isin(["oui", "true", "1", "vrai"]).where(v.notna()).astype("boolean")
    return _finish(out, problems, path)


def catalogue_summary(cat: pd.DataFrame, by: str, top: int | None = None) -> pd.DataFrame:
    """Count catalogue resources by a field (``type``, ``cout``, ``libelle_de_l_editeur``…), largest first."""
    s = cat[by].fillna("non renseigné")
    out = s.value_counts().rename_axis(by).reset_index(name="ressources")
    out["part"] = out["ressources"] / max(1, len(cat))
    return out.head(top) if top else out


def reconcile_totals(academies: pd.DataFrame, profils: pd.DataFrame | None = None, *,
                     published_total: int | None = None, degres: list[pd.DataFrame] | None = None,
                     totals: dict[str, int] | None = None) -> pd.DataFrame:
    """Compare the accès totals the ministry publishes in different datasets.

    Parameters
    ----------
    academies : pandas.DataFrame
        Output of :func:`academie_figures` (may be partial: then ``published_total``
        gives the académie datasets' national total).
    profils : pandas.DataFrame, optional
        Output of :func:`read_profil`.
    published_total : int, optional
        National accès total of the académie dataset when ``academies`` holds
        only some rows (e.g. 54,096,270 for 2024-2025).
    degres : list of pandas.DataFrame, optional
        Outputs of :func:`read_degre`: their accédants and affectations are set
        against the académie totals.
    totals : dict, optional
        National totals of the académie datasets by measure, used instead of the
        sums of ``academies`` (partial rows), e.g. :data:`NATIONAL_TOTALS`.

    Returns
    -------
    pandas.DataFrame
        One row per comparison: ``constat`` (French), ``total_a``, ``total_b``,
        ``ecart`` (a − b), ``explication`` (French).
    """
    rows = []
    aca_total = int(published_total) if published_total is not None else int(academies["acces"].sum())
    if profils is not None and len(profils):
        prof_total = int(profils["acces"].sum())
        gap = aca_total - prof_total
        rows.append({"constat": "Total des accès par académie et total par profil",
                     "total_a": aca_total, "total_b": prof_total, "ecart": gap,
                     "explication": ("Les deux jeux publiés ne donnent pas le même total national : "
                                     f"{_fr(abs(gap))} accès d'écart. Ni l'un ni l'autre n'est corrigé ici ; "
                                     "l'écart est à signaler au producteur (DNE)." if gap else
                                     "Les deux jeux publiés donnent le même total national.")})
        null = profils.loc[profils["non_renseigne"], "acces"].sum()
        if null:
            rows.append({"constat": "Accès sans profil (« Null » publié)", "total_a": int(null),
                         "total_b": prof_total, "ecart": int(null),
                         "explication": f"{_fr(null)} accès sont publiés avec le profil « Null » : "
                                        f"ils sont montrés comme « {NULL_PROFIL_LABEL} »."})
    for d in degres or []:
        for m in ("accedants", "affectations"):
            if m not in d.columns:
                continue
            ref = (totals or {}).get(m)
            ref = int(ref) if ref is not None else int(academies[m].sum())
            tot = int(d[m].sum())
            quoi = {"accedants": "accédants", "affectations": "affectations"}[m]
            same = f"Les deux jeux publiés donnent le même total des {quoi}."
            rows.append({"constat": f"Total des {quoi} par académie et total par degré", "total_a": ref,
                         "total_b": tot, "ecart": ref - tot,
                         "explication": f"Les deux jeux publiés diffèrent de {_fr(abs(ref - tot))} {quoi}."
                                        if ref != tot else same})
    autres = academies[academies["autres"]]
    for r in autres.itertuples():
        rows.append({"constat": "Ligne sans code d'académie", "total_a": _int(r.acces), "total_b": aca_total,
                     "ecart": _int(r.acces),
                     "explication": f"La ligne « {r.libelle_aca} » n'a ni code d'académie ni région : "
                                    "elle est gardée "
                                    f"et libellée « {AUTRES_LABEL} » ; elle compte dans le total national."})
    return pd.DataFrame(rows, columns=["constat", "total_a", "total_b", "ecart", "explication"])


def compare_own_totals(published: pd.DataFrame, own: pd.DataFrame) -> pd.DataFrame:
    """List, by académie, the project's own totals beside the published ones.

    Parameters
    ----------
    published : pandas.DataFrame
        Output of :func:`academie_figures`.
    own : pandas.DataFrame
        ``code_academie`` and any of ``accedants, acces, affectations`` for the
        same school year (from the user's GAR exports).

    Returns
    -------
    pandas.DataFrame
        ``code_academie, nom_academie`` and for each measure ``<m>_publie``,
        ``<m>_calcule``, ``<m>_ecart`` (calculé − publié); académies on one side
        only are kept (NA on the other).
    """
    pub = published[~published["autres"]].set_index("code_academie")
    mine = own.groupby("code_academie").sum(numeric_only=True)
    codes = pub.index.union(mine.index)
    out = pd.DataFrame(index=pd.Index(codes, name="code_academie"))
    out["nom_academie"] = [territories.academie_name(c) for c in codes]
    for m in MEASURES:
        if m in mine.columns:
            out[f"{m}_publie"] = pub[m].reindex(codes).astype("Int64")
            out[f"{m}_calcule"] = mine[m].reindex(codes).round().astype("Int64")
            out[f"{m}_ecart"] = out[f"{m}_calcule"] - out[f"{m}_publie"]
    return out.reset_index()


def own_academie_totals(processed_dir: str | Path | None, year: str = PUBLISHED_YEAR) -> pd.DataFrame | None:
    """Return the project's own accès and accédants by académie for a school year, None when not covered.

    Read from the processed tables (``usage_mensuel``, ``etablissements_annee``)
    of the user's GAR exports; None when they hold no accès in that year.
    """
    from ..build import load_processed

    try:
        usage = load_processed("usage_mensuel", processed_dir)
    except DataError:
        return None
    if "annee_scolaire" not in usage.columns or "acces" not in usage.columns:
        return None
    u = usage[(usage["annee_scolaire"].astype(str) == year) & usage["code_academie"].notna()]
    if not len(u) or u["acces"].sum() <= 0:
        return None
    out = u.groupby("code_academie")["acces"].sum().to_frame()
    try:
        ya = load_processed("etablissements_annee", processed_dir)
        cols = [c for c in ya.columns if c.startswith("accedants_")]
        ya = ya[ya["annee_scolaire"].astype(str) == year]
        if cols and len(ya):
            out["accedants"] = ya.groupby("code_academie")[cols].sum().sum(axis=1)
    except DataError:
        pass
    return out.reset_index()


def _int(x) -> int:
    return 0 if x is None or pd.isna(x) else int(x)


def _fr(x) -> str:
    return f"{int(x):,}".replace(",", "\u202f")
