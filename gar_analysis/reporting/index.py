"""The run's portal and log: ``index.json``, ``index.html`` (portal), ``journal.html``, ``liens-editeurs.csv``.

Several ``gar-analysis reports`` calls with the same run id (national, then
académie…) add to the same index: entries are merged by
(audience, territoire, notebook), the latest run of an entry wins. Each
:func:`update_index` rewrites, in the run folder:

* ``index.html``: the portal. One entry per territory (all audiences but
  publishers), grouped by région académique then académie, with links to the
  pages of the run; a client-side search by name or code (inline script, works
  from ``file://``; without script the full list shows); links to the reference
  pages present in the run folder (:data:`REFERENCE_PAGES`). Publishers' pages
  are never linked here: each publisher receives its own link.
* ``journal.html``: the run log (status, duration, errors, highlights) and the
  publishers' links, for the operator; ``liens-editeurs.csv``: the same links.
* ``static/dsfr/``: the vendored DSFR (:mod:`.dsfr`), when installed.

A page written into the run folder after the reports (glossary…) appears in
the portal at the next call: ``update_index(run_dir, [])`` refreshes it.
"""
from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import jinja2

from ..territories import (AUDIENCE_REGISTRY, AUDIENCES, academies, departements, is_private, region_name, slug,
                           territory_title)
from . import dsfr
from .export import TEMPLATES_DIR, page_shell, publish

#: Pages other modules write in the run folder, linked from the portal when present: file → (title, description).
REFERENCE_PAGES = {
    "glossaire.html": ("Glossaire", "Chaque indicateur expliqué : ce qu'il compte, sur quelle période, d'où viennent "
                                    "les données."),
    "methodologie.html": ("Méthodologie", "Comment les chiffres sont calculés, comparés et protégés par le secret "
                                          "statistique."),
    "qualite.html": ("Qualité des données", "Les anomalies relevées dans les données sources et qui peut les "
                                            "corriger."),
    "nouveautes.html": ("Nouveautés", "Ce qui a changé depuis la publication précédente."),
}
#: Shown when a search finds no territory, and beside the search field.
PUBLISHER_SENTENCE = ("Les pages des éditeurs ne sont pas publiées dans ce portail : chaque éditeur reçoit son propre "
                      "lien, transmis par l'équipe du GAR.")
JOURNAL_NAME = "journal.html"
PUBLISHER_LINKS_NAME = "liens-editeurs.csv"

#: Keys of one report entry in ``index.json`` (shared interface).
ENTRY_KEYS = ("audience", "territoire", "nom", "notebook", "statut", "html", "duree_s", "erreur",
              "points_forts", "a_corriger")


def _key(entry: dict) -> tuple:
    return entry.get("audience"), entry.get("territoire"), entry.get("notebook")


@contextmanager
def _locked(run_dir: Path):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".index.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_index(run_dir: str | Path) -> dict:
    """Read ``index.json`` of a run (an empty index when absent or unreadable)."""
    run_dir = Path(run_dir)
    path = run_dir / "index.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("reports"), list):
            return data
    except (OSError, ValueError):
        pass
    return {"run_id": run_dir.name, "reports": []}


