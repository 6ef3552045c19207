"""Accessible display helpers for report notebooks: French numbers, figures, tables, KPI cards.

Everything produces plain semantic HTML (no JavaScript, no external resource)
shown through :class:`IPython.display.HTML`: figures are ``<figure>`` elements
with an embedded PNG, a text alternative, a caption and a collapsible
« Données du graphique » table; tables have a caption, header cells with
``scope``, French number formatting and a footnote explaining ``c``.
Each ``show_*`` function displays its HTML and returns it (as a string) so that
tests can inspect it; the ``*_html`` functions only build the string.

Layout is responsive: images never exceed the page width and a wide table
scrolls inside its own focusable container, never the page.
"""
from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from .. import config
from ..disclosure import is_suppressed
from ..formatting import (LOCALE, MISSING, NNBSP, MONTH_NAMES, _is_missing, fmt_euros, fmt_month,  # noqa: F401
                       fmt_decimal, fmt_number, fmt_percent, fmt_ratio, fmt_sentence)

#: Shown for a missing value (not to be confused with ``c``, a suppressed one).
#: Narrow no-break space (French thousands separator and before ``%``).

#: Columns always shown as text (years, codes, periods are not quantities).
TEXT_COLUMNS = {"annee", "annee_scolaire", "periode", "mois", "uai", "ligne", "id_ressource", "regle", "gravite"}
#: Readable French labels (with units) of the indicator columns.
COLUMN_LABELS = {
    "territoire": "Territoire", "nom": "Nom", "code": "Code", "uai": "UAI",
    "code_academie": "Code académie", "nom_academie": "Académie",
    "code_departement": "Code département", "nom_departement": "Département",
    "code_region": "Code région", "nom_region": "Région",
    "niveau": "Niveau", "secteur": "Secteur", "mois": "Mois", "annee": "Année",
    "acces_eleve": "Accès des élèves (nombre)",
    "acces_enseignant": "Accès des enseignants (nombre)",
    "affectations": "Affectations (nombre)", "etablissements_actifs": "Établissements actifs (nombre)", "part_actifs": "Part des inscrits actifs (%)",
    "valeur": "Valeur", "valeur_nationale": "Valeur nationale", "ratio": "Rapport au national",
    "indicateur": "Indicateur", "part_nationale": "Part nationale (%)", "ligne": "Ligne",
    "ratio_part_inscrits": "Rapport au national : part inscrite",
    "ratio_part_actifs_mois": "Rapport au national : part active le dernier mois",
    "acces_par_etablissement": "Accès par établissement (nombre)", "indice": "Indice (100 = moyenne)", "signees": "Conventions signées (nombre)",
    "en_attente": "Conventions en attente (nombre)", "expirant": "Conventions expirant sous 6 mois (nombre)",
    "actions": "Actions de formation (nombre)", "depenses_ressources_numeriques": "Dépenses de ressources numériques (euros)",
    "dont_gar": "Dont ressources GAR (euros)", "part_gar": "Part des dépenses consacrée au GAR (%)",
    "constats": "Constats (nombre)",
    "erreurs": "Erreurs (nombre)", "avertissements": "Avertissements (nombre)",
    "regle": "Règle", "gravite": "Gravité", "message": "Constat", "source": "Source",
    "ressource": "Ressource", "id_ressource": "Identifiant de la ressource", "editeur": "Éditeur",
    "type_ressource": "Type de ressource", "evolution": "Évolution (%)", "part": "Part (%)",
    "profil": "Profil", "support": "Support", "objet": "Objet", "statut": "Statut",
    "acteur": "Collectivité ou acteur", "type_acteur": "Type d'acteur", "projet_ent": "Projet ENT",
    "ratio_acces_par_eleve": "Rapport au national : accès des élèves par élève",
}


def _indicator_labels() -> dict[str, str]:
    """Column headers of the registered indicators: their one label, with their unit."""
    from ..indicators import INDICATORS

    unit = {"percent": " (%)", "count": " (nombre)", "decimal": "", "days": "", "euros": " (euros)"}
    return {k: i.label + ("" if i.label.endswith(")") else unit[i.kind]) for k, i in INDICATORS.items()}

# --------------------------------------------------------------------------- numbers


def column_kind(name: str, series: pd.Series | None = None) -> str:
    """Guess how to format a column: ``percent``, ``ratio``, ``euros``, ``decimal``, ``int`` or ``text``."""
    if name in TEXT_COLUMNS or name.startswith(("code", "nom")):
        return "text"
    if name.startswith(("part_", "taux_")) or name in ("part", "evolution"):
        return "percent"
    if name == "ratio" or name.startswith("ratio_"):
        return "ratio"
    if name.startswith(("cout_", "depenses", "dont_gar", "montant")):
        return "euros"
    if "_par_" in name:
        return "decimal"
    if series is not None:
        values = series[~series.map(is_suppressed)]
        num = pd.to_numeric(values, errors="coerce")
        if len(values) and num.notna().sum() == values.notna().sum() and num.notna().any():
            finite = num.dropna()
            return "int" if bool(np.all(np.isclose(finite, np.round(finite)))) else "decimal"
    return "text"


