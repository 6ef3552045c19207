"""Run the rule suite on a data directory."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from ..sources import DataDir
from .context import Context, source_path
from .registry import RULES, concat_findings, make_findings

log = logging.getLogger(__name__)


def _skip_reason(ctx: Context, rule) -> str | None:
    """Return the missing file that prevents a rule from running, or None."""
    for name in rule.needs:
        if not ctx.has(name):
            return name
    if rule.any_of and not ctx.present(rule.any_of):
        return rule.any_of[0]
    return None


def run_checks(data_dir: str | Path | DataDir, rules: list[str] | None = None) -> pd.DataFrame:
    """Run the quality rules on a data directory and return every finding.

    Parameters
    ----------
    data_dir : str, Path or DataDir
        The data directory (any subset of the contract's files).
    rules : list of str, optional
        Rule ids to run (default: all, see :data:`~gar_analysis.checks.RULES`).

    Returns
    -------
    pandas.DataFrame
        Columns ``regle, gravite, source, ligne, uai, mois, id_ressource, message``
        (``ligne``: physical line in ``source``, header = 1). A rule that needs an
        absent file is skipped and listed as one ``info`` finding.
        ``attrs["lignes"]``: data lines of each file read, by source;
        ``attrs["durees"]``: seconds spent per rule.

    Raises
    ------
    DataError
        When a present file is unusable (encoding, separator, columns, values).

    Examples
    --------
    >>> from gar_analysis.checks import run_checks
    >>> findings = run_checks("data/raw/sample")            # doctest: +SKIP
    >>> findings.groupby(["regle", "gravite"]).size()       # doctest: +SKIP
    """
    ctx = Context(data_dir)
    selected = list(RULES) if rules is None else rules
    unknown = [r for r in selected if r not in RULES]
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(f"Règle(s) inconnue(s) : {', '.join(unknown)}. Règles : {', '.join(RULES)}.")
    frames, durations = [], {}
    for rid in selected:
        rule = RULES[rid]
        missing = _skip_reason(ctx, rule)
        if missing is not None:
            frames.append(make_findings(
                rid, "info", source_path(missing),
                f"Contrôle « {rule.titre} » non effectué : fichier {source_path(missing)} absent du répertoire "
                "de données ; l'ajouter pour activer ce contrôle."))
            continue
        t0 = time.perf_counter()
        frames.append(rule.func(ctx))
        durations[rid] = round(time.perf_counter() - t0, 3)
        log.debug("règle %s : %.2f s", rid, durations[rid])
    out = concat_findings(frames)
    out.attrs["lignes"] = ctx.row_counts()
    out.attrs["durees"] = durations
    return out


def write_findings_csv(findings: pd.DataFrame, path: str | Path) -> Path:
    """Write findings as the contract CSV (``;``, UTF-8), atomically."""
    from ..io import atomic_write_text, csv_text
    from .registry import COLUMNS

    return atomic_write_text(path, csv_text(findings[COLUMNS]))


def read_findings_csv(path: str | Path) -> pd.DataFrame:
    """Read a findings CSV written by :func:`write_findings_csv`."""
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    out = df.replace("", pd.NA).astype("string")
    out["ligne"] = pd.to_numeric(out["ligne"]).astype("Int64")
    return out
