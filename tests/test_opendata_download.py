"""``gar-analysis download`` against a real HTTP server on 127.0.0.1 serving the real shared files."""
from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from gar_analysis import config
from gar_analysis.errors import ConfigError
from gar_analysis.config import SHARED_OPENDATA_DIR
from gar_analysis.sources import opendata
from gar_analysis.sources.opendata import DownloadError, Downloader, download, fetch_records, records_url
from gar_analysis.sources.referentiel import load_ips

PREFIX = "/api/explore/v2.1/catalog/datasets/"
#: dataset id → real file served for its export (portal URL shape)
SERVED = {
    "fr-en-ips-colleges-ap2022": "ips-colleges-2022/fr-en-ips-colleges-ap2022.csv",
    "fr-en-annuaire-education": "dept35-ille-et-vilaine/fr-en-annuaire-education.csv",
    "fr-en-contour-academies-2020": "contours-academies-2020/fr-en-contour-academies-2020.geojson",
    "fr-en-indicateurs-valeur-ajoutee-colleges": "ivac-colleges/valeur-ajoutee-colleges_original.csv",
}
INSEE_PATH = "/insee/communes-france-2025.csv"
INSEE_FILE = "communes-france-2025-subset/communes-france-2025.csv"


def _shared(rel):
    p = SHARED_OPENDATA_DIR / rel
    if not p.exists():
        pytest.skip(f"données partagées absentes : {p}")
    return p


