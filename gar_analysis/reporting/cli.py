"""``gar-analysis reports``: the monthly batch of HTML reports, suitable for cron.

Exit status: 0 when every report was produced, 1 when at least one failed
(the others are still produced), 2 when the request is refused before any
notebook runs (unknown audience, territory, notebook or parameter).
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .. import config
from ..errors import ConfigError
from ..territories import AUDIENCES

log = logging.getLogger(__name__)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"paramètre attendu sous la forme NOM=VALEUR, reçu {text!r}")
    return name.strip(), value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``reports`` command's arguments."""
    parser.add_argument("--audience", required=True, metavar="PUBLIC",
                        help=f"public visé : {', '.join(AUDIENCES)}")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="tous les territoires du public")
    which.add_argument("--only", nargs="+", metavar="CODE", help="seulement ces territoires (codes officiels)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="carnets exécutés en parallèle (défaut : nombre de cœurs)")
    parser.add_argument("--out", default=str(config.REPORTS_DIR), metavar="DOSSIER",
                        help="dossier des rapports (défaut : reports/)")
    parser.add_argument("--run-id", default=None, metavar="ID", help="nom du lot (défaut : date et heure)")
    parser.add_argument("--period", default=None, metavar="AAAA-AAAA", help="période (paramètre « periode »)")
    parser.add_argument("--notebook", default=None, metavar="NOM", help="un seul carnet (défaut : tous ceux du public)")
    parser.add_argument("--processed", default=None, metavar="DOSSIER",
                        help="tables traitées (défaut : data/processed)")
    parser.add_argument("--timeout", type=float, default=float(config.NOTEBOOK_TIMEOUT), metavar="S",
                        help="délai maximal par carnet, en secondes")
    parser.add_argument("-p", "--param", action="append", type=_param, default=[], metavar="NOM=VALEUR",
                        help="autre paramètre de carnet (doit être déclaré par le carnet)")
    parser.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true", help="sans barre de progression")


def run(args) -> int:
    """Run ``gar-analysis reports``; return 0 (all produced), 1 (some failed) or 2 (refused)."""
    from .batch import check_run_id, default_run_id, plan_batch, run_batch

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs doit être au moins 1 (reçu {args.jobs}).")
    if args.timeout <= 0:
        raise ConfigError(f"--timeout doit être positif (reçu {args.timeout:g}).")
    run_id = check_run_id(args.run_id or default_run_id())
    if args.processed and not Path(args.processed).is_dir():
        raise ConfigError(f"Dossier des tables traitées introuvable : {args.processed}.")
    jobs = plan_batch(args.audience, all_territories=args.all, only=args.only, notebook=args.notebook,
                      period=args.period, extra=dict(args.param), processed_dir=args.processed,
                      notebooks_dir=args.notebooks_dir, run_id=run_id)
    result = run_batch(jobs, out_dir=args.out, run_id=run_id, n_jobs=args.jobs or len(os.sched_getaffinity(0)),
                       timeout=args.timeout, processed_dir=args.processed,
                       progress=False if args.no_progress else None)
    n_fail = len(result.failures)
    print(f"{len(result.entries) - n_fail}/{len(result.entries)} rapport(s) produit(s) en "
          f"{result.duration_s:.1f} s : {result.run_dir / 'index.html'}")
    for e in result.failures:
        first = (e["erreur"] or "").strip().splitlines()[:1]
        print(f"  échec {e['audience']}/{e['territoire']} ({e['notebook']}) : {first[0] if first else ''}")
    for leak in result.leaks:
        print(f"  fuite possible : {leak}")
    if n_fail or result.leaks:
        print(f"Journal : {result.run_dir / 'batch.log'}")
    return 0 if result.ok else 1
