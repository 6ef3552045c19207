"""Register, IPS and commune files in their real published layouts.

The ministry's open-data portal (Opendatasoft) exports a dataset either with
the field *labels* as headers (``Rentrée scolaire``, ``Nom de l'établissment``)
or with the field *ids* (``rentree_scolaire``, ``nom_de_l_etablissment``: the
labels slugified); Parquet copies use the ids. Every layout is described once,
declaratively (:data:`ANNUAIRE_LAYOUTS`, :data:`IPS_LAYOUTS`,
:data:`COMMUNES_LAYOUTS`): a mapping from our column to the published header(s).
Headers are compared through :func:`field_id`, so labels and ids both match.

Bad form (encoding, separator, missing column, unparsable number or date)
raises :class:`~gar_analysis.errors.DataError` naming file, line and column,
every problem at once. Values that are published but cannot be used (``NS``,
``ND``, unknown académie label, unknown sector…) become NA and are listed in
``df.attrs["problemes"]`` (a tuple of :class:`~gar_analysis.errors.Problem`),
for the quality checks to turn into findings: nothing is dropped silently.
"""
from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import territories
from ..contract import _FLOAT_RE, _INT_RE, check_separator, read_raw_csv, spec, validate
from ..errors import DataError, Frozen, Problem

__all__ = [
    "ANNUAIRE_COLUMNS", "IPS_COLUMNS", "COMMUNES_COLUMNS", "ANNUAIRE_LAYOUTS", "IPS_LAYOUTS",
    "COMMUNES_LAYOUTS", "Layout", "Problems", "field_id", "load_annuaire", "load_ips", "load_communes",
    "load_reference_file", "problems_of", "problems_frame", "read_table",
]

#: Columns of :func:`load_annuaire`, in order.
ANNUAIRE_COLUMNS = [
    "uai", "nom", "type_etablissement", "niveau", "secteur", "code_commune", "nom_commune",
    "code_departement", "code_academie", "code_region", "education_prioritaire", "latitude",
    "longitude", "etat", "nombre_eleves", "multi_lignes",
]
#: Columns of :func:`load_ips`, in order.
IPS_COLUMNS = [
    "uai", "rentree_scolaire", "niveau", "ips", "ips_ecart_type", "effectifs", "secteur",
    "code_departement", "code_academie",
]
#: Columns of :func:`load_communes`, in order.
COMMUNES_COLUMNS = ["code_commune", "population", "superficie_km2", "densite", "grille_densite"]

#: Published tokens that stand for a missing number, with their meaning (French).
MISSING_TOKENS = {
    "NS": "valeur non significative (NS) publiée",
    "ND": "valeur non disponible (ND) publiée",
    "NC": "valeur non communiquée (NC) publiée",
    "NONE": "valeur « None » publiée à la place d'un nombre",
    "NAN": "valeur « nan » publiée à la place d'un nombre",
}


class Problems(Frozen):
    """Immutable tuple of :class:`Problem` kept in ``DataFrame.attrs``.

    pandas deep-copies ``attrs`` on most operations; being immutable, this
    tuple returns itself instead, so a frame with thousands of problems stays fast.
    """


def problems_of(df: pd.DataFrame) -> tuple[Problem, ...]:
    """Return the non-blocking problems a loader attached to a frame (empty tuple if none)."""
    return tuple(df.attrs.get("problemes", ()))


def problems_frame(df_or_problems) -> pd.DataFrame:
    """Return the problems as a frame ``fichier, ligne, colonne, message``.

    Parameters
    ----------
    df_or_problems : pandas.DataFrame or iterable of Problem
        A loaded frame (its ``attrs["problemes"]``) or the problems themselves.
    """
    probs = problems_of(df_or_problems) if isinstance(df_or_problems, pd.DataFrame) else tuple(df_or_problems)
    out = pd.DataFrame([(p.file, p.line, p.column, p.message) for p in probs],
                       columns=["fichier", "ligne", "colonne", "message"])
    out["ligne"] = out["ligne"].astype("Int64")
    return out


# --------------------------------------------------------------------------- layouts

