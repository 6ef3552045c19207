"""``gar-analysis share``: post the digest of a batch of reports to Rocket.Chat.

The digest of a run (``reports/<run-id>/index.json``) is a short national
summary followed, for each territory, by its bright spots, the main points to
fix and the link to its report. It is posted through an incoming webhook
(Slack-compatible JSON) or the REST API (``POST /api/v1/chat.postMessage``);
with ``--dry-run``, the default when nothing is configured, the exact payloads
are printed instead.

Safeguards: every sentence is screened before posting; a sentence quoting a
count below :data:`gar_analysis.config.DISCLOSURE_THRESHOLD` or anything that
looks pupil-level (INE, e-mail, birth date) is left out. Long digests are split
across messages of at most :data:`MAX_MESSAGE_CHARS` characters. A rate limit
(HTTP 429, ``error-too-many-requests``) is waited out and the post retried.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from .. import config
from ..errors import ConfigError, DataError
from ..territories import AUDIENCES
from .http import RetryPolicy, ServiceError, install_redaction, make_session, send, wait_from_headers

log = logging.getLogger(__name__)

#: Environment variable: URL of the published ``reports/`` folder (not a secret).
ENV_REPORTS_BASE_URL = "GAR_REPORTS_BASE_URL"
#: Characters per message (texts, titles and fields of the attachments included).
#: Rocket.Chat refuses messages longer than ``Message_MaxAllowedSize`` (5 000 by default);
#: 4 000 leaves room for the server's own additions and for emoji shortcodes.
MAX_MESSAGE_CHARS = 4000
#: Attachments per message (keeps each post readable on a phone).
MAX_ATTACHMENTS = 10
#: Sentences kept per territory and per kind.
MAX_ITEMS = 3
COLOR_OK = "#2e7d32"
COLOR_TODO = "#ef6c00"
COLOR_FAIL = "#9e9e9e"


# --------------------------------------------------------------------------- privacy guard

_PUPIL_LEVEL = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+"                       # e-mail
    r"|\b\d{9}[A-Z]{2}\b|\b\d{10}[A-Z]\b"            # INE (identifiant national élève)
    r"|\bINE\b|identifiant (national )?(de l'|d'|des )?él[èe]ve"
    r"|\bné(e)? le\b|date de naissance"
    r"|\b0[1-9](?:[ .]?\d{2}){4}\b",                  # phone number
    re.IGNORECASE)
# a number (French format: 12 345,6 with spaces or narrow no-break spaces) and what follows it
_NUMBER = re.compile(r"(?<![\w,.])(\d{1,3}(?:[\u202f\u00a0 ]\d{3})+|\d+)(,\d+)?(?![\w-]|[.,]\d)\s*(\S*)")
_NOT_A_COUNT = re.compile(r"^(%|‰|pts?|points?|ans?|années?|mois|jours?|semaines?|h|heures?|min|minutes?|€|k€|"
                          r"m€|euros?|fois|x|×|er|re|e|ème|eme|nde?|°)(?!\w)", re.IGNORECASE)
_DATE_LIKE = re.compile(r"\b\d{4}-\d{2}(-\d{2})?\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{4}-\d{4}\b")
_UAI = re.compile(r"\b\d{7}[A-Z]\b")


def unsafe_reason(sentence: str, threshold: int | None = None) -> str | None:
    """Return why a sentence must not be posted, or None when it is safe.

    A sentence is unsafe when it looks pupil-level (e-mail, INE, birth date,
    phone number) or quotes a whole count below the disclosure threshold
    (percentages, amounts, durations, ordinals, dates and codes are not counts).

    Examples
    --------
    >>> unsafe_reason("3 établissements n'ont aucun accès.", 5)
    'effectif inférieur au seuil de secret statistique (5)'
    >>> unsafe_reason("Taux d'usage de 3,5 % en hausse de 2 points.", 5) is None
    True
    """
    threshold = config.DISCLOSURE_THRESHOLD if threshold is None else threshold
    text = str(sentence)
    if _PUPIL_LEVEL.search(text):
        return "donnée individuelle (élève ou personne)"
    scrubbed = _UAI.sub(" ", _DATE_LIKE.sub(" ", text))
    for match in _NUMBER.finditer(scrubbed):
        whole, decimals, after = match.groups()
        if decimals:
            continue  # a ratio or rate, not a count
        if whole.startswith("0") and len(whole) > 1:
            continue  # a code (« Ain (01) »), not a count
        if _NOT_A_COUNT.match(after or ""):
            continue
        value = int(re.sub(r"\D", "", whole))
        if value < threshold:
            return f"effectif inférieur au seuil de secret statistique ({threshold})"
    return None


def screen(sentences, threshold: int | None = None, *, where: str = "") -> list[str]:
    """Keep the safe sentences; log (without quoting them) those left out."""
    kept = []
    for sentence in sentences or []:
        text = " ".join(str(sentence).split())
        if not text:
            continue
        reason = unsafe_reason(text, threshold)
        if reason:
            log.warning("Phrase non publiée (%s)%s.", reason, f" : {where}" if where else "")
            continue
        kept.append(text)
    return kept


# --------------------------------------------------------------------------- digest

def load_run_index(run_dir: str | Path) -> dict:
    """Read ``index.json`` of a batch run, or raise a French error naming the file."""
    path = Path(run_dir) / "index.json"
    if not path.exists():
        raise ConfigError(f"{path} : index du lot absent. Lancer d'abord « gar-analysis reports » "
                          f"avec ce --run-id, ou vérifier le chemin passé à --run.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError.single(path, f"JSON illisible ({exc.msg}).", line=exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("reports"), list):
        raise DataError.single(path, "clé « reports » (liste des rapports) absente.")
    return data


def report_link(html: str, run_dir: Path, run_id: str, base_url: str | None) -> str:
    """Return the link to a report: published URL when a base URL is known, else the local path."""
    html = str(html or "").lstrip("/")
    if base_url:
        return f"{base_url.rstrip('/')}/{quote(run_id)}/{quote(html)}"
    return (run_dir / html).as_posix()


def _audience_label(audience: str) -> str:
    return AUDIENCES.get(audience, (None, audience))[1]


@dataclass
class _Territory:
    audience: str
    territoire: str
    nom: str
    link: str
    ok: bool
    points_forts: list[str]
    a_corriger: list[str]


def _territories(index: dict, run_dir: Path, base_url: str | None, threshold: int) -> list[_Territory]:
    groups: dict[tuple, list[dict]] = {}
    for entry in index["reports"]:
        if not isinstance(entry, dict):
            continue
        groups.setdefault((str(entry.get("audience", "")), str(entry.get("territoire", ""))), []).append(entry)
    out = []
    for (audience, territoire), entries in groups.items():
        main = next((e for e in entries if str(e.get("html", "")).endswith(f"/{territoire}.html")
                     or e.get("notebook") == "tableau_de_bord"), entries[0])
        pf, ac = [], []
        for e in entries:
            if e.get("statut") != "ok":
                continue
            where = f"{audience}/{territoire}"
            pf += [s for s in screen(e.get("points_forts"), threshold, where=where) if s not in pf]
            ac += [s for s in screen(e.get("a_corriger"), threshold, where=where) if s not in ac]
        out.append(_Territory(audience, territoire, str(main.get("nom") or territoire),
                              report_link(main.get("html", ""), run_dir, str(index.get("run_id", run_dir.name)),
                                          base_url),
                              main.get("statut") == "ok", pf[:MAX_ITEMS], ac[:MAX_ITEMS]))
    order = list(AUDIENCES)
    out.sort(key=lambda t: (order.index(t.audience) if t.audience in order else 99, t.nom))
    return out


def _bullets(items: list[str]) -> str:
    return "\n".join(f"• {s}" for s in items)


def _attachment(t: _Territory) -> dict:
    if not t.ok:
        text = "Le rapport n'a pas pu être produit pour ce lot : il sera relancé."
        color = COLOR_FAIL
    else:
        parts = []
        if t.points_forts:
            parts.append("*Points forts*\n" + _bullets(t.points_forts))
        if t.a_corriger:
            parts.append("*À corriger en priorité*\n" + _bullets(t.a_corriger))
        text = "\n\n".join(parts) or "Pas de constat saillant dans ce lot : voir le rapport pour le détail."
        color = COLOR_TODO if t.a_corriger else COLOR_OK
    return {"title": f"{t.nom} – {_audience_label(t.audience)}", "title_link": t.link, "text": text,
            "color": color,
            "fields": [{"short": True, "title": "Public", "value": _audience_label(t.audience)},
                       {"short": True, "title": "Territoire", "value": t.territoire}]}


def _size(text: str, attachments: list[dict]) -> int:
    n = len(text)
    for a in attachments:
        n += len(a.get("title", "")) + len(a.get("title_link", "")) + len(a.get("text", ""))
        n += sum(len(f["title"]) + len(f["value"]) for f in a.get("fields", []))
    return n


def _fit(attachment: dict, room: int) -> dict:
    """Shorten an attachment's text so that it fits in ``room`` characters."""
    over = _size("", [attachment]) - room
    if over <= 0:
        return attachment
    text = attachment["text"]
    keep = max(0, len(text) - over - 1)
    return {**attachment, "text": text[:keep].rstrip() + "…"}