class Portal:
    """A fake Opendatasoft portal: real files, plus scripted faults per URL path."""

    def __init__(self):
        self.faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, dict]] = []
        self.tables: dict = {}
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                portal.requests.append((url.path, dict(self.headers)))
                fault = portal.faults.get(url.path, []).pop(0) if portal.faults.get(url.path) else "ok"
                if fault == "429":
                    return self._send(429, b"trop de requetes", {"Retry-After": "1"})
                if fault == "500":
                    return self._send(500, b"erreur")
                if fault == "slow":
                    time.sleep(1.5)
                if url.path.endswith("/records"):
                    return self._records(url)
                path = portal.path_for(url.path)
                if path is None:
                    return self._send(404, b"inconnu")
                body = path.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                last_mod = formatdate(path.stat().st_mtime, usegmt=True)
                if self.headers.get("If-None-Match") == etag:
                    return self._send(304, b"", {"ETag": etag})
                headers = {"ETag": etag, "Last-Modified": last_mod}
                if fault == "drop":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                return self._send(200, body, headers)

            def _records(self, url):
                q = parse_qs(url.query)
                limit, offset = int(q.get("limit", ["10"])[0]), int(q.get("offset", ["0"])[0])
                if limit > 100 or offset + limit > 10000:
                    return self._send(400, b'{"error": "limit"}')
                ds = url.path[len(PREFIX):].split("/")[0]
                if ds not in portal.tables:
                    portal.tables[ds] = load_ips(SHARED_OPENDATA_DIR / SERVED[ds])
                rows = portal.tables[ds]
                page = rows.iloc[offset: offset + limit].astype(object).where(rows.notna(), None)
                body = json.dumps({"total_count": len(rows), "results": page.to_dict("records")}, default=str)
                return self._send(200, body.encode(), {"Content-Type": "application/json"})

            def _send(self, code, body, headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def path_for(self, path):
        if path == INSEE_PATH:
            return SHARED_OPENDATA_DIR / INSEE_FILE
        if path.startswith(PREFIX) and "/exports/" in path:
            ds = path[len(PREFIX):].split("/")[0]
            if ds in SERVED:
                return SHARED_OPENDATA_DIR / SERVED[ds]
        return None

    def export_path(self, ds, fmt="csv"):
        return f"{PREFIX}{ds}/exports/{fmt}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def portal():
    _shared(SERVED["fr-en-ips-colleges-ap2022"])
    p = Portal()
    yield p
    p.close()


def fast(**kw):
    opts = dict(timeout=(2.0, 0.5), retries=2, backoff=0.05, max_wait=5.0, progress=False)
    opts.update(kw)
    return Downloader(**opts)


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_download_real_files_manifest_and_conditional(portal, tmp_path):
    out = tmp_path / "opendata"
    ids = ["fr-en-ips-colleges-ap2022", "fr-en-contour-academies-2020", "insee-communes"]
    with fast() as dl:
        mans = download(ids, out, base_url=portal.base_url, insee_url=portal.base_url + INSEE_PATH, downloader=dl)
    assert [m["statut"] for m in mans] == ["telecharge"] * 3
    ips = out / "fr-en-ips-colleges-ap2022.csv"
    assert ips.read_bytes() == _shared(SERVED["fr-en-ips-colleges-ap2022"]).read_bytes()
    man = json.loads((out / "fr-en-ips-colleges-ap2022.csv.manifest.json").read_text())
    assert man["lignes"] == 6973 and man["taille_octets"] == ips.stat().st_size
    assert man["sha256"] == hashlib.sha256(ips.read_bytes()).hexdigest()
    assert man["url"].startswith(portal.base_url + PREFIX + "fr-en-ips-colleges-ap2022/exports/csv?")
    assert "use_labels=false" in man["url"] and man["etag"] and man["last_modified"]
    assert mans[1]["lignes"] == 30  # GeoJSON features
    assert mans[2]["lignes"] == 483
    assert len(load_ips(ips)) == 6973
    # second run: conditional request → 304, file untouched
    mtime = ips.stat().st_mtime_ns
    with fast() as dl:
        again = download(ids[:1], out, base_url=portal.base_url, downloader=dl)
    assert again[0]["statut"] == "inchange"
    assert ips.stat().st_mtime_ns == mtime
    assert portal.requests[-1][1].get("If-None-Match") == man["etag"]
    # --force fetches again
    with fast() as dl:
        forced = download(ids[:1], out, base_url=portal.base_url, downloader=dl, force=True)
    assert forced[0]["statut"] == "telecharge"
    assert leftovers(out) == []


def test_429_retry_after_is_honoured(portal, tmp_path):
    ds = "fr-en-ips-colleges-ap2022"
    portal.faults[portal.export_path(ds)] = ["429"]
    start = time.monotonic()
    with fast() as dl:
        mans = download([ds], tmp_path, base_url=portal.base_url, downloader=dl)
    assert time.monotonic() - start >= 1.0  # Retry-After: 1, not the 0.05 s back-off
    assert mans[0]["lignes"] == 6973


def test_retry_after_beyond_max_wait_fails_clearly(portal, tmp_path):
    ds = "fr-en-ips-colleges-ap2022"
    portal.faults[portal.export_path(ds)] = ["429"]
    with fast(max_wait=0.5) as dl, pytest.raises(DownloadError) as err:
        download([ds], tmp_path, base_url=portal.base_url, downloader=dl)
    assert "Retry-After" in str(err.value) and "relancer plus tard" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_500_then_success_and_persistent_500(portal, tmp_path):
    ds = "fr-en-ips-colleges-ap2022"
    portal.faults[portal.export_path(ds)] = ["500", "500"]
    with fast() as dl:
        assert download([ds], tmp_path / "a", base_url=portal.base_url, downloader=dl)[0]["lignes"] == 6973
    portal.faults[portal.export_path(ds)] = ["500"] * 3
    out = tmp_path / "b"
    with fast() as dl, pytest.raises(DownloadError) as err:
        download([ds], out, base_url=portal.base_url, downloader=dl)
    assert "3 tentative(s)" in str(err.value) and "HTTP 500" in str(err.value)
    assert not out.exists() or list(out.iterdir()) == []


def test_connection_dropped_mid_file(portal, tmp_path):
    ds = "fr-en-ips-colleges-ap2022"
    portal.faults[portal.export_path(ds)] = ["drop"]
    with fast() as dl:
        mans = download([ds], tmp_path, base_url=portal.base_url, downloader=dl)
    assert mans[0]["taille_octets"] == _shared(SERVED[ds]).stat().st_size
    assert leftovers(tmp_path) == []
    # always dropped: clear error, no partial file
    out = tmp_path / "b"
    portal.faults[portal.export_path(ds)] = ["drop"] * 3
    with fast() as dl, pytest.raises(DownloadError) as err:
        download([ds], out, base_url=portal.base_url, downloader=dl)
    assert "interrompu" in str(err.value) and "Aucun fichier partiel" in str(err.value)
    assert not out.exists() or list(out.iterdir()) == []


def test_drop_keeps_previous_complete_file(portal, tmp_path):
    ds = "fr-en-ips-colleges-ap2022"
    with fast() as dl:
        download([ds], tmp_path, base_url=portal.base_url, downloader=dl)
    before = (tmp_path / f"{ds}.csv").read_bytes()
    portal.faults[portal.export_path(ds)] = ["drop"] * 3
    with fast() as dl, pytest.raises(DownloadError):
        download([ds], tmp_path, base_url=portal.base_url, downloader=dl, force=True)
    assert (tmp_path / f"{ds}.csv").read_bytes() == before
    assert leftovers(tmp_path) == []


def test_slow_response_times_out_then_recovers(portal, tmp_path):
    ds = "fr-en-ips-colleges-ap2022"
    portal.faults[portal.export_path(ds)] = ["slow"]
    with fast() as dl:
        assert download([ds], tmp_path, base_url=portal.base_url, downloader=dl)[0]["lignes"] == 6973
    portal.faults[portal.export_path(ds)] = ["slow"] * 3
    out = tmp_path / "b"
    with fast() as dl, pytest.raises(DownloadError) as err:
        download([ds], out, base_url=portal.base_url, downloader=dl)
    assert "pas de réponse" in str(err.value)
    assert not out.exists() or list(out.iterdir()) == []


def test_404_is_not_retried(portal, tmp_path):
    with fast() as dl, pytest.raises(DownloadError) as err:
        download(["jeu-inexistant"], tmp_path, base_url=portal.base_url, downloader=dl)
    assert "HTTP 404" in str(err.value) and "--base-url" in str(err.value)
    assert sum(1 for p, _ in portal.requests if "jeu-inexistant" in p) == 1


def test_records_paging_respects_api_limits(portal):
    with pytest.raises(ValueError):
        records_url(portal.base_url, "x", limit=101)
    with pytest.raises(ValueError):
        records_url(portal.base_url, "x", limit=100, offset=9950)
    with fast() as dl:
        recs = fetch_records("fr-en-ips-colleges-ap2022", base_url=portal.base_url, downloader=dl, max_records=250)
    assert len(recs) == 250 and recs[0]["uai"] == "0010005A"
    assert all(int(parse_qs(urlparse(p).query or "limit=100").get("limit", ["100"])[0]) <= 100
               for p, _ in portal.requests)


def cli_run(argv):
    """Run the sub-command as ``gar-analysis download`` does (parser from the module)."""
    parser = argparse.ArgumentParser()
    opendata.configure_parser(parser)
    return opendata.run(parser.parse_args(argv))


def test_cli_download_with_env_base_url(portal, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(config.ENV_OPENDATA_BASE_URL, portal.base_url)
    out = tmp_path / "od"
    rc = cli_run(["--datasets", "fr-en-ips-colleges-ap2022,fr-en-annuaire-education",
                   "--out", str(out), "--timeout", "2", "--retries", "1"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "fr-en-ips-colleges-ap2022.csv : téléchargé" in printed and "6973 lignes" in printed
    assert (out / "fr-en-annuaire-education.csv").exists()
    rc = cli_run(["--datasets", "fr-en-ips-colleges-ap2022", "--out", str(out)])
    assert rc == 0 and "inchangé" in capsys.readouterr().out
    # unreachable portal: exit status 1, readable message, nothing written
    rc = cli_run(["--datasets", "fr-en-ips-colleges-ap2022", "--out", str(tmp_path / "x"),
                   "--base-url", "http://127.0.0.1:9", "--retries", "0", "--timeout", "1"])
    assert rc == 1 and "connexion impossible" in capsys.readouterr().out
    assert not (tmp_path / "x").exists() or list((tmp_path / "x").iterdir()) == []


def test_cli_list_and_bad_base_url(capsys):
    assert cli_run(["--list"]) == 0
    listing = capsys.readouterr().out
    assert "fr-en-gar-acces_academie" in listing and "ODbL" in listing
    with pytest.raises(ConfigError):
        cli_run(["--base-url", "ftp://miroir"])


def test_dataset_registry_covers_the_issue():
    need = {"fr-en-annuaire-education", "fr-en-ips-colleges-ap2022", "fr-en-ips-lycees-ap2022",
            "fr-en-gar-acces_academie", "fr-en-gar-affectations_academie2024-2025",
            "fr-en-gar-accedants_degre2024-2025", "fr-en-gar-acces_profil2024-2025",
            "fr-en-gar-affectations_degre2024-2025", "insee-communes"}
    assert need <= set(opendata.DATASETS)
    assert any(d.startswith("fr-en-ips-ecoles") for d in opendata.DATASETS)


def test_retry_after_parsing():
    from email.utils import formatdate as fd

    assert opendata._retry_after("3") == 3.0
    assert opendata._retry_after(None) is None and opendata._retry_after("bientôt") is None
    in_ten = opendata._retry_after(fd(time.time() + 10, usegmt=True))
    assert 8 <= in_ten <= 10.5
    assert opendata._retry_after(fd(time.time() - 100, usegmt=True)) == 0.0
