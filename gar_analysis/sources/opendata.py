"""Open data: ``gar-analysis download`` and loaders of the real published files.

Download
    From the Opendatasoft Explore API v2.1 of data.education.gouv.fr
    (``/api/explore/v2.1/catalog/datasets/{id}/exports/{format}``) and INSEE-based
    commune figures. One :class:`requests.Session`; timeouts; retries with
    exponential back-off on 429 and 5xx honouring ``Retry-After``; conditional
    requests (``If-None-Match`` / ``If-Modified-Since``) so that an unchanged file
    is not fetched again; a progress bar; a manifest per file (URL, time, size,
    sha256, rows). A file is written to a temporary file and moved into place
    only when complete: an interrupted download never leaves a truncated file.

Loaders
    Real-format loaders of the other files serving the project (IVAC, school
    geolocation, COG, académie contours, the ministry's GAR open-data datasets,
    pupil counts), each accepting the portal's label or id headers. Register,
    IPS and commune files are read by :mod:`gar_analysis.sources.referentiel`.
"""
from __future__ import annotations

import argparse
import csv
import email.utils
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd

from .. import config, territories
from ..errors import ConfigError, DataError, GarAnalysisError, Problem
from ..io import atomic_path, atomic_write_text
from .referentiel import (
    Layout, Problems, _academies, _coordinates, _departements, _Load, _number, _regions, _rentrees, _secteurs,
    _string, field_id,
)

log = logging.getLogger(__name__)

#: Environment variable giving the URL of the INSEE commune file (population, area).
ENV_INSEE_COMMUNES_URL = "GAR_INSEE_COMMUNES_URL"
#: Default INSEE-based commune file: data.gouv.fr « Communes et villes de France » (CSV, Licence Ouverte 2.0).
INSEE_COMMUNES_URL = "https://www.data.gouv.fr/api/1/datasets/r/f5df602b-3800-44d7-b2df-fa40a0350325"
#: Default output folder of ``gar-analysis download``.
DEFAULT_OUT = config.RAW_DIR / "opendata"
API_PREFIX = "/api/explore/v2.1/catalog/datasets"
#: HTTP statuses worth retrying.
RETRY_STATUSES = {429, 500, 502, 503, 504}
#: Explore API v2.1 limits of the ``/records`` endpoint.
RECORDS_MAX_LIMIT = 100
RECORDS_MAX_WINDOW = 10_000

LO2 = "Licence Ouverte / Etalab 2.0"


@dataclass(frozen=True)
class Dataset:
    """A downloadable dataset.

    Parameters
    ----------
    id : str
        Dataset id on the portal (or a short name for non-portal sources).
    titre : str
        Title (French).
    editeur : str
        Publisher.
    licence : str
        Licence of the data.
    format : str
        ``csv`` or ``geojson`` (export format).
    source : str
        ``opendatasoft`` (portal export) or ``insee`` (direct URL).
    """

    id: str
    titre: str
    editeur: str
    licence: str = LO2
    format: str = "csv"
    source: str = "opendatasoft"

    @property
    def filename(self) -> str:
        """Local file name in the output folder."""
        return f"{self.id}.{self.format}"


_DEPP = "MENJ – DEPP (data.education.gouv.fr)"
_DNE = "MENJ – DNE (data.education.gouv.fr)"
#: Datasets of ``gar-analysis download`` (all downloaded by default). The four weekly DNMA datasets
#: (``fr-en-dnma-par-uai-*``, 1.5 to 3.9 million rows each) are not in the default list: name them with
#: ``--datasets`` and put the files under ``dnma/`` of a data directory (see :mod:`gar_analysis.sources.dnma`).
DATASETS: dict[str, Dataset] = {d.id: d for d in (
    Dataset("fr-en-annuaire-education", "Annuaire de l'éducation", "MENJ (data.education.gouv.fr)"),
    Dataset("fr-en-ips-ecoles-ap2022", "Indices de position sociale des écoles (à partir de 2022)", _DEPP),
    Dataset("fr-en-ips-colleges-ap2022", "Indices de position sociale des collèges (à partir de 2022)", _DEPP),
    Dataset("fr-en-ips-lycees-ap2022", "Indices de position sociale des lycées (à partir de 2022)", _DEPP),
    Dataset("fr-en-gar-acces_academie", "Accès aux ressources via le GAR par académie", _DNE),
    Dataset("fr-en-gar-affectations_academie2024-2025", "Affectations de ressources dans le GAR par académie "
            "2024-2025", _DNE),
    Dataset("fr-en-gar-accedants_academie2024-2025", "Accédants au GAR par académie 2024-2025", _DNE),
    Dataset("fr-en-gar-accedants_degre2024-2025", "Accédants au GAR par degré 2024-2025", _DNE),
    Dataset("fr-en-gar-acces_profil2024-2025", "Accès via le GAR par profil d'utilisateur 2024-2025", _DNE),
    Dataset("fr-en-gar-affectations_degre2024-2025", "Affectations dans le GAR par degré 2024-2025", _DNE),
    Dataset("fr-en-gestionnaire-dacces-aux-ressources-gar-liste_des_ressources-2026",
            "Liste des ressources accessibles par le GAR (2026)", _DNE),
    Dataset("fr-en-indicateurs-valeur-ajoutee-colleges", "Indicateurs de valeur ajoutée des collèges (IVAC)", _DEPP),
    Dataset("fr-en-adresse-et-geolocalisation-etablissements-premier-et-second-degre",
            "Adresse et géolocalisation des établissements", _DEPP),
    Dataset("fr-en-contour-academies-2020", "Contours géographiques des académies", "MENJ (data.education.gouv.fr)",
            licence="ODbL (© les contributeurs d'OpenStreetMap)", format="geojson"),
    Dataset("insee-communes", "Communes de France : population et superficie (INSEE)",
            "INSEE, compilé par data.gouv.fr", source="insee"),
)}


