"""``gar-analysis crm pull``: pull the Dolibarr CRM into the contract's ``crm/*.csv`` files.

The client speaks the Dolibarr REST API as recorded from a real Dolibarr 20.0.2
(``../shared/data/dolibarr-20.0.2/README.md``): ``{base}/api/index.php/...``,
header ``DOLAPIKEY`` (read from the environment only), 0-based ``page`` and
``limit`` with no total, end of list signalled by a 404 (third parties,
contacts) or by ``200 []`` (contracts, projects, categories, agenda), numbers as
strings, dates as Unix seconds / ``null`` / ``""``, ``array_options`` an object
or ``[]``, and the Dolibarr ≥ 21 ``pagination_data`` wrapper
``{"data": [...], "pagination": {...}}``.

What is written (see ``docs/integrations.md``):

- ``crm/acteurs.csv``: third parties, typed from their extrafield, categories,
  third-party type, name, UAI and supplier flag;
- ``crm/contrats.csv``: contracts (with their lines: dates, amount, object);
- ``crm/contacts.csv``: contacts and their role (no name, no e-mail);
- ``crm/actions.csv``: agenda events that are support actions at a school.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import requests

from .. import config
from ..contract import (TYPES_ACTEUR, TYPES_ACTION, CONTRACT, read_contract_file,
                        write_contract_file)
from ..errors import ConfigError
from ..io import atomic_write_text
from ..territories import normalize_departement, slug
from .http import RetryPolicy, ServiceError, install_redaction, make_session, redact, send, wait_from_headers

log = logging.getLogger(__name__)

API_PATH = "/api/index.php"
DEFAULT_PAGE_SIZE = 100
STATE_FILE = "crm/dolibarr_pull.json"


@dataclass(frozen=True)
class Resource:
    """A Dolibarr list endpoint: French label, read right, module, end-of-list style, sort column."""

    label: str
    right: str
    module: str
    end: str  # "404" or "empty"
    incremental: bool = True
    sortfield: str = "t.rowid"


#: Rights and modules as Dolibarr 20.0.2 checks them (README of the recorded exchanges, « Behaviours that
#: surprise clients »). The agenda's list needs « myactions read » (2401) even with « allactions read » (2411).
RESOURCES = {
    "thirdparties": Resource("Tiers", "Tiers → « Consulter les tiers » (societe → lire, droit 121)", "Tiers", "404"),
    "contacts": Resource("Contacts", "Tiers → « Consulter les contacts » (societe → contact → lire, droit 281)",
                         "Tiers", "404"),
    "contracts": Resource("Contrats", "Contrats/Abonnements → « Lire les contrats » (contrat → lire, droit 161)",
                          "Contrats", "empty", incremental=False),
    "projects": Resource("Projets", "Projets → « Lire les projets et tâches » (projet → lire, droit 41)",
                         "Projets", "empty"),
    "categories": Resource("Catégories", "Tags/Catégories → « Lire les tags/catégories » (categorie → lire, "
                           "droit 241)", "Catégories", "empty", incremental=False),
    "agendaevents": Resource("Événements", "Agenda → « Lire les actions/tâches liées à son compte » (agenda → "
                             "myactions → read, droit 2401) et « Lire les actions/tâches des autres » (agenda → "
                             "allactions → read, droit 2411)", "Agenda", "empty", sortfield="t.id"),
}
#: The right without which Dolibarr silently narrows lists to the user's own third parties.
RIGHT_READ_ALL = ("Tiers → « Consulter tous les tiers » (societe → client → voir, droit 262 ; sans lui, "
                  "Dolibarr ne renvoie que les tiers dont l'utilisateur est commercial, sans le signaler)")

#: Dolibarr contract status → contract vocabulary (« 2 » is never set by Dolibarr 20: see :func:`contract_state`).
CONTRACT_STATUS = {"0": "en_attente", "1": "signe", "2": "clos"}
#: Contract line status: 0 inactive, 4 running, 5 closed.
LINE_RUNNING, LINE_CLOSED = "4", "5"


class ModuleUnavailable(ServiceError):
    """The endpoint answers as a disabled module does (403 to an admin key, or 501 unknown API)."""


class RightMissing(ServiceError):
    """The key's user lacks a read right (or, for a non-admin key, the module may be off)."""


class Conflict(ServiceError):
    """Dolibarr answered 409: the object already exists (e.g. a duplicate extrafield)."""


class _EndOfList(Exception):
    """A 404 that means « no (more) records » on a list endpoint."""


# --------------------------------------------------------------------------- client

def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """Return ``url`` without its ``user:password@`` part, and that (user, password) or None.

    Examples
    --------
    >>> split_userinfo("http://u:p%40ss@crm.example.org:8080/dolibarr")
    ('http://crm.example.org:8080/dolibarr', ('u', 'p@ss'))
    """
    parts = urlsplit(url.strip())
    if parts.username is None and parts.password is None:
        return url.strip(), None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, (unquote(parts.username or ""), unquote(parts.password or ""))


def normalize_base_url(url: str) -> str:
    """Return the API root ``…/api/index.php`` from a Dolibarr URL (with or without it), without userinfo."""
    url = split_userinfo(url)[0].rstrip("/")
    if not re.match(r"^https?://", url):
        raise ConfigError(f"URL Dolibarr invalide « {url} » : elle doit commencer par http:// ou https://.")
    if url.endswith(API_PATH):
        return url
    if url.endswith("/api"):
        return url + "/index.php"
    return url + API_PATH


def _restler_message(response: requests.Response) -> str | None:
    """Return the ``error.message`` of a Restler JSON error body, or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    return None


_DETERMINISTIC = ("sqlfilters", "unknown column", "bad syntax", "dolcrypt", "bad value for the api key",
                  "duplicate entry", "you have an error in your sql syntax")


def _classify(response: requests.Response) -> bool | float | None:
    """Retry 429 and transient 5xx; Dolibarr's own deterministic errors (and 501) are final."""
    status = response.status_code
    if status == 429:
        wait = wait_from_headers(response)
        return True if wait is None else wait
    if status < 500 or status == 501:
        return None
    message = (_restler_message(response) or "").lower()
    if any(marker in message for marker in _DETERMINISTIC):
        return None
    return True


def _write_classify(response: requests.Response) -> bool | float | None:
    """Retry a write only on 429 and gateway errors: a Dolibarr 500 is final."""
    if response.status_code == 429:
        wait = wait_from_headers(response)
        return True if wait is None else wait
    return True if response.status_code in (502, 503, 504) and _restler_message(response) is None else None


