"""The data contract: every file of a data directory, its columns, types and keys.

A *data directory* holds CSV files (``;``-separated, UTF-8, a BOM accepted,
dates ``YYYY-MM-DD``, months ``YYYY-MM``). Each file is described here once,
declaratively; :func:`read_contract_file` reads a file, checks it against its
specification with a pandera schema built from it, and returns a typed frame.
Bad input raises :class:`~gar_analysis.errors.DataError` listing every problem
with its file, physical line (header = 1) and column.

The loader checks *form* (columns present, values parsable, vocabularies);
*content* (negative counts, unknown UAIs, duplicates…) is the job of the
quality checks, which need such rows loaded to report them.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, Problem

PROFILS = ("eleve", "enseignant", "documentaliste", "autre_personnel")
SUPPORTS = ("ordinateur", "tablette", "mobile")
TYPES_ACTEUR = ("academie", "region", "departement", "commune", "etablissement", "editeur", "ent")
TYPES_ACTION = ("formation", "webinaire", "accompagnement")
STATUTS_CONTRAT = ("en_attente", "signe", "clos")
NIVEAUX_BUDGET = ("region", "departement", "commune")
DEGRES = ("premier", "second", "tous")

_MONTH_RE = r"^\d{4}-(0[1-9]|1[0-2])$"
_YEAR_RE = r"^\d{4}-\d{4}$"


@dataclass(frozen=True)
class Col:
    """One column of a contract file.

    Parameters
    ----------
    name : str
        Column name, as in the header.
    kind : str
        ``str``, ``int``, ``float``, ``date``, ``month`` or ``school_year``.
    description : str
        Meaning of the column (French, for the data-contract document).
    nullable : bool, optional
        Whether an empty cell is allowed.
    values : tuple of str, optional
        Allowed values (a vocabulary), None when free.
    """

    name: str
    kind: str
    description: str
    nullable: bool = False
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FileSpec:
    """A contract file: where it lives, its columns and its key."""

    path: str
    description: str
    columns: tuple[Col, ...]
    key: tuple[str, ...] = ()
    optional: bool = False
    notes: str = ""
    dtypes: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def names(self) -> list[str]:
        """Return the required column names."""
        return [c.name for c in self.columns]


def _c(name, kind, description, **kw) -> Col:
    return Col(name, kind, description, **kw)


UAI = _c("uai", "str", "Identifiant de l'établissement (UAI : 7 chiffres et une lettre de contrôle).")
MOIS = _c("mois", "month", "Mois (AAAA-MM).")
ID_RESSOURCE = _c("id_ressource", "str", "Identifiant de la ressource dans le catalogue (gar/ressources.csv).")
PROFIL = _c("profil", "str", "Profil de l'accédant.", values=PROFILS)

CONTRACT: dict[str, FileSpec] = {
    "gar/etablissements": FileSpec(
        "gar/etablissements.csv",
        "Établissements inscrits au GAR (une ligne par établissement inscrit).",
        (UAI,
         _c("date_inscription", "date", "Date d'inscription de l'établissement au GAR."),
         _c("mediacentre", "str", "Médiacentre utilisé : nom de l'ENT ou « EduGAR »."),
         _c("projet_ent", "str", "Projet ENT auquel l'établissement appartient.")),
        key=("uai",)),
    "gar/ressources": FileSpec(
        "gar/ressources.csv",
        "Catalogue des ressources numériques accessibles par le GAR.",
        (ID_RESSOURCE,
         _c("nom", "str", "Nom de la ressource."),
         _c("editeur", "str", "Éditeur (ou distributeur) de la ressource."),
         _c("type_ressource", "str", "Type de ressource (manuel, dictionnaire, banque de ressources…)."),
         _c("degre", "str", "Degré visé : premier, second ou tous.", values=DEGRES)),
        key=("id_ressource",)),
    "gar/abonnements": FileSpec(
        "gar/abonnements.csv",
        "Abonnements des établissements aux ressources (licences achetées).",
        (_c("id_abonnement", "str", "Identifiant de l'abonnement."),
         UAI, ID_RESSOURCE,
         _c("date_debut", "date", "Premier jour de validité."),
         _c("date_fin", "date", "Dernier jour de validité."),
         _c("licences", "int", "Nombre de licences."),
         _c("montant_ht", "float", "Montant hors taxes en euros.")),
        key=("id_abonnement",),
        notes="Un abonnement est actif un mois donné quand date_debut ≤ dernier jour du mois et date_fin ≥ premier jour."),
    "gar/affectations": FileSpec(
        "gar/affectations.csv",
        "Affectations de licences aux accédants, par mois, établissement, ressource et profil.",
        (MOIS, UAI, ID_RESSOURCE, PROFIL,
         _c("affectations", "int", "Nombre d'affectations (licences attribuées).")),
        key=("mois", "uai", "id_ressource", "profil"),
        notes="Seules les lignes de compte positif figurent : pas de ligne = aucune affectation."),
    "gar/accedants": FileSpec(
        "gar/accedants.csv",
        "Accédants (utilisateurs disposant d'un accès GAR) par année scolaire, établissement et profil.",
        (_c("annee_scolaire", "school_year", "Année scolaire (AAAA-AAAA)."), UAI, PROFIL,
         _c("accedants", "int", "Nombre d'accédants.")),
        key=("annee_scolaire", "uai", "profil")),
    "gar/acces": FileSpec(
        "gar/acces.csv",
        "Accès réussis (sessions GAR) à une ressource, par mois, établissement, ressource, profil et support.",
        (MOIS, UAI, ID_RESSOURCE, PROFIL,
         _c("support", "str", "Support utilisé.", values=SUPPORTS),
         _c("acces", "int", "Nombre d'accès.")),
        key=("mois", "uai", "id_ressource", "profil", "support"),
        notes="Seules les lignes de compte positif figurent : pas de ligne = aucun accès."),
    "gar/accedants_actifs": FileSpec(
        "gar/accedants_actifs.csv",
        "Accédants actifs distincts par mois, établissement et profil (agrégé des événements bruts).",
        (MOIS, UAI, PROFIL, _c("accedants_actifs", "int", "Nombre d'accédants distincts ayant au moins un accès dans le mois.")),
        key=("mois", "uai", "profil"), optional=True),
    "dnma/audience": FileSpec(
        "dnma/audience.csv",
        "Mesure d'audience des ENT (DNMA) par mois et établissement.",
        (MOIS, UAI,
         _c("ent", "str", "ENT mesuré."),
         _c("visites", "int", "Nombre de visites de l'ENT."),
         _c("visiteurs", "int", "Nombre de visiteurs distincts.")),
        key=("mois", "uai"), optional=True,
        notes="Déprécié : format inventé, lu seulement en l'absence de la mesure publiée "
              "(dnma/fr-en-dnma-par-uai-*.csv, voir DNMA_FILES). Une ligne pour chaque mois mesuré, zéros compris."),
    "crm/acteurs": FileSpec(
        "crm/acteurs.csv",
        "Acteurs de l'écosystème suivis dans le CRM.",
        (_c("id_acteur", "str", "Identifiant de l'acteur dans le CRM."),
         _c("type", "str", "Type d'acteur.", values=TYPES_ACTEUR),
         _c("nom", "str", "Nom de l'acteur."),
         _c("code", "str", "Code officiel : UAI, code INSEE (région, département, commune), code académie ou SIREN.", nullable=True)),
        key=("id_acteur",)),
    "crm/contrats": FileSpec(
        "crm/contrats.csv",
        "Contrats et conventions (par exemple convention GAR avec une collectivité).",
        (_c("id_contrat", "str", "Identifiant du contrat."),
         _c("id_acteur", "str", "Acteur signataire (crm/acteurs.csv)."),
         _c("objet", "str", "Objet du contrat (convention_gar, convention_ent, licence…)."),
         _c("date_signature", "date", "Date de signature (vide tant que non signé).", nullable=True),
         _c("date_debut", "date", "Début de validité.", nullable=True),
         _c("date_fin", "date", "Fin de validité.", nullable=True),
         _c("statut", "str", "Statut : en_attente, signe ou clos.", values=STATUTS_CONTRAT)),
        key=("id_contrat",)),
    "crm/contacts": FileSpec(
        "crm/contacts.csv",
        "Contacts et leurs rôles (référent GAR, DRANE, référent numérique…).",
        (_c("id_contact", "str", "Identifiant du contact (aucune donnée nominative)."),
         _c("id_acteur", "str", "Acteur de rattachement (crm/acteurs.csv)."),
         _c("role", "str", "Rôle du contact (referent_gar, drane, referent_numerique…).")),
        key=("id_contact",)),
    "crm/actions": FileSpec(
        "crm/actions.csv",
        "Actions d'accompagnement réalisées dans les établissements.",
        (_c("date", "date", "Date de l'action."), UAI,
         _c("type_action", "str", "Type d'action.", values=TYPES_ACTION)),
        key=("date", "uai", "type_action")),
    "budget/depenses": FileSpec(
        "budget/depenses.csv",
        "Dépenses de ressources numériques des collectivités, par année.",
        (_c("annee", "int", "Année civile."),
         _c("niveau", "str", "Niveau de collectivité.", values=NIVEAUX_BUDGET),
         _c("code", "str", "Code INSEE de la collectivité (région, département ou commune)."),
         _c("depenses_ressources_numeriques", "float", "Dépenses totales de ressources numériques (euros)."),
         _c("dont_gar", "float", "Dont ressources accessibles par le GAR (euros).")),
        key=("annee", "niveau", "code")),
    "referentiel/communes": FileSpec(
        "referentiel/communes.csv",
        "Population et superficie des communes (INSEE), pour la densité.",
        (_c("code_commune", "str", "Code INSEE de la commune."),
         _c("population", "int", "Population municipale."),
         _c("superficie_km2", "float", "Superficie en km².")),
        key=("code_commune",), optional=True),
}

#: ENT audience (DNMA) in its published weekly layout, read by :mod:`gar_analysis.sources.dnma`.
DNMA_FILES = {
    "dnma/profils": "dnma/fr-en-dnma-par-uai-profils.csv",
    "dnma/services": "dnma/fr-en-dnma-par-uai-services.csv",
    "dnma/profils_appareils": "dnma/fr-en-dnma-par-uai-profils-appareils.csv",
    "dnma/appareils": "dnma/fr-en-dnma-par-uai-appareils.csv",
}

#: Register and IPS files: published layouts, read by :mod:`gar_analysis.sources.referentiel`.
REFERENCE_FILES = {
    "referentiel/annuaire": "referentiel/annuaire.csv",
    "referentiel/ips_ecoles": "referentiel/ips_ecoles.csv",
    "referentiel/ips_colleges": "referentiel/ips_colleges.csv",
    "referentiel/ips_lycees": "referentiel/ips_lycees.csv",
}


def spec(name: str) -> FileSpec:
    """Return the specification of a contract file by name (``"gar/acces"``)."""
    try:
        return CONTRACT[name]
    except KeyError:
        raise KeyError(f"Fichier inconnu du contrat : {name!r}. Fichiers : {', '.join(CONTRACT)}.") from None


# --------------------------------------------------------------------------- reading

def read_text(path: Path) -> str:
    """Read a file as UTF-8 (BOM accepted) or raise a DataError naming the line.

    Parameters
    ----------
    path : Path
        File to read.

    Returns
    -------
    str
        The decoded text, BOM removed.
    """
    if not path.exists():
        raise DataError.single(path, "fichier absent.")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError.single(
            path, f"encodage invalide (octet {raw[exc.start]:#x}) : le fichier doit être en UTF-8 "
            "(un export en latin-1/Windows-1252 est à ré-encoder).", line=line) from None


def check_separator(path: Path, header: str, expected: tuple[str, ...]) -> None:
    """Raise a DataError when the header is not ``;``-separated."""
    if ";" in header:
        return
    for sep, label in ((",", "virgule"), ("\t", "tabulation"), ("|", "barre verticale")):
        if sep in header and any(c in header.split(sep) for c in expected):
            raise DataError.single(path, f"séparateur « ; » attendu, {label} trouvée dans l'en-tête.", line=1)


def read_raw_csv(path: Path, expected: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a ``;``-separated UTF-8 CSV with every value as a string.

    Empty cells are empty strings. The frame's index is the physical line
    number of each record (header = line 1).
    """
    text = read_text(path)
    header = text.split("\n", 1)[0]
    check_separator(path, header, expected)
    try:
        df = pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False,
                         na_values=[], engine="pyarrow")
    except Exception:  # pyarrow is strict on ragged rows: the C parser says where
        try:
            df = pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False, na_values=[])
        except pd.errors.ParserError as exc:
            raise DataError.single(path, f"CSV illisible : {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if '"' in text:  # quoted values may span lines: map records to physical lines
        df.index = pd.Index(record_start_lines(text)[: len(df)], name="ligne")
    else:
        df.index = pd.RangeIndex(2, len(df) + 2, name="ligne")
    return df


def record_start_lines(text: str, sep: str = ";") -> list[int]:
    """Return the physical line where each data record starts (header = line 1)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    starts, previous_end = [], 0
    for i, _ in enumerate(reader):
        if i:
            starts.append(previous_end + 1)
        previous_end = reader.line_num
    return starts


_KIND_LABEL = {"int": "un nombre entier", "float": "un nombre", "date": "une date AAAA-MM-JJ",
               "month": "un mois AAAA-MM", "school_year": "une année scolaire AAAA-AAAA"}


def _convert(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """Convert a string column; return (converted, mask of unparsable non-empty cells)."""
    s = series.str.strip()
    empty = s == ""
    if kind == "int":
        num = pd.to_numeric(s.str.replace(",", ".", regex=False).where(~empty), errors="coerce")
        bad = num.isna() & ~empty | (num.notna() & (num != np.floor(num.fillna(0))))
        return num.astype("Int64") if not bad.any() else num, bad
    if kind == "float":
        num = pd.to_numeric(s.str.replace(",", ".", regex=False).where(~empty), errors="coerce")
        return num.astype("float64"), num.isna() & ~empty
    if kind == "date":
        dt = pd.to_datetime(s.where(~empty), format="%Y-%m-%d", errors="coerce")
        return dt, dt.isna() & ~empty
    if kind == "month":
        ok = s.str.match(_MONTH_RE)
        return s.where(~empty), ~ok & ~empty
    if kind == "school_year":
        ok = s.str.match(_YEAR_RE)
        parts = s.where(ok, "0-0").str.split("-", expand=True)
        ok &= pd.to_numeric(parts[1], errors="coerce") == pd.to_numeric(parts[0], errors="coerce") + 1
        return s.where(~empty), ~ok & ~empty
    return s.where(~empty), pd.Series(False, index=s.index)


def _schema(fs: FileSpec):
    """Build the pandera schema that checks nullability and vocabularies."""
    import pandera.pandas as pa  # imported on first validation: keeps report kernels light

    columns = {}
    for col in fs.columns:
        checks = [pa.Check.isin(list(col.values))] if col.values else []
        columns[col.name] = pa.Column(nullable=col.nullable, checks=checks, required=True, coerce=False)
    return pa.DataFrameSchema(columns, strict=False)


def validate(df: pd.DataFrame, fs: FileSpec, path: Path) -> pd.DataFrame:
    """Check and type a raw string frame against its specification.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame from :func:`read_raw_csv` (strings, index = physical line).
    fs : FileSpec
        The file's specification.
    path : Path
        The file, for error messages.

    Returns
    -------
    pandas.DataFrame
        Typed frame with the contract's columns first, extra columns kept as strings.

    Raises
    ------
    DataError
        Listing every missing column and every unparsable, empty or out-of-vocabulary cell.
    """
    missing = [c for c in fs.names if c not in df.columns]
    if missing:
        raise DataError([Problem(str(path), 1, c, "colonne obligatoire absente "
                                 f"(colonnes attendues : {', '.join(fs.names)}).") for c in missing])
    problems: list[Problem] = []
    out = df.copy()
    for col in fs.columns:
        converted, bad = _convert(df[col.name], col.kind)
        for line, value in df.loc[bad, col.name].head(1000).items():
            problems.append(Problem(str(path), int(line), col.name,
                                    f"valeur « {value} » illisible : {_KIND_LABEL[col.kind]} est attendu(e)."))
        out[col.name] = converted
    from pandera.errors import SchemaErrors

    try:
        _schema(fs).validate(out[fs.names], lazy=True)
    except SchemaErrors as exc:
        fc = exc.failure_cases
        for row in fc.itertuples():
            if row.index is None or pd.isna(row.index):
                continue
            if row.check == "not_nullable":
                if df.at[row.index, row.column].strip() != "":
                    continue  # already reported as unparsable
                msg = "valeur manquante : ce champ est obligatoire."
            else:
                col = next(c for c in fs.columns if c.name == row.column)
                msg = (f"valeur « {row.failure_case} » inconnue : valeurs possibles "
                       f"{', '.join(col.values or ())}.")
            problems.append(Problem(str(path), int(row.index), str(row.column), msg))
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.column or ""))
        raise DataError(problems)
    return out


def read_contract_file(data_dir: str | Path, name: str) -> pd.DataFrame:
    """Read, check and type one contract file of a data directory.

    Parameters
    ----------
    data_dir : str or Path
        The data directory.
    name : str
        The file's contract name, e.g. ``"gar/acces"``.

    Returns
    -------
    pandas.DataFrame
        Typed frame whose index is the physical line number in the file.

    Raises
    ------
    DataError
        On a missing file, bad encoding or separator, missing columns or bad values.

    Examples
    --------
    >>> from gar_analysis.config import SAMPLE_DIR
    >>> acces = read_contract_file(SAMPLE_DIR, "gar/acces")  # doctest: +SKIP
    """
    fs = spec(name)
    path = Path(data_dir) / fs.path
    df = read_raw_csv(path, expected=tuple(fs.names))
    return validate(df, fs, path)


def present_files(data_dir: str | Path) -> list[str]:
    """Return the contract names (and register names) of the files present in a data directory."""
    data_dir = Path(data_dir)
    names = [n for n, fs in CONTRACT.items() if (data_dir / fs.path).exists()]
    names += [n for n, p in REFERENCE_FILES.items() if (data_dir / p).exists()]
    names += [n for n, p in DNMA_FILES.items() if (data_dir / p).exists()]
    return names


def write_contract_file(df: pd.DataFrame, data_dir: str | Path, name: str) -> Path:
    """Write a frame as a contract file (``;``, UTF-8, dates ISO), atomically.

    Only the contract's columns are written, in contract order, plus any extra
    columns present in ``df`` after them.
    """
    from .io import atomic_write_text, csv_text

    fs = spec(name)
    path = Path(data_dir) / fs.path
    cols = fs.names + [c for c in df.columns if c not in fs.names]
    frame = df[cols].copy()
    for col in fs.columns:
        if col.kind == "date" and pd.api.types.is_datetime64_any_dtype(frame[col.name]):
            frame[col.name] = frame[col.name].dt.strftime("%Y-%m-%d")
    atomic_write_text(path, csv_text(frame))
    return path