class DownloadError(GarAnalysisError):
    """Raised when a file cannot be downloaded after every retry (message in French)."""


# --------------------------------------------------------------------------- URLs

def export_url(base_url: str, dataset_id: str, fmt: str = "csv", *, use_labels: bool = False) -> str:
    """Return the Explore v2.1 export URL of a dataset.

    Examples
    --------
    >>> export_url("https://data.education.gouv.fr", "fr-en-ips-colleges-ap2022")
    'https://data.education.gouv.fr/api/explore/v2.1/catalog/datasets/fr-en-ips-colleges-ap2022/exports/csv?delimiter=%3B&use_labels=false'
    """
    params = {"delimiter": ";", "use_labels": str(use_labels).lower()} if fmt == "csv" else {}
    query = f"?{urlencode(params)}" if params else ""
    return f"{base_url.rstrip('/')}{API_PREFIX}/{quote(dataset_id)}/exports/{fmt}{query}"


def records_url(base_url: str, dataset_id: str, *, limit: int = RECORDS_MAX_LIMIT, offset: int = 0) -> str:
    """Return the Explore v2.1 ``/records`` URL of a page, checking the API's limits.

    Raises
    ------
    ValueError
        When ``limit`` > 100 or ``offset + limit`` > 10 000 (the API refuses them).
    """
    if not 0 < limit <= RECORDS_MAX_LIMIT:
        raise ValueError(f"limit doit être entre 1 et {RECORDS_MAX_LIMIT} (reçu {limit}).")
    if offset < 0 or offset + limit > RECORDS_MAX_WINDOW:
        raise ValueError(f"offset + limit ne peut dépasser {RECORDS_MAX_WINDOW} : utiliser l'export "
                         "(/exports/csv) pour un jeu plus grand.")
    return f"{base_url.rstrip('/')}{API_PREFIX}/{quote(dataset_id)}/records?{urlencode({'limit': limit, 'offset': offset})}"


def dataset_url(ds: Dataset, base_url: str, *, insee_url: str | None = None, use_labels: bool = False) -> str:
    """Return the URL a dataset is downloaded from."""
    if ds.source == "insee":
        return insee_url or os.environ.get(ENV_INSEE_COMMUNES_URL, "").strip() or INSEE_COMMUNES_URL
    return export_url(base_url, ds.id, ds.format, use_labels=use_labels)


def resolve_base_url(base_url: str | None = None) -> str:
    """Return the portal URL: argument, else ``GAR_OPENDATA_BASE_URL``, else data.education.gouv.fr."""
    url = (base_url or os.environ.get(config.ENV_OPENDATA_BASE_URL, "").strip() or config.OPENDATA_BASE_URL)
    if not url.startswith(("http://", "https://")):
        from ..errors import ConfigError

        raise ConfigError(f"Adresse du portail invalide : {url!r} (http:// ou https:// attendu).")
    return url.rstrip("/")


# --------------------------------------------------------------------------- HTTP client

def _retry_after(value: str | None) -> float | None:
    """Parse ``Retry-After`` (seconds or HTTP date) into seconds, None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def manifest_path(dest: Path) -> Path:
    """Return the manifest path of a downloaded file (``<file>.manifest.json``)."""
    return dest.with_name(dest.name + ".manifest.json")


def count_rows(path: Path, suffix: str | None = None) -> int | None:
    """Return the number of records of a CSV, Parquet, GeoJSON or JSON file (None if unknown).

    ``suffix`` gives the file kind when the name does not (a temporary file).
    """
    suffix = (suffix or Path(path).suffix).lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if suffix in {".geojson", ".json"}:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            if isinstance(data, dict) and "features" in data:
                return len(data["features"])
            return len(data) if isinstance(data, list) else None
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = f.readline()
            f.seek(0)
            sep = ";" if header.count(";") >= header.count(",") else ","
            return max(0, sum(1 for _ in csv.reader(f, delimiter=sep)) - 1)
    except (OSError, ValueError, UnicodeDecodeError, csv.Error):
        return None


class _Incomplete(Exception):
    """The body ended before Content-Length bytes."""


class _TooLong(Exception):
    """The transfer outlived ``max_duration``."""


class _Watchdog:
    """Cut a response's connection when the whole transfer outlives ``seconds`` (a slow drip included)."""

    def __init__(self, resp, seconds: float | None):
        import threading

        self.fired = False
        self.timer = None
        if seconds:
            self.timer = threading.Timer(seconds, self._fire, args=(resp,))
            self.timer.daemon = True
            self.timer.start()

    def _fire(self, resp) -> None:
        import socket

        self.fired = True
        sock = None
        for path in (("raw", "_fp", "fp", "raw", "_sock"), ("raw", "connection", "sock")):
            obj = resp
            try:
                for attr in path:
                    obj = getattr(obj, attr)
                sock = obj
                break
            except AttributeError:
                continue
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                resp.close()
        except OSError:
            pass

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class _Invalid(Exception):
    """The body was received but is not the expected file (not retried)."""


#: Content types that are never a data file (an error or login page, an API error).
_WRONG_TYPES = {".csv": ("text/html", "application/json", "application/problem+json", "application/xml", "text/xml"),
                ".parquet": ("text/", "application/json", "application/problem+json"),
                ".geojson": ("text/html", "text/csv", "application/xml"),
                ".json": ("text/html", "text/csv", "application/xml")}
