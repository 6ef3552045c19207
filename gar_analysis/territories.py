"""Territorial codes, names and hierarchy: département → académie → région académique.

The reference table ``data/territoires.csv`` is derived from public files
(INSEE COG 2025 and the DEPP school geolocation file): the 101 départements,
30 académies and 18 régions académiques, with their official codes.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from .config import REFERENCE_DIR
from .errors import ConfigError

#: Historical académie labels and codes that now belong to another académie.
_HISTORICAL_ACADEMIES = {"caen": "70", "rouen": "70", "05": "70", "21": "70"}
#: Overseas collectivities attached to an académie in some files, outside the 101 départements.
OVERSEAS_COLLECTIVITIES = {"975", "977", "978", "986", "987", "988"}


@lru_cache(maxsize=1)
def departements() -> pd.DataFrame:
    """Return the 101 départements with their académie and région.

    Returns
    -------
    pandas.DataFrame
        Columns ``code_departement, nom_departement, code_academie, nom_academie,
        code_region, nom_region`` (codes as strings: ``"01"``, ``"2A"``, ``"971"``).
    """
    return pd.read_csv(REFERENCE_DIR / "territoires.csv", sep=";", dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def academies() -> pd.DataFrame:
    """Return the 30 académies with their région académique."""
    cols = ["code_academie", "nom_academie", "code_region", "nom_region"]
    return departements()[cols].drop_duplicates("code_academie").sort_values("code_academie").reset_index(drop=True)


@lru_cache(maxsize=1)
def regions() -> pd.DataFrame:
    """Return the 18 régions (académiques and territorial, same codes)."""
    return departements()[["code_region", "nom_region"]].drop_duplicates().sort_values("code_region").reset_index(drop=True)


def slug(text: str) -> str:
    """Fold a label to lower-case ASCII words separated by single spaces.

    Examples
    --------
    >>> slug("ORLEANS_TOURS")
    'orleans tours'
    >>> slug("Orléans-Tours")
    'orleans tours'
    """
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", " ", text.lower())
    return text.strip()


def normalize_departement(code: object) -> str | None:
    """Normalise a département code as the register writes it.

    ``"035"``, ``"35"`` and ``35`` give ``"35"``; ``"02A"`` gives ``"2A"``;
    ``"971"`` stays ``"971"``; ``"1"`` gives ``"01"``. Empty input gives None.

    Examples
    --------
    >>> [normalize_departement(c) for c in ["035", "35", 1, "02B", "971", "976"]]
    ['35', '35', '01', '2B', '971', '976']
    """
    if code is None or (isinstance(code, float) and pd.isna(code)):
        return None
    text = str(code).strip().upper()
    if text.endswith(".0"):
        text = text[:-2]
    if not text or text in {"NAN", "NONE", "NA"}:
        return None
    if len(text) == 3 and text.startswith("0"):
        text = text[1:]
    if len(text) == 1:
        text = "0" + text
    return text


@lru_cache(maxsize=1)
def _academie_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for row in academies().itertuples():
        lookup[slug(row.nom_academie)] = row.code_academie
        lookup[row.code_academie] = row.code_academie
        lookup[str(int(row.code_academie))] = row.code_academie
    lookup.update({"reunion": "28", "la reunion": "28", "aix marseille": "02",
                   "nancy metz": "12", "orleans tours": "18", "clermont ferrand": "06"})
    lookup.update(_HISTORICAL_ACADEMIES)
    return lookup


def academie_code(label: object) -> str | None:
    """Map an académie label or code from any source to its current code.

    Accents, case, underscores and hyphens are ignored; historical labels
    (CAEN, ROUEN) map to Normandie (``"70"``). Unknown labels give None.

    Examples
    --------
    >>> [academie_code(x) for x in ["RENNES", "Orléans-Tours", "LA_REUNION", "CAEN", "14", 2]]
    ['14', '18', '28', '70', '14', '02']
    """
    if label is None or (isinstance(label, float) and pd.isna(label)):
        return None
    text = str(label).strip()
    if text.endswith(".0"):
        text = text[:-2]
    key = slug(text)
    lookup = _academie_lookup()
    if key in lookup:
        return lookup[key]
    if key.isdigit() and key.zfill(2) in lookup:
        return lookup[key.zfill(2)]
    return None


def academie_name(code: str) -> str:
    """Return the académie's name for its code (the code itself when unknown)."""
    names = dict(zip(academies().code_academie, academies().nom_academie))
    return names.get(code, code)


#: Académies named with an article (« académie de la Guyane »); the others take none.
_ACADEMIE_ARTICLES = {"Guadeloupe": "la ", "Guyane": "la ", "Martinique": "la "}