class DolibarrClient:
    """A client of the Dolibarr REST API (reads; writes only through :meth:`write`).

    Parameters
    ----------
    base_url : str
        Dolibarr URL (``https://crm.example.org`` or ``…/api/index.php``).
    api_key : str
        The API key (from the environment: :data:`config.ENV_DOLIBARR_KEY`).
    policy : RetryPolicy, optional
        Retries with back-off on connection errors and 5xx.
    page_size : int
        ``limit`` of each page.
    pagination_data : bool
        Ask Dolibarr ≥ 21 for ``{data, pagination}`` pages (gives a total for the progress bar).
    progress : bool or None
        Show tqdm progress bars (None: only on a terminal).
    timeout : float
        Seconds per request.
    """

    def __init__(self, base_url: str, api_key: str, *, policy: RetryPolicy | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE, pagination_data: bool = False,
                 progress: bool | None = None, timeout: float = 30.0):
        if not api_key:
            raise ConfigError(f"Clé d'API Dolibarr absente : définir la variable d'environnement "
                              f"{config.ENV_DOLIBARR_KEY}.")
        if page_size < 1:
            raise ConfigError("La taille de page (--taille-page) doit être un entier ≥ 1.")
        self.base_url = normalize_base_url(base_url)
        self.policy = policy or RetryPolicy()
        self.page_size = page_size
        self.pagination_data = pagination_data
        self.progress = progress
        self.timeout = timeout
        self._key = api_key
        self.session = make_session({"DOLAPIKEY": api_key, "Accept": "application/json"})
        userinfo = split_userinfo(base_url)[1]
        self._secrets = tuple(v for v in (api_key, *(userinfo or ())) if v)
        if userinfo:  # e.g. a reverse proxy's basic auth: used, never written (URL kept without it)
            self.session.auth = userinfo
        install_redaction(lambda: list(self._secrets))
        self.requests_sent = 0
        self._admin: bool | None = None
        self.unavailable: dict[str, str] = {}

    # -- low level
    def _url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def get(self, path: str, params: dict | None = None, *, resource: str | None = None):
        """GET ``path`` and return the decoded JSON, or raise a French :class:`ServiceError`.

        A 404 on a list endpoint (``resource`` given, message with a detail)
        raises the internal end-of-list signal.
        """
        what = f"Dolibarr GET /{path.lstrip('/')}"
        self.requests_sent += 1
        response = send(self.session, "GET", self._url(path), params=params, policy=self.policy,
                        classify=_classify, timeout=self.timeout, what=what, secrets=self._secrets)
        log.debug("%s %s → %d", what, params or {}, response.status_code)
        return self._interpret(response, what, path, params or {}, resource)

    def _interpret(self, response: requests.Response, what: str, path: str, params: dict,
                   resource: str | None):
        status = response.status_code
        message = _restler_message(response)
        # Restler: "<HTTP reason>: <detail>"; a bare "Not Found" (unknown route) has no detail
        detail = redact((message or "").partition(":")[2].strip(), self._secrets)
        if status == 200:
            try:
                return response.json()
            except ValueError:
                raise ServiceError(f"{what} : réponse non JSON (type « {response.headers.get('Content-Type', '?')} »)."
                                   f" Vérifier l'URL de base : elle doit mener à l'API REST "
                                   f"(…{API_PATH}).") from None
        res = RESOURCES.get(resource or path.strip("/").split("/")[0])
        right = res.right if res else "le droit de lecture correspondant"
        if status == 401:
            raise ServiceError(
                f"{what} : authentification refusée par Dolibarr (HTTP 401 : {detail or 'non autorisé'}). "
                f"Vérifier la clé d'API dans la variable d'environnement {config.ENV_DOLIBARR_KEY} "
                f"(absente, erronée, utilisateur désactivé ou expiré)."
                + (f" Sur Dolibarr ≤ 18, un 401 signale aussi un droit manquant : {right}." if res else ""))
        if status == 403:
            raise self._forbidden(what, res, detail)
        if status == 404 and resource and message and detail:
            raise _EndOfList()
        if status == 404:
            raise ServiceError(f"{what} : introuvable (HTTP 404 : {detail or 'Not Found'}). Vérifier l'URL de base "
                               f"et la version de Dolibarr (20 ou plus récente attendue).")
        if status == 501:
            raise ModuleUnavailable(
                f"{what} : API inconnue de ce Dolibarr (HTTP 501, réponse HTML « API not found »). Vérifier l'URL "
                f"de base et la version de Dolibarr (un module désactivé répond 403, pas 501).")
        low = (message or "").lower()
        if "dolcrypt" in low or "bad value for the api key" in low:
            raise ServiceError(f"{what} : clé d'API refusée (HTTP {status}) : la valeur de "
                               f"{config.ENV_DOLIBARR_KEY} ne doit pas commencer par « dolcrypt: » ; utiliser la clé "
                               f"en clair affichée dans la fiche de l'utilisateur.")
        filter_error = "sqlfilters" in low or ("unknown column" in low and "in 'where'" in low)
        if status in (400, 503) and params.get("sqlfilters") and filter_error:
            raise ServiceError(
                f"{what} : filtre refusé par Dolibarr (HTTP {status} : {detail}). Le filtre envoyé était "
                f"« {params.get('sqlfilters', '')} » ; syntaxe attendue : (t.champ:opérateur:'valeur'), "
                f"par exemple (t.tms:>:'2026-01-01 00:00:00').")
        if status == 503 and ("unknown column" in low or "sql syntax" in low):
            sort = f" ; tri demandé : sortfield={params['sortfield']}" if params.get("sortfield") else ""
            raise ServiceError(
                f"{what} : erreur SQL de Dolibarr (HTTP 503 : {detail}){sort}. La requête nomme une colonne que "
                f"la table de ce point d'accès n'a pas (par exemple t.rowid au lieu de t.id pour l'agenda) : "
                f"ce n'est ni une panne ni un droit manquant, la requête est à corriger.")
        if status >= 500:
            raise ServiceError(f"{what} : Dolibarr indisponible (HTTP {status}{' : ' + detail if detail else ''}) "
                               f"après {self.policy.retries + 1} tentative(s). Réessayer plus tard.")
        raise ServiceError(f"{what} : requête refusée (HTTP {status}{' : ' + detail if detail else ''}).")

    def write(self, method: str, path: str, body: dict, *, right: str) -> object:
        """Send a POST or PUT with a JSON body and return the decoded answer, or raise a French error.

        Only gateway errors (502–504), 429 and connection errors are retried: a 500 from
        Dolibarr is final (the write was rolled back, and a retry would fail alike).

        Parameters
        ----------
        method, path : str
            ``PUT thirdparties/7``, ``POST setup/extrafields/societe/gar_maj``…
        body : dict
            Sent as JSON (numbers as JSON numbers).
        right : str
            The write right named when Dolibarr answers 403.
        """
        what = f"Dolibarr {method} /{path.lstrip('/')}"
        self.requests_sent += 1
        response = send(self.session, method, self._url(path), json=body, policy=self.policy,
                        classify=_write_classify, timeout=self.timeout, what=what, secrets=self._secrets)
        log.debug("%s → %d", what, response.status_code)
        status = response.status_code
        message = _restler_message(response) or ""
        detail = redact(message.partition(":")[2].strip(), self._secrets)
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                raise ServiceError(f"{what} : réponse non JSON (HTTP {status}).") from None
        if status == 401:
            raise ServiceError(f"{what} : authentification refusée (HTTP 401 : {detail or 'non autorisé'}). "
                               f"Vérifier la clé d'API ({config.ENV_DOLIBARR_KEY}).")
        if status == 403:
            raise RightMissing(f"{what} : écriture refusée (HTTP 403{' : ' + detail if detail else ''}). Droit "
                               f"nécessaire : {right}. Rien n'a été écrit.")
        if status == 409:
            raise Conflict(f"{what} : existe déjà (HTTP 409 : {detail}).")
        if status == 500 and not detail:
            raise ServiceError(
                f"{what} : Dolibarr a refusé la valeur (HTTP 500 sans détail ; rien n'a été écrit). Cause connue : "
                f"une valeur d'un autre type que l'extrafield (texte dans un entier, par exemple) ; vérifier le "
                f"type des extrafields dans Configuration → Modules → Tiers → Attributs supplémentaires.")
        raise ServiceError(f"{what} : requête refusée (HTTP {status}{' : ' + detail if detail else ''}). "
                           f"Rien n'a été écrit.")

    def _forbidden(self, what: str, res: Resource | None, detail: str) -> ServiceError:
        """Tell a disabled module from a missing right on a 403 (Dolibarr answers both alike)."""
        right = res.right if res else "le droit correspondant"
        module = f"« {res.module} »" if res else "correspondant"
        grant = ("Demander à l'administrateur Dolibarr de l'ajouter (Utilisateurs & Groupes → fiche de "
                 "l'utilisateur → Permissions).")
        if detail:  # a detailed 403 names the failed check: a right
            return RightMissing(f"{what} : accès refusé (HTTP 403 : {detail}). Droit nécessaire : {right}. {grant}")
        if res is not None and self.is_admin():
            return ModuleUnavailable(
                f"{what} : accès refusé (HTTP 403) à une clé d'administrateur : le module {module} est désactivé "
                f"sur ce Dolibarr (Configuration → Modules/Applications pour l'activer).")
        return RightMissing(
            f"{what} : accès refusé (HTTP 403). Droit nécessaire : {right} ; ou bien le module {module} est "
            f"désactivé (Dolibarr répond de même dans les deux cas). {grant}")

    def is_admin(self) -> bool:
        """Return True when the key's user is a Dolibarr administrator.

        Asked once with ``GET /setup/extrafields?elementtype=thirdparty``: 200 for an
        admin, 403 « Only an admin user… » otherwise (recorded exchanges).
        """
        if self._admin is None:
            what = "Dolibarr GET /setup/extrafields"
            self.requests_sent += 1
            response = send(self.session, "GET", self._url("setup/extrafields"), params={"elementtype": "thirdparty"},
                            policy=self.policy, classify=_classify, timeout=self.timeout, what=what,
                            secrets=self._secrets)
            self._admin = response.status_code == 200
            log.debug("%s → %d : clé %sadministrateur", what, response.status_code, "" if self._admin else "non ")
        return self._admin

    # -- lists
    def iter_list(self, resource: str, params: dict | None = None, *, page_size: int | None = None,
                  bar=None) -> Iterator[dict]:
        """Yield every record of a list endpoint, page by page.

        Stops on a 404 (third parties, contacts), on an empty page (contracts,
        projects, categories, agenda), on a page shorter than ``limit`` (Dolibarr
        reads ``limit + 1`` rows: a short page is the last) or, with the ≥ 21
        wrapper, after the last page. Sorted by the endpoint's own key
        (``t.rowid``; ``t.id`` for the agenda, which has no ``t.rowid``).
        """
        limit = page_size or self.page_size
        sortfield = RESOURCES[resource].sortfield if resource in RESOURCES else "t.rowid"
        page = 0
        while True:
            query = {**(params or {}), "sortfield": sortfield, "sortorder": "ASC", "limit": limit, "page": page}
            if self.pagination_data:
                query["pagination_data"] = "true"
            try:
                body = self.get(resource, query, resource=resource)
            except _EndOfList:
                return
            page_count = None
            if isinstance(body, dict) and "data" in body:
                info = body.get("pagination") or {}
                page_count = _int(info.get("page_count"))
                if bar is not None and _int(info.get("total")) is not None and bar.total is None:
                    bar.total = _int(info.get("total"))
                    bar.refresh()
                body = body.get("data") or []
            if not isinstance(body, list):
                raise ServiceError(f"Dolibarr GET /{resource} : une liste était attendue, "
                                   f"« {type(body).__name__} » reçu.")
            if not body:
                return
            for item in body:
                yield item
            if bar is not None:
                bar.update(len(body))
            page += 1
            if page_count is not None and page >= page_count:
                return
            if page_count is None and len(body) < limit:
                return

    def list_all(self, resource: str, params: dict | None = None, *, page_size: int | None = None,
                 optional: bool = False) -> list[dict]:
        """Return every record of ``resource`` (with a progress bar).

        Parameters
        ----------
        resource : str
            ``thirdparties``, ``contacts``, ``contracts``, ``projects``, ``categories``, ``agendaevents``.
        params : dict, optional
            Extra query parameters (``sqlfilters``, ``type``, ``includeroles``…).
        page_size : int, optional
            Overrides the client's page size.
        optional : bool
            When the module is disabled or the right missing (HTTP 403, 501), warn and return ``[]``
            instead of raising.
        """
        from tqdm.auto import tqdm

        label = RESOURCES[resource].label if resource in RESOURCES else resource
        with tqdm(desc=f"Dolibarr : {label}", unit=" fiches", disable=self._bar_disabled(), leave=False,
                  file=sys.stderr) as bar:
            try:
                return list(self.iter_list(resource, params, page_size=page_size, bar=bar))
            except (ModuleUnavailable, RightMissing) as exc:
                if not optional:
                    raise
                log.warning("%s Les %s ne sont pas récupérés (fichier vide).", exc, label.lower())
                self.unavailable[resource] = str(exc)
                return []

    def _bar_disabled(self) -> bool | None:
        if self.progress is None:
            return None
        return not self.progress

    def status(self) -> dict:
        """Return ``GET /status`` (Dolibarr version, PHP time zone outside production mode); checks the key."""
        body = self.get("status")
        return body.get("success", {}) if isinstance(body, dict) else {}

    def server_timezone(self, status: dict | None = None) -> str | None:
        """Return the server's PHP time zone (``timestamp_php_tz`` of ``/status``), or None in production mode."""
        status = self.status() if status is None else status
        tz = _str(status.get("timestamp_php_tz"))
        return tz or None

    def category_objects(self, category: dict) -> list[dict]:
        """Return the third parties of a customer or supplier category ([] if none)."""
        kind = {"2": "customer", "1": "supplier"}.get(str(category.get("type")))
        if kind is None:
            return []
        try:
            body = self.get(f"categories/{category['id']}/objects", {"type": kind}, resource="categories")
        except _EndOfList:
            return []
        if isinstance(body, dict) and "data" in body:
            body = body["data"]
        return body if isinstance(body, list) else []

    def state_code(self, state_id: str) -> str:
        """Return the département code of a Dolibarr state id (``GET /setup/dictionary/states/{id}``)."""
        try:
            body = self.get(f"setup/dictionary/states/{state_id}")
        except ServiceError as exc:
            log.warning("%s Code du département %s non résolu.", exc, state_id)
            return ""
        code = _str(body.get("code_departement") or body.get("code")) if isinstance(body, dict) else ""
        return normalize_departement(code) or ""

    def contract_lines(self, contract_id: str) -> list[dict]:
        """Return the lines of a contract (when the list did not include them)."""
        try:
            body = self.get(f"contracts/{contract_id}/lines", resource="contracts")
        except _EndOfList:
            return []
        return body if isinstance(body, list) else []


