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
import re
import urllib.parse
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


# --------------------------------------------------------------------------- anchors, symbols, downloads

#: Symbols of a published table (GSS convention): ``c`` secret statistique, ``z`` sans objet, ``x`` non disponible.
NOT_APPLICABLE = "z"
NOT_AVAILABLE = "x"
SYMBOL_TITLES = {"c": "secret statistique", NOT_APPLICABLE: "sans objet", NOT_AVAILABLE: "non disponible"}
#: Relative link from a report page (``<run>/<audience>/<page>.html``) to the glossary of the run.
GLOSSARY_HREF = "../glossaire.html"
#: Width (CSS px) of the text column on a 390 px wide phone; charts keep text ≥ MIN_CHART_TEXT_PX there.
PHONE_COLUMN_PX = 350
#: Smallest chart text, in CSS px as displayed on a phone.
MIN_CHART_TEXT_PX = 12
#: Width of a chart (inches, 72 pt each): drawn for the phone column, shown at its natural size on a laptop.
CHART_WIDTH_IN = 4.8
#: Largest CSV download of one table (characters of its data URI): a page stays < 1.5 MB at national scale.
MAX_CSV_URI = 400_000
#: Above this size an SVG chart (a map with contours, thousands of points) is embedded as PNG instead.
MAX_SVG_BYTES = 350_000

_ANCHORS: set[str] = set()


def reset_anchors() -> None:
    """Forget the anchors already given on this page (called by :func:`setup_style`, first cell of a report)."""
    _ANCHORS.clear()


def _register_page_reset() -> None:
    from .warm import on_new_page

    on_new_page(reset_anchors)  # a warm kernel's next page starts with no anchor taken


_register_page_reset()


def _caption_key(caption: str) -> str:
    """The territory-independent head of a caption: up to « — », « : », a parenthesis or a full stop."""
    head = re.split(r"\s[—–]\s|\s:\s|\s\(|\.\s|\.$", str(caption), maxsplit=1)[0]
    return " ".join(head.split()[:7])


def anchor_id(caption: str, anchor: str | None = None, *, register: bool = True) -> str:
    """Return the page anchor (``id``) of a chart or table: ``anchor`` if given, else a slug of the caption.

    Anchors are unique in a page (``-2``, ``-3``… on a repeat) and, being taken from the
    territory-independent head of the caption, the same for every territory of an audience.

    Examples
    --------
    >>> reset_anchors()
    >>> anchor_id("Part des établissements inscrits — académie de Rennes")
    'part-des-etablissements-inscrits'
    >>> anchor_id("", "part_inscrits"), anchor_id("", "part_inscrits")
    ('part-inscrits', 'part-inscrits-2')
    """
    from ..territories import slug

    base = slug(anchor if anchor else _caption_key(caption)).replace(" ", "-")[:60].strip("-") or "figure"
    if base[0].isdigit():
        base = "f-" + base
    out, n = base, 2
    while out in _ANCHORS:
        out, n = f"{base}-{n}", n + 1
    if register:
        _ANCHORS.add(out)
    return out


def _denominators() -> dict[str, str]:
    from ..indicators import INDICATORS

    return {k: i.denominator for k, i in INDICATORS.items() if i.denominator}


def published_text(df: pd.DataFrame, formats: Mapping | None = None, missing: Mapping[str, str] | None = None
                   ) -> pd.DataFrame:
    """Format a published table as its cells read: French numbers, ``c``, and ``z``/``x`` for missing values.

    A missing value is ``z`` (sans objet) when the column says so in ``missing`` or when it is a rate
    whose denominator (registry) is zero on that row, else ``x`` (non disponible).
    """
    text = format_frame(df, formats)
    missing = dict(missing or {})
    dens = _denominators()
    for j, col in enumerate(df.columns):
        miss = (text.iloc[:, j] == MISSING).to_numpy()
        if not miss.any():
            continue
        symbol = pd.Series(missing.get(str(col), NOT_AVAILABLE), index=df.index, dtype=object)
        den = dens.get(str(col))
        if str(col) not in missing and den in df.columns:
            zero = pd.to_numeric(df[den].where(~df[den].map(is_suppressed)), errors="coerce").eq(0).to_numpy()
            symbol[zero] = NOT_APPLICABLE
        values = text.iloc[:, j].to_numpy(dtype=object, copy=True)
        values[miss] = symbol.to_numpy()[miss]
        text.isetitem(j, pd.Series(values, index=text.index, dtype=object))
    return text