def update_index(run_dir: str | Path, entries: list[dict], *, simulated: bool | None = None) -> dict:
    """Merge report entries into the run's index and rewrite ``index.json`` and ``index.html``.

    Parameters
    ----------
    run_dir : str or Path
        ``reports/<run-id>``.
    entries : list of dict
        Report entries (keys :data:`ENTRY_KEYS`; ``html`` relative to ``run_dir``).
    simulated : bool, optional
        Whether the data are simulated (shown as a banner); kept from earlier runs when None.

    Returns
    -------
    dict
        The merged index.
    """
    run_dir = Path(run_dir)
    with _locked(run_dir):
        index = load_index(run_dir)
        merged = {_key(e): e for e in index["reports"]}
        for e in entries:
            merged[_key(e)] = {k: e.get(k) for k in ENTRY_KEYS} | {k: v for k, v in e.items() if k not in ENTRY_KEYS}
        order = list(AUDIENCES)
        reports = sorted(merged.values(), key=lambda e: (order.index(e["audience"]) if e["audience"] in order else 99,
                                                         str(e["territoire"]), str(e["notebook"])))
        index = {"run_id": run_dir.name, "mis_a_jour": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "simule": bool(index.get("simule", False) if simulated is None else simulated),
                 "reports": reports}
        has_dsfr = dsfr.copy_to_run(run_dir)
        publish(run_dir / "index.json", json.dumps(index, ensure_ascii=False, indent=1))
        publish(run_dir / "index.html", render_index(index, run_dir=run_dir, dsfr_available=has_dsfr))
        publish(run_dir / JOURNAL_NAME, render_journal(index, dsfr_available=has_dsfr))
        publish(run_dir / PUBLISHER_LINKS_NAME, publisher_links_csv(index))
    return index



def _duration(value) -> str:
    try:
        return f"{float(value):.1f} s".replace(".", ",")
    except (TypeError, ValueError):
        return "–"


def _updated(index: dict) -> str:
    updated = index.get("mis_a_jour", "")
    try:
        return datetime.fromisoformat(updated).strftime("%d/%m/%Y à %H:%M UTC")
    except (TypeError, ValueError):
        return str(updated or "")


def _report_title(e: dict) -> str:
    return e.get("titre") or ("Tableau de bord" if e.get("notebook") in ("tableau_de_bord", "editeur")
                              else str(e.get("notebook", "")).replace("_", " ").capitalize())


#: Labels are looked up once per process (the index is re-rendered after every report of a batch).
_title = lru_cache(maxsize=None)(territory_title)
_region_name = lru_cache(maxsize=None)(region_name)


@lru_cache(maxsize=1)
def _hierarchy() -> tuple[dict, dict, dict, frozenset]:
    ac, dep = academies(), departements()
    return (dict(zip(ac.code_academie, ac.code_region)), dict(zip(ac.code_academie, ac.nom_academie)),
            dict(zip(dep.code_departement, dep.code_academie)), frozenset(ac.code_region))


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


