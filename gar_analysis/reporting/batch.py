"""The report batch: run the report notebooks for every territory of an audience, in parallel.

Each of ``n_jobs`` forked worker processes keeps one Jupyter kernel alive
across the jobs (one notebook × one territory) it is given ("warm kernels":
imports and processed tables are loaded once per kernel, and the namespace is
reset before each page, see :mod:`.warm`). A worker executes the notebook with
Papermill (parameters cell, injected-parameters cell, Papermill metadata) and
exports it to HTML in-process. A job that fails is recorded (error excerpt,
executed notebook kept), its kernel is replaced and the others go on; a job
that outlives its timeout is stopped together with its worker and kernel.
Several audiences may share one batch (one worker pool). Everything is checked
before the first notebook starts: audience, territory codes, notebook names,
parameters.

Layout of ``<out>/<run-id>/``::

    index.html, index.json, batch.log
    <audience>/<territoire>.html                 (main notebook: the dashboard)
    <audience>/<notebook>-<territoire>.html      (other notebooks)
    <audience>/executed/<notebook>-<territoire>.ipynb
"""
from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from multiprocessing.connection import wait
from pathlib import Path

from .. import config
from ..errors import ConfigError, DataError
from ..io import atomic_write_text
from ..territories import AUDIENCES, territory_codes, territory_name
from .export import MAX_REPORT_BYTES, publish, render_report, report_context, scan_outputs, scan_text, warm_up
from .index import update_index
from .summary import SUMMARY_ENV, read_summary

log = logging.getLogger(__name__)
logging.getLogger("papermill").setLevel(logging.WARNING)

NOTEBOOKS_CSV = Path(__file__).resolve().parent / "notebooks.csv"
#: Parameters every report notebook declares (shared interface).
STANDARD_PARAMETERS = ("audience", "territoire", "processed_dir", "seuil_secret", "run_id")
#: Extra seconds granted after ``timeout`` before a worker and its kernel are killed.
KILL_GRACE_S = 30.0
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PERIOD = re.compile(r"^([0-9]{4})-([0-9]{4})$")  # ASCII digits only
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Job:
    """One notebook run for one territory."""

    audience: str
    territoire: str
    nom: str
    notebook: str
    titre: str
    principal: bool
    input_path: str
    parameters: dict = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """File stem of the outputs: ``<territoire>`` or ``<notebook>-<territoire>``."""
        return self.territoire if self.principal else f"{self.notebook}-{self.territoire}"

    @property
    def html_rel(self) -> str:
        """HTML path relative to the run directory."""
        return f"{self.audience}/{self.stem}.html"

    @property
    def executed_rel(self) -> str:
        """Executed notebook path relative to the run directory."""
        return f"{self.audience}/executed/{self.notebook}-{self.territoire}.ipynb"


