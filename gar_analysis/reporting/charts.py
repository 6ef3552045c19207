"""Charts of the reports and of exploration: accessible palette, French axes, funnel, O/E and forest plots.

Every figure of the package is drawn here (the computing modules ``gaps`` and ``models`` return tables;
``reporting.display`` re-exports the chart functions the report notebooks call as ``d.bar_chart``…).
"""
from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..disclosure import is_suppressed
from ..formatting import _is_missing, fmt_decimal, fmt_number, fmt_percent, fmt_sentence as fmt_fr
from ..gaps import POSITION_SYMBOLS, POSITIONS, _MARKERS, funnel_curve

if TYPE_CHECKING:
    from ..models import SuccessFactors

_NATIONAL_FORMAT = {"percent": fmt_percent, "decimal": fmt_decimal}


def contrast_ratio(color1, color2) -> float:
    """Return the WCAG contrast ratio (1 to 21) of two colours (hex strings or RGB tuples in 0..1)."""
    from matplotlib.colors import to_rgb

    def luminance(color) -> float:
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(color)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(color1), luminance(color2)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@functools.cache
def chart_palette(minimum: float = 3.1, background: str = "#ffffff") -> tuple[tuple[float, float, float], ...]:
    """Return seaborn's ``colorblind`` palette, each colour darkened until it contrasts with the background.

    Lines, bars and markers must stand out from the background by at least 3:1
    (RGAA 3.3, WCAG 1.4.11): the light colours of the palette (orange, yellow,
    pink, sky blue) keep their hue and saturation, their lightness is lowered in
    small steps until the ratio reaches ``minimum``.
    """
    import colorsys

    import seaborn as sns

    out = []
    for rgb in sns.color_palette("colorblind"):
        h, light, sat = colorsys.rgb_to_hls(*rgb)
        while contrast_ratio(rgb, background) < minimum and light > 0:
            light = max(0.0, light - 0.005)
            rgb = colorsys.hls_to_rgb(h, light, sat)
        out.append(tuple(float(c) for c in rgb))
    return tuple(out)


def setup_style() -> list:
    """Set the seaborn theme (readable fonts, :func:`chart_palette`); return the palette."""
    import matplotlib as mpl
    import seaborn as sns

    from .display import reset_anchors

    reset_anchors()  # a report's first cell: a new page, its anchors start afresh
    mpl.use("Agg")
    sns.set_theme(style="whitegrid", palette=list(chart_palette()), context="notebook")
    mpl.rcParams.update({"figure.figsize": (7.5, 4.2), "figure.dpi": 96, "axes.titlesize": 12,
                         "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10,
                         "axes.formatter.use_locale": False, "svg.fonttype": "none"})
    return sns.color_palette(list(chart_palette()))


def french_axis(ax, axis: str = "y", kind: str = "int") -> None:
    """Format an axis' tick labels the French way (``percent``, ``int`` or ``decimal``)."""
    from matplotlib.ticker import FuncFormatter

    fmt = {"percent": lambda v, _: fmt_percent(v, 0), "int": lambda v, _: fmt_number(v),
           "decimal": lambda v, _: fmt_number(v, 1)}[kind]
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(fmt))


# --------------------------------------------------------------------------- charts


def _values(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.where(~series.map(is_suppressed)), errors="coerce")


