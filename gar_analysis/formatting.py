"""French number formatting: the one place where figures become text.

Every page, table, alt text, sentence and digest formats its numbers here, so that one
figure reads the same wherever it appears (``12 345,6``, ``12,3 %``, ``1,12``).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from babel.numbers import format_decimal, format_scientific

from . import config
from .disclosure import is_suppressed

LOCALE = "fr_FR"
#: French month names, January first.
#: Shown for a value that does not exist (a rate on an empty denominator…).
MISSING = "–"
#: Narrow no-break space, the French thousands separator and the space before % and €.
NNBSP = "\u202f"


def _is_missing(x: object) -> bool:
    if x is None or x is pd.NA:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def fmt_number(x: object, decimals: int = 0) -> str:
    """Format a number the French way: ``12 345,6`` (narrow no-break space, decimal comma).

    Parameters
    ----------
    x : number, ``"c"`` or missing
        Value to format; ``"c"`` is returned unchanged, a missing value gives ``–``.
    decimals : int, optional
        Number of decimals shown (fixed).

    Examples
    --------
    >>> fmt_number(12345.6, 1) == "12\\u202f345,6"
    True
    >>> fmt_number(0.5), fmt_number("c"), fmt_number(None)
    ('0', 'c', '–')
    """
    if is_suppressed(x):
        return config.SUPPRESSED
    if _is_missing(x):
        return MISSING
    if isinstance(x, str):
        try:
            x = float(x.replace(",", "."))
        except ValueError:
            return x
    value = float(x)
    if math.isinf(value):
        return MISSING
    if abs(value) >= 1e15:  # beyond decimal quantisation (e.g. an infinite odds ratio under separation)
        return format_scientific(value, format="0.##E0", locale=LOCALE)
    value = round(value, decimals)
    if value == 0:
        value = 0.0  # no "-0"
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return format_decimal(value, format=pattern, locale=LOCALE, decimal_quantization=True)


def fmt_percent(x: object, decimals: int = 1) -> str:
    """Format a share (0.123) as a French percentage (``12,3 %``, narrow no-break space).

    Examples
    --------
    >>> fmt_percent(0.1234) == "12,3\\u202f%"
    True
    >>> fmt_percent("c")
    'c'
    """
    if is_suppressed(x):
        return config.SUPPRESSED
    if _is_missing(x):
        return MISSING
    return f"{fmt_number(float(x) * 100, decimals)}{NNBSP}%"


def fmt_ratio(x: object) -> str:
    """Format a ratio to the national value (``1,12``)."""
    return fmt_number(x, 2)


def fmt_euros(x: object, decimals: int = 0) -> str:
    """Format an amount in euros (``12 345 €``)."""
    text = fmt_number(x, decimals)
    return text if text in (config.SUPPRESSED, MISSING) else f"{text}{NNBSP}€"


MONTH_NAMES = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"]


def fmt_month(month: str) -> str:
    """Format a ``YYYY-MM`` month in French (``septembre 2024``)."""
    m = re.match(r"^(\d{4})-(\d{2})$", str(month))
    if not m:
        return str(month)
    return f"{MONTH_NAMES[int(m.group(2)) - 1]} {m.group(1)}"




def fmt_decimal(x: object) -> str:
    """Format a decimal value of a table or a sentence: 2 decimals below 10, 1 from 10 (``7,42``, ``41,1``).

    Examples
    --------
    >>> fmt_decimal(7.4234), fmt_decimal(41.1), fmt_decimal("c")
    ('7,42', '41,1', 'c')
    """
    try:
        big = abs(float(x)) >= 10
    except (TypeError, ValueError):
        big = False
    return fmt_number(x, 1 if big else 2)


def fmt_sentence(x: float, decimals: int = 1, sign: bool = False) -> str:
    """Format a number for a sentence (``1 234,6``; ``+1 234,6`` with ``sign``; « non disponible » when missing).

    Examples
    --------
    >>> fmt_sentence(1234.56, 1, sign=True)
    '+1\u202f234,6'
    >>> fmt_sentence(-0.5, 1), fmt_sentence(float("nan"))
    ('−0,5', 'non disponible')
    """
    if x is None or is_suppressed(x) or not np.isfinite(float(x)):
        return config.SUPPRESSED if is_suppressed(x) else "non disponible"
    text = fmt_number(abs(float(x)), decimals)
    if sign:
        return ("+" if x >= 0 else "−") + text
    return ("−" if round(float(x), decimals) < 0 else "") + text


def fmt_kind(value: object, kind: str) -> str:
    """Format a value by an indicator's kind (``percent``, ``decimal``, ``days``, ``euros``, ``count``)."""
    if kind == "percent":
        return fmt_percent(value)
    if kind == "decimal":
        return fmt_number(value, 2)
    if kind == "days":
        return fmt_number(value, 0)
    if kind == "euros":
        return fmt_euros(value, 2)
    return fmt_number(value)


#: French labels of the codes found in the data, per column: the one mapping of tables, charts and lists.
CODE_LABELS: dict[str, dict[str, str]] = {
    "niveau": {"ecole": "école", "college": "collège", "lycee": "lycée"},
    "secteur": {"public": "public", "prive": "privé sous contrat"},
    "rural": {"True": "rural", "False": "urbain", "1": "rural", "0": "urbain", "rural": "rural", "urbain": "urbain"},
    "ep": {"True": "éducation prioritaire", "False": "hors éducation prioritaire"},
    "gravite": {"erreur": "erreur", "avertissement": "avertissement", "info": "information"},
    "profil": {"eleve": "élève", "enseignant": "enseignant", "documentaliste": "documentaliste",
               "autre_personnel": "autre personnel", "parent": "parent"},
    "position": {"au-dessus": "au-dessus", "conforme": "conforme", "en-dessous": "en dessous"},
    "support": {"ordinateur": "ordinateur", "tablette": "tablette", "mobile": "mobile"},
}


def code_label(column: str, value: object) -> object:
    """Return the French label of a code in ``column`` (``college`` → ``collège``), else the value unchanged.

    Audience keys (``academie``, ``region_academique``…) read as their label in an ``audience`` column.

    Examples
    --------
    >>> code_label("niveau", "college"), code_label("secteur", "prive"), code_label("nom", "college")
    ('collège', 'privé sous contrat', 'college')
    """
    if column == "audience":
        from .territories import AUDIENCES

        return AUDIENCES.get(str(value), (None, value))[1]
    mapping = CODE_LABELS.get(column)
    if mapping is None or _is_missing(value):
        return value
    return mapping.get(str(value), value)
