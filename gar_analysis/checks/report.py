"""The HTML quality report: what is wrong in the data, where, and what to do about it.

Self-contained (inline CSS, no script, no network), responsive, in French,
accessible (``lang="fr"``, one ``h1``, ordered headings, tables with caption
and ``th scope``, skip link, landmarks, contrast ≥ 4.5:1). With
``standalone=False`` it returns a ``<section>`` to embed in a dashboard, whose
headings start at ``h2``.
"""
from __future__ import annotations

import base64
import html
import re
from datetime import datetime

import pandas as pd
from babel.numbers import format_decimal

from .. import territories
from .evaluation import SKIPPED_MARK
from .registry import GRAVITES, RULES

#: How many failing rows are shown per rule.
FIRST_ROWS = 10
GRAVITE_LABEL = {"erreur": "Erreur", "avertissement": "Avertissement", "info": "Information"}
GRAVITE_HELP = {"erreur": "donnée fausse ou inexploitable, à corriger à la source",
                "avertissement": "donnée suspecte, à vérifier",
                "info": "pour information, rien à corriger"}

CSS = """
.gq{--fg:#1a1a1a;--muted:#4a4a4a;--line:#c8c8c8;--bg-alt:#f3f4f6;--err:#a4001d;--warn:#7a4100;--info:#1f4e79;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:var(--fg);line-height:1.5;
max-width:72rem;margin:0 auto;padding:0 1rem}
.gq h1{font-size:1.8rem;margin:1rem 0 .5rem}.gq h2{font-size:1.4rem;margin:2rem 0 .5rem;
border-bottom:2px solid var(--line)}.gq h3{font-size:1.15rem;margin:1.5rem 0 .4rem}
.gq p{margin:.4rem 0}.gq .muted{color:var(--muted)}
.gq .cards{display:flex;flex-wrap:wrap;gap:.75rem;list-style:none;padding:0;margin:1rem 0}
.gq .card{flex:1 1 10rem;border:1px solid var(--line);border-left:6px solid var(--info);border-radius:.4rem;
padding:.6rem .8rem;background:#ffffff}
.gq .card.erreur{border-left-color:var(--err)}.gq .card.avertissement{border-left-color:var(--warn)}
.gq .card strong{display:block;font-size:1.6rem}
.gq .tw{overflow-x:auto;margin:.5rem 0 1rem}
.gq table{border-collapse:collapse;width:100%;min-width:34rem;font-size:.95rem}
.gq table.wide{min-width:46rem}
.gq caption{text-align:left;font-weight:600;padding:.3rem 0;color:var(--fg)}
.gq th,.gq td{border:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
.gq thead th{background:var(--bg-alt)}.gq td.n{text-align:right;white-space:nowrap}
.gq .badge{display:inline-block;padding:0 .45rem;border-radius:.3rem;color:#ffffff;font-size:.85rem;white-space:nowrap}
.gq .badge.erreur{background:var(--err)}.gq .badge.avertissement{background:var(--warn)}
.gq .badge.info{background:var(--info)}
.gq .todo{background:#eef5ee;border-left:4px solid #2e6b30;padding:.4rem .7rem;margin:.5rem 0}
.gq code{font-family:ui-monospace,Consolas,monospace;font-size:.9em;background:var(--bg-alt);padding:0 .2rem}
.gq a{color:#0b4f8a}.gq a:focus,.gq summary:focus{outline:3px solid #0b4f8a;outline-offset:2px}
.gq .skip{position:absolute;left:-999px}.gq .skip:focus{left:1rem;top:1rem;background:#ffffff;padding:.5rem;z-index:9}
.gq .banner{background:#fff4d6;border:1px solid #7a4100;padding:.5rem .8rem;border-radius:.3rem}
@media (max-width:40rem){.gq{padding:0 .5rem}.gq h1{font-size:1.4rem}.gq table{font-size:.85rem}}
"""


def fmt_int(x) -> str:
    """Format a count the French way (``12 345``)."""
    return format_decimal(int(x), locale="fr_FR")


def fmt_share(x) -> str:
    """Format a share as a French percentage (``12,3 %``, narrow no-break space; 3 decimals below 0,1 %)."""
    if x is None or pd.isna(x):
        return "–"
    decimals = 1 if x >= 0.001 or x == 0 else 3
    return format_decimal(round(float(x) * 100, decimals), format="#,##0." + "0" * decimals,
                          locale="fr_FR") + "\u202f%"