@dataclass
class BatchResult:
    """Outcome of a batch."""

    run_dir: Path
    entries: list
    duration_s: float
    leaks: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every report was produced and no output leaks a secret or identifier."""
        return all(e["statut"] == "ok" for e in self.entries) and not self.leaks

    @property
    def failures(self) -> list:
        """Entries of the failed reports."""
        return [e for e in self.entries if e["statut"] != "ok"]


# --- planning (everything is validated here, before any notebook runs) ---------------------------------------

def notebook_table(path: str | Path = NOTEBOOKS_CSV) -> list[dict]:
    """Read which notebooks run for which audience (``notebooks.csv``).

    Returns
    -------
    list of dict
        Keys ``audience, notebook, titre, principal`` (bool).
    """
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    out = []
    for line, row in enumerate(rows, start=2):
        if row.get("audience") not in AUDIENCES or not row.get("notebook"):
            raise ConfigError(f"{path}, ligne {line} : audience ou carnet invalide ({row}).")
        out.append({"audience": row["audience"], "notebook": row["notebook"].strip(),
                    "titre": (row.get("titre") or row["notebook"]).strip(),
                    "principal": (row.get("principal") or "").strip().lower() in {"oui", "true", "1"}})
    return out


def editeur_territories(processed_dir: str | Path | None = None) -> dict[str, str]:
    """Return the publishers of the catalogue as ``{id_editeur: name}`` (:mod:`gar_analysis.publishers`)."""
    from ..build import load_processed
    from ..publishers import publisher_names

    ress = load_processed("ressources", processed_dir)
    if "editeur" not in ress.columns:
        raise DataError.single(Path(processed_dir or config.PROCESSED_DIR) / "ressources.parquet",
                               "colonne « editeur » absente du catalogue des ressources.", column="editeur")
    return publisher_names(ress)


def audience_territories(audience: str, processed_dir: str | Path | None = None) -> dict[str, str]:
    """Return the territories of an audience as ``{code: readable name}``.

    Raises
    ------
    ConfigError
        Unknown audience (the message lists the valid ones).
    """
    if audience not in AUDIENCES:
        raise ConfigError(f"Audience inconnue : {audience!r}. Valeurs possibles : {', '.join(AUDIENCES)}.")
    if audience == "editeur":
        return editeur_territories(processed_dir)
    return {c: territory_name(audience, c) for c in territory_codes(audience)}


@lru_cache(maxsize=64)
def _declared_parameters(path: str, mtime: float) -> dict:
    import papermill

    return papermill.inspect_notebook(path)


def declared_parameters(path: str | Path) -> dict:
    """Return the parameters a notebook declares in its ``parameters`` cell (name → details)."""
    path = Path(path)
    return _declared_parameters(str(path), path.stat().st_mtime)


def _valid_list(values, limit: int = 40) -> str:
    values = list(values)
    shown = ", ".join(values[:limit])
    return shown + (f", … ({len(values)} au total)" if len(values) > limit else "")


def plan_batch(audience: str, *, all_territories: bool = False, only: list[str] | None = None,
               notebook: str | None = None, period: str | None = None, extra: dict | None = None,
               processed_dir: str | Path | None = None, notebooks_dir: str | Path | None = None,
               run_id: str = "", table: list[dict] | None = None) -> list[Job]:
    """Validate a batch request and return its jobs; nothing runs yet.

    Parameters
    ----------
    audience : str
        One of ``territories.AUDIENCES``.
    all_territories : bool
        Every territory of the audience.
    only : list of str, optional
        Territory codes (exclusive with ``all_territories``).
    notebook : str, optional
        Run only this notebook (default: every notebook of the audience in ``notebooks.csv``).
    period : str, optional
        ``YYYY-YYYY``, passed as the parameter ``periode``.
    extra : dict, optional
        Other notebook parameters; each must be declared by every notebook run.
    processed_dir, notebooks_dir : str or Path, optional
        Defaults: ``config.PROCESSED_DIR``, ``config.REPORT_NOTEBOOKS_DIR``.
    run_id : str
        Passed as the parameter ``run_id``.
    table : list of dict, optional
        Notebook table (default: :func:`notebook_table`).

    Returns
    -------
    list of Job

    Raises
    ------
    ConfigError
        Unknown audience, territory, notebook or parameter; bad period. The message lists the valid values.
    """
    territories = audience_territories(audience, processed_dir)
    if bool(all_territories) == bool(only):
        raise ConfigError("Indiquez soit --all (tous les territoires), soit --only CODE… (certains territoires).")
    if only:
        codes, unknown = [], []
        lookup = {c.upper(): c for c in territories}
        for code in only:
            c = str(code).strip()
            if audience == "editeur":
                from ..build import load_processed
                from ..publishers import resolve
                try:
                    found = resolve(load_processed("ressources", processed_dir), c)
                except ConfigError:
                    found = None
            else:
                key = c.upper()
                if key not in lookup and key.isdigit():
                    key = key.zfill(2)
                found = lookup.get(key)
            if found is None:
                unknown.append(c)
            elif found not in codes:
                codes.append(found)
        if unknown:
            raise ConfigError(f"Territoire(s) inconnu(s) pour l'audience « {audience} » : {', '.join(unknown)}. "
                              f"Codes possibles : {_valid_list(territories)}.")
    else:
        codes = list(territories)
    if not codes:
        raise ConfigError(f"Aucun territoire pour l'audience « {audience} ».")

    table = notebook_table() if table is None else table
    rows = [r for r in table if r["audience"] == audience]
    if notebook:
        names = [r["notebook"] for r in rows]
        if notebook not in names:
            raise ConfigError(f"Carnet inconnu pour l'audience « {audience} » : {notebook!r}. "
                              f"Carnets possibles : {', '.join(names) or 'aucun'}.")
        rows = [r for r in rows if r["notebook"] == notebook]
    if not rows:
        raise ConfigError(f"Aucun carnet n'est prévu pour l'audience « {audience} » (voir {NOTEBOOKS_CSV.name}).")

    params = {}
    if period:
        m = _PERIOD.match(str(period).strip())
        if not m or int(m.group(2)) <= int(m.group(1)):
            raise ConfigError(f"Période invalide : {period!r}. Format attendu : AAAA-AAAA, par exemple 2024-2025.")
        params["periode"] = str(period).strip()
    for name, value in (extra or {}).items():
        if name in STANDARD_PARAMETERS:
            raise ConfigError(f"Le paramètre « {name} » est fixé par la commande (utilisez ses options).")
        params[name] = value

    notebooks_dir = Path(notebooks_dir or config.REPORT_NOTEBOOKS_DIR)
    seuil = config.DISCLOSURE_THRESHOLD
    jobs = []
    for row in rows:  # every notebook listed must exist: a missing one fails the batch before anything runs
        path = notebooks_dir / f"{row['notebook']}.ipynb"
        if not path.exists():
            raise ConfigError(f"Carnet introuvable : {path}. Carnets présents : "
                              f"{', '.join(sorted(p.stem for p in notebooks_dir.glob('*.ipynb'))) or 'aucun'}.")
        try:
            declared = declared_parameters(path)
        except Exception as exc:  # unreadable notebook
            raise ConfigError(f"Carnet illisible : {path} ({exc}).") from None
        missing = [p for p in ("audience", "territoire") if p not in declared]
        if missing:
            raise ConfigError(f"{path.name} : la cellule « parameters » doit déclarer {', '.join(missing)}.")
        unknown = [p for p in params if p not in declared]
        if unknown:
            raise ConfigError(f"Paramètre(s) inconnu(s) du carnet {path.name} : {', '.join(unknown)}. "
                              f"Paramètres possibles : {', '.join(declared) or 'aucun'}.")
        params = {k: typed_parameter(k, v, declared[k]) if k in (extra or {}) else v for k, v in params.items()}
        for code in codes:
            standard = {"audience": audience, "territoire": code,
                        # resolved against the current directory: the notebooks run in another folder
                        "processed_dir": str(Path(processed_dir).resolve()) if processed_dir else "",
                        "seuil_secret": seuil, "run_id": run_id}
            p = {k: v for k, v in standard.items() if k in declared or k in ("audience", "territoire")}
            p.update(params)
            jobs.append(Job(audience, code, territories[code], row["notebook"], row["titre"], row["principal"],
                            str(path), p))
    return jobs


def parse_audiences(text: str | list[str]) -> list[str]:
    """Return the audiences named by ``--audience``: ``all``, one audience, or several (spaces or commas).

    Raises
    ------
    ConfigError
        Unknown audience (the message lists the valid ones).
    """
    words = [w.strip() for part in ([text] if isinstance(text, str) else text) for w in str(part).split(",")]
    words = [w for w in words if w]
    if words == ["all"] or words == ["tous"]:
        return list(AUDIENCES)
    unknown = [w for w in words if w not in AUDIENCES]
    if unknown or not words:
        raise ConfigError(f"Audience inconnue : {', '.join(map(repr, unknown)) or 'aucune'}. Valeurs possibles : "
                          f"all, {', '.join(AUDIENCES)}.")
    return list(dict.fromkeys(words))


def plan_audiences(audiences: list[str], *, all_territories: bool = False, only: list[str] | None = None,
                   notebook: str | None = None, **kwargs) -> list[Job]:
    """Plan one batch over several audiences (one worker pool for all their pages).

    Parameters are those of :func:`plan_batch`. With several audiences, ``only`` is refused (a code
    means different territories in different audiences) and ``notebook`` keeps the audiences that
    have it. Jobs come audience by audience, in the order of ``territories.AUDIENCES``.

    Returns
    -------
    list of Job
    """
    if len(audiences) == 1:
        return plan_batch(audiences[0], all_territories=all_territories, only=only, notebook=notebook, **kwargs)
    if only:
        raise ConfigError("--only ne s'emploie qu'avec une seule audience : un même code désigne des territoires "
                          "différents selon l'audience.")
    audiences = sorted(audiences, key=list(AUDIENCES).index)
    if notebook:
        table = kwargs.get("table") or notebook_table()
        kwargs["table"] = table
        audiences = [a for a in audiences if any(r["audience"] == a and r["notebook"] == notebook for r in table)]
        if not audiences:
            raise ConfigError(f"Carnet inconnu pour ces audiences : {notebook!r}.")
    jobs = []
    for audience in audiences:
        jobs += plan_batch(audience, all_territories=all_territories, notebook=notebook, **kwargs)
    return jobs


def typed_parameter(name: str, value, declared: dict):
    """Convert a ``-p NOM=VALEUR`` string to the type of the notebook's default value.

    Parameters
    ----------
    name : str
        Parameter name (for messages).
    value : str or object
        The value given (strings from the command line; other types are kept).
    declared : dict
        Papermill's description of the parameter (``default``: its source text).

    Returns
    -------
    object
        ``int``, ``float``, ``bool`` or ``str`` like the default; a default of
        another type (``None``, a list…) takes a Python literal, else the string.

    Raises
    ------
    ConfigError
        When the value does not have the default's type (``-p lignes_max=abc``).
    """
    import ast
    import math

    if not isinstance(value, str):
        return value
    try:
        default = ast.literal_eval(str(declared.get("default", "")))
    except (ValueError, SyntaxError):
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low in {"true", "vrai", "oui", "1"}:
                return True
            if low in {"false", "faux", "non", "0"}:
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            number = float(text)
            if not math.isfinite(number):
                raise ValueError
            return number
    except ValueError:
        kind = {bool: "un booléen (true/false)", int: "un entier", float: "un nombre fini"}[type(default)]
        raise ConfigError(f"-p {name}={value} : {kind} est attendu (valeur par défaut du carnet : "
                          f"{declared.get('default')}).") from None
    if isinstance(default, str):
        return value
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return value


def default_run_id(now: datetime | None = None) -> str:
    """Return a run id from the current time, e.g. ``20261129-0130``."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")


