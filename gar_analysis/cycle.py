"""``gar-analysis cycle``: the monthly steering cycle as one scheduled command.

One run: refresh of the open data (when the portal answers) → check → build →
reports of every audience → release notes → share. Each run is a versioned
release, ``reports/releases/<release-id>/`` with ``manifest.json``; ``reports/latest``
is a symbolic link switched atomically once the release is complete. A page whose
fingerprint (its inputs: data slice, notebook, code, parameters, comparison base)
equals the one of the previous complete release — or of a crashed release, to
resume — is reused instead of executed. See ``docs/reports.md`` (« Cycle mensuel »).

Layout::

    reports/.cycle.lock                    lock (fcntl.flock) of the running cycle
    reports/latest -> releases/<id>        the published release (symbolic link)
    reports/releases/<id>/manifest.json    inputs, code version, pages and their fingerprints
    reports/releases/<id>/cycle.log        the cycle's log (batch.log: the notebooks')
    data/history/<id>/                     comparison base (changes.write_snapshot), never published

Exit status: 0 published, 1 release failed (kept, not published), 2 refused,
3 unexpected failure, 75 another cycle is running (lock held).
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from . import __version__, config
from .errors import ConfigError, DataError
from .io import atomic_write_text, sha256_file

log = logging.getLogger(__name__)
#: The cycle's own journal (``<release>/cycle.log``); messages are printed, not sent up to the root logger.
journal = logging.getLogger(__name__ + ".journal")
journal.propagate = False
journal.setLevel(logging.INFO)

#: Exit status when another cycle holds the lock (sysexits EX_TEMPFAIL: try again later).
EXIT_LOCKED = 75
#: Exit status of a failed release (kept for diagnosis, not published).
EXIT_FAILED = 1
#: Environment variable: number of complete releases kept (default :data:`DEFAULT_KEEP`).
ENV_KEEP = "GAR_CYCLE_KEEP"
DEFAULT_KEEP = 6
LOCK_NAME = ".cycle.lock"
#: Parameters left out of a page's fingerprint: they name the run, not its content.
RUN_SPECIFIC = ("run_id", "processed_dir", "reference_dir", "opendata_dir")
#: Notebooks fitted or compared on the whole national population of schools (see ``fingerprint``).
NATIONAL_MODELS = ("ecarts_territoriaux", "facteurs_de_succes")
MANIFEST = "manifest.json"


# --------------------------------------------------------------------------- layout, lock

@dataclass
class Layout:
    """Where a cycle writes: releases, the ``latest`` link, the lock, the comparison bases."""

    reports_dir: Path
    history_dir: Path

    @property
    def releases(self) -> Path:
        return self.reports_dir / "releases"

    @property
    def latest(self) -> Path:
        return self.reports_dir / "latest"

    @property
    def lock(self) -> Path:
        return self.reports_dir / LOCK_NAME


class CycleLocked(Exception):
    """Another cycle holds the lock."""


class Lock:
    """Exclusive, non-blocking ``fcntl.flock`` on ``reports/.cycle.lock``; released when the process dies."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            raise CycleLocked(holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} depuis {_now()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- inputs and code version