def field_id(label: object) -> str:
    """Return the portal's field id of a header: the label slugified.

    Examples
    --------
    >>> field_id("Nom de l'établissment")
    'nom_de_l_etablissment'
    >>> field_id("Ecart-type de l'IPS voie GT")
    'ecart_type_de_l_ips_voie_gt'
    >>> field_id("coordX_origine")
    'coordx_origine'
    """
    text = unicodedata.normalize("NFKD", str(label)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass(frozen=True)
class Layout:
    """One published layout of a file: our column → candidate headers.

    Parameters
    ----------
    name : str
        Layout name (e.g. ``"annuaire-2023"``), stored in ``df.attrs["layout"]``.
    required : dict
        Our column → published header(s); all must be present.
    optional : dict, optional
        Our column → published header(s); used when present.
    markers : tuple of str, optional
        Headers specific to this layout, to choose between layouts that all match.
    separators : tuple of str, optional
        Accepted field separators (first = expected).
    niveau : str, optional
        School level of the file (IPS layouts).
    """

    name: str
    required: dict[str, tuple[str, ...]]
    optional: dict[str, tuple[str, ...]] = field(default_factory=dict)
    markers: tuple[str, ...] = ()
    separators: tuple[str, ...] = (";",)
    niveau: str | None = None

    def all_headers(self) -> tuple[str, ...]:
        """Return every header this layout knows (for separator diagnostics)."""
        return tuple(h for cands in (*self.required.values(), *self.optional.values()) for h in cands)


def _t(*headers: str) -> tuple[str, ...]:
    return tuple(headers)


_ANNUAIRE_COMMON = {
    "uai": _t("Identifiant_de_l_etablissement"),
    "nom": _t("Nom_etablissement"),
    "type_etablissement": _t("Type_etablissement"),
    "statut": _t("Statut_public_prive"),
    "code_commune": _t("Code_commune"),
    "nom_commune": _t("Nom_commune"),
    "code_departement": _t("Code_departement"),
    "code_academie": _t("Code_academie"),
    "code_region": _t("Code_region"),
    "education_prioritaire": _t("Appartenance_Education_Prioritaire"),
    "latitude": _t("latitude"),
    "longitude": _t("longitude"),
    "etat": _t("etat"),
}
_ANNUAIRE_OPTIONAL = {
    "nombre_eleves": _t("Nombre_d_eleves"),
    "libelle_academie": _t("Libelle_academie"),
    "date_ouverture": _t("date_ouverture"),
    "date_maj_ligne": _t("date_maj_ligne"),
}

#: Layouts of ``fr-en-annuaire-education`` (labels or ids: headers compared by :func:`field_id`).
ANNUAIRE_LAYOUTS: tuple[Layout, ...] = (
    Layout("annuaire-2026", _ANNUAIRE_COMMON,
           {**_ANNUAIRE_OPTIONAL, "multi_lignes": _t("multi_uai")},
           markers=_t("coordX_origine", "coordY_origine", "epsg_origine", "multi_uai", "Code_postal")),
    Layout("annuaire-2023", _ANNUAIRE_COMMON,
           {**_ANNUAIRE_OPTIONAL, "multi_lignes": _t("etablissement_multi_lignes")},
           markers=_t("coordonnee_X", "coordonnee_Y", "epsg", "etablissement_multi_lignes", "Code postal")),
)

_IPS_ID = {
    "uai": _t("UAI"),
    "rentree_scolaire": _t("Rentrée scolaire"),
}
_IPS_CONTEXT = {
    "secteur": _t("Secteur"),
    "code_departement": _t("Code du département"),
    "code_academie": _t("Code de l'académie"),
    "academie": _t("Académie"),
}

#: Layouts of the DEPP IPS datasets, most specific first.
IPS_LAYOUTS: tuple[Layout, ...] = (
    # fr-en-ips-lycees-ap2022 (and fr-en-ips_lycees): IPS and effectifs by voie
    Layout("ips-lycees", {**_IPS_ID, "ips": _t("IPS Ensemble GT-PRO", "IPS ensemble GT PRO")},
           {**_IPS_CONTEXT,
            "effectifs": _t("Effectifs Ensemble GT-PRO", "Effectifs ensemble GT PRO"),
            "ips_gt": _t("IPS voie GT"), "ips_pro": _t("IPS voie PRO"),
            "effectifs_gt": _t("Effectifs voie GT"), "effectifs_pro": _t("Effectifs voie PRO"),
            "ecart_type_gt": _t("Ecart-type de l'IPS voie GT"),
            "ecart_type_pro": _t("Ecart-type de l'IPS voie PRO")},
           markers=_t("IPS voie GT", "type_de_lycee"), niveau="lycee"),
    # fr-en-ips-colleges-ap2022 (and fr-en-ips_colleges): effectifs, IPS and standard deviation
    Layout("ips-colleges", {**_IPS_ID, "ips": _t("IPS"), "ips_ecart_type": _t("Ecart-type de l'IPS")},
           {**_IPS_CONTEXT, "effectifs": _t("Effectifs")}, niveau="college"),
    # fr-en-ips_ecoles (2021) and fr-en-ips-ecoles-ap2022 (2022-2025, with benchmarks)
    Layout("ips-ecoles", {**_IPS_ID, "ips": _t("IPS")},
           {**_IPS_CONTEXT, "effectifs": _t("Effectifs")},
           markers=_t("IPS national", "Code région"), niveau="ecole"),
)

#: Layouts of commune population and area files.
COMMUNES_LAYOUTS: tuple[Layout, ...] = (
    # the data contract's referentiel/communes.csv
    Layout("communes-contrat", {"code_commune": _t("code_commune"), "population": _t("population"),
                                "superficie_km2": _t("superficie_km2")},
           {"densite": _t("densite"), "grille_densite": _t("grille_densite")}, separators=(";", ",")),
    # data.gouv.fr « Communes et villes de France » (communes-france-2025)
    Layout("communes-france", {"code_commune": _t("code_insee"), "population": _t("population"),
                               "superficie_km2": _t("superficie_km2")},
           {"densite": _t("densite"), "grille_densite": _t("grille_densite"), "type": _t("typecom")},
           separators=(",", ";")),
    # INSEE comparateur de territoires compiled with the COG 2024 (communes-2024-population)
    Layout("communes-insee-2024", {"code_commune": _t("insee_com"), "population": _t("population_2021"),
                                   "superficie_km2": _t("superficie_km2")},
           {"type": _t("commune_type")}, separators=(",", ";")),
)


# --------------------------------------------------------------------------- reading

def _decode(path: Path, raw: bytes) -> str:
    """Decode UTF-8 (BOM accepted); on failure name the line and the column."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw[: exc.start].count(b"\n") + 1
        prefix = raw[start: exc.start].decode("latin-1")
        header = raw.split(b"\n", 1)[0].decode("latin-1").lstrip("\ufeff\xef\xbb\xbf").rstrip("\r")
        sep = ";" if ";" in header else ("," if "," in header else ";")
        names = [h.strip().strip('"') for h in header.split(sep)]
        idx = prefix.count(sep)
        column = names[idx] if line > 1 and idx < len(names) else None
        raise DataError.single(
            path, f"encodage invalide (octet {raw[exc.start]:#x}) : le fichier doit être en UTF-8 "
            "(un export en latin-1/Windows-1252 est à ré-encoder en UTF-8).", line=line, column=column) from None


def read_table(path: str | Path, layouts: tuple[Layout, ...] = (), *, what: str = "") -> tuple[pd.DataFrame, Layout]:
    """Read a CSV or Parquet file as strings and find its layout.

    Parameters
    ----------
    path : str or Path
        CSV (``;`` or, where the layout allows it, ``,``) or Parquet file.
    layouts : tuple of Layout
        Candidate layouts; the first whose required headers are all present
        wins (ties broken by the number of marker headers present).
    what : str, optional
        Name of the dataset for messages (French).

    Returns
    -------
    (pandas.DataFrame, Layout)
        Every value as a string (missing → ``""``), columns renamed to their
        field id, index = physical line (header = 1; for Parquet, the line the
        record would have in a CSV export).

    Raises
    ------
    DataError
        Missing file, bad encoding or separator, unknown layout (listing the
        missing columns of the closest layout).
    """
    path = Path(path)
    if not path.exists():
        raise DataError.single(path, "fichier absent.")
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types on a corrupt file
            raise DataError.single(path, f"fichier Parquet illisible : {exc}") from None
        df = pd.DataFrame({c: _as_text(df[c]) for c in df.columns})
        df.index = pd.RangeIndex(2, len(df) + 2, name="ligne")
    else:
        text = _decode(path, path.read_bytes())
        if not text.strip():
            raise DataError.single(path, "fichier vide : un en-tête et des lignes sont attendus.", line=1)
        header = text.split("\n", 1)[0].rstrip("\r")
        seps = {s for lay in layouts for s in lay.separators} or {";"}
        sep = _pick_separator(header, layouts, seps)
        if sep is None:
            check_separator(path, header, tuple({h for lay in layouts for h in lay.all_headers()}
                                                | {field_id(h) for lay in layouts for h in lay.all_headers()}))
            sep = ";"
        if sep == ";":
            df = read_raw_csv(path, unique_header=False)
        else:
            try:
                df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[])
            except pd.errors.ParserError as exc:
                raise DataError.single(path, f"CSV illisible : {exc}") from None
            df.index = pd.RangeIndex(2, len(df) + 2, name="ligne")
    originals = {field_id(c): str(c).strip() for c in df.columns}
    df.columns = [field_id(c) for c in df.columns]
    df = df.loc[:, ~pd.Index(df.columns).duplicated()]
    df.attrs["headers"] = originals
    if not layouts:
        return df, None
    layout = _detect(path, df.columns, layouts, what)
    return df, layout


def _as_text(s: pd.Series) -> pd.Series:
    """Return a Parquet column as strings, missing values as ``""``."""
    if pd.api.types.is_string_dtype(s):
        return s.fillna("")
    missing = s.isna()
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        text = s.astype("float64").astype(str)
    else:
        text = s.astype(str)
    return text.where(~missing, "")


def _pick_separator(header: str, layouts: tuple[Layout, ...], seps: set[str]) -> str | None:
    best, score = None, 0
    known = {field_id(h) for lay in layouts for h in lay.all_headers()}
    for sep in sorted(seps, key=lambda s: s != ";"):
        cells = {field_id(c.strip().strip('"')) for c in header.split(sep)}
        n = len(cells & known)
        if n > score:
            best, score = sep, n
    if best is None and not layouts and ";" in header:
        return ";"
    return best


def _detect(path: Path, columns, layouts: tuple[Layout, ...], what: str) -> Layout:
    present = set(columns)
    matching, closest = [], None
    for lay in layouts:
        missing = [cands[0] for cands in lay.required.values() if not any(field_id(c) in present for c in cands)]
        if not missing:
            marks = sum(field_id(m) in present for m in lay.markers)
            matching.append((marks, -layouts.index(lay), lay))
        elif closest is None or len(missing) < len(closest[1]):
            closest = (lay, missing)
    if matching:
        return max(matching, key=lambda t: (t[0], t[1]))[2]
    lay, missing = closest
    label = f" ({what})" if what else ""
    raise DataError([Problem(str(path), 1, col,
                             f"colonne obligatoire absente : disposition de fichier non reconnue{label}. "
                             f"Disposition la plus proche : {lay.name} ; colonnes manquantes : "
                             f"{', '.join(missing)} (en-têtes en libellés ou en identifiants de champ acceptés).")
                     for col in missing])


def _col(df: pd.DataFrame, layout: Layout, key: str) -> tuple[pd.Series | None, str | None]:
    """Return (string series, original header) of our column ``key``, or (None, None)."""
    cands = layout.required.get(key) or layout.optional.get(key) or ()
    for c in cands:
        fid = field_id(c)
        if fid in df.columns:
            return df[fid].astype(str).str.strip(), df.attrs.get("headers", {}).get(fid, c)
    return None, None


# --------------------------------------------------------------------------- value parsing

@dataclass
class _Collector:
    """Collect blocking errors and non-blocking problems of one file."""

    path: Path
    errors: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lenient: bool = False

    def error(self, line, column, message, kind="format_invalide", value=None, expected=None):
        self.errors.append(Problem(str(self.path), int(line), column, message, kind=kind,
                                   value=None if value is None else str(value), expected=expected))

    def problem(self, line, column, message):
        self.problems.append(Problem(str(self.path), None if line is None else int(line), column, message))

    def raise_errors(self):
        if self.errors and not self.lenient:
            self.errors.sort(key=lambda p: (p.line or 0, p.column or ""))
            raise DataError(self.errors)


def _number(s: pd.Series, header: str, kind: str, col: _Collector, *, report_missing: bool = False,
            report_tokens: bool = True) -> pd.Series:
    """Parse numbers (decimal comma accepted); NS/ND → NA (reported); garbage → error."""
    text = s.fillna("").astype(str).str.strip().str.replace(r"[ \u00a0\u202f]", "", regex=True)
    upper = text.str.upper()
    token = upper.isin(list(MISSING_TOKENS))
    empty = text == ""
    # ASCII digits only, finite values: « inf », « 1e400 » or Arabic-Indic digits are unparsable
    # a count takes digits (and the « .0 » of a Parquet float): « 2.000 » is ambiguous (thousands or decimals)
    shaped = text.str.match(_FLOAT_RE if kind == "float" else _INT_RE)
    num = pd.to_numeric(text.str.replace(",", ".", regex=False).where(~empty & ~token & shaped), errors="coerce")
    num = num.where(np.isfinite(num.fillna(0)) & (num.abs().fillna(0) < 2 ** 53))
    bad = num.isna() & ~empty & ~token
    if kind == "int":
        bad |= num.notna() & (num != np.floor(num.fillna(0)))
    label = "un nombre entier" if kind == "int" else "un nombre (virgule ou point décimal)"
    for line, value in text[bad].head(1000).items():
        col.error(line, header, f"valeur « {value} » illisible : {label} est attendu.", value=value, expected=label)
    if report_tokens:
        for line, value in upper[token].items():
            col.problem(line, header, f"{MISSING_TOKENS[value]} : laissée vide (NA).")
    if report_missing:
        for line in text[empty].index:
            col.problem(line, header, "valeur absente : laissée vide (NA).")
    num = num.where(~bad)
    return num.round().astype("Int64") if kind == "int" else num.astype("float64")


def _string(s: pd.Series | None, index) -> pd.Series:
    if s is None:
        return pd.Series(pd.NA, index=index, dtype="string")
    s = s.astype("string").str.strip()
    return s.mask(s.isin(["", "None", "nan", "NaN"]))


_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _check_dates(s: pd.Series | None, header: str, col: _Collector) -> None:
    if s is None:
        return
    text = s.fillna("").astype(str).str.strip()
    empty = text == ""
    dt = pd.to_datetime(text.where(text.str.match(_DATE_RE), None), format="%Y-%m-%d", errors="coerce")
    for line, value in text[dt.isna() & ~empty].head(1000).items():
        col.error(line, header, f"valeur « {value} » illisible : une date AAAA-MM-JJ est attendue.",
                  value=value, expected="une date AAAA-MM-JJ")


def _departements(s: pd.Series | None, header: str | None, index, col: _Collector) -> pd.Series:
    if s is None:
        return pd.Series(pd.NA, index=index, dtype="string")
    known = set(territories.departements().code_departement)
    uniq = {v: territories.normalize_departement(v) for v in s.dropna().unique()}
    out = s.map(uniq).astype("string")
    outside = out.notna() & ~out.isin(known)
    for code, lines in out[outside].groupby(out[outside]).groups.items():
        extra = " (collectivité d'outre-mer)" if code in territories.OVERSEAS_COLLECTIVITIES else ""
        col.problem(lines[0], header, f"département « {code} »{extra} hors des 101 départements : "
                    f"{len(lines)} ligne(s) sans rattachement académique ni régional.")
    return out


def _academies(code: pd.Series | None, label: pd.Series | None, dep: pd.Series, headers: tuple,
               col: _Collector) -> pd.Series:
    """Académie code from a code column, else a label, else the département."""
    by_dep = dict(zip(territories.departements().code_departement, territories.departements().code_academie))
    out = pd.Series(pd.NA, index=dep.index, dtype="string")
    for src, header in ((code, headers[0]), (label, headers[1])):
        if src is None:
            continue
        uniq = {v: territories.academie_code(v) for v in src.dropna().unique() if str(v).strip()}
        mapped = src.map(uniq).astype("string")
        unknown = src.fillna("").astype(str).str.strip().ne("") & mapped.isna() & out.isna()
        for value, lines in src[unknown].groupby(src[unknown]).groups.items():
            col.problem(lines[0], header, f"académie « {value} » inconnue : {len(lines)} ligne(s) sans code académie "
                        "(rattachement par le département quand il est connu).")
        out = out.fillna(mapped)
    return out.fillna(dep.map(by_dep).astype("string"))


def _regions(s: pd.Series | None, dep: pd.Series) -> pd.Series:
    by_dep = dict(zip(territories.departements().code_departement, territories.departements().code_region))
    derived = dep.map(by_dep).astype("string")
    if s is None:
        return derived
    s = _string(s, dep.index)
    s = s.where(s.isna() | (s.str.len() != 1), "0" + s.fillna(""))
    return s.fillna(derived)


_SECTEURS = {"public": "public", "pu": "public", "prive": "prive", "pr": "prive",
             "prive sous contrat": "prive", "prive hors contrat": "prive"}


def _secteurs(s: pd.Series | None, header: str | None, index, col: _Collector, *, report_empty=True) -> pd.Series:
    if s is None:
        return pd.Series(pd.NA, index=index, dtype="string")
    uniq = {v: _SECTEURS.get(territories.slug(v)) for v in s.dropna().unique()}
    out = s.map(uniq).astype("string")
    empty = s.fillna("").astype(str).str.strip().eq("")
    bad = out.isna() & (~empty | report_empty)
    for value, lines in s[bad].groupby(s[bad]).groups.items():
        shown = value if value else "(vide)"
        col.problem(lines[0], header, f"secteur « {shown} » non reconnu (public ou privé attendu) : "
                    f"{len(lines)} ligne(s) sans secteur.")
    return out


def _finish(df: pd.DataFrame, col: _Collector, layout: Layout) -> pd.DataFrame:
    df.index.name = "ligne"
    errors = sorted(col.errors, key=lambda p: (p.line or 0, p.column or "")) if col.lenient else []
    df.attrs = {"problemes": Problems([*errors, *col.problems]), "layout": layout.name, "source": str(col.path),
                "lignes_invalides": Frozen(sorted({p.line for p in errors if p.line}))}
    return df


def _coordinates(ld: "_Load") -> None:
    """Parse ``latitude`` and ``longitude`` into ``ld.out``; report the lines without coordinates."""
    for key in ("latitude", "longitude"):
        s, h = ld.get(key)
        ld.out[key] = _number(s, h, "float", ld.col)
    missing = ld.out["latitude"].isna() | ld.out["longitude"].isna()
    if missing.any():
        ld.col.problem(ld.index[missing][0], ld.get("latitude")[1],
                       f"coordonnées absentes pour {int(missing.sum())} ligne(s) : établissement(s) non placé(s) "
                       "sur les cartes (compléter la géolocalisation).")


class _Load:
    """One layout-driven load: the raw table, its layout, the problems collected, the frame being built.

    Loaders read columns with :meth:`get` (``(series or None, header or None)``)
    or :meth:`text`, fill :attr:`out` (indexed by physical line), and return
    :meth:`finish`, which raises the collected errors first.
    """

    def __init__(self, path: str | Path, raw: pd.DataFrame, layout: Layout, lenient: bool = False):
        self.raw, self.layout = raw, layout
        self.col = _Collector(Path(path), lenient=lenient)
        self.col.errors += list(raw.attrs.get("problemes", ()))  # records with a wrong number of fields
        self.index = raw.index
        self.out = pd.DataFrame(index=self.index)

    @classmethod
    def read(cls, path: str | Path, layouts: tuple[Layout, ...], what: str, lenient: bool = False) -> "_Load":
        """Read ``path`` with :func:`read_table` (the first matching layout)."""
        raw, layout = read_table(path, layouts, what=what)
        return cls(path, raw, layout, lenient)

    def get(self, key: str) -> tuple[pd.Series | None, str | None]:
        return _col(self.raw, self.layout, key)

    def text(self, key: str) -> pd.Series:
        """Return column ``key`` as stripped strings (NA when empty or absent)."""
        return _string(self.get(key)[0], self.index)

    def finish(self, df: pd.DataFrame) -> pd.DataFrame:
        """Raise the collected errors, else return ``df`` with its index name and attributes."""
        self.col.raise_errors()
        return _finish(df, self.col, self.layout)


# --------------------------------------------------------------------------- annuaire

_NIVEAUX = {"ecole": "ecole", "college": "college", "lycee": "lycee"}


def load_annuaire(path: str | Path, *, lenient: bool = False) -> pd.DataFrame:
    """Load the school register ``fr-en-annuaire-education`` (2023 or 2026 layout, labels or ids).

    Parameters
    ----------
    path : str or Path
        CSV (``;``, UTF-8) or Parquet export of the register.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ANNUAIRE_COLUMNS`; index = physical line (header = 1).
        ``attrs["problemes"]``: values left NA (sector, département or académie
        not recognised); ``attrs["layout"]``: the layout found.

    Raises
    ------
    DataError
        Bad encoding or separator, unknown layout (listing the missing
        columns), unparsable coordinates, pupil counts or dates.

    Examples
    --------
    >>> ann = load_annuaire("fr-en-annuaire-education.csv")  # doctest: +SKIP
    >>> ann.groupby("niveau").size()                          # doctest: +SKIP
    """
    ld = _Load.read(path, ANNUAIRE_LAYOUTS, "annuaire de l'éducation", lenient)
    col, get, idx, out = ld.col, ld.get, ld.index, ld.out
    out["uai"] = ld.text("uai").str.upper()
    out["nom"] = _string(get("nom")[0], idx)
    type_s, _ = get("type_etablissement")
    out["type_etablissement"] = _string(type_s, idx)
    niv = {v: _NIVEAUX.get(territories.slug(v), "autre") for v in type_s.unique()}
    out["niveau"] = type_s.map(niv).astype("string")
    statut, h_statut = get("statut")
    out["secteur"] = _secteurs(statut, h_statut, idx, col, report_empty=False)
    # a school (not a service) without sector is worth a finding
    missing_sector = out["secteur"].isna() & out["niveau"].ne("autre") & statut.eq("")
    if missing_sector.any():
        col.problem(missing_sector[missing_sector].index[0], h_statut,
                    f"secteur vide pour {int(missing_sector.sum())} école(s) ou établissement(s) scolaire(s).")
    out["code_commune"] = _string(get("code_commune")[0], idx)
    out["nom_commune"] = _string(get("nom_commune")[0], idx)
    dep_s, h_dep = get("code_departement")
    out["code_departement"] = _departements(dep_s, h_dep, idx, col)
    aca_s, h_aca = get("code_academie")
    lib_s, h_lib = get("libelle_academie")
    out["code_academie"] = _academies(aca_s, lib_s, out["code_departement"], (h_aca, h_lib), col)
    out["code_region"] = _regions(get("code_region")[0], out["code_departement"])
    ep, h_ep = get("education_prioritaire")
    ep_norm = ep.str.upper().str.replace(" ", "", regex=False)
    ok = ep_norm.isin(["", "REP", "REP+"])
    for value, lines in ep[~ok].groupby(ep[~ok]).groups.items():
        col.problem(lines[0], h_ep, f"éducation prioritaire « {value} » non reconnue (REP, REP+ ou vide attendu) : "
                    f"{len(lines)} ligne(s) comptées hors éducation prioritaire.")
    out["education_prioritaire"] = ep_norm.where(ok, "").astype("string")
    _coordinates(ld)
    out["etat"] = _string(get("etat")[0], idx)
    s, h = get("nombre_eleves")
    out["nombre_eleves"] = (_number(s, h, "int", col, report_tokens=False) if s is not None
                            else pd.Series(pd.NA, index=idx, dtype="Int64"))
    s, _ = get("multi_lignes")
    out["multi_lignes"] = (s.str.lower().isin(["1", "1.0", "true", "oui", "o"]) if s is not None
                           else pd.Series(False, index=idx))
    for key in ("date_ouverture", "date_maj_ligne"):
        s, h = get(key)
        _check_dates(s, h, col)
    empty_uai = out["uai"].isna()
    for line in out.index[empty_uai][:1000]:
        col.error(line, get("uai")[1], "valeur manquante : l'identifiant UAI est obligatoire.",
                  kind="valeur_manquante", value="", expected="un UAI")
    return ld.finish(out[ANNUAIRE_COLUMNS])


# --------------------------------------------------------------------------- IPS

_YEAR_RE = re.compile(r"^([0-9]{4})\s*[-/_]\s*([0-9]{4})$")


def _rentrees(s: pd.Series, header: str, col: _Collector) -> pd.Series:
    """Normalise school years: ``2022-2023``, ``2022/2023``, ``2022`` (rentrée 2022) → ``2022-2023``."""
    mapping = {}
    for v in s.unique():
        text = str(v).strip()
        if text.endswith(".0"):
            text = text[:-2]
        m = _YEAR_RE.match(text)
        if m and int(m.group(2)) == int(m.group(1)) + 1:
            mapping[v] = f"{m.group(1)}-{m.group(2)}"
        elif re.fullmatch(r"[0-9]{4}", text):
            mapping[v] = f"{text}-{int(text) + 1}"
        else:
            mapping[v] = None
    out = s.map(mapping)
    for line, value in s[out.isna()].head(1000).items():
        col.error(line, header, f"valeur « {value} » illisible : une année scolaire AAAA-AAAA est attendue.",
                  value=value, expected="une année scolaire AAAA-AAAA")
    return out.astype("string")


def _pooled_sd(n1, m1, s1, n2, m2, s2, m):
    """Standard deviation of the union of two groups from their sizes, means and standard deviations."""
    var = (n1 * (s1 ** 2 + (m1 - m) ** 2) + n2 * (s2 ** 2 + (m2 - m) ** 2)) / (n1 + n2)
    return np.sqrt(var)


def load_ips(path: str | Path, niveau: str | None = None, *, lenient: bool = False) -> pd.DataFrame:
    """Load a DEPP IPS file (écoles, collèges or lycées; any year; labels or ids; CSV or Parquet).

    Parameters
    ----------
    path : str or Path
        The IPS export.
    niveau : {"ecole", "college", "lycee"}, optional
        Level of the file; by default inferred from its layout.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IPS_COLUMNS`; one row per school and rentrée; index =
        physical line. ``NS``/``ND`` values are NA and listed in
        ``attrs["problemes"]``. For lycées, ``ips`` is the whole-school IPS
        (GT and PRO), ``effectifs`` the whole-school count and
        ``ips_ecart_type`` the pooled standard deviation of the two voies.

    Raises
    ------
    DataError
        Bad encoding or separator, unknown layout, unparsable number or school year.
    """
    path = Path(path)
    layouts = IPS_LAYOUTS
    if niveau is not None:
        if niveau not in {"ecole", "college", "lycee"}:
            raise ValueError(f"niveau inconnu : {niveau!r} (ecole, college ou lycee).")
        # the expected level's layout first; a simpler layout (e.g. no standard deviation) still loads
        layouts = tuple(sorted(IPS_LAYOUTS, key=lambda lay: lay.niveau != niveau))
    ld = _Load.read(path, layouts, "indices de position sociale (IPS)", lenient)
    col, get, idx, out, layout = ld.col, ld.get, ld.index, ld.out, ld.layout
    if niveau is not None and layout.niveau != niveau and layout.niveau == "lycee":
        col.problem(1, None, f"disposition de fichier {layout.name} lue comme IPS de niveau {niveau} : "
                    "vérifier que le fichier est le bon.")
    out["uai"] = ld.text("uai").str.upper()
    s, h = get("rentree_scolaire")
    out["rentree_scolaire"] = _rentrees(s, h, col)
    out["niveau"] = pd.Series(niveau or layout.niveau, index=idx, dtype="string")
    s, h = get("ips")
    out["ips"] = _number(s, h, "float", col, report_missing=True)
    s, h = get("ips_ecart_type")
    out["ips_ecart_type"] = _number(s, h, "float", col) if s is not None else np.nan
    s, h = get("effectifs")
    out["effectifs"] = (_number(s, h, "int", col) if s is not None
                        else pd.Series(pd.NA, index=idx, dtype="Int64"))
    if layout.niveau == "lycee":
        parts = {}
        for key in ("ips_gt", "ips_pro", "ecart_type_gt", "ecart_type_pro", "effectifs_gt", "effectifs_pro"):
            s, h = get(key)
            parts[key] = (_number(s, h, "float", col, report_tokens=False) if s is not None
                          else pd.Series(np.nan, index=idx))
        n1, n2 = parts["effectifs_gt"].fillna(0), parts["effectifs_pro"].fillna(0)
        only_gt = n2.eq(0) & parts["ecart_type_gt"].notna()
        only_pro = n1.eq(0) & parts["ecart_type_pro"].notna()
        pooled = _pooled_sd(n1, parts["ips_gt"], parts["ecart_type_gt"], n2, parts["ips_pro"],
                            parts["ecart_type_pro"], out["ips"])
        sd = pooled.where(n1.gt(0) & n2.gt(0))
        sd = sd.where(~only_gt, parts["ecart_type_gt"]).where(~only_pro, parts["ecart_type_pro"])
        out["ips_ecart_type"] = sd.round(1).astype("float64")
        if out["effectifs"].isna().all() and (n1 + n2).gt(0).any():
            out["effectifs"] = (n1 + n2).where((n1 + n2).gt(0)).round().astype("Int64")
    sect, h_sect = get("secteur")
    out["secteur"] = _secteurs(sect, h_sect, idx, col)
    dep_s, h_dep = get("code_departement")
    out["code_departement"] = _departements(dep_s, h_dep, idx, col)
    aca_s, h_aca = get("code_academie")
    lib_s, h_lib = get("academie")
    out["code_academie"] = _academies(aca_s, lib_s, out["code_departement"], (h_aca, h_lib), col)
    empty_uai = out["uai"].isna()
    for line in out.index[empty_uai][:1000]:
        col.error(line, get("uai")[1], "valeur manquante : l'identifiant UAI est obligatoire.",
                  kind="valeur_manquante", value="", expected="un UAI")
    return ld.finish(out[IPS_COLUMNS])


# --------------------------------------------------------------------------- communes

_COMMUNE_TYPE_RANK = {"COM": 0, "ARM": 1, "COMA": 2, "COMD": 3}


def load_communes(path: str | Path, *, lenient: bool = False) -> pd.DataFrame:
    """Load commune population and area (contract file or real INSEE-based files).

    Parameters
    ----------
    path : str or Path
        ``referentiel/communes.csv`` of a data directory (``code_commune;population;superficie_km2``),
        the INSEE compilation ``communes.csv`` (``insee_com, population_2021, superficie_km2``) or
        data.gouv.fr's ``communes-france-2025.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMMUNES_COLUMNS` (``densite`` in inhabitants per km²,
        NA when the area is missing or zero; ``grille_densite`` the INSEE
        density class where the file has it), one row per commune code;
        index = physical line. When a code appears several times (a commune
        nouvelle and its commune déléguée share a code) the commune is kept and
        ``attrs["doublons"]`` counts the other lines.
    """
    ld = _Load.read(path, COMMUNES_LAYOUTS, "population des communes", lenient)
    col, get, idx, out = ld.col, ld.get, ld.index, ld.out
    code = ld.text("code_commune")
    out["code_commune"] = code.where(code.isna() | (code.str.len() != 4), "0" + code.fillna(""))
    s, h = get("population")
    out["population"] = _number(s, h, "int", col)
    s, h = get("superficie_km2")
    out["superficie_km2"] = _number(s, h, "float", col)
    s, h = get("densite")
    computed = (out["population"].astype("float64") / out["superficie_km2"].where(out["superficie_km2"] > 0))
    out["densite"] = computed if s is None else _number(s, h, "float", col).fillna(computed)
    out["grille_densite"] = _string(get("grille_densite")[0], idx)
    for line in out.index[out["code_commune"].isna()][:1000]:
        col.error(line, get("code_commune")[1], "valeur manquante : le code commune est obligatoire.",
                  kind="valeur_manquante", value="", expected="un code commune")
    col.raise_errors()
    typ, _ = get("type")
    rank = typ.map(_COMMUNE_TYPE_RANK).fillna(9) if typ is not None else pd.Series(0, index=idx)
    order = pd.DataFrame({"code": out["code_commune"], "rank": rank, "line": idx}, index=idx)
    keep = ~order.sort_values(["rank", "line"]).duplicated("code").reindex(idx)
    doublons = int((~keep).sum())
    out = ld.finish(out.loc[keep, COMMUNES_COLUMNS])
    out.attrs["doublons"] = doublons
    return out


# --------------------------------------------------------------------------- dispatch

_REFERENCE_LOADERS = {
    "referentiel/annuaire": (load_annuaire, {}),
    "referentiel/ips_ecoles": (load_ips, {"niveau": "ecole"}),
    "referentiel/ips_colleges": (load_ips, {"niveau": "college"}),
    "referentiel/ips_lycees": (load_ips, {"niveau": "lycee"}),
    "referentiel/communes": (load_communes, {}),
}


def load_reference_file(path: str | Path, name: str, *, lenient: bool = False) -> pd.DataFrame:
    """Load a register file by its contract name.

    Parameters
    ----------
    path : str or Path
        The file.
    name : str
        ``"referentiel/annuaire"``, ``"referentiel/ips_ecoles"``, ``"referentiel/ips_colleges"``,
        ``"referentiel/ips_lycees"`` or ``"referentiel/communes"``.

    Returns
    -------
    pandas.DataFrame
        The loader's frame (see :func:`load_annuaire`, :func:`load_ips`, :func:`load_communes`).
    """
    try:
        loader, kwargs = _REFERENCE_LOADERS[name]
    except KeyError:
        raise KeyError(f"Fichier de référence inconnu : {name!r}. "
                       f"Fichiers : {', '.join(_REFERENCE_LOADERS)}.") from None
    return loader(path, **kwargs, lenient=lenient)


def load_contract_communes(path: str | Path) -> pd.DataFrame:
    """Load ``referentiel/communes.csv`` strictly with the contract's schema (no density)."""
    path = Path(path)
    return validate(read_raw_csv(path, expected=tuple(spec("referentiel/communes").names)),
                    spec("referentiel/communes"), path)