_FORMATTERS: dict[str, Callable[[object], str]] = {
    "percent": fmt_percent, "ratio": fmt_ratio, "euros": lambda x: fmt_euros(x, 2 if abs(_num(x)) < 100 else 0),
    "decimal": fmt_decimal, "int": fmt_number,
    "text": lambda x: MISSING if _is_missing(x) else str(x),
}


def _num(x: object) -> float:
    try:
        v = float(x)
        return 0.0 if math.isnan(v) else v
    except (TypeError, ValueError):
        return 0.0


def format_frame(df: pd.DataFrame, formats: Mapping[str, str | Callable] | None = None) -> pd.DataFrame:
    """Return a copy of ``df`` with every cell formatted as French text.

    Parameters
    ----------
    df : pandas.DataFrame
        Values (``c`` cells are kept as ``c``).
    formats : mapping, optional
        Column → kind (``percent``, ``ratio``, ``euros``, ``decimal``, ``int``, ``text``) or a callable;
        other columns are guessed from their name and values.
    """
    formats = dict(formats or {})
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        kind = formats.get(col) or column_kind(str(col), df[col])
        fn = kind if callable(kind) else _FORMATTERS[kind]
        out[col] = [fn(v) for v in df[col]]
    return out


# --------------------------------------------------------------------------- HTML pieces

_STYLE_TABLE = "border-collapse:collapse;font-size:0.95em;min-width:100%"
_STYLE_CELL = "padding:0.3em 0.6em;border-bottom:1px solid #c8c8c8;text-align:{align};vertical-align:top"
_STYLE_WRAP = "overflow-x:auto;max-width:100%;margin:0.5em 0 1em 0"


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def suppression_note(threshold: int | None = None) -> str:
    """Return the French footnote explaining the ``c`` marker."""
    t = config.disclosure_threshold(threshold)
    return (f"c : secret statistique — nombre de personnes ou d'accès compris entre 1 et {t - 1}, ou taux qui "
            "permettrait de le retrouver ; la valeur n'est pas publiée. Les nombres d'établissements, de "
            "conventions et d'actions sont publiés quelle que soit leur taille.")


