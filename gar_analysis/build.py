"""Processed tables: loaders → joins → ``data/processed/*.parquet`` with a manifest.

``gar-analysis build --data DIR`` reads a data directory (the contract's files),
joins the sources per school, per school and month, per school and school year,
and writes the tables every indicator, model and report reads. Every table is
per school or coarser: no pupil-level data.

Bad input: every file is read leniently (as ``gar-analysis check`` does); the
lines with a form problem (missing, out-of-list or unparsable value) are left
out and counted in the manifest (``lignes_ecartees``), and the findings name
them. The build fails, naming the file, only when a file it needs cannot be
read at all (:data:`NEEDED`); another unreadable file is left out
(``fichiers_ecartes``). All tables are computed in memory first, written into a
new sibling folder with the manifest, then swapped with the output folder in
one step (:func:`replace_dir`): readers see the old build or the new one, never
a mix, and a failure or a kill leaves the previous build untouched.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .config import IPS_PLAUSIBLE, PROCESSED_DIR, ROOT, RURAL_DENSITY, SAMPLE_DIR
from .contract import CONTRACT, PROFILS, REFERENCE_FILES, SUPPORTS, drop_invalid
from .errors import ConfigError, DataError
from .io import sha256_file
from .publishers import assign_ids, read_mapping
from .sources import SHORT_NAMES, DataDir
from .territories import departements, normalize_departement

log = logging.getLogger(__name__)

TABLES = ("etablissements", "etablissements_annee", "usage_mensuel", "acces_ressources", "ressources",
          "contrats", "actions", "budget", "constats", "dnma_mensuel", "croisement_ent_gar",
          "abonnements")
TERRITORY_COLUMNS = ["code_departement", "code_academie", "code_region", "niveau", "secteur"]
#: Funding authority of each school level (actor type in the CRM, column holding its code).
FUNDING_AUTHORITY = {"ecole": ("commune", "code_commune"), "college": ("departement", "code_departement"),
                     "lycee": ("region", "code_region")}
#: Files the build cannot do without when present (the register: always): unreadable → the build fails.
NEEDED = ("referentiel/annuaire", "gar/etablissements", "gar/ressources", "gar/affectations", "gar/accedants",
          "gar/acces")


class BuildData(DataDir):
    """A data directory read leniently for the build: lines with a form problem are left out.

    ``left_out`` counts them by source path; an unreadable file raises when it is
    :data:`NEEDED`, else it is treated as absent and listed in ``skipped``.
    Contract files keep only the contract's columns (data minimisation): extra input
    columns are allowed by the loaders but never travel into the processed tables (the
    allow-list is each file's columns in :data:`gar_analysis.contract.CONTRACT`); those
    that look like a personal identifier are reported by the rule ``identifiant_personnel``.
    """

    def __init__(self, path):
        super().__init__(path, lenient=True)
        self.left_out: dict[str, int] = {}
        self.skipped: dict[str, str] = {}

    def has(self, name: str) -> bool:
        name = SHORT_NAMES.get(name, name)
        if not super().has(name):
            return False
        try:
            self.get(name)
        except DataError as exc:
            if name in NEEDED:
                raise
            self.skipped[str(self.file(name).relative_to(self.path))] = str(exc)
            log.warning("fichier illisible, laissé de côté : %s", exc)
            return False
        return True

    def get(self, name: str) -> pd.DataFrame:
        name = SHORT_NAMES.get(name, name)
        if name not in self._cache:
            df = super().get(name)
            lines = df.attrs.get("lignes_invalides", ())
            if lines:
                self.left_out[str(self.file(name).relative_to(self.path))] = len(lines)
                df = drop_invalid(df)
            fs = CONTRACT.get(name)
            if fs is not None and list(df.columns) != fs.names:
                df = df[[c for c in fs.names if c in df.columns]]
            self._cache[name] = df
        return self._cache[name]


def school_year(mois: pd.Series) -> pd.Series:
    """Return the school year (``"2024-2025"``) of months written ``YYYY-MM``.

    Examples
    --------
    >>> school_year(pd.Series(["2024-08", "2024-09"])).tolist()
    ['2023-2024', '2024-2025']
    """
    year = mois.str.slice(0, 4).astype(int)
    month = mois.str.slice(5, 7).astype(int)
    start = np.where(month >= 9, year, year - 1)
    return pd.Series([f"{s}-{s + 1}" for s in start], index=mois.index, dtype="string")


def _pivot_sum(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Sum ``value`` by keys, with one column per profil and per support when present."""
    out = df.groupby(keys, observed=True)[value].sum().rename(value).to_frame()
    for col, levels in (("profil", PROFILS), ("support", SUPPORTS)):
        if col not in df.columns:
            continue
        wide = df.pivot_table(index=keys, columns=col, values=value, aggfunc="sum", fill_value=0, observed=True)
        wide = wide.reindex(columns=list(levels), fill_value=0)
        wide.columns = [f"{value}_{c}" for c in wide.columns]
        out = out.join(wide)
    return out.reset_index()


def _register(ds: DataDir) -> pd.DataFrame:
    reg = ds.annuaire.drop_duplicates("uai", keep="first").copy()
    reg["ep"] = reg["education_prioritaire"].fillna("").ne("")
    return place_by_register(reg).reset_index(drop=True)


def place_by_register(schools: pd.DataFrame) -> pd.DataFrame:
    """Place each school in the académie and région of its département, as the territorial register does.

    A school whose ``code_academie`` or ``code_region`` disagrees with its département (the check
    ``territoire_incoherent``) would otherwise be counted by two territories' pages, or by none.
    Its codes are replaced by the register's and ``territoire_corrige`` is True, so that pages can
    say how many schools were moved. A département unknown to the register leaves the row as it is.

    Examples
    --------
    >>> df = pd.DataFrame({"uai": ["0384510W"], "code_departement": ["38"], "code_academie": ["04"],
    ...                    "code_region": ["75"]})
    >>> place_by_register(df)[["code_academie", "code_region", "territoire_corrige"]].values.tolist()
    [['08', '84', True]]
    """
    ref = departements().set_index("code_departement")
    out = schools.copy()
    dep = out["code_departement"].astype("string")
    moved = pd.Series(False, index=out.index)
    for col in ("code_academie", "code_region"):
        expected = dep.map(ref[col]).astype("string")
        differs = expected.notna() & out[col].astype("string").ne(expected).fillna(True)
        out.loc[differs, col] = expected[differs]
        moved |= differs
    out["territoire_corrige"] = moved.to_numpy()
    return out


def _ips(ds: DataDir) -> pd.DataFrame:
    frames = [ds.get(n) for n in ("ips_ecoles", "ips_colleges", "ips_lycees") if ds.has(n)]
    if not frames:
        return pd.DataFrame(columns=["uai", "ips", "effectifs"])
    ips = pd.concat([f[["uai", "rentree_scolaire", "ips", "effectifs"]] for f in frames], ignore_index=True)
    ips = ips[ips["ips"].between(*IPS_PLAUSIBLE)]  # implausible values are findings, not facts
    ips = ips.sort_values("rentree_scolaire")
    return ips.drop_duplicates("uai", keep="last")[["uai", "ips", "effectifs"]]


def _density(ds: DataDir) -> pd.DataFrame:
    if not ds.has("communes"):
        return pd.DataFrame(columns=["code_commune", "densite"])
    com = ds.communes
    dens = com["population"].astype("float64") / com["superficie_km2"].where(com["superficie_km2"] > 0)
    return pd.DataFrame({"code_commune": com["code_commune"], "densite": dens}).drop_duplicates("code_commune")


def _crm_facts(ds: DataDir, schools: pd.DataFrame) -> pd.DataFrame:
    """Return referent / formation / convention per UAI from the CRM files."""
    facts = pd.DataFrame({"uai": schools["uai"]})
    facts["referent"] = False
    facts["actions_formation"] = 0
    facts["convention"] = False
    if ds.has("acteurs") and ds.has("contacts"):
        act, con = ds.acteurs, ds.contacts
        ref_actors = con.loc[con["role"] == "referent_gar", "id_acteur"]
        ref_uai = act.loc[(act["type"] == "etablissement") & act["id_acteur"].isin(ref_actors), "code"]
        facts["referent"] = facts["uai"].isin(set(ref_uai.dropna()))
    if ds.has("actions"):
        a = ds.actions
        n = a[a["type_action"] == "formation"].groupby("uai").size()
        facts["actions_formation"] = facts["uai"].map(n).fillna(0).astype(int)
    if ds.has("acteurs") and ds.has("contrats"):
        act, ctr = ds.acteurs, ds.contrats
        signed = ctr[(ctr["objet"] == "convention_gar") & (ctr["statut"] == "signe")]
        sig = act[act["id_acteur"].isin(signed["id_acteur"])]
        conv = pd.Series(False, index=schools.index)
        for niveau, (kind, col) in FUNDING_AUTHORITY.items():
            codes = set(sig.loc[sig["type"] == kind, "code"].dropna())
            if kind == "departement":
                codes = {normalize_departement(c) for c in codes}
            conv |= (schools["niveau"] == niveau) & schools[col].isin(codes)
        facts["convention"] = conv.to_numpy()
    facts["formation"] = facts["actions_formation"] > 0
    return facts


def build_tables(data_dir: str | Path = SAMPLE_DIR, findings: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Join the sources of a data directory into the processed tables.

    Parameters
    ----------
    data_dir : str or Path
        A data directory following the data contract.
    findings : pandas.DataFrame, optional
        Quality findings; computed with :func:`gar_analysis.checks.run_checks` when None.

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables of :data:`TABLES`, by name.
    """
    ds = data_dir if isinstance(data_dir, BuildData) else BuildData(data_dir)
    data_dir = ds.path
    if not ds.has("annuaire"):
        raise DataError.single(ds.file("annuaire"), "le répertoire des établissements est indispensable à la construction.")
    reg = _register(ds)
    schools = reg.merge(_ips(ds), on="uai", how="left", validate="one_to_one")
    schools["nombre_eleves"] = schools["nombre_eleves"].fillna(schools["effectifs"]).astype("Int64")
    schools = schools.drop(columns="effectifs")
    schools["log_eleves"] = np.log(schools["nombre_eleves"].astype("float64").where(lambda s: s > 0))
    schools["ips_10"] = (schools["ips"] - 100) / 10
    schools = schools.merge(_density(ds), on="code_commune", how="left", validate="many_to_one")
    schools["rural"] = (schools["densite"] < RURAL_DENSITY).where(schools["densite"].notna()).astype("boolean")

    gar = ds.etablissements.drop_duplicates("uai") if ds.has("etablissements") else pd.DataFrame(
        {"uai": pd.Series(dtype="string"), "date_inscription": pd.Series(dtype="datetime64[ns]"),
         "mediacentre": pd.Series(dtype="string"), "projet_ent": pd.Series(dtype="string")})  # public data only
    schools = schools.merge(gar[["uai", "date_inscription", "mediacentre", "projet_ent"]], on="uai",
                            how="left", validate="one_to_one")
    schools["inscrit"] = schools["date_inscription"].notna()
    start = schools.groupby("projet_ent")["date_inscription"].transform("min")
    schools["delai_inscription_jours"] = (schools["date_inscription"] - start).dt.days.astype("Int64")

    terr = schools[["uai", *TERRITORY_COLUMNS]]
    # --- accès -------------------------------------------------------------------------
    acces = ds.acces if ds.has("acces") else pd.DataFrame(
        columns=["mois", "uai", "id_ressource", "profil", "support", "acces"])
    acces = acces.assign(acces=acces["acces"].astype("int64"))
    aff = ds.affectations if ds.has("affectations") else pd.DataFrame(
        columns=["mois", "uai", "id_ressource", "profil", "affectations"])
    aff = aff.assign(affectations=aff["affectations"].astype("int64"))
    ress = ds.ressources if ds.has("ressources") else pd.DataFrame(columns=["id_ressource", "editeur"])
    ress = assign_ids(ress, read_mapping(data_dir))  # publishers keyed by a stable identifier

    per_res = _pivot_sum(acces, ["mois", "uai", "id_ressource"], "acces")
    aff_res = aff.groupby(["mois", "uai", "id_ressource"], as_index=False)["affectations"].sum()
    per_res = per_res.merge(aff_res, on=["mois", "uai", "id_ressource"], how="outer")
    per_res = per_res.merge(ress[["id_ressource", "editeur", "id_editeur"]].drop_duplicates("id_ressource"),
                            on="id_ressource", how="left", validate="many_to_one")
    per_res = per_res.merge(terr, on="uai", how="left", validate="many_to_one")
    count_cols = [c for c in per_res.columns if c.startswith(("acces", "affectations"))]
    per_res[count_cols] = per_res[count_cols].fillna(0).astype("int64")

    monthly = _pivot_sum(acces, ["uai", "mois"], "acces")
    monthly = monthly.merge(aff.groupby(["uai", "mois"], as_index=False)["affectations"].sum(),
                            on=["uai", "mois"], how="outer")
    active_res = acces[acces["acces"] > 0].groupby(["uai", "mois"])["id_ressource"].nunique()
    monthly = monthly.merge(active_res.rename("ressources_actives").reset_index(), on=["uai", "mois"], how="left")
    from .sources.dnma import monthly_audience

    dnma_loaded = {k: ds.get(f"dnma/{k}") for k in ("profils", "services", "profils_appareils") if ds.has(f"dnma/{k}")}
    # published DNMA (weeks split into months by days), else the deprecated dnma/audience.csv
    old_audience = ds.get("dnma/audience") if "profils" not in dnma_loaded and ds.has("dnma/audience") else None
    audience = None if "profils" not in dnma_loaded and old_audience is None else \
        monthly_audience(data_dir, dnma_loaded.get("profils"), old_audience)
    if audience is not None:
        dn = audience[0].groupby(["uai", "mois"], as_index=False)[["visites", "visiteurs"]].sum()
        dn = dn.rename(columns={"visites": "visites_dnma", "visiteurs": "visiteurs_dnma"})
        dn["mesure_dnma"] = True
        monthly = monthly.merge(dn, on=["uai", "mois"], how="outer")
    else:
        monthly[["visites_dnma", "visiteurs_dnma"]] = 0
        monthly["mesure_dnma"] = False
    monthly["mesure_dnma"] = monthly["mesure_dnma"].fillna(False).astype(bool)
    mcount = [c for c in monthly.columns if c.startswith(("acces", "affectations", "visite", "ressources_actives"))]
    monthly[mcount] = monthly[mcount].fillna(0).astype("int64")
    monthly = monthly.merge(terr, on="uai", how="left", validate="many_to_one")
    monthly["annee_scolaire"] = school_year(monthly["mois"].astype("string"))

    # --- per school over the period ---------------------------------------------------------
    totals = monthly.groupby("uai")[[c for c in mcount if c != "ressources_actives"]].sum()
    totals["mois_actifs"] = monthly[monthly["acces"] > 0].groupby("uai").size()
    totals["ressources_distinctes"] = acces[acces["acces"] > 0].groupby("uai")["id_ressource"].nunique()
    totals = totals.drop(columns=["visiteurs_dnma"], errors="ignore")
    schools = schools.merge(totals.reset_index(), on="uai", how="left", validate="one_to_one")
    fill = [c for c in totals.columns]
    schools[fill] = schools[fill].fillna(0).astype("int64")

    if ds.has("accedants"):
        accd = ds.accedants
        last = accd["annee_scolaire"].max()
        wide = accd[accd["annee_scolaire"] == last].pivot_table(
            index="uai", columns="profil", values="accedants", aggfunc="sum", fill_value=0, observed=True)
        wide = wide.reindex(columns=list(PROFILS), fill_value=0)
        wide.columns = [f"accedants_{c}" for c in wide.columns]
        wide["accedants"] = wide.sum(axis=1)
        schools = schools.merge(wide.reset_index(), on="uai", how="left", validate="one_to_one")
        acols = list(wide.columns)
        schools[acols] = schools[acols].fillna(0).astype("int64")
        yearly_acc = accd.pivot_table(index=["uai", "annee_scolaire"], columns="profil", values="accedants",
                                      aggfunc="sum", fill_value=0, observed=True)
        yearly_acc = yearly_acc.reindex(columns=list(PROFILS), fill_value=0)
        yearly_acc.columns = [f"accedants_{c}" for c in yearly_acc.columns]
        yearly_acc = yearly_acc.reset_index()
    else:
        yearly_acc = pd.DataFrame(columns=["uai", "annee_scolaire"])

    schools = schools.merge(_crm_facts(ds, schools), on="uai", how="left", validate="one_to_one")

    if findings is None:
        from .checks import run_checks

        findings = run_checks(data_dir)
    constats = findings.copy()
    constats["uai"] = constats["uai"].fillna("").astype("string")
    constats = constats.merge(terr[["uai", "code_departement", "code_academie", "code_region"]],
                              on="uai", how="left", validate="many_to_one")
    serious = constats[constats["gravite"].isin(["erreur", "avertissement"]) & constats["uai"].ne("")]
    schools["anomalies"] = schools["uai"].map(serious.groupby("uai").size()).fillna(0).astype("int64")

    # --- per school and school year ---------------------------------------------------------
    ycols = ["acces", *(f"acces_{p}" for p in PROFILS)]
    yearly = monthly.groupby(["uai", "annee_scolaire"])[ycols].sum()
    yearly["mois_actifs"] = monthly[monthly["acces"] > 0].groupby(["uai", "annee_scolaire"]).size()
    yearly["mois_mesures"] = monthly[monthly["mesure_dnma"]].groupby(["uai", "annee_scolaire"]).size()
    yearly = yearly.fillna(0).astype("int64").reset_index()
    years = sorted(monthly["annee_scolaire"].dropna().unique())
    grid = pd.MultiIndex.from_product([schools.loc[schools["inscrit"], "uai"], years],
                                      names=["uai", "annee_scolaire"]).to_frame(index=False)
    yearly = grid.merge(yearly, on=["uai", "annee_scolaire"], how="outer")
    yearly = yearly.merge(yearly_acc, on=["uai", "annee_scolaire"], how="left")
    ycount = [c for c in yearly.columns if c not in ("uai", "annee_scolaire")]
    yearly[ycount] = yearly[ycount].fillna(0).astype("int64")
    factor_cols = ["nom", *TERRITORY_COLUMNS, "code_commune", "nombre_eleves", "log_eleves", "ips", "ips_10",
                   "densite", "rural", "ep", "inscrit", "date_inscription", "projet_ent", "mediacentre",
                   "referent", "actions_formation", "formation", "convention"]
    yearly = yearly.merge(schools[["uai", *factor_cols]], on="uai", how="left", validate="many_to_one")

    # --- CRM and budget ----------------------------------------------------------------------
    contrats = pd.DataFrame()
    if ds.has("contrats"):
        contrats = ds.contrats.reset_index(drop=True)
        if ds.has("acteurs"):
            a = ds.acteurs.rename(columns={"type": "type_acteur", "nom": "nom_acteur", "code": "code_acteur"})
            contrats = contrats.merge(a[["id_acteur", "type_acteur", "nom_acteur", "code_acteur"]],
                                      on="id_acteur", how="left", validate="many_to_one")
    actions = pd.DataFrame()
    if ds.has("actions"):
        actions = ds.actions.reset_index(drop=True).merge(terr, on="uai", how="left", validate="many_to_one")
    budget = ds.depenses.reset_index(drop=True) if ds.has("depenses") else pd.DataFrame()

    from .dnma import dnma_tables

    dnma = dnma_tables(data_dir, terr, acces[["uai", "mois", "acces"]] if ds.has("acces") else None, dnma_loaded)
    # subscriptions (licences bought) for the publishers' take-up; amounts stay in the raw data
    abo_cols = ["id_abonnement", "uai", "id_ressource", "date_debut", "date_fin", "licences"]
    abo = ds.abonnements[abo_cols] if ds.has("abonnements") else pd.DataFrame(columns=abo_cols)
    abo = abo.merge(ress[["id_ressource", "id_editeur"]].drop_duplicates("id_ressource"), on="id_ressource",
                    how="left", validate="many_to_one").merge(terr, on="uai", how="left", validate="many_to_one")
    return {
        "etablissements": schools,
        "etablissements_annee": yearly,
        "usage_mensuel": monthly,
        "acces_ressources": per_res,
        "ressources": ress.reset_index(drop=True),
        "contrats": contrats,
        "actions": actions,
        "budget": budget,
        "constats": constats.reset_index(drop=True),
        **dnma,
        "abonnements": abo.reset_index(drop=True),
    }


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "inconnu"
    except (OSError, subprocess.SubprocessError):
        return "inconnu"


def build(data_dir: str | Path = SAMPLE_DIR, out_dir: str | Path = PROCESSED_DIR,
          findings: pd.DataFrame | None = None) -> dict:
    """Build and write the processed tables and their manifest.

    Parameters
    ----------
    data_dir : str or Path
        The data directory to read.
    out_dir : str or Path
        Where to write the Parquet tables and ``manifest.json``.
    findings : pandas.DataFrame, optional
        Quality findings, computed when None.

    Returns
    -------
    dict
        The manifest written.
    """
    t0 = time.perf_counter()
    data_dir, out_dir = Path(data_dir).absolute(), Path(out_dir).absolute()
    ds = BuildData(data_dir)
    tables = build_tables(ds, findings)
    for name in [*CONTRACT, *REFERENCE_FILES]:  # count the left-out lines of the files no table reads too
        ds.has(name)
    sources = []
    for f in sorted(data_dir.rglob("*.csv")):
        if not f.is_file():  # a folder or a broken link named *.csv
            continue
        try:
            with f.open("rb") as fh:
                lines = sum(1 for _ in fh) - 1
            sources.append({"fichier": str(f.relative_to(data_dir)), "lignes": lines, "sha256": sha256_file(f),
                            "modifie": datetime.fromtimestamp(f.stat().st_mtime, timezone.utc).date().isoformat()})
        except OSError as exc:
            log.warning("source non inventoriée : %s (%s)", f, exc)
    findings_df = tables["constats"]
    manifest = {
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": __version__,
        "commit": _git_commit(),
        "data_dir": str(data_dir),
        "simulated": ds.is_simulated,
        "periode": [str(tables["usage_mensuel"]["mois"].min()), str(tables["usage_mensuel"]["mois"].max())],
        "sources": sources,
        "outputs": {},
        "lignes_ecartees": dict(sorted(ds.left_out.items())),
        "fichiers_ecartes": dict(sorted(ds.skipped.items())),
        "constats": findings_df["gravite"].value_counts().to_dict() if len(findings_df) else {},
    }
    with staging_dir(out_dir) as new:
        for name, df in tables.items():
            path = new / f"{name}.parquet"
            df = df.copy(deep=False)
            df.attrs = {}  # loader problems stay in the findings, not in the tables
            df.to_parquet(path, index=False)
            manifest["outputs"][name] = {"fichier": path.name, "lignes": int(len(df)), "sha256": sha256_file(path)}
        manifest["duree_s"] = round(time.perf_counter() - t0, 2)
        (new / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


# --------------------------------------------------------------------------- atomic folder replacement

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False when unavailable."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def replace_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` in place of ``target`` as one unit; the old content is removed.

    With ``renameat2`` the two folders are exchanged atomically; elsewhere the old
    folder is renamed aside first (for an instant ``target`` is absent, never mixed).
    """
    new, target = Path(new), Path(target)
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)
        return
    old = target.with_name(f".{target.name}.ancien-{os.getpid()}")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


class staging_dir:
    """Context manager: a new folder beside ``target``, put in its place on success.

    Files of ``target`` that the new folder does not hold (files another tool put
    there) are carried over. On an exception the new folder is removed and
    ``target`` is untouched; folders left by a killed run are removed next time.
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.prefix = f".{self.target.name}.nouveau-"

    def __enter__(self) -> Path:
        parent = self.target.parent
        parent.mkdir(parents=True, exist_ok=True)
        for stale in parent.glob(self.prefix + "*"):
            try:
                pid = int(stale.name.rsplit("-", 2)[-2])
                os.kill(pid, 0)  # still running: another build's folder
                continue
            except (ValueError, IndexError, ProcessLookupError):
                shutil.rmtree(stale, ignore_errors=True)
            except PermissionError:
                continue
        self.new = Path(tempfile.mkdtemp(prefix=f"{self.prefix}{os.getpid()}-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.new, 0o777 & ~umask)
        return self.new

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.new, ignore_errors=True)
            return False
        if self.target.is_dir():
            for entry in self.target.iterdir():
                dest = self.new / entry.name
                if dest.exists() or entry.name.startswith("."):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.copytree(entry, dest, symlinks=True)
                else:
                    shutil.copy2(entry, dest, follow_symlinks=False)
        elif self.target.exists():
            shutil.rmtree(self.new, ignore_errors=True)
            raise ConfigError(f"{self.target} est un fichier : un dossier de tables traitées est attendu.")
        replace_dir(self.new, self.target)
        return False


def load_processed(name: str, processed_dir: str | Path | None = None) -> pd.DataFrame:
    """Read one processed table.

    Parameters
    ----------
    name : str
        One of :data:`TABLES`.
    processed_dir : str or Path, optional
        Folder of the processed tables (default ``config.PROCESSED_DIR``; an empty string means the default).

    Returns
    -------
    pandas.DataFrame
    """
    if name not in TABLES:
        raise ValueError(f"Table inconnue : {name!r}. Tables : {', '.join(TABLES)}.")
    path = Path(processed_dir or PROCESSED_DIR) / f"{name}.parquet"
    if not path.exists():
        raise DataError.single(path, "table absente : lancez d'abord « gar-analysis build » (ou « make data »).")
    key = None
    if _TABLE_CACHE is not None:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key in _TABLE_CACHE:
            return _TABLE_CACHE[key].copy(deep=False)  # copy-on-write: the caller cannot alter the cache
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types on a corrupt file
        raise DataError.single(path, f"table illisible (Parquet corrompu : {type(exc).__name__}) : relancez "
                               "« gar-analysis build ».") from None
    if key is not None:
        for old in [k for k in _TABLE_CACHE if k[0] == key[0]]:  # an older build of the same file
            del _TABLE_CACHE[old]
        _TABLE_CACHE[key] = df
        return df.copy(deep=False)
    return df


#: Tables kept in memory by :func:`load_processed` (None: no cache). Enabled in the batch's warm kernels.
_TABLE_CACHE: dict | None = None


def cache_tables(enabled: bool = True) -> None:
    """Keep the tables read by :func:`load_processed` in memory, keyed on path, mtime and size.

    Used by the report batch's warm kernels (:mod:`gar_analysis.reporting.warm`): a kernel
    that renders many pages reads each table once; a new build (new mtime or size) is read again.
    ``cache_tables(False)`` empties and disables the cache.
    """
    global _TABLE_CACHE
    if not enabled:
        _TABLE_CACHE = None
    elif _TABLE_CACHE is None:
        _TABLE_CACHE = {}


def load_manifest(processed_dir: str | Path | None = None) -> dict:
    """Read the manifest of the processed tables."""
    path = Path(processed_dir or PROCESSED_DIR) / "manifest.json"
    if not path.exists():
        raise DataError.single(path, "manifeste absent : lancez d'abord « gar-analysis build ».")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError.single(path, f"manifeste illisible ({exc}) : relancez « gar-analysis build ».") from None
    except json.JSONDecodeError as exc:
        raise DataError.single(path, f"manifeste illisible : JSON invalide au caractère {exc.colno} ({exc.msg}) ; "
                               "relancez « gar-analysis build ».", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise DataError.single(path, "manifeste illisible : un objet JSON est attendu ; relancez « gar-analysis build ».")
    return data


def configure_parser(parser) -> None:
    """Add the ``build`` command's arguments."""
    parser.add_argument("--data", default=str(SAMPLE_DIR), help="répertoire de données (défaut : l'échantillon)")
    parser.add_argument("--out", default=str(PROCESSED_DIR), help="dossier des tables traitées")
    parser.add_argument("--findings", help="constats déjà calculés par « gar-analysis check --out » (sinon recalculés)")


def read_findings_arg(path) -> pd.DataFrame:
    """Read the ``--findings`` CSV of ``gar-analysis build``, refusing a file that is not one."""
    from .checks.registry import COLUMNS
    from .cli import input_file

    path = input_file(path, "--findings")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError.single(path, f"constats illisibles ({exc}) : un CSV écrit par « gar-analysis check » "
                               "est attendu.") from None
    header = [h.strip() for h in text.split("\n", 1)[0].rstrip("\r").split(";")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError.single(path, f"colonne(s) absente(s) : {', '.join(missing)} ; un CSV écrit par "
                               "« gar-analysis check --out » est attendu.", line=1, column=missing[0])
    import io as _io

    findings = pd.read_csv(_io.StringIO(text), sep=";", dtype=str, keep_default_na=False)
    ligne = pd.to_numeric(findings["ligne"].str.strip().where(lambda x: x != ""), errors="coerce")
    bad = findings["ligne"].str.strip().ne("") & (ligne.isna() | (ligne % 1 != 0))
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataError.single(path, f"valeur « {findings['ligne'].iloc[i]} » illisible : un numéro de ligne est "
                               "attendu.", line=i + 2, column="ligne")
    findings["ligne"] = ligne.astype("Int64")
    return findings


def run(args) -> int:
    """Run ``gar-analysis build``."""
    from .cli import input_dir, output_dir

    data = input_dir(args.data, "--data")
    out = output_dir(args.out, "--out")
    findings = read_findings_arg(args.findings) if args.findings else None
    manifest = build(data, out, findings)
    rows = ", ".join(f"{k} {v['lignes']}" for k, v in manifest["outputs"].items())
    print(f"Tables écrites dans {out} ({manifest['duree_s']} s) : {rows}")
    left = manifest.get("lignes_ecartees") or {}
    if left:
        print("Lignes écartées (forme invalide, voir les constats) : "
              + ", ".join(f"{k} {v}" for k, v in left.items()))
    for name, why in (manifest.get("fichiers_ecartes") or {}).items():
        print(f"Fichier illisible laissé de côté : {name} ({why.splitlines()[-1].strip(' -')})")
    return 0
