"""Facts a report notebook hands to the batch index ("points forts", "à corriger").

The batch sets the environment variable :data:`SUMMARY_ENV` to a file path
before running a notebook; the notebook calls :func:`write_summary`. Run by
hand (variable unset), the call does nothing, so notebooks work in JupyterLab.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import atomic_write_text

#: Environment variable naming the JSON file a notebook writes its summary to.
SUMMARY_ENV = "GAR_REPORT_SUMMARY"
#: Limits that keep the index readable.
MAX_ITEMS = 5
MAX_CHARS = 300


def _clean(items, name: str) -> list[str]:
    if items is None:
        return []
    if isinstance(items, str) or not hasattr(items, "__iter__"):
        raise TypeError(f"{name} doit être une liste de phrases, pas {type(items).__name__}.")
    out = []
    for item in items:
        text = " ".join(str(item).split())
        if text:
            out.append(text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…")
    return out[:MAX_ITEMS]


def write_summary(points_forts, a_corriger, path: str | Path | None = None) -> Path | None:
    """Write the report's key facts for the batch index.

    Parameters
    ----------
    points_forts : list of str
        Strengths, one French sentence each (aggregated figures only, no count
        below the disclosure threshold).
    a_corriger : list of str
        What to work on, one French sentence each, constructive wording.
    path : str or Path, optional
        Target file; default: the value of ``$GAR_REPORT_SUMMARY``.

    Returns
    -------
    Path or None
        The file written, or None when no target is set (interactive run).
    """
    target = path or os.environ.get(SUMMARY_ENV, "").strip()
    if not target:
        return None
    data = {"points_forts": _clean(points_forts, "points_forts"),
            "a_corriger": _clean(a_corriger, "a_corriger")}
    return atomic_write_text(Path(target), json.dumps(data, ensure_ascii=False, indent=1))


def read_summary(path: str | Path) -> dict:
    """Read a summary file; a missing or malformed file gives empty lists."""
    empty = {"points_forts": [], "a_corriger": []}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty
    if not isinstance(data, dict):
        return empty
    try:
        return {k: _clean(data.get(k), k) for k in empty}
    except TypeError:
        return empty
