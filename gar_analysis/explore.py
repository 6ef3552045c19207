"""Exploring in JupyterLab: the processed tables with their documented columns, and ready-made sample data.

* :func:`tables` returns a :class:`Tables` accessor over ``data/processed/``
  (or any folder of processed tables): ``tables().etablissements`` loads one
  table (once), ``tables().columns("etablissements")`` lists its columns with
  their meaning, and the accessor itself displays as an HTML overview;
* :func:`example_data` gives the simulated sample and its processed tables,
  generated and built once into a cache folder (never ``data/processed/``),
  so that the exploration notebooks run on a fresh clone.
"""
from __future__ import annotations

import fcntl
import hashlib
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .build import TABLES, load_manifest, load_processed
from .config import PACKAGE_DIR, PROCESSED_DIR, SAMPLE_SEED

#: What one row of each processed table is, and its key.
TABLE_GRAINS = {
    "etablissements": ("un établissement du répertoire (facteurs, inscription, usage sur la période, CRM)", "uai"),
    "etablissements_annee": ("un établissement × une année scolaire (résultats des modèles d'usage)",
                             "uai, annee_scolaire"),
    "usage_mensuel": ("un établissement × un mois (accès, affectations, visites ENT)", "uai, mois"),
    "acces_ressources": ("un établissement × un mois × une ressource (rapports éditeurs)", "uai, mois, id_ressource"),
    "ressources": ("une ressource du catalogue", "id_ressource"),
    "contrats": ("un contrat du CRM, avec le type, le nom et le code de l'acteur", "id_contrat"),
    "actions": ("une action du CRM (formation, accompagnement…) dans un établissement", "—"),
    "budget": ("une collectivité × une année : dépenses de ressources numériques", "annee, niveau, code"),
    "constats": ("un constat des contrôles qualité", "—"),
    "dnma_mensuel": ("un établissement × un mois de mesure d'audience de l'ENT (DNMA, semaines réparties par jours)",
                     "uai, mois"),
    "croisement_ent_gar": ("un établissement × une année scolaire : ressources vues depuis l'ENT et accès GAR",
                           "uai, annee_scolaire"),
    "abonnements": ("un abonnement d'un établissement à une ressource (licences achetées ; sans montant)",
                    "id_abonnement"),
}

