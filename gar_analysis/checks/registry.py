"""Rule registry and the findings table.

Each rule is one small named function registered with :func:`rule`; it takes
a :class:`~gar_analysis.checks.context.Context` and returns a findings frame
built with :func:`make_findings`. The registry also holds, for each rule, the
French title, a one-line explanation and what to do, used by the HTML report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

#: Columns of the findings table (and of the CSV written by ``gar-analysis check``).
COLUMNS = ["regle", "gravite", "source", "ligne", "uai", "mois", "id_ressource", "message"]
#: Severities, most serious first.
GRAVITES = ("erreur", "avertissement", "info")


@dataclass(frozen=True)
class Rule:
    """One quality rule.

    Parameters
    ----------
    id : str
        Rule id (``uai_invalide``…), the ``regle`` column of findings.
    titre : str
        Short French title.
    gravite : str
        Default severity of its findings.
    needs : tuple of str
        Files (contract names) without which the rule cannot run.
    explication : str
        One French sentence: what the rule detects.
    action : str
        One French sentence: what to do about a finding.
    func : callable
        ``func(ctx) -> DataFrame`` returning findings.
    any_of : tuple of str
        Files of which at least one must be present (rules that scan every file).
    responsable : str
        Who fixes a finding (:data:`RESPONSABLES`); empty: whoever produces the file it is in
        (:data:`SOURCE_RESPONSABLES`, see :func:`responsable_of`).
    """

    id: str
    titre: str
    gravite: str
    needs: tuple[str, ...]
    explication: str
    action: str
    func: Callable = field(compare=False, repr=False)
    any_of: tuple[str, ...] = ()
    responsable: str = ""


#: Registered rules, in report order.
RULES: dict[str, Rule] = {}


_ETAB, _ENT, _REG, _COLL, _EDIT, _GAR = ("établissement", "ENT", "rectorat (annuaire des établissements)",
                                         "collectivité", "éditeur", "équipe GAR (CRM)")
#: Who fixes each rule's findings: the one place (a rule left out: whoever produces the file).
RESPONSABLES = {
    "uai_inconnu": _REG, "territoire_incoherent": _REG, "ips_hors_plage": _REG, "valeur_non_exploitable": _REG,
    "ressource_inconnue": _EDIT, "editeur_orthographes": _EDIT,
    "acces_avant_inscription": _ETAB, "acces_sans_abonnement": _ETAB, "affectations_sup_licences": _ETAB,
    "accedants_sup_effectif": _ETAB,
    "incoherence_dnma": _ENT, "ressources_ent_gar": _ENT, "rupture_serie": _ENT, "mois_manquant": _ENT,
    "depense_incoherente": _COLL,
}
#: Producer of each source folder (``referentiel/annuaire.csv`` → the rectorat's register…).
SOURCE_RESPONSABLES = {"referentiel/ips": "DEPP (indices de position sociale)", "referentiel": _REG,
                       "gar/ressources": _EDIT, "gar/abonnements": _ETAB, "gar/affectations": _ETAB, "gar": "équipe GAR (exports)",
                       "crm": _GAR, "budget": _COLL, "dnma": _ENT}


def rule_title(regle: str) -> str:
    """Return a rule's French title for readers, lower-cased (« rupture de série »); the id if unknown.

    Examples
    --------
    >>> rule_title("rupture_serie"), rule_title("uai_invalide")
    ('rupture de série', 'UAI invalide')
    """
    r = RULES.get(str(regle))
    if r is None:
        return str(regle)
    t = r.titre
    return t[0].lower() + t[1:] if t[1:2].islower() else t  # « UAI invalide » keeps its acronym


def responsable_of(regle: str, source: object = None) -> str:
    """Return who fixes a finding: the rule's :data:`RESPONSABLES`, else the producer of its source file."""
    r = RULES.get(str(regle))
    if r is not None and r.responsable:
        return r.responsable
    src = str(source or "") if source is not None and not (isinstance(source, float) and source != source) else ""
    for prefix, who in SOURCE_RESPONSABLES.items():
        if src.startswith(prefix):
            return who
    return _GAR


