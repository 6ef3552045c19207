"""``gar-analysis share``: post the digest of a batch of reports to Rocket.Chat.

The digest of a run (``reports/<run-id>/index.json``) is a short national
summary followed, for each territory, by its bright spots, the main points to
fix and the link to its report. When the run holds release notes
(``changements.json``, see :mod:`gar_analysis.changes`) of a release that has a
previous one, the digest reports what changed since it instead. It is posted through an incoming webhook
(Slack-compatible JSON) or the REST API (``POST /api/v1/chat.sendMessage``
with a message ``_id`` chosen here, so that a retry never posts twice); with
``--dry-run``, the default when nothing is configured, the exact payloads are
printed instead.

What the server accepts was read in Rocket.Chat's own code (see
``docs/integrations.md``): links only as absolute ``http(s)://`` URLs
(``lib/utils/isURL.ts``), attachment fields with a title and a value,
``Message_MaxAllowedSize`` (5,000 UTF-16 units by default) on the text and on
each attachment's text, 10 calls per minute per route and client address
(``server/settings/rate.ts``, ``ApiClass.ts``), answered by a 429 without
``Retry-After``.

Safeguards: every sentence is screened before posting; a sentence quoting a
count below :data:`gar_analysis.config.DISCLOSURE_THRESHOLD` or anything that
looks pupil-level (INE, e-mail, birth date) is left out. Markdown characters
of report sentences are replaced by look-alikes (Rocket.Chat's parser has no
working backslash escape), and messages are only cut between lines or words,
never inside a ``*bold*``/``_italic_``/``~strike~`` marker.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from .. import config
from ..errors import ConfigError, DataError
from ..territories import AUDIENCES, is_private
from .http import (RateLimit, RetryPolicy, ServiceError, install_redaction, make_session, pace_wait,
                   rate_limit_wait, redact, send)

log = logging.getLogger(__name__)

#: Environment variable: URL of the published ``reports/`` folder (not a secret).
ENV_REPORTS_BASE_URL = "GAR_REPORTS_BASE_URL"
#: Rocket.Chat's default ``Message_MaxAllowedSize``: UTF-16 code units of a message's text and,
#: separately, of each attachment's text (titles, fields and links do not count).
MAX_MESSAGE_SIZE = 5000
#: Smallest size tried when the server refuses a message as too long (``error-message-size-exceeded``).
MIN_MESSAGE_SIZE = 250
#: Attachments per message (keeps each post readable on a phone).
MAX_ATTACHMENTS = 10
#: Sentences kept per territory and per kind.
MAX_ITEMS = 3
COLOR_OK = "#2e7d32"
COLOR_TODO = "#ef6c00"
COLOR_FAIL = "#9e9e9e"
#: What Rocket.Chat accepts as a link (``apps/meteor/lib/utils/isURL.ts``: ``/^(https?:\/\/|data:)/``).
_ABSOLUTE_URL = re.compile(r"^https?://")


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

def utf16_len(text: str) -> int:
    """Length of ``text`` as JavaScript counts it (UTF-16 code units), as the server does."""
    return len(str(text).encode("utf-16-le")) // 2


#: Look-alikes of the characters Rocket.Chat's message parser reads as markup
#: (``*bold*``, ``_italic_``, ``~strike~``, ``[text](url)``). Its grammar
#: (``packages/message-parser/src/grammar.pegjs``) has no active backslash escape.
_LOOKALIKES = str.maketrans({"*": "\u2217", "_": "\uff3f", "~": "\u223c", "[": "\uff3b", "]": "\uff3d"})
_MARKERS = "*_~`"


def plain(text: object) -> str:
    """Return a report sentence with its Markdown characters replaced by look-alikes.

    Examples
    --------
    >>> plain("Taux *élevé* [voir](x) ~ 12 %")
    'Taux ∗élevé∗ ［voir］(x) ∼ 12 %'
    """
    return str(text).translate(_LOOKALIKES)


def is_absolute_url(link: str) -> bool:
    """Whether Rocket.Chat accepts ``link`` in ``title_link`` (``^https?://``, case-sensitive)."""
    return bool(_ABSOLUTE_URL.match(str(link or "")))


def _link_text(link: str) -> str:
    """A link for a message text: the URL itself, or a local path as inline code."""
    if is_absolute_url(link):
        return link
    return "`" + str(link).replace("`", "'") + "`"


def _cut_line(line: str, room: int) -> str:
    """The longest start of ``line`` within ``room`` UTF-16 units, ending between words, markers balanced."""
    out, used = [], 0
    for ch in line:
        used += utf16_len(ch)
        if used > room:
            break
        out.append(ch)
    text = "".join(out)
    if len(text) < len(line) and " " in text:
        text = text.rsplit(" ", 1)[0]
    for marker in _MARKERS:  # a marker left open by the cut is dropped (its text is kept, unformatted)
        while text.count(marker) % 2:
            at = text.rindex(marker)
            text = text[:at] + text[at + 1:]
    return text.rstrip()


def fit_text(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` UTF-16 units (ending with « … »), cutting between lines or words only."""
    if utf16_len(text) <= limit:
        return text
    room = max(1, limit - 1)
    lines, kept = text.split("\n"), []
    for line in lines:
        if utf16_len("\n".join(kept + [line])) > room:
            break
        kept.append(line)
    if kept:
        return "\n".join(kept).rstrip() + "…"
    return _cut_line(lines[0], room) + "…"


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` UTF-16 units, between lines (a longer line is shortened)."""
    chunks, current = [], []
    for line in str(text).split("\n"):
        line = fit_text(line, limit)
        if current and utf16_len("\n".join(current + [line])) > limit:
            chunks.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if current:
        chunks.append("\n".join(current).strip("\n"))
    return [c for c in chunks if c] or [""]


def split_payload(payload: dict, limit: int) -> list[dict]:
    """Split one message so that its text and each attachment's text fit in ``limit`` UTF-16 units.

    The text is split between lines into several messages (the last one keeps
    the attachments); an attachment's text longer than the limit is shortened.
    """
    attachments = [dict(a, text=fit_text(a["text"], limit)) if utf16_len(a.get("text", "")) > limit else a
                   for a in payload.get("attachments") or []]
    texts = split_text(payload.get("text", ""), limit)
    out = [{"text": t, "attachments": []} for t in texts]
    out[-1]["attachments"] = attachments
    return out


def load_run_index(run_dir: str | Path) -> dict:
    """Read ``index.json`` of a batch run, or raise a French error naming the file."""
    path = Path(run_dir) / "index.json"
    if not path.exists():
        raise ConfigError(f"{path} : index du lot absent. Lancer d'abord « gar-analysis reports » "
                          f"avec ce --run-id, ou vérifier le chemin passé à --run.")
    return _json_with_list(path, "reports", "liste des rapports")


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
        if not isinstance(entry, dict) or is_private(entry.get("audience")):
            continue  # a publisher's page is sent to that publisher only, never to a shared channel
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
            pf += [plain(s) for s in screen(e.get("points_forts"), threshold, where=where) if plain(s) not in pf]
            ac += [plain(s) for s in screen(e.get("a_corriger"), threshold, where=where) if plain(s) not in ac]
        out.append(_Territory(audience, territoire, str(main.get("nom") or territoire),
                              report_link(main.get("html", ""), run_dir, str(index.get("run_id", run_dir.name)),
                                          base_url),
                              main.get("statut") == "ok", pf[:MAX_ITEMS], ac[:MAX_ITEMS]))
    order = list(AUDIENCES)
    out.sort(key=lambda t: (order.index(t.audience) if t.audience in order else 99, t.nom))
    return out


def _bullets(items: list[str]) -> str:
    return "\n".join(f"• {s}" for s in items)


def _attachment(t: _Territory, max_size: int,
                headings: tuple[str, str] = ("*Points forts*", "*À corriger en priorité*")) -> dict:
    """One territory's attachment: a link only when absolute, never an empty field."""
    if not t.ok:
        text = "Le rapport n'a pas pu être produit pour ce lot : il sera relancé."
        color = COLOR_FAIL
    else:
        parts = []
        if t.points_forts:
            parts.append(f"{headings[0]}\n" + _bullets(t.points_forts))
        if t.a_corriger:
            parts.append(f"{headings[1]}\n" + _bullets(t.a_corriger))
        text = "\n\n".join(parts) or "Pas de constat saillant dans ce lot : voir le rapport pour le détail."
        color = COLOR_TODO if t.a_corriger else COLOR_OK
    label = _audience_label(t.audience)
    attachment = {"title": f"{t.nom} – {label}".strip(" –") or "Rapport"}
    if t.ok and is_absolute_url(t.link):
        attachment["title_link"] = t.link
        text = fit_text(text, max_size)
    elif t.ok:  # a local path: Rocket.Chat refuses it as a link (400 « Invalid href value provided »)
        footer = f"\n\nRapport : {_link_text(t.link)}"
        text = fit_text(text, max_size - utf16_len(footer)) + footer
    else:
        text = fit_text(text, max_size)
    attachment.update({"text": text, "color": color})
    fields = [{"short": True, "title": "Public", "value": label},
              {"short": True, "title": "Territoire", "value": t.territoire}]
    fields = [f for f in fields if str(f["title"]).strip() and str(f["value"]).strip()]
    if fields:
        attachment["fields"] = fields
    return attachment


def compose_digest(index: dict, run_dir: str | Path, *, base_url: str | None = None,
                   threshold: int | None = None, max_size: int = MAX_MESSAGE_SIZE,
                   max_attachments: int = MAX_ATTACHMENTS) -> list[dict]:
    """Compose the messages of a run's digest (national summary first, then territories).

    Parameters
    ----------
    index : dict
        The run's ``index.json``.
    run_dir : str or Path
        The run directory (for local paths).
    base_url : str, optional
        URL of the published ``reports/`` folder; links are sent only when it is an
        absolute ``http(s)://`` URL, else the path is given as plain text.
    threshold : int, optional
        Disclosure threshold (default :data:`config.DISCLOSURE_THRESHOLD`).
    max_size : int
        ``Message_MaxAllowedSize`` of the server: UTF-16 units of the text and of each attachment's text.
    max_attachments : int
        Attachments per message.

    Returns
    -------
    list of dict
        Slack-compatible payloads ``{"text", "attachments"}``, each within the limits. When the run holds
        ``changements.json`` (release notes, :func:`gar_analysis.changes.release_notes`) of a release that has a
        previous one, the digest reports the changes since it (:func:`compose_changes_digest`), not a snapshot.
    """
    run_dir = Path(run_dir)
    threshold = config.DISCLOSURE_THRESHOLD if threshold is None else threshold
    run_id = str(index.get("run_id") or run_dir.name)
    if base_url and not is_absolute_url(base_url):
        log.warning("URL de base des rapports ignorée pour les liens : elle doit commencer par http:// ou "
                    "https:// (Rocket.Chat refuse les autres liens) ; chemins donnés en texte.")
    terr = _territories(index, run_dir, base_url, threshold)
    changes = load_changes(run_dir)
    if changes is not None and not changes.get("premiere"):
        return compose_changes_digest(changes, index, run_dir, terr, base_url=base_url, threshold=threshold,
                                      max_size=max_size, max_attachments=max_attachments)
    national = [t for t in terr if t.audience == "national"]
    others = [t for t in terr if t.audience != "national"]
    n_ok = sum(1 for e in index["reports"] if isinstance(e, dict) and e.get("statut") == "ok")
    n_total = len(index["reports"])
    lines = [f"*Synthèse du lot de rapports GAR « {plain(run_id)} »*"]
    if index.get("simule"):
        lines.append("_Données simulées : chiffres d'illustration, à ne pas diffuser comme résultats._")
    lines.append(f"{n_ok} rapport(s) produit(s) sur {n_total}, pour {len(others)} territoire(s).")
    for t in national:
        if t.points_forts:
            lines.append("*Au niveau national, ce qui fonctionne :*\n" + _bullets(t.points_forts))
        if t.a_corriger:
            lines.append("*Chantiers prioritaires :*\n" + _bullets(t.a_corriger))
        if t.ok:
            lines.append(f"Rapport national : {_link_text(t.link)}")
    failed = [t for t in terr if not t.ok]
    if failed:
        lines.append("Rapports à relancer : " + ", ".join(f"{plain(t.nom)} ({_audience_label(t.audience)})"
                                                          for t in failed) + ".")
    if others:
        lines.append("Par territoire ci-dessous : points forts, points à corriger en priorité et lien vers le rapport.")
    messages = [{"text": chunk, "attachments": []} for chunk in split_text("\n".join(lines), max_size)]
    for t in others:
        if len(messages[-1]["attachments"]) >= max_attachments:
            messages.append({"text": "", "attachments": []})
        messages[-1]["attachments"].append(_attachment(t, max_size))
    total = len(messages)
    if total > 1:
        for i, m in enumerate(messages[1:], start=2):
            title = f"*Synthèse du lot « {plain(run_id)} » (suite {i}/{total})*"
            m["text"] = m["text"] or fit_text(title, max_size)
    return messages


def load_changes(run_dir: str | Path) -> dict | None:
    """Read ``changements.json`` of a run (None when absent), or raise a French error naming the file."""
    path = Path(run_dir) / "changements.json"
    if not path.exists():
        return None
    return _json_with_list(path, "territoires", "liste des territoires ayant changé")


def _json_with_list(path: Path, key: str, what: str) -> dict:
    """Read a JSON object holding the list ``key``, or raise a French error naming the file, line and column."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError.single(path, f"JSON illisible ({exc.msg}).", line=exc.lineno, column=str(exc.colno)) from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise DataError.single(path, f"clé « {key} » ({what}) absente.")
    return data


def _schools_line(label: str, schools: list, n: int = MAX_ITEMS) -> str:
    """« label : A (UAI), B (UAI) … » — no count quoted (a small count of schools would be screened out)."""
    names = [f"{plain(s.get('nom', ''))} ({plain(s.get('uai', ''))})" for s in schools[:n] if isinstance(s, dict)]
    return f"{label} : {', '.join(names)}{' …' if len(schools) > n else ''}." if names else ""


def _rules_line(label: str, rules: dict) -> str:
    from ..checks.registry import rule_title

    return f"{label} : {', '.join(rule_title(r) for r in rules)}." if rules else ""


def _change_lists(entry: dict, threshold: int) -> tuple[list[str], list[str]]:
    """A territory's bright spots and points of attention for the digest (screened)."""
    ind = entry.get("indicateurs") or {}
    sch = entry.get("etablissements") or {}
    con = entry.get("constats") or {}
    good = list(ind.get("points_forts") or []) + [
        _schools_line("Nouvellement inscrit(s) au GAR", sch.get("nouveaux_inscrits") or []),
        _schools_line("Devenu(s) actif(s) le mois de référence", sch.get("nouveaux_actifs") or []),
        _rules_line("Constats de qualité corrigés", con.get("corriges") or {})]
    bad = list(ind.get("reculs") or []) + [
        _schools_line("Sans accès ce mois de référence après avoir été actif(s)", sch.get("nouveaux_inactifs") or []),
        _rules_line("Nouveaux constats de qualité", con.get("nouveaux") or {})]
    where = f"{entry.get('audience', '')}/{entry.get('territoire', '')}"
    return ([plain(s) for s in screen([g for g in good if g], threshold, where=where)],
            [plain(s) for s in screen([b for b in bad if b], threshold, where=where)])


def _month(month: object) -> str:
    from ..formatting import MONTH_NAMES

    m = str(month or "")
    return f"{MONTH_NAMES[int(m[5:7]) - 1]} {m[:4]}" if re.fullmatch(r"\d{4}-\d{2}", m) else "–"


def compose_changes_digest(changes: dict, index: dict, run_dir: str | Path, terr: list | None = None, *,
                           base_url: str | None = None, threshold: int | None = None,
                           max_size: int = MAX_MESSAGE_SIZE, max_attachments: int = MAX_ATTACHMENTS) -> list[dict]:
    """Compose the digest of what changed since the previous publication (from ``changements.json``).

    One line per release (compared with which one, how many territories changed, link to the release
    notes), the reports to re-run, then one attachment per territory that changed: bright spots first
    (territories with some before the others, and within one), then points of attention, with the link
    to its dashboard. Every sentence is screened (:func:`screen`).
    """
    run_dir = Path(run_dir)
    threshold = config.DISCLOSURE_THRESHOLD if threshold is None else threshold
    run_id = str(index.get("run_id") or changes.get("release") or run_dir.name)
    terr = terr if terr is not None else _territories(index, run_dir, base_url, threshold)
    entries = [e for e in changes["territoires"] if isinstance(e, dict)]
    lines = [f"*Nouveautés de la publication GAR « {plain(changes.get('release') or run_id)} »*"]
    if index.get("simule"):
        lines.append("_Données simulées : chiffres d'illustration, à ne pas diffuser comme résultats._")
    ref = f" « {plain(changes['reference'])} »" if changes.get("reference") else ""
    lines.append(f"Depuis la publication précédente{ref} (mois de référence : {_month(changes.get('mois_reference_avant'))}"
                 f" → {_month(changes.get('mois_reference'))}) : {len(entries)} territoire(s) sur "
                 f"{changes.get('territoires_compares', '–')} ont changé au-delà du hasard.")
    if not entries:
        lines.append("Aucun changement au-delà du hasard, aucun établissement nouvellement inscrit, actif ou inactif, "
                     "aucun constat de qualité nouveau ou corrigé.")
    lines.append(f"Notes de publication : {_link_text(report_link('nouveautes.html', run_dir, run_id, base_url))}")
    failed = [t for t in terr if not t.ok]
    if failed:
        lines.append("Rapports à relancer : " + ", ".join(f"{plain(t.nom)} ({_audience_label(t.audience)})"
                                                          for t in failed) + ".")
    messages = [{"text": chunk, "attachments": []} for chunk in split_text("\n".join(lines), max_size)]
    order = list(AUDIENCES)
    items = []
    for e in entries:
        good, bad = _change_lists(e, threshold)
        if good or bad:
            items.append((e, good, bad))
    items.sort(key=lambda x: (not x[1], order.index(x[0].get("audience")) if x[0].get("audience") in order else 99,
                              str(x[0].get("nom", ""))))
    for e, good, bad in items:
        t = _Territory(str(e.get("audience", "")), str(e.get("territoire", "")), str(e.get("nom") or ""),
                       report_link(str(e.get("html", "")), run_dir, run_id, base_url), True,
                       good[:MAX_ITEMS + 2], bad[:MAX_ITEMS + 2])
        t.nom = t.nom[:1].upper() + t.nom[1:]
        att = _attachment(t, max_size, ("*Ce qui progresse*", "*Points d'attention*"))
        if len(messages[-1]["attachments"]) >= max_attachments:
            messages.append({"text": "", "attachments": []})
        messages[-1]["attachments"].append(att)
    total = len(messages)
    if total > 1:
        for i, m in enumerate(messages[1:], start=2):
            m["text"] = m["text"] or fit_text(f"*Nouveautés « {plain(run_id)} » (suite {i}/{total})*", max_size)
    return messages


def message_id(run_id: str, number: int, payload: dict) -> str:
    """A stable message ``_id`` (17 characters of Rocket.Chat's alphabet) for one message of a digest.

    The same digest posted twice gets the same ids, so the server skips what it already has.
    """
    alphabet = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
    digest = hashlib.sha256(json.dumps([run_id, number, payload], ensure_ascii=False, sort_keys=True)
                            .encode("utf-8")).digest()
    value = int.from_bytes(digest, "big")
    out = []
    for _ in range(17):
        value, rest = divmod(value, len(alphabet))
        out.append(alphabet[rest])
    return "".join(out)


# --------------------------------------------------------------------------- posting

class _TooLarge(Exception):
    """The server refused a message as longer than its ``Message_MaxAllowedSize``."""


def _answer(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_text(response: requests.Response) -> str:
    """The server's error text (JSON ``error``, else the raw body), untruncated but not yet redacted."""
    body = _answer(response)
    if body:
        return " ".join(str(body.get(k, "")) for k in ("error", "errorType") if body.get(k)).strip()
    return (response.text or response.reason or "").strip()[:300]


def _disabled(response: requests.Response) -> bool:
    """A disabled webhook's 503: ``{"success": false, "error": "Service Unavailable"}`` (``api.ts``), or the
    bare JSON string ``"Service Unavailable"`` of the older Restivus code (``api.js``)."""
    if response.status_code != 503:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return body == "Service Unavailable" or (isinstance(body, dict) and body.get("error") == "Service Unavailable")


def _classify(response: requests.Response):
    """429: wait as Rocket.Chat says (a :class:`RateLimit`); 502–504: back off; anything else is final.

    A 500 is final: current servers answer it to a wrong webhook id or token (an
    exception thrown before the route's own error handling, ``ApiClass.ts``).
    A 503 carrying Rocket.Chat's JSON is a disabled webhook, final too.
    """
    if response.status_code == 429:
        return RateLimit(rate_limit_wait(response))
    if response.status_code in (502, 504) or (response.status_code == 503 and not _disabled(response)):
        return True
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
        Retries, back-off, the longest wait and the rate-limit window (60 s).
    timeout : float
        Seconds for connect and read.
    max_size : int
        The server's ``Message_MaxAllowedSize`` (halved on a size refusal, down to
        :data:`MIN_MESSAGE_SIZE`).
    webhook_retry : bool
        Resend a webhook post that may have been delivered (read timeout, 5xx): off by
        default, since a webhook post has no id and a resend may duplicate it.
    """

    def __init__(self, *, webhook: str | None = None, server: str | None = None, token: str | None = None,
                 user_id: str | None = None, channel: str | None = None, policy: RetryPolicy | None = None,
                 timeout: float = 30.0, max_size: int = MAX_MESSAGE_SIZE, webhook_retry: bool = False):
        self.webhook = webhook
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.max_size = int(max_size)
        self.webhook_retry = webhook_retry
        self._pace: dict[str, float] = {}
        self._rid: str | None = None
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
            self.server = server.rstrip("/")
            self.url = self.server + "/api/v1/chat.sendMessage"
            self.channel = channel
            self.session = make_session({"Content-Type": "application/json", "X-Auth-Token": token,
                                         "X-User-Id": user_id})
            secret_parts = [token, user_id]
        self._secrets = tuple(p for p in secret_parts if p)
        install_redaction(lambda: list(self._secrets))
        self.sent = 0
        self.already = 0

    # -- helpers
    def _clean(self, text: object) -> str:
        return redact(text, self._secrets)

    def body(self, payload: dict, msg_id: str | None = None) -> dict:
        """Return the JSON body sent for a digest payload (REST: the room id is resolved when posting)."""
        if self.kind == "rest":
            message = {"_id": msg_id or "", "rid": self._rid or f"<identifiant du canal {self.channel}>",
                       "msg": payload.get("text", "")}
            if payload.get("attachments"):
                message["attachments"] = payload["attachments"]
            return {"message": message}
        return dict(payload)

    def _call(self, method: str, route: str, url: str, what: str, **kwargs) -> requests.Response:
        """One call, paced by the route's ``X-RateLimit-Remaining`` and waiting out its 429s."""
        pending = self._pace.pop(route, 0.0) - time.monotonic()  # the pace is stored as a deadline
        if pending > 0:
            log.info("Rocket.Chat : quota de %s épuisé, attente de %.0f s (fenêtre du serveur).", route, pending)
            self.policy.sleep(min(pending, self.policy.max_wait))
        idempotent = self.kind == "rest" or self.webhook_retry
        response = send(self.session, method, url, policy=self.policy, classify=_classify, timeout=self.timeout,
                        what=what, secrets=self._secrets, idempotent=idempotent, **kwargs)
        wait = pace_wait(response)
        if wait > 0:
            self._pace[route] = time.monotonic() + wait
        return response

    def _fail(self, what: str, response: requests.Response, hint: str) -> ServiceError:
        detail = self._clean(_error_text(response))
        detail = f" : « {detail} »" if detail else ""
        return ServiceError(f"{what} : {hint} (HTTP {response.status_code}{detail}).")

    def _common_errors(self, what: str, response: requests.Response) -> None:
        """Raise the French error a refusal shared by the webhook and the REST API deserves."""
        status, error = response.status_code, _error_text(response)
        if status == 429:
            raise self._fail(what, response, f"limite de débit toujours atteinte après {self.policy.window:.0f} s "
                                             f"d'attente (10 appels par minute et par adresse par défaut, "
                                             f"réglage API_Enable_Rate_Limiter_Limit_Calls_Default)")
        if "error-message-size-exceeded" in error:
            raise _TooLarge()
        if "Invalid href value provided" in error:
            raise self._fail(what, response, "lien refusé : Rocket.Chat n'accepte que des URL absolues "
                                             "http(s):// (définir --base-url https://…)")
        if "Invalid attachment field" in error:
            raise self._fail(what, response, "champ de pièce jointe refusé : titre et valeur obligatoires")

    # -- webhook
    def _post_webhook(self, payload: dict) -> None:
        what = "Rocket.Chat (webhook)"
        response = self._call("POST", "webhook", self.url, what,
                              data=json.dumps(payload, ensure_ascii=False).encode("utf-8"))
        body = _answer(response)
        if response.status_code == 200 and body.get("success") is not False:
            return
        self._common_errors(what, response)
        status, error = response.status_code, _error_text(response)
        var = config.ENV_ROCKETCHAT_WEBHOOK
        if _disabled(response):
            raise self._fail(what, response, "webhook désactivé : l'activer dans Administration → Intégrations")
        if status == 404 or (status == 500 and not body):
            raise self._fail(what, response, f"URL de webhook invalide (identifiant ou jeton inconnus : le serveur "
                                             f"répond 404, ou 500 depuis la version 7) : vérifier {var}")
        if status in (502, 503, 504) and not self.webhook_retry:
            raise self._fail(what, response, "passerelle indisponible ; le message a pu être publié, il n'est "
                                             "pas renvoyé (--webhook-retry pour réessayer, au risque d'un doublon)")
        if "invalid-channel" in error:
            raise self._fail(what, response, "le canal de l'intégration n'existe plus : modifier le webhook "
                                             "(Administration → Intégrations)")
        if "error-not-allowed" in error:
            raise self._fail(what, response, "l'utilisateur de publication du webhook n'a pas accès à son canal : "
                                             "l'ajouter au canal")
        raise self._fail(what, response, "message refusé")

    # -- REST
    def _room(self) -> str:
        """The room id of the configured channel (``GET /api/v1/rooms.info?roomName=…``)."""
        if self._rid:
            return self._rid
        name = self.channel.lstrip("#")
        what = "Rocket.Chat GET /api/v1/rooms.info"
        response = self._call("GET", "rooms.info", self.server + "/api/v1/rooms.info", what,
                              params={"roomName": name})
        body = _answer(response)
        room = body.get("room") if isinstance(body.get("room"), dict) else {}
        if response.status_code == 200 and room.get("_id"):
            self._rid = str(room["_id"])
            return self._rid
        self._rest_errors(what, response)
        error = _error_text(response)
        var = config.ENV_ROCKETCHAT_CHANNEL
        if "error-room-not-found" in error:
            raise self._fail(what, response, f"canal « {self.channel} » introuvable : vérifier {var}")
        if "not-allowed" in error:
            raise self._fail(what, response, f"le compte n'a pas accès au canal « {self.channel} » "
                                             f"(canal privé : l'y ajouter comme membre)")
        if "error-room-archived" in error:
            raise self._fail(what, response, f"canal « {self.channel} » archivé")
        raise self._fail(what, response, f"canal « {self.channel} » non résolu")

    def _rest_errors(self, what: str, response: requests.Response) -> None:
        self._common_errors(what, response)
        if response.status_code == 401:
            raise self._fail(what, response, f"authentification refusée : jeton {config.ENV_ROCKETCHAT_TOKEN} ou "
                                             f"identifiant {config.ENV_ROCKETCHAT_USER_ID} faux, expiré ou révoqué")
        if response.status_code == 403:
            raise self._fail(what, response, "droit manquant pour ce compte")

    def _exists(self, msg_id: str) -> bool:
        """Whether the message ``msg_id`` is already on the server (``GET /api/v1/chat.getMessage``)."""
        response = self._call("GET", "chat.getMessage", self.server + "/api/v1/chat.getMessage",
                              "Rocket.Chat GET /api/v1/chat.getMessage", params={"msgId": msg_id})
        message = _answer(response).get("message")
        return response.status_code == 200 and isinstance(message, dict) and message.get("_id") == msg_id

    def _post_rest(self, payload: dict, msg_id: str) -> None:
        what = "Rocket.Chat POST /api/v1/chat.sendMessage"
        self._room()
        response = self._call("POST", "chat.sendMessage", self.url, what,
                              data=json.dumps(self.body(payload, msg_id), ensure_ascii=False).encode("utf-8"))
        body = _answer(response)
        if response.status_code == 200 and body.get("success") is True:
            return
        self._rest_errors(what, response)
        error = _error_text(response)
        channel = self.channel
        if "error-not-allowed" in error:
            raise self._fail(what, response, f"le compte n'a pas le droit de publier dans « {channel} » : "
                                             f"l'ajouter comme membre du canal")
        if "readonly" in error:
            raise self._fail(what, response, f"canal « {channel} » en lecture seule : donner au compte le droit "
                                             f"« post-readonly » ou le rendre propriétaire du canal")
        if "muted" in error:
            raise self._fail(what, response, f"le compte est rendu muet dans « {channel} »")
        if "invalid-room" in error or "invalid-channel" in error:
            raise self._fail(what, response, f"canal « {channel} » introuvable : vérifier "
                                             f"{config.ENV_ROCKETCHAT_CHANNEL}")
        if response.status_code == 400 and self._exists(msg_id):
            # the server skips a message whose _id exists (sendMessage.ts) and then fails on the missing message
            if getattr(response, "maybe_duplicate", False):
                log.info("Rocket.Chat : message %s reçu au premier envoi (resté sans réponse), non dupliqué.", msg_id)
            else:
                log.info("Rocket.Chat : message %s déjà publié par un partage précédent, non dupliqué.", msg_id)
                self.already += 1
            return
        raise self._fail(what, response, "message refusé")

    # -- public
    def post(self, payload: dict, msg_id: str | None = None) -> int:
        """Post one digest message (re-split if the server finds it too long); return the posts made."""
        queue = [(payload, msg_id or message_id("", 0, payload))]
        posted = 0
        while queue:
            current, mid = queue.pop(0)
            try:
                if self.kind == "webhook":
                    self._post_webhook(current)
                else:
                    self._post_rest(current, mid)
            except _TooLarge:
                if self.max_size <= MIN_MESSAGE_SIZE:
                    raise ServiceError(f"Rocket.Chat : message refusé comme trop long même découpé à "
                                       f"{self.max_size} caractères (réglage Message_MaxAllowedSize du serveur)."
                                       ) from None
                self.max_size = max(MIN_MESSAGE_SIZE, self.max_size // 2)
                parts = split_payload(current, self.max_size)
                log.warning("Rocket.Chat : message trop long pour le serveur (Message_MaxAllowedSize), redécoupé "
                            "en %d message(s) de %d caractères au plus.", len(parts), self.max_size)
                queue[0:0] = [(part, message_id(mid, i, part)) for i, part in enumerate(parts)]
                continue
            posted += 1
            self.sent += 1
        return posted


def poster_from_env(*, webhook_only: bool = False, policy: RetryPolicy | None = None, **options) -> Poster | None:
    """Return the poster the environment configures (webhook first, then REST), or None."""
    webhook = config.secret(config.ENV_ROCKETCHAT_WEBHOOK)
    if webhook:
        return Poster(webhook=webhook, policy=policy, **options)
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
    return Poster(server=server, token=token, user_id=user_id, channel=channel, policy=policy, **options)


# --------------------------------------------------------------------------- command line

def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``gar-analysis share``."""
    parser.add_argument("--run", required=True, type=Path, help="répertoire du lot (reports/<run-id>)")
    parser.add_argument("--dry-run", action="store_true",
                        help="afficher les messages exacts sans les envoyer (défaut si rien n'est configuré)")
    parser.add_argument("--webhook-only", action="store_true",
                        help=f"n'utiliser que le webhook entrant ({config.ENV_ROCKETCHAT_WEBHOOK})")
    parser.add_argument("--base-url", default=None,
                        help=f"URL publique http(s):// du dossier reports/ pour les liens (sinon "
                        f"{ENV_REPORTS_BASE_URL}, sinon chemins en texte)")
    parser.add_argument("--retries", type=int, default=4, help="nouvelles tentatives (erreurs réseau, 502/504)")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="attente maximale en secondes demandée par le serveur (limite de débit)")
    parser.add_argument("--max-size", type=int, default=MAX_MESSAGE_SIZE,
                        help="réglage Message_MaxAllowedSize du serveur s'il est inférieur à 5000")
    parser.add_argument("--timeout", type=float, default=30.0, help="délai de réponse en secondes")
    parser.add_argument("--webhook-retry", action="store_true",
                        help="renvoyer un message de webhook resté sans réponse (risque de doublon)")


def run(args: argparse.Namespace) -> int:
    """Run ``gar-analysis share``; return the exit status."""
    run_dir = Path(args.run)
    index = load_run_index(run_dir)
    base_url = args.base_url or os.environ.get(ENV_REPORTS_BASE_URL, "").strip() or None
    if args.max_size < MIN_MESSAGE_SIZE:
        raise ConfigError(f"--max-size : au moins {MIN_MESSAGE_SIZE} caractères.")
    messages = compose_digest(index, run_dir, base_url=base_url, max_size=args.max_size)
    run_id = str(index.get("run_id") or run_dir.name)
    ids = [message_id(run_id, i, m) for i, m in enumerate(messages)]
    policy = RetryPolicy(retries=max(0, args.retries), max_wait=args.max_wait)
    try:
        poster = poster_from_env(webhook_only=args.webhook_only, policy=policy, timeout=args.timeout,
                                 max_size=args.max_size, webhook_retry=args.webhook_retry)
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
            body = poster.body(payload, ids[i - 1]) if poster is not None else payload
            print(f"# message {i}/{len(messages)}")
            print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    for i, payload in enumerate(messages, start=1):
        poster.post(payload, ids[i - 1])
        log.info("Rocket.Chat : message %d/%d publié.", i, len(messages))
    note = f", dont {poster.already} déjà présent(s)" if poster.already else ""
    print(f"{poster.sent} message(s) publié(s) sur Rocket.Chat ({poster.kind}){note}.")
    return 0