def symbols_note(symbols: Iterable[str]) -> str:
    """Return the legend of the ``z`` and ``x`` symbols present in a table ("" when none)."""
    found = set(symbols)
    parts = []
    if NOT_APPLICABLE in found:
        parts.append("z : sans objet (par exemple un taux dont le dénominateur est nul, ou une valeur qui ne "
                     "se calcule pas pour cette ligne)")
    if NOT_AVAILABLE in found:
        parts.append("x : non disponible (valeur absente des sources)")
    return " ; ".join(parts) + "." if parts else ""


def csv_download(text: pd.DataFrame, headers: list[str]) -> str:
    """Return the ``data:`` URI of a published table as CSV: ``;``, UTF-8 with BOM, spreadsheet-safe.

    ``text`` holds the cells as displayed (:func:`published_text`); thousands separators and units
    are dropped so that a French spreadsheet reads the numbers (``12 345,6 %`` → ``12345,6``).
    """
    from ..io import csv_text

    def plain(value: object) -> str:
        v = str(value)
        stripped = v.replace(NNBSP, "").replace("\xa0", "").removesuffix("%").removesuffix("€").strip()
        return stripped if re.fullmatch(r"[−-]?\d+(,\d+)?", stripped) else v

    frame = pd.DataFrame({i: [plain(v) for v in text.iloc[:, i]] for i in range(text.shape[1])})
    frame.columns = headers
    body = "\ufeff" + csv_text(frame, sep=";")
    return "data:text/csv;charset=utf-8," + urllib.parse.quote(body, safe=" ;,.:/()'_*!~$+=@?[]")


def _glossary_keys(columns: Iterable[object], indicators: Iterable[str] | None = None) -> list[str]:
    from ..indicators import INDICATORS

    keys = [str(c) for c in columns if str(c) in INDICATORS] + [k for k in (indicators or []) if k in INDICATORS]
    return list(dict.fromkeys(keys))


def links_html(anchor: str, what: str, *, csv_uri: str | None = None, keys: Iterable[str] = ()) -> str:
    """Return the links under a chart or table: permalink, CSV download, definitions in the glossary."""
    from ..indicators import INDICATORS

    what = _esc(what)
    items = [f'<a class="gar-ancre" href="#{anchor}"><span aria-hidden="true"># </span>Lien'
             f'<span class="visuellement-cache"> permanent vers « {what} »</span></a>']
    if csv_uri:
        items.append(f'<a class="gar-csv" href="{_esc(csv_uri)}" download="{anchor}.csv" type="text/csv">'
                     f'Télécharger les données (CSV)<span class="visuellement-cache"> : {what}</span></a>')
    keys = list(keys)
    if keys:
        defs = ", ".join(f'<a href="{GLOSSARY_HREF}#{k}">{_esc(INDICATORS[k].label)}</a>' for k in keys)
        items.append(f'<span class="gar-definitions">Définition{"s" if len(keys) > 1 else ""} : {defs}</span>')
    return '<p class="gar-liens">' + " · ".join(items) + "</p>"


def _download_frame(df: pd.DataFrame, download: pd.DataFrame | None, threshold: int | None) -> pd.DataFrame:
    """The table behind the CSV: ``download`` (published by its own spec, else by the table's), else ``df``."""
    if download is None:
        return df
    from ..disclosure import Spec, publish

    spec = download.attrs.get("disclosure") or df.attrs.get("disclosure")
    return publish(download, spec, threshold=threshold) if isinstance(spec, Spec) else download


