"""Reports: the batch runner (Papermill, parallel), HTML export, index, display helpers.

``gar-analysis reports`` runs the report notebooks listed in ``notebooks.csv``
for every territory of an audience and writes ``reports/<run-id>/``. Submodules
are imported lazily so that ``import gar_analysis.reporting`` stays light in
notebooks.
"""
from __future__ import annotations

import re

from ..territories import slug

__all__ = ["editeur_code"]


def editeur_code(name: object) -> str:
    """Return the territory code of a publisher: its name as a file-safe slug.

    Parameters
    ----------
    name : object
        The publisher's name as written in the catalogue (``ressources.editeur``).

    Returns
    -------
    str
        Lower-case ASCII words joined by hyphens ("" for an empty name).

    Examples
    --------
    >>> editeur_code("Éditions Nathan & Cie")
    'editions-nathan-cie'
    """
    return re.sub(r"\s+", "-", slug(str(name))) if name is not None else ""
