"""Statistical disclosure control: small counts are published as ``c``.

Any published count below :data:`gar_analysis.config.DISCLOSURE_THRESHOLD`
(default 5) is replaced by the marker ``c`` (*secret statistique*), and so is
any rate whose denominator is below the threshold. Zero is a count like any
other below the threshold: it is suppressed too (publishing "0" next to "c"
would let a reader tell the two apart).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from . import config
from .errors import ConfigError


def is_suppressed(value: object) -> bool:
    """Return True when a published cell is the suppression marker ``c``.

    Examples
    --------
    >>> is_suppressed("c"), is_suppressed(3), is_suppressed(None)
    (True, False, False)
    """
    return isinstance(value, str) and value == config.SUPPRESSED


def _threshold(threshold: int | None) -> int:
    """Return the validated threshold (an integer ≥ 3; default ``GAR_SEUIL_SECRET``) or raise ConfigError."""
    return config.disclosure_threshold(config.DISCLOSURE_THRESHOLD if threshold is None else threshold)


def _small(series: pd.Series, threshold: int) -> pd.Series:
    """Mask of numeric cells below the threshold (already-suppressed cells included)."""
    num = pd.to_numeric(series.where(~series.map(is_suppressed)), errors="coerce")
    small = num.notna() & (num < threshold)
    return small | series.map(is_suppressed)


def suppress(df: pd.DataFrame, count_cols: Iterable[str], *, rate_cols: Iterable[str] | None = None,
             denominators: Mapping[str, str] | None = None, threshold: int | None = None,
             implied: Iterable[str] | bool = False) -> pd.DataFrame:
    """Return a copy of ``df`` with small counts and fragile rates replaced by ``c``.

    Parameters
    ----------
    df : pandas.DataFrame
        Table to publish.
    count_cols : iterable of str
        Count columns: a value below the threshold becomes ``c``.
    rate_cols : iterable of str, optional
        Rate (or ratio) columns: a value becomes ``c`` when its denominator is
        below the threshold (or suppressed). Each needs an entry in ``denominators``.
    denominators : mapping of str to str, optional
        Rate column → its denominator column. The denominator may also be a
        column not listed in ``count_cols`` (it is then read, not suppressed).
    threshold : int, optional
        Suppression threshold (default :data:`config.DISCLOSURE_THRESHOLD`).
    implied : iterable of str or bool, optional
        Rate columns (True: all of them) that are a count divided by their denominator:
        they are also suppressed when that implied count (rate × denominator) is below the
        threshold — otherwise a published share and its published denominator would give
        back a suppressed count (60 % of 5 schools = 3).

    Returns
    -------
    pandas.DataFrame
        A copy; the touched columns become ``object`` dtype when a cell is suppressed.

    Raises
    ------
    ConfigError
        When a column is missing or a rate has no denominator.

    Examples
    --------
    >>> df = pd.DataFrame({"n": [2, 40], "inscrits": [1, 30], "part": [0.5, 0.75]})
    >>> suppress(df, ["n", "inscrits"], rate_cols=["part"], denominators={"part": "n"}).values.tolist()
    [['c', 'c', 'c'], [40, 30, 0.75]]
    """
    t = _threshold(threshold)
    count_cols = list(count_cols)
    rate_cols = list(rate_cols or [])
    denominators = dict(denominators or {})
    missing = [c for c in [*count_cols, *rate_cols, *denominators.values()] if c not in df.columns]
    if missing:
        raise ConfigError(f"Colonnes absentes du tableau à publier : {', '.join(sorted(set(missing)))}.")
    no_denominator = [c for c in rate_cols if c not in denominators]
    if no_denominator:
        raise ConfigError(f"Taux sans dénominateur déclaré : {', '.join(no_denominator)}.")
    out = df.copy()
    masks = {c: _small(df[c], t) for c in set(count_cols) | set(denominators.values())}
    implied_cols = set(rate_cols) if implied is True else set(implied or [])
    for col in rate_cols:
        mask = masks[denominators[col]] | df[denominators[col]].isna()
        if col in implied_cols:
            rate = pd.to_numeric(df[col].where(~df[col].map(is_suppressed)), errors="coerce")
            den = pd.to_numeric(df[denominators[col]].where(~df[denominators[col]].map(is_suppressed)),
                                errors="coerce")
            count = (rate * den).round(6)
            mask |= count.notna() & (count < t)
        out[col] = _replace(out[col], mask)
    for col in count_cols:
        out[col] = _replace(out[col], masks[col])
    return out


def _replace(series: pd.Series, mask: pd.Series) -> pd.Series:
    if not mask.any():
        return series
    out = series.astype(object)
    out[mask.to_numpy()] = config.SUPPRESSED
    return out


def suppress_value(value: object, denominator: object = None, *, threshold: int | None = None) -> object:
    """Suppress one figure: a count below the threshold, or a rate on a small denominator.

    Parameters
    ----------
    value : object
        The count (when ``denominator`` is None) or the rate.
    denominator : object, optional
        The rate's denominator.
    threshold : int, optional
        Suppression threshold (default :data:`config.DISCLOSURE_THRESHOLD`).

    Examples
    --------
    >>> suppress_value(3), suppress_value(12), suppress_value(0.4, 4), suppress_value(0.4, 40)
    ('c', 12, 'c', 0.4)
    """
    t = _threshold(threshold)
    ref = value if denominator is None else denominator
    if is_suppressed(ref):
        return config.SUPPRESSED
    try:
        if ref is None or pd.isna(ref):
            return value if denominator is None else config.SUPPRESSED
    except (TypeError, ValueError):
        return value
    if isinstance(ref, (int, float, np.integer, np.floating)) and ref < t:
        return config.SUPPRESSED
    return value