# --------------------------------------------------------------------------- pull

@dataclass
class CrmPull:
    """Raw records pulled from Dolibarr (decoded JSON)."""

    thirdparties: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    contracts: list[dict] = field(default_factory=list)
    projects: list[dict] = field(default_factory=list)
    categories: list[dict] = field(default_factory=list)
    category_members: dict[str, list[str]] = field(default_factory=dict)  # thirdparty id → labels
    events: list[dict] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)  # state_id → code département (dictionary)
    version: str = ""
    since: str | None = None
    timezone: str | None = None  # the server's PHP time zone from /status (None in production mode)
    unavailable: dict[str, str] = field(default_factory=dict)  # optional resource → why it was not read


def since_filter(since: str) -> str:
    """Return the ``sqlfilters`` value selecting records modified after ``since``.

    Examples
    --------
    >>> since_filter("2026-11-01")
    "(t.tms:>:'2026-11-01 00:00:00')"
    """
    text = since.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    else:
        raise ConfigError(f"Date --depuis « {since} » illisible : AAAA-MM-JJ ou « AAAA-MM-JJ HH:MM:SS » attendu.")
    return f"(t.tms:>:'{moment:%Y-%m-%d %H:%M:%S}')"


def pull(client: DolibarrClient, *, since: str | None = None, actions: bool = True,
         status: dict | None = None) -> CrmPull:
    """Pull everything the CRM files need from Dolibarr.

    Parameters
    ----------
    client : DolibarrClient
        A configured client.
    since : str, optional
        Only records modified after this date (``t.tms``). Categories and contracts are always
        pulled in full: closing a contract or adding a line does not change the contract's ``tms``.
    actions : bool
        Also pull agenda events (support actions).
    status : dict, optional
        The answer of ``GET /status`` when already asked.

    Returns
    -------
    CrmPull
        The raw records.
    """
    out = CrmPull(since=since)
    status = client.status() if status is None else status
    out.version = str(status.get("dolibarr_version", ""))
    out.timezone = client.server_timezone(status)
    log.info("Dolibarr %s : récupération%s.", out.version or "(version inconnue)",
             f" des fiches modifiées depuis {since}" if since else " complète")
    extra = {"sqlfilters": since_filter(since)} if since else {}
    out.thirdparties = client.list_all("thirdparties", extra)
    out.categories = client.list_all("categories", optional=True)
    for cat in out.categories:
        for obj in client.category_objects(cat):
            out.category_members.setdefault(str(obj.get("id")), []).append(str(cat.get("label") or ""))
    # a département's INSEE code, when no extrafield gives it, comes from its state (dictionary of states)
    for tp in out.thirdparties:
        state = _str(tp.get("state_id"))
        kind, _ = actor_type(tp, out.category_members.get(_str(tp.get("id")), []))
        if kind == "departement" and state and state not in out.states and not actor_code(tp, kind, {}):
            out.states[state] = client.state_code(state)
    out.contacts = client.list_all("contacts", {**extra, "includeroles": 1})
    out.projects = client.list_all("projects", extra, optional=True)
    out.contracts = client.list_all("contracts")  # in full: tms misses closings and new lines
    for contract in out.contracts:
        if contract.get("lines") is None:
            contract["lines"] = client.contract_lines(str(contract.get("id")))
    if actions:
        out.events = client.list_all("agendaevents", extra, optional=True)
    out.unavailable = dict(client.unavailable)
    log.info("Dolibarr : %d tiers, %d contacts, %d contrats, %d projets, %d catégories, %d événements "
             "(%d requêtes).", len(out.thirdparties), len(out.contacts), len(out.contracts), len(out.projects),
             len(out.categories), len(out.events), client.requests_sent)
    return out


