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
    parser.add_argument("--audience", required=True, nargs="+", metavar="PUBLIC",
                        help=f"public(s) visé(s), en un seul lot : all (tous) ou un ou plusieurs parmi "
                             f"{', '.join(AUDIENCES)}")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="tous les territoires du public")
    which.add_argument("--only", nargs="+", metavar="CODE", help="seulement ces territoires (codes officiels)")
    from ..cli import positive_float, positive_int

    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="carnets exécutés en parallèle (défaut : nombre de cœurs)")
    parser.add_argument("--out", default=str(config.REPORTS_DIR), metavar="DOSSIER",
                        help="dossier des rapports (défaut : reports/)")
    parser.add_argument("--run-id", default=None, metavar="ID", help="nom du lot (défaut : date et heure)")
    parser.add_argument("--period", default=None, metavar="AAAA-AAAA", help="période (paramètre « periode »)")
    parser.add_argument("--notebook", default=None, metavar="NOM", help="un seul carnet (défaut : tous ceux du public)")
    parser.add_argument("--processed", default=None, metavar="DOSSIER",
                        help="tables traitées (défaut : data/processed)")
    parser.add_argument("--timeout", type=positive_float, default=float(config.NOTEBOOK_TIMEOUT), metavar="S",
                        help="délai maximal par carnet, en secondes")
    parser.add_argument("-p", "--param", action="append", type=_param, default=[], metavar="NOM=VALEUR",
                        help="autre paramètre de carnet (doit être déclaré par le carnet)")
    parser.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true", help="sans barre de progression")


def check_processed_dir(path) -> Path:
    """Refuse a processed-tables folder that no report could read, before any notebook runs.

    The folder must exist and hold a readable ``manifest.json``; every table the
    manifest lists must be present and a readable Parquet file.

    Returns
    -------
    Path
        The folder, resolved against the current directory.
    """
    import pyarrow.parquet as pq

    from ..build import load_manifest
    from ..cli import absolute
    from ..errors import DataError

    folder = absolute(path)
    if not folder.is_dir():
        raise ConfigError(f"--processed : dossier des tables traitées introuvable : {folder} "
                          "(lancez « gar-analysis build »).")
    manifest = load_manifest(folder)
    outputs = manifest.get("outputs", {})
    if not isinstance(outputs, dict):
        raise DataError.single(folder / "manifest.json", "manifeste illisible : « outputs » doit être un objet.")
    for name, info in outputs.items():
        table = folder / str((info or {}).get("fichier", f"{name}.parquet"))
        if not table.is_file():
            raise DataError.single(table, "table absente alors que le manifeste la liste : relancez "
                                   "« gar-analysis build ».")
        try:
            pq.read_metadata(table)
        except Exception as exc:  # pyarrow raises several types on a corrupt file
            raise DataError.single(table, f"table illisible (Parquet corrompu : {type(exc).__name__}) : relancez "
                                   "« gar-analysis build ».") from None
    return folder


def write_run_quality_page(processed_dir, run_dir) -> Path | None:
    """Write ``<run>/qualite.html`` from the findings the build kept (``constats`` table); None without them.

    A failure here is logged, never fatal: the reports are already written.
    """
    from ..build import load_manifest, load_processed
    from ..checks.report import write_quality_page
    from ..errors import DataError

    try:
        findings = load_processed("constats", processed_dir)
        schools = load_processed("etablissements", processed_dir)
        return write_quality_page(findings, Path(run_dir) / "qualite.html", schools=schools,
                                  simulated=bool(load_manifest(processed_dir).get("simulated")))
    except (DataError, OSError, KeyError, ValueError) as exc:
        log.warning("page qualité non écrite : %s", exc)
        return None


def finish_run(run_dir, processed_dir) -> None:
    """Write a run's reference pages (glossary, methodology) and its quality page, then refresh its portal.

    Called after the pages by ``gar-analysis reports`` and by ``gar-analysis cycle``.
    """
    from .index import load_index, update_index
    from .reference_pages import write_reference_pages

    write_reference_pages(run_dir)  # glossaire.html, methodologie.html: linked from every page
    write_run_quality_page(processed_dir, run_dir)
    update_index(run_dir, [], simulated=load_index(run_dir).get("simulated"))  # portal tiles for the pages above


def run(args) -> int:
    """Run ``gar-analysis reports``; return 0 (all produced), 1 (some failed) or 2 (refused)."""
    from .batch import check_run_id, default_run_id, parse_audiences, plan_audiences, run_batch

    from ..cli import absolute, output_dir

    run_id = check_run_id(args.run_id or default_run_id())
    # paths are resolved against the current folder (notebooks run in their own folder)
    args.processed = str(absolute(args.processed or config.PROCESSED_DIR))
    if args.notebooks_dir:
        args.notebooks_dir = str(absolute(args.notebooks_dir))
    jobs = plan_audiences(parse_audiences(args.audience), all_territories=args.all, only=args.only,
                          notebook=args.notebook, period=args.period, extra=dict(args.param),
                          processed_dir=args.processed, notebooks_dir=args.notebooks_dir, run_id=run_id)
    check_processed_dir(args.processed)
    args.out = str(output_dir(args.out, "--out"))
    result = run_batch(jobs, out_dir=args.out, run_id=run_id, n_jobs=args.jobs or len(os.sched_getaffinity(0)),
                       timeout=args.timeout, processed_dir=args.processed,
                       progress=False if args.no_progress else None)
    finish_run(result.run_dir, args.processed)
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
