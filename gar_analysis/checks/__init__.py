"""Quality checks: a registry of named rules, their findings and an HTML quality report.

``run_checks(data_dir)`` runs every rule on a data directory and returns the
findings (``regle;gravite;source;ligne;uai;mois;id_ressource;message``);
``quality_report_html(findings, title=...)`` turns them into an accessible,
self-contained French report (or a section of a dashboard).
"""
from __future__ import annotations

from . import rules_form, rules_keys, rules_privacy, rules_usage, rules_values  # noqa: F401  (registers the rules)
from .engine import read_findings_csv, run_checks, write_findings_csv
from .registry import COLUMNS, GRAVITES, RULES, Rule, make_findings

#: Rule ids in report order (form rules, the issue's 16 rules, then the added ones).
RULE_ORDER = ["fichier_illisible", "valeur_manquante", "valeur_hors_liste", "format_invalide", "uai_invalide", "doublon", "uai_inconnu", "ressource_inconnue", "territoire_incoherent",
              "acces_avant_inscription", "acces_sans_abonnement", "periode_invalide", "valeur_negative",
              "accedants_sup_effectif", "affectations_sup_licences", "rupture_serie", "mois_manquant",
              "incoherence_dnma", "ips_hors_plage", "depense_incoherente", "valeur_non_exploitable"]
_ordered = {k: RULES[k] for k in RULE_ORDER if k in RULES}
_ordered.update({k: v for k, v in RULES.items() if k not in _ordered})
RULES.clear()
RULES.update(_ordered)


def quality_report_html(findings, *, title: str = "Qualité des données", standalone: bool = True, **kwargs) -> str:
    """Return the HTML quality report (see :func:`gar_analysis.checks.report.quality_report_html`)."""
    from .report import quality_report_html as _html

    return _html(findings, title=title, standalone=standalone, **kwargs)


__all__ = ["COLUMNS", "GRAVITES", "RULES", "RULE_ORDER", "Rule", "make_findings", "quality_report_html",
           "read_findings_csv", "run_checks", "write_findings_csv"]