def compose_digest(index: dict, run_dir: str | Path, *, base_url: str | None = None,
                   threshold: int | None = None, max_chars: int = MAX_MESSAGE_CHARS,
                   max_attachments: int = MAX_ATTACHMENTS) -> list[dict]:
    """Compose the messages of a run's digest (national summary first, then territories).

    Parameters
    ----------
    index : dict
        The run's ``index.json``.
    run_dir : str or Path
        The run directory (for local links).
    base_url : str, optional
        URL of the published ``reports/`` folder; links are local paths without it.
    threshold : int, optional
        Disclosure threshold (default :data:`config.DISCLOSURE_THRESHOLD`).
    max_chars, max_attachments : int
        Size limits of one message.

    Returns
    -------
    list of dict
        Slack-compatible payloads ``{"text", "attachments"}``, each within the limits.
    """
    run_dir = Path(run_dir)
    threshold = config.DISCLOSURE_THRESHOLD if threshold is None else threshold
    run_id = str(index.get("run_id") or run_dir.name)
    terr = _territories(index, run_dir, base_url, threshold)
    national = [t for t in terr if t.audience == "national"]
    others = [t for t in terr if t.audience != "national"]
    n_ok = sum(1 for e in index["reports"] if isinstance(e, dict) and e.get("statut") == "ok")
    n_total = len(index["reports"])
    lines = [f"*Synthèse du lot de rapports GAR « {run_id} »*"]
    if index.get("simule"):
        lines.append("_Données simulées : chiffres d'illustration, à ne pas diffuser comme résultats._")
    lines.append(f"{n_ok} rapport(s) produit(s) sur {n_total}, pour {len(others)} territoire(s).")
    for t in national:
        if t.points_forts:
            lines.append("*Au niveau national, ce qui fonctionne :*\n" + _bullets(t.points_forts))
        if t.a_corriger:
            lines.append("*Chantiers prioritaires :*\n" + _bullets(t.a_corriger))
        if t.ok:
            lines.append(f"Rapport national : {t.link}")
    failed = [t for t in terr if not t.ok]
    if failed:
        lines.append("Rapports à relancer : " + ", ".join(f"{t.nom} ({_audience_label(t.audience)})"
                                                          for t in failed) + ".")
    if others:
        lines.append("Par territoire ci-dessous : points forts, points à corriger en priorité et lien vers le rapport.")
    head = "\n".join(lines)
    if len(head) > max_chars:
        head = head[: max_chars - 1] + "…"
    messages: list[dict] = [{"text": head, "attachments": []}]
    for t in others:
        att = _attachment(t)
        current = messages[-1]
        if (len(current["attachments"]) >= max_attachments
                or _size(current["text"], current["attachments"] + [att]) > max_chars):
            cont = f"*Synthèse du lot « {run_id} » (suite)*"
            att = _fit(att, max_chars - len(cont) - len(" 999/999"))  # room for the final « suite i/n »
            messages.append({"text": cont, "attachments": []})
        messages[-1]["attachments"].append(att)
    total = len(messages)
    if total > 1:
        for i, m in enumerate(messages[1:], start=2):
            m["text"] = f"*Synthèse du lot « {run_id} » (suite {i}/{total})*"
    return messages


