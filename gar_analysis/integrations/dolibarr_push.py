"""``gar-analysis crm push``: write usage statistics into Dolibarr third parties' extrafields."""
from __future__ import annotations

import argparse


def configure_parser(sub) -> None:
    """Add ``crm push`` to the ``crm`` sub-parsers."""
    sub.add_parser("push", help="Écrire des statistiques d'usage dans les extrafields des tiers Dolibarr.")


def run(args: argparse.Namespace) -> int:
    """Run ``gar-analysis crm push``."""
    raise NotImplementedError
