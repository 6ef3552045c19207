"""Paths, thresholds and secrets: the one place where they are defined.

Every path is built from the repository root (the package's parent folder),
so that notebooks, the command line and tests agree wherever they run from.
Secrets are read from the environment only, never from a parameter or a file.
"""
from __future__ import annotations

import numbers
import os
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("GAR_ANALYSIS_ROOT", PACKAGE_DIR.parent)).resolve()

DATA_DIR = ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
SAMPLE_DIR = RAW_DIR / "sample"
PROCESSED_DIR = DATA_DIR / "processed"
#: Comparison bases of the releases (``changes.write_snapshot``), never published.
HISTORY_DIR = DATA_DIR / "history"
REPORTS_DIR = ROOT / "reports"
NOTEBOOKS_DIR = ROOT / "notebooks"
REPORT_NOTEBOOKS_DIR = NOTEBOOKS_DIR / "reports"
DOCS_DIR = ROOT / "docs"
LOGS_DIR = ROOT / "logs"
#: Real open data shared beside the repository (tests and benchmarks only).
SHARED_DIR = Path(os.environ.get("GAR_SHARED_DIR", ROOT.parent / "shared")).resolve()
SHARED_OPENDATA_DIR = SHARED_DIR / "data" / "opendata"
SHARED_DOLIBARR_DIR = SHARED_DIR / "data" / "dolibarr-20.0.2"
#: Reference data derived from public sources and shipped with the package.
REFERENCE_DIR = PACKAGE_DIR / "data"

#: Environment variable of the disclosure threshold (secret statistique).
ENV_DISCLOSURE_THRESHOLD = "GAR_SEUIL_SECRET"
#: Default and smallest allowed disclosure threshold. ``DISCLOSURE_THRESHOLD`` (counts below it
#: are published as ``c``) is read from the environment and validated at each use, see
#: :func:`disclosure_threshold`: a bad value stops the command that needs it, not every import.
DEFAULT_DISCLOSURE_THRESHOLD = 5
MIN_DISCLOSURE_THRESHOLD = 3
#: Marker of a suppressed cell (secret statistique).
SUPPRESSED = "c"
#: Density (inhabitants per km²) below which a commune counts as rural.
RURAL_DENSITY = 100.0
#: Plausible range of an IPS; values outside are errors (rule ips_hors_plage), unused in models.
IPS_PLAUSIBLE = (40.0, 180.0)
#: Default seed of the sample generator.
SAMPLE_SEED = 20241
#: Default timeout (seconds) of one notebook execution in a batch.
#: A malformed value falls back to 900 here; ``gar-analysis`` refuses it before any work (cli.check_environment).
try:
    NOTEBOOK_TIMEOUT = float(os.environ.get("GAR_NOTEBOOK_TIMEOUT", "") or 900)
    NOTEBOOK_TIMEOUT = NOTEBOOK_TIMEOUT if 0 < NOTEBOOK_TIMEOUT < float("inf") else 900
except ValueError:
    NOTEBOOK_TIMEOUT = 900

# --- environment variable names (values are secrets: read them, never store them) ---
ENV_DOLIBARR_URL = "GAR_DOLIBARR_URL"
ENV_DOLIBARR_KEY = "DOLAPIKEY"
ENV_ROCKETCHAT_WEBHOOK = "GAR_ROCKETCHAT_WEBHOOK"
ENV_ROCKETCHAT_URL = "GAR_ROCKETCHAT_URL"
ENV_ROCKETCHAT_TOKEN = "GAR_ROCKETCHAT_TOKEN"
ENV_ROCKETCHAT_USER_ID = "GAR_ROCKETCHAT_USER_ID"
ENV_ROCKETCHAT_CHANNEL = "GAR_ROCKETCHAT_CHANNEL"
ENV_OPENDATA_BASE_URL = "GAR_OPENDATA_BASE_URL"

#: Default portal of the ministry's open data (Opendatasoft Explore API v2.1).
OPENDATA_BASE_URL = "https://data.education.gouv.fr"


def secret(name: str) -> str | None:
    """Return the value of a secret environment variable, or None when unset.

    Parameters
    ----------
    name : str
        Name of the environment variable.

    Returns
    -------
    str or None
        The value, stripped; None when the variable is unset or empty.
    """
    value = os.environ.get(name, "").strip()
    return value or None


def secret_values() -> list[str]:
    """Return every secret currently set, for scanning outputs for leaks."""
    names = [ENV_DOLIBARR_KEY, ENV_ROCKETCHAT_WEBHOOK, ENV_ROCKETCHAT_TOKEN, ENV_ROCKETCHAT_USER_ID]
    return [v for v in (secret(n) for n in names) if v and len(v) >= 6]


def disclosure_threshold(value: object = None) -> int:
    """Return a validated disclosure threshold: an integer ≥ :data:`MIN_DISCLOSURE_THRESHOLD`.

    Parameters
    ----------
    value : int or str, optional
        The threshold; None reads ``GAR_SEUIL_SECRET`` (default 5).

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        One French line naming the value: ``0``, negatives, ``abc`` and ``2.5`` are refused
        (0 or 1 would publish every count, switching the secret statistique off).

    Examples
    --------
    >>> disclosure_threshold(10), disclosure_threshold("7")
    (10, 7)
    """
    from .errors import ConfigError

    if value is None:
        raw = os.environ.get(ENV_DISCLOSURE_THRESHOLD, "").strip()
        value, where = (raw or DEFAULT_DISCLOSURE_THRESHOLD), f"{ENV_DISCLOSURE_THRESHOLD} = « {raw} »"
    else:
        where = f"« {value} »"
    t = None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        t = int(value)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        t = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        t = int(value)
    if t is None or t < MIN_DISCLOSURE_THRESHOLD:
        raise ConfigError(f"Seuil du secret statistique invalide ({where}) : un nombre entier supérieur ou égal "
                          f"à {MIN_DISCLOSURE_THRESHOLD} est attendu (défaut {DEFAULT_DISCLOSURE_THRESHOLD}).")
    return t


def __getattr__(name: str):
    """Compute ``DISCLOSURE_THRESHOLD`` at use (PEP 562), validated by :func:`disclosure_threshold`."""
    if name == "DISCLOSURE_THRESHOLD":
        return disclosure_threshold()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
