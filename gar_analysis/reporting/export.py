"""HTML export of executed report notebooks, the shared page shell, and the scan of outputs for leaks.

The export runs in-process (nbconvert's ``HTMLExporter`` with the package's
template ``templates/gar_report.html.j2``): no code cells, no prompts, no
script, images embedded, so that a report reads offline on a phone.

Every generated page shares one shell, ``templates/page.html.j2``, in the
Système de design de l'État (DSFR): skip links, header with the « République
française » bloc-marque, breadcrumb (portail › territoire › page), one ``h1``,
the "Données simulées" callout, the footer. Use :func:`page_shell` for any new
page (glossary, quality page, release notes…)::

    from gar_analysis.reporting.export import page_shell, publish
    html = page_shell("Glossaire", body_html, depth=0, simulated=True,
                      breadcrumb=[("Glossaire", "")])
    publish(run_dir / "glossaire.html", html)

``depth`` is the folder depth of the page below the run folder (0 for
``<run>/glossaire.html``, 1 for ``<run>/academie/14.html``): links to the
portal and to the DSFR stylesheet (``<run>/static/dsfr/dsfr.css``, copied by
``index.update_index`` or :func:`gar_analysis.reporting.dsfr.copy_to_run`) are
relative, so pages work from ``file://``. The package stylesheet
``static/gar.css`` is always inlined after the DSFR: it styles the report
content and is the fallback when the DSFR could not be vendored.
"""
from __future__ import annotations

import copy
import os
import html as html_lib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import jinja2

from .. import __version__, config
from ..config import secret_values
from ..territories import AUDIENCES, territory_title
from . import dsfr

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Size limit of one report (bytes).
MAX_REPORT_BYTES = 3 * 1024 * 1024
DEFAULT_ALT = "Graphique : texte alternatif non fourni par le carnet (voir le tableau de données associé)."

_CONTENT_START = "<!--gar-contenu-debut-->"
_CONTENT_END = "<!--gar-contenu-fin-->"


@lru_cache(maxsize=1)
def css() -> str:
    """Return the reports' stylesheet (inlined in every page): page chrome, then figures and tables."""
    text = "\n".join((STATIC_DIR / name).read_text(encoding="utf-8") for name in ("gar.css", "gar-figures.css"))
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments name source files: readers never see them


#: Link to the content licence in the footer of every page.
LICENCE_HREF = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
_BODY_MARK = "<!--gar-corps-->"
SIMULATED_TEXT = ("ces pages sont construites à partir d'un jeu de données simulé (échantillon de démonstration). "
                  "Leurs chiffres ne décrivent pas la réalité.")


@lru_cache(maxsize=1)
def _shell_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)


def page_shell(title: str, body_html: str, *, depth: int = 0, h1: str | None = None, subtitle: str = "",
               breadcrumb: list[tuple[str, str]] | None = None, simulated: bool = False, footer_html: str = "",
               footer_links: list[tuple[str, str]] | None = None, script: str = "", body_class: str = "",
               run_label: str = "", dsfr_available: bool | None = None) -> str:
    """Wrap a page body in the shared DSFR shell.

    Parameters
    ----------
    title : str
        Text of ``<title>`` (also the ``h1`` unless ``h1`` is given).
    body_html : str
        Trusted HTML of the content (escape values yourself: :func:`escape`).
    depth : int
        Folder depth of the page below the run folder (0: ``<run>/x.html``).
    h1, subtitle : str, optional
        Page heading and lead sentence.
    breadcrumb : list of (label, href), optional
        Levels after the portal (« Accueil » is added first); the last one is the current page,
        an empty href gives a level without link.
    simulated : bool
        Show the "Données simulées" callout.
    footer_html : str
        Trusted HTML shown at the top of the footer (a report's provenance).
    footer_links : list of (label, href), optional
        Footer links, relative to the run folder (default: the portal).
    script : str
        Inline script (the portal's search); report pages have none.
    body_class, run_label : str
        Extra class of ``body``; label of the run in the header tagline.
    dsfr_available : bool, optional
        Link the DSFR stylesheet (default: when it is vendored, see :mod:`.dsfr`).

    Returns
    -------
    str
        The page.
    """
    up = "../" * max(int(depth), 0)
    if dsfr_available is None:
        dsfr_available = dsfr.available()
    crumbs = [("Accueil", f"{up}index.html")] + list(breadcrumb or []) if breadcrumb else []
    links = footer_links if footer_links is not None else [("Portail des rapports", "index.html")]
    return _shell_env().get_template("page.html.j2").render(
        title=title, h1=h1 or title, subtitle=subtitle, body=body_html, breadcrumb=crumbs, simulated=simulated,
        simulated_text=SIMULATED_TEXT, footer_html=footer_html, script=script, body_class=body_class,
        footer_links=[(label, href if "://" in href or href.startswith("#") else up + href) for label, href in links],
        home_href=f"{up}index.html", css=css(), version=__version__, licence_href=LICENCE_HREF,
        dsfr_href=f"{up}{dsfr.RUN_SUBDIR}/{dsfr.CSS_NAME}" if dsfr_available else "",
        run_label=run_label)


