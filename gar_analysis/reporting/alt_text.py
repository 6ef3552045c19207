"""Text alternatives of charts, generated from their data (French, one or two sentences).

Each function says what the chart shows and its main message — the highest
and lowest units, the trend over time, the positions in a funnel plot — so that
a screen-reader user gets the same information as a sighted reader.
Suppressed (``c``) and missing values are left out of the extremes.
"""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..disclosure import is_suppressed
from ..formatting import fmt_decimal
from .display import fmt_month, fmt_number, fmt_percent

#: Relative change (in either direction) below which a trend is called stable.
STABLE_CHANGE = 0.05


def _formatter(kind: str) -> Callable[[object], str]:
    return {"percent": fmt_percent, "int": fmt_number, "decimal": lambda v: fmt_number(v, 1),
            "ratio": lambda v: fmt_number(v, 2)}[kind]


def _usable(df: pd.DataFrame, value_col: str) -> pd.DataFrame:
    keep = ~df[value_col].map(is_suppressed)
    out = df[keep].copy()
    out[value_col] = pd.to_numeric(out[value_col], errors="coerce")
    return out.dropna(subset=[value_col])


def describe_ranking(df: pd.DataFrame, label_col: str, value_col: str, *, what: str, unit_label: str,
                     kind: str = "int") -> str:
    """Describe a bar chart or map comparing units: highest and lowest.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit.
    label_col, value_col : str
        Column of the unit's name and of the value shown.
    what : str
        What is measured, e.g. ``"Part des établissements inscrits au GAR"``.
    unit_label : str
        The units compared, plural, e.g. ``"académie"`` → "par académie".
    kind : str, optional
        Format of the values: ``percent``, ``int``, ``decimal`` or ``ratio``.

    Examples
    --------
    >>> df = pd.DataFrame({"nom": ["Rennes", "Lyon", "Nice"], "v": [0.8, 0.5, 0.6]})
    >>> describe_ranking(df, "nom", "v", what="Part inscrite", unit_label="académie", kind="percent")
    'Part inscrite par académie (3 valeurs) : la plus élevée pour Rennes (80,0\\u202f%), la plus basse pour Lyon (50,0\\u202f%).'
    """
    fmt = _formatter(kind)
    data = _usable(df, value_col)
    hidden = len(df) - len(data)
    tail = f" ; {hidden} valeur{'s' if hidden > 1 else ''} non publiée{'s' if hidden > 1 else ''} (secret statistique)" \
        if hidden else ""
    if data.empty:
        return f"{what} par {unit_label} : aucune valeur publiable{tail}."
    if len(data) == 1:
        row = data.iloc[0]
        return f"{what} par {unit_label} : une seule valeur publiable, {row[label_col]} ({fmt(row[value_col])}){tail}."
    top = data.loc[data[value_col].idxmax()]
    low = data.loc[data[value_col].idxmin()]
    if top[value_col] == low[value_col]:
        return f"{what} par {unit_label} ({len(data)} valeurs) : même valeur partout, {fmt(top[value_col])}{tail}."
    return (f"{what} par {unit_label} ({len(data)} valeurs) : la plus élevée pour {top[label_col]} "
            f"({fmt(top[value_col])}), la plus basse pour {low[label_col]} ({fmt(low[value_col])}){tail}.")


