"""Statistical disclosure control: small counts are published as ``c``.

What is suppressed is decided once (``docs/indicators.md``, section « Secret
statistique »): a count of people or of their acts (pupils, teachers, accédants,
accès, affectations) from 1 to :data:`gar_analysis.config.DISCLOSURE_THRESHOLD` − 1
is replaced by the marker ``c`` (*secret statistique*), and so is a rate built on
one (its denominator small, or the count it implies small). Zero is shown as zero:
it reveals no one. Counts of schools, conventions and actions are facts about
public institutions: they are shown, and so are rates on them — pass only the
people columns as ``count_cols``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
    """Mask of numeric cells from 1 to threshold − 1 (already-suppressed cells included; zero is shown)."""
    num = pd.to_numeric(series.where(~series.map(is_suppressed)), errors="coerce")
    small = num.notna() & (num > 0) & (num < threshold)
    return small | series.map(is_suppressed)


def suppress(df: pd.DataFrame, count_cols: Iterable[str], *, rate_cols: Iterable[str] | None = None,
             denominators: Mapping[str, str] | None = None, threshold: int | None = None,
             implied: Iterable[str] | bool = False, totals: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """Return a copy of ``df`` with small counts and fragile rates replaced by ``c``.

    Parameters
    ----------
    df : pandas.DataFrame
        Table to publish.
    count_cols : iterable of str
        Counts of people (or of their acts): a value from 1 to threshold − 1 becomes ``c``.
    rate_cols : iterable of str, optional
        Rate (or ratio) columns: a value becomes ``c`` when its denominator is a count
        of people that is suppressed. Each needs an entry in ``denominators``.
    denominators : mapping of str to str or tuple of str, optional
        Rate column → its denominator column. A denominator not listed in ``count_cols``
        (a count of schools) is read, not suppressed, and does not suppress its rate. A tuple
        names every column the rate goes with (hidden when any is): its denominator first.
    threshold : int, optional
        Suppression threshold (default :data:`config.DISCLOSURE_THRESHOLD`).
    implied : iterable of str or bool, optional
        Rate columns (True: all of them) that are a count divided by their denominator:
        they are also suppressed when that implied count of people (rate × denominator) is
        from 1 to threshold − 1 — otherwise a published share and its published denominator
        would give back a suppressed count (60 % of 5 = 3).
    totals : mapping of str to str or None, optional
        Count columns whose cells add up to a total published elsewhere (per group of the given
        column, or over the whole table for None): when a group has exactly one hidden cell, the
        smallest other non-zero cell is hidden too (secondary suppression), so that the hidden one
        cannot be recomputed as the total minus the others. Rates on a cell hidden this way go with it.

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
    >>> df = pd.DataFrame({"eleves": [2, 40, 0], "acces": [1, 30, 0], "part": [0.5, 0.75, np.nan]})
    >>> suppress(df, ["eleves", "acces"], rate_cols=["part"], denominators={"part": "eleves"}).values.tolist()
    [['c', 'c', 'c'], [40, 30, 0.75], [0, 0, nan]]
    """
    t = _threshold(threshold)
    count_cols = list(count_cols)
    rate_cols = list(rate_cols or [])
    denominators = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in (denominators or {}).items()}
    missing = [c for c in [*count_cols, *rate_cols, *(d for ds in denominators.values() for d in ds)]
               if c not in df.columns]
    if missing:
        raise ConfigError(f"Colonnes absentes du tableau à publier : {', '.join(sorted(set(missing)))}.")
    no_denominator = [c for c in rate_cols if c not in denominators]
    if no_denominator:
        raise ConfigError(f"Taux sans dénominateur déclaré : {', '.join(no_denominator)}.")
    out = df.copy()
    masks = {c: _small(df[c], t) for c in count_cols}
    for col, group in (totals or {}).items():
        masks[col] = _secondary(df[col], masks[col], df[group] if group else None)
    implied_cols = set(rate_cols) if implied is True else set(implied or [])
    for col in rate_cols:
        mask = pd.Series(False, index=df.index)
        for den in denominators[col]:
            mask |= masks[den] if den in masks else df[den].map(is_suppressed)
        if col in implied_cols:
            first = denominators[col][0]
            rate = pd.to_numeric(df[col].where(~df[col].map(is_suppressed)), errors="coerce")
            den = pd.to_numeric(df[first].where(~df[first].map(is_suppressed)), errors="coerce")
            count = (rate * den).round(6)
            mask |= count.notna() & (count > 0) & (count < t)
        out[col] = _replace(out[col], mask)
    for col in count_cols:
        out[col] = _replace(out[col], masks[col])
    return out


def _secondary(values: pd.Series, mask: pd.Series, groups: pd.Series | None) -> pd.Series:
    """Add, in each group holding exactly one hidden cell, the smallest other non-zero cell to the mask."""
    num = pd.to_numeric(values.where(~values.map(is_suppressed)), errors="coerce")
    out = mask.copy()
    keys = groups if groups is not None else pd.Series(0, index=values.index)
    for _, idx in keys.groupby(keys, sort=False).groups.items():
        hidden = out.loc[idx]
        if int(hidden.sum()) != 1:
            continue
        candidates = num.loc[idx][~hidden & (num.loc[idx] > 0)]
        if len(candidates):
            out.loc[candidates.idxmin()] = True
    return out


def _replace(series: pd.Series, mask: pd.Series) -> pd.Series:
    if not mask.any():
        return series
    out = series.astype(object)
    out[mask.to_numpy()] = config.SUPPRESSED
    return out


def suppress_value(value: object, denominator: object = None, *, threshold: int | None = None) -> object:
    """Suppress one figure: a count of people from 1 to threshold − 1, or a rate on one (zero is shown).

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
    >>> suppress_value(3), suppress_value(12), suppress_value(0.4, 4), suppress_value(0.4, 40), suppress_value(0)
    ('c', 12, 'c', 0.4, 0)
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
    if isinstance(ref, (int, float, np.integer, np.floating)) and 0 < ref < t:
        return config.SUPPRESSED
    return value


