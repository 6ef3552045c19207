"""``gar-analysis sample``: write the simulated data directory and its ``truth.json``."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from .. import config
from ..errors import ConfigError

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``gar-analysis sample``."""
    parser.add_argument("--out", type=Path, default=config.SAMPLE_DIR,
                        help=f"répertoire de données à écrire (défaut : {config.SAMPLE_DIR})")
    parser.add_argument("--seed", type=int, default=config.SAMPLE_SEED,
                        help=f"graine du générateur (défaut : {config.SAMPLE_SEED})")
    parser.add_argument("--scale", choices=("default", "national"), default="default",
                        help="taille : default (≈ 3 000 établissements) ou national (≈ 60 000)")
    parser.add_argument("--years", type=int, default=2,
                        help="nombre d'années scolaires, par mois, jusqu'à août 2025 (défaut : 2)")
    parser.add_argument("--events", type=int, default=0,
                        help="nombre d'événements bruts d'accès à générer en plus (défaut : aucun)")
    parser.add_argument("--events-out", type=Path, default=None,
                        help="répertoire des événements bruts (défaut : <out>/evenements)")
    parser.add_argument("--extend-to", default=None, metavar="AAAA-MM",
                        help="prolonger l'échantillon existant de --out jusqu'à ce mois, avec des changements "
                             "plantés consignés dans truth.json (« changements »)")
    parser.add_argument("--no-changes", action="store_true",
                        help="avec --extend-to : ne planter aucun changement (bruit seulement)")


def run(args: argparse.Namespace) -> int:
    """Generate the sample; return 0."""
    from .generator import generate

    if args.years < 1:
        raise ConfigError(f"--years doit valoir au moins 1 (reçu : {args.years}).")
    if args.events < 0:
        raise ConfigError(f"--events doit être positif ou nul (reçu : {args.events}).")
    t0 = time.perf_counter()
    if getattr(args, "extend_to", None):  # a Namespace built in code may not carry it
        from .extend import extend

        truth = extend(args.out, args.extend_to, plant=not getattr(args, "no_changes", False))
        ch = truth["changements"]
        what = "avec changements plantés" if ch["planted"] else "sans changement planté"
        print(f"Échantillon {args.out} prolongé jusqu'à {truth['periode']['fin']} ({len(ch['mois'])} mois, {what}, "
              f"{time.perf_counter() - t0:.1f} s).")
        return 0
    if getattr(args, "no_changes", False):
        raise ConfigError("--no-changes ne s'emploie qu'avec --extend-to.")
    truth = generate(args.out, seed=args.seed, scale=args.scale, years=args.years)
    eff = truth["effectifs"]
    print(f"Échantillon simulé écrit dans {args.out} : {eff['etablissements']} établissements, "
          f"{eff['inscrits']} inscrits, {len(truth['anomalies'])} anomalies plantées "
          f"(graine {args.seed}, {time.perf_counter() - t0:.1f} s).")
    if args.events:
        from ..events import generate_events

        events_out = args.events_out or Path(args.out) / "evenements"
        generate_events(args.out, args.events, events_out, args.seed)
        print(f"{args.events} événements bruts écrits dans {events_out}.")
    return 0