def table_html(df: pd.DataFrame, caption: str, *, note: str | None = None, formats: Mapping | None = None,
               labels: Mapping[str, str] | None = None, row_header: bool = True,
               threshold: int | None = None, max_rows: int | None = None, anchor: str | None = None,
               download: pd.DataFrame | None = None, missing: Mapping[str, str] | None = None,
               indicators: Iterable[str] | None = None, links: bool = True) -> str:
    """Build an accessible HTML table (caption, ``th scope``, French numbers, symbols, anchor, CSV).

    Parameters
    ----------
    df : pandas.DataFrame
        Table to show, already published (the index is not shown: reset it first if it carries data).
    caption : str
        Table caption (French), required.
    note : str, optional
        Footnote (source, scope, unit); the ``c``, ``z`` and ``x`` legends are added when used.
    formats : mapping, optional
        Column → format kind, see :func:`format_frame`.
    labels : mapping, optional
        Column → header text (default :data:`COLUMN_LABELS`, else the column name).
    row_header : bool, optional
        Whether the first column holds row headers (``th scope="row"``).
    threshold : int, optional
        Threshold quoted in the ``c`` footnote and used to publish ``download``.
    max_rows : int, optional
        Show only the first rows, and say so in the footnote (the CSV has them all).
    anchor : str, optional
        Stable anchor (``id``) of the table; default: a slug of the caption's head.
    download : pandas.DataFrame, optional
        Longer table offered as CSV (e.g. the whole list of schools); published with its
        disclosure spec (or the shown table's) before it is written.
    missing : mapping, optional
        Column → symbol of its missing values (``"z"`` sans objet; default ``x``, or ``z`` for a rate on
        a zero denominator).
    indicators : iterable of str, optional
        Indicator keys defined in the glossary, besides the registered columns of the table.
    links : bool, optional
        Whether to add the anchor, permalink, CSV and definition links (False inside a figure).

    Returns
    -------
    str
        A ``<div>`` scroll container holding the ``<table>``, its footnotes and links.
    """
    if not caption:
        raise ValueError("Un tableau publié doit avoir une légende (caption).")
    shown = df if max_rows is None else df.head(max_rows)
    labels = {**COLUMN_LABELS, **_indicator_labels(), **(labels or {})}
    text = published_text(shown, formats, missing)
    text = _code_labels(shown, text)
    has_c = bool(shown.map(is_suppressed).to_numpy().any()) if len(shown) else False
    kinds = {c: (formats or {}).get(c) or column_kind(str(c), shown[c]) for c in shown.columns}
    head = "".join(f'<th scope="col" style="{_STYLE_CELL.format(align="left" if kinds[c] == "text" else "right")}">'
                   f"{_esc(labels.get(str(c), c))}</th>" for c in shown.columns)
    # long text columns keep a readable width (the table scrolls in its container instead)
    wide = {c for c in shown.columns if kinds[c] == "text" and len(text) and text[c].str.len().max() > 14}
    rows, used = [], set()
    for i in range(len(text)):
        cells = []
        for j, c in enumerate(shown.columns):
            align = "left" if kinds[c] == "text" else "right"
            style = _STYLE_CELL.format(align=align) + (";min-width:9em" if c in wide else "")
            raw = text.iat[i, j]
            value = _esc(raw)
            if kinds[c] != "text" or (len(value) <= 12 and " " not in value):
                style += ";white-space:nowrap"  # numbers and dates never break
            if raw in SYMBOL_TITLES:
                used.add(raw)
                value = f'<abbr title="{SYMBOL_TITLES[raw]}">{raw}</abbr>'
            if j == 0 and row_header:
                cells.append(f'<th scope="row" style="{style};font-weight:normal">{value}</th>')
            else:
                cells.append(f'<td style="{style}">{value}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    if note:
        notes.append(_esc(note))
    if max_rows is not None and len(df) > max_rows:
        notes.append(f"{fmt_number(max_rows)} premières lignes sur {fmt_number(len(df))}"
                     + (" ; le fichier CSV les contient toutes." if links else "."))
    if has_c:
        notes.append(_esc(suppression_note(threshold)))
    legend = symbols_note(used)
    if legend:
        notes.append(_esc(legend))
    foot = "".join(f'<p class="gar-note" style="font-size:0.9em;margin:0.3em 0">{n}</p>' for n in notes)
    label = _esc(caption)
    ident = ""
    if links:
        key = anchor_id(caption, anchor)
        ident = f' id="{key}"'
        full = _download_frame(df, download, threshold)
        full_text = _code_labels(full, published_text(full, formats, missing))
        headers = [str(labels.get(str(c), c)) for c in full.columns]
        uri = csv_download(full_text, headers)
        if len(uri) > MAX_CSV_URI:  # keep the page light: the first rows that fit, and say so
            keep = max(len(shown), int(len(full) * MAX_CSV_URI / len(uri) * 0.95))
            uri = csv_download(full_text.head(keep), headers)
            foot += (f'<p class="gar-note" style="font-size:0.9em;margin:0.3em 0">Le fichier CSV est limité aux '
                     f"{fmt_number(keep)} premières lignes sur {fmt_number(len(full))} (taille de la page).</p>")
        foot += links_html(key, caption, csv_uri=uri, keys=_glossary_keys(df.columns, indicators))
    return (f'<div class="gar-table"{ident} role="region" aria-label="{label}" tabindex="0" style="{_STYLE_WRAP}">'
            f'<table style="{_STYLE_TABLE}"><caption style="text-align:left;font-weight:bold;padding:0.3em 0">'
            f"{label}</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{foot}</div>")


def _code_labels(df: pd.DataFrame, text: pd.DataFrame) -> pd.DataFrame:
    """Replace codes by their French labels (:data:`formatting.CODE_LABELS`) and booleans by oui / non."""
    from ..formatting import code_label

    out = text.copy()
    for j, col in enumerate(df.columns):
        s = df.iloc[:, j]
        if pd.api.types.is_bool_dtype(s):
            out.isetitem(j, s.map({True: "oui", False: "non"}).fillna(NOT_AVAILABLE).astype(object))
        else:
            out.isetitem(j, pd.Series([code_label(str(col), v) for v in out.iloc[:, j]], index=out.index,
                                      dtype=object))
    return out


# --------------------------------------------------------------------------- charts as inline SVG


def _text_artists(fig):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def _min_font(fig) -> float:
    sizes = [t.get_fontsize() for t in _text_artists(fig)]
    return min(sizes) if sizes else 99.0


def _raise_fonts(fig, minimum: float) -> None:
    for ax in fig.axes:
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            ticks = [t for t in axis.get_ticklabels(which="both") if t.get_text()]
            if ticks and min(t.get_fontsize() for t in ticks) < minimum:
                ax.tick_params(axis=name, which="both", labelsize=minimum)
    for t in _text_artists(fig):
        if t.get_fontsize() < minimum:
            t.set_fontsize(minimum)


def _save_svg(fig, salt: str) -> str:
    import matplotlib as mpl

    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buf.getvalue()


def _svg_width(svg: str) -> float:
    m = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    return float(m.group(1)) if m else CHART_WIDTH_IN * 72


def chart_svg(fig, alt: str, anchor: str) -> str:
    """Return ``fig`` as inline SVG whose smallest text shows at ≥ 12 px in a phone's column.

    The chart is drawn :data:`CHART_WIDTH_IN` wide; its text stays text (``svg.fonttype: none``)
    and every text smaller than 12 px × (drawn width / :data:`PHONE_COLUMN_PX`) is enlarged.
    Ids are prefixed by ``anchor`` so that several charts share a page.
    """
    import warnings

    w, h = fig.get_size_inches()
    if w > CHART_WIDTH_IN:
        fig.set_size_inches(CHART_WIDTH_IN, h)
    svg = ""
    for _ in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()
        svg = _save_svg(fig, anchor)
        width = _svg_width(svg)
        need = MIN_CHART_TEXT_PX * width / PHONE_COLUMN_PX
        if _min_font(fig) >= need - 0.01:
            break
        _raise_fonts(fig, need + 0.3)
    svg = re.sub(r"<\?xml.*?\?>\s*|<!DOCTYPE.*?>\s*|<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r";? ?font-family: [^;\"]+", "", svg)
    svg = re.sub(r'\sxmlns(:xlink)?="[^"]*"', "", svg)  # inline in HTML: no namespace (nor URL) needed
    used = set(re.findall(r"#([A-Za-z_][\w.-]*)\)", svg)) | set(re.findall(r'href="#([\w.-]+)"', svg))
    svg = re.sub(r'\sid="([^"]+)"', lambda m: f' id="{anchor}-{m.group(1)}"' if m.group(1) in used else "", svg)
    svg = re.sub(r"url\(#([\w.-]+)\)", lambda m: f"url(#{anchor}-{m.group(1)})", svg)
    svg = re.sub(r'href="#([\w.-]+)"', lambda m: f'href="#{anchor}-{m.group(1)}"', svg)
    return re.sub(r"<svg\b", f'<svg role="img" aria-label="{_esc(alt)}" focusable="false" class="gar-graphique"',
                  svg, count=1)


def figure_html(fig, alt: str, *, caption: str = "", data: pd.DataFrame | None = None,
                data_caption: str | None = None, formats: Mapping | None = None, dpi: int = 96,
                threshold: int | None = None, anchor: str | None = None, missing: Mapping[str, str] | None = None,
                indicators: Iterable[str] | None = None) -> str:
    """Build an accessible ``<figure>``: inline SVG chart with its text alternative, caption, data, links.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The chart (closed after rendering).
    alt : str
        Text alternative, one or two French sentences from :mod:`.alt_text`.
    caption : str, optional
        Visible caption (title, source, unit).
    data : pandas.DataFrame, optional
        The chart's published numbers: a collapsible « Données du graphique » table and the CSV.
    anchor : str, optional
        Stable anchor (``id``); default: a slug of the caption's head.
    missing, indicators : optional
        As in :func:`table_html`.
    dpi : int, optional
        Resolution of the PNG fallback (a chart too heavy as SVG).
    """
    import matplotlib.pyplot as plt

    if not alt or not alt.strip():
        raise ValueError("Un graphique publié doit avoir une alternative textuelle.")
    key = anchor_id(caption or alt, anchor)
    svg = chart_svg(fig, alt, key)
    if len(svg.encode("utf-8")) > MAX_SVG_BYTES:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        b64 = base64.b64encode(buf.getvalue()).decode("ascii")
        svg = (f'<img src="data:image/png;base64,{b64}" alt="{_esc(alt)}" '
               f'style="max-width:100%;height:auto;display:block">')
    plt.close(fig)
    parts = [f'<figure class="gar-figure" id="{key}" style="margin:1em 0;max-width:100%">', svg]
    if caption:
        parts.append(f'<figcaption style="font-size:0.95em;margin-top:0.3em">{_esc(caption)}</figcaption>')
    uri, keys = None, list(indicators or [])
    if data is not None and len(data):
        parts.append('<details style="margin-top:0.3em"><summary style="cursor:pointer">Données du graphique'
                     "</summary>"
                     + table_html(data, data_caption or (caption or "Données du graphique"), formats=formats,
                                  threshold=threshold, missing=missing, links=False)
                     + "</details>")
        labels = {**COLUMN_LABELS, **_indicator_labels()}
        text = _code_labels(data, published_text(data, formats, missing))
        uri = csv_download(text, [str(labels.get(str(c), c)) for c in data.columns])
        keys = _glossary_keys(data.columns, indicators)
    parts.append(links_html(key, caption or alt, csv_uri=uri, keys=keys))
    parts.append("</figure>")
    return "".join(parts)


def details_html(title: str, parts: Iterable[str]) -> str:
    """Return a collapsed ``<details>`` block (« Détails techniques ») holding already-built HTML parts."""
    return (f'<details class="gar-details"><summary>{_esc(title)}</summary>'
            + "".join(p for p in parts if p) + "</details>")


def list_html(items: Iterable[str]) -> str:
    """Return a bulleted list of French sentences (escaped)."""
    items = [i for i in items if i]
    return "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>" if items else ""


def toc_html(fragment: str, minimum: int = 3) -> str:
    """Return a table of contents of the ``h2`` headings with an ``id`` of a page ("" below ``minimum``)."""
    heads = re.findall(r'<h2\b[^>]*\bid="([^"]+)"[^>]*>(.*?)</h2>', fragment, flags=re.IGNORECASE | re.DOTALL)
    if len(heads) < minimum:
        return ""
    items = "".join(f'<li><a href="#{_esc(i)}">{re.sub(r"<[^>]+>", "", t).strip()}</a></li>' for i, t in heads)
    return (f'<nav class="gar-sommaire" aria-label="Sommaire de la page"><p class="gar-sommaire-titre">Sommaire</p>'
            f"<ol>{items}</ol></nav>")


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

    anchor = anchor_id(title, slug(title) or "section")
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


def show_details(title: str, parts: Iterable[str]) -> str:
    """Display a collapsed block (« Détails techniques »); see :func:`details_html`."""
    return _display(details_html(title, parts))


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
