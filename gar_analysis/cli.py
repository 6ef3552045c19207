"""The ``gar-analysis`` command: one sub-command per stage of the pipeline.

Each sub-command lives in its own module, which exposes
``configure_parser(parser)`` and ``run(args) -> int``; this file only lists them,
so that adding a command touches one line here. Modules are imported lazily:
``gar-analysis --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import config
from .errors import ConfigError, DataError

#: sub-command → (module, one-line help in French)
COMMANDS = {
    "sample": ("gar_analysis.sample.cli", "Générer le jeu de données simulé (contrat de données, vérité plantée)."),
    "build": ("gar_analysis.build", "Construire les tables traitées (data/processed) depuis un répertoire de données."),
    "check": ("gar_analysis.checks.cli", "Détecter les incohérences et écrire les constats (CSV, HTML)."),
    "reports": ("gar_analysis.reporting.cli", "Produire les rapports HTML par territoire et par public (Papermill)."),
    "download": ("gar_analysis.sources.opendata", "Télécharger les données ouvertes (data.education.gouv.fr, INSEE)."),
    "crm": ("gar_analysis.integrations.dolibarr", "Synchroniser le CRM Dolibarr (crm pull, crm push)."),
    "share": ("gar_analysis.integrations.rocketchat", "Partager la synthèse d'un lot de rapports sur Rocket.Chat."),
    "aggregate": ("gar_analysis.events", "Agréger les événements bruts d'accès (DuckDB ou Spark)."),
}

#: Commands whose outputs are published or feed publications: they refuse a bad ``GAR_SEUIL_SECRET`` up front.
THRESHOLD_COMMANDS = {"check", "build", "reports", "share", "aggregate"}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="gar-analysis", description="Pilotage par la donnée du GAR.")
    parser.add_argument("-v", "--verbose", action="store_true", help="journal détaillé")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMANDE")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).configure_parser(p)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("gar_analysis"):
                p.set_defaults(_missing=str(exc))
            else:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "_missing", None):
        print(f"gar-analysis {args.command} : module indisponible ({args._missing}).", file=sys.stderr)
        return 2
    try:
        if args.command in THRESHOLD_COMMANDS:
            config.disclosure_threshold()  # a bad GAR_SEUIL_SECRET stops the pipeline up front
        return int(importlib.import_module(args._module).run(args) or 0)
    except (DataError, ConfigError) as exc:
        print(f"gar-analysis {args.command} : {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