#: Meaning of each column of the processed tables (same name, same meaning in every table).
COLUMN_DOCS = {
    "uai": "identifiant de l'établissement (UAI)",
    "nom": "nom (établissement ou ressource)",
    "type_etablissement": "type d'établissement du répertoire",
    "niveau": "niveau : ecole, college, lycee, autre (budget : commune, departement, region)",
    "secteur": "secteur : public ou prive",
    "code_commune": "code INSEE de la commune",
    "nom_commune": "nom de la commune",
    "code_departement": "code du département, normalisé (« 35 », « 2A », « 971 »)",
    "code_academie": "code de l'académie",
    "code_region": "code de la région",
    "education_prioritaire": "éducation prioritaire : « REP », « REP+ » ou vide",
    "ep": "en éducation prioritaire (booléen)",
    "id_editeur": "identifiant stable de l'éditeur (gar/editeurs.csv, sinon dérivé de sa graphie : publishers.py)",
    "jours_mesures": "jours de la période couverts par les semaines mesurées par la DNMA",
    "visites_manuel_numerique": "visites du service « manuel numérique » de l'ENT (DNMA)",
    "visites_ressources_ent": "visites des services de ressources de l'ENT : manuel numérique et « ressource_* » (DNMA)",
    "acces_gar": "accès GAR de l'établissement sur l'année scolaire",
    "constat": "croisement ENT–GAR : coherent, ent_sans_gar, gar_sans_ent, aucun ou gar_absent",
    "explication": "le constat en clair",
    "territoire_corrige": "vrai quand les codes académie ou région de l'annuaire ne concordaient pas avec le "
                          "département : établissement placé selon le référentiel (build.place_by_register)",
    "latitude": "latitude (NA si absente)",
    "longitude": "longitude (NA si absente)",
    "etat": "état de l'établissement dans le répertoire",
    "multi_lignes": "l'UAI figure sur plusieurs lignes du répertoire",
    "nombre_eleves": "nombre d'élèves (répertoire, sinon effectifs de l'IPS)",
    "log_eleves": "logarithme du nombre d'élèves",
    "ips": "indice de position sociale de la dernière rentrée",
    "ips_10": "(IPS − 100) / 10 : un point = 10 points d'IPS",
    "densite": "densité de la commune (habitants par km²)",
    "rural": "commune rurale : densité < 100 hab./km² (config.RURAL_DENSITY)",
    "inscrit": "inscrit au GAR (booléen)",
    "date_inscription": "date d'inscription au GAR",
    "delai_inscription_jours": "délai d'inscription (jours)",
    "mediacentre": "médiacentre activé",
    "projet_ent": "projet ENT de l'établissement",
    "acces": "accès aux ressources (somme sur la période, l'année ou le mois de la ligne)",
    "affectations": "affectations de ressources",
    "visites_dnma": "visites de l'ENT (mesure d'audience DNMA)",
    "visiteurs_dnma": "visiteurs de l'ENT (mesure d'audience DNMA)",
    "mesure_dnma": "l'audience ENT est mesurée ce mois-là",
    "mois_actifs": "mois avec au moins un accès",
    "mois_mesures": "mois mesurés de l'année scolaire",
    "ressources_distinctes": "ressources distinctes utilisées sur la période",
    "ressources_actives": "ressources utilisées dans le mois",
    "accedants": "accédants de la dernière année scolaire (tous profils)",
    "referent": "un contact du CRM a le rôle de référent GAR de l'établissement",
    "actions_formation": "actions de formation enregistrées dans le CRM",
    "formation": "au moins une action de formation",
    "convention": "la collectivité de rattachement a signé une convention GAR",
    "anomalies": "constats qualité (erreur ou avertissement) portant sur l'UAI",
    "annee_scolaire": "année scolaire (« 2024-2025 »)",
    "mois": "mois (« AAAA-MM »)",
    "id_ressource": "identifiant de la ressource",
    "editeur": "éditeur de la ressource",
    "type_ressource": "type de ressource",
    "degre": "degré (premier, second)",
    "id_contrat": "identifiant du contrat",
    "id_acteur": "identifiant de l'acteur du CRM",
    "objet": "objet du contrat (convention_gar…)",
    "date_signature": "date de signature",
    "date_debut": "date de début",
    "date_fin": "date de fin",
    "id_abonnement": "identifiant de l'abonnement (gar/abonnements.csv)",
    "licences": "licences achetées par l'abonnement",
    "statut": "statut du contrat (signe…)",
    "type_acteur": "type d'acteur (etablissement, commune, departement, region…)",
    "nom_acteur": "nom de l'acteur",
    "code_acteur": "code de l'acteur (UAI, code INSEE, département, région)",
    "date": "date de l'action",
    "type_action": "type d'action (formation…)",
    "annee": "année budgétaire",
    "code": "code de la collectivité",
    "depenses_ressources_numeriques": "dépenses de ressources numériques (euros)",
    "dont_gar": "dont ressources accessibles par le GAR (euros)",
    "regle": "règle de contrôle qui a produit le constat",
    "gravite": "gravité : erreur, avertissement ou information",
    "source": "fichier contrôlé",
    "ligne": "ligne du fichier (en-tête = 1)",
    "message": "ce qui ne va pas, et ce qu'il faut faire",
}
#: Columns named ``<prefix><profil or support>``.
_PREFIXES = {"acces_": "accès", "accedants_": "accédants (dernière année scolaire)"}
_LEVELS = {"eleve": "des élèves", "enseignant": "des enseignants", "documentaliste": "des documentalistes",
           "autre_personnel": "des autres personnels", "ordinateur": "depuis un ordinateur",
           "tablette": "depuis une tablette", "mobile": "depuis un mobile"}


