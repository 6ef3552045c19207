"""gar-analysis: data-driven steering of the GAR (Gestionnaire d'Accès aux Ressources).

The public API: what users call from notebooks and scripts. Heavy modules
(statsmodels, the checks, the generator) are imported on first use, so that
``import gar_analysis`` stays light for the command line and report kernels.

Examples
--------
>>> import gar_analysis as ga
>>> ds = ga.DataDir("data/raw/sample")                        # doctest: +SKIP
>>> findings = ga.run_checks(ds.path)                          # doctest: +SKIP
>>> schools = ga.load_processed("etablissements")              # doctest: +SKIP
>>> ga.funnel_table(schools, "inscrit", "un", "code_academie")  # doctest: +SKIP
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .config import PROCESSED_DIR, REPORTS_DIR, SAMPLE_DIR  # noqa: E402
from .contract import CONTRACT, read_contract_file  # noqa: E402
from .errors import ConfigError, DataError  # noqa: E402
from .sources import DataDir, load  # noqa: E402

#: Public names imported on first use: name → (module, attribute).
_LAZY = {
    "generate_sample": (".sample", "generate"),
    "run_checks": (".checks", "run_checks"),
    "quality_report_html": (".checks", "quality_report_html"),
    "build_processed": (".build", "build"),
    "load_processed": (".build", "load_processed"),
    "load_manifest": (".build", "load_manifest"),
    "funnel_table": (".gaps", "funnel_table"),
    "observed_vs_expected": (".gaps", "observed_vs_expected"),
    "fit_success_factors": (".models", "fit_success_factors"),
    "suppress": (".disclosure", "suppress"),
}

__all__ = ["__version__", "CONTRACT", "ConfigError", "DataDir", "DataError", "PROCESSED_DIR", "REPORTS_DIR",
           "SAMPLE_DIR", "load", "read_contract_file", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module, __name__), attr)
    raise AttributeError(f"module 'gar_analysis' has no attribute {name!r}")