# --------------------------------------------------------------------------- posting

def _rate_limited(response: requests.Response) -> bool | float | None:
    """Classify a Rocket.Chat response: wait on a rate limit, back off on 5xx."""
    if response.status_code == 429:
        wait = wait_from_headers(response)
        return True if wait is None else wait
    if response.status_code >= 500:
        return True
    if response.status_code == 400:
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict) and (body.get("errorType") == "error-too-many-requests"
                                       or "error-too-many-requests" in str(body.get("error", ""))):
            details = body.get("details") or {}
            if isinstance(details, dict) and details.get("timeToReset"):
                return float(details["timeToReset"]) / 1000
            found = re.search(r"wait (\d+) seconds", str(body.get("error", "")))
            if found:
                return float(found.group(1))
            wait = wait_from_headers(response)
            return True if wait is None else wait
    return None


class Poster:
    """Post payloads to Rocket.Chat through a webhook or the REST API.

    Parameters
    ----------
    webhook : str, optional
        Incoming webhook URL (a secret).
    server, token, user_id, channel : str, optional
        REST API: server URL, personal access token and user id (secrets), channel (``#gar``).
    policy : RetryPolicy, optional
        Retries, back-off and the longest rate-limit wait.
    """

    def __init__(self, *, webhook: str | None = None, server: str | None = None, token: str | None = None,
                 user_id: str | None = None, channel: str | None = None, policy: RetryPolicy | None = None,
                 timeout: float = 30.0):
        self.webhook = webhook
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        if webhook:
            if not re.match(r"^https?://[^/]+/", webhook):
                raise ConfigError(f"La variable {config.ENV_ROCKETCHAT_WEBHOOK} ne contient pas une URL de webhook "
                                  f"valide (https://serveur/hooks/…).")
            self.kind = "webhook"
            self.url = webhook
            self.session = make_session({"Content-Type": "application/json"})
            secret_parts = [webhook, urlsplit(webhook).path] + [p for p in urlsplit(webhook).path.split("/")
                                                                if len(p) >= 6]
        else:
            if not (server and token and user_id and channel):
                raise ConfigError("Rocket.Chat : configuration REST incomplète (URL, jeton, identifiant "
                                  "d'utilisateur et canal requis).")
            self.kind = "rest"
            self.url = server.rstrip("/") + "/api/v1/chat.postMessage"
            self.channel = channel
            self.session = make_session({"Content-Type": "application/json", "X-Auth-Token": token,
                                         "X-User-Id": user_id})
            secret_parts = [token, user_id]
        self._secrets = tuple(p for p in secret_parts if p)
        install_redaction(lambda: list(self._secrets))
        self.sent = 0

    def body(self, payload: dict) -> dict:
        """Return the JSON body actually sent for a digest payload."""
        if self.kind == "rest":
            return {"channel": self.channel, **payload}
        return dict(payload)

    def post(self, payload: dict) -> dict:
        """Post one message; return the server's JSON answer (or {})."""
        what = "Rocket.Chat (webhook)" if self.kind == "webhook" else "Rocket.Chat POST /api/v1/chat.postMessage"
        response = send(self.session, "POST", self.url, data=json.dumps(self.body(payload), ensure_ascii=False)
                        .encode("utf-8"), policy=self.policy, classify=_rate_limited, timeout=self.timeout,
                        what=what, secrets=self._secrets)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        error = str(answer.get("error", "")) if isinstance(answer, dict) else ""
        if response.status_code == 401:
            raise ServiceError(f"{what} : authentification refusée (HTTP 401). Vérifier les variables "
                               f"{config.ENV_ROCKETCHAT_TOKEN} et {config.ENV_ROCKETCHAT_USER_ID}.")
        if response.status_code == 403:
            raise ServiceError(f"{what} : accès refusé (HTTP 403) : l'utilisateur n'a pas le droit d'écrire "
                               f"dans le canal, ou le webhook est désactivé.")
        if response.status_code == 404 and self.kind == "webhook":
            raise ServiceError(f"{what} : webhook introuvable (HTTP 404). Vérifier la variable "
                               f"{config.ENV_ROCKETCHAT_WEBHOOK} (intégration supprimée ou désactivée ?).")
        if response.status_code != 200 or (isinstance(answer, dict) and answer.get("success") is False):
            detail = error or response.reason
            if response.status_code in (429, 400) and _rate_limited(response) is not None:
                detail = f"limite de débit toujours atteinte après {self.policy.retries} nouvel(s) essai(s)"
            raise ServiceError(f"{what} : message refusé (HTTP {response.status_code} : {detail}).")
        self.sent += 1
        if response.headers.get("X-RateLimit-Remaining", "").strip() == "0":
            wait = wait_from_headers(response)
            if wait:
                log.info("Rocket.Chat : quota de messages atteint, attente de %.1f s.", min(wait, self.policy.max_wait))
                self.policy.sleep(min(wait, self.policy.max_wait))
        return answer if isinstance(answer, dict) else {}


