"""Glossary and methodology pages of a run, generated from the registries.

``write_reference_pages(run_dir)`` writes ``glossaire.html`` (one entry per indicator of
:data:`gar_analysis.indicators.INDICATORS`, anchored by its key, plus the symbols ``c``, ``z``,
``x``) and ``methodologie.html`` (funnel plot, observed / expected, shrinkage, each with a worked
example computed by the package's own functions on a small illustrative table; suppression
rules). Report pages link to ``../glossaire.html#<indicator key>`` under each chart and table.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .. import __version__, config
from ..formatting import fmt_decimal, fmt_number, fmt_percent
from .display import NOT_APPLICABLE, NOT_AVAILABLE, _esc

GLOSSARY_FILE = "glossaire.html"
METHODS_FILE = "methodologie.html"
_KINDS = {"count": "nombre", "percent": "part (en %)", "decimal": "taux (nombre moyen)", "days": "nombre de jours",
          "euros": "montant en euros"}
#: Words of the domain that readers meet on every page (French, plain).
TERMS = {
    "UAI": "Unité administrative immatriculée : le code national à 8 caractères de chaque établissement "
           "(par exemple 0350001A).",
    "académie": "Circonscription administrative de l'Éducation nationale (30 en France) ; une région académique "
                "en regroupe une ou plusieurs.",
    "accès": "Session réussie d'un utilisateur vers une ressource numérique par le GAR.",
    "affectation": "Attribution d'une ressource (une licence) à un élève ou à un enseignant par son établissement.",
    "ENT": "Espace numérique de travail : le portail de l'établissement depuis lequel élèves et enseignants "
           "ouvrent les ressources ; un projet ENT couvre les établissements d'une collectivité.",
    "référent GAR": "Personne de l'établissement chargée du GAR (inscription, affectations), nommée dans le CRM.",
}


def _page(title: str, body: str, *, index_href: str = "index.html") -> str:
    from .export import css

    now = datetime.now(timezone.utc).strftime("%d/%m/%Y à %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gar-analysis {_esc(__version__)}">
<title>{_esc(title)} – GAR</title>
<style>
{css()}
</style>
</head>
<body>
<a class="lien-evitement" href="#contenu">Aller au contenu</a>
<header class="entete">
<p class="marque">GAR · pilotage par la donnée · <a href="{_esc(index_href)}">tous les rapports du lot</a></p>
<h1>{_esc(title)}</h1>
</header>
<main id="contenu" tabindex="-1">
{body}
</main>
<footer class="pied"><div class="pied-contenu"><p>Provenance : page produite par gar-analysis {_esc(__version__)}
le {now}, à partir des définitions du paquet (registre des indicateurs et fonctions de calcul).</p></div></footer>
</body>
</html>
"""


# --------------------------------------------------------------------------- glossary


def glossary_html() -> str:
    """Return the glossary page: every registered indicator (anchor = its key), the symbols, the domain words."""
    from ..indicators import INDICATORS, _comparable
    from .display import toc_html

    entries = []
    for key, ind in INDICATORS.items():
        den = INDICATORS[ind.denominator].label.lower() if ind.denominator else None
        rows = [("Définition", ind.definition),
                ("Nature", _KINDS.get(ind.kind, ind.kind)),
                ("Numérateur" if den else "Ce qui est compté", ind.numerator)]
        if den:
            rows.append(("Dénominateur", f'{den} (<a href="#{ind.denominator}">définition</a>)'))
        rows += [("Population", ind.population), ("Période", ind.window), ("Source", ind.source),
                 ("Secret statistique", f"oui : entre 1 et {config.disclosure_threshold() - 1}, la valeur est "
                  "remplacée par « c »" if ind.people else "non : fait sur des établissements, toujours publié"),
                 ("Comparaison au national", "oui, au-delà des limites à 99,8 % (voir la méthodologie)"
                  if _comparable(ind) else "non")]
        dl = "".join(f"<dt>{_esc(k)}</dt><dd>{v if k == 'Dénominateur' else _esc(v)}</dd>" for k, v in rows if v)
        entries.append(f'<section class="gar-entree" id="{key}" aria-labelledby="{key}-titre">'
                       f'<h3 id="{key}-titre">{_esc(ind.label)}</h3><dl>{dl}</dl>'
                       f'<p class="gar-liens"><a class="gar-ancre" href="#{key}">Lien'
                       f'<span class="visuellement-cache"> permanent vers « {_esc(ind.label)} »</span></a> · '
                       f"identifiant : <code>{key}</code></p></section>")
    symbols = symbols_html()
    terms = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in TERMS.items())
    body = (f'<p>Chaque indicateur publié dans les rapports est défini ici une seule fois : les pages le citent '
            f'par ce lien. La <a href="{METHODS_FILE}">méthodologie</a> explique les comparaisons.</p>'
            f'<h2 id="indicateurs">Indicateurs</h2>{"".join(entries)}'
            f'<h2 id="symboles">Symboles des tableaux</h2>{symbols}'
            f'<h2 id="vocabulaire">Vocabulaire</h2><dl>{terms}</dl>')
    return _page("Glossaire des indicateurs", toc_html(body, minimum=2) + body)