@dataclass(frozen=True)
class Spec:
    """What a table's columns are, for :func:`publish`.

    Parameters
    ----------
    people : tuple of str
        Counts of people or of their acts (suppressed from 1 to threshold − 1).
    rates : mapping of str to str
        Rate column → its denominator column.
    implied : tuple of str
        Rates that are a count of people divided by their denominator.
    totals : mapping of str to str or None
        People columns whose cells add up to a published total (see :func:`suppress`).
    """

    people: tuple[str, ...] = ()
    rates: Mapping[str, str] = field(default_factory=dict)
    implied: tuple[str, ...] = ()
    totals: Mapping[str, str | None] = field(default_factory=dict)


def with_spec(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Attach a disclosure spec to a table (``frame.attrs["disclosure"]``) and return it."""
    frame.attrs["disclosure"] = spec
    return frame


def publish(frame: pd.DataFrame, spec: Spec | None = None, *, threshold: int | None = None) -> pd.DataFrame:
    """Return a table safe to print: the one publish step of every page, digest and download.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table from the package (its spec in ``attrs["disclosure"]``) or any table with ``spec``.
    spec : Spec, optional
        What the columns are; default: the spec the producing function attached.
    threshold : int, optional
        Suppression threshold (default :data:`config.DISCLOSURE_THRESHOLD`).

    Raises
    ------
    ConfigError
        When the table carries no spec: an undeclared table is never published as it is.

    Examples
    --------
    >>> m = with_spec(pd.DataFrame({"mois": ["2024-01"], "acces": [3], "inscrits": [2]}), Spec(people=("acces",)))
    >>> publish(m).values.tolist()
    [['2024-01', 'c', 2]]
    """
    spec = spec if spec is not None else frame.attrs.get("disclosure")
    if not isinstance(spec, Spec):
        raise ConfigError("Tableau sans règle de secret statistique déclarée : il ne peut pas être publié tel quel.")
    out = suppress(frame, [c for c in spec.people if c in frame.columns],
                   rate_cols=[c for c in spec.rates if c in frame.columns],
                   denominators={k: v for k, v in spec.rates.items() if k in frame.columns},
                   threshold=threshold, implied=[c for c in spec.implied if c in frame.columns],
                   totals={k: v for k, v in spec.totals.items() if k in frame.columns and (v is None or v in frame.columns)})
    out.attrs["disclosure"] = spec
    return out
