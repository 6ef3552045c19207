"""Publishers keyed by a stable identifier, never by a slug of their name.

A publisher's report (its file name, title and every figure) is chosen by ``id_editeur``:

1. the catalogue's own ``id_editeur`` column when it has one;
2. else an explicit mapping file kept beside the data, ``gar/editeurs.csv`` (``editeur;id_editeur``: every
   spelling of a publisher mapped to its identifier — the place to say that « DICO PLUS » is « Dico Plus »);
3. else an identifier derived from the spelling itself: its slug (``editions-nathan``), made unique with a
   short hash of the spelling when two spellings share a slug (« DICO PLUS » and « Dico Plus ») or when the
   name has no Latin letters to slug (« 学研 »). Two spellings are never merged by guesswork.

:func:`spelling_conflicts` lists the spellings that share a slug, so that the checks can report them and a
data manager can decide, in the mapping file, whether they are one publisher or two.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

import pandas as pd

from .errors import ConfigError
from .territories import slug

#: Mapping file of publishers' spellings to their identifier, beside the catalogue.
MAPPING_FILE = "gar/editeurs.csv"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


def _clean(name: object) -> str:
    return unicodedata.normalize("NFC", str(name)).strip() if name is not None and not pd.isna(name) else ""


def name_slug(name: object) -> str:
    """Return the hyphenated ASCII slug of a name ("" when it has no Latin letter or digit).

    Examples
    --------
    >>> name_slug("Éditions Nathan & Cie"), name_slug("学研")
    ('editions-nathan-cie', '')
    """
    return re.sub(r"\s+", "-", slug(_clean(name)))


def _hashed(base: str, name: str) -> str:
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{base}-{digest}" if base else f"editeur-{digest}"


def derive_ids(names: list[str]) -> dict[str, str]:
    """Give each distinct spelling a stable identifier (its slug, unique; hashed when ambiguous or empty).

    Examples
    --------
    >>> ids = derive_ids(["Dico Plus", "DICO PLUS", "Nathan", "学研", "ベネッセ"])
    >>> ids["Nathan"], ids["Dico Plus"] != ids["DICO PLUS"], ids["学研"] != ids["ベネッセ"]
    ('nathan', True, True)
    >>> all(i for i in ids.values())
    True
    """
    names = sorted({_clean(n) for n in names if _clean(n)})
    by_slug: dict[str, list[str]] = {}
    for n in names:
        by_slug.setdefault(name_slug(n), []).append(n)
    out = {}
    for base, spellings in by_slug.items():
        for n in spellings:
            out[n] = base if base and len(spellings) == 1 else _hashed(base, n)
    return out


def spelling_conflicts(names: list[str]) -> list[list[str]]:
    """Return the groups of distinct spellings that share a slug (one publisher written twice, or two publishers)."""
    by_slug: dict[str, set[str]] = {}
    for n in {_clean(n) for n in names if _clean(n)}:
        by_slug.setdefault(name_slug(n), set()).add(n)
    return [sorted(v) for k, v in sorted(by_slug.items()) if k and len(v) > 1]


def read_mapping(data_dir: str | Path) -> dict[str, str] | None:
    """Read ``gar/editeurs.csv`` (spelling → identifier) when present; None otherwise.

    Raises
    ------
    ConfigError
        A malformed file: missing columns, an empty or invalid identifier, one spelling mapped twice.
    """
    path = Path(data_dir) / MAPPING_FILE
    if not path.is_file():
        return None
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if not {"editeur", "id_editeur"} <= set(df.columns):
        raise ConfigError(f"{path} : colonnes « editeur » et « id_editeur » attendues (séparateur « ; »).")
    out: dict[str, str] = {}
    for line, (name, pid) in enumerate(zip(df["editeur"], df["id_editeur"]), start=2):
        name, pid = _clean(name), pid.strip()
        if not name or not _ID.match(pid):
            raise ConfigError(f"{path}, ligne {line} : identifiant d'éditeur « {pid} » invalide pour « {name} » "
                              "(minuscules, chiffres et tirets).")
        if out.get(name, pid) != pid:
            raise ConfigError(f"{path}, ligne {line} : « {name} » est déjà associé à « {out[name]} ».")
        out[name] = pid
    return out


def assign_ids(resources: pd.DataFrame, mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Return the catalogue with ``id_editeur`` (stable) and ``editeur`` (its display name).

    Parameters
    ----------
    resources : pandas.DataFrame
        The catalogue (``id_ressource``, ``editeur``, optionally ``id_editeur``).
    mapping : dict, optional
        Spelling → identifier (:func:`read_mapping`); spellings it does not list get a derived identifier.
    """
    out = resources.copy()
    names = out["editeur"].map(_clean) if "editeur" in out else pd.Series("", index=out.index)
    given = out["id_editeur"].fillna("").astype(str).str.strip() if "id_editeur" in out else \
        pd.Series("", index=out.index)
    derived = derive_ids(names.tolist())
    mapped = names.map(lambda n: (mapping or {}).get(n) or derived.get(n, ""))
    out["id_editeur"] = given.where(given != "", mapped)
    out["editeur"] = names
    return out


def publisher_names(resources: pd.DataFrame) -> dict[str, str]:
    """Return ``{id_editeur: display name}`` (the most frequent spelling of each identifier, ties by order)."""
    res = resources if "id_editeur" in resources.columns else assign_ids(resources)
    res = res[res["id_editeur"].astype(str) != ""]
    out = {}
    for pid, grp in res.groupby("id_editeur", sort=True):
        counts = grp["editeur"].value_counts()
        out[str(pid)] = str(sorted(counts.index, key=lambda n: (-counts[n], n))[0])
    return out


def resolve(resources: pd.DataFrame, wanted: str) -> str:
    """Return the identifier of the publisher a reader asked for: by identifier, exact spelling, or unique slug.

    Raises
    ------
    ConfigError
        Unknown publisher, or a slug shared by several publishers (the identifiers are listed).
    """
    res = resources if "id_editeur" in resources.columns else assign_ids(resources)
    wanted_clean = _clean(wanted)
    ids = set(res["id_editeur"].astype(str))
    if wanted_clean in ids:
        return wanted_clean
    exact = res.loc[res["editeur"] == wanted_clean, "id_editeur"].unique()
    if len(exact) == 1:
        return str(exact[0])
    s = name_slug(wanted_clean)
    by_slug = sorted({str(i) for n, i in zip(res["editeur"], res["id_editeur"]) if s and name_slug(n) == s})
    if len(by_slug) == 1:
        return by_slug[0]
    names = publisher_names(res)
    listing = ", ".join(f"{i} ({names[i]})" for i in sorted(names))
    if by_slug:
        raise ConfigError(f"Éditeur ambigu : « {wanted} » désigne plusieurs éditeurs ({', '.join(by_slug)}). "
                          "Indiquer l'identifiant, ou regrouper les graphies dans gar/editeurs.csv.")
    raise ConfigError(f"Éditeur inconnu : {wanted!r}. Éditeurs du catalogue : {listing}.")