def _report_shell(g: dict, index_href: str, audience: str, code: str, place: str, title: str) -> tuple[str, str]:
    """Return the report page's shell before and after its content."""
    root = index_href[: -len("index.html")] if index_href.endswith("index.html") else ""
    depth = root.count("../")
    breadcrumb = None
    if index_href:
        label = territory_title(audience, code, place) if audience in AUDIENCES and code else place
        anchor = f"{root}index.html#t-{audience}-{code}" if audience != "editeur" else ""
        breadcrumb = [(label, anchor), (title, "")] if label else [(title, "")]
    provenance = _shell_env().get_template("provenance.html.j2").render(g=g)
    page = page_shell(g["title"], _BODY_MARK, depth=depth, h1=g["h1"], subtitle=g["subtitle"],
                      breadcrumb=breadcrumb, simulated=g["simulated"], footer_html=provenance,
                      footer_links=[("Portail des rapports", "index.html")] if index_href else [],
                      run_label=f"lot {g['run_id']}" if g.get("run_id") else "")
    top, _, bottom = page.partition(_BODY_MARK)
    return top, bottom


@lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_file="gar_report.html.j2", extra_template_basedirs=[str(TEMPLATES_DIR)],
                            extra_template_paths=[str(TEMPLATES_DIR)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.exclude_anchor_links = True
    return exporter


def warm_up() -> None:
    """Load and compile the template once (before forking workers)."""
    import nbformat

    _exporter().from_notebook_node(nbformat.v4.new_notebook(), resources={"gar": report_context({}, {})})


def fr_int(value) -> str:
    """Format an integer the French way (narrow no-break space as thousands separator)."""
    try:
        return f"{int(value):,}".replace(",", "\u202f")
    except (TypeError, ValueError):
        return str(value)


def _fr_date(iso: str) -> str:
    try:
        d = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if len(str(iso)) <= 10:
        return d.strftime("%d/%m/%Y")
    return d.strftime("%d/%m/%Y à %H:%M UTC") if d.tzinfo else d.strftime("%d/%m/%Y à %H:%M")


def _quality_text(constats) -> str:
    if not isinstance(constats, dict) or not constats:
        return "aucun constat enregistré dans le manifeste"
    labels = {"erreur": ("erreur", "erreurs"), "avertissement": ("avertissement", "avertissements"),
              "info": ("information", "informations")}
    parts = []
    for key in sorted(constats, key=lambda k: list(labels).index(k) if k in labels else 9):
        n = int(constats[key] or 0)
        one, many = labels.get(key, (key, key))
        parts.append(f"{fr_int(n)} {one if n == 1 else many}")
    return "constats des contrôles qualité sur les données sources : " + ", ".join(parts)


def report_context(params: dict, manifest: dict, *, title: str = "", territory_name: str = "",
                   duration_s: float | None = None, index_href: str = "", produced_at: datetime | None = None,
                   page: str = "") -> dict:
    """Build the values the page template shows (header, banner, provenance footer).

    Parameters
    ----------
    params : dict
        Notebook parameters (``audience``, ``territoire``…); secrets never belong here.
    manifest : dict
        ``gar_analysis.build.load_manifest()`` (sources with dates and rows, build time, commit, simulated…).
    title : str
        Title of the notebook (its first heading).
    territory_name : str
        Readable territory name ("académie de Rennes").
    duration_s : float, optional
        Execution time of the notebook.
    index_href : str
        Relative link to the batch index ("" for none).
    produced_at : datetime, optional
        Default: now (UTC).
    page : str, optional
        Name of the page (``academie-04``), the prefix of its CSV downloads (default: audience-territoire).

    Returns
    -------
    dict
    """
    audience = str(params.get("audience", ""))
    audience_label = AUDIENCES.get(audience, (None, audience))[1]
    title = title or "Rapport GAR"
    place = territory_name or str(params.get("territoire", ""))
    h1 = f"{title} – {place}" if place and place.lower() not in title.lower() else title
    produced_at = produced_at or datetime.now(timezone.utc)
    sources = []
    for s in manifest.get("sources", []) or []:
        if isinstance(s, dict):
            sources.append({"fichier": Path(str(s.get("fichier", s.get("path", "")))).as_posix(),
                            "date": _fr_date(s.get("modifie", s.get("date", ""))) if s.get("modifie", s.get("date"))
                            else "non renseignée",
                            "lignes": fr_int(s.get("lignes", s.get("rows", "")))})
    periode = manifest.get("periode")
    if isinstance(periode, (list, tuple)) and len(periode) == 2:
        periode = f"de {periode[0]} à {periode[1]}"
    simulated = bool(manifest.get("simulated", False))
    shown_params = [(k, str(v)) for k, v in params.items() if k != "processed_dir"]
    ctx = {
        "title": f"{title} – {place} – {audience_label} – GAR" if place else f"{title} – {audience_label} – GAR",
        "h1": h1,
        "subtitle": " · ".join(x for x in (f"Public : {audience_label}" if audience_label else "",
                                          (f"{'Catalogue' if params.get('audience') == 'editeur' else 'Territoire'} : "
                                           f"{place}") if place else "",
                                          f"Lot {params['run_id']}" if params.get("run_id") else "") if x),
        "css": css(),
        "simulated": simulated,
        "data_kind": "données simulées (échantillon)" if simulated else "données réelles",
        "built_at": _fr_date(manifest["built_at"]) if manifest.get("built_at") else "",
        "period": str(periode or ""),
        "quality": _quality_text(manifest.get("constats")),
        "version": str(manifest.get("version") or __version__),
        "commit": str(manifest.get("commit") or "inconnu"),
        "params": shown_params,
        "produced_at": produced_at.strftime("%d/%m/%Y à %H:%M UTC"),
        "duration": f"{duration_s:.1f} s".replace(".", ",") if duration_s is not None else "",
        "threshold": params["seuil_secret"] if "seuil_secret" in params else config.DISCLOSURE_THRESHOLD,
        "sources": sources,
        "index_href": index_href,
        "default_alt": DEFAULT_ALT,
        "run_id": str(params.get("run_id", "")),
        "page": page or "-".join(str(params[k]) for k in ("audience", "territoire") if params.get(k)),
    }
    ctx["shell_top"], ctx["shell_bottom"] = _report_shell(ctx, index_href, audience, str(params.get("territoire", "")),
                                                          place, title)
    return ctx


def notebook_title(nb) -> str:
    """Return the text of the notebook's first Markdown heading ("" when none)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = re.match(r"^\s*#{1,6}\s+(.*?)\s*#*\s*$", line)
                if m:
                    return re.sub(r"[*_`]", "", m.group(1)).strip()
            if cell.source.strip():
                return ""
    return ""


def _drop_title(nb):
    """Copy of ``nb`` without its first heading line (it becomes the page's h1)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            lines = cell.source.splitlines()
            for i, line in enumerate(lines):
                if re.match(r"^\s*#{1,6}\s+", line):
                    cell.source = "\n".join(lines[:i] + lines[i + 1:])
                    break
            break
    return nb


def _shift_headings(fragment: str) -> str:
    """Demote every heading one level (h1→h2…h5→h6): the page keeps a single h1."""
    return re.sub(r"<(/?)h([1-5])(?=[\s>])", lambda m: f"<{m.group(1)}h{int(m.group(2)) + 1}", fragment,
                  flags=re.IGNORECASE)


_TABLE_OPEN = re.compile(r"<table\b", re.IGNORECASE)
_TABLE_CLOSE = re.compile(r"</table\s*>", re.IGNORECASE)
_EXTERNAL = [
    re.compile(r"<script\b.*?</script\s*>", re.IGNORECASE | re.DOTALL),  # no script at all: static pages
    re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE),
]


#: A focusable scroll container opened just before a table (the display helpers' own wrapper).
_SCROLLER_BEFORE = re.compile(r"<div\b[^>]*\btabindex=[\"']?0[\"']?[^>]*>\s*\Z", re.IGNORECASE)


def _wrap_tables(fragment: str) -> str:
    """Put each top-level table in a keyboard-focusable horizontal scroller (no page overflow at 390 px)."""
    out, depth, pos, wrapped = [], 0, 0, False
    for m in re.finditer(r"<(/?)table\b[^>]*>", fragment, flags=re.IGNORECASE):
        closing = m.group(1) == "/"
        out.append(fragment[pos:m.start()])
        if not closing:
            if depth == 0 and not _SCROLLER_BEFORE.search(fragment, max(0, m.start() - 600), m.start()):
                out.append('<div class="defilement" tabindex="0" role="region" aria-label="Tableau (défilement horizontal)">')
                wrapped = True
            out.append(m.group(0))
            depth += 1
        else:
            out.append(m.group(0))
            depth = max(depth - 1, 0)
            if depth == 0 and wrapped:
                out.append("</div>")
                wrapped = False
        pos = m.end()
    out.append(fragment[pos:])
    return "".join(out)


def _page_links(content: str, page: str) -> str:
    """Add a table of contents (h2 headings) and name each CSV download after its page (``<page>-<anchor>.csv``)."""
    from .display import toc_html

    if page:
        safe = re.sub(r"[^\w.-]+", "-", page)
        content = re.sub(r'(<a class="gar-csv"[^>]*?\bdownload=")', lambda m: m.group(1) + safe + "-", content)
    return toc_html(content) + content


def external_references(html: str) -> list[str]:
    """Return the resources a page would load from the network (scripts, styles, images, fonts)."""
    found = re.findall(r"""<(?:script|img|iframe|link|source|video|audio)\b[^>]*\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""",
                       html, flags=re.IGNORECASE)
    found += re.findall(r"""url\(\s*["']?((?:https?:)?//[^"')\s]+)""", html, flags=re.IGNORECASE)
    found += re.findall(r"""@import\s+["']?((?:https?:)?//[^"';\s]+)""", html, flags=re.IGNORECASE)
    return found


def render_report(nb, context: dict) -> str:
    """Render an executed notebook as a self-contained accessible HTML page.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed notebook.
    context : dict
        From :func:`report_context`.

    Returns
    -------
    str
        The page.
    """
    body, _ = _exporter().from_notebook_node(_drop_title(nb), resources={"gar": context})
    head, sep, rest = body.partition(_CONTENT_START)
    content, sep2, tail = rest.partition(_CONTENT_END)
    if sep and sep2:
        if re.search(r"<h1[\s>]", content, flags=re.IGNORECASE):
            content = _shift_headings(content)
        content = _wrap_tables(content)
        content = _page_links(content, context.get("page", ""))
        for pattern in _EXTERNAL:
            content = pattern.sub("", content)
        body = head + content + tail
    return body


# --- leak scan -------------------------------------------------------------------------------------------------

#: Names of pupil-level identifier columns that must never reach an output.
IDENTIFIER_NAMES = ("id_accedant", "idaccedant", "id_eleve", "ideleve", "identifiant_eleve")
#: INE (identifiant national élève): 10 digits + 1 letter, or 9 digits + 2 letters.
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/=\\\n]{200,}")
INE_PATTERN = re.compile(r"(?<![0-9A-Za-z])(?:\d{10}[A-Z]|\d{9}[A-Z]{2})(?![0-9A-Za-z])")