#: Columns of the DNMA tables, read by pattern: visites_<profil>[_<appareil>], utilisateurs_<profil>_semaine.
_DNMA_PROFILS = {"globales": "tous profils", "eleve": "des élèves", "parent": "des parents",
                 "enseignant": "des enseignants", "admin_vie_scol_tech": "des personnels administratifs et techniques"}
_DNMA_DEVICES = {"ordinateur": "sur ordinateur", "smartphone": "sur smartphone", "tablette": "sur tablette",
                 "autresappareil": "sur un autre appareil"}


def _dnma_doc(name: str) -> str:
    if name.startswith("utilisateurs_") and name.endswith("_semaine"):
        who = _DNMA_PROFILS.get(name[len("utilisateurs_"):-len("_semaine")])
        return f"utilisateurs distincts de l'ENT {who} d'une semaine type du mois (moyenne des semaines)" if who else ""
    if name.startswith("visites_"):
        rest = name[len("visites_"):]
        for dev, where in _DNMA_DEVICES.items():
            if rest.endswith("_" + dev) and rest[: -len(dev) - 1] in _DNMA_PROFILS:
                return f"visites de l'ENT {_DNMA_PROFILS[rest[: -len(dev) - 1]]} {where} (DNMA)"
        if rest in _DNMA_PROFILS:
            return f"visites de l'ENT {_DNMA_PROFILS[rest]} (DNMA)"
    return ""


def column_doc(name: str) -> str:
    """French meaning of a column of the processed tables ("" when undocumented).

    Examples
    --------
    >>> column_doc("ips_10")
    "(IPS − 100) / 10 : un point = 10 points d'IPS"
    >>> column_doc("acces_tablette")
    'accès depuis une tablette'
    """
    if name in COLUMN_DOCS:
        return COLUMN_DOCS[name]
    for prefix, what in _PREFIXES.items():
        if name.startswith(prefix) and name[len(prefix):] in _LEVELS:
            return f"{what} {_LEVELS[name[len(prefix):]]}"
    return _dnma_doc(name)


