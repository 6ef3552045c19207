"""gar-analysis: data-driven steering of the GAR (Gestionnaire d'Accès aux Ressources).

The public API: what users call from notebooks and scripts.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .config import PROCESSED_DIR, REPORTS_DIR, SAMPLE_DIR  # noqa: E402
from .contract import CONTRACT, read_contract_file  # noqa: E402
from .errors import ConfigError, DataError  # noqa: E402
from .sources import DataDir, load  # noqa: E402

__all__ = [
    "__version__", "CONTRACT", "ConfigError", "DataDir", "DataError", "PROCESSED_DIR", "REPORTS_DIR",
    "SAMPLE_DIR", "build_processed", "load", "load_manifest", "load_processed", "read_contract_file", "run_checks",
]


def __getattr__(name):  # lazy: keep `import gar_analysis` light for the CLI and notebooks
    if name in ("build_processed", "load_processed", "load_manifest"):
        import importlib

        _b = importlib.import_module(".build", __name__)
        return {"build_processed": _b.build, "load_processed": _b.load_processed,
                "load_manifest": _b.load_manifest}[name]
    if name == "run_checks":
        from .checks import run_checks

        return run_checks
    raise AttributeError(name)
