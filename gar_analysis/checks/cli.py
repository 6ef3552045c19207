"""``gar-analysis check``: run the quality rules on a data directory, write the findings (CSV, HTML).

Exit status: 0 when the checks ran (whatever they found, unreadable files
included: each is one ``fichier_illisible`` finding), 1 with ``--fail-on erreur``
when an ``erreur`` was found, 2 when no file could be read or the arguments are
wrong (raised as DataError/ConfigError and reported by :mod:`gar_analysis.cli`).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``check`` options."""
    parser.add_argument("--data", type=Path, required=True, help="répertoire de données à contrôler")
    parser.add_argument("--out", type=Path, required=True, help="fichier CSV des constats à écrire")
    parser.add_argument("--format", choices=("csv", "html"), default="csv",
                        help="html : écrire aussi le rapport qualité HTML (à côté du CSV, extension .html)")
    parser.add_argument("--html", type=Path, default=None, help="chemin du rapport qualité HTML à écrire")
    parser.add_argument("--fail-on", choices=("erreur", "avertissement"), default=None,
                        help="statut de sortie 1 si un constat de cette gravité (ou plus grave) est trouvé")
    parser.add_argument("--regles", default=None,
                        help="règles à exécuter, séparées par des virgules (défaut : toutes)")
    parser.add_argument("--titre", default="Qualité des données", help="titre du rapport HTML")


def run(args: argparse.Namespace) -> int:
    """Run the checks; return the exit status."""
    from . import run_checks, write_findings_csv
    from .report import quality_report_html

    from ..cli import input_dir, output_file

    data = input_dir(args.data, "--data")
    out = output_file(args.out, "--out")
    html_path = args.html or (out.with_suffix(".html") if args.format == "html" else None)
    if html_path is not None:
        html_path = output_file(html_path, "--html")
        if html_path == out:
            raise ConfigError("--html : le rapport HTML et le CSV des constats doivent être deux fichiers différents.")
    rules = [r.strip() for r in args.regles.split(",") if r.strip()] if getattr(args, "regles", None) else None
    findings = run_checks(data, rules=rules)
    write_findings_csv(findings, out)
    if html_path is not None:
        from ..io import atomic_write_text

        simulated = (data / "truth.json").exists()
        atomic_write_text(html_path, quality_report_html(findings, title=args.titre, simulated=simulated,
                                                         data_label=str(data)))
    counts = findings["gravite"].value_counts()
    summary = ", ".join(f"{int(counts.get(g, 0))} {g}" for g in ("erreur", "avertissement", "info"))
    print(f"Constats écrits dans {out} ({summary})." + (f" Rapport : {html_path}." if html_path else ""))
    unreadable = findings.attrs.get("illisibles") or {}
    if unreadable:
        print(f"Fichier(s) illisible(s), non contrôlé(s) : {', '.join(unreadable)} (constats fichier_illisible).")
    left = {}
    for counts in (findings.attrs.get("ecartees") or {}).values():
        for src, n in counts.items():
            left[src] = max(left.get(src, 0), n)
    if left:
        print("Lignes de forme invalide écartées des contrôles croisés : "
              + ", ".join(f"{src} {n}" for src, n in left.items()) + ".")
    if args.fail_on:
        levels = ("erreur",) if args.fail_on == "erreur" else ("erreur", "avertissement")
        if findings["gravite"].isin(levels).any():
            print(f"Échec demandé (--fail-on {args.fail_on}) : au moins un constat de gravité "
                  f"{' ou '.join(levels)}.", file=sys.stderr)
            return 1
    return 0
