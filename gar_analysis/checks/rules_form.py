"""Form rules: files that cannot be read, and cells the loaders could not use.

The loaders are run leniently by :class:`~gar_analysis.checks.context.Context`:
a missing, out-of-list or unparsable value becomes NA, its row is left out of
the rules that relate files, and the problem is kept with its file, line,
column, value and what was expected. These rules turn them into findings, so
that one bad cell never stops the checks.
"""
from __future__ import annotations

import pandas as pd

from ..contract import CONTRACT, FORM_KINDS, REFERENCE_FILES
from .context import Context, source_path
from .registry import concat_findings, make_findings, rule

ALL_FILES = (*CONTRACT, *REFERENCE_FILES)


def _form_findings(ctx: Context, kind: str) -> pd.DataFrame:
    out = []
    for name in ctx.present(ALL_FILES):
        probs = [p for p in ctx.attrs.get(name, {}).get("problemes", ()) if getattr(p, "kind", None) == kind]
        if not probs:
            continue
        df = ctx.frame(name)
        lines = pd.Series([p.line for p in probs], dtype="Int64")

        def col(c):
            if c not in df.columns:
                return None
            return pd.Series(df[c].reindex(lines.fillna(-1).astype("int64")).to_numpy(), dtype="string")

        msg = pd.Series([(f"Colonne « {p.column} » : " if p.column else "") + p.message for p in probs],
                        dtype="string")
        out.append(make_findings(kind, "erreur", source_path(name), msg, ligne=lines, uai=col("uai"),
                                 mois=col("mois"), id_ressource=col("id_ressource")))
    return concat_findings(out)


_LEFT_OUT = ("La ligne est écartée des contrôles qui ont besoin de cette valeur et des tables traitées ; "
             "les autres lignes sont contrôlées normalement.")


@rule("fichier_illisible", "Fichier illisible", "erreur", any_of=ALL_FILES,
      explication="Un fichier présent ne peut pas être lu du tout (encodage, séparateur, colonne obligatoire "
                  "absente, fichier vide, dossier, lien cassé) ; les autres fichiers sont contrôlés.",
      action="Ré-exporter le fichier au format du contrat de données (UTF-8, séparateur « ; », en-tête "
             "complet) ; les contrôles qui en ont besoin reprendront au prochain passage.")
def fichier_illisible(ctx: Context) -> pd.DataFrame:
    """One finding per present file that could not be read."""
    out = []
    for name, exc in ctx.unreadable.items():
        probs = list(getattr(exc, "problems", ()))
        first = probs[0] if probs else None
        where = ""
        if first is not None and first.line is not None:
            where = f"ligne {first.line}" + (f", colonne « {first.column} »" if first.column else "") + " : "
        text = first.message if first is not None else str(exc)
        more = f" ({len(probs) - 1} autre(s) problème(s))" if len(probs) > 1 else ""
        out.append(make_findings("fichier_illisible", "erreur", source_path(name),
                                 f"Fichier illisible, {where}{text}{more} Les contrôles qui en ont besoin ne "
                                 "sont pas effectués.",
                                 ligne=None if first is None else first.line))
    return concat_findings(out)


@rule("valeur_manquante", "Valeur manquante", "erreur", any_of=ALL_FILES,
      explication="Une cellule obligatoire est vide (un UAI, un mois, un compte…). "
                  "Un établissement EduGAR, sans ENT, peut laisser vide son projet ENT. " + _LEFT_OUT,
      action="Compléter la valeur à la source et ré-exporter le fichier.")
def valeur_manquante(ctx: Context) -> pd.DataFrame:
    """Flag empty required cells."""
    return _form_findings(ctx, "valeur_manquante")


@rule("valeur_hors_liste", "Valeur hors liste", "erreur", any_of=ALL_FILES,
      explication="Une valeur d'une liste fermée (profil, support, statut, degré…) n'est ni une valeur du "
                  "contrat ni une graphie connue des exports réels (« 1 » pour premier, « actif » pour "
                  "signé…). " + _LEFT_OUT,
      action="Corriger la valeur, ou, si c'est une graphie légitime d'un export réel, l'ajouter aux "
             "correspondances documentées (contract.ALIASES, docs/data-contract.md).")
def valeur_hors_liste(ctx: Context) -> pd.DataFrame:
    """Flag values outside a closed list."""
    return _form_findings(ctx, "valeur_hors_liste")


@rule("format_invalide", "Format invalide", "erreur", any_of=ALL_FILES,
      explication="Une valeur ne se lit pas dans son format : date, mois, nombre (« 2.000 » dans un compte est "
                  "ambigu : séparateur de milliers ou décimal ?), « inf », « nan », chiffres non ASCII, ligne "
                  "au mauvais nombre de champs. " + _LEFT_OUT,
      action="Corriger la valeur à la source (dates AAAA-MM-JJ, mois AAAA-MM, nombres sans séparateur de "
             "milliers, décimale avec point ou virgule).")
def format_invalide(ctx: Context) -> pd.DataFrame:
    """Flag unparsable values and records with the wrong number of fields."""
    return _form_findings(ctx, "format_invalide")


__all__ = ["FORM_KINDS", "ALL_FILES"]
