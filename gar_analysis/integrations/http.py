"""HTTP helpers shared by the integrations: session, retries, rate limits, redaction.

Every request goes through :func:`send`, which retries with exponential
back-off on connection errors and on the responses a ``classify`` callback
marks as transient (5xx by default), and waits as the server asks on a rate
limit (``429``, ``Retry-After``, ``X-RateLimit-Reset``). A classifier may
return a :class:`RateLimit` wait instead: such waits do not use up the retries
and :func:`send` never gives up before it has waited a full
:attr:`RetryPolicy.window`. With ``idempotent=False``, a request that may
have reached the server (read timeout, connection dropped after sending, 5xx)
is not sent again. Secrets are kept out of logs by :class:`RedactFilter` and
out of error messages by :func:`redact` (values of the environment, their
URL-encoded forms, webhook paths, URL passwords, ``token=…`` pairs).
"""
from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import requests

from ..config import secret_values
from ..errors import ConfigError

log = logging.getLogger(__name__)

USER_AGENT = "gar-analysis/0.1 (+https://gar.education.fr)"
#: Marker that replaces a secret in logs and messages.
MASK = "***"


class ServiceError(ConfigError):
    """A remote service refused or failed a request (message in French, no secret)."""


# --------------------------------------------------------------------------- redaction

#: Secret-looking patterns masked whatever their value: an incoming webhook's path
#: (``/hooks/<id>/<token>``), a URL password (``scheme://user:password@``) and
#: ``token=…``/``"authToken": "…"`` pairs (query strings, JSON or form bodies echoed by a server).
_SECRET_PATTERNS = (
    (re.compile(r"(/hooks/)[^\s\"'<>?#]+"), r"\1" + MASK),
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"'<>]*):[^/\s@\"'<>]+@"), r"\1:" + MASK + "@"),
    (re.compile(r"(?i)(\b[\w-]*(?:token|api[_-]?key|password|passwd|secret|dolapikey)[\w-]*[\"']?\s*[:=]\s*[\"']?)"
                r"(?!\*\*\*)[^\s\"'&,;}<>]+"), r"\1" + MASK),
)


def _secret_regex(value: str) -> str:
    """A pattern matching ``value`` with any of its characters percent-encoded (as a server may echo it)."""
    out = []
    for ch in value:
        alternatives = [re.escape(ch), "".join(f"%(?i:{b:02X})" for b in ch.encode("utf-8"))]
        if ch == " ":
            alternatives.append(r"\+")
        out.append("(?:" + "|".join(alternatives) + ")")
    return "".join(out)


def redact(text: object, extra: tuple[str, ...] | list[str] = ()) -> str:
    """Return ``text`` with every secret masked.

    Masks the secrets of the environment and ``extra`` (as given or percent-encoded),
    then any webhook path, URL password or ``token=…`` pair whatever its value.
    """
    out = str(text)
    values = {*secret_values(), *(e for e in extra if e and len(e) >= 6)}
    for value in sorted(values, key=len, reverse=True):
        out = out.replace(value, MASK)
        if "%" in out:
            out = re.sub(_secret_regex(value), MASK, out)
    for pattern, repl in _SECRET_PATTERNS:
        out = pattern.sub(repl, out)
    return out


class RedactFilter(logging.Filter):
    """Logging filter that masks secrets in a record's final message.

    Parameters
    ----------
    extra : callable, optional
        Returns more values to mask (e.g. a webhook URL's path), read at each record.
    """

    def __init__(self, extra: Callable[[], list[str]] | None = None):
        super().__init__()
        self.extra = extra or (lambda: [])

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003
        message = record.getMessage()
        clean = redact(message, self.extra())
        if clean != message:
            record.msg, record.args = clean, None
        return True


#: Loggers whose records may carry a URL or a header (ours and urllib3's).
_REDACTED_LOGGERS = ("gar_analysis.integrations", "gar_analysis.integrations.http",
                     "gar_analysis.integrations.dolibarr", "gar_analysis.integrations.rocketchat",
                     "urllib3", "urllib3.connectionpool", "requests")


def install_redaction(extra: Callable[[], list[str]] | None = None) -> RedactFilter:
    """Attach a :class:`RedactFilter` to the integration and urllib3 loggers (idempotent)."""
    filt = RedactFilter(extra)
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RedactFilter)]:
            logger.removeFilter(old)
        logger.addFilter(filt)
    return filt