def poster_from_env(*, webhook_only: bool = False, policy: RetryPolicy | None = None) -> Poster | None:
    """Return the poster the environment configures (webhook first, then REST), or None."""
    webhook = config.secret(config.ENV_ROCKETCHAT_WEBHOOK)
    if webhook:
        return Poster(webhook=webhook, policy=policy)
    if webhook_only:
        raise ConfigError(f"--webhook-only : la variable d'environnement {config.ENV_ROCKETCHAT_WEBHOOK} "
                          f"n'est pas définie.")
    server = os.environ.get(config.ENV_ROCKETCHAT_URL, "").strip()
    token = config.secret(config.ENV_ROCKETCHAT_TOKEN)
    user_id = config.secret(config.ENV_ROCKETCHAT_USER_ID)
    channel = os.environ.get(config.ENV_ROCKETCHAT_CHANNEL, "").strip()
    if not (server or token or user_id):
        return None
    missing = [name for name, value in ((config.ENV_ROCKETCHAT_URL, server), (config.ENV_ROCKETCHAT_TOKEN, token),
                                        (config.ENV_ROCKETCHAT_USER_ID, user_id),
                                        (config.ENV_ROCKETCHAT_CHANNEL, channel)) if not value]
    if missing:
        raise ConfigError("Rocket.Chat (API REST) : variable(s) d'environnement manquante(s) : "
                          + ", ".join(missing) + ".")
    return Poster(server=server, token=token, user_id=user_id, channel=channel, policy=policy)