def bar_chart(df: pd.DataFrame, label_col: str, value_col: str, *, kind: str = "percent", national: float | None = None,
              xlabel: str = "", max_bars: int = 35):
    """Horizontal bar chart of one value per unit, sorted, with the national value as a dashed line.

    Suppressed (``c``) values get no bar and the text « c » (colour never carries meaning alone).
    """
    import matplotlib.pyplot as plt

    data = df[[label_col, value_col]].copy()
    data["_v"] = _values(data[value_col])
    data = data.sort_values("_v", ascending=True, na_position="first").tail(max_bars)
    height = max(2.2, 0.32 * len(data) + 1.0)
    fig, ax = plt.subplots(figsize=(7.0, height))
    y = np.arange(len(data))
    ax.barh(y, data["_v"].fillna(0), color=_palette(0), height=0.7)
    for yi, v, raw in zip(y, data["_v"], data[value_col]):
        if is_suppressed(raw) or pd.isna(v):
            ax.text(0, yi, " c" if is_suppressed(raw) else " x", va="center", fontsize=9)
    ax.set_yticks(y, data[label_col].astype(str))
    if national is not None and not _is_missing(national):
        ax.axvline(float(national), color="#1e1e1e", linestyle="--", linewidth=1.2,
                   label=f"National : {_NATIONAL_FORMAT.get(kind, fmt_number)(national)}")
        ax.legend(loc="lower right", fontsize=9, framealpha=0.9)
    ax.set_xlabel(xlabel)
    french_axis(ax, "x", "percent" if kind == "percent" else ("decimal" if kind == "decimal" else "int"))
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def line_chart(df: pd.DataFrame, x_col: str, y_cols: list[str] | str, *, labels: list[str] | None = None,
               kind: str = "int", ylabel: str = ""):
    """Line chart over months (``YYYY-MM``); several series get distinct markers and line styles."""
    import matplotlib.pyplot as plt

    y_cols = [y_cols] if isinstance(y_cols, str) else list(y_cols)
    labels = labels or y_cols
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    x = np.arange(len(df))
    markers, styles = ["o", "s", "^", "D"], ["-", "--", ":", "-."]
    for i, (col, lab) in enumerate(zip(y_cols, labels)):
        ax.plot(x, _values(df[col]), marker=markers[i % 4], linestyle=styles[i % 4], markersize=3.5,
                color=_palette(i), label=lab)
    months = df[x_col].astype(str).tolist()
    step = max(1, -(-len(months) // 5))  # at most 5 labels: legible in a phone-wide chart
    ticks = list(range(0, len(months), step))
    ax.set_xticks(ticks, [_short_month(months[k]) for k in ticks], rotation=0)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    french_axis(ax, "y", kind)
    if len(y_cols) > 1:
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def _short_month(month: str) -> str:
    m = re.match(r"^(\d{4})-(\d{2})$", month)
    if not m:
        return month
    abbr = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."]
    return f"{abbr[int(m.group(2)) - 1]}\n{m.group(1)}"


def _palette(i: int):
    palette = chart_palette()
    return palette[i % len(palette)]


def style_context():
    """Matplotlib settings of the project's charts (seaborn whitegrid, colour-blind palette at 3:1), as a context.

    Unlike ``reporting.display.setup_style``, it leaves the backend alone, so figures
    still show inline in JupyterLab.
    """
    import matplotlib as mpl
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), "axes.prop_cycle": mpl.cycler(color=list(chart_palette())),
          "figure.dpi": 96, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
          "ytick.labelsize": 10}
    return mpl.rc_context(rc)