# --------------------------------------------------------------------------- mapping helpers

def _int(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _str(value) -> str:
    return "" if value is None else str(value).strip()


def options(obj: dict) -> dict:
    """Return the extrafields of a record (``array_options`` is an object or ``[]``)."""
    value = obj.get("array_options")
    return value if isinstance(value, dict) else {}


def to_date(value, tz: ZoneInfo | timezone = timezone.utc) -> str | None:
    """Convert a Dolibarr date (Unix seconds, numeric string, ``null``, ``""``, ISO text) to ``YYYY-MM-DD``.

    Examples
    --------
    >>> to_date(1788220800), to_date("1788220800"), to_date(""), to_date(None), to_date("2026-09-01 10:00:00")
    ('2026-09-01', '2026-09-01', None, None, '2026-09-01')
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text in ("", "0", "null"):
        return None
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), tz).date().isoformat()
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return text[:10]
    return None


def uai_of(tp: dict) -> str:
    """Return a third party's UAI: extrafield ``options_uai``, else ``idprof6``."""
    for value in (options(tp).get("options_uai"), tp.get("idprof6")):
        text = _str(value).upper()
        if text:
            return text
    return ""


_ETAB_START = re.compile(r"^(lycee|college|ecole|erea|etablissement|groupe scolaire|cite scolaire|lp|lgt|clg)\b")
_TYPE_RULES = (
    ("ent", re.compile(r"\b(ent|ents|espace numerique de travail|environnement numerique de travail)\b")),
    ("academie", re.compile(r"\b(academie|academies|academique|rectorat|drane|dane)\b")),
    ("region", re.compile(r"\b(region|regions|regional|collectivite territoriale)\b")),
    ("departement", re.compile(r"\b(departement|departements|departemental|conseil general)\b")),
    ("commune", re.compile(r"\b(commune|communes|mairie|mairies|ville|villes|municipalite)\b")),
    ("etablissement", re.compile(r"\b(lycee|lycees|college|colleges|ecole|ecoles|etablissement|etablissements|"
                                 r"erea|scolaire)\b")),
    ("editeur", re.compile(r"\b(editeur|editeurs|edition|editions|publisher|distributeur|distributeurs)\b")),
)
_TYPE_SYNONYMS = {"collectivite region": "region", "conseil regional": "region", "conseil departemental": "departement",
                  "ecole": "etablissement", "college": "etablissement", "lycee": "etablissement",
                  "fournisseur ent": "ent", "editeur ent": "ent"}


def classify_text(text: str) -> str | None:
    """Return the actor type a label suggests (category, third-party type or name), or None.

    Examples
    --------
    >>> [classify_text(t) for t in ["Lycées", "Éditeurs scolaires", "Région académique", "Mairie de Lyon", "Nathan"]]
    ['etablissement', 'editeur', 'academie', 'commune', None]
    """
    s = slug(text)
    if not s:
        return None
    if s in TYPES_ACTEUR:
        return s
    if s in _TYPE_SYNONYMS:
        return _TYPE_SYNONYMS[s]
    if _ETAB_START.match(s):
        return "etablissement"
    for kind, pattern in _TYPE_RULES:
        if pattern.search(s):
            return kind
    return None


def actor_type(tp: dict, categories: list[str] = ()) -> tuple[str | None, str]:
    """Return (type, source of the decision) for a third party.

    Order: extrafield ``options_type_acteur`` → categories → third-party type
    (``typent_code``, when not a generic ``TE_*`` code) → name → UAI present
    (école, collège, lycée) → supplier flag (publisher).
    """
    opts = options(tp)
    for key in ("options_type_acteur", "options_typeacteur", "options_type"):
        found = classify_text(_str(opts.get(key)))
        if found:
            return found, "extrafield"
    for label in categories:
        found = classify_text(label)
        if found:
            return found, "catégorie"
    typent = _str(tp.get("typent_code"))
    generic = {"TE_STARTUP", "TE_GROUP", "TE_MEDIUM", "TE_SMALL", "TE_ADMIN", "TE_WHOLE", "TE_RETAIL",
               "TE_PRIVATE", "TE_OTHER", "TE_UNKNOWN"}
    if typent and typent.upper() not in generic:
        found = classify_text(typent.removeprefix("TE_"))
        if found:
            return found, "type de tiers"
    found = classify_text(_str(tp.get("name")))
    if found:
        return found, "nom"
    if uai_of(tp):
        return "etablissement", "UAI"
    if _str(tp.get("fournisseur")) == "1":
        return "editeur", "fournisseur"
    return None, ""


def actor_code(tp: dict, kind: str, states: dict[str, str] | None = None) -> str:
    """Return the official code of an actor.

    UAI for a school; else an extrafield code (``code_officiel``, ``code_insee``,
    ``code_academie``, ``code``); else, for a département, the code of its state
    (``states``: state id → code); else the SIREN (``idprof1``) of a publisher or
    ENT vendor; else empty.
    """
    opts = options(tp)
    if kind == "etablissement" and uai_of(tp):
        return uai_of(tp)
    for key in ("options_code_officiel", "options_code_insee", "options_code_academie", "options_code"):
        if _str(opts.get(key)):
            return _str(opts.get(key))
    if kind == "departement" and states is not None:
        return states.get(_str(tp.get("state_id")), "")
    if kind in ("editeur", "ent"):
        return _str(tp.get("idprof1"))
    return ""


_ROLE_RULES = (
    ("referent_gar", re.compile(r"\b(referent|referente|ref) gar\b|\bgar\b")),
    ("drane", re.compile(r"\b(drane|dane|delegue[e]? (region(al)?e? )?academique au numerique|"
                         r"delegation (region(al)?e? )?academique au numerique)\b")),
    ("referent_numerique", re.compile(r"\b(referent|referente) (numerique|aux usages du numerique)\b|\b(rupn|ern|ernum)\b")),
    ("chef_etablissement", re.compile(r"\b(proviseur|proviseure|principal|principale|chef d etablissement|"
                                      r"cheffe d etablissement|directeur|directrice)\b")),
    ("professeur_documentaliste", re.compile(r"\bdocumentaliste\b")),
)
_ROLE_PRIORITY = ("referent_gar", "drane", "referent_numerique")


def role_of(contact: dict) -> str:
    """Return the role of a contact: extrafield, Dolibarr contact roles, then job title (``poste``).

    Examples
    --------
    >>> role_of({"poste": "Référente GAR"}), role_of({"poste": "Proviseure"}), role_of({})
    ('referent_gar', 'chef_etablissement', 'contact')
    """
    candidates: list[str] = []
    opts = options(contact)
    for key in ("options_role", "options_role_gar"):
        if _str(opts.get(key)):
            candidates.append(_str(opts.get(key)))
    roles = contact.get("roles") or []
    if isinstance(roles, dict):  # includeroles=1: an object keyed by link id (recorded)
        roles = list(roles.values())
    for role in roles:
        if isinstance(role, dict):
            candidates += [_str(role.get("label")), _str(role.get("code"))]
        elif role:
            candidates.append(_str(role))
    candidates.append(_str(contact.get("poste")))
    mapped = []
    for text in candidates:
        s = slug(text)
        if not s:
            continue
        for role, pattern in _ROLE_RULES:
            if pattern.search(s):
                mapped.append(role)
                break
        else:
            mapped.append(s.replace(" ", "_"))
    for role in _ROLE_PRIORITY:
        if role in mapped:
            return role
    return mapped[0] if mapped else "contact"


_OBJET_RULES = (
    ("convention_gar", re.compile(r"\bconvention\b.*\bgar\b|\bgar\b.*\bconvention\b")),
    ("convention_ent", re.compile(r"\bconvention\b.*\bent\b|\bent\b.*\bconvention\b")),
    ("licence", re.compile(r"\b(licence|licences|license|manuel|manuels|ressource|ressources)\b")),
    ("abonnement", re.compile(r"\b(abonnement|abonnements)\b")),
    ("convention", re.compile(r"\bconvention\b")),
)


def contract_state(contract: dict) -> str | None:
    """Return the contract's state (``en_attente``, ``signe``, ``clos``) from its status and lines.

    Dolibarr 20 never sets the contract status to 2: closing a contract (or all
    its services) sets its *lines* to 5 and leaves the contract at 1. A
    validated contract with a closed line and no running line is ``clos``
    (never-activated lines, status 0, do not keep it open).

    Examples
    --------
    >>> contract_state({"statut": "1", "lines": [{"statut": "5"}, {"statut": "0"}]})
    'clos'
    >>> contract_state({"statut": "1", "lines": [{"statut": "5"}, {"statut": "4"}]})
    'signe'
    """
    status = _str(contract.get("statut") if contract.get("statut") is not None else contract.get("status"))
    state = CONTRACT_STATUS.get(status)
    if state == "signe":
        lines = [_str(ln.get("statut") if ln.get("statut") is not None else ln.get("status"))
                 for ln in contract.get("lines") or []]
        if LINE_CLOSED in lines and LINE_RUNNING not in lines:
            return "clos"
    return state


def contract_objet(contract: dict, project_title: str = "") -> str:
    """Return the object of a contract (``convention_gar``, ``convention_ent``, ``licence``…).

    Read from the extrafield ``options_objet`` when set, else from the customer
    reference, public note, lines and project title; ``autre`` when nothing matches.
    """
    opts = options(contract)
    for key in ("options_objet", "options_type_contrat"):
        if _str(opts.get(key)):
            return slug(opts[key]).replace(" ", "_")
    texts = [_str(contract.get("ref_customer")), _str(contract.get("note_public"))]
    for line in contract.get("lines") or []:
        texts += [_str(line.get("desc") or line.get("description")), _str(line.get("product_label")),
                  _str(line.get("label"))]
    texts.append(project_title)
    s = slug(" ".join(t for t in texts if t))
    for objet, pattern in _OBJET_RULES:
        if pattern.search(s):
            return objet
    return "autre"


def _event_type(event: dict) -> str | None:
    opts = options(event)
    texts = [_str(opts.get("options_type_action")), _str(event.get("type_code")), _str(event.get("code")),
             _str(event.get("type_label")), _str(event.get("label"))]
    for text in texts:
        s = slug(text)
        if s in TYPES_ACTION:
            return s
        if re.search(r"\b(formation|formations|atelier de formation)\b", s):
            return "formation"
        if re.search(r"\b(webinaire|webinaires|webinar|visioconference)\b", s):
            return "webinaire"
        if re.search(r"\b(accompagnement|visite|rendez vous|rdv|ac rdv)\b", s):
            return "accompagnement"
    return None


# --------------------------------------------------------------------------- frames

def to_frames(raw: CrmPull, *, tz: str = "UTC", known_uai: dict[str, str] | None = None,
              today: str | None = None) -> dict[str, pd.DataFrame]:
    """Map pulled records to the contract's CRM frames.

    Parameters
    ----------
    raw : CrmPull
        Records from :func:`pull`.
    tz : str
        Time zone of the Dolibarr server (dates are Unix seconds in it).
    known_uai : dict, optional
        ``id_acteur → UAI`` of schools already known (incremental pulls).
    today : str, optional
        ``YYYY-MM-DD``; events after it are planned, not done (default: today).

    Returns
    -------
    dict
        ``crm/acteurs``, ``crm/contrats``, ``crm/contacts``, ``crm/actions`` frames, plus
        ``"_skipped"``: a frame ``objet, id, motif`` of what could not be mapped.
    """
    zone = _zone(tz)
    today = today or datetime.now(zone).date().isoformat()
    skipped: list[dict] = []

    acteurs, uai_by_actor = [], dict(known_uai or {})
    for tp in raw.thirdparties:
        tid = _str(tp.get("id"))
        kind, source = actor_type(tp, raw.category_members.get(tid, []))
        if kind is None:
            skipped.append({"objet": "tiers", "id": tid, "motif": "type d'acteur indéterminé (ajouter une catégorie "
                            "ou l'extrafield type_acteur)"})
            continue
        code = actor_code(tp, kind, raw.states)
        acteurs.append({"id_acteur": tid, "type": kind, "nom": _str(tp.get("name")) or f"Tiers {tid}",
                        "code": code, "source_type": source})
        if kind == "etablissement" and code:
            uai_by_actor[tid] = code

    projects = {_str(p.get("id")): p for p in raw.projects}
    contrats = []
    for c in raw.contracts:
        cid, socid = _str(c.get("id")), _str(c.get("socid") or c.get("fk_soc"))
        if not socid:
            skipped.append({"objet": "contrat", "id": cid, "motif": "contrat sans tiers"})
            continue
        statut = contract_state(c)
        if statut is None:
            status = _str(c.get("statut") if c.get("statut") is not None else c.get("status"))
            skipped.append({"objet": "contrat", "id": cid, "motif": f"statut Dolibarr inconnu « {status} »"})
            continue
        lines = c.get("lines") or []
        starts = [d for d in (to_date(ln.get("date_start_real"), zone) or to_date(ln.get("date_start"), zone)
                              for ln in lines) if d]
        planned = [d for d in (to_date(ln.get("date_end"), zone) for ln in lines) if d]
        closed = [d for d in (to_date(ln.get("date_end_real"), zone) for ln in lines) if d]
        # the end is the day the lines were closed for a closed contract, else the planned end
        ends = closed if statut == "clos" and closed else planned
        project = projects.get(_str(c.get("fk_project") or c.get("fk_projet")), {})
        amount = sum(float(ln.get("total_ht") or 0) for ln in lines)
        contrats.append({
            "id_contrat": cid, "id_acteur": socid,
            "objet": contract_objet(c, _str(project.get("title"))),
            "date_signature": to_date(c.get("date_contrat"), zone) if statut != "en_attente" else None,
            "date_debut": min(starts) if starts else None, "date_fin": max(ends) if ends else None,
            "date_fin_prevue": max(planned) if planned else None, "statut": statut, "ref": _str(c.get("ref")), "projet": _str(project.get("title")),
            "nb_lignes": len(lines), "montant_ht": round(amount, 2)})

    contacts = []
    for ct in raw.contacts:
        cid, socid = _str(ct.get("id")), _str(ct.get("socid") or ct.get("fk_soc"))
        if not socid:
            skipped.append({"objet": "contact", "id": cid, "motif": "contact rattaché à aucun tiers"})
            continue
        contacts.append({"id_contact": cid, "id_acteur": socid, "role": role_of(ct)})

    actions = []
    for ev in raw.events:
        eid = _str(ev.get("id"))
        if _str(ev.get("type_code")) == "AC_OTH_AUTO":
            skipped.append({"objet": "événement", "id": eid, "motif": "événement créé automatiquement par Dolibarr "
                            "(création, modification, suppression d'une fiche)"})
            continue
        kind = _event_type(ev)
        date = to_date(ev.get("datep"), zone)
        uai = uai_by_actor.get(_str(ev.get("socid") or ev.get("fk_soc")), "")
        percent = _int(ev.get("percentage"))
        if kind is None or not date or not uai:
            skipped.append({"objet": "événement", "id": eid,
                            "motif": "pas une action d'accompagnement dans un établissement (type, date ou UAI)"})
            continue
        if date > today or (percent is not None and 0 <= percent < 100):
            skipped.append({"objet": "événement", "id": eid, "motif": "action prévue, pas encore réalisée"})
            continue
        actions.append({"date": date, "uai": uai, "type_action": kind})

    frames = {
        "crm/acteurs": _frame(acteurs, ["id_acteur", "type", "nom", "code", "source_type"]),
        "crm/contrats": _frame(contrats, ["id_contrat", "id_acteur", "objet", "date_signature", "date_debut",
                                          "date_fin", "statut", "date_fin_prevue", "ref", "projet", "nb_lignes",
                                          "montant_ht"]),
        "crm/contacts": _frame(contacts, ["id_contact", "id_acteur", "role"]),
        "crm/actions": _frame(actions, ["date", "uai", "type_action"]).drop_duplicates(ignore_index=True),
        "_skipped": _frame(skipped, ["objet", "id", "motif"]),
    }
    return frames


def _zone(tz: str):
    if tz.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"Fuseau horaire inconnu « {tz} » (exemples : UTC, Europe/Paris).") from None


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- writing

