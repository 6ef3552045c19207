"""gar-analysis: data-driven steering of the GAR (Gestionnaire d'Accès aux Ressources).

The public API: what users call from notebooks and scripts; ``dir(gar_analysis)``
lists it. Heavy modules (statsmodels, the checks, the generator) are imported on
first use, so that ``import gar_analysis`` stays light for the command line and
report kernels.

Examples
--------
>>> import gar_analysis as ga
>>> "fit_success_factors" in dir(ga)
True
>>> ex = ga.example_data()                                    # doctest: +SKIP
>>> findings = ga.run_checks(ex.data_dir)                     # doctest: +SKIP
>>> schools = ga.load_processed("etablissements", ex.processed_dir)  # doctest: +SKIP
>>> ga.funnel_table(schools, "inscrit", unit="code_academie")  # doctest: +SKIP
>>> ga.fit_success_factors(schools, "inscrit", ["ips", "rural", "niveau"],
...                        groups="code_academie")             # doctest: +SKIP
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from . import config  # noqa: E402
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
    "tables": (".explore", "tables"),
    "example_data": (".explore", "example_data"),
    "funnel_table": (".gaps", "funnel_table"),
    "funnel_figure": (".reporting.charts", "funnel_figure"),
    "observed_vs_expected": (".gaps", "observed_vs_expected"),
    "oe_figure": (".reporting.charts", "oe_figure"),
    "rank_intervals": (".gaps", "rank_intervals"),
    "fit_success_factors": (".models", "fit_success_factors"),
    "MissingValuesWarning": (".validation", "MissingValuesWarning"),
    "suppress": (".disclosure", "suppress"),
    "generate_events": (".events", "generate_events"),
    "aggregate_events": (".events", "aggregate_events"),
    "load_gar_opendata": (".sources.opendata", "load_gar_opendata"),
    "load_gar_catalog": (".sources.opendata", "load_gar_catalog"),
    "load_dnma": (".sources.dnma", "load_dnma"),
    "weekly_to_monthly": (".sources.dnma", "weekly_to_monthly"),
    "read_published_profil": (".sources.published", "read_profil"),
    "reconcile_published_totals": (".sources.published", "reconcile_totals"),
}

__all__ = ["__version__", "CONTRACT", "ConfigError", "DataDir", "DataError", "PROCESSED_DIR", "REPORTS_DIR",
           "SAMPLE_DIR", "config", "load", "read_contract_file", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module, __name__), attr)
    raise AttributeError(f"module 'gar_analysis' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
