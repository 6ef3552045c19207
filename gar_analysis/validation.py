"""Validation of the data given to the models and comparisons: columns, missing values, numeric types.

Shared by :mod:`gar_analysis.models` and :mod:`gar_analysis.gaps`: every problem is a
:class:`~gar_analysis.errors.Problem` naming the row and the column, and the missing-value policy
(``missing="drop" | "raise"``) behaves as statsmodels' formula interface does.
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from .errors import DataError, Problem

_SOURCE = "données du modèle"
_MAX_ROWS_SHOWN = 20


def _line(label: object) -> int | None:
    """Index label as a line number when it is one (contract frames), else None."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return int(label)
    return None


def _problems_for(mask: pd.Series, column: str, message: str, source: str = _SOURCE) -> list[Problem]:
    rows = mask[mask].index[:_MAX_ROWS_SHOWN]
    out = [Problem(source, _line(r), column, message if _line(r) is not None else f"{message} (ligne d'index {r})")
           for r in rows]
    extra = int(mask.sum()) - len(rows)
    if extra > 0:
        out.append(Problem(source, None, column, f"… et {extra} autre(s) ligne(s) dans le même cas."))
    return out


def check_dataframe(data: object, source: str = _SOURCE) -> pd.DataFrame:
    """Refuse anything but a non-empty DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise DataError.single(source, f"un tableau pandas (DataFrame) est attendu, reçu : {type(data).__name__}.")
    if data.empty:
        raise DataError.single(source, "le tableau est vide : aucune ligne à analyser.")
    return data


def check_columns(data: pd.DataFrame, columns: list[str], source: str = _SOURCE) -> None:
    """Raise a DataError listing every column absent from ``data``."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        known = ", ".join(map(str, data.columns[:30]))
        raise DataError([Problem(source, None, c, f"colonne absente du tableau (colonnes disponibles : {known}).")
                         for c in missing])


def check_no_missing(data: pd.DataFrame, columns: list[str], source: str = _SOURCE) -> None:
    """Raise a DataError listing the missing values of ``columns``."""
    problems: list[Problem] = []
    for c in columns:
        mask = data[c].isna()
        if mask.any():
            problems += _problems_for(mask, c, "valeur manquante : complétez-la ou retirez la ligne avant l'analyse.",
                                      source)
    if problems:
        raise DataError(problems)


#: Values of the ``missing`` argument of the model and gap functions.
MISSING_POLICIES = ("drop", "raise")


class MissingValuesWarning(UserWarning):
    """Rows with missing values were left out of an analysis (``missing="drop"``)."""


def drop_missing(data: pd.DataFrame, columns: list, missing: str = "drop", *, unit: str | None = None,
                 source: str = _SOURCE) -> tuple[pd.DataFrame, dict | None]:
    """Apply the missing-value policy to the rows used by an analysis.

    As statsmodels' formula interface does (``missing="drop"``), rows with a
    missing value in any of ``columns`` are left out and reported; with
    ``missing="raise"``, a DataError lists them (line and column).

    Parameters
    ----------
    data : pandas.DataFrame
        Input rows (columns already checked).
    columns : list of str
        Columns the analysis uses (None entries are ignored).
    missing : {"drop", "raise"}
        Policy.
    unit : str, optional
        Unit or group column: the report counts the rows lost per unit.

    Returns
    -------
    (pandas.DataFrame, dict or None)
        The rows kept, and the report (None when nothing was dropped): ``n_dropped``,
        ``n_kept``, ``columns`` (missing values per column), ``unit``, ``units``
        (rows lost per unit, largest first) and ``text`` (a French sentence).

    Examples
    --------
    >>> d = pd.DataFrame({"u": ["a", "a", "b"], "x": [1.0, None, 3.0]})
    >>> kept, report = drop_missing(d, ["u", "x"], unit="u")
    >>> len(kept), report["n_dropped"], report["units"]
    (2, 1, {'a': 1})
    """
    if missing not in MISSING_POLICIES:
        raise DataError.single(source, f"valeur de « missing » inconnue : {missing!r} (« drop » pour retirer les "
                                       "lignes incomplètes, « raise » pour les signaler).")
    cols = [c for c in dict.fromkeys(columns) if c is not None]
    if missing == "raise":
        check_no_missing(data, cols, source)
        return data, None
    na = data[cols].isna()
    rows = na.any(axis=1).to_numpy()
    if not rows.any():
        return data, None
    if rows.all():
        raise DataError.single(source, f"toutes les lignes ({len(data)}) ont une valeur manquante dans "
                                       f"{', '.join(f'« {c} »' for c in cols)} : rien à analyser.")
    per_col = {c: int(v) for c, v in na.sum().items() if v}
    units: dict = {}
    if unit is not None:
        lost = data.loc[rows, unit].astype("string").fillna("(manquant)")
        units = {str(k): int(v) for k, v in lost.value_counts().items()}
    n = int(rows.sum())
    text = (f"{n} ligne(s) sur {len(data)} retirée(s) pour valeur manquante ("
            + ", ".join(f"{c} : {v}" for c, v in per_col.items()) + ")")
    if units:
        shown = list(units.items())[:10]
        text += f" ; « {unit} » concernés : " + ", ".join(f"{k} ({v})" for k, v in shown)
        if len(units) > len(shown):
            text += f" et {len(units) - len(shown)} autre(s)"
    text += ". Passez missing=\"raise\" pour les lister ligne par ligne."
    report = {"n_dropped": n, "n_kept": len(data) - n, "columns": per_col, "unit": unit, "units": units,
              "text": text}
    return data.loc[~rows], report


def _is_bool_like(s: pd.Series) -> bool:
    """Object or string columns holding only booleans (e.g. after a merge)."""
    if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
        return False
    values = set(s.dropna().unique().tolist())
    return bool(values) and values <= {True, False, "True", "False", "true", "false"}


def numeric_column(data: pd.DataFrame, column: str, source: str = _SOURCE) -> pd.Series:
    """Return a column as float64, refusing text that is not a number."""
    s = data[column]
    if pd.api.types.is_bool_dtype(s) or _is_bool_like(s):
        return s.map(lambda v: float(v in (True, "True", "true")) if pd.notna(v) else np.nan).astype("float64")
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    conv = pd.to_numeric(s, errors="coerce")
    bad = conv.isna() & s.notna()
    if bad.any():
        raise DataError(_problems_for(bad, column, "valeur non numérique.", source))
    return conv.astype("float64")