def symbols_html() -> str:
    """Return the definition list of the table symbols ``c``, ``z``, ``x`` (GSS convention)."""
    t = config.disclosure_threshold()
    items = [("c", f"Confidentiel (secret statistique) : un nombre de personnes ou de leurs accès compris entre 1 et "
                   f"{t - 1}, ou un taux qui permettrait de le retrouver ; la valeur n'est pas publiée. Zéro est "
                   "publié : il ne révèle personne."),
             (NOT_APPLICABLE, "Sans objet : la valeur ne se calcule pas (un taux dont le dénominateur est nul, un "
                              "rapport au national pour un nombre, un coût sur une année incomplète)."),
             (NOT_AVAILABLE, "Non disponible : la valeur manque dans les sources."),
             ("–", "Dans une phrase ou une carte de chiffres clés : valeur non disponible.")]
    return ('<dl class="gar-symboles">' + "".join(f'<dt id="symbole-{s if s != "–" else "tiret"}"><abbr>{_esc(s)}'
                                                  f"</abbr></dt><dd>{_esc(v)}</dd>" for s, v in items) + "</dl>")


# --------------------------------------------------------------------------- methodology

#: Illustrative units of the worked examples (not real territories): schools and registered schools.
EXAMPLE_UNITS = pd.DataFrame({
    "unite": ["Unité A", "Unité B", "Unité C", "Unité D", "Unité E", "Unité F", "Unité G", "Unité H"],
    "etablissements": [8, 20, 60, 90, 150, 300, 400, 500],
    "inscrits": [7, 12, 40, 55, 90, 230, 160, 300],
})


def example_schools() -> pd.DataFrame:
    """Illustrative schools of the observed / expected example: 4 units, rural or not, registered or not."""
    rows = []
    # (unit, rural schools, of which registered, urban schools, of which registered)
    for unit, n_rur, k_rur, n_urb, k_urb in (("Unité P", 40, 14, 20, 14), ("Unité Q", 10, 5, 50, 35),
                                             ("Unité R", 30, 18, 30, 21), ("Unité S", 20, 6, 40, 30)):
        rows += [(unit, True, i < k_rur) for i in range(n_rur)] + [(unit, False, i < k_urb) for i in range(n_urb)]
    return pd.DataFrame(rows, columns=["unite", "rural", "inscrit"]).astype({"inscrit": int})