_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def check_dataset_id(ds_id: str) -> str:
    """Refuse a dataset id that is not a plain file name (``../../x`` would write outside ``--out``)."""
    import re

    if not re.match(_ID_RE, ds_id or "") or ".." in ds_id:
        raise ConfigError(f"--datasets : identifiant de jeu invalide {ds_id!r} (lettres, chiffres, « - », « _ » et "
                          "« . » seulement, sans « .. » ni « / »).")
    return ds_id


def validate_body(path: Path, suffix: str, content_type: str | None, expected_rows: int | None = None) -> int | None:
    """Check a downloaded body before it replaces anything; return its row count.

    Parameters
    ----------
    path : Path
        The temporary file holding the body (decoded).
    suffix : str
        Kind of file expected (``.csv``, ``.parquet``, ``.geojson``, ``.json``).
    content_type : str or None
        The response's ``Content-Type`` (None: not given).
    expected_rows : int, optional
        Rows the portal announced; the file must hold exactly as many.

    Raises
    ------
    _Invalid
        An HTML or JSON page instead of data, a compressed or truncated body, a CSV
        whose records do not all have the header's fields, a row count that differs.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    if any(ctype.startswith(t) for t in _WRONG_TYPES.get(suffix, ())):
        raise _Invalid(f"type de contenu « {ctype} » reçu au lieu d'un fichier {suffix} (page d'erreur ou de "
                       "connexion ?)")
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] == b"\x1f\x8b":
        raise _Invalid("contenu compressé (gzip) reçu au lieu du fichier décompressé : compression non déclarée "
                       "ou corrompue")
    if suffix == ".parquet":
        if head[:4] != b"PAR1":
            raise _Invalid("fichier Parquet invalide (signature PAR1 absente)")
    elif suffix == ".csv":
        text_head = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if text_head[:1] in (b"<", b"{", b"["):
            raise _Invalid("page HTML ou réponse JSON reçue au lieu d'un CSV (message d'erreur du serveur ?)")
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 1))
            last = f.read(1)
        if last and last != b"\n":
            raise _Invalid("dernière ligne sans fin de ligne : corps de réponse tronqué (connexion coupée ou "
                           "compression corrompue)")
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                header = f.readline()
                sep = ";" if header.count(";") >= header.count(",") else ","
                f.seek(0)
                reader = csv.reader(f, delimiter=sep)
                width = None
                for i, rec in enumerate(reader):
                    if width is None:
                        width = len(rec)
                    elif rec and len(rec) != width:
                        raise _Invalid(f"ligne {reader.line_num} incomplète ({len(rec)} champ(s) sur {width}) : "
                                       "corps de réponse tronqué")
        except UnicodeDecodeError:
            raise _Invalid("contenu non UTF-8 (corps tronqué ou binaire)") from None
        except csv.Error as exc:
            raise _Invalid(f"CSV illisible ({exc})") from None
    elif suffix in (".json", ".geojson"):
        try:
            json.loads(path.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            raise _Invalid("JSON invalide (corps tronqué ?)") from None
    rows = count_rows(path, suffix)
    if expected_rows is not None and rows is not None and rows != expected_rows:
        raise _Invalid(f"{rows} ligne(s) reçue(s) alors que le portail en annonce {expected_rows}")
    return rows


class Downloader:
    """HTTP client of ``gar-analysis download``: one session, retries, conditional requests.

    Parameters
    ----------
    timeout : tuple of float, optional
        (connect, read) timeouts in seconds; ``read`` bounds every wait for data.
    max_duration : float, optional
        Longest time of one attempt, connection and whole transfer included (a
        server that sends a byte now and then cannot hold the download forever).
    retries : int, optional
        Retries after the first attempt (on 429, 5xx, timeouts, dropped connections).
    backoff : float, optional
        First back-off delay (seconds), doubled at each retry, unless ``Retry-After`` says otherwise.
    max_wait : float, optional
        Longest wait honoured (``Retry-After`` above it: the download fails with a clear message).
    progress : bool or None, optional
        Progress bar: True, False, or None (only on a terminal).
    session : requests.Session, optional
        Session to use (created otherwise).
    """

    def __init__(self, *, timeout=(10.0, 60.0), retries: int = 4, backoff: float = 1.0,
                 max_wait: float = 120.0, progress: bool | None = None, session=None,
                 max_duration: float | None = None):
        import requests

        self.timeout = timeout
        self.max_duration = max_duration
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.progress = progress
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", f"gar-analysis/{_version()} (+pilotage GAR)")

    def close(self) -> None:
        """Close the session."""
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fetch(self, url: str, dest: str | Path, *, dataset: str = "", force: bool = False,
              expected_rows: int | None = None) -> dict:
        """Download ``url`` to ``dest`` atomically and write its manifest.

        Parameters
        ----------
        url : str
            URL to fetch.
        dest : str or Path
            Final path of the file.
        dataset : str, optional
            Dataset id recorded in the manifest.
        force : bool, optional
            Fetch even when the server says the file is unchanged.
        expected_rows : int, optional
            Rows the portal announced (checked before the file replaces anything).

        Returns
        -------
        dict
            The manifest (``statut``: ``telecharge`` or ``inchange``).

        Raises
        ------
        DownloadError
            After the last retry, or at once on a client error (4xx other than 429).
        """
        import requests

        dest = Path(dest)
        previous = _read_manifest(dest)
        headers = {}
        if previous and dest.exists() and not force:
            if previous.get("etag"):
                headers["If-None-Match"] = previous["etag"]
            if previous.get("last_modified"):
                headers["If-Modified-Since"] = previous["last_modified"]
        last_reason = ""
        for attempt in range(self.retries + 1):
            wait = self.backoff * (2 ** attempt)
            try:
                resp = self.session.get(url, headers=headers, stream=True, timeout=self.timeout)
            except requests.exceptions.Timeout:
                last_reason = f"pas de réponse du serveur en {self.timeout[1]:g} s"
                self._pause(attempt, wait, last_reason, url)
                continue
            except requests.exceptions.ConnectionError as exc:
                last_reason = f"connexion impossible ({type(exc).__name__})"
                self._pause(attempt, wait, last_reason, url)
                continue
            except requests.exceptions.TooManyRedirects:
                raise DownloadError(f"{url} : boucle de redirections (plus de {self.session.max_redirects}) ; "
                                    "vérifier l'adresse du portail (--base-url).") from None
            except requests.exceptions.RequestException as exc:
                raise DownloadError(f"{url} : requête impossible ({type(exc).__name__} : {exc}) ; vérifier "
                                    "l'adresse du portail (--base-url).") from None
            try:
                if resp.status_code == 304 and previous:
                    manifest = {**previous, "verifie_le": _now(), "statut": "inchange"}
                    atomic_write_text(manifest_path(dest), json.dumps(manifest, ensure_ascii=False, indent=2))
                    return manifest
                if resp.status_code == 304:
                    raise DownloadError(f"{url} : réponse 304 (inchangé) sans téléchargement antérieur dans "
                                        f"{dest.parent} : relancer avec --force.")
                if resp.status_code in RETRY_STATUSES:
                    after = _retry_after(resp.headers.get("Retry-After"))
                    last_reason = f"réponse HTTP {resp.status_code}"
                    if after is not None:
                        if after > self.max_wait:
                            raise DownloadError(
                                f"{url} : le serveur demande d'attendre {after:.0f} s (HTTP {resp.status_code}, "
                                f"Retry-After), au-delà du maximum de {self.max_wait:.0f} s : relancer plus tard.")
                        wait = after
                    self._pause(attempt, wait, last_reason, url)
                    continue
                if resp.status_code >= 400:
                    raise DownloadError(f"{url} : réponse HTTP {resp.status_code} ({resp.reason}) ; vérifier "
                                        "l'identifiant du jeu de données et l'adresse du portail (--base-url).")
                try:
                    return self._save(resp, url, dest, dataset, expected_rows)
                except _Invalid as exc:
                    raise DownloadError(f"{url} : fichier refusé, {exc} ; le fichier précédent "
                                        f"({dest.name}) est conservé.") from None
                except (requests.exceptions.RequestException, _Incomplete, _TooLong) as exc:
                    last_reason = ("téléchargement interrompu avant la fin du fichier"
                                   if not isinstance(exc, (requests.exceptions.Timeout, _TooLong))
                                   else f"transfert trop long (plus de {self._limit():g} s)")
                    self._pause(attempt, wait, last_reason, url)
                    continue
                except OSError as exc:
                    raise DownloadError(f"{dest} : écriture impossible ({exc}).") from None
            finally:
                resp.close()
        raise DownloadError(f"{url} : échec après {self.retries + 1} tentative(s) ({last_reason}). "
                            "Aucun fichier partiel n'a été laissé ; relancer la commande plus tard.")

    def _pause(self, attempt: int, wait: float, reason: str, url: str) -> None:
        if attempt >= self.retries:
            return
        wait = min(wait, self.max_wait)
        log.warning("%s : %s, nouvelle tentative dans %.1f s (%d/%d).", url, reason, wait, attempt + 1, self.retries)
        time.sleep(wait)

    def _limit(self) -> float:
        return self.max_duration if self.max_duration else self.timeout[1]

    def _save(self, resp, url: str, dest: Path, dataset: str, expected_rows: int | None = None) -> dict:
        from tqdm.auto import tqdm

        started = time.monotonic()
        total = resp.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        encoded = resp.headers.get("Content-Encoding", "identity") not in ("", "identity")
        sha = hashlib.sha256()
        size = 0
        remaining = self.max_duration - (time.monotonic() - started) if self.max_duration else None
        watchdog = _Watchdog(resp, remaining)
        with atomic_path(dest) as tmp:
            try:
                with open(tmp, "wb") as f, tqdm(total=total, unit="o", unit_scale=True, desc=dest.name, leave=False,
                                                disable=(not self.progress) if self.progress is not None
                                                else None) as bar:
                    for chunk in resp.iter_content(chunk_size=1 << 16):
                        if not chunk:
                            continue
                        f.write(chunk)
                        sha.update(chunk)
                        size += len(chunk)
                        bar.update(len(chunk))
            except Exception:
                if watchdog.fired:
                    raise _TooLong(f"plus de {self.max_duration:g} s") from None
                raise
            finally:
                watchdog.cancel()
            if watchdog.fired:
                raise _TooLong(f"plus de {self.max_duration:g} s")
            if total is not None and not encoded and size != total:
                raise _Incomplete(f"{size} octets reçus sur {total}")
            rows = validate_body(tmp, dest.suffix, resp.headers.get("Content-Type"), expected_rows)
            manifest = {
                "dataset": dataset, "url": url, "fichier": dest.name, "telecharge_le": _now(), "verifie_le": _now(),
                "taille_octets": size, "sha256": sha.hexdigest(), "lignes": rows,
                "etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified"),
                "statut": "telecharge",
            }
        atomic_write_text(manifest_path(dest), json.dumps(manifest, ensure_ascii=False, indent=2))
        return manifest


def _read_manifest(dest: Path) -> dict | None:
    p = manifest_path(dest)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("gar-analysis")
    except Exception:  # pragma: no cover - not installed
        return "0"


def fetch_records(dataset_id: str, *, base_url: str | None = None, downloader: Downloader | None = None,
                  limit: int = RECORDS_MAX_LIMIT, max_records: int = RECORDS_MAX_WINDOW) -> list[dict]:
    """Page through ``/records`` (``limit`` ≤ 100, ``offset + limit`` ≤ 10 000) and return the records.

    For a dataset larger than 10 000 records, use the export (:func:`download`).
    """
    import requests

    base = resolve_base_url(base_url)
    dl = downloader or Downloader(progress=False)
    out: list[dict] = []
    offset = 0
    try:
        while offset < min(max_records, RECORDS_MAX_WINDOW):
            size = min(limit, RECORDS_MAX_WINDOW - offset, max_records - offset)
            url = records_url(base, dataset_id, limit=size, offset=offset)
            for attempt in range(dl.retries + 1):
                try:
                    resp = dl.session.get(url, timeout=dl.timeout)
                except requests.exceptions.RequestException as exc:
                    if attempt >= dl.retries:
                        raise DownloadError(f"{url} : échec de la requête ({type(exc).__name__}).") from None
                    dl._pause(attempt, dl.backoff * 2 ** attempt, type(exc).__name__, url)
                    continue
                if resp.status_code in RETRY_STATUSES and attempt < dl.retries:
                    dl._pause(attempt, _retry_after(resp.headers.get("Retry-After")) or dl.backoff * 2 ** attempt,
                              f"HTTP {resp.status_code}", url)
                    continue
                if resp.status_code >= 400:
                    raise DownloadError(f"{url} : réponse HTTP {resp.status_code}.")
                break
            page = resp.json()
            results = page.get("results", [])
            out.extend(results)
            total = int(page.get("total_count", len(out)))
            offset += len(results)
            if not results or offset >= total:
                break
    finally:
        if downloader is None:
            dl.close()
    return out


def portal_count(dataset_id: str, *, base_url: str | None = None, downloader: Downloader | None = None) -> int | None:
    """Return the number of records the portal announces for a dataset (``total_count`` of ``/records``).

    None when the portal does not answer it (the export is then checked without a count).
    """
    import requests

    dl = downloader or Downloader(progress=False)
    url = records_url(resolve_base_url(base_url), dataset_id, limit=1)
    try:
        resp = dl.session.get(url, timeout=dl.timeout)
        if resp.status_code != 200:
            return None
        total = resp.json().get("total_count")
        return int(total) if isinstance(total, int) and total >= 0 else None
    except (requests.exceptions.RequestException, ValueError, AttributeError):
        return None
    finally:
        if downloader is None:
            dl.close()


def download(datasets: list[str] | None = None, out_dir: str | Path = DEFAULT_OUT, *, base_url: str | None = None,
             insee_url: str | None = None, use_labels: bool = False, force: bool = False,
             downloader: Downloader | None = None, counts: dict[str, int] | None = None) -> list[dict]:
    """Download datasets into ``out_dir``; return their manifests.

    Parameters
    ----------
    datasets : list of str, optional
        Dataset ids (default: every dataset of :data:`DATASETS`). An id not in
        the list is fetched as a CSV export of the portal.
    out_dir : str or Path, optional
        Output folder (default ``data/raw/opendata``).
    base_url : str, optional
        Portal or mirror (default: ``GAR_OPENDATA_BASE_URL`` or data.education.gouv.fr).
    insee_url : str, optional
        URL of the commune file (default: ``GAR_INSEE_COMMUNES_URL`` or data.gouv.fr).
    use_labels : bool, optional
        Headers as field labels rather than field ids (the loaders accept both).
    force : bool, optional
        Ignore conditional requests (fetch again).
    downloader : Downloader, optional
        Client to use (tests set short timeouts).
    counts : dict, optional
        Rows announced by the portal, by dataset id: a file with another count is refused.

    Returns
    -------
    list of dict
        One manifest per dataset, in order. Failures raise :class:`DownloadError`
        after the other datasets were attempted (message listing each failure).
    """
    base = resolve_base_url(base_url)
    out = Path(out_dir)
    ids = datasets or list(DATASETS)
    for ds_id in ids:
        check_dataset_id(ds_id)
    dl = downloader or Downloader()
    manifests, failures = [], []
    try:
        for ds_id in ids:
            ds = DATASETS.get(ds_id) or Dataset(ds_id, ds_id, "data.education.gouv.fr")
            url = dataset_url(ds, base, insee_url=insee_url, use_labels=use_labels)
            dest = out / ds.filename
            if out.resolve() not in dest.resolve().parents:
                raise ConfigError(f"--datasets : {ds_id!r} écrirait hors du dossier {out}.")
            try:
                manifests.append(dl.fetch(url, dest, dataset=ds.id, force=force,
                                          expected_rows=(counts or {}).get(ds_id)))
            except DownloadError as exc:
                failures.append(str(exc))
    finally:
        if downloader is None:
            dl.close()
    if failures:
        raise DownloadError("\n".join(failures))
    return manifests


# --------------------------------------------------------------------------- CLI

def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``gar-analysis download``."""
    parser.add_argument("--datasets", nargs="+", metavar="ID",
                        help="jeux à télécharger (identifiants du portail, séparés par des espaces ou des virgules) ; "
                             "par défaut : tous (voir --list)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help="dossier de destination (défaut : data/raw/opendata)")
    parser.add_argument("--base-url", default=None,
                        help=f"portail ou miroir Opendatasoft (défaut : ${config.ENV_OPENDATA_BASE_URL} "
                             f"ou {config.OPENDATA_BASE_URL})")
    parser.add_argument("--insee-url", default=None,
                        help=f"adresse du fichier des communes (défaut : ${ENV_INSEE_COMMUNES_URL} ou data.gouv.fr)")
    parser.add_argument("--labels", action="store_true", help="en-têtes en libellés plutôt qu'en identifiants de champ")
    parser.add_argument("--force", action="store_true", help="retélécharger même si le fichier est inchangé")
    from ..cli import non_negative_int, positive_float

    parser.add_argument("--timeout", type=positive_float, default=600.0,
                        help="durée maximale d'une tentative de téléchargement, transfert compris (s)")
    parser.add_argument("--retries", type=non_negative_int, default=4,
                        help="nombre de nouvelles tentatives (429, 5xx, coupure)")
    parser.add_argument("--list", action="store_true", help="lister les jeux disponibles et quitter")
    parser.add_argument("--verifier-total", action="store_true",
                        help="comparer le nombre de lignes reçues au total annoncé par le portail (/records)")


def run(args: argparse.Namespace) -> int:
    """Run ``gar-analysis download``; return the exit status."""
    if args.list:
        for ds in DATASETS.values():
            print(f"{ds.id:75s} {ds.titre} — {ds.licence}")
        return 0
    from ..cli import output_dir

    ids = [x.strip() for item in (args.datasets or []) for x in item.split(",") if x.strip()] or None
    for ds_id in ids or ():
        check_dataset_id(ds_id)
    args.out = str(output_dir(args.out, "--out"))
    dl = Downloader(timeout=(min(10.0, args.timeout), min(60.0, args.timeout)), retries=args.retries,
                    max_duration=args.timeout)
    counts = None
    if getattr(args, "verifier_total", False):
        counts = {}
        for ds_id in ids or list(DATASETS):
            ds = DATASETS.get(ds_id)
            if ds is None or (ds.source != "insee" and ds.format == "csv"):
                n = portal_count(ds_id, base_url=args.base_url, downloader=dl)
                if n is not None:
                    counts[ds_id] = n
    try:
        manifests = download(ids, args.out, base_url=args.base_url, insee_url=args.insee_url,
                             use_labels=args.labels, force=args.force, downloader=dl, counts=counts)
    except DownloadError as exc:
        print(f"gar-analysis download : {exc}")
        return 1
    finally:
        dl.close()
    for m in manifests:
        etat = "inchangé" if m["statut"] == "inchange" else "téléchargé"
        lignes = "?" if m.get("lignes") is None else m["lignes"]
        print(f"{m['fichier']} : {etat} ({m['taille_octets']} octets, {lignes} lignes, sha256 {m['sha256'][:12]}…)")
    return 0


# --------------------------------------------------------------------------- loaders of real files

def _t(*h: str) -> tuple[str, ...]:
    return tuple(h)


#: Layouts of the IVAC (indicateurs de valeur ajoutée des collèges), labels, ids and a user-modified copy.
IVAC_LAYOUTS = (
    Layout("ivac", {"uai": _t("UAI"), "session": _t("Session")},
           {"secteur": _t("Secteur"), "academie": _t("Académie", "acad"),
            "nb_candidats_g": _t("Nb candidats - G", "Nb_candidats_G"),
            "taux_reussite_g": _t("Taux de réussite - G", "Taux_reussite_G"),
            "va_taux_reussite_g": _t("VA du taux de réussite - G", "VA_taux_reussite_G"),
            "note_ecrit_g": _t("Note à l'écrit - G", "Note_ecrit_G"),
            "va_note_g": _t("VA de la note - G", "VA_de_la_note_G"),
            "taux_acces_6e_3e": _t("Taux d'accès 6ème-3ème", "Taux_acces_6eme_3eme")}),
)
IVAC_COLUMNS = ["uai", "session", "secteur", "code_academie", "nb_candidats_g", "taux_reussite_g",
                "va_taux_reussite_g", "note_ecrit_g", "va_note_g", "taux_acces_6e_3e"]


def load_ivac(path: str | Path) -> pd.DataFrame:
    """Load the IVAC of collèges (labels, ids or the « None »-filled copy).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IVAC_COLUMNS` (session as Int64, rates in %, value added
        in points), one row per collège and session; index = physical line.
        ``"None"`` and empty cells are NA; ``NS``/``ND`` are NA and listed in
        ``attrs["problemes"]``.
    """
    ld = _Load.read(path, IVAC_LAYOUTS, "indicateurs de valeur ajoutée des collèges")
    col, get, idx, out = ld.col, ld.get, ld.index, ld.out
    out["uai"] = ld.text("uai").str.upper()
    s, h = get("session")
    out["session"] = _number(s, h, "int", col)
    s, h = get("secteur")
    out["secteur"] = _secteurs(s, h, idx, col)
    s, h = get("academie")
    out["code_academie"] = _academies(None, s, pd.Series(pd.NA, index=idx, dtype="string"), (None, h), col)
    for key in IVAC_COLUMNS[4:]:
        s, h = get(key)
        if s is None:
            out[key] = np.nan
            continue
        s = s.mask(s.str.upper().isin(["NONE", "NAN"]), "")
        out[key] = _number(s, h, "int" if key.startswith("nb_") else "float", col)
    return ld.finish(out[IVAC_COLUMNS])


GEOLOC_LAYOUTS = (
    Layout("geoloc", {"uai": _t("Code établissement", "numero_uai"), "latitude": _t("Latitude"),
                      "longitude": _t("Longitude")},
           {"nom": _t("Appellation officielle"), "secteur": _t("Secteur Public/Privé", "secteur_public_prive_libe"),
            "code_commune": _t("Code commune"), "code_departement": _t("Code département"),
            "code_academie": _t("Code académie"), "libelle_academie": _t("Académie", "libelle_academie"),
            "code_region": _t("Code région"), "nature": _t("Nature", "nature_uai_libe"),
            "etat": _t("Etat établissement", "etat_etablissement_libe"),
            "appariement": _t("Qualité d'appariement", "appariement")}),
)
GEOLOC_COLUMNS = ["uai", "nom", "nature", "secteur", "code_commune", "code_departement", "code_academie",
                  "code_region", "latitude", "longitude", "appariement", "etat"]


def load_geoloc(path: str | Path) -> pd.DataFrame:
    """Load ``fr-en-adresse-et-geolocalisation-etablissements-premier-et-second-degre`` (labels or ids).

    Missing coordinates stay NA and are counted in ``attrs["problemes"]``
    (e.g. overseas collectivities); overseas départements outside the 101 are kept and reported.
    """
    ld = _Load.read(path, GEOLOC_LAYOUTS, "géolocalisation des établissements")
    col, get, idx, out = ld.col, ld.get, ld.index, ld.out
    out["uai"] = ld.text("uai").str.upper()
    out["nom"] = ld.text("nom")
    out["nature"] = ld.text("nature")
    s, h = get("secteur")
    out["secteur"] = _secteurs(s, h, idx, col)
    out["code_commune"] = ld.text("code_commune")
    s, h = get("code_departement")
    out["code_departement"] = _departements(s, h, idx, col)
    (ca, hca), (la, hla) = get("code_academie"), get("libelle_academie")
    out["code_academie"] = _academies(ca, la, out["code_departement"], (hca, hla), col)
    out["code_region"] = _regions(get("code_region")[0], out["code_departement"])
    _coordinates(ld)
    out["appariement"] = ld.text("appariement")
    out["etat"] = ld.text("etat")
    return ld.finish(out[GEOLOC_COLUMNS])


EFFECTIFS_LAYOUTS = (
    Layout("effectifs-second-degre", {"uai": _t("Numero_d_etablissement", "Numéro d'établissement"),
                                      "rentree_scolaire": _t("Annee_scolaire", "Année scolaire"),
                                      "effectifs": _t("Nombre_d_eleves", "Nombre d'élèves")},
           {"nom": _t("nom_etablissement")}),
    Layout("effectifs-ecoles", {"uai": _t("Numéro de l'école"), "rentree_scolaire": _t("Rentrée scolaire"),
                                "effectifs": _t("Nombre total d'élèves")}, {"nom": _t("Dénomination principale")},
           niveau="ecole"),
    Layout("effectifs-colleges", {"uai": _t("Numéro du collège"), "rentree_scolaire": _t("Rentrée scolaire"),
                                  "effectifs": _t(
        "Nombre d'élèves total (nombre d'élèves dans les formations du 1er cycle du 2nd degré et non du nombre "
        "total d'élèves inscrits dans l'établissement, les DIMA et les dispositifs-relais sont exclus)",
        "Nombre d'élèves total", "Nombre d'élèves total hors Segpa hors ULIS")},
           {"nom": _t("Dénomination principale")}, niveau="college"),
    Layout("effectifs-lycees", {"uai": _t("Numéro du lycée", "numero_lycee"), "rentree_scolaire": _t("Rentrée scolaire"),
                                "effectifs": _t("Nombre d'élèves", "nombre_d_eleves")},
           {"nom": _t("Dénomination principale")}, niveau="lycee"),
)
EFFECTIFS_COLUMNS = ["uai", "rentree_scolaire", "effectifs", "nom"]


def load_effectifs(path: str | Path) -> pd.DataFrame:
    """Load a pupil-count file (second degré, écoles, collèges or lycées GT; labels or ids).

    Returns ``uai, rentree_scolaire, effectifs (Int64), nom``; one row per school
    and year, index = physical line. UAIs are kept as published (invalid ones
    such as pseudo-UAIs ending in « O » are for the quality checks to report).
    """
    ld = _Load.read(path, EFFECTIFS_LAYOUTS, "effectifs d'élèves")
    col, get, out = ld.col, ld.get, ld.out
    out["uai"] = ld.text("uai").str.upper()
    s, h = get("rentree_scolaire")
    out["rentree_scolaire"] = _rentrees(s, h, col)
    s, h = get("effectifs")
    out["effectifs"] = _number(s, h, "int", col)
    out["nom"] = ld.text("nom")
    return ld.finish(out[EFFECTIFS_COLUMNS])


def load_contours_academies(path: str | Path) -> pd.DataFrame:
    """Load the académie contours GeoJSON (ODbL) without a GIS library.

    Returns
    -------
    pandas.DataFrame
        ``code_academie, nom_academie, code_region_2016, latitude, longitude, geometry``
        (``geometry``: the GeoJSON geometry as a dict), one row per académie,
        index = feature number (1-based).
    """
    path = Path(path)
    if not path.exists():
        raise DataError.single(path, "fichier absent.")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        feats = data["features"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError.single(path, f"GeoJSON illisible : {exc}") from None
    rows, problems = [], []
    for i, feat in enumerate(feats, start=1):
        props = {field_id(k): v for k, v in (feat.get("properties") or {}).items()}
        code = territories.academie_code(props.get("code_academie")) or territories.academie_code(props.get("name"))
        if code is None:
            problems.append(Problem(str(path), i, "code_academie",
                                    f"académie « {props.get('code_academie') or props.get('name')} » inconnue."))
        point = props.get("geo_point_2d") or {}
        if isinstance(point, dict):
            lat, lon = point.get("lat"), point.get("lon")
        elif isinstance(point, (list, tuple)) and len(point) == 2:
            lat, lon = point
        else:
            lat = lon = None
        rows.append({"code_academie": code, "nom_academie": props.get("name") or props.get("libelle_aca"),
                     "code_region_2016": None if props.get("code_region_2016") is None
                     else str(props.get("code_region_2016")),
                     "latitude": lat, "longitude": lon, "geometry": feat.get("geometry")})
    df = pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="ligne"))
    df["latitude"] = pd.to_numeric(df["latitude"], errors="coerce")
    df["longitude"] = pd.to_numeric(df["longitude"], errors="coerce")
    for c in ("code_academie", "nom_academie", "code_region_2016"):
        df[c] = df[c].astype("string")
    df.attrs = {"problemes": Problems(problems),
                "layout": "geojson", "source": str(path)}
    return df