# --------------------------------------------------------------------------- retries

@dataclass
class RetryPolicy:
    """How many times and how long to retry a request.

    Parameters
    ----------
    retries : int
        Retries after the first attempt.
    backoff : float
        First back-off in seconds; doubled at each retry (with jitter).
    max_wait : float
        Longest wait in seconds, whatever the server asks.
    window : float
        Seconds of :class:`RateLimit` waits accepted before giving up (at least one full
        window of the server's rate limiter: 60 s on Rocket.Chat).
    sleep : callable
        ``time.sleep`` (replaceable: a test passes a simulated clock's ``sleep``).
    """

    retries: int = 4
    backoff: float = 1.0
    max_wait: float = 120.0
    window: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, attempt: int) -> float:
        """Back-off before retry number ``attempt`` (1-based), jittered, capped."""
        base = self.backoff * (2 ** (attempt - 1))
        return min(self.max_wait, base * (1 + 0.25 * random.random()))


def wait_from_headers(response: requests.Response, now: float | None = None) -> float | None:
    """Return the wait (seconds) a response asks for, or None.

    Reads ``Retry-After`` (seconds or HTTP date), then ``X-RateLimit-Reset``
    (Rocket.Chat: epoch in milliseconds; epoch in seconds or a delay also accepted).
    """
    now = time.time() if now is None else now
    value = response.headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
    value = response.headers.get("X-RateLimit-Reset")
    if value:
        try:
            reset = float(value)
        except ValueError:
            return None
        if reset > 1e12:  # epoch milliseconds
            return max(0.0, reset / 1000 - now)
        if reset > 1e9:  # epoch seconds
            return max(0.0, reset - now)
        return max(0.0, reset)
    return None


class RateLimit(float):
    """A classifier's verdict: wait this many seconds, then retry (does not use up the retries)."""


def server_time(response: requests.Response) -> float | None:
    """Return the server's clock (epoch seconds) from the ``Date`` header, or None."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


#: Seconds added to a computed rate-limit wait: the server's ``Date`` has a one-second
#: resolution and Meteor's limiter only resets strictly after its interval.
RATE_MARGIN = 1.0
_WAIT_TEXT = re.compile(r"wait (\d+) seconds?")


def reset_wait(response: requests.Response) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (epoch milliseconds), measured on the server's ``Date``.

    Measuring against the server's own clock makes the wait immune to clock skew.
    Returns None without both headers.
    """
    reset, now = response.headers.get("X-RateLimit-Reset"), server_time(response)
    if not reset or now is None:
        return None
    try:
        reset_s = float(reset) / 1000.0
    except ValueError:
        return None
    return max(0.0, reset_s - now) + RATE_MARGIN


def rate_limit_wait(response: requests.Response) -> float:
    """Seconds to wait after a rate-limit refusal (Rocket.Chat's 429).

    In order: the « wait N seconds » of the error text, the reset relative to the
    server's ``Date``, ``Retry-After``; a one-minute window when none is given.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    text = str(body.get("error", "")) if isinstance(body, dict) else response.text[:500]
    found = _WAIT_TEXT.search(text)
    if found:
        return float(found.group(1)) + RATE_MARGIN
    wait = reset_wait(response)
    if wait is not None:
        return wait
    if response.headers.get("Retry-After"):
        wait = wait_from_headers(response)
        if wait is not None:
            return wait + RATE_MARGIN
    return 60.0


def pace_wait(response: requests.Response) -> float:
    """Seconds to wait before the next call on the same route (0 unless ``X-RateLimit-Remaining`` is 0)."""
    if response.headers.get("X-RateLimit-Remaining", "").strip() != "0":
        return 0.0
    wait = reset_wait(response)
    return 60.0 if wait is None else wait


def possibly_delivered(exc: BaseException) -> bool:
    """Whether a failed request may nevertheless have reached the server.

    A connect timeout or a refused connection never sent anything; a read
    timeout or a connection dropped while waiting for the answer may have.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        text = repr(exc)
        return not any(marker in text for marker in ("NewConnectionError", "NameResolutionError",
                                                     "Failed to establish", "Connection refused"))
    return True


def default_classify(response: requests.Response) -> bool | float | None:
    """Retry 429 (waiting as asked) and 5xx (back-off); anything else is final."""
    if response.status_code == 429:
        wait = wait_from_headers(response)
        return True if wait is None else wait
    if response.status_code >= 500:
        return True
    return None


