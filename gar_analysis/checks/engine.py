"""Run the rule suite on a data directory."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from ..sources import DataDir
from .context import Context, fmt_int, source_path
from .registry import RULES, concat_findings, make_findings

log = logging.getLogger(__name__)


#: Marker of the findings saying how many lines a rule left out (not counted by the evaluation).
LEFT_OUT_MARK = "ligne(s) écartée(s)"
#: Rules that report form problems themselves (no left-out notice).
FORM_RULES = ("fichier_illisible", "valeur_manquante", "valeur_hors_liste", "format_invalide")


def _skip_reason(ctx: Context, rule) -> str | None:
    """Return the missing or unreadable file that prevents a rule from running, or None."""
    for name in rule.needs:
        if not ctx.has(name):
            return name
    if rule.any_of and not ctx.present(rule.any_of):
        unreadable = [n for n in rule.any_of if n in ctx.unreadable]
        return unreadable[0] if unreadable else rule.any_of[0]
    return None


def _left_out(ctx: Context, rule) -> dict[str, int]:
    """Return the lines with a form problem in the files a rule reads, by source path."""
    counts = {}
    for name in dict.fromkeys((*rule.needs, *rule.any_of)):
        if ctx.has(name):
            n = len(ctx.attrs.get(name, {}).get("lignes_invalides", ()))
            if n:
                counts[source_path(name)] = n
    return counts


def run_checks(data_dir: str | Path | DataDir, rules: list[str] | None = None) -> pd.DataFrame:
    """Run the quality rules on a data directory and return every finding.

    Every present file is read leniently: a file that cannot be read at all is one
    ``fichier_illisible`` finding and the other files are still checked; a cell
    with a form problem is a ``valeur_manquante``, ``valeur_hors_liste`` or
    ``format_invalide`` finding and its line is left out of the rules that relate
    files, each of which says how many lines it left out (an ``info`` finding).

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
        absent or unreadable file is skipped and listed as one ``info`` finding.
        ``attrs["lignes"]``: data lines of each file read, by source;
        ``attrs["durees"]``: seconds spent per rule; ``attrs["ecartees"]``: lines left
        out per rule and source; ``attrs["illisibles"]``: the unreadable files.

    Raises
    ------
    DataError
        When no file of the directory can be read (or none is present).
    ConfigError
        On an unknown rule id.

    Examples
    --------
    >>> from gar_analysis.checks import run_checks
    >>> findings = run_checks("data/raw/sample")            # doctest: +SKIP
    >>> findings.groupby(["regle", "gravite"]).size()       # doctest: +SKIP
    """
    from ..contract import CONTRACT, REFERENCE_FILES
    from ..errors import ConfigError, DataError, Problem

    ctx = Context(data_dir)
    selected = list(RULES) if rules is None else rules
    unknown = [r for r in selected if r not in RULES]
    if unknown:
        raise ConfigError(f"Règle(s) inconnue(s) : {', '.join(unknown)}. Règles : {', '.join(RULES)}.")
    ctx.load_all()
    from ..sources.dnma import DNMA_DATASETS

    present = [n for n in (*CONTRACT, *REFERENCE_FILES, *(f"dnma/{k}" for k in DNMA_DATASETS)) if ctx.ds.has(n)]
    if not present:
        raise DataError.single(ctx.ds.path, "aucun fichier du contrat de données dans ce répertoire "
                               "(gar/…, referentiel/…, crm/… : voir docs/data-contract.md).")
    if len(ctx.unreadable) == len(present):
        raise DataError([p for exc in ctx.unreadable.values()
                         for p in (getattr(exc, "problems", None) or [Problem("?", None, None, str(exc))])])
    frames, durations, left_out = [], {}, {}
    for rid in selected:
        rule = RULES[rid]
        missing = _skip_reason(ctx, rule)
        if missing is not None:
            why = "illisible" if missing in ctx.unreadable else "absent du répertoire de données"
            todo = "le corriger" if missing in ctx.unreadable else "l'ajouter"
            frames.append(make_findings(
                rid, "info", source_path(missing),
                f"Contrôle « {rule.titre} » non effectué : fichier {source_path(missing)} {why} ; "
                f"{todo} pour activer ce contrôle."))
            continue
        t0 = time.perf_counter()
        try:
            frames.append(rule.func(ctx))
        except Exception as exc:  # one rule's failure never stops the others
            log.warning("règle %s interrompue : %s: %s", rid, type(exc).__name__, exc)
            log.debug("trace de la règle %s", rid, exc_info=True)
            frames.append(make_findings(
                rid, "erreur", "", f"Contrôle « {rule.titre} » non effectué : erreur inattendue "
                f"({type(exc).__name__} : {exc}) ; signaler ce cas avec les fichiers concernés."))
        durations[rid] = round(time.perf_counter() - t0, 3)
        log.debug("règle %s : %.2f s", rid, durations[rid])
        counts = {} if rid in FORM_RULES else _left_out(ctx, rule)
        if counts:
            left_out[rid] = counts
            detail = ", ".join(f"{src} : {fmt_int(n)}" for src, n in counts.items())
            frames.append(make_findings(
                rid, "info", next(iter(counts)),
                f"Contrôle « {rule.titre} » effectué sans les lignes de forme invalide ({LEFT_OUT_MARK} : "
                f"{detail}) ; voir les constats valeur_manquante, valeur_hors_liste et format_invalide."))
    out = concat_findings(frames)
    out.attrs["lignes"] = ctx.row_counts()
    out.attrs["durees"] = durations
    out.attrs["ecartees"] = left_out
    out.attrs["illisibles"] = {source_path(n): str(e) for n, e in ctx.unreadable.items()}
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