@dataclass(frozen=True)
class Leak:
    """A forbidden value found in an output file."""

    file: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.file} : {self.kind} ({self.excerpt})"


def scan_text(text: str, secrets: list[str] | None = None, *, name: str = "") -> list[Leak]:
    """Find secrets and pupil-level identifiers in a text.

    Parameters
    ----------
    text : str
        Content of an output (HTML, notebook JSON, log…).
    secrets : list of str, optional
        Secret values to look for (default: every secret set in the environment).
    name : str
        File name used in the findings.

    Returns
    -------
    list of Leak
        Excerpts are masked: a secret is never copied into a finding.
    """
    secrets = secret_values() if secrets is None else [s for s in secrets if s]
    leaks = []
    for s in secrets:
        if s in text:
            leaks.append(Leak(name, "secret", s[:2] + "…" + f" ({len(s)} caractères)"))
    low = text.lower()
    for ident in IDENTIFIER_NAMES:
        if ident in low:
            leaks.append(Leak(name, "identifiant individuel", ident))
    for m in INE_PATTERN.finditer(_BASE64_BLOB.sub(" ", text)):
        leaks.append(Leak(name, "identifiant individuel (format INE)", m.group(0)[:3] + "…"))
    return leaks


def scan_outputs(run_dir: str | Path, secrets: list[str] | None = None) -> list[Leak]:
    """Scan every HTML, notebook, JSON and log file of a run directory for leaks.

    Parameters
    ----------
    run_dir : str or Path
        ``reports/<run-id>`` (or any folder).
    secrets : list of str, optional
        Default: the secrets set in the environment.

    Returns
    -------
    list of Leak
        Empty when the outputs are clean.
    """
    run_dir = Path(run_dir)
    leaks = []
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".json", ".log", ".txt", ".csv"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            leaks += scan_text(text, secrets, name=str(path.relative_to(run_dir)))
    return leaks


def publish(path: str | Path, text: str) -> Path:
    """Write a page atomically, readable by a web server (mode 644)."""
    from ..io import atomic_write_text

    path = atomic_write_text(path, text)
    os.chmod(path, 0o644)
    return path


def escape(text: object) -> str:
    """HTML-escape a value."""
    return html_lib.escape(str(text))