def _funnel_example() -> tuple[str, pd.Series]:
    from ..gaps import funnel_table
    from .display import table_html

    t = funnel_table(EXAMPLE_UNITS, "inscrits", "etablissements", "unite", correction="none")
    p0 = t.attrs["target"]
    shown = pd.DataFrame({"unite": t["unit"], "etablissements": t["denominator"].astype(int),
                          "inscrits": t["numerator"].astype(int), "part": t["rate"],
                          "limite_basse": t["lower_998"], "limite_haute": t["upper_998"],
                          "position": t["position_998"], "part_retrecie": t["shrunk_rate"]})
    table = table_html(shown, "Exemple : part des établissements inscrits et limites de l'entonnoir à 99,8 %",
                       formats={"part": "percent", "limite_basse": "percent", "limite_haute": "percent",
                                "part_retrecie": "percent", "etablissements": "int", "inscrits": "int"},
                       labels={"unite": "Unité (fictive)", "part": "Part inscrite (%)",
                               "limite_basse": "Limite basse à 99,8 % (%)", "limite_haute": "Limite haute à 99,8 % (%)",
                               "position": "Position", "part_retrecie": "Part rétrécie (%)"},
                       anchor="exemple-entonnoir", indicators=["part_inscrits"])
    out = t[t["position_998"] != "conforme"]
    small = t.loc[t["denominator"].idxmin()]
    big = t.loc[t["denominator"].idxmax()]
    flagged = (f"{out.iloc[0]['unit']} ({fmt_percent(out.iloc[0]['rate'])} sur "
               f"{fmt_number(out.iloc[0]['denominator'])} établissements) est hors des limites "
               f"({fmt_percent(out.iloc[0]['lower_998'])} à {fmt_percent(out.iloc[0]['upper_998'])}) : son écart "
               "dépasse ce que le hasard explique." if len(out) else "Aucune unité n'est hors des limites.")
    return (f"<p>Dans cet exemple calculé par le paquet (fonction <code>gaps.funnel_table</code>), la part de "
            f"référence est {fmt_percent(p0)}. {_esc(small['unit'])} n'a que {fmt_number(small['denominator'])} "
            f"établissements : ses limites vont de {fmt_percent(small['lower_998'])} à "
            f"{fmt_percent(small['upper_998'])}, si larges que {fmt_percent(small['rate'])} reste compatible avec "
            f"le hasard. Pour {_esc(big['unit'])} ({fmt_number(big['denominator'])} établissements), elles se "
            f"resserrent de {fmt_percent(big['lower_998'])} à {fmt_percent(big['upper_998'])}. "
            f"{_esc(flagged)}</p>" + table), small


def _oe_example() -> str:
    from ..gaps import observed_vs_expected
    from .display import table_html

    schools = example_schools()
    t = observed_vs_expected(schools, "inscrit", ["rural"], "unite", correction="none")
    shown = pd.DataFrame({"unite": t["unit"], "etablissements": t["n_ecoles"].astype(int),
                          "observe": t["observed"], "attendu": t["expected"], "ratio": t["ratio"],
                          "ratio_retreci": t["shrunk_ratio"]})
    table = table_html(shown, "Exemple : inscrits observés et attendus compte tenu de la part d'écoles rurales",
                       formats={"observe": "int", "attendu": "decimal", "ratio": "ratio", "ratio_retreci": "ratio",
                                "etablissements": "int"},
                       labels={"unite": "Unité (fictive)", "etablissements": "Établissements (nombre)",
                               "observe": "Inscrits observés (nombre)", "attendu": "Inscrits attendus (nombre)",
                               "ratio": "Rapport observé / attendu", "ratio_retreci": "Rapport rétréci"},
                       anchor="exemple-observe-attendu")
    r = t.sort_values("ratio").iloc[0]
    rural = schools.groupby("unite")["rural"].mean()
    return (f"<p>Exemple calculé par le paquet (fonction <code>gaps.observed_vs_expected</code>) : dans ces quatre "
            f"unités fictives, les établissements ruraux s'inscrivent moins souvent. {_esc(r['unit'])} compte "
            f"{fmt_percent(rural[r['unit']], 0)} d'établissements ruraux ; le modèle national en attendait "
            f"{fmt_decimal(r['expected'])} inscrits, on en observe {fmt_number(r['observed'])} : rapport "
            f"{fmt_number(r['ratio'], 2)}. Un rapport inférieur à 1 dit « moins que ce que sa composition laisse "
            "prévoir », pas « moins que les autres ».</p>" + table)


