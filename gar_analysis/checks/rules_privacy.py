"""Rule on personal data: an extra input column that looks like a personal identifier.

Extra columns are allowed on input but never travel into the processed tables
(``build`` keeps each file's contract columns only, :class:`gar_analysis.build.ContractColumns`).
A pupil or staff identifier should not have been sent at all: this rule says
where it is (file, line, column) without ever quoting a value.
"""
from __future__ import annotations

import re
import unicodedata

import pandas as pd

from ..contract import CONTRACT
from .context import Context, source_path
from .registry import concat_findings, make_findings, rule

#: Words of a column name that point to a personal identifier (lower case, accents removed).
PERSONAL_WORDS = frozenset({"ine", "nom", "prenom", "prenoms", "email", "mail", "courriel", "naissance"})
#: Whole column names (normalised) of a personal identifier.
PERSONAL_NAMES = frozenset({"id_eleve", "ideleve", "eleve_id", "identifiant_eleve", "numero_eleve", "num_eleve",
                            "id_accedant", "id_utilisateur", "id_personne", "identifiant_personnel"})
#: Values shaped like an INE (identifiant national élève: 10 digits + 1 letter, or 9 digits + 2 letters).
INE_RE = r"[0-9]{10}[A-Za-z]|[0-9]{9}[A-Za-z]{2}"
#: Values shaped like an e-mail address.
EMAIL_RE = r"[^@\s;]+@[^@\s;]+\.[A-Za-z]{2,}"


def _normalise(name: str) -> str:
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def personal_name(name: str) -> bool:
    """Return whether a column name points to a personal identifier.

    Examples
    --------
    >>> [personal_name(c) for c in ("ine", "id_eleve", "Prénom", "e-mail", "nom_usage", "montant", "commentaire")]
    [True, True, True, True, True, False, False]
    """
    norm = _normalise(name)
    return norm in PERSONAL_NAMES or bool(PERSONAL_WORDS & set(norm.split("_")))


def personal_values(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return masks of the cells shaped like an INE and like an e-mail address.

    Each distinct value is tested once.

    Examples
    --------
    >>> ine, mail = personal_values(pd.Series(["1234567890A", "123456789AB", "x@y.fr", "0350001A", ""]))
    >>> ine.tolist(), mail.tolist()
    ([True, True, False, False, False], [False, False, True, False, False])
    """
    codes, uniques = pd.factorize(values.astype("string").str.strip(), use_na_sentinel=True)
    u = pd.Series(uniques, dtype="string")
    out = []
    for pattern in (INE_RE, EMAIL_RE):
        hit = u.str.fullmatch(pattern).fillna(False).to_numpy(bool)
        mask = hit[codes] & (codes >= 0) if len(u) else codes >= 0
        out.append(pd.Series(mask, index=values.index))
    return out[0], out[1]


@rule("identifiant_personnel", "Identifiant personnel dans une colonne non prévue", "erreur", any_of=tuple(CONTRACT),
      explication="Une colonne ajoutée à un fichier, hors du contrat de données, porte un nom ou des valeurs "
                  "d'identifiant personnel (INE, identifiant d'élève, nom, prénom, adresse électronique) ; elle "
                  "n'est jamais reprise dans les tables traitées.",
      action="Retirer cette colonne de l'export à la source : aucune donnée nominative ou identifiante n'est "
             "nécessaire au pilotage.")
def identifiant_personnel(ctx: Context) -> pd.DataFrame:
    """Flag extra columns whose name or content looks like a personal identifier (values never quoted)."""
    out = []
    for name, fs in CONTRACT.items():
        if not ctx.has(name):
            continue
        df = ctx.frame(name)
        source = source_path(name)
        for col in (c for c in df.columns if c not in fs.names):
            if personal_name(col):
                out.append(make_findings(
                    "identifiant_personnel", "erreur", source, ligne=1,
                    message=f"Colonne « {col} » non prévue par le contrat : son nom désigne un identifiant "
                            "personnel ; elle n'est pas reprise dans les tables traitées. La retirer de l'export "
                            "à la source."))
                continue
            ine, mail = personal_values(df[col])
            for mask, what in ((ine, "en forme d'INE (identifiant national élève)"),
                               (mail, "en forme d'adresse électronique")):
                if mask.any():
                    first = int(df.index[mask.to_numpy()][0])
                    out.append(make_findings(
                        "identifiant_personnel", "erreur", source, ligne=first,
                        message=f"Colonne « {col} » non prévue par le contrat : {int(mask.sum())} valeur(s) "
                                f"{what}, la première ligne {first} ; elle n'est pas reprise dans les tables "
                                "traitées. La retirer de l'export à la source."))
    return concat_findings(out)
