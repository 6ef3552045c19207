"""Reports: the batch runner (Papermill, parallel), HTML export, index, display helpers.

``gar-analysis reports`` runs the report notebooks listed in ``notebooks.csv``
for every territory of an audience and writes ``reports/<run-id>/``. Submodules
are imported lazily so that ``import gar_analysis.reporting`` stays light in
notebooks.
"""
from __future__ import annotations

__all__: list[str] = []