# --------------------------------------------------------------------------- command line

def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``gar-analysis share``."""
    parser.add_argument("--run", required=True, type=Path, help="répertoire du lot (reports/<run-id>)")
    parser.add_argument("--dry-run", action="store_true",
                        help="afficher les messages exacts sans les envoyer (défaut si rien n'est configuré)")
    parser.add_argument("--webhook-only", action="store_true",
                        help=f"n'utiliser que le webhook entrant ({config.ENV_ROCKETCHAT_WEBHOOK})")
    parser.add_argument("--base-url", default=None,
                        help=f"URL publique du dossier reports/ pour les liens (sinon {ENV_REPORTS_BASE_URL}, "
                        "sinon chemins locaux)")
    parser.add_argument("--retries", type=int, default=4, help="nouvelles tentatives (limite de débit, 5xx)")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="attente maximale en secondes demandée par le serveur (limite de débit)")


def run(args: argparse.Namespace) -> int:
    """Run ``gar-analysis share``; return the exit status."""
    run_dir = Path(args.run)
    index = load_run_index(run_dir)
    base_url = args.base_url or os.environ.get(ENV_REPORTS_BASE_URL, "").strip() or None
    messages = compose_digest(index, run_dir, base_url=base_url)
    policy = RetryPolicy(retries=max(0, args.retries), max_wait=args.max_wait)
    try:
        poster = poster_from_env(webhook_only=args.webhook_only, policy=policy)
    except ConfigError:
        if not args.dry_run:
            raise
        log.warning("Configuration Rocket.Chat incomplète : simulation sans destination.")
        poster = None
    if args.dry_run or poster is None:
        if poster is None and not args.dry_run:
            print("Aucune destination Rocket.Chat configurée : affichage des messages sans envoi "
                  f"(définir {config.ENV_ROCKETCHAT_WEBHOOK}, ou {config.ENV_ROCKETCHAT_URL}, "
                  f"{config.ENV_ROCKETCHAT_TOKEN}, {config.ENV_ROCKETCHAT_USER_ID} et "
                  f"{config.ENV_ROCKETCHAT_CHANNEL}).", file=sys.stderr)
        where = "" if poster is None else f" (destination : {poster.kind})"
        print(f"# {len(messages)} message(s) à publier{where} — simulation, rien n'est envoyé")
        for i, payload in enumerate(messages, start=1):
            body = poster.body(payload) if poster is not None else payload
            print(f"# message {i}/{len(messages)}")
            print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    for i, payload in enumerate(messages, start=1):
        poster.post(payload)
        log.info("Rocket.Chat : message %d/%d publié.", i, len(messages))
    print(f"{len(messages)} message(s) publié(s) sur Rocket.Chat ({poster.kind}).")
    return 0