def academie_label(code: str, *, capitalize: bool = False) -> str:
    """Return « académie de Rennes », « académie d'Amiens », « académie de la Guyane » for a code (or a name).

    French elision before a vowel and the article of the overseas académies, as
    the ministry writes them; ``capitalize`` starts with « Académie ».
    """
    name = academie_name(str(code))
    article = _ACADEMIE_ARTICLES.get(name, "")
    de = "d'" if not article and name[:1].upper() in "AEIOUYÀÂÉÈÊÎÏÔÛ" else "de "
    label = f"académie {de}{article}{name}"
    return "A" + label[1:] if capitalize else label


def departement_name(code: str) -> str:
    """Return the département's name for its code (the code itself when unknown)."""
    d = departements()
    return dict(zip(d.code_departement, d.nom_departement)).get(code, code)


def region_name(code: str) -> str:
    """Return the région's name for its code (the code itself when unknown)."""
    r = regions()
    return dict(zip(r.code_region, r.nom_region)).get(code, code)


@dataclass(frozen=True)
class Audience:
    """A decision-maker audience: whose report it is and which schools it reads.

    Parameters
    ----------
    key : str
        Audience key (``academie``…), as in ``notebooks.csv`` and the command line.
    label : str
        French name of the reader.
    level : str
        Column of the territory code in school-level tables (``national`` for the whole country,
        ``editeur`` for a publisher).
    funded_level : str or None
        School level the reader funds and decides on (``lycee`` for a conseil régional,
        ``college`` for a conseil départemental); None: every school of the territory.
    dashboard_unit : str or None
        Sub-unit of the dashboard's side-by-side tables and charts.
    comparison_unit : str or None
        Unit compared on the territorial-gaps page.
    model_groups : str or None
        Grouping column of the success-factor models (random intercepts, robust intervals).
    school_list : bool
        Whether the dashboard lists the territory's schools.
    """

    key: str
    label: str
    level: str
    funded_level: str | None = None
    dashboard_unit: str | None = None
    comparison_unit: str | None = None
    model_groups: str | None = None
    school_list: bool = False

    @property
    def private(self) -> bool:
        """Whether its pages go to their reader alone (a publisher): never in the portal or a shared channel."""
        return self.level == "editeur"

    @property
    def territorial(self) -> bool:
        """Whether the audience reads a territory of schools (every audience but ``editeur``)."""
        return self.level != "editeur"

    def scope(self, df: pd.DataFrame, code: object) -> pd.DataFrame:
        """Return the rows of a school-level table inside the territory and the reader's scope.

        Rows are kept by the territory column (``code_academie``…) and, for a local
        authority, by the school level it funds. Territory codes are taken as they are in
        the table: the build places each school by the register (see ``build``).
        """
        if not self.territorial:
            raise ConfigError(f"Audience sans territoire scolaire : {self.key!r}.")
        mask = pd.Series(True, index=df.index)
        if self.level != "national":
            mask &= df[self.level].astype("string").eq(str(code)).fillna(False)
        return df[mask.to_numpy()] if self.funded_level is None else self.reference(df[mask.to_numpy()])

    def reference(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return the national rows with the reader's scope (national lycées for a région…)."""
        if self.funded_level is None or "niveau" not in df.columns:
            return df
        return df[df["niveau"].astype("string").eq(self.funded_level).fillna(False).to_numpy()]


#: The audiences, in the order of the portal. Adding one = one entry here + rows in ``reporting/notebooks.csv``.
AUDIENCE_REGISTRY: dict[str, Audience] = {a.key: a for a in [
    Audience("national", "Ministère – vue nationale", "national", None, "code_academie", "code_academie",
             "code_academie"),
    Audience("region_academique", "Région académique", "code_region", None, "code_academie", "code_departement",
             "code_departement"),
    Audience("academie", "Académie", "code_academie", None, "code_departement", "code_departement",
             "code_departement"),
    Audience("region", "Conseil régional (lycées)", "code_region", "lycee", "code_departement", "uai",
             "code_departement", school_list=True),
    Audience("departement", "Conseil départemental (collèges)", "code_departement", "college", "secteur", "uai",
             "code_departement", school_list=True),
    Audience("editeur", "Éditeur", "editeur"),
]}

#: Audience → (territory level, reader's label): a read-only view of :data:`AUDIENCE_REGISTRY`.
AUDIENCES = {k: (a.level, a.label) for k, a in AUDIENCE_REGISTRY.items()}

#: Units of comparison: column → (singular, plural) French label.
UNIT_LABELS = {"code_academie": ("académie", "académies"), "code_departement": ("département", "départements"),
               "code_region": ("région", "régions"), "secteur": ("secteur", "secteurs"),
               "uai": ("établissement", "établissements")}


def is_private(audience: object) -> bool:
    """Whether pages of ``audience`` (a registry key) are private to their reader (:attr:`Audience.private`)."""
    a = AUDIENCE_REGISTRY.get(str(audience))
    return bool(a and a.private)


def get_audience(key: str, *, territorial: bool = False) -> Audience:
    """Return an audience of the registry, or raise a ConfigError listing the valid ones.

    Parameters
    ----------
    key : str
        Audience key.
    territorial : bool, optional
        Refuse the ``editeur`` audience (for pages that read a territory of schools).
    """
    if key not in AUDIENCE_REGISTRY:
        raise ConfigError(f"Audience inconnue : {key!r}. Valeurs possibles : {', '.join(AUDIENCE_REGISTRY)}.")
    aud = AUDIENCE_REGISTRY[key]
    if territorial and not aud.territorial:
        raise ConfigError(f"Audience sans territoire scolaire : {key!r}.")
    return aud


def unit_label(unit: str, *, plural: bool = True) -> str:
    """Return the French label of a unit column (« académies », « département »…)."""
    pair = UNIT_LABELS.get(unit, (unit, unit))
    return pair[1] if plural else pair[0]


def territory_codes(audience: str) -> list[str]:
    """Return the valid territory codes of an audience.

    Parameters
    ----------
    audience : str
        One of ``AUDIENCES`` except ``editeur`` (whose codes come from the catalogue).

    Returns
    -------
    list of str
        ``["FR"]`` for ``national``; otherwise the official codes.
    """
    level = get_audience(audience).level
    if level == "national":
        return ["FR"]
    if level == "editeur":
        raise ConfigError("Les codes éditeurs viennent du catalogue des ressources (gar/ressources.csv).")
    return sorted(departements()[level].unique().tolist())


def territory_name(audience: str, code: str) -> str:
    """Return a readable name for a territory of an audience."""
    level = AUDIENCES.get(audience, (None,))[0]
    if level == "national":
        return "France entière"
    if level == "code_academie":
        return academie_label(code)
    if level == "code_region" and audience == "region":
        return f"région {region_name(code)}"
    if level == "code_region":
        return f"région académique {region_name(code)}"
    if level == "code_departement":
        return f"{departement_name(code)} ({code})"
    return str(code)


#: Département codes by the article of their name (INSEE « type de nom en clair »); the others take « de »/« d' ».
_DEPARTEMENT_ARTICLES = {
    "du ": "14 15 18 25 29 30 32 39 45 46 56 59 62 63 67 68 69 81 83 90 94 95".split(),
    "de la ": "16 17 19 2A 2B 21 23 24 26 31 33 42 43 44 48 50 51 52 53 55 57 58 70 72 73 74 76 80 85 86 87 93 "
              "971 972 973".split(),
    "de l'": "01 02 03 07 09 10 11 12 27 34 36 38 60 61 89 91".split(),
    "des ": "04 05 06 08 13 22 40 64 65 66 78 79 88 92".split(),
}


def departement_label(code: str) -> str:
    """Return « Département d'Ille-et-Vilaine (35) », « Département du Nord (59) » for a code.

    Examples
    --------
    >>> [departement_label(c) for c in ["35", "59", "2A", "01", "75"]]  # doctest: +NORMALIZE_WHITESPACE
    ["Département d'Ille-et-Vilaine (35)", 'Département du Nord (59)', 'Département de la Corse-du-Sud (2A)',
     "Département de l'Ain (01)", 'Département de Paris (75)']
    """
    name = departement_name(code)
    article = next((a for a, codes in _DEPARTEMENT_ARTICLES.items() if code in codes), None)
    if article is None:
        article = "d'" if name[:1].upper() in "AEIOUYÀÂÉÈÊÎÏÔÛ" else "de "
    return f"Département {article}{name} ({code})"


def territory_title(audience: str, code: str, name: str = "") -> str:
    """Return the portal's label of a territory: « Académie de Rennes », « Région académique Bretagne »…

    ``name`` is used for publishers (and for codes the reference table does not know).
    """
    level = AUDIENCES.get(audience, (None,))[0]
    if level == "national":
        return "France entière"
    if level == "code_academie":
        return academie_label(code, capitalize=True)
    if level == "code_region" and audience == "region":
        return f"Région {region_name(code)}"
    if level == "code_region":
        return f"Région académique {region_name(code)}"
    if level == "code_departement":
        return departement_label(code)
    return name or str(code)
