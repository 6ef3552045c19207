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
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, Frozen, Problem

PROFILS = ("eleve", "enseignant", "documentaliste", "autre_personnel")
SUPPORTS = ("ordinateur", "tablette", "mobile")
TYPES_ACTEUR = ("academie", "region", "departement", "commune", "etablissement", "editeur", "ent")
TYPES_ACTION = ("formation", "webinaire", "accompagnement")
STATUTS_CONTRAT = ("en_attente", "signe", "clos")
NIVEAUX_BUDGET = ("region", "departement", "commune")
DEGRES = ("premier", "second", "tous")

# ASCII digits only: ``\d`` would accept Arabic-Indic and other Unicode digits.
_MONTH_RE = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_YEAR_RE = r"^[0-9]{4}-[0-9]{4}$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_INT_RE = r"^[+-]?[0-9]+(\.0)?$"
_FLOAT_RE = r"^[+-]?([0-9]+([.,][0-9]+)?|[.,][0-9]+)([eE][+-]?[0-9]+)?$"

#: Spellings of closed-list values found in real exports, mapped to the contract's value.
#: Keys are compared after :func:`value_key` (lower case, no accent, ``_`` for spaces and hyphens).
ALIASES: dict[str, dict[str, str]] = {
    "degre": {"1": "premier", "1er": "premier", "1er_degre": "premier", "premier_degre": "premier",
              "primaire": "premier", "2": "second", "2d": "second", "2nd": "second", "2nd_degre": "second",
              "second_degre": "second", "secondaire": "second", "1_2": "tous", "1er_et_2nd_degres": "tous",
              "premier_et_second": "tous", "premier_et_second_degres": "tous", "tout": "tous"},
    "statut": {"actif": "signe", "active": "signe", "signee": "signe", "en_cours": "signe",
               "valide": "signe", "validee": "signe", "brouillon": "en_attente", "attente": "en_attente",
               "a_signer": "en_attente", "en_cours_de_signature": "en_attente", "ferme": "clos",
               "cloture": "clos", "cloturee": "clos", "close": "clos", "termine": "clos", "terminee": "clos",
               "resilie": "clos", "expire": "clos"},
    "profil": {"eleves": "eleve", "enseignants": "enseignant", "prof": "enseignant", "professeur": "enseignant",
               "documentalistes": "documentaliste", "personnel": "autre_personnel",
               "autre": "autre_personnel", "autres_personnels": "autre_personnel"},
    "support": {"pc": "ordinateur", "poste_fixe": "ordinateur", "smartphone": "mobile", "telephone": "mobile"},
}


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
    empty_when : tuple of (str, str), optional
        ``(column, value)``: the cell may be empty on rows where that column has that value
        (``projet_ent`` of an EduGAR school, which has no ENT).
    """

    name: str
    kind: str
    description: str
    nullable: bool = False
    values: tuple[str, ...] | None = None
    empty_when: tuple[str, str] | None = None


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
         _c("projet_ent", "str", "Projet ENT auquel l'établissement appartient (vide pour un établissement "
            "EduGAR, qui n'a pas d'ENT).", empty_when=("mediacentre", "EduGAR"))),
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

#: Kinds of form problems (the ``regle`` of their findings).
FORM_KINDS = ("valeur_manquante", "valeur_hors_liste", "format_invalide")


def read_bytes(path: Path) -> bytes:
    """Read a file's bytes or raise a DataError saying why it cannot be read.

    A missing file, a directory, a broken symbolic link or a link loop and an
    unreadable file each give one problem naming the path.
    """
    path = Path(path)
    try:
        if not path.exists():
            if path.is_symlink():
                raise DataError.single(path, "lien symbolique cassé ou en boucle : le fichier est introuvable.")
            raise DataError.single(path, "fichier absent.")
        if path.is_dir():
            raise DataError.single(path, "c'est un dossier, pas un fichier CSV.")
        return path.read_bytes()
    except OSError as exc:
        raise DataError.single(path, f"fichier illisible ({exc.strerror or exc}).") from None


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
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError.single(
            path, f"encodage invalide (octet {raw[exc.start]:#x}) : le fichier doit être en UTF-8 "
            "(un export en latin-1/Windows-1252 est à ré-encoder).", line=line) from None
    if text.count("\x00") > max(16, len(text) // 100):
        raise DataError.single(path, "fichier binaire (octets nuls) : un fichier texte CSV est attendu.", line=1)
    return text


def check_separator(path: Path, header: str, expected: tuple[str, ...]) -> None:
    """Raise a DataError when the header is not ``;``-separated."""
    if ";" in header:
        return
    for sep, label in ((",", "virgule"), ("\t", "tabulation"), ("|", "barre verticale")):
        if sep in header and any(c in [h.strip().strip('"') for h in header.split(sep)] for c in expected):
            raise DataError.single(path, f"séparateur « ; » attendu, {label} trouvée dans l'en-tête.", line=1)


def unclosed_quote_line(text: str) -> int | None:
    """Return the line where a quote opens and is never closed, or None.

    Examples
    --------
    >>> unclosed_quote_line('a;b\\n1;"x\\n2;3\\n')
    2
    >>> unclosed_quote_line('a;b\\n1;"x\\ny";3\\n') is None
    True
    """
    if text.count('"') % 2 == 0:
        return None
    open_line, inside = None, False
    for i, line in enumerate(text.split("\n"), start=1):
        if line.count('"') % 2:
            inside = not inside
            if inside:
                open_line = i
    return open_line if inside else None


def _header_names(path: Path, header: str, unique: bool = True) -> list[str]:
    """Return the stripped header names; refuse duplicated names when ``unique``."""
    names = [h.strip() for h in next(csv.reader([header], delimiter=";"), [])]
    if not unique:
        return names
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise DataError.single(path, f"colonne « {name} » en double dans l'en-tête (colonnes {seen[name]} et "
                                   f"{i}, espaces ignorés) : renommer ou supprimer l'une des deux.",
                                   line=1, column=name or None)
        seen[name] = i
    return names


def read_raw_csv(path: Path, expected: tuple[str, ...] = (), *, unique_header: bool = True) -> pd.DataFrame:
    """Read a ``;``-separated UTF-8 CSV with every value as a string.

    Empty cells are empty strings; blank lines are skipped. The frame's index is
    the physical line number of each record (header = 1), blank lines and
    quoted line breaks counted. Records with the wrong number of fields are
    listed in ``attrs["problemes"]`` (``format_invalide``) and kept, cut or padded
    to the header's width, so that their keys can still be seen; a lenient
    :func:`validate` marks them invalid.

    Raises
    ------
    DataError
        File absent or unreadable, not UTF-8 text, empty, wrong separator,
        duplicated header name (unless ``unique_header`` is False: published
        layouts, where the first column wins), a quote never closed (naming its line).
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise DataError.single(path, "fichier vide : un en-tête et des lignes sont attendus.", line=1)
    header = text.split("\n", 1)[0].rstrip("\r")
    check_separator(path, header, expected)
    names = _header_names(path, header, unique_header)
    line = unclosed_quote_line(text)
    if line is not None:
        raise DataError.single(path, "guillemet ouvert et jamais refermé : la suite du fichier ne peut pas être "
                               "découpée en lignes.", line=line)
    simple = '"' not in text and "\x00" not in text and re.search(r"\n[ \t\r]*\n.", text) is None
    df = None
    if simple:
        try:
            df = pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False,
                             na_values=[], engine="pyarrow")
            df.index = pd.RangeIndex(2, len(df) + 2, name="ligne")
            df.attrs["problemes"] = Frozen()
        except Exception:  # ragged rows: the record-by-record reader says where
            df = None
    if df is None:
        df = _read_records(path, text, len(names))
    df.columns = names
    return df