def trend_direction(values: list[float], window: int = 3) -> tuple[str, float | None]:
    """Return (``hausse`` | ``baisse`` | ``stable``, relative change) of the last ``window`` vs the first.

    Examples
    --------
    >>> trend_direction([10, 10, 10, 20, 20, 20])
    ('hausse', 1.0)
    """
    vals = [float(v) for v in values]
    if len(vals) < 2:
        return "stable", None
    w = max(1, min(window, len(vals) // 2))
    first, last = sum(vals[:w]) / w, sum(vals[-w:]) / w
    if first == 0:
        return ("hausse", None) if last > 0 else ("stable", None)
    change = last / first - 1
    if abs(change) < STABLE_CHANGE:
        return "stable", change
    return ("hausse" if change > 0 else "baisse"), change


def _year_before(month: str) -> str:
    return f"{int(month[:4]) - 1:04d}{month[4:]}"


def describe_trend(df: pd.DataFrame, time_col: str, value_col: str, *, what: str, kind: str = "int") -> str:
    """Describe a monthly series: period, change on the same months a year apart, and peak.

    A trend compares like with like: the months of the last 12 months of the series with the
    same calendar months a year earlier (never the first autumn with the last summer). Counts
    are summed over those months; rates (``kind="percent"``) are averaged and compared in points.
    With less than a year between them, the text says there is not enough hindsight.

    Examples
    --------
    >>> months = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)]
    >>> df = pd.DataFrame({"mois": months, "acces": [100] * 12 + [150] * 12})
    >>> describe_trend(df, "mois", "acces", what="Accès mensuels")
    'Accès mensuels de janvier 2023 à décembre 2024 : en hausse de 50\u202f% sur les 12 derniers mois par rapport aux mêmes mois un an plus tôt. Maximum en janvier 2024 (150).'
    """
    fmt = _formatter(kind)
    data = _usable(df, value_col).sort_values(time_col)
    if data.empty:
        return f"{what} : aucune valeur publiable."
    start, end = fmt_month(data[time_col].iloc[0]), fmt_month(data[time_col].iloc[-1])
    peak = data.loc[pd.to_numeric(data[value_col]).idxmax()]
    tail = f" Maximum en {fmt_month(peak[time_col])} ({fmt(peak[value_col])})."
    if len(data) == 1:
        return f"{what} en {start} : {fmt(data[value_col].iloc[0])}."
    values = dict(zip(data[time_col].astype(str), pd.to_numeric(data[value_col]).astype(float)))
    months = sorted(values)
    recent = [m for m in months[-12:] if _year_before(m) in values]
    if not recent:
        return f"{what} de {start} à {end} : moins d'un an de recul, pas de comparaison des mêmes mois.{tail}"
    span = (f"sur les {len(recent)} derniers mois" if len(recent) > 1 else f"en {fmt_month(recent[0])}")
    span += " par rapport aux mêmes mois un an plus tôt"
    now = [values[m] for m in recent]
    before = [values[_year_before(m)] for m in recent]
    if kind == "percent":
        diff = sum(now) / len(now) - sum(before) / len(before)
        if abs(diff) < 0.005:
            return f"{what} de {start} à {end} : stable {span}.{tail}"
        return (f"{what} de {start} à {end} : en {'hausse' if diff > 0 else 'baisse'} de "
                f"{fmt_number(abs(diff) * 100, 1)} point(s) {span}.{tail}")
    direction, change = trend_direction([sum(before), sum(now)], 1)
    if direction == "stable":
        first = f"stable {span}"
    elif change is None:
        first = f"en {direction} {span}"
    else:
        first = f"en {direction} de {fmt_percent(abs(change), 0)} {span}"
    return f"{what} de {start} à {end} : {first}.{tail}"


def describe_effects(effects: pd.DataFrame) -> str:
    """Describe a forest plot from the table it draws (:func:`gar_analysis.models.effects_display`), by column name.

    Examples
    --------
    >>> t = pd.DataFrame({"Facteur": ["Référent GAR désigné"], "Rapport de cotes": [2.54],
    ...                   "IC 95 % bas": [2.10], "IC 95 % haut": [3.07], "p": ["< 0,001"]})
    >>> describe_effects(t)
    'Graphique en forêt des rapports de cotes estimés avec leurs intervalles à 95 %. Référent GAR désigné : 2,54 (de 2,10 à 3,07).'
    """
    estimate = next(c for c in effects.columns if c not in ("Facteur", "IC 95 % bas", "IC 95 % haut", "p"))
    parts = [f"{r['Facteur']} : {fmt_decimal(r[estimate])} (de {fmt_decimal(r['IC 95 % bas'])} à "
             f"{fmt_decimal(r['IC 95 % haut'])})." for _, r in effects.iterrows()]
    plural = {"Rapport de cotes": "rapports de cotes", "Rapport de taux": "rapports de taux"}.get(estimate, "effets")
    return f"Graphique en forêt des {plural} estimés avec leurs intervalles à 95 %. " + " ".join(parts)


def describe_shares(df: pd.DataFrame, label_col: str, value_col: str, *, what: str, max_items: int = 4) -> str:
    """Describe a composition (shares summing to about 1), largest first.

    Examples
    --------
    >>> df = pd.DataFrame({"support": ["mobile", "ordinateur"], "part": [0.25, 0.75]})
    >>> describe_shares(df, "support", "part", what="Accès par support")
    'Accès par support : ordinateur 75,0\\u202f%, mobile 25,0\\u202f%.'
    """
    data = _usable(df, value_col).sort_values(value_col, ascending=False)
    if data.empty:
        return f"{what} : aucune valeur publiable."
    parts = [f"{r[label_col]} {fmt_percent(r[value_col])}" for _, r in data.head(max_items).iterrows()]
    more = len(data) - max_items
    suffix = f", et {more} autre{'s' if more > 1 else ''}" if more > 0 else ""
    return f"{what} : {', '.join(parts)}{suffix}."


_POSITION_WORDS = {"au-dessus": "au-dessus des limites attendues", "en dessous": "en dessous des limites attendues"}


def describe_funnel(df: pd.DataFrame, label_col: str, position_col: str, *, what: str, unit_label: str,
                    max_names: int = 3) -> str:
    """Describe a funnel plot from each unit's position (``au-dessus``, ``dans``, ``en dessous``).

    Examples
    --------
    >>> df = pd.DataFrame({"nom": ["A", "B", "C", "D"], "position": ["au-dessus", "dans", "dans", "en dessous"]})
    >>> describe_funnel(df, "nom", "position", what="Part inscrite", unit_label="académies")
    'Part inscrite, graphique en entonnoir de 4 académies : 1 au-dessus des limites attendues (A), 1 en dessous des limites attendues (D), 2 dans la zone attendue.'
    """
    n = len(df)
    chunks = []
    for pos, words in _POSITION_WORDS.items():
        names = df.loc[df[position_col] == pos, label_col].astype(str).tolist()
        if names:
            shown = ", ".join(names[:max_names]) + (" …" if len(names) > max_names else "")
            chunks.append(f"{len(names)} {words} ({shown})")
    inside = int((~df[position_col].isin(list(_POSITION_WORDS))).sum())
    chunks.append(f"{inside} dans la zone attendue")
    return f"{what}, graphique en entonnoir de {n} {unit_label} : {', '.join(chunks)}."


def describe_comparison(label: str, value: object, national: object, *, what: str, kind: str = "int") -> str:
    """Describe a territory's value against the national one (one sentence)."""
    fmt = _formatter(kind)
    if is_suppressed(value) or value is None or pd.isna(value):
        return f"{what} pour {label} : valeur non publiable (secret statistique)."
    if national is None or pd.isna(national) or float(national) == 0:
        return f"{what} pour {label} : {fmt(value)}."
    ratio = float(value) / float(national)
    where = "au-dessus de" if ratio >= 1.05 else "en dessous de" if ratio <= 0.95 else "proche de"
    return (f"{what} pour {label} : {fmt(value)}, {where} la valeur nationale ({fmt(national)}), "
            f"soit {fmt_number(ratio, 2)} fois celle-ci.")
