"""A fake Rocket.Chat on 127.0.0.1 that answers as the real server's code does.

No exchange with a real Rocket.Chat was recorded, so every answer below was
written from the server's own source (RocketChat/Rocket.Chat, ``develop``
branch, read with the project's code search), cited beside each behaviour:

- ``apps/meteor/app/api/server/ApiClass.ts``: authentication first
  (``_internalRouteActionHandler``: 401 ``{"success": false, "error": "You must
  be logged in to do this."}``, plus ``status``/``message`` before 8.0), then
  the rate limiter (``enforceRateLimit``: headers ``X-RateLimit-Limit``,
  ``-Remaining``, ``-Reset`` = epoch ms, no ``Retry-After``; 429 body from
  ``tooManyRequests`` with the Meteor error message
  ``"… You must wait N seconds before trying this endpoint again.
  [error-too-many-requests]"``), then the action; an exception becomes
  ``failure(e.message, e.error)`` = 400 ``{"success": false, "error": …,
  "errorType": …}`` (``errorType`` only for a ``Meteor.Error``);
- ``meteor/meteor`` ``packages/rate-limit/rate-limit.js`` (``Rule.apply``,
  ``RateLimiter.increment``/``check``): fixed windows per route and client
  address, reset lazily by the first call arriving more than the interval after
  the last reset, ``numInvocations > numRequestsAllowed`` refused;
- ``apps/meteor/server/settings/rate.ts``: 10 calls per 60,000 ms by default;
- ``apps/meteor/app/api/server/v1/chat.ts``: ``chat.sendMessage`` (body
  ``{"message": {…}}``, answer ``{"message", "success": true}``),
  ``chat.getMessage`` (``failure()`` = ``{"success": false}`` when absent);
- ``apps/meteor/app/lib/server/methods/sendMessage.ts`` (``executeSendMessage``):
  ``Message_MaxAllowedSize`` on ``msg`` (``.length``: UTF-16 units) →
  ``Meteor.Error('error-message-size-exceeded', 'Message size exceeds
  Message_MaxAllowedSize', {method: 'sendMessage'})``;
- ``apps/meteor/app/authorization/server/functions/canSendMessage.ts``:
  ``new Error('error-invalid-room')``, ``new Error('error-not-allowed')``;
- ``apps/meteor/app/lib/server/functions/sendMessage.ts``: ``validateMessage``
  (``title_link`` must pass ``isURL`` → ``Error('Invalid href value
  provided')``; a field without title or value → ``Error('Invalid attachment
  field, title and value is required')``); a message whose ``_id`` exists is
  skipped (``messageAlreadyExists``), after which ``chat.sendMessage``
  normalises ``undefined`` and fails with ``Cannot read properties of undefined
  (reading 'starred')`` (``normalizeMessagesForUser.ts``);
- ``apps/meteor/lib/utils/isURL.ts``: ``/^(https?:\\/\\/|data:)/``;
- ``apps/meteor/app/api/server/v1/rooms.ts`` (``findRoomByIdOrName``,
  ``rooms.info``): ``Meteor.Error('error-room-not-found', 'The required
  "roomId" or "roomName" param provided does not match any channel')``,
  ``failure('not-allowed', 'Not Allowed')``;
- ``apps/meteor/app/integrations/server/api/api.ts``: webhooks, rate-limited
  per webhook URL and never exempt (``WebHookAPI.shouldVerifyRateLimit``); a
  disabled integration → 503 ``{"success": false, "error": "Service
  Unavailable"}`` (``executeIntegrationRest``); a wrong id or token →
  ``authenticatedRoute`` throws outside the route's try, so Hono's default
  handler answers 500 ``text/plain`` « Internal Server Error »
  (``honojs/hono`` ``src/hono-base.ts`` ``errorHandler``); the older
  Restivus code (``api.js``) answered 404 ``{"success": false, "error":
  "Invalid integration id or token provided."}``; ``processWebhookMessage``
  errors become ``failure(error || message)`` (e.g. ``invalid-channel``,
  ``processWebhookMessage.ts``).

The server's clock is a :class:`SimClock` shared with the client's ``sleep``:
rate-limit windows and ``Date`` headers follow simulated time, so a test waits
minutes of server time in milliseconds.
"""
from __future__ import annotations