def table_html(df: pd.DataFrame, caption: str, *, note: str | None = None, formats: Mapping | None = None,
               labels: Mapping[str, str] | None = None, row_header: bool = True,
               threshold: int | None = None, max_rows: int | None = None, anchor: str | None = None,
               download: pd.DataFrame | None = None) -> str:
    """Build an accessible HTML table (caption, ``th scope``, French numbers, footnote on ``c``).

    Parameters
    ----------
    df : pandas.DataFrame
        Table to show (the index is not shown: reset it first if it carries data).
    caption : str
        Table caption (French), required.
    note : str, optional
        Footnote (source, scope, unit); the ``c`` explanation is added when a cell is suppressed.
    formats : mapping, optional
        Column → format kind, see :func:`format_frame`.
    labels : mapping, optional
        Column → header text (default :data:`COLUMN_LABELS`, else the column name).
    row_header : bool, optional
        Whether the first column holds row headers (``th scope="row"``).
    threshold : int, optional
        Threshold quoted in the ``c`` footnote.
    max_rows : int, optional
        Show only the first rows, and say so in the footnote.
    anchor : str, optional
        ``id`` of the table's container (a permalink target).
    download : pandas.DataFrame, optional
        Table offered as a CSV link under the table (``;``, UTF-8 with BOM, spreadsheet-safe).

    Returns
    -------
    str
        A ``<div>`` scroll container holding the ``<table>`` and its footnotes.
    """
    if not caption:
        raise ValueError("Un tableau publié doit avoir une légende (caption).")
    shown = df if max_rows is None else df.head(max_rows)
    labels = {**COLUMN_LABELS, **_indicator_labels(), **(labels or {})}
    text = format_frame(shown, formats)
    has_c = bool(shown.map(is_suppressed).to_numpy().any()) if len(shown) else False
    kinds = {c: (formats or {}).get(c) or column_kind(str(c), shown[c]) for c in shown.columns}
    head = "".join(f'<th scope="col" style="{_STYLE_CELL.format(align="left" if kinds[c] == "text" else "right")}">'
                   f"{_esc(labels.get(str(c), c))}</th>" for c in shown.columns)
    # long text columns keep a readable width (the table scrolls in its container instead)
    wide = {c for c in shown.columns if kinds[c] == "text" and len(text) and text[c].str.len().max() > 14}
    rows = []
    for i in range(len(text)):
        cells = []
        for j, c in enumerate(shown.columns):
            align = "left" if kinds[c] == "text" else "right"
            style = _STYLE_CELL.format(align=align) + (";min-width:9em" if c in wide else "")
            value = _esc(text.iat[i, j])
            if kinds[c] != "text" or (len(value) <= 12 and " " not in value):
                style += ";white-space:nowrap"  # numbers and dates never break
            if value == config.SUPPRESSED:
                value = '<abbr title="secret statistique">c</abbr>'
            if j == 0 and row_header:
                cells.append(f'<th scope="row" style="{style};font-weight:normal">{value}</th>')
            else:
                cells.append(f'<td style="{style}">{value}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    if note:
        notes.append(_esc(note))
    if max_rows is not None and len(df) > max_rows:
        notes.append(f"{fmt_number(max_rows)} premières lignes sur {fmt_number(len(df))}.")
    if has_c:
        notes.append(_esc(suppression_note(threshold)))
    foot = "".join(f'<p class="gar-note" style="font-size:0.9em;margin:0.3em 0">{n}</p>' for n in notes)
    label = _esc(caption)
    if download is not None:
        foot += (f'<p class="gar-download"><a href="{csv_data_uri(download, labels)}" download="{_esc(anchor or "donnees")}.csv">'
                 f"Télécharger les données ({fmt_number(len(download))} lignes, CSV)</a></p>")
    ident = f' id="{_esc(anchor)}"' if anchor else ""
    return (f'<div class="gar-table"{ident} role="region" aria-label="{label}" tabindex="0" style="{_STYLE_WRAP}">'
            f'<table style="{_STYLE_TABLE}"><caption style="text-align:left;font-weight:bold;padding:0.3em 0">'
            f"{label}</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{foot}</div>")


def csv_data_uri(df: pd.DataFrame, labels: Mapping[str, str] | None = None) -> str:
    """Return a table as a ``data:text/csv`` URI: ``;`` separator, UTF-8 with BOM, French headers."""
    from ..io import csv_text

    names = {**COLUMN_LABELS, **_indicator_labels(), **(labels or {})}
    text = csv_text(df.rename(columns=lambda c: names.get(str(c), c)))
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(("\ufeff" + text).encode("utf-8")).decode("ascii")


def figure_html(fig, alt: str, *, caption: str = "", data: pd.DataFrame | None = None,
                data_caption: str | None = None, formats: Mapping | None = None, dpi: int = 96,
                threshold: int | None = None) -> str:
    """Build an accessible ``<figure>``: embedded PNG with alt text, caption, data table.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The chart (closed after rendering).
    alt : str
        Text alternative, one or two French sentences from :mod:`.alt_text`.
    caption : str, optional
        Visible caption (title, source, unit).
    data : pandas.DataFrame, optional
        The chart's numbers, shown in a collapsible « Données du graphique » table.
    """
    import matplotlib.pyplot as plt

    if not alt or not alt.strip():
        raise ValueError("Un graphique publié doit avoir une alternative textuelle.")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    parts = [f'<figure class="gar-figure" style="margin:1em 0;max-width:100%">',
             f'<img src="data:image/png;base64,{b64}" alt="{_esc(alt)}" '
             f'style="max-width:100%;height:auto;display:block">']
    if caption:
        parts.append(f'<figcaption style="font-size:0.95em;margin-top:0.3em">{_esc(caption)}</figcaption>')
    if data is not None and len(data):
        parts.append('<details style="margin-top:0.3em"><summary style="cursor:pointer">Données du graphique'
                     "</summary>"
                     + table_html(data, data_caption or (caption or "Données du graphique"), formats=formats,
                                  threshold=threshold)
                     + "</details>")
    parts.append("</figure>")
    return "".join(parts)


def _ratio_phrase(ratio: object, position: object = None) -> str:
    """Say a card's ratio in words; above or below only by the interval rule (``indicators.positions``)."""
    if is_suppressed(ratio):
        return "rapport au national : c"
    if _is_missing(ratio):
        return ""
    r = fmt_ratio(float(ratio))
    if position == "au-dessus":
        return f"▲ {r} fois la valeur nationale (au-dessus, au-delà du hasard)"
    if position == "en-dessous":
        return f"▼ {r} fois la valeur nationale (en dessous, au-delà du hasard)"
    if position == "conforme":
        return f"● {r} fois la valeur nationale (écart dans les limites du hasard)"
    return f"{r} fois la valeur nationale"


def headlines_html(items: Iterable[Mapping]) -> str:
    """Build KPI cards: label, value, national value and ratio (said in words, not by colour).

    Parameters
    ----------
    items : iterable of mapping
        Each with ``label`` and ``value`` (already formatted text, or a number
        formatted with ``kind``), and optionally ``national``, ``ratio``, ``kind``
        (a :func:`format_frame` kind) and ``note``.
    """
    cards = []
    for it in items:
        kind = it.get("kind", "int")
        fmt = _FORMATTERS[kind]
        value = it["value"] if isinstance(it["value"], str) else fmt(it["value"])
        lines = [f'<p style="margin:0;font-size:0.95em">{_esc(it["label"])}</p>',
                 f'<p style="margin:0.2em 0;font-size:1.6em;font-weight:bold">{_esc(value)}</p>']
        national = it.get("national")
        if isinstance(national, str) or (national is not None and not _is_missing(national)):
            nat = national if isinstance(national, str) else fmt(national)
            lines.append(f'<p style="margin:0;font-size:0.9em">National : {_esc(nat)}</p>')
        phrase = _ratio_phrase(it.get("ratio"), it.get("position"))
        if phrase:
            lines.append(f'<p style="margin:0;font-size:0.9em">{_esc(phrase)}</p>')
        if it.get("note"):
            lines.append(f'<p style="margin:0;font-size:0.85em">{_esc(it["note"])}</p>')
        cards.append('<li style="flex:1 1 11em;min-width:0;border:1px solid #767676;border-radius:6px;'
                     'padding:0.6em;background:#ffffff;color:#1e1e1e">' + "".join(lines) + "</li>")
    return ('<ul class="gar-kpis" aria-label="Chiffres clés" style="list-style:none;padding:0;margin:0.5em 0;'
            'display:flex;flex-wrap:wrap;gap:0.6em">' + "".join(cards) + "</ul>")


def banner_simulated_html() -> str:
    """Return the banner warning that the report is built from simulated data."""
    return ('<div class="gar-banner" role="note" style="border:2px solid #8a4b00;background:#fff4e5;color:#1e1e1e;'
            'padding:0.6em;margin:0.5em 0;border-radius:4px"><strong>Données simulées.</strong> Ce rapport est '
            "construit à partir d'un jeu de données simulé pour la démonstration : ses chiffres ne décrivent "
            "aucun établissement ni aucun territoire réel.</div>")


def section_html(title: str, level: int = 2) -> str:
    """Return a heading (``<h2>``…) with an anchor built from its title."""
    if not 1 <= int(level) <= 6:
        raise ValueError(f"Niveau de titre invalide : {level}.")
    from ..territories import slug

    anchor = slug(title).replace(" ", "-") or "section"
    return f'<h{level} id="{anchor}">{_esc(title)}</h{level}>'


# --------------------------------------------------------------------------- show_*


def _display(markup: str) -> str:
    from IPython.display import HTML, display

    display(HTML(markup))
    return markup


def show_table(df: pd.DataFrame, caption: str, *, note: str | None = None, **kwargs) -> str:
    """Display an accessible table; see :func:`table_html`."""
    return _display(table_html(df, caption, note=note, **kwargs))


def show_figure(fig, alt: str, *, caption: str = "", data: pd.DataFrame | None = None, **kwargs) -> str:
    """Display an accessible figure; see :func:`figure_html`."""
    return _display(figure_html(fig, alt, caption=caption, data=data, **kwargs))


def show_headlines(items: Iterable[Mapping]) -> str:
    """Display KPI cards; see :func:`headlines_html`."""
    return _display(headlines_html(items))


def show_banner_simulated() -> str:
    """Display the simulated-data banner."""
    return _display(banner_simulated_html())


def show_section(title: str, level: int = 2) -> str:
    """Display a section heading."""
    return _display(section_html(title, level))


def show_text(text: str) -> str:
    """Display a paragraph of French text (escaped)."""
    return _display(f"<p>{_esc(text)}</p>")


def show_list(items: Iterable[str], *, empty: str = "") -> str:
    """Display a bulleted list of French sentences (or ``empty`` when there is none)."""
    items = [i for i in items if i]
    if not items:
        return show_text(empty) if empty else ""
    return _display("<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>")


def show_links(links: Iterable[tuple[str, str]]) -> str:
    """Display a list of relative links ``(href, text)``."""
    return _display("<ul>" + "".join(f'<li><a href="{_esc(h)}">{_esc(t)}</a></li>' for h, t in links) + "</ul>")


# Charts live in reporting/charts.py; the notebooks' ``d.`` names stay valid.
from .charts import (_palette, _short_month, bar_chart, chart_palette, contrast_ratio, french_axis,  # noqa: E402,F401
                     line_chart, setup_style)