COG_LAYOUTS = (
    Layout("cog", {"code": _t("code"), "nom": _t("name")},
           {"type": _t("type_code"), "parent": _t("parent_code"), "code_departement": _t("department_code"),
            "code_region": _t("region_code")}, separators=(",", ";")),
)


def load_cog(path: str | Path) -> pd.DataFrame:
    """Load a COG 2025 table (communes Parquet, départements/régions CSV; INSEE, reshaped).

    Returns ``code, nom, type, parent, code_departement, code_region`` (strings, NA when absent).
    """
    ld = _Load.read(path, COG_LAYOUTS, "code officiel géographique")
    keys = ("code", "nom", "type", "parent", "code_departement", "code_region")
    return ld.finish(pd.DataFrame({k: ld.text(k) for k in keys}, index=ld.index))


def load_gar_catalog(path: str | Path) -> dict[str, dict]:
    """Load the GAR open-data catalogue metadata: dataset id → {"title", "fields": {field: description}}."""
    path = Path(path)
    if not path.exists():
        raise DataError.single(path, "fichier absent.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError.single(path, f"JSON illisible : {exc}") from None
    return {k: v for k, v in data.items() if not k.startswith("_") and isinstance(v, dict) and "fields" in v}


#: Layouts of the ministry's GAR open-data datasets (fields of gar_datasets_schema.json; labels or ids).
GAR_OPENDATA_LAYOUTS = {
    "academie": Layout("gar-academie", {"academie": _t("code_academie", "Code académie", "libelle_aca",
                                                       "libelle_aca_majuscules")},
                       {"code_academie": _t("code_academie", "Code académie"),
                        "libelle": _t("libelle_aca", "Libellé académie", "libelle_aca_majuscules", "name"),
                        "acces": _t("acces", "Accès"), "affectations": _t("affectations", "Affectations")}),
    "degre": Layout("gar-degre", {"degre": _t("degre", "Degré")},
                    {"accedants": _t("accedants", "Accédants"), "affectations": _t("affectations", "Affectations"),
                     "acces": _t("acces", "Accès")}),
    "profil": Layout("gar-profil", {"profil": _t("profil", "Profil")},
                     {"acces": _t("acces", "Accès"), "affectations": _t("affectations", "Affectations")}),
}
_GAR_MEASURES = ("acces", "affectations", "accedants")


def load_gar_opendata(path: str | Path) -> pd.DataFrame:
    """Load one of the ministry's GAR open-data datasets (by académie, degré or profil).

    Returns
    -------
    pandas.DataFrame
        For académie datasets: ``code_academie, libelle`` and the measures
        present (``acces``, ``affectations``); for degré/profil datasets: the
        dimension (``degre`` or ``profil``) and the measures. Measures are Int64.
        Académie labels are normalised (accents, case, CAEN/ROUEN → Normandie);
        unknown ones are NA and listed in ``attrs["problemes"]``.
    """
    path = Path(path)
    if path.suffix.lower() in {".geojson", ".json"}:
        raw = _geojson_as_table(path)
        layouts = tuple(GAR_OPENDATA_LAYOUTS.values())
        from .referentiel import _detect

        ld = _Load(path, raw, _detect(path, raw.columns, layouts, "données ouvertes du GAR"))
    else:
        ld = _Load.read(path, tuple(GAR_OPENDATA_LAYOUTS.values()), "données ouvertes du GAR")
    col, get, idx, out, layout = ld.col, ld.get, ld.index, ld.out, ld.layout
    if layout.name == "gar-academie":
        (ca, hca), (lib, hlib) = get("code_academie"), get("libelle")
        out["code_academie"] = _academies(ca, lib, pd.Series(pd.NA, index=idx, dtype="string"), (hca, hlib), col)
        out["libelle"] = _string(lib, idx)
    else:
        key = "degre" if layout.name == "gar-degre" else "profil"
        out[key] = ld.text(key)
    for m in _GAR_MEASURES:
        s, h = get(m)
        if s is not None:
            out[m] = _number(s, h, "int", col)
    return ld.finish(out)


def _geojson_as_table(path: Path) -> pd.DataFrame:
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    recs = data["features"] if isinstance(data, dict) else data
    rows = [{field_id(k): ("" if v is None else str(v)) for k, v in (r.get("properties", r) or {}).items()}
            for r in recs]
    df = pd.DataFrame(rows, index=pd.RangeIndex(2, len(rows) + 2, name="ligne")).fillna("")
    df.attrs["headers"] = {c: c for c in df.columns}
    return df


def opendata_manifest(out_dir: str | Path) -> pd.DataFrame:
    """Return the manifests of the files of a download folder as a table (one row per file)."""
    rows = []
    for p in sorted(Path(out_dir).glob("*.manifest.json")):
        try:
            rows.append(json.loads(p.read_text(encoding="utf-8")))
        except ValueError:
            continue
    return pd.DataFrame(rows)


def _as_dict(ds: Dataset) -> dict:
    return {**asdict(ds), "fichier": ds.filename}


def datasets_table() -> pd.DataFrame:
    """Return :data:`DATASETS` as a table (id, titre, editeur, licence, format, source, fichier)."""
    return pd.DataFrame([_as_dict(d) for d in DATASETS.values()])