def _key_str(df: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    parts = [df[k].astype("string").fillna("") if not pd.api.types.is_datetime64_any_dtype(df[k])
             else df[k].dt.strftime("%Y-%m-%d").fillna("") for k in key]
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out


def write_crm(frames: dict[str, pd.DataFrame], out_dir: str | Path, *, merge: bool = False) -> dict[str, Path]:
    """Write the CRM frames as contract files (atomic), merging with existing files if asked.

    With ``merge`` (incremental pull), rows of the existing file whose key is
    not in the new pull are kept; pulled rows replace those with the same key.
    Records deleted in Dolibarr are only dropped by a full pull.
    """
    out_dir = Path(out_dir)
    written = {}
    for name in ("crm/acteurs", "crm/contrats", "crm/contacts", "crm/actions"):
        df = frames[name].copy()
        fs = CONTRACT[name]
        if merge and (out_dir / fs.path).exists():
            old = read_contract_file(out_dir, name).reset_index(drop=True)
            for col in fs.columns:
                if col.kind == "date":
                    old[col.name] = old[col.name].dt.strftime("%Y-%m-%d")
            old = old.astype(object).where(old.notna(), None)
            keep = ~_key_str(old, fs.key).isin(set(_key_str(df, fs.key)))
            df = pd.concat([old[keep], df], ignore_index=True)
        df = df.sort_values(list(fs.key), key=lambda s: s.map(_sort_key), ignore_index=True)
        written[name] = write_contract_file(df, out_dir, name)
    return written


def _sort_key(value):
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def category_drift(raw: CrmPull, out_dir: Path) -> list[str]:
    """Return the ids of third parties an incremental pull did not re-read whose categories now give another type.

    A category-only change leaves the third party's ``tms`` alone, so ``--since``
    does not re-read it; categories are always read in full, which shows the drift.
    """
    path = out_dir / CONTRACT["crm/acteurs"].path
    if not path.exists():
        return []
    old = read_contract_file(out_dir, "crm/acteurs")
    pulled = {_str(tp.get("id")) for tp in raw.thirdparties}
    source = old["source_type"] if "source_type" in old.columns else pd.Series("", index=old.index)
    drift = []
    for id_acteur, kind, src in zip(old["id_acteur"].astype(str), old["type"].astype(str), source.fillna("")):
        if id_acteur in pulled or src == "extrafield":
            continue
        by_category = next((k for k in (classify_text(label) for label in raw.category_members.get(id_acteur, []))
                            if k), None)
        if (by_category and by_category != kind) or (src == "catégorie" and by_category is None):
            drift.append(id_acteur)
    return drift


def existing_uai(out_dir: Path) -> dict[str, str]:
    """Return ``id_acteur → UAI`` of the schools of an existing ``crm/acteurs.csv`` ({} if absent)."""
    if not (out_dir / CONTRACT["crm/acteurs"].path).exists():
        return {}
    df = read_contract_file(out_dir, "crm/acteurs")
    df = df[(df["type"] == "etablissement") & df["code"].notna()]
    return dict(zip(df["id_acteur"].astype(str), df["code"].astype(str)))


# --------------------------------------------------------------------------- safeguards

#: A full pull that brings back less than this share of a file's previous rows is refused without --force.
SHRINK_LIMIT = 0.5
_FILE_RIGHTS = {"crm/acteurs": "thirdparties", "crm/contacts": "contacts", "crm/contrats": "contracts",
                "crm/actions": "agendaevents"}


def shrinkage(frames: dict[str, pd.DataFrame], out_dir: Path, *, limit: float = SHRINK_LIMIT) -> list[str]:
    """Return a French line per CRM file a new pull would shrink below ``limit`` of its rows (or empty).

    Parameters
    ----------
    frames : dict
        The new frames (:func:`to_frames`).
    out_dir : Path
        The data directory holding the previous files.
    limit : float
        Smallest accepted ratio new rows / previous rows.
    """
    problems = []
    for name, resource in _FILE_RIGHTS.items():
        path = out_dir / CONTRACT[name].path
        if name not in frames or not path.exists():
            continue
        before = len(read_contract_file(out_dir, name))
        after = len(frames[name])
        if before and (after == 0 or after < limit * before):
            problems.append(f"{path.name} : {after} ligne(s) au lieu de {before}")
    return problems


def _shrink_message(problems: list[str], out_dir: Path) -> str:
    rights = "; ".join([RIGHT_READ_ALL, RESOURCES["contacts"].right, RESOURCES["contracts"].right,
                        RESOURCES["agendaevents"].right])
    return (f"récupération refusée : elle viderait ou réduirait fortement des fichiers existants de {out_dir} "
            f"({' ; '.join(problems)}). Fichiers existants conservés. Cause la plus probable : un droit manquant "
            f"à l'utilisateur de la clé d'API, Dolibarr restreignant alors les listes sans le dire — d'abord "
            f"{RIGHT_READ_ALL}. Droits de lecture attendus : {rights}. Si la baisse est réelle (fiches "
            f"supprimées), relancer avec --force.")


def save(frames: dict[str, pd.DataFrame], out_dir: str | Path, *, merge: bool = False,
         force: bool = False) -> dict[str, Path]:
    """Write the CRM frames unless a full pull would empty or shrink good files (see :func:`shrinkage`).

    Raises
    ------
    ServiceError
        When a file would lose more than half its rows and ``force`` is not set; nothing is written.
    """
    out_dir = Path(out_dir)
    if not merge and not force:
        problems = shrinkage(frames, out_dir)
        if problems:
            raise ServiceError(_shrink_message(problems, out_dir))
    return write_crm(frames, out_dir, merge=merge)


def summarize_skipped(skipped: pd.DataFrame) -> list[str]:
    """Log what was not mapped: one WARNING line per cause with a count, each record at DEBUG.

    Returns the French summary lines.
    """
    lines = []
    for row in skipped.itertuples():
        log.debug("Dolibarr : %s %s non repris : %s.", row.objet, row.id, row.motif)
    if skipped.empty:
        return lines
    counts = skipped.groupby(["objet", "motif"], sort=False).size()
    for (objet, motif), n in counts.items():
        line = f"Dolibarr : {n} {objet}(s) non repris : {motif} (détail avec -v)."
        automatic = motif.startswith("événement créé automatiquement")
        log.log(logging.INFO if automatic else logging.WARNING, "%s", line)
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- command line

def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``crm pull``, ``crm push`` and their options."""
    sub = parser.add_subparsers(dest="crm_command", required=True, metavar="ACTION")
    p = sub.add_parser("pull", help="Récupérer tiers, contrats, contacts, catégories, projets et actions depuis "
                       "Dolibarr et écrire crm/*.csv.",
                       description="Récupère le CRM Dolibarr (API REST) et écrit les fichiers crm/*.csv du contrat "
                       f"de données. La clé d'API est lue uniquement dans la variable d'environnement "
                       f"{config.ENV_DOLIBARR_KEY}.")
    p.add_argument("--url", default=None, help=f"URL de Dolibarr (sinon variable {config.ENV_DOLIBARR_URL})")
    p.add_argument("--out", type=Path, default=config.RAW_DIR / "dolibarr",
                   help="répertoire de données où écrire crm/*.csv (défaut : data/raw/dolibarr)")
    p.add_argument("--since", "--depuis", dest="since", default=None,
                   help="récupération incrémentale : fiches modifiées depuis AAAA-MM-JJ[ HH:MM:SS], ou « auto » "
                   "(depuis la dernière récupération, moins un jour) ; fusionnée avec les fichiers existants. "
                   "Contrats et catégories sont toujours relus en entier ; voir docs/integrations.md pour ce que "
                   "--since ne voit pas")
    p.add_argument("--full", "--complete", dest="full", action="store_true",
                   help="récupération complète (le défaut sans --since ; à utiliser pour les tâches planifiées)")
    p.add_argument("--force", action="store_true",
                   help="remplacer les fichiers même si la récupération en ramène beaucoup moins de lignes")
    p.add_argument("--page-size", "--taille-page", dest="page_size", type=int, default=DEFAULT_PAGE_SIZE,
                   help=f"fiches par page (défaut {DEFAULT_PAGE_SIZE})")
    p.add_argument("--pagination-data", action="store_true",
                   help="Dolibarr ≥ 21 : demander les pages {data, pagination} (total connu pour la barre de progression)")
    p.add_argument("--tz", "--fuseau", dest="tz", default=None,
                   help="fuseau horaire PHP du serveur Dolibarr (ex. Europe/Paris) ; lu dans /status quand le "
                   "serveur le donne (hors mode production), obligatoire sinon")
    p.add_argument("--no-actions", "--sans-actions", dest="actions", action="store_false",
                   help="ne pas récupérer l'agenda (crm/actions.csv reste inchangé)")
    p.add_argument("--retries", type=int, default=4, help="nouvelles tentatives sur erreur réseau ou 5xx (défaut 4)")
    p.add_argument("--timeout", type=float, default=30.0, help="délai d'attente d'une requête en secondes")
    from . import dolibarr_push

    dolibarr_push.configure_parser(sub)


def _resolve_since(since: str | None, out_dir: Path) -> str | None:
    if since is None or since.lower() != "auto":
        return since
    state = out_dir / STATE_FILE
    if not state.exists():
        log.info("Pas de récupération précédente dans %s : récupération complète.", out_dir)
        return None
    pulled = datetime.fromisoformat(json.loads(state.read_text(encoding="utf-8"))["pulled_at"])
    return f"{pulled - timedelta(days=1):%Y-%m-%d %H:%M:%S}"


def resolve_timezone(server_tz: str | None, option: str | None) -> str:
    """Return the time zone to read dates in: the server's (``/status``), else ``--tz``, else a French error."""
    if server_tz:
        _zone(server_tz)
        if option and _zone(option) != _zone(server_tz):
            log.warning("Dolibarr : le serveur déclare le fuseau %s (/status) ; --tz %s est ignoré.", server_tz,
                        option)
        return server_tz
    if option:
        _zone(option)
        return option
    raise ConfigError("fuseau horaire du serveur Dolibarr inconnu : /status ne le donne pas (mode production, "
                      "API_PRODUCTION_MODE). Passer --tz avec le fuseau PHP du serveur (date.timezone), par exemple "
                      "--tz Europe/Paris ou --tz UTC ; sinon les dates peuvent être décalées d'un jour.")


def credentials(url: str | None = None) -> tuple[str, str]:
    """Return the Dolibarr URL (``--url``, else the environment) and API key (the environment only).

    Raises
    ------
    ConfigError
        Either is missing, with the variable to set.
    """
    url = url or config.secret(config.ENV_DOLIBARR_URL)
    if not url:
        raise ConfigError(f"URL Dolibarr absente : passer --url ou définir la variable d'environnement "
                          f"{config.ENV_DOLIBARR_URL}.")
    key = config.secret(config.ENV_DOLIBARR_KEY)
    if not key:
        raise ConfigError(f"Clé d'API Dolibarr absente : définir la variable d'environnement "
                          f"{config.ENV_DOLIBARR_KEY} (jamais en paramètre).")
    return url, key


def run(args: argparse.Namespace) -> int:
    """Run ``gar-analysis crm pull`` or ``crm push``; return the exit status."""
    command = getattr(args, "crm_command", None)
    if command == "push":
        from . import dolibarr_push

        return dolibarr_push.run(args)
    if command != "pull":
        raise ConfigError("Action inconnue : « crm pull » ou « crm push ».")
    if args.full and args.since:
        raise ConfigError("--full et --since s'excluent : choisir une récupération complète ou incrémentale.")
    url, key = credentials(args.url)
    out_dir = Path(args.out)
    since = _resolve_since(args.since, out_dir)
    client = DolibarrClient(url, key, policy=RetryPolicy(retries=max(0, args.retries)), page_size=args.page_size,
                            pagination_data=args.pagination_data, timeout=args.timeout)
    started = datetime.now(timezone.utc)
    status = client.status()
    tz = resolve_timezone(client.server_timezone(status), args.tz)
    raw = pull(client, since=since, actions=args.actions, status=status)
    frames = to_frames(raw, tz=tz, known_uai=existing_uai(out_dir) if since else None)
    if not args.actions:
        path = out_dir / CONTRACT["crm/actions"].path
        frames["crm/actions"] = (read_contract_file(out_dir, "crm/actions").reset_index(drop=True)
                                 .assign(date=lambda d: d["date"].dt.strftime("%Y-%m-%d"))
                                 if path.exists() else frames["crm/actions"])
    written = save(frames, out_dir, merge=since is not None, force=args.force)
    drift = category_drift(raw, out_dir) if since else []
    if drift:
        log.warning("Dolibarr : %d tiers ont changé de catégorie sans être relus par --since (type non recalculé : "
                    "%s) ; lancer « crm pull --full ».", len(drift), ", ".join(drift[:20]))
    skipped = frames["_skipped"]
    summary = summarize_skipped(skipped)
    state = {"pulled_at": started.isoformat(timespec="seconds"), "since": since, "dolibarr_version": raw.version,
             "host": urlsplit(client.base_url).netloc, "fuseau": tz,
             "non_disponibles": sorted(raw.unavailable),
             "lignes": {name: int(len(frames[name])) for name in written},
             "non_repris": int(len(skipped)), "requetes": client.requests_sent}
    atomic_write_text(out_dir / STATE_FILE, json.dumps(state, ensure_ascii=False, indent=2) + "\n")
    for name, path in written.items():
        print(f"{path} : {len(frames[name])} ligne(s) récupérée(s)")
    if len(skipped):
        print(f"{len(skipped)} fiche(s) non reprise(s), {len(summary)} cause(s) : voir le journal.")
    return 0