def _e(x) -> str:
    return "" if x is None or (not isinstance(x, str) and pd.isna(x)) else html.escape(str(x))


def _table(caption: str, header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(),
           row_header: bool = True) -> str:
    """Return an accessible table (cells already escaped)."""
    head = "".join(f'<th scope="col">{h}</th>' for h in header)
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            if i == 0 and row_header:
                cells.append(f'<th scope="row">{c}</th>')
            else:
                cls = ' class="n"' if i in numeric else ""
                cells.append(f"<td{cls}>{c}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    label = html.escape(re.sub(r"<[^>]+>", "", caption), quote=True)
    return (f'<div class="tw" role="region" aria-label="{label}" tabindex="0"><table><caption>{caption}</caption>'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def departement_of_uai(uai: pd.Series) -> pd.Series:
    """Return the département code of UAIs from their prefix (``035…`` → ``35``, ``620…`` → ``2A``)."""
    u = uai.astype("string")
    pre = u.str.slice(0, 3)
    ok = u.str.fullmatch(r"[0-9]{7}[A-Z]").fillna(False)
    dep = pre.str.slice(1, 3).where(~pre.str.startswith("97"), pre)
    dep = dep.mask(pre == "620", "2A").mask(pre == "720", "2B")
    return dep.where(ok)


def _badge(g: str) -> str:
    return f'<span class="badge {g}">{GRAVITE_LABEL.get(g, g)}</span>'


def _rule_label(rid: str) -> str:
    r = RULES.get(rid)
    return f"{html.escape(r.titre)} (<code>{rid}</code>)" if r else f"<code>{html.escape(rid)}</code>"


def quality_report_html(findings: pd.DataFrame, *, title: str = "Qualité des données", standalone: bool = True,
                        row_counts: dict | None = None, simulated: bool = False, data_label: str = "",
                        first_rows: int = FIRST_ROWS) -> str:
    """Return the quality report as HTML.

    Parameters
    ----------
    findings : pandas.DataFrame
        Findings of :func:`~gar_analysis.checks.run_checks` (or read back from its CSV).
    title : str
        Title of the page (``h1``) or of the section (``h2``).
    standalone : bool
        True: a complete, self-contained page. False: a ``<section>`` fragment
        (headings from ``h2``) to embed in a dashboard.
    row_counts : dict, optional
        Data lines per source file, for the share of rows affected (default:
        ``findings.attrs["lignes"]``).
    simulated : bool
        Show the « Données simulées » banner.
    data_label : str
        Where the data comes from (shown under the title).
    first_rows : int
        Failing rows listed per rule.

    Returns
    -------
    str
        HTML (UTF-8 text).
    """
    f = findings.copy()
    row_counts = row_counts if row_counts is not None else findings.attrs.get("lignes", {})
    skipped = f[(f["gravite"] == "info") & f["message"].fillna("").str.contains(SKIPPED_MARK)]
    f = f.drop(index=skipped.index)
    h = (lambda n: f"h{n}") if standalone else (lambda n: f"h{n + 1}")
    uid = "qualite"
    parts = []
    counts = {g: int((f["gravite"] == g).sum()) for g in GRAVITES}
    # ---------------------------------------------------------------- summary
    parts.append(f'<{h(1)} id="{uid}-titre">{_e(title)}</{h(1)}>')
    if simulated:
        parts.append('<p class="banner" role="note"><strong>Données simulées</strong> : ce rapport porte sur le jeu '
                     "de données d'exemple, dont les anomalies ont été plantées volontairement.</p>")
    intro = ("Ce rapport liste les incohérences détectées automatiquement dans les fichiers de données, pour les "
             "corriger à la source. Chaque contrôle est expliqué, avec ce qu'il faut faire.")
    if data_label:
        intro += f" Données : {_e(data_label)}."
    parts.append(f"<p>{intro}</p>")
    cards = "".join(f'<li class="card {g}"><strong>{fmt_int(counts[g])}</strong>{GRAVITE_LABEL[g]}'
                    f' <span class="muted">({GRAVITE_HELP[g]})</span></li>' for g in GRAVITES)
    parts.append(f'<ul class="cards" aria-label="Nombre de constats par gravité">{cards}</ul>')
    ran = len(RULES) - skipped["regle"].nunique()
    if counts["erreur"] + counts["avertissement"] == 0:
        parts.append(f"<p><strong>Aucune erreur ni aucun avertissement</strong> sur les {fmt_int(ran)} contrôles "
                     "effectués : les données sont cohérentes au regard de ces règles.</p>")
    else:
        parts.append(f"<p>{fmt_int(ran)} contrôles effectués. Le tableau ci-dessous compte les constats de "
                     "chaque règle ; le détail de chaque règle donne les premières lignes à corriger avec leur "
                     "numéro de ligne dans le fichier (l'en-tête est la ligne 1).</p>")
    # ---------------------------------------------------------------- by rule
    parts.append(f'<{h(2)} id="{uid}-regles">Constats par règle</{h(2)}>')
    by_rule = f.groupby(["regle", "gravite"]).size().unstack(fill_value=0).reindex(columns=list(GRAVITES),
                                                                                 fill_value=0)
    rows = []
    for rid, rule in RULES.items():
        if rid in set(skipped["regle"]):
            status = "non effectué"
        elif rid not in by_rule.index:
            status = "aucun constat"
        else:
            status = f'<a href="#{uid}-{rid}">voir le détail</a>'
        c = by_rule.loc[rid] if rid in by_rule.index else pd.Series(0, index=list(GRAVITES))
        rows.append([_rule_label(rid), fmt_int(c["erreur"]), fmt_int(c["avertissement"]), fmt_int(c["info"]),
                     html.escape(rule.explication), status])
    parts.append(_table("Nombre de constats par règle et par gravité",
                        ["Règle", "Erreurs", "Avertissements", "Informations", "Ce que vérifie la règle", "Détail"],
                        rows, numeric={1, 2, 3}))
    # ---------------------------------------------------------------- by source
    parts.append(f'<{h(2)} id="{uid}-sources">Constats par fichier</{h(2)}>')
    serious = f[f["gravite"] != "info"]
    sources = sorted(set(f["source"].dropna()) | set(row_counts))
    rows = []
    for src in sources:
        sf = serious[serious["source"] == src]
        n_lines = row_counts.get(src)
        affected = sf["ligne"].dropna().nunique()
        share = affected / n_lines if n_lines else None
        rows.append([f"<code>{_e(src)}</code>", fmt_int(n_lines) if n_lines is not None else "–",
                     fmt_int((sf["gravite"] == "erreur").sum()), fmt_int((sf["gravite"] == "avertissement").sum()),
                     fmt_int(affected), fmt_share(share)])
    parts.append(_table("Constats par fichier : lignes concernées par une erreur ou un avertissement",
                        ["Fichier", "Lignes de données", "Erreurs", "Avertissements", "Lignes concernées",
                         "Part des lignes concernées"], rows, numeric={1, 2, 3, 4, 5}))
    parts.append('<p class="muted">Les constats portant sur un agrégat (un mois entier d\'un établissement, '
                 "une série) sont rattachés à leur première ligne.</p>")
    # ---------------------------------------------------------------- by territory
    parts.append(f'<{h(2)} id="{uid}-territoires">Constats par académie</{h(2)}>')
    dep = departement_of_uai(serious["uai"]) if len(serious) else pd.Series(dtype="string")
    ref = territories.departements().set_index("code_departement")
    aca = dep.map(ref["code_academie"]) if len(dep) else dep
    terr = pd.DataFrame({"aca": aca.fillna("?").to_numpy(), "g": serious["gravite"].to_numpy(),
                         "uai": serious["uai"].to_numpy()})
    rows = []
    if len(terr):
        g = terr.groupby("aca").agg(n=("g", "size"), err=("g", lambda s: (s == "erreur").sum()),
                                    etab=("uai", "nunique")).sort_values("n", ascending=False)
        for code, r in g.iterrows():
            name = ("Non déterminée (UAI absent ou invalide)" if code == "?"
                    else html.escape(territories.academie_name(code)))
            rows.append([name, fmt_int(r["n"]), fmt_int(r["err"]), fmt_int(r["etab"])])
    if rows:
        parts.append(_table("Erreurs et avertissements par académie (d'après l'UAI de l'établissement)",
                            ["Académie", "Constats", "dont erreurs", "Établissements concernés"], rows,
                            numeric={1, 2, 3}))
    else:
        parts.append("<p>Aucun constat rattaché à un établissement.</p>")
    # ---------------------------------------------------------------- details
    parts.append(f'<{h(2)} id="{uid}-detail">Détail par règle et premières lignes à corriger</{h(2)}>')
    present = [rid for rid in RULES if rid in set(f["regle"])]
    if not present:
        parts.append("<p>Rien à corriger.</p>")
    for rid in present:
        rule = RULES[rid]
        rf = f[f["regle"] == rid]
        parts.append(f'<{h(3)} id="{uid}-{rid}">{_rule_label(rid)} : {fmt_int(len(rf))} constat(s)</{h(3)}>')
        parts.append(f"<p>{html.escape(rule.explication)}</p>")
        parts.append(f'<p class="todo"><strong>Que faire ?</strong> {html.escape(rule.action)}</p>')
        shown = rf.head(first_rows)
        rows = [[_e(r.source), _e(r.ligne) or "–", _e(r.uai) or "–", _e(r.mois) or "–", _e(r.id_ressource) or "–",
                 _badge(r.gravite), _e(r.message)] for r in shown.itertuples()]
        more = f" ({fmt_int(len(shown))} premiers sur {fmt_int(len(rf))})" if len(rf) > len(shown) else ""
        parts.append(_table(f"Premiers constats de la règle {html.escape(rule.titre)}{more}",
                            ["Fichier", "Ligne", "UAI", "Mois", "Ressource", "Gravité", "Constat"], rows,
                            numeric={1}, row_header=False))
    # ---------------------------------------------------------------- skipped
    if len(skipped):
        parts.append(f'<{h(2)} id="{uid}-non-effectues">Contrôles non effectués</{h(2)}>')
        items = "".join(f"<li>{_rule_label(r.regle)} : {_e(r.message)}</li>" for r in skipped.itertuples())
        parts.append(f"<ul>{items}</ul>")
    body = "\n".join(parts)
    if not standalone:
        return (f'<section class="gq" id="{uid}" aria-labelledby="{uid}-titre">\n<style>{CSS}</style>\n'
                f"{body}\n</section>")
    stamp = datetime.now().strftime("%d/%m/%Y %H:%M")
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>body{{margin:0;background:#ffffff}}{CSS}</style>
</head>
<body>
<div class="gq">
<a class="skip" href="#contenu">Aller au contenu</a>
<header><p class="muted">GAR – pilotage par la donnée · contrôles qualité</p></header>
<main id="contenu" tabindex="-1">
{body}
</main>
<footer><p class="muted">Produit par <code>gar-analysis check</code> le {stamp}.</p></footer>
</div>
</body>
</html>
"""


# --------------------------------------------------------------------------- the data manager's page

#: Columns of the actionable findings list (:func:`quality_rows`), French headers of its CSV.
QUALITY_COLUMNS = {"responsable": "Qui corrige", "uai": "UAI", "etablissement": "Établissement",
                   "gravite": "Gravité", "regle": "Contrôle", "message": "Constat", "academie": "Académie",
                   "departement": "Département", "commune": "Commune", "fichier": "Fichier", "ligne": "Ligne",
                   "mois": "Mois", "ressource": "Ressource"}
#: Audience → the filter key of the quality page's URL hash (``qualite.html#academie=04``).
HASH_KEYS = {"academie": "academie", "departement": "departement", "region": "region",
             "region_academique": "region"}
#: Up to this many findings the full CSV is also inlined in the page (else only the script builds it).
INLINE_CSV_ROWS = 2000
_ABSOLUTE = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s/\\;,«»()]+[/\\])+")


def quality_link(audience: str, code: str, page: str = "../qualite.html") -> str:
    """Return the link from a dashboard to its territory's findings, the filter set by the URL hash."""
    key = HASH_KEYS.get(audience)
    return f"{page}#{key}={code}" if key else page


def _clean(text: object) -> str:
    """Text without directories of absolute paths (the page names files, never where they sit)."""
    s = "" if text is None or (not isinstance(text, str) and pd.isna(text)) else str(text)
    return _ABSOLUTE.sub("", s)


def _names(codes: pd.Series, name) -> pd.Series:
    """Territory names of codes, each distinct code looked up once ("" for a missing code)."""
    codes = codes.astype("object")
    lookup = {c: name(c) for c in set(codes) if isinstance(c, str) and c}
    return codes.map(lambda c: lookup.get(c, "")).astype(str)


def quality_rows(findings: pd.DataFrame, schools: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the findings as the data manager's list: who fixes what, where, in which school.

    Parameters
    ----------
    findings : pandas.DataFrame
        Findings (:data:`~gar_analysis.checks.registry.COLUMNS`; the build's ``constats`` table too).
    schools : pandas.DataFrame, optional
        The register (``etablissements`` table: ``uai, nom, nom_commune, code_departement…``) for the school's
        name and territory; without it the territory comes from the UAI's prefix.

    Returns
    -------
    pandas.DataFrame
        :data:`QUALITY_COLUMNS` plus ``code_academie, code_departement, code_region`` (filter keys), errors
        first. « Information » findings (nothing to fix) are left out.
    """
    from .registry import responsable_of

    f = findings[findings["gravite"].isin(["erreur", "avertissement"])].reset_index(drop=True)
    uai = f["uai"].astype("string").fillna("").str.strip()
    ref = territories.departements().set_index("code_departement")
    dep = departement_of_uai(uai.where(uai != "")).astype("object")
    terr = pd.DataFrame({"uai": uai, "code_departement": dep})
    terr["code_academie"] = terr["code_departement"].map(ref["code_academie"])
    terr["code_region"] = terr["code_departement"].map(ref["code_region"])
    terr["etablissement"], terr["commune"] = "", ""
    if schools is not None and len(schools):
        s = schools.drop_duplicates("uai").set_index("uai")
        known = uai.isin(s.index)
        for col, src in (("etablissement", "nom"), ("commune", "nom_commune"), ("code_departement", "code_departement"),
                         ("code_academie", "code_academie"), ("code_region", "code_region")):
            if src in s.columns:
                terr.loc[known, col] = uai[known].map(s[src]).astype("object").to_numpy()
    out = pd.DataFrame({
        "responsable": [responsable_of(r, src) for r, src in zip(f["regle"], f["source"])],
        "gravite": f["gravite"].map(GRAVITE_LABEL).fillna(f["gravite"]).astype(str),
        "regle": f["regle"].map(lambda r: RULES[r].titre if r in RULES else "Contrôle").astype(str),
        "uai": uai.astype(str), "etablissement": terr["etablissement"].fillna("").astype(str),
        "commune": terr["commune"].fillna("").astype(str),
        "academie": _names(terr["code_academie"], territories.academie_name),
        "departement": _names(terr["code_departement"], territories.departement_name),
        "fichier": f["source"].map(lambda p: _clean(p)),
        "ligne": f["ligne"].map(lambda x: "" if pd.isna(x) else str(int(x))),
        "mois": f["mois"].fillna("").astype(str), "ressource": f["id_ressource"].fillna("").astype(str),
        "message": f["message"].map(_clean),
        "code_academie": terr["code_academie"].fillna("").astype(str),
        "code_departement": terr["code_departement"].fillna("").astype(str),
        "code_region": terr["code_region"].fillna("").astype(str)})
    order = {GRAVITE_LABEL[g]: i for i, g in enumerate(GRAVITES)}
    out = out.assign(_g=out["gravite"].map(order)).sort_values(["_g", "responsable", "academie", "uai"], kind="stable")
    return out.drop(columns="_g").reset_index(drop=True)


_PAGE_CSS = """
.gq form{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;margin:.5rem 0}
.gq label{display:flex;flex-direction:column;font-weight:600;gap:.2rem;flex:1 1 12rem;min-width:0}
.gq input,.gq select,.gq button{font:inherit;max-width:100%;box-sizing:border-box;padding:.3rem .4rem;border:1px solid #595959;border-radius:.2rem;
background:#ffffff;color:var(--fg)}
.gq input:focus,.gq select:focus,.gq button:focus{outline:3px solid #0b4f8a;outline-offset:2px}
.gq tr[hidden]{display:none}
"""

_PAGE_JS = r"""
(function(){
var form=document.getElementById('filtres'),rows=[].slice.call(document.querySelectorAll('#constats tbody tr')),
 uai=document.getElementById('f-uai'),terr=document.getElementById('f-territoire'),resp=document.getElementById('f-resp'),
 count=document.getElementById('compte'),link=document.getElementById('csv-filtre');
function apply(write){
 var u=uai.value.trim().toUpperCase(),t=terr.value,r=resp.value,n=0;
 var kv=t?t.split('='):null;
 rows.forEach(function(tr){
  var ok=(!u||tr.getAttribute('data-uai').indexOf(u)===0)&&(!kv||tr.getAttribute('data-'+kv[0])===kv[1])
   &&(!r||tr.getAttribute('data-resp')===r);
  tr.hidden=!ok;if(ok){n++;}
 });
 count.textContent=n+' constat'+(n>1?'s':'')+' affiché'+(n>1?'s':'')+' sur '+rows.length+'.';
 var lines=[[].slice.call(document.querySelectorAll('#constats thead th')).map(function(th){return th.textContent;})];
 rows.forEach(function(tr){if(!tr.hidden){lines.push([].slice.call(tr.cells).map(function(c){return c.textContent;}));}});
 var csv=lines.map(function(l){return l.map(function(v){v=String(v);if(/^[=+\-@\t\r]/.test(v)){v="'"+v;}
  return /[;"\n\r]/.test(v)?'"'+v.replace(/"/g,'""')+'"':v;}).join(';');}).join('\n')+'\n';
 link.href='data:text/csv;charset=utf-8,'+encodeURIComponent('\ufeff'+csv);
 if(write){var h=[];if(t){h.push(t);}if(u){h.push('uai='+encodeURIComponent(u));}
  if(history.replaceState){history.replaceState(null,'',h.length?'#'+h.join('&'):location.pathname+location.search);}}
}
function fromHash(){
 var h=decodeURIComponent(location.hash.replace(/^#/,''));uai.value='';terr.value='';
 h.split('&').forEach(function(p){var kv=p.split('=');if(kv[0]==='uai'){uai.value=kv[1]||'';}
  else if(kv.length===2){var v=kv[0]+'='+kv[1];for(var i=0;i<terr.options.length;i++){
   if(terr.options[i].value===v){terr.value=v;}}}});
 apply(false);
}
form.addEventListener('input',function(){apply(true);});form.addEventListener('change',function(){apply(true);});
form.addEventListener('submit',function(e){e.preventDefault();apply(true);});
window.addEventListener('hashchange',fromHash);fromHash();
})();
"""


def quality_page_html(findings: pd.DataFrame, *, schools: pd.DataFrame | None = None,
                      title: str = "Qualité des données : constats à corriger", simulated: bool = False,
                      index_href: str = "index.html") -> str:
    """Return the data manager's quality page: who fixes what, the full list filterable by UAI and territory.

    Self-contained (inline CSS and script, no network: works from ``file://``). The filter is read from and
    written to the URL hash (``#academie=04``, ``#departement=38``, ``#region=84``, ``&uai=0350001A``), so a
    dashboard links to its territory's findings with :func:`quality_link`. Paths are shown relative to the data
    folder, never absolute.
    """
    rows = quality_rows(findings, schools)
    n = len(rows)
    parts = [f'<h1 id="qualite-titre">{_e(title)}</h1>']
    if simulated:
        parts.append("<p>Les anomalies de ce jeu de données d'exemple ont été plantées volontairement.</p>")
    parts.append("<p>Chaque ligne est une donnée à corriger à la source, avec qui la corrige, l'établissement et le "
                 "fichier concernés. Filtrez par UAI ou par territoire ; le lien de téléchargement suit le filtre. "
                 "Les simples informations (rien à corriger) ne sont pas listées.</p>")
    # ---------------------------------------------------------------- who fixes what
    parts.append('<h2 id="qualite-qui">Qui corrige quoi</h2>')
    if n:
        g = rows.groupby("responsable")
        summary = pd.DataFrame({"n": g.size(), "err": g["gravite"].apply(lambda s: int((s == "Erreur").sum())),
                                "etab": g["uai"].apply(lambda s: s[s != ""].nunique())}).sort_values("n", ascending=False)
        parts.append(_table("Constats à corriger par responsable de la correction",
                            ["Qui corrige", "Constats", "dont erreurs", "Établissements concernés"],
                            [[_e(k), fmt_int(r.n), fmt_int(r.err), fmt_int(r.etab)] for k, r in summary.iterrows()],
                            numeric={1, 2, 3}))
        todo = []
        for rid in [r for r in RULES if r in set(findings["regle"])]:
            rule = RULES[rid]
            who = sorted(set(rows.loc[rows["regle"] == rule.titre, "responsable"]))
            if who:
                todo.append(f"<li><strong>{_e(rule.titre)}</strong> ({_e(', '.join(who))}) : {_e(rule.explication)} "
                            f"<em>Que faire ?</em> {_e(rule.action)}</li>")
        parts.append('<h3 id="qualite-que-faire">Que faire, contrôle par contrôle</h3><ul>' + "".join(todo) + "</ul>")
    else:
        parts.append("<p><strong>Aucune erreur ni aucun avertissement</strong> : rien à corriger.</p>")
    # ---------------------------------------------------------------- the full list
    parts.append('<h2 id="qualite-liste">Liste complète des constats</h2>')
    terr_opts = []
    for key, code_col, label, name in (("academie", "code_academie", "Académies", territories.academie_name),
                                       ("departement", "code_departement", "Départements", territories.departement_name),
                                       ("region", "code_region", "Régions", territories.region_name)):
        codes = sorted(c for c in set(rows[code_col]) if c)
        opts = sorted(((name(c), c) for c in codes))
        terr_opts.append(f'<optgroup label="{label}">' + "".join(
            f'<option value="{key}={_e(c)}">{_e(nm)} ({_e(c)})</option>' for nm, c in opts) + "</optgroup>")
    resp_opts = "".join(f'<option value="{_e(r)}">{_e(r)}</option>' for r in sorted(set(rows["responsable"])))
    parts.append('<form id="filtres" role="search" aria-label="Filtrer les constats">'
                 '<label for="f-uai">UAI (début ou complet)<input id="f-uai" type="search" autocomplete="off" '
                 'spellcheck="false"></label>'
                 '<label for="f-territoire">Territoire<select id="f-territoire"><option value="">Tous</option>'
                 + "".join(terr_opts) + '</select></label>'
                 '<label for="f-resp">Qui corrige<select id="f-resp"><option value="">Tous</option>'
                 + resp_opts + "</select></label></form>")
    parts.append(f'<p id="compte" role="status" aria-live="polite">{fmt_int(n)} constats.</p>')
    cols = list(QUALITY_COLUMNS)
    from ..io import csv_text

    # the script rebuilds the link from the rows shown; inlined too (pages without script) while the page stays light
    uri = "#"
    if n <= INLINE_CSV_ROWS:
        full = csv_text(rows[cols].rename(columns=QUALITY_COLUMNS))
        uri = "data:text/csv;charset=utf-8;base64," + base64.b64encode(("\ufeff" + full).encode("utf-8")).decode("ascii")
    parts.append(f'<p><a id="csv-filtre" href="{uri}" download="constats.csv">Télécharger les constats affichés '
                 "(CSV, séparateur point-virgule)</a></p>")
    head = "".join(f'<th scope="col">{QUALITY_COLUMNS[c]}</th>' for c in cols)
    body = []
    for r in rows.itertuples(index=False):
        d = r._asdict()
        attrs = (f'data-uai="{_e(d["uai"])}" data-academie="{_e(d["code_academie"])}" '
                 f'data-departement="{_e(d["code_departement"])}" data-region="{_e(d["code_region"])}" '
                 f'data-resp="{_e(d["responsable"])}"')
        body.append(f"<tr {attrs}>" + "".join(f"<td>{_e(d[c])}</td>" for c in cols) + "</tr>")
    parts.append('<div class="tw" role="region" aria-label="Liste complète des constats" tabindex="0">'
                 '<table class="wide" id="constats"><caption>Constats à corriger (erreurs d\'abord)</caption>'
                 f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
    stamp = datetime.now().strftime("%d/%m/%Y %H:%M")
    from ..reporting.export import page_shell  # the publication's one page shell (DSFR)

    body = (f'<div class="gq"><style>{CSS}{_PAGE_CSS}</style>\n' + "\n".join(parts[1:]) + "\n</div>")
    return page_shell(title, body, depth=index_href.count("../"), breadcrumb=[("Qualité des données", "")],
                      simulated=simulated, script=_PAGE_JS,
                      footer_html=f'<p class="fr-footer__content-desc">Contrôles de qualité des données, page '
                                  f"produite le {stamp}.</p>")


def write_quality_page(findings: pd.DataFrame, out_path, *, schools: pd.DataFrame | None = None,
                       title: str = "Qualité des données : constats à corriger", simulated: bool = False,
                       index_href: str = "index.html"):
    """Write :func:`quality_page_html` atomically to ``out_path`` (``<run>/qualite.html`` in a batch); return it."""
    from pathlib import Path

    from ..io import atomic_write_text

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, quality_page_html(findings, schools=schools, title=title, simulated=simulated,
                                             index_href=index_href))
    return out
