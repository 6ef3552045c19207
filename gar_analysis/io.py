"""Atomic writes (a file is either complete or absent, never half-written) and spreadsheet-safe CSV."""
from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

#: First characters that make a spreadsheet evaluate a text cell as a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: A plain number (sign, decimal point or comma, exponent): a spreadsheet reads it as a number, not a formula.
NUMBER_PATTERN = r"[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]+)?"
_NUMBER_RE = re.compile(NUMBER_PATTERN)


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; move it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600: give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write text to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame to Parquet atomically (index dropped)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _formula_like(value: object) -> bool:
    return (isinstance(value, str) and value[:1] != "" and value[:1] in FORMULA_PREFIXES
            and _NUMBER_RE.fullmatch(value) is None)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells cannot run as spreadsheet formulas.

    As OWASP recommends against CSV injection, a text cell (or column name)
    starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
    leading single quote: ``=HYPERLINK(…)`` is written ``'=HYPERLINK(…)``, which
    a spreadsheet shows as text. Numbers stay numbers: numeric columns are not
    touched, nor are numbers in mixed columns, nor text that is a plain number
    (``-1.5``, ``-1,5``), which a spreadsheet reads as a number, not a formula.
    The operation is idempotent (a neutralised cell starts with a quote).

    Every CSV the package writes goes through it (:func:`csv_text`). Files the
    package reads back (``gar/acces.csv`` from ``aggregate``, ``crm/*.csv`` from
    ``crm pull``) are loaded as written, quote included: no UAI or identifier
    legitimately starts with these characters, so a neutralised one stays
    visibly different from any real key and is reported by the quality checks
    (``uai_invalide``, ``ressource_inconnue``) instead of being silently
    turned back into a formula on the next export.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        A copy (the input is untouched); neutralised columns become ``object``.

    Examples
    --------
    >>> df = pd.DataFrame({"uai": ["=1+1", "0350001A", "-2+3"], "n": [-1.5, 2.0, 3.0], "t": ["-1.5", "@x", ""]})
    >>> spreadsheet_safe(df).values.tolist()
    [["'=1+1", -1.5, '-1.5'], ['0350001A', 2.0, "'@x"], ["'-2+3", 3.0, '']]
    """
    return _neutralise(frame)[0]


def _neutralise(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Return (spreadsheet-safe copy, whether a text cell holds a carriage return)."""
    out, has_cr = frame.copy(), False
    for i in range(frame.shape[1]):
        s = frame.iloc[:, i]
        if (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
                or pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s)):
            continue
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
        has_cr = has_cr or any(isinstance(u, str) and "\r" in u for u in uniques)
        flagged = np.flatnonzero([_formula_like(u) for u in uniques])
        if not len(flagged):
            continue
        mask = np.isin(codes, flagged)
        values = s.astype(object).to_numpy(copy=True)
        values[mask] = ["'" + v for v in values[mask]]
        out.isetitem(i, pd.Series(values, index=frame.index, dtype=object))
    if any(_formula_like(c) for c in frame.columns):
        out.columns = ["'" + c if _formula_like(c) else c for c in frame.columns]
    return out, has_cr


def spreadsheet_safe_sql(column: str) -> str:
    """Return the DuckDB SQL expression applying :func:`spreadsheet_safe` to one text column.

    Same prefixes, same number pattern: for tables written with ``COPY … TO``.
    """
    prefixes = ", ".join(f"chr({ord(c)})" for c in FORMULA_PREFIXES)
    return (f"CASE WHEN left({column}, 1) IN ({prefixes}) AND NOT regexp_full_match({column}, '{NUMBER_PATTERN}') "
            f"THEN chr(39) || {column} ELSE {column} END")


def csv_text(frame: pd.DataFrame, *, sep: str = ";") -> str:
    """Return ``frame`` as spreadsheet-safe CSV text (index dropped, one ``\\n`` per line).

    Every CSV writer of the package uses it (see :func:`spreadsheet_safe`). The csv
    module quotes a cell holding a line feed but not one holding a bare carriage
    return, which readers and spreadsheets take for a line break: when a text
    cell holds one, every text cell is quoted (numbers stay bare).
    """
    safe, has_cr = _neutralise(frame)
    quoting = csv.QUOTE_NONNUMERIC if has_cr else csv.QUOTE_MINIMAL
    return safe.to_csv(sep=sep, index=False, lineterminator="\n", quoting=quoting)