import email.utils
import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOGGED_OUT = "You must be logged in to do this."


class SimClock:
    """A simulated clock (epoch seconds) whose ``sleep`` advances time instantly."""

    def __init__(self, start: float = 1_790_000_000.0):
        self.now = float(start)
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(float(seconds))
            self.now += max(0.0, float(seconds))


class Rule:
    """One Meteor rate-limit rule (``packages/rate-limit/rate-limit.js``, class ``Rule``)."""

    def __init__(self, allowed: int, interval_ms: int, now_ms: int):
        self.allowed, self.interval = allowed, interval_ms
        self.last_reset = now_ms
        self.counters: dict[str, int] = {}

    def increment(self, key: str, now_ms: int) -> None:
        # RateLimiter.increment: reset when timeSinceLastReset > intervalTime, then count
        if now_ms - self.last_reset > self.interval:
            self.counters, self.last_reset = {}, now_ms
        self.counters[key] = self.counters.get(key, 0) + 1

    def check(self, key: str, now_ms: int) -> tuple[bool, int, int]:
        # RateLimiter.check: (allowed, numInvocationsLeft, timeToReset)
        n = self.counters.get(key)
        to_reset = self.interval - (now_ms - self.last_reset)
        if to_reset < 0:
            self.counters, self.last_reset = {}, now_ms
            to_reset, n = self.interval, 0
        n = n or 0
        if n > self.allowed:
            return False, 0, to_reset
        return True, self.allowed - n, to_reset


@dataclass
class Integration:
    """An incoming webhook as stored by Rocket.Chat."""

    id: str
    token: str
    channel: str = "#gar-pilotage"
    enabled: bool = True
    user_can_post: bool = True


@dataclass
class Settings:
    """The server settings the answers depend on."""

    max_size: int = 5000  # Message_MaxAllowedSize
    calls: int = 10  # API_Enable_Rate_Limiter_Limit_Calls_Default
    interval_ms: int = 60000  # API_Enable_Rate_Limiter_Limit_Time_Default
    breaking_8: bool = False  # shouldBreakInVersion('8.0.0')
    old_webhooks: bool = False  # Restivus api.js (404) instead of api.ts (500)
    rooms: dict = field(default_factory=lambda: {"gar-pilotage": "GENERALroom1234567"})
    can_access: bool = True  # canAccessRoom for the token's user (rooms.info and canSendMessage)
    readonly: bool = False  # room.ro without the post-readonly permission
    bypass_rate_limit: bool = False  # permission api-bypass-rate-limit (REST only)
    #: The REST rules are added at startup (ApiClass.addRoute → addRateLimiterRuleForRoutes), so a
    #: client usually arrives inside a window already begun; webhook rules start at their first call.
    started_ms_ago: int = 37_000