def portal_model(index: dict, run_dir: str | Path | None = None) -> dict:
    """Arrange the index's territories for the portal (publishers left out).

    Parameters
    ----------
    index : dict
        From :func:`load_index`.
    run_dir : str or Path, optional
        Run folder, to link the reference pages present in it.

    Returns
    -------
    dict
        ``national`` (entries), ``groups`` (one per région académique: ``label``, ``entries`` for the
        région académique and the région, ``academies`` each with ``entry`` and ``departements``),
        ``others`` (entries outside the reference table), ``pages`` (reference pages present),
        ``n_territories``.
    """
    by_territory: dict[tuple, dict] = {}
    for e in index.get("reports", []):
        audience, code = e.get("audience"), str(e.get("territoire"))
        if is_private(audience) or audience not in AUDIENCE_REGISTRY:
            continue
        t = by_territory.setdefault((audience, code), {
            "id": f"t-{audience}-{code}", "audience": audience, "code": code,
            "label": _title(audience, code, e.get("nom") or ""),
            "audience_label": AUDIENCE_REGISTRY[audience].label, "links": [], "missing": 0,
            "points_forts": [], "a_corriger": []})
        if e.get("statut") == "ok" and e.get("html"):
            t["links"].append({"titre": _report_title(e), "href": e["html"],
                               "first": e.get("notebook") in ("tableau_de_bord",)})
        else:
            t["missing"] += 1
        for key in ("points_forts", "a_corriger"):  # several pages of a territory may say the same thing
            t[key] += [f for f in e.get(key) or [] if f not in t[key]]
    for t in by_territory.values():
        t["links"].sort(key=lambda link: (not link["first"], slug(link["titre"])))
        t["search"] = " ".join(slug(x) for x in (t["label"], t["code"], t["audience_label"]))
    ac_region, ac_name, dep_academie, region_codes = _hierarchy()
    groups: dict[str, dict] = {}

    def group(code: str) -> dict:
        if code not in groups:
            groups[code] = {"code": code, "label": f"Région académique {_region_name(code)}", "id": f"g-{code}",
                            "entries": [], "academies": {}}
        return groups[code]

    def academie_node(code: str) -> dict:
        node = group(ac_region[code])["academies"].setdefault(code, {"code": code, "name": ac_name[code],
                                                                      "entry": None, "departements": []})
        return node

    national, others = [], []
    for (audience, code), t in by_territory.items():
        level = AUDIENCE_REGISTRY[audience].level
        if level == "national":
            national.append(t)
        elif level == "code_region" and code in region_codes:
            group(code)["entries"].append(t)
        elif level == "code_academie" and code in ac_region:
            academie_node(code)["entry"] = t
        elif level == "code_departement" and code in dep_academie:
            academie_node(dep_academie[code])["departements"].append(t)
        else:
            others.append(t)
    out_groups = []
    for g in sorted(groups.values(), key=lambda g: slug(g["label"])):
        g["entries"].sort(key=lambda t: list(AUDIENCE_REGISTRY).index(t["audience"]))
        nodes = sorted(g["academies"].values(), key=lambda n: slug(n["name"]))
        for n in nodes:
            n["departements"].sort(key=lambda t: t["code"])
            n["label"] = n["entry"]["label"] if n["entry"] else _title("academie", n["code"], "")
            n["search"] = n["entry"]["search"] if n["entry"] else slug(n["label"])
        out_groups.append({**g, "academies": nodes})
    run_dir = Path(run_dir) if run_dir is not None else None
    pages = [{"href": name, "titre": titre, "description": desc} for name, (titre, desc) in REFERENCE_PAGES.items()
             if run_dir is not None and (run_dir / name).is_file()]
    return {"national": national, "groups": out_groups, "others": sorted(others, key=lambda t: t["id"]),
            "pages": pages, "n_territories": len(by_territory)}


#: The portal's search: accent- and case-insensitive, every word of the query in the entry's name or code.
PORTAL_SCRIPT = r"""(function () {
  var bloc = document.getElementById('recherche-bloc');
  var input = document.getElementById('recherche');
  var statut = document.getElementById('recherche-statut');
  var entrees = Array.prototype.slice.call(document.querySelectorAll('[data-cherche]'));
  var groupes = Array.prototype.slice.call(document.querySelectorAll('.gar-groupe'));
  var phraseEditeurs = bloc.getAttribute('data-editeurs');
  bloc.hidden = false;
  function norm(s) {
    return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
  }
  function chercher() {
    var mots = norm(input.value).split(' ').filter(function (m) { return m; });
    if (!mots.length) {
      entrees.forEach(function (e) { e.hidden = false; });
      groupes.forEach(function (g) { g.hidden = false; });
      statut.textContent = '';
      return;
    }
    var trouves = entrees.filter(function (e) {
      var h = ' ' + e.getAttribute('data-cherche') + ' ';
      return mots.every(function (m) { return h.indexOf(m) >= 0; });
    });
    entrees.forEach(function (e) { e.hidden = true; });
    trouves.forEach(function (e) {
      e.hidden = false;
      var p = e.parentElement && e.parentElement.closest('[data-cherche]');
      while (p) { p.hidden = false; p = p.parentElement && p.parentElement.closest('[data-cherche]'); }
      e.querySelectorAll('[data-cherche]').forEach(function (c) { c.hidden = false; });
    });
    groupes.forEach(function (g) { g.hidden = !g.querySelector('[data-cherche]:not([hidden])'); });
    var n = trouves.length;
    statut.textContent = n === 0
      ? 'Aucun territoire ne correspond à « ' + input.value.trim() + ' ». ' + phraseEditeurs
      : (n === 1 ? '1 territoire correspond' : n + ' territoires correspondent') + ' à « ' + input.value.trim() + ' ».';
  }
  input.addEventListener('input', chercher);
  document.getElementById('recherche-bouton').addEventListener('click', chercher);
  if (input.value) { chercher(); }
})();"""