def rule(id: str, titre: str, gravite: str, *, needs: tuple[str, ...] = (), any_of: tuple[str, ...] = (),
         explication: str, action: str) -> Callable:
    """Register the decorated function as a quality rule."""
    if gravite not in GRAVITES:
        raise ValueError(f"gravité inconnue : {gravite}")

    def deco(func: Callable) -> Callable:
        RULES[id] = Rule(id, titre, gravite, tuple(needs), explication, action, func, tuple(any_of),
                         RESPONSABLES.get(id, ""))
        return func

    return deco


def empty_findings() -> pd.DataFrame:
    """Return an empty findings frame with the right columns and dtypes."""
    return pd.DataFrame({
        "regle": pd.Series(dtype="string"), "gravite": pd.Series(dtype="string"),
        "source": pd.Series(dtype="string"), "ligne": pd.Series(dtype="Int64"),
        "uai": pd.Series(dtype="string"), "mois": pd.Series(dtype="string"),
        "id_ressource": pd.Series(dtype="string"), "message": pd.Series(dtype="string")})


def _col(value, n: int, dtype: str) -> pd.Series:
    if value is None:
        return pd.Series([pd.NA] * n, dtype=dtype)
    if isinstance(value, (pd.Series, pd.Index)):
        return pd.Series(value.to_numpy(), dtype=dtype if dtype != "Int64" else None).astype(dtype)
    if isinstance(value, (list, tuple)) or hasattr(value, "__array__"):
        return pd.Series(list(value) if not hasattr(value, "__array__") else value).astype(dtype)
    return pd.Series([value] * n, dtype=dtype)


def make_findings(regle: str, gravite: str, source: str, message, *, ligne=None, uai=None, mois=None,
                  id_ressource=None) -> pd.DataFrame:
    """Build a findings frame from scalars or aligned columns.

    Parameters
    ----------
    regle, gravite, source : str
        Rule id, severity and file path relative to the data directory.
    message : str or Series
        French sentence(s); a Series fixes the number of findings.
    ligne, uai, mois, id_ressource : scalar, Series or array, optional
        Keys of each finding (None: empty).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`.
    """
    lengths = [len(v) for v in (message, ligne, uai, mois, id_ressource)
               if isinstance(v, (pd.Series, pd.Index, list, tuple)) or hasattr(v, "__array__")]
    n = lengths[0] if lengths else 1
    if n == 0:
        return empty_findings()
    out = pd.DataFrame({
        "regle": pd.Series([regle] * n, dtype="string"),
        "gravite": pd.Series([gravite] * n, dtype="string"),
        "source": pd.Series([source] * n, dtype="string"),
        "ligne": _col(ligne, n, "Int64"),
        "uai": _col(uai, n, "string"),
        "mois": _col(mois, n, "string"),
        "id_ressource": _col(id_ressource, n, "string"),
        "message": _col(message, n, "string"),
    })
    for c in ("uai", "mois", "id_ressource"):
        out[c] = out[c].mask(out[c].str.strip() == "")
    return out


def concat_findings(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate findings frames, sorted by severity, rule, source and line."""
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return empty_findings()
    out = pd.concat(frames, ignore_index=True)[COLUMNS]
    order = {g: i for i, g in enumerate(GRAVITES)}
    rule_order = {r: i for i, r in enumerate(RULES)}
    out = out.assign(_g=out["gravite"].map(order), _r=out["regle"].map(rule_order).fillna(len(RULES)))
    out = out.sort_values(["_g", "_r", "source", "ligne", "uai", "mois"], na_position="last", kind="stable")
    return out.drop(columns=["_g", "_r"]).reset_index(drop=True)