class FakeRocketChat:
    """A Rocket.Chat answering as its code does (see the module docstring).

    Parameters
    ----------
    clock : SimClock
        The server's clock (also the client's ``sleep``).
    token, user_id : str
        The personal access token the REST API accepts.
    integrations : list of Integration
        The incoming webhooks.
    """

    def __init__(self, clock: SimClock, *, token: str, user_id: str, integrations: list[Integration] = (),
                 settings: Settings | None = None):
        self.clock = clock
        self.token, self.user_id = token, user_id
        self.integrations = {i.id: i for i in integrations}
        self.settings = settings or Settings()
        self.messages: dict[str, dict] = {}  # _id → stored message (REST)
        self.webhook_posts: list[dict] = []
        self.log: list[dict] = []  # every request: method, path, status
        self.delays: dict[str, list[float]] = {}  # route → real seconds to stall the next answers
        self._rules: dict[str, Rule] = {}
        self._started_ms = self._now_ms() - self.settings.started_ms_ago
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def stall(self, route: str, seconds: float, times: int = 1) -> None:
        """Process the next ``times`` requests to ``route`` normally but answer only after ``seconds`` (real)."""
        self.delays.setdefault(route, []).extend([seconds] * times)

    def requests_to(self, path_part: str) -> list[dict]:
        return [r for r in self.log if path_part in r["path"]]

    # ------------------------------------------------------------------ server logic
    def _now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    def _rate_limit(self, route: str, ip: str, headers: dict) -> tuple[int, dict] | None:
        """ApiClass.enforceRateLimit: increment, check, set the three headers, refuse past the limit."""
        now = self._now_ms()
        with self._lock:
            rule = self._rules.get(route)
            if rule is None:
                start = self._started_ms if route.startswith("/api/") else now
                rule = self._rules[route] = Rule(self.settings.calls, self.settings.interval_ms, start)
            key = f"IPAddr{ip}route{route}"
            rule.increment(key, now)
            allowed, left, to_reset = rule.check(key, now)
        headers["X-RateLimit-Limit"] = str(self.settings.calls)
        headers["X-RateLimit-Remaining"] = str(left)
        headers["X-RateLimit-Reset"] = str(now + to_reset)
        if allowed:
            return None
        seconds = math.ceil(to_reset / 1000)
        # Meteor.Error(error, reason).message is "reason [error]"; tooManyRequests(e.message)
        return 429, {"success": False, "error": f"Error, too many requests. Please slow down. You must wait "
                                                f"{seconds} seconds before trying this endpoint again. "
                                                f"[error-too-many-requests]"}

    @staticmethod
    def _failure(message: str, error_type: str | None = None, details=None) -> tuple[int, dict]:
        """ApiClass.failure(e.message, e.error, …, e): 400 with errorType/details only when present."""
        body = {"success": False, "error": message}
        if error_type:
            body["errorType"] = error_type
        if details:
            body["details"] = details
        return 400, body

    def _meteor_error(self, error: str, reason: str | None = None, details=None) -> tuple[int, dict]:
        return self._failure(f"{reason} [{error}]" if reason else f"[{error}]", error, details)

    @staticmethod
    def _validate(message: dict) -> str | None:
        """sendMessage.ts validateMessage / validateAttachment(sFields): the plain Error thrown, or None."""
        for att in message.get("attachments") or []:
            for key in ("title_link", "author_link", "author_icon", "image_url", "thumb_url", "message_link"):
                value = att.get(key)
                if value is not None and not (isinstance(value, str) and (value.startswith("http://")
                                                                          or value.startswith("https://")
                                                                          or value.startswith("data:"))):
                    return "Invalid href value provided"
            for f in att.get("fields") or []:
                if not f.get("value") or not f.get("title"):
                    return "Invalid attachment field, title and value is required"
        return None

    def _authenticated(self, headers) -> bool:
        return headers.get("X-Auth-Token") == self.token and headers.get("X-User-Id") == self.user_id

    def _unauthorized(self) -> tuple[int, dict]:
        body = {"success": False, "error": LOGGED_OUT}
        if not self.settings.breaking_8:  # compatibility with the old API (TODO: MAJOR)
            body.update({"status": "error", "message": LOGGED_OUT})
        return 401, body

    def rest(self, method: str, path: str, query: dict, body: dict, headers, ip: str, out: dict):
        """An ``/api/v1/…`` call → (status, JSON body)."""
        route = path.removeprefix("/api/v1/")
        if not self._authenticated(headers):
            return self._unauthorized()
        if not self.settings.bypass_rate_limit:
            limited = self._rate_limit(f"/api/v1/{route}{method.lower()}", ip, out)
            if limited:
                return limited
        if (method, route) == ("GET", "rooms.info"):
            name = (query.get("roomName") or [""])[0]
            rid = self.settings.rooms.get(name)
            if rid is None:
                return self._meteor_error("error-room-not-found", 'The required "roomId" or "roomName" param '
                                          "provided does not match any channel")
            if not self.settings.can_access:
                return self._failure("not-allowed", "Not Allowed")
            return 200, {"room": {"_id": rid, "name": name, "t": "c"}, "success": True}
        if (method, route) == ("GET", "chat.getMessage"):
            msg = self.messages.get((query.get("msgId") or [""])[0])
            if msg is None:
                return 400, {"success": False}  # failure() with no argument: error undefined is dropped
            return 200, {"message": msg, "success": True}
        if (method, route) == ("POST", "chat.sendMessage"):
            message = body.get("message")
            if not isinstance(message, dict) or set(body) - {"message", "previewUrls"}:
                return 400, {"success": False, "errorType": "invalid-params",
                             "error": "must have required property 'message'"}
            msg = message.get("msg")
            if msg and len(msg.encode("utf-16-le")) // 2 > self.settings.max_size:
                return self._meteor_error("error-message-size-exceeded",
                                          "Message size exceeds Message_MaxAllowedSize", {"method": "sendMessage"})
            rid = message.get("rid")
            if rid not in self.settings.rooms.values():
                return self._failure("error-invalid-room")
            if not self.settings.can_access:
                return self._failure("error-not-allowed")
            if self.settings.readonly:
                return self._failure("You can't send messages because the room is readonly.")
            invalid = self._validate(message)
            if invalid:
                return self._failure(invalid)
            with self._lock:
                if message.get("_id") and message["_id"] in self.messages:
                    # sendMessage() returns undefined; normalizeMessagesForUser([undefined]) throws
                    return self._failure("Cannot read properties of undefined (reading 'starred')")
                stored = {**message, "_id": message.get("_id") or f"srv{len(self.messages):014d}",
                          "u": {"_id": self.user_id, "username": "gar.bot"}, "ts": self.clock.time()}
                self.messages[stored["_id"]] = stored
            return 200, {"message": stored, "success": True}
        return 404, {"success": False, "error": "Resource not found"}

    def hook(self, path: str, body: dict, ip: str, out: dict):
        """A ``/hooks/<id>/<token>`` post → (status, JSON body or text)."""
        parts = path.strip("/").split("/")
        integration = self.integrations.get(parts[1]) if len(parts) == 3 else None
        if integration is None or integration.token != parts[2]:
            if self.settings.old_webhooks:
                return 404, {"success": False, "error": "Invalid integration id or token provided."}
            return 500, "Internal Server Error"
        limited = self._rate_limit(f"/hooks/{'/'.join(parts[1:])}post", ip, out)
        if limited:
            return limited
        if not integration.enabled:
            if self.settings.old_webhooks:  # api.js executeIntegrationRest: body 'Service Unavailable'
                return 503, json.dumps("Service Unavailable")
            return 503, {"success": False, "error": "Service Unavailable"}
        if not body:
            return 200, {"success": True}
        if body.get("channel") or body.get("roomId"):
            return 400, {"success": False, "error": "overriding destination channel is disabled for this integration"}
        if integration.channel.lstrip("#") not in self.settings.rooms:
            return 400, {"success": False, "error": "invalid-channel"}  # failure(error || message)
        if not integration.user_can_post:
            return 400, {"success": False, "error": "error-not-allowed"}
        invalid = self._validate(body)
        if invalid:
            return 400, {"success": False, "error": invalid}
        self.webhook_posts.append(body)
        return 200, {"success": True}

    # ------------------------------------------------------------------ HTTP
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def date_time_string(self, timestamp=None):  # the Date header follows the simulated clock
                return email.utils.formatdate(server.clock.time(), usegmt=True)

            def _serve(self, method: str):
                split = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw.decode("utf-8")) if raw else {}
                except ValueError:
                    body = {}
                out: dict = {}
                ip = self.client_address[0]
                if split.path.startswith("/api/v1/"):
                    status, answer = server.rest(method, split.path, parse_qs(split.query), body, self.headers,
                                                 ip, out)
                elif split.path.startswith("/hooks/") and method == "POST":
                    status, answer = server.hook(split.path, body, ip, out)
                else:
                    status, answer = 404, "404 Not Found"
                route = split.path.rsplit("/", 1)[-1] if split.path.startswith("/api/") else "hooks"
                server.log.append({"method": method, "path": split.path, "status": status, "json": body,
                                   "at": server.clock.time()})
                delays = server.delays.get(route) or []
                if delays:
                    time.sleep(delays.pop(0))
                if isinstance(answer, str) and answer.startswith('"'):  # a JSON string body (Restivus)
                    data, ctype = answer.encode(), "application/json"
                elif isinstance(answer, str):
                    data, ctype = answer.encode(), "text/plain; charset=UTF-8"
                else:
                    data, ctype = json.dumps(answer).encode(), "application/json"
                try:
                    self.send_response(status)
                    for k, v in out.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):  # noqa: N802
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

        return Handler