def make_session(headers: dict[str, str] | None = None) -> requests.Session:
    """Return a session with the package's User-Agent and the given headers."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.headers.update(headers or {})
    return session


def send(session: requests.Session, method: str, url: str, *, policy: RetryPolicy | None = None,
         classify: Callable[[requests.Response], bool | float | None] = default_classify,
         timeout: float = 30.0, what: str = "", secrets: tuple[str, ...] = (), idempotent: bool = True,
         **kwargs) -> requests.Response:
    """Send a request, retrying transient failures; return the final response.

    Parameters
    ----------
    session : requests.Session
        Session carrying the authentication headers.
    method, url : str
        The request.
    policy : RetryPolicy, optional
        Retries and back-off (default: 4 retries from 1 s).
    classify : callable
        ``classify(response)`` → None (final), True (retry after back-off), a
        wait in seconds (retry after that wait), or a :class:`RateLimit` (retry
        after that wait, without using up the retries, until a full
        ``policy.window`` has been waited).
    timeout : float
        Seconds for connect and read.
    what : str
        French label of the call for messages (e.g. « Dolibarr GET /thirdparties »).
    secrets : tuple of str
        Extra values to mask in messages (e.g. a webhook URL).
    idempotent : bool
        False: never resend a request that may have reached the server (read
        timeout, connection dropped, 5xx); only connection failures and rate
        limits are retried.

    Returns
    -------
    requests.Response
        The last response (possibly an error status the caller interprets). Its
        attribute ``maybe_duplicate`` is True when an earlier attempt may have
        reached the server.

    Raises
    ------
    ServiceError
        When the service stays unreachable after every retry, or when a
        non-idempotent request may have been delivered without an answer.
    """
    policy = policy or RetryPolicy()
    label = what or f"{method} {url}"
    attempt = 0
    limited = 0.0  # seconds waited on rate limits
    uncertain = False  # an earlier attempt may have reached the server
    while True:
        try:
            response = session.request(method, url, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            attempt += 1
            delivered = possibly_delivered(exc)
            if delivered and not idempotent:
                raise ServiceError(redact(f"{label} : pas de réponse ({type(exc).__name__}) ; la requête a pu "
                                          f"être reçue et n'est pas renvoyée pour ne pas la dupliquer.",
                                          secrets)) from None
            uncertain = uncertain or delivered
            if attempt > policy.retries:
                raise ServiceError(redact(f"{label} : service injoignable après {attempt} tentative(s) "
                                          f"({type(exc).__name__}). Vérifier l'URL et le réseau.", secrets)) from None
            wait = policy.delay(attempt)
            log.warning("%s : %s (%s), nouvel essai %d/%d dans %.1f s.", redact(label, secrets),
                        "pas de réponse" if delivered else "connexion impossible", type(exc).__name__, attempt,
                        policy.retries, wait)
            policy.sleep(wait)
            continue
        except requests.RequestException as exc:  # invalid URL, too many redirects…: not transient
            raise ServiceError(redact(f"{label} : requête impossible ({type(exc).__name__}). Vérifier l'URL "
                                      f"configurée.", secrets)) from None
        response.maybe_duplicate = uncertain
        verdict = classify(response)
        if verdict is None or verdict is False:
            return response
        if isinstance(verdict, RateLimit):
            if limited >= policy.window:
                return response
            wait = min(policy.max_wait, max(0.0, float(verdict)))
            limited += max(wait, 1.0)  # a zero wait still counts, so the loop always ends
            log.warning("%s : limite de débit (HTTP %d), attente de %.1f s (%.0f s sur %.0f s acceptées).",
                        redact(label, secrets), response.status_code, wait, limited, policy.window)
            response.close()
            policy.sleep(wait)
            continue
        if response.status_code >= 500 and not idempotent:
            return response
        attempt += 1
        if attempt > policy.retries:
            return response
        uncertain = uncertain or response.status_code >= 500
        wait = policy.delay(attempt) if verdict is True else min(policy.max_wait, float(verdict))
        log.warning("%s : réponse HTTP %d, nouvel essai %d/%d dans %.1f s.",
                    redact(label, secrets), response.status_code, attempt, policy.retries, wait)
        response.close()
        policy.sleep(wait)
