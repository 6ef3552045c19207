"""The ``gar-analysis`` command: one sub-command per stage of the pipeline.

Each sub-command lives in its own module, which exposes
``configure_parser(parser)`` and ``run(args) -> int``; this file only lists them,
so that adding a command touches one line here. Modules are imported lazily:
``gar-analysis --help`` stays fast.

No traceback ever reaches the user: bad input and bad arguments give one French
line naming the file (line, column) or the option, with status 2; an unexpected
exception is logged with its traceback to a file whose path is printed. The
helpers at the end validate arguments before any work starts.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path

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
    "cycle": ("gar_analysis.cycle", "Cycle mensuel : contrôles, tables, rapports, nouveautés, partage (publication versionnée)."),
}
#: Exit status of refused input or arguments, and of an unexpected failure.
EXIT_REFUSED = 2
EXIT_UNEXPECTED = 3

#: Commands whose outputs are published or feed publications: they refuse a bad ``GAR_SEUIL_SECRET`` up front.
THRESHOLD_COMMANDS = {"check", "build", "reports", "share", "aggregate", "cycle"}


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


def _one_line(exc: BaseException, shown: int = 3) -> str:
    """Return a refusal on one line: its problems (file, line, column) joined, the rest counted."""
    problems = getattr(exc, "problems", None)
    if problems:
        text = " ; ".join(str(p) for p in problems[:shown])
        if len(problems) > shown:
            text += f" (… et {len(problems) - shown} autre(s) problème(s))"
        return text
    return " ".join(str(exc).split("\n"))


def log_unexpected(exc: BaseException, command: str = "") -> Path:
    """Write the traceback of an unexpected exception to a log file; return its path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"gar-analysis-{command or 'erreur'}-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    candidates = [Path(os.environ.get("GAR_ANALYSIS_ROOT", Path(__file__).resolve().parents[1])) / "logs",
                  Path(tempfile.gettempdir())]
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(f"gar-analysis {command} {' '.join(sys.argv[1:])}\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return Path("(journal impossible à écrire)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0, 1, 2 refused, 3 unexpected failure)."""
    command = ""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)  # a bad option: argparse prints one line and the usage
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else EXIT_REFUSED
        command = args.command
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if getattr(args, "_missing", None):
            print(f"gar-analysis {args.command} : module indisponible ({args._missing}).", file=sys.stderr)
            return EXIT_REFUSED
        check_environment()
        if args.command in THRESHOLD_COMMANDS:
            config.disclosure_threshold()  # a bad GAR_SEUIL_SECRET stops the pipeline up front
        return int(importlib.import_module(args._module).run(args) or 0)
    except (DataError, ConfigError) as exc:
        print(f"gar-analysis {command} : {_one_line(exc)}".replace("gar-analysis  :", "gar-analysis :"),
              file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"gar-analysis {command} : interrompu.", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except OSError as exc:  # a file the command could not open or write
        where = exc.filename if exc.filename is not None else ""
        path = log_unexpected(exc, command)
        print(f"gar-analysis {command} : {where} : {exc.strerror or exc} (détail : {path}).", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - the boundary: never a traceback on the terminal
        path = log_unexpected(exc, command)
        print(f"gar-analysis {command} : erreur inattendue ({type(exc).__name__} : {exc}). "
              f"Détail (trace complète) dans {path}.", file=sys.stderr)
        return EXIT_UNEXPECTED


# --------------------------------------------------------------------------- validation helpers

def check_environment() -> None:
    """Refuse malformed environment variables before any work (one line naming the variable)."""
    problems = []
    raw = os.environ.get("GAR_NOTEBOOK_TIMEOUT", "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            problems.append(f"GAR_NOTEBOOK_TIMEOUT={raw!r} : un nombre de secondes positif est attendu.")
    if problems:
        raise ConfigError("variable d'environnement invalide : " + " ".join(problems))


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (refuses ``nan``, ``inf``, ``0``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"nombre attendu, reçu {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"nombre positif et fini attendu, reçu {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"entier attendu, reçu {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"entier supérieur ou égal à 1 attendu, reçu {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"entier attendu, reçu {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"entier positif ou nul attendu, reçu {text!r}")
    return value


def absolute(path: str | Path) -> Path:
    """Return a path resolved against the current directory (``~`` expanded)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path.cwd() / p


def _probe_writable(folder: Path, option: str) -> None:
    """Refuse ``folder`` (or its nearest existing parent) when a file cannot be created in it."""
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            raise ConfigError(f"{option} : {existing} est un lien symbolique cassé.")
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option} : {existing} est un fichier, un dossier est attendu à cet endroit.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".gar-ecriture-", dir=existing)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"{option} : impossible d'écrire dans {existing} ({exc.strerror or exc}).") from None


def output_file(path: str | Path, option: str = "--out") -> Path:
    """Validate a file to write: not a folder, its folder creatable and writable; return it absolute."""
    p = absolute(path)
    if p.is_dir():
        raise ConfigError(f"{option} : {p} est un dossier, un chemin de fichier est attendu.")
    _probe_writable(p.parent, option)
    return p


def output_dir(path: str | Path, option: str = "--out") -> Path:
    """Validate a folder to write into: not a file, creatable and writable; return it absolute."""
    p = absolute(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{option} : {p} est un fichier, un dossier est attendu.")
    _probe_writable(p, option)
    return p


def input_dir(path: str | Path, option: str = "--data") -> Path:
    """Validate a folder to read: it exists and is a folder; return it absolute."""
    p = absolute(path)
    if not p.exists():
        raise ConfigError(f"{option} : dossier introuvable : {p}.")
    if not p.is_dir():
        raise ConfigError(f"{option} : {p} est un fichier, un dossier est attendu.")
    return p


def input_file(path: str | Path, option: str) -> Path:
    """Validate a file to read: it exists and is a regular file; return it absolute."""
    p = absolute(path)
    if not p.exists():
        raise ConfigError(f"{option} : fichier introuvable : {p}.")
    if p.is_dir():
        raise ConfigError(f"{option} : {p} est un dossier, un fichier est attendu.")
    return p


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
