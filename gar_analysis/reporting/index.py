"""The batch index: ``reports/<run-id>/index.json`` and an accessible ``index.html``.

Several ``gar-analysis reports`` calls with the same run id (national, then
académie…) add to the same index: entries are merged by
(audience, territoire, notebook), the latest run of an entry wins.
"""
from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from .. import __version__
from ..territories import AUDIENCES
from .export import TEMPLATES_DIR, css, publish

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
        publish(run_dir / "index.json", json.dumps(index, ensure_ascii=False, indent=1))
        publish(run_dir / "index.html", render_index(index))
    return index


def _duration(value) -> str:
    try:
        return f"{float(value):.1f} s".replace(".", ",")
    except (TypeError, ValueError):
        return "–"


def render_index(index: dict) -> str:
    """Render the index page (accessible, keyboard usable, no script)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)
    template = env.get_template("index.html.j2")
    groups: dict[str, list] = {}
    for e in index.get("reports", []):
        titre = e.get("titre") or ("Tableau de bord" if e.get("notebook") == "tableau_de_bord"
                                   else str(e.get("notebook", "")).replace("_", " ").capitalize())
        groups.setdefault(e.get("audience", ""), []).append({
            **e, "titre": titre, "duree": _duration(e.get("duree_s")),
            "nom": e.get("nom") or e.get("territoire"), "erreur": e.get("erreur") or "",
            "points_forts": e.get("points_forts") or [], "a_corriger": e.get("a_corriger") or []})
    audiences = [{"key": a, "label": AUDIENCES.get(a, (None, a))[1], "rows": rows} for a, rows in groups.items()]
    n_ok = sum(1 for e in index.get("reports", []) if e.get("statut") == "ok")
    total = len(index.get("reports", []))
    updated = index.get("mis_a_jour", "")
    try:
        updated = datetime.fromisoformat(updated).strftime("%d/%m/%Y à %H:%M UTC")
    except ValueError:
        pass
    return template.render(run_id=index.get("run_id", ""), css=css(), audiences=audiences, total=total,
                           n_ok=n_ok, n_fail=total - n_ok, updated=updated, simulated=index.get("simule"),
                           version=__version__)
