"""HTTP helpers shared by the integrations: session, retries, rate limits, redaction.

Every request goes through :func:`send`, which retries with exponential
back-off on connection errors and on the responses a ``classify`` callback
marks as transient (5xx by default), and waits as the server asks on a rate
limit (``429``, ``Retry-After``, ``X-RateLimit-Reset``). Secrets are kept out
of logs by :class:`RedactFilter` and out of error messages by :func:`redact`.
"""
from __future__ import annotations

import email.utils
import logging
import random
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

def redact(text: object, extra: tuple[str, ...] | list[str] = ()) -> str:
    """Return ``text`` with every secret of the environment (and ``extra``) masked."""
    out = str(text)
    for value in sorted({*secret_values(), *(e for e in extra if e and len(e) >= 6)}, key=len, reverse=True):
        out = out.replace(value, MASK)
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
    sleep : callable
        ``time.sleep`` (replaceable, e.g. to record waits).
    """

    retries: int = 4
    backoff: float = 1.0
    max_wait: float = 120.0
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
         timeout: float = 30.0, what: str = "", secrets: tuple[str, ...] = (), **kwargs) -> requests.Response:
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
        ``classify(response)`` → None (final), True (retry after back-off) or a
        wait in seconds (retry after that wait, e.g. a rate limit).
    timeout : float
        Seconds for connect and read.
    what : str
        French label of the call for messages (e.g. « Dolibarr GET /thirdparties »).
    secrets : tuple of str
        Extra values to mask in messages (e.g. a webhook URL).

    Returns
    -------
    requests.Response
        The last response (possibly an error status the caller interprets).

    Raises
    ------
    ServiceError
        When the service stays unreachable after every retry.
    """
    policy = policy or RetryPolicy()
    label = what or f"{method} {url}"
    attempt = 0
    while True:
        try:
            response = session.request(method, url, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            attempt += 1
            if attempt > policy.retries:
                raise ServiceError(redact(f"{label} : service injoignable après {attempt} tentative(s) "
                                          f"({type(exc).__name__}). Vérifier l'URL et le réseau.", secrets)) from None
            wait = policy.delay(attempt)
            log.warning("%s : connexion impossible (%s), nouvel essai %d/%d dans %.1f s.",
                        redact(label, secrets), type(exc).__name__, attempt, policy.retries, wait)
            policy.sleep(wait)
            continue
        except requests.RequestException as exc:  # invalid URL, too many redirects…: not transient
            raise ServiceError(redact(f"{label} : requête impossible ({type(exc).__name__}). Vérifier l'URL "
                                      f"configurée.", secrets)) from None
        verdict = classify(response)
        if verdict is None or verdict is False:
            return response
        attempt += 1
        if attempt > policy.retries:
            return response
        wait = policy.delay(attempt) if verdict is True else min(policy.max_wait, float(verdict))
        log.warning("%s : réponse HTTP %d, nouvel essai %d/%d dans %.1f s.",
                    redact(label, secrets), response.status_code, attempt, policy.retries, wait)
        response.close()
        policy.sleep(wait)