def methods_html() -> str:
    """Return the methodology page for a non-statistician, with worked examples computed by the package."""
    from .display import toc_html

    funnel, small = _funnel_example()
    t = config.disclosure_threshold()
    body = f"""
<p>Les rapports comparent des territoires de tailles très différentes. Trois outils évitent de prendre le hasard
pour un résultat ; chacun est illustré par un exemple calculé par les fonctions mêmes qui produisent les rapports,
sur des unités fictives. Les définitions des indicateurs sont dans le <a href="{GLOSSARY_FILE}">glossaire</a>.</p>
<h2 id="que-faire">Ce que vous pouvez en faire</h2>
<ul><li>Une unité « au-dessus » : ses pratiques méritent d'être connues et partagées.</li>
<li>Une unité « en dessous » : un accompagnement peut aider ; l'écart est à comprendre avec elle, ce n'est pas un
classement.</li>
<li>Une unité « conforme » : son écart à la référence reste dans ce que le hasard produit pour sa taille.</li></ul>
<h2 id="entonnoir">Le graphique en entonnoir</h2>
<p>Chaque unité est un point : sa taille en abscisse, sa valeur en ordonnée. Autour de la valeur de référence, deux
courbes dessinent un entonnoir : une petite unité varie beaucoup par le seul hasard (quelques établissements de plus
ou de moins changent sa part de plusieurs points), une grande beaucoup moins. Une unité n'est dite au-dessus ou en
dessous de la référence que si elle sort des limites à 99,8 % : un écart pareil n'arrive par hasard qu'une fois sur
500. Quand les unités varient entre elles plus que le hasard ne le prévoit (sur-dispersion), les limites sont
élargies d'autant.</p>
{funnel}
<h2 id="observe-attendu">Observé et attendu</h2>
<p>Deux académies n'ont pas les mêmes établissements : plus ou moins ruraux, de tailles et de publics différents. Le
nombre attendu d'une unité est ce qu'on observerait si chacun de ses établissements se comportait comme les
établissements comparables du pays (même ruralité, même niveau, même IPS…). Le rapport observé / attendu compare
l'unité à son propre contexte : 1,20 signifie 20 % de plus que prévu.</p>
{_oe_example()}
<h2 id="retrecissement">L'estimation rétrécie</h2>
<p>Une petite unité peut afficher une valeur extrême par hasard. L'estimation rétrécie la ramène vers la référence
d'autant plus que l'unité est petite et incertaine ; une grande unité garde presque sa valeur. Dans l'exemple de
l'entonnoir, {_esc(small['unit'])} ({fmt_number(small['denominator'])} établissements) passe de
{fmt_percent(small['rate'])} à {fmt_percent(small['shrunk_rate'])}. Les rangs sont donnés avec leur intervalle,
jamais seuls.</p>
<h2 id="secret-statistique">Secret statistique et symboles</h2>
<p>Aucun élève ni enseignant ne doit pouvoir être reconnu. Un nombre de personnes ou de leurs accès compris entre 1
et {t - 1} est remplacé par « c », de même qu'un taux calculé sur un tel nombre ou qui permettrait de le retrouver ;
quand une seule case d'un total serait cachée, une deuxième l'est aussi, pour qu'on ne puisse pas la recalculer par
différence. Les nombres d'établissements, de conventions et d'actions, faits publics, sont toujours publiés. Les
fichiers CSV sous chaque tableau contiennent exactement les chiffres publiés, symboles compris.</p>
{symbols_html()}
<h2 id="limites">Limites</h2>
<p>Ce sont des associations et des écarts observés, pas des causes : un écart peut venir de la qualité des
remontées, d'un facteur non mesuré ou d'un changement récent. Le détail technique (estimateurs, τ², diagnostics)
figure dans les blocs « Détails techniques » des rapports et dans la documentation du projet
(<code>docs/methods.md</code>).</p>
"""
    body = body.replace(f"../{GLOSSARY_FILE}#", f"{GLOSSARY_FILE}#")  # this page sits beside the glossary
    return _page("Méthodologie", toc_html(body) + body)


def write_reference_pages(run_dir: str | Path) -> list[Path]:
    """Write ``glossaire.html`` and ``methodologie.html`` into a run folder; return their paths.

    Parameters
    ----------
    run_dir : str or Path
        ``reports/<run-id>`` (created if needed).
    """
    from .export import publish

    run_dir = Path(run_dir)
    return [publish(run_dir / GLOSSARY_FILE, glossary_html()), publish(run_dir / METHODS_FILE, methods_html())]