def _lines(path: Path) -> int:
    with path.open("rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)


def input_inventory(data_dir: str | Path) -> list[dict]:
    """Return the CSV files of a data directory: ``fichier`` (relative), ``sha256``, ``lignes`` (rows)."""
    data_dir = Path(data_dir)
    return [{"fichier": str(f.relative_to(data_dir)), "sha256": sha256_file(f), "lignes": _lines(f)}
            for f in sorted(data_dir.rglob("*.csv")) if f.is_file()]


def inputs_digest(inventory: list[dict]) -> str:
    """Return one hash of an inventory (file names and contents)."""
    h = hashlib.sha256()
    for item in sorted(inventory, key=lambda x: x["fichier"]):
        h.update(f"{item['fichier']}\0{item['sha256']}\n".encode())
    return h.hexdigest()


def processed_up_to_date(inventory: list[dict], processed_dir: str | Path) -> bool:
    """Whether the processed tables were built from exactly these raw files (same names and sha256)."""
    from .build import load_manifest

    try:
        manifest = load_manifest(processed_dir)
    except DataError:
        return False
    built = {s.get("fichier"): s.get("sha256") for s in manifest.get("sources") or []}
    ok = built == {i["fichier"]: i["sha256"] for i in inventory}
    outputs = manifest.get("outputs") or {}
    return ok and bool(outputs) and all((Path(processed_dir) / str(o.get("fichier", ""))).is_file()
                                        for o in outputs.values())


def sources_hash() -> str:
    """Return a hash of the package's sources (Python, CSV, templates, static files)."""
    h = hashlib.sha256()
    root = config.PACKAGE_DIR
    for f in sorted(root.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc",):
            h.update(str(f.relative_to(root)).encode() + b"\0")
            h.update(f.read_bytes())
    return h.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=config.PACKAGE_DIR.parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def code_version() -> dict:
    """Return the code version: package version, git commit (when available), hash of the package sources."""
    return {"version": __version__, "commit": _git_commit(), "sources_sha256": sources_hash()}


# --------------------------------------------------------------------------- fingerprints

def frame_hash(df: pd.DataFrame) -> str:
    """Return a hash of a table's columns and rows (order included)."""
    h = hashlib.sha256(json.dumps([list(map(str, df.columns)), [str(t) for t in df.dtypes]]).encode())
    if len(df):
        try:
            h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
        except TypeError:  # unhashable cells (lists…): hash their text
            h.update(pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _rounded(values: dict, digits: int = 12) -> dict:
    out = {}
    for k, v in values.items():
        try:
            f = float(v)
            out[k] = None if f != f else float(f"{f:.{digits}g}")
        except (TypeError, ValueError):
            out[k] = str(v)
    return out


class Fingerprints:
    """Compute the fingerprint of each page of a release.

    A page's fingerprint hashes:

    - ``donnees``: the rows of each processed table inside the page's territory
      (``Audience.scope``); a table without territory column but with ``uai`` is cut
      by the territory's schools; a table with neither (``ressources``, ``contrats``,
      ``budget``) is read whole by every page;
    - ``reference``: for a territorial page other than national, the figures of the
      other territories it is compared with: the national value of every indicator
      and the value of every unit of its level (the funnel of ``indicators.positions``);
    - for ``ecarts_territoriaux`` and ``facteurs_de_succes``: the whole school-level
      inputs (models and funnels are fitted on every school of the country);
    - for ``editeur``: the publisher's resources, their accès rows and findings, and
      the usage window;
    - for ``national_opendata``: the files of ``data/raw/opendata``;
    - the notebook file, the code version, the parameters (without run-specific
      paths and ids) and, for a page declaring ``reference_dir``, its territory's slice of the
      comparison base (snapshot): a page compared for the first time, or with a base whose
      slice changed, is redone.
    """

    def __init__(self, processed_dir: str | Path, *, code: dict, reference_dir: str | Path | None = None,
                 opendata_dir: str | Path | None = None):
        from . import indicators as ind

        self.processed_dir = Path(processed_dir)
        self.code = code.get("sources_sha256", "") + str(code.get("version"))
        self.tables = ind.Tables(self.processed_dir)
        from .build import TABLES

        self.frames = {n: self.tables[n] for n in TABLES if (self.processed_dir / f"{n}.parquet").exists()}
        self.reference_dir = Path(reference_dir) if reference_dir else None
        self.snapshot = None
        if self.reference_dir and (self.reference_dir / "etablissements.parquet").exists():
            self.snapshot = pd.read_parquet(self.reference_dir / "etablissements.parquet")
        self.opendata_dir = Path(opendata_dir) if opendata_dir else config.RAW_DIR / "opendata"
        self._cache: dict = {}

    # -- components
    def _whole(self, name: str) -> str:
        key = ("whole", name)
        if key not in self._cache:
            self._cache[key] = frame_hash(self.frames[name])
        return self._cache[key]

    def _facts(self) -> pd.DataFrame:
        from . import indicators as ind

        return ind.school_facts(self.tables)

    def territory_slice(self, audience: str, code: str) -> dict:
        """Hash of each table's rows inside a territory's scope."""
        from .territories import get_audience

        aud = get_audience(audience, territorial=True)
        key = ("slice", audience, code)
        if key in self._cache:
            return self._cache[key]
        schools = aud.scope(self.frames["etablissements"], code)
        uais = set(schools["uai"])
        out = {}
        for name, df in self.frames.items():
            if aud.level == "national" or aud.level in df.columns:
                part = aud.scope(df, code) if aud.level in df.columns or aud.level == "national" else df
                if aud.funded_level and "niveau" not in df.columns and "uai" in df.columns:
                    part = part[part["uai"].isin(uais)]
            elif "uai" in df.columns:
                part = df[df["uai"].isin(uais)]
            else:
                out[name] = self._whole(name)
                continue
            out[name] = frame_hash(part)
        self._cache[key] = out
        return out

    def base_slice(self, audience: str, code: str) -> str | None:
        """Hash of a territory's slice of the comparison base (None: first release, nothing to compare)."""
        from .territories import get_audience

        if self.snapshot is None:
            return None
        aud = get_audience(audience, territorial=True)
        snap = self.snapshot
        return frame_hash(aud.scope(snap, code) if (aud.level in snap.columns or aud.level == "national") else snap)

    def reference_figures(self, audience: str) -> str:
        """Hash of the figures a territorial page compares itself with (national value, every unit of its level)."""
        from . import indicators as ind
        from .territories import get_audience

        key = ("reference", audience)
        if key in self._cache:
            return self._cache[key]
        aud = get_audience(audience, territorial=True)
        facts = ind.reference(self._facts(), audience)
        yoy = facts.attrs.get("an_disponible", False)
        figures = {"national": _rounded(ind.aggregate(facts, year_on_year=yoy))}
        for unit, group in facts.groupby(aud.level, observed=True):
            figures[str(unit)] = _rounded(ind.aggregate(group, year_on_year=yoy))
        months = ind.window(self.tables["usage_mensuel"])
        figures["ressources_distinctes"] = ind._distinct_resources(self.tables, facts["uai"], months)
        self._cache[key] = _digest(figures)
        return self._cache[key]

    def editeur_slice(self, code: str) -> dict:
        """Hash of a publisher's resources, their accès rows and findings, and the usage window."""
        from . import indicators as ind

        res = self.frames["ressources"]
        mine = res[res["id_editeur"].astype(str) == str(code)]
        ids = set(mine["id_ressource"])
        out = {"ressources": frame_hash(mine),
               "fenetre": _digest(ind.window(self.tables["usage_mensuel"]))}
        if "acces_ressources" in self.frames:
            ar = self.frames["acces_ressources"]
            out["acces_ressources"] = frame_hash(ar[ar["id_ressource"].isin(ids)])
        if "constats" in self.frames and "id_ressource" in self.frames["constats"].columns:
            c = self.frames["constats"]
            out["constats"] = frame_hash(c[c["id_ressource"].isin(ids)])
        return out

    def national_inputs(self) -> dict:
        """Hash of the whole school-level inputs of the national models and funnels."""
        key = ("national_models",)
        if key not in self._cache:
            self._cache[key] = {"faits_etablissements": frame_hash(self._facts()),
                                **{n: self._whole(n) for n in ("etablissements", "etablissements_annee")
                                   if n in self.frames}}
        return self._cache[key]

    def opendata(self) -> str:
        files = sorted(p for p in self.opendata_dir.rglob("*") if p.is_file()) if self.opendata_dir.is_dir() else []
        return _digest([(str(p.relative_to(self.opendata_dir)), sha256_file(p)) for p in files])

    # -- one page
    def components(self, job) -> dict:
        """Return the fingerprint's components of one job (see the class docstring)."""
        params = {k: v for k, v in job.parameters.items() if k not in RUN_SPECIFIC}
        comp = {"carnet": sha256_file(job.input_path), "code": self.code, "parametres": _digest(params)}
        if job.notebook == "national_opendata":
            comp["donnees_ouvertes"] = self.opendata()
        elif job.audience == "editeur":
            comp["donnees"] = self.editeur_slice(job.territoire)
        else:
            comp["donnees"] = self.territory_slice(job.audience, job.territoire)
            if job.audience != "national":
                comp["reference"] = self.reference_figures(job.audience)
            if job.notebook in NATIONAL_MODELS:
                comp["population_nationale"] = self.national_inputs()
            if "reference_dir" in job.parameters:  # the page compares with the previous publication
                comp["base_de_comparaison"] = self.base_slice(job.audience, job.territoire)
        return comp

    def fingerprint(self, job) -> str:
        """Return the fingerprint of one job."""
        return _digest(self.components(job))


# --------------------------------------------------------------------------- releases

def read_manifest(release_dir: Path) -> dict:
    """Return a release's manifest ({} when absent or unreadable)."""
    try:
        data = json.loads((Path(release_dir) / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_manifest(release_dir: Path, manifest: dict) -> None:
    atomic_write_text(Path(release_dir) / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))


def list_releases(layout: Layout) -> list[tuple[str, dict]]:
    """Return ``(release_id, manifest)`` of every release folder, oldest first (by start time, then id)."""
    if not layout.releases.is_dir():
        return []
    out = []
    for d in layout.releases.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            out.append((d.name, read_manifest(d)))
    return sorted(out, key=lambda x: (str(x[1].get("debut", "")), x[0]))


def latest_release(layout: Layout) -> str | None:
    """Return the id of the release ``reports/latest`` points to (None when absent or not a link)."""
    if not layout.latest.is_symlink():
        return None
    target = Path(os.readlink(layout.latest))
    return target.name if (layout.latest.parent / target).is_dir() else None


def switch_latest(layout: Layout, release_id: str) -> None:
    """Point ``reports/latest`` at a release in one step (temporary link + ``os.replace``)."""
    tmp = layout.reports_dir / f".latest.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(Path("releases") / release_id, tmp)
    os.replace(tmp, layout.latest)


def adopt_plain_latest(layout: Layout) -> str | None:
    """Move a plain ``reports/latest`` folder (left by ``reports --run-id latest``) into ``releases/``.

    It becomes ``releases/ancien-latest-<date>``: kept, listed, never published by the cycle
    (it has no cycle manifest) and never reused. Returns its new name, or None.
    """
    if not layout.latest.is_dir() or layout.latest.is_symlink():
        return None
    stamp = datetime.fromtimestamp(layout.latest.stat().st_mtime, timezone.utc).strftime("%Y%m%d-%H%M%S")
    layout.releases.mkdir(parents=True, exist_ok=True)
    name = f"ancien-latest-{stamp}"
    n = 1
    while (layout.releases / name).exists():
        n += 1
        name = f"ancien-latest-{stamp}-{n}"
    os.rename(layout.latest, layout.releases / name)
    write_manifest(layout.releases / name, {"release": name, "statut": "ancien",
                                            "note": "dossier reports/latest d'avant le cycle, conservé tel quel",
                                            "debut": ""})
    print(f"reports/latest était un dossier (ancien « gar-analysis reports --run-id latest ») : "
          f"déplacé dans {layout.releases / name}.")
    return name


def prune(layout: Layout, keep: int) -> list[str]:
    """Delete complete releases beyond the last ``keep`` ones; return the ids deleted.

    Never deleted: the release ``latest`` points to, the comparison base it names,
    failed or unfinished releases (kept for diagnosis) and folders not made by the cycle.
    """
    current = latest_release(layout)
    protect = {current}
    if current:
        protect.add((read_manifest(layout.releases / current).get("reference") or {}).get("release"))
    complete = [rid for rid, m in list_releases(layout) if m.get("statut") == "complete"]
    removed = []
    for rid in complete[: max(0, len(complete) - keep)]:
        if rid in protect:
            continue
        shutil.rmtree(layout.releases / rid, ignore_errors=True)
        shutil.rmtree(layout.history_dir / rid, ignore_errors=True)
        removed.append(rid)
    return removed


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _finished_pages(release_dir: Path, manifest: dict) -> dict:
    """Pages of a release that can be reused: html key → (fingerprint, index entry)."""
    try:
        index = json.loads((release_dir / "index.json").read_text(encoding="utf-8"))
        entries = {e.get("html"): e for e in index.get("reports", []) if isinstance(e, dict)}
    except (OSError, ValueError, AttributeError):
        entries = {}
    out = {}
    for key, page in (manifest.get("pages") or {}).items():
        entry = entries.get(key)
        if page.get("statut") == "reutilise" and entry is None:
            entry = page.get("entree")
        ok = entry is not None and entry.get("statut") == "ok" and (release_dir / key).is_file()
        if ok and page.get("empreinte"):
            out[key] = (page["empreinte"], entry)
    return out


# --------------------------------------------------------------------------- stages

def refresh_opendata(out_dir: Path | None = None, *, timeout: float = 5.0) -> str:
    """Refresh the open data when the portal answers; return a one-line French report."""
    from .sources import opendata

    base = opendata.resolve_base_url(None)
    url = urlparse(base)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return (f"Données ouvertes : portail {host} injoignable, rafraîchissement ignoré "
                "(données déjà présentes gardées).")
    dl = opendata.Downloader(timeout=(timeout, 60.0), retries=1)
    try:
        manifests = opendata.download(None, out_dir or opendata.DEFAULT_OUT, downloader=dl)
    except Exception as exc:  # noqa: BLE001 - a refresh failure never stops the cycle
        return f"Données ouvertes : rafraîchissement incomplet ({str(exc).splitlines()[0][:200]})."
    finally:
        dl.close()
    changed = sum(1 for m in manifests if m.get("statut") != "inchange")
    return f"Données ouvertes : {len(manifests)} jeu(x) vérifié(s), {changed} mis à jour."


def check_and_build(data_dir: Path, processed_dir: Path, quality_dir: Path) -> dict:
    """Run the quality checks (CSV + HTML into ``quality_dir``) then the build; return the build manifest."""
    from .build import build
    from .checks import run_checks, write_findings_csv
    from .checks.report import quality_report_html

    findings = run_checks(data_dir)
    quality_dir.mkdir(parents=True, exist_ok=True)
    write_findings_csv(findings, quality_dir / "constats.csv")
    atomic_write_text(quality_dir / "qualite.html",
                      quality_report_html(findings, title="Qualité des données",
                                          simulated=(data_dir / "truth.json").exists(), data_label=data_dir.name))
    findings = findings.copy()
    return build(data_dir, processed_dir, findings)


def plan_jobs(audiences, *, processed_dir: Path, release_id: str, reference_dir: Path | None,
              table: list[dict] | None = None, notebooks_dir: Path | None = None, period: str | None = None) -> list:
    """Plan every page of a release: one ``plan_batch`` per audience (all territories)."""
    from .reporting.batch import declared_parameters, notebook_table, plan_batch

    table = notebook_table() if table is None else table
    jobs = []
    for audience in audiences:
        if not any(r["audience"] == audience for r in table):
            continue
        planned = plan_batch(audience, all_territories=True, processed_dir=processed_dir, run_id=release_id,
                             notebooks_dir=notebooks_dir, table=table, period=period)
        for job in planned:
            if "reference_dir" in declared_parameters(job.input_path):
                job.parameters["reference_dir"] = str(reference_dir or "")
        jobs.extend(planned)
    return jobs


def run_pages(jobs: list, *, releases_dir: Path, release_id: str, processed_dir: Path, n_jobs: int | None,
              timeout: float | None, on_batch=None) -> list[dict]:
    """Execute pages into the release folder; return their index entries.

    The one place the cycle runs notebooks: one batch for every audience, so the
    warm kernels serve pages of all audiences.
    """
    from .reporting.batch import run_batch

    result = run_batch(jobs, out_dir=releases_dir, run_id=release_id, n_jobs=n_jobs, timeout=timeout,
                       processed_dir=processed_dir, progress=False)
    entries = list(result.entries)
    if result.leaks:
        entries.append({"audience": "", "territoire": "", "notebook": "", "statut": "fuite",
                        "html": "", "erreur": "; ".join(result.leaks[:5])})
    if on_batch:
        on_batch(result.entries)
    return entries


def share_release(run_dir: Path, *, dry_run: bool) -> str:
    """Share the release's digest: written to ``partage.json`` on a dry run, posted when Rocket.Chat is configured."""
    from .integrations import rocketchat as rc

    index = rc.load_run_index(run_dir)
    messages = rc.compose_digest(index, run_dir, base_url=os.environ.get(rc.ENV_REPORTS_BASE_URL, "").strip() or None)
    changes = run_dir / "changements.json"
    if dry_run:
        body = {"messages": messages,
                "changements": json.loads(changes.read_text(encoding="utf-8")) if changes.exists() else None}
        atomic_write_text(run_dir / "partage.json", json.dumps(body, ensure_ascii=False, indent=2))
        return f"Partage simulé : {len(messages)} message(s) écrit(s) dans {run_dir / 'partage.json'}."
    poster = rc.poster_from_env()
    if poster is None:
        return "Partage : Rocket.Chat non configuré, rien n'est publié."
    run_id = str(index.get("run_id") or run_dir.name)
    for i, payload in enumerate(messages):
        poster.post(payload, rc.message_id(run_id, i, payload))
    return f"Partage : {poster.sent} message(s) publié(s) sur Rocket.Chat."


def alert_failure(text: str) -> bool:
    """Post a failure alert on Rocket.Chat when it is configured; return whether it was posted."""
    from .integrations import rocketchat as rc

    try:
        poster = rc.poster_from_env()
        if poster is None:
            return False
        payload = {"text": rc.fit_text(f":warning: Cycle GAR en échec : {text}", 1000)}
        poster.post(payload, rc.message_id("alerte-cycle", 0, payload))
        return True
    except Exception as exc:  # noqa: BLE001 - an alert that cannot be sent is logged, never raised
        log.error("Alerte Rocket.Chat impossible : %s", exc)
        return False


# --------------------------------------------------------------------------- the cycle

@dataclass
class CycleResult:
    """Outcome of a cycle."""

    release_id: str
    release_dir: Path
    status: str
    published: bool
    executed: int = 0
    reused: int = 0
    failed: list = field(default_factory=list)
    duration_s: float = 0.0
    messages: list = field(default_factory=list)


def keep_from_env() -> int:
    """Return the number of complete releases to keep: ``GAR_CYCLE_KEEP`` (an integer ≥ 1) or the default."""
    raw = os.environ.get(ENV_KEEP, "").strip()
    if not raw:
        return DEFAULT_KEEP
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{ENV_KEEP} = « {raw} » : un entier supérieur ou égal à 1 est attendu.")
    return int(raw)


def _log_handler(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    journal.addHandler(handler)
    return handler


def _say(result: CycleResult, text: str) -> None:
    print(text, flush=True)
    journal.info(text)
    result.messages.append(text)


def run_cycle(data_dir: str | Path, *, reports_dir: str | Path | None = None, processed_dir: str | Path | None = None,
              history_dir: str | Path | None = None, audiences=None, keep: int | None = None,
              n_jobs: int | None = None, timeout: float | None = None, refresh: bool = True,
              share_dry_run: bool = False, release_id: str | None = None, table: list[dict] | None = None,
              notebooks_dir: str | Path | None = None, period: str | None = None) -> CycleResult:
    """Run one cycle under the lock; return its outcome (see the module docstring).

    Raises
    ------
    CycleLocked
        Another cycle is running.
    """
    from .reporting.batch import check_run_id, default_run_id
    from .territories import AUDIENCE_REGISTRY

    layout = Layout(Path(reports_dir or config.REPORTS_DIR), Path(history_dir or config.HISTORY_DIR))
    data_dir = Path(data_dir).absolute()
    processed_dir = Path(processed_dir or config.PROCESSED_DIR).absolute()
    audiences = list(audiences or AUDIENCE_REGISTRY)
    keep = keep if keep is not None else keep_from_env()
    with Lock(layout.lock):
        return _run_locked(layout, data_dir, processed_dir, audiences, keep, n_jobs, timeout, refresh,
                           share_dry_run, check_run_id(release_id or default_run_id()), table,
                           Path(notebooks_dir).absolute() if notebooks_dir else None, period)


def _run_locked(layout, data_dir, processed_dir, audiences, keep, n_jobs, timeout, refresh, share_dry_run,
                release_id, table, notebooks_dir, period) -> CycleResult:
    from . import changes

    t0 = time.perf_counter()
    adopt_plain_latest(layout)
    release_dir = layout.releases / release_id
    if release_dir.exists():
        raise ConfigError(f"La publication {release_id} existe déjà : {release_dir}.")
    release_dir.mkdir(parents=True)
    result = CycleResult(release_id, release_dir, "en_cours", False)
    handler = _log_handler(release_dir / "cycle.log")
    code = code_version()
    manifest = {"release": release_id, "statut": "en_cours", "publiee": False, "debut": _now(), "fin": None,
                "code": code, "donnees": str(data_dir), "tables_traitees": str(processed_dir),
                "parametres": {"audiences": audiences, "periode": period, "jobs": n_jobs, "delai_s": timeout,
                               "seuil_secret": config.DISCLOSURE_THRESHOLD},
                "etapes": {}, "pages": {}}
    try:
        write_manifest(release_dir, manifest)
        if refresh:
            _say(result, refresh_opendata())
        manifest["entrees"] = inventory = input_inventory(data_dir)
        if not inventory:
            raise ConfigError(f"--data : aucun fichier CSV dans {data_dir}.")
        digest = inputs_digest(inventory)
        manifest["empreinte_entrees"] = digest
        quality = release_dir / "qualite"
        if processed_up_to_date(inventory, processed_dir):
            manifest["etapes"]["check_build"] = "ignore (entrées identiques au manifeste des tables traitées)"
            _say(result, "Contrôles et construction ignorés : les fichiers bruts n'ont pas changé (sha256).")
            _copy_quality(layout, quality)
        else:
            t = time.perf_counter()
            built = check_and_build(data_dir, processed_dir, quality)
            manifest["etapes"]["check_build"] = f"fait en {time.perf_counter() - t:.1f} s"
            _say(result, f"Contrôles et construction faits ({time.perf_counter() - t:.1f} s, "
                         f"{sum(built.get('constats', {}).values())} constat(s)).")
        from .build import load_manifest

        built = load_manifest(processed_dir)
        manifest["periode"] = built.get("periode")
        manifest["simule"] = bool(built.get("simulated"))

        # comparison base: the latest complete release whose inputs differ from these
        releases = list_releases(layout)
        complete = [(rid, m) for rid, m in releases if m.get("statut") == "complete" and rid != release_id]
        base = next(((rid, m) for rid, m in reversed(complete) if m.get("empreinte_entrees") != digest), None)
        if base is None:  # no new data since the last releases: compare with the base they compared with
            same = next((m for _, m in reversed(complete) if m.get("empreinte_entrees") == digest), None)
            ref = (same or {}).get("reference") or None
        else:
            ref = {"release": base[0], "instantane": str(layout.history_dir / base[0])}
        if ref and not Path(ref["instantane"]).is_dir():
            ref = None
        manifest["reference"] = ref
        reference_dir = Path(ref["instantane"]) if ref else None
        snapshot = changes.write_snapshot(processed_dir, layout.history_dir / release_id)
        manifest["instantane"] = str(snapshot)

        # pages: plan, fingerprint, reuse
        jobs = plan_jobs(audiences, processed_dir=processed_dir, release_id=release_id, reference_dir=reference_dir,
                         table=table, notebooks_dir=notebooks_dir, period=period)
        fp = Fingerprints(processed_dir, code=code, reference_dir=reference_dir)
        sources = _reuse_sources(layout, releases, release_id)
        to_run, reused_entries = [], []
        for job in jobs:
            key = job.html_rel
            f = fp.fingerprint(job)
            page = {"audience": job.audience, "territoire": job.territoire, "notebook": job.notebook,
                    "empreinte": f, "statut": "a_faire"}
            src = next(((rid, d, e) for rid, d, pages in sources if pages.get(key, (None,))[0] == f
                        for e in [pages[key][1]]), None)
            if src:
                rid, d, entry = src
                _link_or_copy(d / key, release_dir / key)
                if entry.get("execute") and (d / entry["execute"]).is_file():
                    _link_or_copy(d / entry["execute"], release_dir / entry["execute"])
                page.update(statut="reutilise", reutilise_de=rid, entree=entry)
                reused_entries.append(entry)
            else:
                to_run.append(job)
            manifest["pages"][key] = page
        write_manifest(release_dir, manifest)
        result.reused = len(reused_entries)
        _say(result, f"Pages : {len(jobs)} au total, {len(reused_entries)} réutilisée(s) (empreinte inchangée), "
                     f"{len(to_run)} à produire.")
        from .reporting.index import update_index

        if reused_entries:
            update_index(release_dir, reused_entries, simulated=manifest["simule"])

        def record(entries):
            for e in entries:
                if e.get("html") in manifest["pages"]:
                    manifest["pages"][e["html"]]["statut"] = e["statut"]
            for job in to_run:
                if job.html_rel in manifest["pages"] and manifest["pages"][job.html_rel]["statut"] == "a_faire":
                    if any(e.get("audience") == job.audience and e.get("territoire") == job.territoire
                           and e.get("notebook") == job.notebook and e.get("statut") != "ok" for e in entries):
                        manifest["pages"][job.html_rel]["statut"] = "echec"
            write_manifest(release_dir, manifest)

        entries = run_pages(to_run, releases_dir=layout.releases, release_id=release_id, processed_dir=processed_dir,
                            n_jobs=n_jobs, timeout=timeout, on_batch=record) if to_run else []
        if not jobs:
            update_index(release_dir, [], simulated=manifest["simule"])
        result.executed = sum(1 for e in entries if e.get("statut") == "ok")
        result.failed = [e for e in entries if e.get("statut") != "ok"]

        from .reporting.cli import finish_run

        summary = changes.release_notes(reference_dir, processed_dir, release_dir, release_id=release_id,
                                        reference_id=(ref or {}).get("release"))
        finish_run(release_dir, processed_dir)  # glossary, methodology, quality page; portal tiles
        manifest["nouveautes"] = summary
        if not result.failed:
            try:
                text = share_release(release_dir, dry_run=share_dry_run)
                manifest["etapes"]["partage"] = text
            except Exception as exc:  # noqa: BLE001 - the pages are good: a failed post does not unpublish them
                text = f"Partage impossible ({type(exc).__name__} : {str(exc).splitlines()[0][:300]})."
                manifest["etapes"]["partage"] = "echec : " + text
                alert_failure(f"publication {release_id} : {text}")
            _say(result, text)
    except BaseException as exc:
        manifest.update(statut="echec", fin=_now(), publiee=False,
                        erreur=f"{type(exc).__name__} : {exc}"[:2000],
                        note="publication en échec : conservée pour diagnostic, jamais publiée")
        write_manifest(release_dir, manifest)
        journal.removeHandler(handler)
        handler.close()
        raise
    result.duration_s = round(time.perf_counter() - t0, 2)
    manifest["duree_s"] = result.duration_s
    manifest["fin"] = _now()
    if result.failed:
        manifest.update(statut="echec", publiee=False,
                        note="publication en échec : conservée pour diagnostic, jamais publiée")
        result.status = "echec"
    else:
        manifest.update(statut="complete", publiee=True)
        result.status = "complete"
    write_manifest(release_dir, manifest)
    if result.status == "complete":
        switch_latest(layout, release_id)
        result.published = True
        removed = prune(layout, keep)
        if removed:
            _say(result, f"Anciennes publications supprimées (--keep {keep}) : {', '.join(removed)}.")
    journal.removeHandler(handler)
    handler.close()
    return result


def _copy_quality(layout: Layout, dest: Path) -> None:
    """Carry the quality report of the published release over to a release that skipped the checks."""
    src = layout.latest / "qualite"
    if src.is_dir() and not dest.exists():
        shutil.copytree(src, dest)


def _reuse_sources(layout: Layout, releases: list, release_id: str) -> list:
    """Releases whose pages may be reused: the published one, then the unfinished ones after it (resume)."""
    current = latest_release(layout)
    out = []
    if current:
        d = layout.releases / current
        out.append((current, d, _finished_pages(d, read_manifest(d))))
    start = next((i for i, (rid, _) in enumerate(releases) if rid == current), -1)
    for rid, m in reversed(releases[start + 1:]):
        if rid != release_id and m.get("statut") in ("en_cours", "echec") and m.get("pages"):
            d = layout.releases / rid
            out.append((rid, d, _finished_pages(d, m)))
    return out


# --------------------------------------------------------------------------- scheduling recipes

def schedule_text(kind: str, *, workdir: Path | None = None, data_dir: str = "data/raw/sample",
                  executable: str | None = None) -> str:
    """Return a scheduling recipe running the cycle monthly: ``systemd`` (service + timer) or ``cron``."""
    workdir = Path(workdir or config.ROOT)
    exe = executable or str(Path(sys.executable).with_name("gar-analysis"))
    command = f"{exe} cycle --data {data_dir}"
    if kind == "cron":
        return ("# m h dom mon dow  (le 3 du mois à 02:30 ; le cycle prend son verrou : jamais deux cycles à la fois)\n"
                f"30 2 3 * * cd {workdir} && {command} >> {workdir}/logs/cycle.log 2>&1\n")
    if kind == "systemd":
        return (f"# /etc/systemd/system/gar-cycle.service\n"
                f"[Unit]\nDescription=Cycle mensuel de pilotage du GAR (gar-analysis cycle)\n"
                f"Wants=network-online.target\nAfter=network-online.target\n\n"
                f"[Service]\nType=oneshot\nWorkingDirectory={workdir}\n"
                f"ExecStart={command}\n"
                f"# 75 = un autre cycle tourne déjà : pas une panne\nSuccessExitStatus=75\n"
                f"TimeoutStartSec=6h\n\n"
                f"# /etc/systemd/system/gar-cycle.timer\n"
                f"[Unit]\nDescription=Cycle mensuel du GAR, le 3 du mois\n\n"
                f"[Timer]\nOnCalendar=*-*-03 02:30:00\nPersistent=true\nRandomizedDelaySec=15min\n\n"
                f"[Install]\nWantedBy=timers.target\n")
    raise ConfigError(f"--print-schedule : « systemd » ou « cron » attendu, reçu {kind!r}.")


def split_systemd(text: str) -> dict[str, str]:
    """Split the output of ``schedule_text('systemd')`` into ``{file name: content}``."""
    files, name = {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("# /etc/systemd/system/"):
            name = line.strip().rsplit("/", 1)[1]
            files[name] = ""
        elif name:
            files[name] += line
    return files


# --------------------------------------------------------------------------- command line

def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``cycle`` command's arguments."""
    from .cli import positive_float, positive_int
    from .territories import AUDIENCE_REGISTRY

    parser.add_argument("--data", default=None, metavar="DOSSIER", help="répertoire des données brutes (obligatoire)")
    parser.add_argument("--processed", default=None, metavar="DOSSIER",
                        help="tables traitées (défaut : data/processed)")
    parser.add_argument("--reports", default=None, metavar="DOSSIER", help="dossier des rapports (défaut : reports/)")
    parser.add_argument("--keep", type=positive_int, default=None, metavar="N",
                        help=f"publications complètes gardées (défaut : ${ENV_KEEP} ou {DEFAULT_KEEP})")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N", help="carnets en parallèle")
    parser.add_argument("--timeout", type=positive_float, default=None, metavar="S", help="délai par carnet (s)")
    parser.add_argument("--audiences", nargs="+", default=None, choices=list(AUDIENCE_REGISTRY), metavar="PUBLIC",
                        help="publics produits (défaut : tous)")
    parser.add_argument("--period", default=None, metavar="AAAA-AAAA", help="période (paramètre « periode »)")
    parser.add_argument("--no-refresh", action="store_true", help="ne pas rafraîchir les données ouvertes")
    parser.add_argument("--share-dry-run", action="store_true",
                        help="écrire la synthèse Rocket.Chat dans la publication (partage.json) sans l'envoyer")
    parser.add_argument("--print-schedule", choices=("systemd", "cron"), default=None,
                        help="afficher une recette de planification mensuelle et quitter")
    parser.add_argument("--release-id", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--history", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--notebooks-table", default=None, help=argparse.SUPPRESS)


def run(args) -> int:
    """Run ``gar-analysis cycle``; return its exit status (see the module docstring)."""
    from .cli import absolute, input_dir

    if args.print_schedule:
        print(schedule_text(args.print_schedule, data_dir=args.data or "data/raw/sample"), end="")
        return 0
    if not args.data:
        raise ConfigError("--data : indiquez le répertoire des données brutes (par exemple data/raw/sample).")
    data = input_dir(args.data, "--data")
    table = None
    if args.notebooks_table:
        from .reporting.batch import notebook_table

        table = notebook_table(absolute(args.notebooks_table))
    try:
        result = run_cycle(data, reports_dir=absolute(args.reports) if args.reports else None,
                           processed_dir=absolute(args.processed) if args.processed else None,
                           history_dir=absolute(args.history) if args.history else None,
                           audiences=args.audiences, keep=args.keep, n_jobs=args.jobs, timeout=args.timeout,
                           refresh=not args.no_refresh, share_dry_run=args.share_dry_run,
                           release_id=args.release_id, table=table, notebooks_dir=args.notebooks_dir,
                           period=args.period)
    except CycleLocked as exc:
        print(f"gar-analysis cycle : un autre cycle est en cours ({exc or 'verrou tenu'}) ; "
              f"rien n'a été fait, relancez plus tard.", file=sys.stderr)
        return EXIT_LOCKED
    except (DataError, ConfigError) as exc:
        alert_failure(str(exc).splitlines()[0])
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # logged with its traceback by gar_analysis.cli.main
        alert_failure(f"erreur inattendue ({type(exc).__name__} : {exc}) ; voir le journal dans logs/")
        raise
    print(f"Publication {result.release_id} : {result.status} en {result.duration_s:.1f} s — "
          f"{result.executed} page(s) produite(s), {result.reused} réutilisée(s), {len(result.failed)} échec(s).")
    if result.published:
        print(f"reports/latest → {result.release_dir}")
        return 0
    for e in result.failed[:10]:
        first = (e.get("erreur") or "").strip().splitlines()[:1]
        print(f"  échec {e.get('audience')}/{e.get('territoire')} ({e.get('notebook')}) : {first[0] if first else ''}")
    print(f"Publication non publiée (conservée pour diagnostic) ; journaux : {result.release_dir / 'cycle.log'}, "
          f"{result.release_dir / 'batch.log'}.")
    alert_failure(f"publication {result.release_id} : {len(result.failed)} page(s) en échec ; "
                  f"journal {result.release_dir / 'batch.log'}")
    return EXIT_FAILED
