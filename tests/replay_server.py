"""A real HTTP server on 127.0.0.1 that replays recorded Dolibarr 20.0.2 exchanges.

Each ``*.json`` of ``../shared/data/dolibarr-20.0.2`` holds one real exchange
(request method, path, query; response status, headers, body). The server
answers a request whose method, path and query match a recording with that
recording's status, headers and body. On top of the exact replay, and only
from recorded bodies:

- *pages*: a list request (``limit``/``page``/``sortfield=t.rowid``) that was
  not recorded is answered by slicing the recorded unfiltered list of that
  endpoint, past its end with the endpoint's recorded end-of-list response
  (404 for third parties and contacts, ``200 []`` for the others);
- *v21*: with ``v21=True``, ``pagination_data=true`` wraps the recorded list
  in ``{"data", "pagination"}`` as Dolibarr ≥ 21 does;
- *auth*: a missing or wrong ``DOLAPIKEY`` gets the recorded 401 responses (503 for a
  ``dolcrypt:`` key);
  ``forbid(resource)`` serves the recorded 403;
- *faults*: ``fail(path, times, status)`` answers a transient gateway error first.

Requests that match nothing get the recorded 501 HTML « API not found ».
Every answer is logged in ``server.log`` with the fixture that served it.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

API = "/api/index.php"
LISTS = {"thirdparties": "404", "contacts": "404", "contracts": "empty", "projects": "empty", "categories": "empty"}
END_FIXTURES = {"thirdparties": "error_thirdparties_list_page_past_end_404",
                "contacts": "error_contacts_list_page_past_end_404",
                "contracts": "contracts_list_limit2_page2",
                "projects": "projects_list_page_past_end_empty",
                "categories": "categories_list_page_past_end_empty"}
PAGING_KEYS = {"limit", "page", "sortfield", "sortorder", "includeroles", "pagination_data"}
_SKIP_HEADERS = {"content-length", "transfer-encoding", "connection"}


@dataclass
class Exchange:
    """One recorded (or derived) exchange."""

    name: str
    method: str
    path: str
    query: dict
    status: int
    reason: str
    headers: dict
    body: object  # decoded JSON, or str for a non-JSON body
    is_json: bool = True

    def payload(self) -> bytes:
        if self.is_json:
            return json.dumps(self.body, ensure_ascii=False).encode("utf-8")
        return (self.body or "").encode("utf-8")


def _norm_query(query: dict) -> tuple:
    return tuple(sorted((str(k), str(v)) for k, v in query.items() if k not in ("DOLAPIKEY", "api_key")))


def load_exchanges(directory: Path) -> dict[str, Exchange]:
    """Load every recorded exchange of the fixture directory, by file stem."""
    out = {}
    for path in sorted(Path(directory).glob("*.json")):
        if path.name == "explorer_swagger.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        req, res = data["request"], data["response"]
        is_json = res.get("json") is not None or "text" not in res
        out[path.stem] = Exchange(path.stem, req["method"], req["path"], dict(req.get("query") or {}),
                                  int(res["status"]), res.get("reason", ""), dict(res.get("headers") or {}),
                                  res["json"] if is_json else res.get("text", ""), is_json)
    return out


class ReplayServer:
    """Replay recorded Dolibarr exchanges on 127.0.0.1 (port chosen by the system).

    Parameters
    ----------
    fixtures : Path
        The recorded exchanges directory.
    api_key : str
        The key the server accepts (header ``DOLAPIKEY``).
    v21 : bool
        Honour ``pagination_data=true`` with the Dolibarr ≥ 21 wrapper.
    """

    def __init__(self, fixtures: Path, api_key: str, *, v21: bool = False):
        self.fx = load_exchanges(fixtures)
        self.api_key = api_key
        self.v21 = v21
        self.log: list[dict] = []
        self.headers_seen: list[dict] = []
        self.extra: dict[tuple, Exchange] = {}
        self.forbidden: set[str] = set()
        self.faults: dict[str, list[tuple[int, str]]] = {}
        self._index: dict[tuple, Exchange] = {}
        for ex in self.fx.values():
            if ex.name.startswith("prod_") or ex.method != "GET":
                continue
            key = (ex.method, ex.path, _norm_query(ex.query))
            current = self._index.get(key)
            if current is None or (current.status >= 300 and ex.status < 300):
                self._index[key] = ex
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

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

    def __exit__(self, *exc):
        self.stop()

    def forbid(self, resource: str) -> None:
        """Answer every request under ``/resource`` with the recorded 403."""
        self.forbidden.add(resource)

    def fail(self, path: str, times: int = 1, status: int = 502) -> None:
        """Answer the next ``times`` requests to ``path`` with a transient gateway error."""
        body = f"<html><body><h1>{status}</h1>Passerelle indisponible</body></html>"
        self.faults.setdefault(path, []).extend([(status, body)] * times)

    def add(self, method: str, path: str, query: dict, *, like: str, status: int | None = None,
            body=None, name: str = "") -> None:
        """Serve the recorded exchange ``like`` (optionally with another status or body) for a new query."""
        ref = self.fx[like]
        self.extra[(method, path, _norm_query(query))] = Exchange(
            name or f"{like}[derived]", method, path, query, ref.status if status is None else status, ref.reason,
            dict(ref.headers), ref.body if body is None else body, ref.is_json if body is None else True)

    def served(self) -> list[str]:
        """Return the fixture names that answered, in order."""
        return [entry["fixture"] for entry in self.log]

    # -- resolution
    def resolve(self, method: str, path: str, query: dict, key: str | None) -> Exchange:
        if key and key.startswith("dolcrypt:"):
            return self.fx["error_auth_dolcrypt_prefix"]
        if path != "/nosuchendpoint" and key != self.api_key:
            return self.fx["error_auth_missing_key" if not key else "error_auth_bad_key"]
        root = path.strip("/").split("/")[0]
        if root in self.forbidden:
            name = f"error_forbidden_403_{root}_list"
            return self.fx.get(name, self.fx["error_forbidden_403_thirdparties_list"])
        wrap = self.v21 and query.get("pagination_data") == "true"
        q = {k: v for k, v in query.items() if not (wrap and k == "pagination_data")}
        nq = _norm_query(q)
        ex = self.extra.get((method, path, nq)) or self._index.get((method, path, nq))
        if ex is None and method == "GET" and root in LISTS and path == f"/{root}" and set(q) <= PAGING_KEYS \
                and q.get("sortfield", "t.rowid") == "t.rowid" and q.get("sortorder", "ASC") == "ASC":
            ex = self._page(root, q)
        if ex is None:
            unknown = self.fx["error_unknown_endpoint"]
            return Exchange("unrecorded", method, path, query, unknown.status, unknown.reason,
                            dict(unknown.headers), unknown.body, unknown.is_json)
        if wrap and root in LISTS and ex.status == 200 and isinstance(ex.body, list):
            limit = int(q.get("limit", 100))
            total = len(self._full(root).body)
            body = {"data": ex.body, "pagination": {"total": total, "page": int(q.get("page", 0)),
                                                    "page_count": -(-total // limit) if limit else 1,
                                                    "limit": limit}}
            ex = Exchange(ex.name + "+v21", ex.method, ex.path, query, 200, ex.reason, ex.headers, body, True)
        return ex

    def _full(self, root: str) -> Exchange:
        return self._index[("GET", f"/{root}", ())]

    def _page(self, root: str, q: dict) -> Exchange:
        full = self._full(root)
        items = sorted(full.body, key=lambda item: int(item["id"]))
        limit, page = int(q.get("limit", 100)), max(0, int(q.get("page", 0)))
        chunk = items[limit * page: limit * (page + 1)] if limit else items
        if not chunk:
            return self.fx[END_FIXTURES[root]]
        return Exchange(f"{full.name}[page {page}/{limit}]", "GET", full.path, q, 200, full.reason,
                        dict(full.headers), chunk, True)

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
                if length:
                    self.rfile.read(length)
                with server._lock:
                    server.headers_seen.append(dict(self.headers))
                    fault = server.faults.get(path.rstrip("/"), [])
                    injected = fault.pop(0) if fault else None
                if injected:
                    status, text = injected
                    reason = "Bad Gateway" if status == 502 else "Service Unavailable"
                    body = text.encode()
                    headers = {"Content-Type": "text/html; charset=utf-8"}
                    name = f"fault {status}"
                else:
                    ex = server.resolve(self.command, path, query, self.headers.get("DOLAPIKEY"))
                    status, body, headers, name = ex.status, ex.payload(), ex.headers, ex.name
                    reason = ex.reason or None
                with server._lock:
                    server.log.append({"method": self.command, "path": path, "query": query,
                                       "status": status, "fixture": name})
                self.send_response_only(status, reason)
                for k, v in headers.items():
                    if k.lower() not in _SKIP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
