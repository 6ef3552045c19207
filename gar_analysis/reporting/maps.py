"""Choropleth map of the académies, drawn with matplotlib from the open-data contours.

The contours (``fr-en-contour-academies-2020.geojson``, data.education.gouv.fr,
ODbL) are read at run time from ``config.SHARED_OPENDATA_DIR`` (or a given
path); they are never copied into the repository. When the file is absent the
map is skipped (``None`` is returned) and the report shows its table alone.
No geopandas: polygons are drawn as matplotlib patches.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..disclosure import is_suppressed

CONTOURS_RELATIVE = Path("contours-academies-2020") / "fr-en-contour-academies-2020.geojson"
#: Overseas académies, left out of the metropolitan map (shown in the table).
OVERSEAS_ACADEMIES = ("28", "31", "32", "33", "43")


def contours_path() -> Path:
    """Return the expected path of the académie contours."""
    return config.SHARED_OPENDATA_DIR / CONTOURS_RELATIVE


@lru_cache(maxsize=4)
def load_contours(path: str | None = None, step: int = 3) -> dict[str, list[np.ndarray]] | None:
    """Read the académie contours as rings of (lon, lat) points, by académie code.

    Parameters
    ----------
    path : str, optional
        GeoJSON file (default :func:`contours_path`).
    step : int, optional
        Keep one point in ``step`` (the map is small; this keeps it fast and light).

    Returns
    -------
    dict or None
        Académie code → list of outer rings; None when the file is absent or unreadable.
    """
    p = Path(path) if path else contours_path()
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    out: dict[str, list[np.ndarray]] = {}
    for feat in data.get("features", []):
        props, geom = feat.get("properties", {}), feat.get("geometry") or {}
        code = str(props.get("code_academie", "")).zfill(2)
        polys = geom.get("coordinates", [])
        if geom.get("type") == "Polygon":
            polys = [polys]
        rings = []
        for poly in polys:
            ring = np.asarray(poly[0], dtype=float)
            if len(ring) > 4 * step:
                ring = np.vstack([ring[::step], ring[:1]])
            rings.append(ring)
        out.setdefault(code, []).extend(rings)
    return out or None


def academie_map(values: pd.DataFrame, *, value_col: str, label: str, code_col: str = "code",
                 kind: str = "percent", path: str | Path | None = None):
    """Draw metropolitan académies coloured by a value; suppressed or missing ones hatched.

    Parameters
    ----------
    values : pandas.DataFrame
        One row per académie with its code and value (``c`` allowed).
    value_col : str
        Column to map.
    label : str
        Colour-bar label (French, with unit).
    kind : str, optional
        ``percent``, ``decimal`` or ``int`` (tick format of the colour bar).
    path : str or Path, optional
        GeoJSON file (default: the shared open-data contours).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when the contours are not available.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Polygon

    from .display import french_axis

    contours = load_contours(str(path) if path else None)
    if contours is None:
        return None
    vals = {}
    for code, v in zip(values[code_col].astype(str), values[value_col]):
        if not is_suppressed(v) and not pd.isna(v):
            vals[code.zfill(2)] = float(v)
    fig, ax = plt.subplots(figsize=(6.2, 6.0))
    cmap = plt.get_cmap("cividis")  # perceptually uniform, readable with colour-vision deficiencies
    lo, hi = (min(vals.values()), max(vals.values())) if vals else (0.0, 1.0)
    if hi == lo:
        hi = lo + 1e-9
    norm = plt.Normalize(lo, hi)
    coloured, hatched = [], []
    for code, rings in contours.items():
        if code in OVERSEAS_ACADEMIES:
            continue
        for ring in rings:
            (coloured if code in vals else hatched).append((Polygon(ring, closed=True), vals.get(code)))
    if coloured:
        pc = PatchCollection([p for p, _ in coloured], cmap=cmap, norm=norm, edgecolor="white", linewidth=0.6)
        pc.set_array(np.array([v for _, v in coloured]))
        ax.add_collection(pc)
        cb = fig.colorbar(pc, ax=ax, shrink=0.7, pad=0.02)
        cb.set_label(label)
        french_axis(cb.ax, "y", kind)
    if hatched:
        ax.add_collection(PatchCollection([p for p, _ in hatched], facecolor="#f0f0f0", edgecolor="#767676",
                                          hatch="///", linewidth=0.6))
    ax.set_xlim(-5.3, 9.8)
    ax.set_ylim(41.2, 51.3)
    ax.set_aspect(1 / np.cos(np.radians(46.5)))
    ax.set_axis_off()
    if hatched:
        ax.text(-5.2, 41.3, "Hachuré : valeur non publiée ou absente", fontsize=9)
    return fig
