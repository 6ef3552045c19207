"""Raw GAR access events: simulation and national-scale aggregation.

- :func:`generate_events`: pseudonymised events consistent with a data directory,
  streamed to ``mois=YYYY-MM/part-*.parquet`` (used by ``gar-analysis sample --events``);
- :func:`aggregate_events`: ``gar-analysis aggregate`` — events → ``gar/acces.csv`` and
  ``gar/accedants_actifs.csv`` with DuckDB (default) or PySpark; incremental (only the
  months whose files changed are read again, state in ``agregation_etat.json``).
"""
from __future__ import annotations

import argparse
import sys

from .aggregate import ENGINES, AggregationResult, aggregate_events, discover
from .generate import EVENT_COLUMNS, generate_events

__all__ = ["EVENT_COLUMNS", "ENGINES", "AggregationResult", "aggregate_events", "discover",
           "generate_events", "configure_parser", "run"]


#: What ``gar-analysis aggregate --help`` says of the incremental run (French, for users).
INCREMENTAL_HELP = """\
Agrégation incrémentale : l'état de la dernière agrégation est écrit à côté des sorties
(agregation_etat.json dans --out : pour chaque fichier d'événements, sa taille, ses dates de
modification (mtime, ctime), son inode et son mois). À l'exécution suivante, seuls les mois
dont un fichier a été ajouté, modifié ou supprimé sont relus ; les autres mois sont repris des
sorties précédentes (gar/*.parquet). Un mois dont tous les fichiers ont disparu est retiré des
sorties. Le résultat est identique, ligne pour ligne, à une agrégation complète. Agrégation
complète automatique si l'état manque, vient d'un autre répertoire d'événements ou d'une autre
version, ou si une sortie a été modifiée depuis ; --full la force. Rien n'est réécrit si aucun
fichier n'a changé. Les sorties sont écrites d'abord à côté de leur cible, puis mises en place
toutes ensemble : un échec pendant l'écriture laisse les sorties précédentes entières."""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``aggregate`` options to a sub-command parser."""
    parser.add_argument("--events", required=True, metavar="REP",
                        help="répertoire des événements bruts (mois=AAAA-MM/*.parquet)")
    parser.add_argument("--out", required=True, metavar="REP",
                        help="répertoire de données de sortie (gar/acces.csv, gar/accedants_actifs.csv)")
    parser.add_argument("--engine", choices=ENGINES, default="duckdb",
                        help="moteur : duckdb (une machine, par défaut) ou spark (grappe, option « spark »)")
    parser.add_argument("--threshold", type=int, default=None, metavar="N",
                        help="seuil de secret statistique des accédants distincts (défaut : GAR_SEUIL_SECRET ou 5)")
    parser.add_argument("--memory-limit", default="2600MB", metavar="TAILLE",
                        help="mémoire maximale de DuckDB (défaut : 2600MB)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="fils d'exécution DuckDB (défaut : tous les CPU)")
    parser.add_argument("--temp-dir", default=None, metavar="REP",
                        help="répertoire temporaire (débordement sur disque)")
    parser.add_argument("--spark-master", default=None, metavar="URL",
                        help="maître Spark (défaut : local[*])")
    parser.add_argument("--full", action="store_true",
                        help="tout relire et tout réagréger, sans tenir compte de l'état de l'agrégation "
                             "précédente")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = INCREMENTAL_HELP


def run(args: argparse.Namespace) -> int:
    """Run ``gar-analysis aggregate``; return 0 once the tables are written (findings included)."""
    result = aggregate_events(args.events, args.out, engine=args.engine, threshold=args.threshold,
                              memory_limit=args.memory_limit, threads=args.threads,
                              temp_directory=args.temp_dir, spark_master=args.spark_master,
                              full=getattr(args, "full", False))
    print(result.summary())
    for row in result.findings.head(20).itertuples():
        print(f"  [{row.gravite}] {row.regle} — {row.source} : {row.message}", file=sys.stderr)
    if len(result.findings) > 20:
        print(f"  … et {len(result.findings) - 20} autre(s) constat(s).", file=sys.stderr)
    return 0