class Tables(Mapping):
    """The processed tables of one folder, loaded on first access and kept.

    ``t["etablissements"]`` or ``t.etablissements`` returns a DataFrame;
    :meth:`columns` documents a table's columns; :meth:`overview` lists the tables.

    Parameters
    ----------
    processed_dir : str or Path, optional
        Folder written by ``gar-analysis build`` (default ``data/processed/``).
    """

    def __init__(self, processed_dir: str | Path | None = None):
        self.path = Path(processed_dir or PROCESSED_DIR)
        self._cache: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(f"Table inconnue : {name!r}. Tables : {', '.join(TABLES)}.")
        if name not in self._cache:
            self._cache[name] = load_processed(name, self.path)
        return self._cache[name]

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in TABLES:
            return self[name]
        raise AttributeError(f"'Tables' object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *TABLES})

    def __iter__(self) -> Iterator[str]:
        return iter(TABLES)

    def __len__(self) -> int:
        return len(TABLES)

    def __contains__(self, name: object) -> bool:
        return name in TABLES

    @property
    def manifest(self) -> dict:
        """The build's manifest (sources, outputs, date, simulated or not)."""
        return load_manifest(self.path)

    def columns(self, name: str) -> pd.DataFrame:
        """Columns of one table: ``colonne, type, description`` (read from the file's schema, not its rows)."""
        import pyarrow.parquet as pq

        if name not in TABLES:
            raise KeyError(f"Table inconnue : {name!r}. Tables : {', '.join(TABLES)}.")
        path = self.path / f"{name}.parquet"
        if not path.exists():
            load_processed(name, self.path)  # absent: raises the French « lancez gar-analysis build » error
        types = {f.name: str(f.type) for f in pq.read_schema(path) if not f.name.startswith("__index_level_")}
        return pd.DataFrame({"colonne": list(types), "type": list(types.values()),
                             "description": [column_doc(c) for c in types]})

    def overview(self) -> pd.DataFrame:
        """One row per table: ``table, ligne_de, cle, lignes`` (row counts from the manifest)."""
        try:
            outputs = self.manifest.get("outputs", {})
        except Exception:  # noqa: BLE001 - the overview works without a manifest
            outputs = {}
        return pd.DataFrame({"table": list(TABLES),
                             "ligne_de": [TABLE_GRAINS[t][0] for t in TABLES],
                             "cle": [TABLE_GRAINS[t][1] for t in TABLES],
                             "lignes": [outputs.get(t, {}).get("lignes") for t in TABLES]})

    def __repr__(self) -> str:
        return f"<Tables {self.path} : {', '.join(TABLES)}>"

    def _repr_html_(self) -> str:
        from .reporting.display import table_html

        return table_html(self.overview(), f"Tables traitées de {self.path}",
                          labels={"table": "Table", "ligne_de": "Une ligne par", "cle": "Clé",
                                  "lignes": "Lignes"},
                          note="tables.columns(nom) décrit les colonnes d'une table ; tables.nom la charge.")


def tables(processed_dir: str | Path | None = None) -> Tables:
    """Return the accessor of the processed tables of a folder.

    Parameters
    ----------
    processed_dir : str or Path, optional
        Folder written by ``gar-analysis build`` (default ``data/processed/``).

    Returns
    -------
    Tables

    Examples
    --------
    >>> t = tables("data/processed")
    >>> "etablissements" in t, len(t) == len(TABLES)
    (True, True)
    >>> t.etablissements.columns[:3].tolist()     # doctest: +SKIP
    ['uai', 'nom', 'type_etablissement']
    """
    return Tables(processed_dir)


@dataclass(frozen=True)
class ExampleData:
    """The simulated sample (``data_dir``) and its processed tables (``processed_dir``)."""

    data_dir: Path
    processed_dir: Path

    def tables(self) -> Tables:
        """The accessor of the processed tables."""
        return Tables(self.processed_dir)


def _code_fingerprint() -> str:
    """Short hash of the package's sources: a new generator or build gives a new cache folder."""
    h = hashlib.sha256()
    for f in sorted(PACKAGE_DIR.rglob("*.py")) + sorted((PACKAGE_DIR / "data").glob("*.csv")):
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def example_data(folder: str | Path | None = None, *, seed: int = SAMPLE_SEED) -> ExampleData:
    """Return the simulated sample and its processed tables, generating and building them once.

    The first call takes about fifteen seconds; later calls (from any notebook
    or process) reuse the folder. ``data/raw/`` and ``data/processed/`` are
    never touched.

    Parameters
    ----------
    folder : str or Path, optional
        Where to write ``data/`` (the sample) and ``processed/`` (the tables);
        default: a folder of the system's temporary directory named after the
        seed and a fingerprint of the package's code.
    seed : int
        Seed of the generator.

    Returns
    -------
    ExampleData

    Examples
    --------
    >>> ex = example_data()                          # doctest: +SKIP
    >>> ex.tables().etablissements.shape             # doctest: +SKIP
    (3045, 49)
    """
    if folder is None:
        folder = Path(tempfile.gettempdir()) / f"gar-analysis-exemple-{seed}-{_code_fingerprint()}"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = ExampleData(folder / "data", folder / "processed")
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # notebooks run in parallel (nbval under xdist) build it once
        try:
            if not (folder / ".done").exists():
                from .build import build
                from .sample import generate

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    generate(out.data_dir, seed=seed)
                    build(out.data_dir, out.processed_dir)
                (folder / ".done").write_text("ok", encoding="utf-8")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out
