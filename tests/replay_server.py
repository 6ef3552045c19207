"""A real HTTP server on 127.0.0.1 that replays recorded Dolibarr 20.0.2 exchanges, and nothing else.

Each ``*.json`` of ``../shared/data/dolibarr-20.0.2`` holds one real exchange
(request method, path, query, key, body; response status, headers, body). The
server answers a request with the recording whose method, path, query, key
(``<APIKEY>`` or ``<APIKEY_READER>``) and JSON body match. Only these rules,
each read from the recorded behaviour, widen the match:

- *list defaults*: on a list root (``/thirdparties``…), a missing ``sortfield``,
  ``sortorder``, ``limit`` or ``page`` equals its default (``t.rowid`` — ``t.id``
  for ``/agendaevents`` —, ``ASC``, ``100``, ``0``: the ``index()`` signatures,
  README « Listing and pagination »), so ``limit=100&page=0`` is the recorded
  default list;
- *auth*: a missing or wrong ``DOLAPIKEY`` gets the recorded 401 (503 for a
  ``dolcrypt:`` key), whatever the route: Dolibarr checks the key before routing;
- *v21*: with ``v21=True``, ``pagination_data=true`` wraps a recorded list in
  ``{"data", "pagination"}`` as Dolibarr ≥ 21 does (README « pagination_data »);
- *faults*: ``fail(path, times, status)`` answers a transient gateway error (a
  proxy in front of Dolibarr, not Dolibarr itself);
- *declared*: ``add(...)`` serves a recorded exchange for another request; a test
  that uses it says in a comment why the recorded answer holds there.

Several recordings of the same request (``GET /status``, ``GET /thirdparties/7``
before and after a write…) are told apart with ``prefer(name)``. A request that
matches nothing is **unrecorded**: it gets a bare ``400 UNRECORDED`` and is kept
in :attr:`ReplayServer.unrecorded`; leaving the ``with`` block (or calling
:meth:`ReplayServer.check`) then fails the test. Every answer is logged with
the fixture that served it.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

API = "/api/index.php"
LIST_ROOTS = {"thirdparties", "contacts", "contracts", "projects", "categories", "agendaevents"}
_SKIP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}
ADMIN, READER = "<APIKEY>", "<APIKEY_READER>"


@dataclass
class Exchange:
    """One recorded exchange."""

    name: str
    method: str
    path: str
    query: dict
    status: int
    reason: str
    headers: dict
    body: object  # decoded JSON, or str for a non-JSON body
    is_json: bool = True
    key: str = ADMIN
    request_body: object = None

    def payload(self) -> bytes:
        if self.is_json:
            return json.dumps(self.body, ensure_ascii=False).encode("utf-8")
        return (self.body or "").encode("utf-8")


def _norm_query(path: str, query: dict) -> tuple:
    q = {str(k): str(v) for k, v in query.items() if k not in ("DOLAPIKEY", "api_key")}
    root = path.strip("/")
    if root in LIST_ROOTS:
        defaults = {"sortfield": "t.id" if root == "agendaevents" else "t.rowid", "sortorder": "ASC",
                    "limit": "100", "page": "0"}
        for k, v in defaults.items():
            if q.get(k) == v:
                del q[k]
    return tuple(sorted(q.items()))


def _norm_body(body) -> str:
    return "" if body in (None, "") else json.dumps(body, sort_keys=True, ensure_ascii=False)


def load_exchanges(directory: Path) -> dict[str, Exchange]:
    """Load every recorded exchange of the fixture directory, by file stem."""
    out = {}
    for path in sorted(Path(directory).glob("*.json")):
        if path.name == "explorer_swagger.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        req, res = data["request"], data["response"]
        is_json = res.get("json") is not None or "text" not in res
        headers = req.get("headers") or {}
        key = headers.get("DOLAPIKEY") or (req.get("query") or {}).get("DOLAPIKEY") or ""
        out[path.stem] = Exchange(path.stem, req["method"], req["path"], dict(req.get("query") or {}),
                                  int(res["status"]), res.get("reason", ""), dict(res.get("headers") or {}),
                                  res["json"] if is_json else res.get("text", ""), is_json, key,
                                  req.get("body"))
    return out


class ReplayServer:
    """Replay recorded Dolibarr exchanges on 127.0.0.1 (port chosen by the system).

    Parameters
    ----------
    fixtures : Path
        The recorded exchanges directory.
    api_key : str
        The key that stands for the recorded admin key ``<APIKEY>``.
    reader_key : str, optional
        The key that stands for ``<APIKEY_READER>`` (the recorded least-privilege user).
    v21 : bool
        Honour ``pagination_data=true`` with the Dolibarr ≥ 21 wrapper.
    """

    def __init__(self, fixtures: Path, api_key: str, *, reader_key: str | None = None, v21: bool = False):
        self.fx = load_exchanges(fixtures)
        self.keys = {api_key: ADMIN, **({reader_key: READER} if reader_key else {})}
        self.v21 = v21
        self.log: list[dict] = []
        self.headers_seen: list[dict] = []
        self.bodies_seen: list[object] = []
        self.unrecorded: list[str] = []
        self.extra: dict[tuple, Exchange] = {}
        self.faults: dict[str, list[tuple[int, str]]] = {}
        self._index: dict[tuple, Exchange] = {}
        for ex in self.fx.values():
            if ex.name.startswith("prod_") or ex.key not in (ADMIN, READER):
                continue
            key = self._key(ex.method, ex.path, ex.query, ex.key, ex.request_body)
            current = self._index.get(key)
            if current is None or (current.status >= 300 and ex.status < 300):
                self._index[key] = ex
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @staticmethod
    def _key(method, path, query, role, body) -> tuple:
        return (method, path, _norm_query(path, query), role, _norm_body(body) if method != "GET" else "")

    # -- control
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "ReplayServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *exc):
        self.stop()
        if exc_type is None:
            self.check()

    def check(self) -> None:
        """Fail when a request got no recorded answer."""
        if self.unrecorded:
            raise AssertionError("requêtes sans échange enregistré : " + " ; ".join(self.unrecorded))

    def prefer(self, name: str) -> None:
        """Answer the request of recording ``name`` with that recording (among several of the same request)."""
        ex = self.fx[name]
        self._index[self._key(ex.method, ex.path, ex.query, ex.key, ex.request_body)] = ex

    def fail(self, path: str, times: int = 1, status: int = 502) -> None:
        """Answer the next ``times`` requests to ``path`` with a transient gateway error."""
        body = f"<html><body><h1>{status}</h1>Passerelle indisponible</body></html>"
        self.faults.setdefault(path, []).extend([(status, body)] * times)

    def add(self, method: str, path: str, query: dict, *, like: str, name: str = "", body=None,
            role: str | None = None) -> None:
        """Serve the recorded exchange ``like`` for another request (the test says why it holds).

        ``role`` (``ADMIN`` or ``READER``) is the key the request comes with (default: that of ``like``).
        """
        ref = self.fx[like]
        self.extra[self._key(method, path, query, role or ref.key, body)] = Exchange(
            name or f"{like}[declared]", method, path, query, ref.status, ref.reason, dict(ref.headers),
            ref.body, ref.is_json, ref.key)

    def served(self) -> list[str]:
        """Return the fixture names that answered, in order."""
        return [entry["fixture"] for entry in self.log]

    # -- resolution
    def resolve(self, method: str, path: str, query: dict, key: str | None, body) -> Exchange | None:
        if key and key.startswith("dolcrypt:"):
            return self.fx["error_auth_dolcrypt_prefix"]
        role = self.keys.get(key or "")
        if role is None:
            return self.fx["error_auth_missing_key" if not key else "error_auth_bad_key"]
        root = path.strip("/").split("/")[0]
        wrap = self.v21 and query.get("pagination_data") == "true"
        q = {k: v for k, v in query.items() if not (wrap and k == "pagination_data")}
        k = self._key(method, path, q, role, body)
        ex = self.extra.get(k) or self._index.get(k)
        if ex is None:
            return None
        if wrap and root in LIST_ROOTS and ex.status == 200 and isinstance(ex.body, list):
            limit = int(q.get("limit", 100))
            full = self._index[self._key("GET", f"/{root}", {}, ADMIN, None)]
            total = len(full.body)
            wrapped = {"data": ex.body, "pagination": {"total": total, "page": int(q.get("page", 0)),
                                                       "page_count": -(-total // limit) if limit else 1,
                                                       "limit": limit}}
            ex = Exchange(ex.name + "+v21", ex.method, ex.path, query, 200, ex.reason, ex.headers, wrapped, True)
        return ex

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self):
                parts = urlsplit(self.path)
                path = parts.path[len(API):] if parts.path.startswith(API) else parts.path
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with server._lock:
                    server.headers_seen.append(dict(self.headers))
                    server.bodies_seen.append(body)
                    fault = server.faults.get(path.rstrip("/"), [])
                    injected = fault.pop(0) if fault else None
                if injected:
                    status, text = injected
                    reason = "Bad Gateway" if status == 502 else "Service Unavailable"
                    payload = text.encode()
                    headers = {"Content-Type": "text/html; charset=utf-8"}
                    name = f"fault {status}"
                else:
                    ex = server.resolve(self.command, path, query, self.headers.get("DOLAPIKEY"), body)
                    if ex is None:
                        name = "UNRECORDED"
                        status, reason, headers, payload = 400, "UNRECORDED", {"Content-Type": "text/plain"}, \
                            b"UNRECORDED"
                        with server._lock:
                            server.unrecorded.append(f"{self.command} {path} {query} {body if body else ''}".strip())
                    else:
                        status, payload, headers, name = ex.status, ex.payload(), ex.headers, ex.name
                        reason = ex.reason or None
                with server._lock:
                    server.log.append({"method": self.command, "path": path, "query": query,
                                       "status": status, "fixture": name, "body": body})
                self.send_response_only(status, reason)
                for k, v in headers.items():
                    if k.lower() not in _SKIP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