def render_index(index: dict, *, run_dir: str | Path | None = None, dsfr_available: bool | None = None) -> str:
    """Render the portal page (``index.html``) of a run.

    Parameters
    ----------
    index : dict
        From :func:`load_index`.
    run_dir : str or Path, optional
        Run folder: reference pages present in it are linked.
    dsfr_available : bool, optional
        Link ``static/dsfr/dsfr.css`` (default: when the DSFR is vendored).
    """
    model = portal_model(index, run_dir)
    body = _env().get_template("portal.html.j2").render(
        **model, publisher_sentence=PUBLISHER_SENTENCE, journal=JOURNAL_NAME, updated=_updated(index),
        run_id=index.get("run_id", ""))
    return page_shell(f"Rapports GAR – lot {index.get('run_id', '')} – trouver son territoire", body, depth=0,
                      h1="Rapports GAR : trouver votre territoire",
                      subtitle=f"Lot {index.get('run_id', '')}, mis à jour le {_updated(index)}.",
                      simulated=bool(index.get("simule")), script=PORTAL_SCRIPT, body_class="portail",
                      footer_links=[("Journal du lot (exploitation)", JOURNAL_NAME)], dsfr_available=dsfr_available,
                      run_label=f"lot {index.get('run_id', '')}")


def render_journal(index: dict, *, dsfr_available: bool | None = None) -> str:
    """Render the run log (``journal.html``): status, durations, errors, highlights and publishers' links."""
    groups: dict[str, list] = {}
    for e in index.get("reports", []):
        groups.setdefault(e.get("audience", ""), []).append({
            **e, "titre": _report_title(e), "duree": _duration(e.get("duree_s")),
            "nom": e.get("nom") or e.get("territoire"), "erreur": e.get("erreur") or "",
            "points_forts": e.get("points_forts") or [], "a_corriger": e.get("a_corriger") or []})
    audiences = [{"key": a, "label": AUDIENCES.get(a, (None, a))[1], "rows": rows} for a, rows in groups.items()]
    reports = index.get("reports", [])
    n_ok = sum(1 for e in reports if e.get("statut") == "ok")
    publishers = [e for e in reports if is_private(e.get("audience"))]
    body = _env().get_template("journal.html.j2").render(
        audiences=audiences, total=len(reports), n_ok=n_ok, n_fail=len(reports) - n_ok, publishers=publishers,
        links_csv=PUBLISHER_LINKS_NAME, updated=_updated(index))
    return page_shell(f"Journal du lot {index.get('run_id', '')} – rapports GAR", body, depth=0,
                      h1=f"Journal du lot {index.get('run_id', '')}",
                      subtitle=f"Exécution des rapports, mise à jour le {_updated(index)}.",
                      breadcrumb=[("Journal du lot", "")], simulated=bool(index.get("simule")),
                      body_class="index journal",
                      footer_links=[("Portail des rapports", "index.html")], dsfr_available=dsfr_available,
                      run_label=f"lot {index.get('run_id', '')}")


def publisher_links_csv(index: dict) -> str:
    """Return ``liens-editeurs.csv``: one row per publisher page (``;``, UTF-8 with BOM, formulas neutralised)."""
    import pandas as pd

    from ..io import csv_text

    rows = [{"Code éditeur": str(e.get("territoire") or ""), "Éditeur": str(e.get("nom") or e.get("territoire") or ""),
             "Page (chemin dans le lot)": str(e.get("html") or ""),
             "Statut": "produite" if e.get("statut") == "ok" and e.get("html") else "non produite"}
            for e in index.get("reports", []) if is_private(e.get("audience"))]
    frame = pd.DataFrame(rows, columns=["Code éditeur", "Éditeur", "Page (chemin dans le lot)", "Statut"])
    return "\ufeff" + csv_text(frame)