def _read_records(path: Path, text: str, width: int) -> pd.DataFrame:
    """Read records one by one: exact physical lines, ragged records reported and left out."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(text), delimiter=";", strict=False)
    rows, lines, problems = [], [], []
    previous_end = 0
    for i, rec in enumerate(reader):
        start, previous_end = previous_end + 1, reader.line_num
        if i == 0 or not rec or (len(rec) == 1 and not rec[0].strip()):
            continue
        if len(rec) != width:
            problems.append(Problem(str(path), start, None,
                                    f"{len(rec)} champ(s) au lieu de {width} : ligne écartée (séparateur « ; » en "
                                    "trop ou manquant, ou valeur contenant un « ; » sans guillemets).",
                                    kind="format_invalide", value=f"{len(rec)} champs",
                                    expected=f"{width} champs"))
            rec = (rec + [""] * width)[:width]
        rows.append(rec)
        lines.append(start)
    df = pd.DataFrame(rows, columns=range(width), dtype=object).astype(str) if rows else \
        pd.DataFrame({i: pd.Series(dtype=str) for i in range(width)})
    df.index = pd.Index(lines, name="ligne", dtype="int64")
    df.attrs["problemes"] = Frozen(problems)
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


def value_key(value: str) -> str:
    """Return the comparison key of a closed-list value: lower case, no accent, ``_`` for blanks.

    Examples
    --------
    >>> value_key(" Signé "), value_key("En attente"), value_key("1er degré")
    ('signe', 'en_attente', '1er_degre')
    """
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def _convert(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """Convert a string column; return (converted, mask of unparsable non-empty cells).

    Numbers use ASCII digits only; ``2.000`` in a count (a thousands separator or
    a decimal?) is unparsable, and so are ``inf``, ``nan`` and values too large
    for a float (``1e400``). Blanks between thousands are accepted.
    """
    s = series.str.strip()
    empty = s == ""
    if kind in ("int", "float"):
        compact = s.str.replace(r"[ \u00a0\u202f]", "", regex=True)
        ok = compact.str.match(_INT_RE if kind == "int" else _FLOAT_RE)
        num = pd.to_numeric(compact.str.replace(",", ".", regex=False).where(ok & ~empty), errors="coerce")
        ok &= np.isfinite(num.fillna(0)) & (num.abs().fillna(0) < 2 ** 53)
        num = num.where(ok)
        bad = ~ok & ~empty
        return (num.astype("Int64") if kind == "int" else num.astype("float64")), bad
    if kind == "date":
        ok = s.str.match(_DATE_RE)
        dt = pd.to_datetime(s.where(ok & ~empty), format="%Y-%m-%d", errors="coerce")
        return dt, dt.isna() & ~empty
    if kind == "month":
        ok = s.str.match(_MONTH_RE)
        return s.where(ok & ~empty), ~ok & ~empty
    if kind == "school_year":
        ok = s.str.match(_YEAR_RE)
        parts = s.where(ok, "0-0").str.split("-", expand=True) if len(s) else pd.DataFrame({0: s, 1: s})
        ok &= pd.to_numeric(parts[1], errors="coerce") == pd.to_numeric(parts[0], errors="coerce") + 1
        return s.where(ok & ~empty), ~ok & ~empty
    bad = s.str.contains("\x00", regex=False) & ~empty
    return s.where(~empty & ~bad), bad


def _schema(fs: FileSpec):
    """Build the pandera schema that checks nullability and vocabularies (documentation, tests)."""
    import pandera.pandas as pa  # imported on first validation: keeps report kernels light

    columns = {}
    for col in fs.columns:
        checks = [pa.Check.isin(list(col.values))] if col.values else []
        columns[col.name] = pa.Column(nullable=col.nullable or col.empty_when is not None, checks=checks,
                                      required=True, coerce=False)
    return pa.DataFrameSchema(columns, strict=False)


def _cell_problems(path: Path, col: Col, kind: str, values: pd.Series, message, expected: str,
                   limit: int = 100_000) -> list[Problem]:
    return [Problem(str(path), int(line), col.name, message(value) if callable(message) else message,
                    kind=kind, value=str(value), expected=expected)
            for line, value in values.head(limit).items()]


def validate(df: pd.DataFrame, fs: FileSpec, path: Path, *, lenient: bool = False) -> pd.DataFrame:
    """Check and type a raw string frame against its specification.

    Parameters
    ----------
    df : pandas.DataFrame
        Frame from :func:`read_raw_csv` (strings, index = physical line).
    fs : FileSpec
        The file's specification.
    path : Path
        The file, for error messages.
    lenient : bool, optional
        Keep going on form problems: the offending cells become NA, every problem
        is listed in ``attrs["problemes"]`` (with its ``kind``) and the lines
        concerned in ``attrs["lignes_invalides"]``. Missing columns still raise.

    Returns
    -------
    pandas.DataFrame
        Typed frame with the contract's columns first, extra columns kept as strings.
        Closed-list values are mapped to the contract's spelling (:data:`ALIASES`).

    Raises
    ------
    DataError
        Missing columns; unless ``lenient``, every unparsable, empty or out-of-list cell.
    """
    missing = [c for c in fs.names if c not in df.columns]
    if missing:
        raise DataError([Problem(str(path), 1, c, "colonne obligatoire absente "
                                 f"(colonnes attendues : {', '.join(fs.names)}).", kind="fichier_illisible")
                         for c in missing])
    problems: list[Problem] = list(df.attrs.get("problemes", ()))
    ragged = df.index.isin([p.line for p in problems if p.line])  # already reported: no cell problems
    out = df.copy()
    out.attrs = {}
    invalid = ragged.copy()
    for col in fs.columns:
        raw = df[col.name].astype(str)
        stripped = raw.str.strip()
        empty = (stripped == "") & ~ragged
        if col.values:
            aliases = ALIASES.get(col.name, {})
            spelled = {v: aliases.get(value_key(v), value_key(v)) for v in stripped.unique().tolist()}
            mapped = stripped.map(spelled)  # one lookup per distinct value
            known = mapped.isin(col.values)
            outside = ~known & ~empty & ~ragged
            expected = ", ".join(col.values)
            problems += _cell_problems(path, col, "valeur_hors_liste", stripped[outside],
                                       lambda v, e=expected: f"valeur « {v} » inconnue : valeurs possibles {e}.",
                                       f"une valeur parmi {expected}")
            converted, bad = mapped.where(known), outside.to_numpy(bool).copy()
        else:
            converted, bad_s = _convert(raw, col.kind)
            bad = bad_s.to_numpy(bool).copy() & ~ragged
            label = _KIND_LABEL.get(col.kind, "un texte sans caractère nul")
            problems += _cell_problems(path, col, "format_invalide", stripped[bad],
                                       lambda v, lab=label: f"valeur « {v} » illisible : {lab} est attendu(e).",
                                       label)
        if not col.nullable:
            need = empty.to_numpy(bool).copy()
            if col.empty_when is not None and col.empty_when[0] in df.columns:
                other, value = col.empty_when
                need &= df[other].astype(str).str.strip().str.casefold().ne(value.casefold()).to_numpy(bool)
            if need.any():
                msg = ("valeur manquante : ce champ est obligatoire"
                       + (f" (vide permis seulement quand « {col.empty_when[0]} » vaut « {col.empty_when[1]} »)."
                          if col.empty_when else "."))
                problems += _cell_problems(path, col, "valeur_manquante", stripped[need], msg,
                                           "une valeur non vide")
                bad = bad | need
        invalid |= bad
        out[col.name] = converted
    if problems and not lenient:
        problems.sort(key=lambda p: (p.line or 0, p.column or ""))
        raise DataError(problems)
    problems.sort(key=lambda p: (p.line or 0, p.column or ""))
    out.attrs["problemes"] = Frozen(problems)
    out.attrs["lignes_invalides"] = Frozen(sorted({int(x) for x in out.index[invalid]}
                                                  | {p.line for p in problems if p.line}))
    return out


def drop_invalid(df: pd.DataFrame) -> pd.DataFrame:
    """Return a leniently read frame without the lines that have a form problem (``attrs`` kept)."""
    lines = df.attrs.get("lignes_invalides", ())
    if not lines:
        return df
    attrs = dict(df.attrs)
    out = df.loc[~df.index.isin(list(lines))]
    out.attrs = attrs
    return out


def read_contract_file(data_dir: str | Path, name: str, *, lenient: bool = False) -> pd.DataFrame:
    """Read, check and type one contract file of a data directory.

    Parameters
    ----------
    data_dir : str or Path
        The data directory.
    name : str
        The file's contract name, e.g. ``"gar/acces"``.
    lenient : bool, optional
        Form problems do not raise (see :func:`validate`).

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
    if df.attrs.get("problemes") and not lenient:
        raise DataError(list(df.attrs["problemes"]))
    return validate(df, fs, path, lenient=lenient)


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