def check_run_id(run_id: str) -> str:
    """Refuse run ids that are not a plain folder name."""
    if not _RUN_ID.match(run_id or "") or run_id in {".", ".."}:
        raise ConfigError(f"Identifiant de lot invalide : {run_id!r} (lettres, chiffres, « . », « _ », « - »).")
    return run_id


# --- one job, in a worker process ----------------------------------------------------------------------------

def _mask(text: str) -> str:
    for s in config.secret_values():
        text = text.replace(s, "***")
    return text


def _excerpt(exc: BaseException, limit: int = 1500) -> str:
    ename = getattr(exc, "ename", None)
    if ename:
        tb = _ANSI.sub("", "\n".join(getattr(exc, "traceback", []) or []))
        lines = [ln for ln in tb.splitlines() if ln.strip()]
        text = f"{ename}: {getattr(exc, 'evalue', '')}\n" + "\n".join(lines[-8:])
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = _mask(_ANSI.sub("", text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SECRET_ENV = (config.ENV_DOLIBARR_KEY, config.ENV_DOLIBARR_URL, config.ENV_ROCKETCHAT_WEBHOOK,
               config.ENV_ROCKETCHAT_TOKEN, config.ENV_ROCKETCHAT_USER_ID, config.ENV_ROCKETCHAT_URL)


_CURRENT: dict = {}


def _engine():
    """A Papermill engine that remembers the notebook being executed (kept for audit on a timeout)."""
    from papermill.engines import NBClientEngine, papermill_engines

    class _KeepingEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            _CURRENT["nb"] = nb_man.nb
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("gar", _KeepingEngine)
    return "gar"


def _save_partial(executed: Path, message: str) -> None:
    """Write the partly executed notebook with a note on why it stopped."""
    import nbformat

    nb = _CURRENT.get("nb")
    if nb is None or executed.exists():
        return
    nb = nbformat.from_dict(nb)
    nb.cells.append(nbformat.v4.new_markdown_cell(f"**Exécution interrompue par le lot** : {message}"))
    atomic_write_text(executed, nbformat.writes(nb))


def _redirect_output(path: Path) -> None:
    """Send this process's (and its kernel's) stdout/stderr to a log file of the run."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _worker_setup(run_dir: Path) -> None:
    """Prepare a worker process: no Ctrl-C, output to the run's log, no secret for its kernels."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops the workers
    _redirect_output(run_dir / "noyaux.log")
    logging.getLogger("papermill").setLevel(logging.WARNING)
    for name in _SECRET_ENV:  # a report never needs a secret: its kernel does not get any
        os.environ.pop(name, None)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def _worker(job: Job, run_dir: str, manifest: dict, timeout: float, kernel_name: str | None,
            result_file: str) -> None:
    """Execute one notebook in a new kernel, export it, write the outcome as JSON to ``result_file``."""
    secrets = config.secret_values()  # read before they leave the environment
    _worker_setup(Path(run_dir))
    _run_job(job, Path(run_dir), manifest, timeout, kernel_name, result_file, secrets, warm=False)


# --- warm kernels: one kernel per worker, kept alive across pages ------------------------------------------------

#: The worker's kernel (``km``, ``kc``, ``kernel_name``, ``pages``), kept across the pages of a warm worker.
_WARM: dict = {}
#: Seconds allowed to the reset that starts each page in a warm kernel.
RESET_TIMEOUT_S = 60.0


def _shutdown_warm() -> None:
    """Stop the worker's kernel (after a failure, a timeout, or at the end); never raises."""
    km, kc = _WARM.pop("km", None), _WARM.pop("kc", None)
    _WARM.clear()
    try:
        if kc is not None:
            kc.stop_channels()
        if km is not None:
            from jupyter_core.utils import run_sync

            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # noqa: BLE001 - the kernel is killed below anyway
        pass
    for pid in _descendants(os.getpid()):  # whatever is left (the kernel, its children)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _warm_engine(env: dict, cwd: str) -> str:
    """A Papermill engine that runs the notebook in the worker's warm kernel, after a reset (:mod:`.warm`).

    The kernel is started on the first page (or after :func:`_shutdown_warm`) and kept: Papermill's
    parameterisation, per-cell metadata and output notebook are unchanged.
    """
    import nbformat
    from nbclient import NotebookClient
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    code = f"from gar_analysis.reporting import warm as _w\n_w.new_page({env!r}, {cwd!r})"

    class _WarmClient(PapermillNotebookClient):
        def execute(self, **kwargs):
            self.reset_execution_trackers()
            with self.setup_kernel(**kwargs):  # starts a kernel only when the worker has none
                _WARM.update(km=self.km, kc=self.kc, kernel_name=self.kernel_name)
                cell = nbformat.v4.new_code_cell(code)
                reset = NotebookClient(nbformat.v4.new_notebook(cells=[cell]), km=self.km,
                                       timeout=RESET_TIMEOUT_S, allow_errors=False)
                reset.kc = self.kc
                reset.execute_cell(cell, 0, store_history=False)
                _WARM["pages"] = _WARM.get("pages", 0) + 1
                self.papermill_execute_cells()
                info_msg = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
                self.set_widgets_metadata()
            return self.nb

    class _WarmEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            _CURRENT["nb"] = nb_man.nb
            if _WARM.get("km") is not None and (_WARM.get("kernel_name") != kernel_name
                                                or not _WARM["km"].has_kernel):
                _shutdown_warm()
            if _WARM.get("km") is None:
                from jupyter_client.manager import AsyncKernelManager

                _WARM["km"] = AsyncKernelManager(kernel_name=kernel_name)
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=logging.getLogger("papermill"),
                                 log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
            client = _WarmClient(nb_man, km=_WARM["km"], **final)
            client.kc = _WARM.get("kc")
            return client.execute()

    papermill_engines.register("gar-warm", _WarmEngine)
    return "gar-warm"


def _warm_worker(conn, run_dir: str, manifest: dict, timeout: float, kernel_name: str | None,
                 secrets: list[str]) -> None:
    """Run the jobs sent on ``conn`` one after the other in one warm kernel; ``None`` ends the worker."""
    _worker_setup(Path(run_dir))
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                break
            if message is None:
                break
            job, result_file = message
            _run_job(job, Path(run_dir), manifest, timeout, kernel_name, result_file, secrets, warm=True)
            conn.send(result_file)
    finally:
        _shutdown_warm()


def _run_job(job: Job, run_dir: Path, manifest: dict, timeout: float, kernel_name: str | None,
             result_file: str, secrets: list[str], *, warm: bool) -> None:
    """Execute one notebook (in a new kernel or the worker's warm one), export it, write the outcome."""
    import papermill

    executed = run_dir / job.executed_rel
    html_path = run_dir / job.html_rel
    summary_file = executed.parent / f".{executed.stem}.resume.json"
    summary_file.unlink(missing_ok=True)
    cwd = str(Path(job.input_path).parent)
    if warm:
        engine = _warm_engine({SUMMARY_ENV: str(summary_file)}, cwd)
    else:
        os.environ[SUMMARY_ENV] = str(summary_file)
        engine = _engine()
    _CURRENT.clear()
    t0 = time.perf_counter()
    result = {"statut": "echec", "erreur": "", "html": ""}
    nb = None
    try:
        executed.parent.mkdir(parents=True, exist_ok=True)
        nb = papermill.execute_notebook(
            job.input_path, str(executed), parameters=job.parameters, kernel_name=kernel_name,
            progress_bar=False, log_output=False, request_save_on_cell_execute=False,
            execution_timeout=timeout, cwd=cwd, engine_name=engine)
        result["statut"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded, never raised
        if warm:  # a failed or timed-out page may leave the kernel busy or broken: the next page gets a new one
            _shutdown_warm()
        result["erreur"] = _excerpt(exc)
        if "Timeout" in type(exc).__name__ or "timed out" in str(exc).lower():
            result["erreur"] = f"Délai dépassé ({timeout:g} s) : le noyau a été arrêté.\n" + result["erreur"]
        try:
            _save_partial(executed, result["erreur"].splitlines()[0])
        except Exception:  # noqa: BLE001 - best effort, the failure is recorded anyway
            pass
    duration = time.perf_counter() - t0
    if result["statut"] == "ok":
        try:
            from .export import notebook_title

            ctx = report_context(job.parameters, manifest, title=notebook_title(nb) or job.titre,
                                 territory_name=job.nom, duration_s=duration,
                                 index_href="../index.html", page=f"{job.audience}-{job.stem}")
            page = render_report(nb, ctx)
            leaks = scan_text(page, secrets, name=job.html_rel)
            leaks += scan_text(executed.read_text(encoding="utf-8"), secrets, name=job.executed_rel)
            if leaks:
                executed.unlink(missing_ok=True)
                raise RuntimeError("sortie refusée : " + "; ".join(str(x) for x in leaks[:5]))
            publish(html_path, page)
            result["html"] = job.html_rel
            size = len(page.encode("utf-8"))
            if size > MAX_REPORT_BYTES:
                result["statut"] = "echec"
                result["erreur"] = (f"Rapport trop lourd : {size / 1e6:.1f} Mo (limite 3 Mo). "
                                    "Réduisez la résolution ou le nombre des graphiques.")
        except Exception as exc:  # noqa: BLE001
            result["statut"] = "echec"
            result["erreur"] = "Export HTML impossible : " + _excerpt(exc)
    summary = read_summary(summary_file)
    summary_file.unlink(missing_ok=True)
    result.update(summary)
    result["duree_s"] = round(time.perf_counter() - t0, 2)
    result["execute"] = job.executed_rel if executed.exists() else ""
    atomic_write_text(result_file, json.dumps(result, ensure_ascii=False))


def _descendants(pid: int) -> list[int]:
    """Return the pids of every descendant of ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(proc) -> None:
    """Kill a worker and every process it started (its kernel included)."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.join(5)


# --- the batch --------------------------------------------------------------------------------------------------

def _entry(job: Job, result: dict) -> dict:
    return {"audience": job.audience, "territoire": job.territoire, "nom": job.nom, "notebook": job.notebook,
            "statut": result.get("statut", "echec"), "html": result.get("html", ""),
            "duree_s": result.get("duree_s"), "erreur": result.get("erreur", ""),
            "points_forts": result.get("points_forts", []), "a_corriger": result.get("a_corriger", []),
            "titre": job.titre, "execute": result.get("execute", "")}


def _file_logger(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "batch.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def run_batch(jobs: list[Job], *, out_dir: str | Path | None = None, run_id: str | None = None,
              n_jobs: int | None = None, timeout: float | None = None, processed_dir: str | Path | None = None,
              kernel_name: str | None = None, progress: bool | None = None,
              manifest: dict | None = None, warm: bool = True) -> BatchResult:
    """Run jobs in parallel, export the reports, update the run's index.

    Parameters
    ----------
    jobs : list of Job
        From :func:`plan_batch`.
    out_dir : str or Path, optional
        Default ``config.REPORTS_DIR``; the run goes to ``out_dir/run_id``.
    run_id : str, optional
        Default: the current time (:func:`default_run_id`).
    n_jobs : int, optional
        Parallel notebooks (default: the number of usable cores).
    timeout : float, optional
        Seconds per notebook (default ``config.NOTEBOOK_TIMEOUT``); a notebook still running
        ``KILL_GRACE_S`` seconds later is killed with its kernel.
    processed_dir : str or Path, optional
        Folder of the processed tables (for the manifest shown in the provenance footer).
    kernel_name : str, optional
        Jupyter kernel (default: the notebook's own).
    progress : bool, optional
        Progress bar (default: only on a terminal).
    manifest : dict, optional
        Manifest to show (default: ``build.load_manifest(processed_dir)``, empty when absent).
    warm : bool
        Default True: each of the ``n_jobs`` workers keeps one kernel alive across its pages, reset
        before each page (:mod:`gar_analysis.reporting.warm`) and replaced after a failure or a timeout.
        False: a new worker and kernel per page.

    Returns
    -------
    BatchResult
    """
    run_id = check_run_id(run_id or default_run_id())
    run_dir = Path(out_dir or config.REPORTS_DIR) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    n_jobs = max(1, int(n_jobs or len(os.sched_getaffinity(0))))
    timeout = float(timeout or config.NOTEBOOK_TIMEOUT)
    if manifest is None:
        from ..build import load_manifest

        try:
            manifest = load_manifest(processed_dir)
        except DataError:
            manifest = {}
    handler = _file_logger(run_dir)
    t_start = time.perf_counter()
    entries: list[dict] = []
    try:
        log.info("Lot %s : %d rapport(s), %d en parallèle, délai %g s", run_id, len(jobs), n_jobs, timeout)
        warm_up()  # compile the template once, before forking
        from tqdm import tqdm

        ctx = multiprocessing.get_context("fork")
        pending = list(jobs)
        audiences = list(dict.fromkeys(j.audience for j in jobs))
        bar = tqdm(total=len(jobs), desc=f"Rapports {audiences[0] if len(audiences) == 1 else ''}".strip(),
                   unit="rapport", disable=(None if progress is None else not progress), leave=True)
        secrets = config.secret_values()
        slots: list[dict] = []  # warm: one long-lived worker (and kernel) per slot

        def result_path(job: Job) -> Path:
            path = run_dir / job.audience / "executed" / f".{job.notebook}-{job.territoire}.result.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            return path

        def spawn_warm() -> dict:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_warm_worker, name="gar-noyau-chaud",
                               args=(child, str(run_dir), manifest, timeout, kernel_name, secrets))
            proc.start()
            child.close()
            return {"proc": proc, "conn": parent, "job": None}

        def record(job: Job, result: dict) -> None:
            executed = run_dir / job.executed_rel
            if not result.get("execute") and executed.exists():
                result["execute"] = job.executed_rel
            entry = _entry(job, result)
            entries.append(entry)
            if entry["statut"] == "ok":
                log.info("ok     %s/%s %s (%.1f s)", job.audience, job.territoire, job.notebook,
                         entry["duree_s"] or 0)
            else:
                log.error("échec  %s/%s %s (%.1f s) : %s", job.audience, job.territoire, job.notebook,
                          entry["duree_s"] or 0, entry["erreur"].splitlines()[0] if entry["erreur"] else "")
            update_index(run_dir, [entry], simulated=bool(manifest.get("simulated", False)))
            bar.update(1)

        def read_result(result_file: Path, started: float, exitcode) -> dict:
            try:
                result = json.loads(result_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                result = {"statut": "echec", "duree_s": round(time.monotonic() - started, 2),
                          "erreur": f"Le processus de travail s'est arrêté (code {exitcode})."}
            result_file.unlink(missing_ok=True)
            return result

        timed_out = {"statut": "echec",
                     "erreur": f"Délai dépassé ({timeout:g} s) : le carnet et son noyau ont été arrêtés."}
        running: dict = {}
        try:
            if warm:
                slots = [spawn_warm() for _ in range(min(n_jobs, len(jobs)))]
            while pending or running or any(slot["job"] for slot in slots):
                if warm:
                    for i, slot in enumerate(slots):
                        if slot["job"] is None and pending:
                            job = pending.pop(0)
                            result_file = result_path(job)
                            try:
                                slot["conn"].send((job, str(result_file)))
                            except OSError:  # the worker died between two pages: a new one takes the page
                                _kill_tree(slot["proc"])
                                slots[i] = slot = spawn_warm()
                                slot["conn"].send((job, str(result_file)))
                            slot.update(job=job, started=time.monotonic(), result_file=result_file)
                    busy = [slot for slot in slots if slot["job"]]
                    wait([x for slot in busy for x in (slot["conn"], slot["proc"].sentinel)], timeout=0.5)
                    now = time.monotonic()
                    for i, slot in enumerate(slots):
                        job = slot["job"]
                        if job is None:
                            continue
                        done = False
                        try:
                            done = slot["conn"].poll()
                            if done:
                                slot["conn"].recv()
                        except (EOFError, OSError):
                            done = False
                        if done:
                            result = read_result(slot["result_file"], slot["started"], None)
                        elif slot["proc"].is_alive() and now - slot["started"] <= timeout + KILL_GRACE_S:
                            continue
                        else:  # hung past the grace period, or died: kill it with its kernel, start another
                            alive = slot["proc"].is_alive()
                            _kill_tree(slot["proc"])
                            result = (dict(timed_out, duree_s=round(now - slot["started"], 2)) if alive
                                      else read_result(slot["result_file"], slot["started"], slot["proc"].exitcode))
                            slots[i] = spawn_warm() if pending else {"proc": slot["proc"], "conn": slot["conn"],
                                                                     "job": None, "dead": True}
                        slots[i]["job"] = None
                        record(job, result)
                    continue
                while pending and len(running) < n_jobs:
                    job = pending.pop(0)
                    result_file = result_path(job)
                    proc = ctx.Process(target=_worker, name=f"gar-{job.stem}",
                                       args=(job, str(run_dir), manifest, timeout, kernel_name, str(result_file)))
                    proc.start()
                    running[proc.sentinel] = (proc, job, time.monotonic(), result_file)
                wait(list(running), timeout=0.5)
                now = time.monotonic()
                for sentinel, (proc, job, started, result_file) in list(running.items()):
                    if proc.is_alive() and now - started <= timeout + KILL_GRACE_S:
                        continue
                    if proc.is_alive():
                        _kill_tree(proc)
                        result = dict(timed_out, duree_s=round(now - started, 2))
                    else:
                        proc.join()
                        result = read_result(result_file, started, proc.exitcode)
                    del running[sentinel]
                    record(job, result)
        except KeyboardInterrupt:
            for proc, *_ in running.values():
                _kill_tree(proc)
            for slot in slots:
                _kill_tree(slot["proc"])
            slots = []
            raise
        finally:
            for slot in slots:  # end the warm workers (each stops its kernel)
                if not slot.get("dead"):
                    try:
                        slot["conn"].send(None)
                    except OSError:
                        pass
            for slot in slots:
                slot["proc"].join(10)
                if slot["proc"].is_alive():
                    _kill_tree(slot["proc"])
                slot["conn"].close()
            bar.close()
        if not jobs:
            update_index(run_dir, [], simulated=bool(manifest.get("simulated", False)))
        leaks = scan_outputs(run_dir)
        for leak in leaks:
            log.error("Fuite possible dans les sorties : %s", leak)
        duration = time.perf_counter() - t_start
        n_fail = sum(1 for e in entries if e["statut"] != "ok")
        log.info("Lot %s terminé en %.1f s : %d réussi(s), %d échec(s)", run_id, duration,
                 len(entries) - n_fail, n_fail)
    finally:
        log.removeHandler(handler)
        handler.close()
    order = {(j.audience, j.territoire, j.notebook): i for i, j in enumerate(jobs)}
    entries.sort(key=lambda e: order.get((e["audience"], e["territoire"], e["notebook"]), 0))
    return BatchResult(run_dir, entries, duration, [str(x) for x in leaks])


__all__ = ["Job", "BatchResult", "notebook_table", "audience_territories", "editeur_territories", "plan_batch",
           "parse_audiences", "plan_audiences",
           "run_batch", "declared_parameters", "default_run_id", "check_run_id"]