def funnel_figure(table: pd.DataFrame, names: pd.Series | None = None, *, ylabel: str = "", xlabel: str = "",
                  threshold: int = 0, max_labels: int = 15):
    """Funnel plot: units (marker shape = position), 95 % and 99.8 % limits, reference line.

    Units whose denominator is below ``threshold`` are not drawn (disclosure).
    Labels: every unit when there are at most ``max_labels``, else those outside
    the 99.8 % limits and the three most extreme on each side (the data table lists all).
    """
    import matplotlib.pyplot as plt
    pct = table.attrs.get("kind") == "proportion"
    m = 100.0 if pct else 1.0
    t = table[table["denominator"] >= threshold] if threshold else table
    names = names if names is not None else table["unit"]
    names = pd.Series(list(names), index=table.index).loc[t.index]
    curve = funnel_curve(table)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.axhline(m * table.attrs["target"], color="0.2", lw=1.2, label="Référence")
    ax.plot(curve["denominator"], m * curve["upper_95"], ls="--", color="0.45", lw=1, label="Limites à 95 %")
    ax.plot(curve["denominator"], m * curve["lower_95"], ls="--", color="0.45", lw=1)
    ax.plot(curve["denominator"], m * curve["upper_998"], ls=":", color="0.1", lw=1.2, label="Limites à 99,8 %")
    ax.plot(curve["denominator"], m * curve["lower_998"], ls=":", color="0.1", lw=1.2)
    pal = chart_palette()  # blue, grey, orange, each ≥ 3:1 against the background
    colors = {"au-dessus": pal[0], "conforme": pal[7], "en-dessous": pal[1]}
    for pos in POSITIONS:
        sel = t["position_998"] == pos
        if sel.any():
            ax.scatter(t.loc[sel, "denominator"], m * t.loc[sel, "rate"], marker=_MARKERS[pos], s=46,
                       color=colors[pos], edgecolor="black", linewidth=0.5, zorder=3,
                       label=POSITION_SYMBOLS[pos].split(" ", 1)[1].capitalize() + " (99,8 %)")
    if len(t) <= max_labels:
        show = t.index
    else:  # units outside the limits, and the most extreme ones on each side
        z = t["z_adjusted"]
        show = t.index[(t["position_998"] != "conforme").to_numpy()].union(z.nlargest(3).index).union(
            z.nsmallest(3).index)
    for i in show:
        ax.annotate(str(names.loc[i])[:28], (t.loc[i, "denominator"], m * t.loc[i, "rate"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def oe_figure(table: pd.DataFrame, names: pd.Series | None = None, *, xlabel: str = "Rapport observé / attendu",
              threshold: int = 0, max_units: int = 40):
    """Observed / expected per unit with 95 % intervals (raw) and shrunken estimate, sorted."""
    import matplotlib.pyplot as plt
    t = table.copy()
    t["_nom"] = list(names) if names is not None else t["unit"].astype(str)
    if threshold:
        t = t[t["n_ecoles"] >= threshold]
    t = t.sort_values("shrunk_ratio").tail(max_units)
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.28 * len(t) + 1)))
    y = np.arange(len(t))
    ax.hlines(y, t["ci_low"], t["ci_high"], color="0.5", lw=1.5, label="Intervalle à 95 %")
    position = t["position_998"] if "position_998" in t.columns else t["position"]  # the page's 99.8 % rule
    for pos in POSITIONS:
        sel = (position == pos).to_numpy()
        if sel.any():
            ax.scatter(t["ratio"].to_numpy()[sel], y[sel], marker=_MARKERS[pos], s=40, color="#0173b2"
                       if pos == "au-dessus" else "#de8f05" if pos == "en-dessous" else "#949494",
                       edgecolor="black", linewidth=0.5, zorder=3, label=POSITION_SYMBOLS[pos].split(" ", 1)[1]
                       .capitalize())
    ax.scatter(t["shrunk_ratio"], y, marker="|", s=120, color="black", zorder=4, label="Estimation rétrécie")
    ax.axvline(1.0, color="0.2", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels([s[:32] for s in t["_nom"]], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def forest_figure(result: SuccessFactors, *, title: str = ""):
    """Forest plot of the ratios (odds or rate ratios) with 95 % intervals, log scale, line at 1."""
    import matplotlib.pyplot as plt
    t = result.table[result.table["term"] != "Intercept"].iloc[::-1]
    ratio = result.family != "gaussian"
    est = t["ratio"] if ratio else t["estimate"]
    lo = t["ratio_low"] if ratio else t["ci_low"]
    hi = t["ratio_high"] if ratio else t["ci_high"]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(t) + 1.4))
    y = np.arange(len(t))
    ax.hlines(y, lo, hi, color="#0173b2", lw=2)
    clear = ((lo > 1) | (hi < 1)) if ratio else ((lo > 0) | (hi < 0))
    ax.scatter(est[clear], y[clear.to_numpy()], marker="D", color="#0173b2", zorder=3, label="Intervalle excluant 1")
    ax.scatter(est[~clear], y[~clear.to_numpy()], marker="o", facecolor="white", edgecolor="#0173b2", zorder=3,
               label="Intervalle incluant 1")
    ax.axvline(1.0 if ratio else 0.0, color="0.2", lw=1)
    if ratio:
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_fr(v, 2 if v < 1 else 1)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        finite = np.concatenate([np.asarray(lo, float), np.asarray(hi, float)])
        finite = finite[np.isfinite(finite) & (finite > 0)]
        if finite.size:
            ticks = [v for v in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 10, 20, 50, 100)
                     if finite.min() / 1.2 <= v <= finite.max() * 1.2]
            ax.set_xticks(ticks or [1.0])
    ax.set_yticks(y)
    ax.set_yticklabels(t["label"], fontsize=9)
    kind = {"binomial": "Rapport de cotes", "poisson": "Rapport de taux", "negative_binomial": "Rapport de taux",
            "gaussian": "Effet"}[result.family]
    ax.set_xlabel(f"{kind} (intervalle à 95 %)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    return fig
