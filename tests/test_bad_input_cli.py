"""Bad arguments, environment, downloads and event aggregation (issue #15), and the atomic build.

Every case asserts the exit status, a French message naming the place, no
traceback on stderr and output folders either complete or untouched.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from test_bad_input import assert_build_consistent, snapshot  # noqa: E402
from test_checks_rules import clean_world, write_world  # noqa: E402

from gar_analysis.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and "inattendue" not in err, err


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_bad")
    data = write_world(clean_world(), base / "data")
    out = base / "processed"
    assert main(["build", "--data", str(data), "--out", str(out)]) == 0
    return data, out


# --------------------------------------------------------------------------- check and build arguments

def test_check_arguments_refused_before_work(built, tmp_path, capsys):
    data, _ = built
    a_file = tmp_path / "fichier.txt"
    a_file.write_text("x")
    cases = [
        (["--data", str(data), "--out", str(tmp_path)], str(tmp_path)),                      # --out a folder
        (["--data", str(data), "--out", str(a_file / "c.csv")], str(a_file)),                # under a file
        (["--data", str(data), "--out", "/proc/constats.csv"], "/proc"),                      # unwritable
        (["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "c.csv")], "absent"),
        (["--data", str(a_file), "--out", str(tmp_path / "c.csv")], str(a_file)),
        (["--data", str(data), "--out", str(tmp_path / "c.csv"), "--html", str(tmp_path / "c.csv")], "--html"),
    ]
    for argv, where in cases:
        assert main(["check", *argv]) == 2, argv
        err = capsys.readouterr().err
        no_traceback(err)
        assert where in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.csv").exists() and a_file.read_text() == "x"


def test_check_relative_paths_resolved_against_current_folder(built, tmp_path, monkeypatch, capsys):
    data, _ = built
    shutil.copytree(data, tmp_path / "donnees")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--data", "donnees", "--out", "sortie/constats.csv"]) == 0
    assert (tmp_path / "sortie/constats.csv").exists()
    assert str(tmp_path / "sortie/constats.csv") in capsys.readouterr().out


def test_build_arguments_refused_and_output_untouched(built, tmp_path, capsys):
    data, out = built
    before = snapshot(out)
    no_ligne = tmp_path / "sans_ligne.csv"
    no_ligne.write_text("regle;gravite;source\nx;erreur;y\n", encoding="utf-8")
    bad_ligne = tmp_path / "ligne_illisible.csv"
    bad_ligne.write_text("regle;gravite;source;ligne;uai;mois;id_ressource;message\n"
                         "doublon;erreur;gar/acces.csv;douze;;;;m\n", encoding="utf-8")
    a_file = tmp_path / "fichier.txt"
    a_file.write_text("x")
    cases = [
        (["--findings", str(tmp_path / "absent.csv")], "absent.csv"),
        (["--findings", str(tmp_path)], str(tmp_path)),
        (["--findings", str(no_ligne)], "ligne"),
        (["--findings", str(bad_ligne)], "ligne 2"),
        (["--out", str(a_file)], str(a_file)),
    ]
    for extra, where in cases:
        argv = ["build", "--data", str(data), "--out", str(out), *extra]
        if extra[0] == "--out":
            argv = ["build", "--data", str(data), *extra]
        assert main(argv) == 2, extra
        err = capsys.readouterr().err
        no_traceback(err)
        assert where in err, err
    assert snapshot(out) == before and a_file.read_text() == "x"
    assert main(["build", "--data", str(tmp_path / "absent"), "--out", str(out)]) == 2
    assert "absent" in capsys.readouterr().err


def test_build_keeps_files_other_tools_put_in_the_output(built, tmp_path):
    data, out = built
    copy = tmp_path / "processed"
    shutil.copytree(out, copy)
    (copy / "notes.txt").write_text("à garder", encoding="utf-8")
    assert main(["build", "--data", str(data), "--out", str(copy)]) == 0
    assert (copy / "notes.txt").read_text(encoding="utf-8") == "à garder"
    assert_build_consistent(copy)


# --------------------------------------------------------------------------- the build as one unit

SLOW_BUILD = """
import sys, time
import pandas as pd
_write = pd.DataFrame.to_parquet
def slow(self, *a, **k):
    _write(self, *a, **k)
    time.sleep(0.4)
pd.DataFrame.to_parquet = slow
from gar_analysis.build import build
build(sys.argv[1], sys.argv[2])
"""


def _tables_written_since(folder: Path, t0: float) -> int:
    n = 0
    for p in folder.rglob("*.parquet"):
        try:
            n += p.stat().st_mtime >= t0
        except FileNotFoundError:
            pass
    return n


@pytest.mark.parametrize("after", [1, 4, 8])
def test_build_killed_midway_leaves_old_or_new_never_a_mix(built, tmp_path, after):
    data, out = built
    target = tmp_path / "processed"
    shutil.copytree(out, target)
    old = snapshot(target)
    changed = tmp_path / "data"
    shutil.copytree(data, changed)
    acces = changed / "gar/acces.csv"
    acces.write_text(acces.read_text(encoding="utf-8").replace(";ordinateur;4", ";ordinateur;5"), encoding="utf-8")
    t0 = time.time() - 0.01
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([PYTHON, "-c", SLOW_BUILD, str(changed), str(target)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _tables_written_since(tmp_path, t0) < after and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = assert_build_consistent(target)  # every table is the one its manifest describes
    assert snapshot(target) == old and manifest["data_dir"] == str(data.absolute())
    # the next build completes, replaces everything at once and removes the killed build's folder
    assert main(["build", "--data", str(changed), "--out", str(target)]) == 0
    manifest = assert_build_consistent(target)
    assert manifest["data_dir"] == str(changed.absolute())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".processed.")]


# --------------------------------------------------------------------------- reports arguments

@pytest.fixture
def report_notebooks(tmp_path):
    from conftest import write_notebook

    folder = tmp_path / "carnets"
    params = ('audience = "national"\nterritoire = "FR"\nprocessed_dir = ""\nseuil_secret = 5\nrun_id = ""\n'
              'lignes_max = 10\nseuil = 0.5\ndetail = False')
    write_notebook(folder / "tableau_de_bord.ipynb", ["assert isinstance(lignes_max, int)"], parameters=params)
    return folder


def _reports(argv, notebooks, out):
    return main(["reports", "--audience", "national", "--only", "FR", "--notebook", "tableau_de_bord",
                 "--out", str(out), "--run-id", "lot", "--no-progress", "--notebooks-dir", str(notebooks), *argv])


def test_reports_arguments_refused_before_any_notebook_runs(built, report_notebooks, tmp_path, capsys,
                                                            monkeypatch):
    _, processed = built
    out = tmp_path / "rapports"
    empty = tmp_path / "vide"
    empty.mkdir()
    bad_manifest = tmp_path / "manifeste_casse"
    shutil.copytree(processed, bad_manifest)
    (bad_manifest / "manifest.json").write_text('{"outputs": {\n  "x": ', encoding="utf-8")
    corrupt = tmp_path / "parquet_corrompu"
    shutil.copytree(processed, corrupt)
    (corrupt / "etablissements.parquet").write_bytes(b"PAR1 pas du parquet")
    missing = tmp_path / "table_absente"
    shutil.copytree(processed, missing)
    (missing / "usage_mensuel.parquet").unlink()
    cases = [
        (["--timeout", "nan", "--processed", str(processed)], "--timeout"),
        (["--timeout", "0", "--processed", str(processed)], "--timeout"),
        (["--jobs", "0", "--processed", str(processed)], "--jobs"),
        (["-p", "lignes_max=abc", "--processed", str(processed)], "lignes_max"),
        (["-p", "seuil=inf", "--processed", str(processed)], "seuil"),
        (["-p", "detail=peut-etre", "--processed", str(processed)], "detail"),
        (["--processed", str(empty)], str(empty / "manifest.json")),
        (["--processed", str(bad_manifest)], "manifest.json, ligne 2"),
        (["--processed", str(corrupt)], "etablissements.parquet"),
        (["--processed", str(missing)], "usage_mensuel.parquet"),
        (["--processed", str(tmp_path / "absent")], str(tmp_path / "absent")),
        (["--period", "٢٠٢٤-٢٠٢٥", "--processed", str(processed)], "Période invalide"),
    ]
    for argv, where in cases:
        assert _reports(argv, report_notebooks, out) == 2, argv
        err = capsys.readouterr().err
        no_traceback(err)
        assert where in err, (argv, err)
    assert not out.exists()
    # a relative --processed is resolved against the current folder, not the notebook's
    monkeypatch.chdir(tmp_path)
    assert _reports(["--processed", "vide"], report_notebooks, out) == 2
    assert str(empty / "manifest.json") in capsys.readouterr().err


def test_reports_parameters_are_typed_like_the_notebook_defaults(built, report_notebooks):
    from gar_analysis.reporting.batch import plan_batch

    _, processed = built
    jobs = plan_batch("national", only=["FR"], notebook="tableau_de_bord", processed_dir=processed,
                      notebooks_dir=report_notebooks, extra={"lignes_max": "5", "seuil": "0,5".replace(",", "."),
                                                             "detail": "oui"},
                      table=[{"audience": "national", "notebook": "tableau_de_bord", "titre": "T",
                              "principal": "1"}])
    p = jobs[0].parameters
    assert p["lignes_max"] == 5 and isinstance(p["lignes_max"], int)
    assert p["seuil"] == 0.5 and p["detail"] is True


# --------------------------------------------------------------------------- environment and the CLI boundary

def _cli(argv, env=None, cwd=None):
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([PYTHON, "-m", "gar_analysis.cli", *argv], env=full, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("value", ["abc", "nan", "-5", "0"])
def test_bad_notebook_timeout_variable_refused_in_one_line(built, tmp_path, value):
    data, _ = built
    r = _cli(["check", "--data", str(data), "--out", str(tmp_path / "c.csv")], env={"GAR_NOTEBOOK_TIMEOUT": value})
    assert r.returncode == 2
    no_traceback(r.stderr)
    assert "GAR_NOTEBOOK_TIMEOUT" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.csv").exists()


def test_sample_out_is_a_file(tmp_path):
    target = tmp_path / "un_fichier"
    target.write_text("x")
    r = _cli(["sample", "--out", str(target)])
    assert r.returncode == 2
    no_traceback(r.stderr)
    assert str(target) in r.stderr and target.read_text() == "x"


def test_unexpected_exception_goes_to_a_log_file(built, tmp_path, monkeypatch, capsys):
    import gar_analysis.checks as checks

    data, _ = built

    def boom(*a, **k):
        raise RuntimeError("panne simulée")

    monkeypatch.setattr(checks, "run_checks", boom)
    monkeypatch.setenv("GAR_ANALYSIS_ROOT", str(tmp_path))
    assert main(["check", "--data", str(data), "--out", str(tmp_path / "c.csv")]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "panne simulée" in err and len(err.strip().splitlines()) == 1
    log = Path(err.strip().rsplit(" dans ", 1)[1].rstrip("."))
    assert log.exists() and "Traceback" in log.read_text(encoding="utf-8")
    assert "RuntimeError: panne simulée" in log.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- download

class Faulty:
    """An HTTP server on 127.0.0.1 answering each path with a scripted behaviour.

    The normal answer is the shape of the Opendatasoft Explore API v2.1 export
    (``GET /api/explore/v2.1/catalog/datasets/{id}/exports/csv``: a ``;``-separated
    CSV, ``text/csv``; see the API's OpenAPI description published on data.gouv.fr,
    « Download OpenAPI specification », exports endpoint). The faults are those a
    proxy, a captive portal or a broken network produce, as listed in issue #15.
    ``/records`` answers ``{"total_count": n, "results": [...]}``, the Explore API
    v2.1 records response (same OpenAPI description; the shape the existing
    ``tests/test_opendata_download.py`` portal serves).
    """

    def __init__(self):
        self.script: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                kind = server.script.get(self.path.split("?")[0], "absent")
                body = "uai;ips\n0350001L;101.2\n0350002M;99.0\n".encode()
                if kind.startswith("total="):  # /records: {"total_count": n, "results": [...]}
                    n = int(kind.split("=")[1])
                    page = {"total_count": n, "results": [{"uai": "0350001L", "ips": 101.2}]}
                    return self._send(200, json.dumps(page).encode(), "application/json; charset=utf-8")
                if kind == "ok":
                    return self._send(200, body, "text/csv; charset=utf-8")
                if kind == "html":
                    return self._send(200, b"<!DOCTYPE html><html><body>Connexion requise</body></html>",
                                      "text/html; charset=utf-8")
                if kind == "json_error":
                    return self._send(200, b'{"error_code": "ODSQLError", "message": "erreur"}', None)
                if kind == "loop":
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if kind == "cut":  # no Content-Length, connection closed mid-line
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body + b"0350003N;10")
                    self.close_connection = True
                    return
                if kind == "gzip_corrupt":
                    data = gzip.compress(body)[:-12] + b"\x00" * 4
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if kind == "gzip_undeclared":
                    return self._send(200, gzip.compress(body), "text/csv")
                if kind == "drip":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Content-Length", str(len(body) * 100))
                    self.end_headers()
                    try:
                        for _ in range(len(body) * 100):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            time.sleep(0.05)
                    except OSError:
                        pass
                    return
                return self._send(404, b'{"error_code": "DatasetNotFound"}', "application/json")

            def _send(self, code, body, ctype):
                self.send_response(code)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def faulty():
    s = Faulty()
    yield s
    s.close()


EXPORT = "/api/explore/v2.1/catalog/datasets/{}/exports/csv"


@pytest.mark.parametrize("kind,words", [
    ("html", "text/html"), ("json_error", "JSON"), ("loop", "boucle de redirections"),
    ("cut", "tronqué"), ("gzip_corrupt", "tronqué"), ("gzip_undeclared", "gzip"),
])
def test_download_refuses_what_is_not_the_file_and_keeps_the_previous_one(faulty, tmp_path, capsys, kind, words):
    out = tmp_path / "od"
    out.mkdir()
    previous = out / "jeu-test.csv"
    previous.write_text("uai;ips\n0350001L;100.0\n", encoding="utf-8")
    faulty.script[EXPORT.format("jeu-test")] = kind
    code = main(["download", "--datasets", "jeu-test", "--out", str(out), "--base-url", faulty.base_url,
                 "--retries", "1", "--timeout", "5"])
    captured = capsys.readouterr()
    no_traceback(captured.err)
    assert code == 1, captured.out
    assert words in captured.out and "jeu-test" in captured.out, captured.out
    assert previous.read_text(encoding="utf-8") == "uai;ips\n0350001L;100.0\n"
    assert sorted(p.name for p in out.iterdir()) == ["jeu-test.csv"]


def test_download_ok_then_row_count_checked(faulty, tmp_path):
    from gar_analysis.sources.opendata import DownloadError, download

    faulty.script[EXPORT.format("jeu-test")] = "ok"
    m = download(["jeu-test"], tmp_path, base_url=faulty.base_url, counts={"jeu-test": 2})
    assert m[0]["lignes"] == 2
    with pytest.raises(DownloadError, match="2 ligne\\(s\\) reçue\\(s\\) alors que le portail en annonce 3"):
        download(["jeu-test"], tmp_path / "b", base_url=faulty.base_url, counts={"jeu-test": 3})
    assert not (tmp_path / "b" / "jeu-test.csv").exists()


def test_download_whole_transfer_is_bounded_in_time(faulty, tmp_path, capsys):
    faulty.script[EXPORT.format("lent")] = "drip"
    t0 = time.monotonic()
    code = main(["download", "--datasets", "lent", "--out", str(tmp_path), "--base-url", faulty.base_url,
                 "--retries", "0", "--timeout", "1.5"])
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    assert code == 1 and "trop long" in out, out
    assert elapsed < 6, elapsed
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv,where", [
    (["--timeout", "0"], "--timeout"), (["--timeout", "nan"], "--timeout"), (["--retries", "-1"], "--retries"),
    (["--datasets", "../../evasion"], "evasion"), (["--datasets", "a/b"], "a/b"),
])
def test_download_arguments_refused_before_any_request(tmp_path, capsys, argv, where):
    out = tmp_path / "a" / "b" / "od"
    code = main(["download", "--out", str(out), "--base-url", "http://127.0.0.1:9", *argv])
    err = capsys.readouterr().err
    no_traceback(err)
    assert code == 2 and where in err, err
    assert not (tmp_path / "a").exists() and not (tmp_path / "evasion.csv").exists()


# --------------------------------------------------------------------------- aggregate

def test_aggregate_never_replaces_good_output_with_an_empty_one(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "sortie"
    (out / "gar").mkdir(parents=True)
    good = "mois;uai;id_ressource;profil;support;acces\n2024-01;0350001L;R1;eleve;ordinateur;12\n"
    (out / "gar/acces.csv").write_text(good, encoding="utf-8")
    events = tmp_path / "evenements" / "mois=2024-01"
    events.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 2]}), events / "part-0.parquet")          # missing columns
    (events / "part-1.parquet").write_bytes(b"pas du parquet")                  # unreadable
    code = main(["aggregate", "--events", str(tmp_path / "evenements"), "--out", str(out)])
    err = capsys.readouterr().err
    no_traceback(err)
    assert code == 2 and "conservées" in err and "evenements" in err, err
    assert (out / "gar/acces.csv").read_text(encoding="utf-8") == good
    assert not (out / "gar/accedants_actifs.csv").exists()
    found = pd.read_csv(out / "constats_evenements.csv", sep=";", dtype=str)
    assert set(found["regle"]) == {"colonne_manquante", "fichier_illisible"}


def test_a_failing_rule_never_stops_the_others(built, monkeypatch, caplog):
    import dataclasses

    from gar_analysis.checks import RULES, run_checks

    data, _ = built

    def boom(ctx):
        raise ZeroDivisionError("division par zéro simulée")

    monkeypatch.setitem(RULES, "rupture_serie", dataclasses.replace(RULES["rupture_serie"], func=boom))
    f = run_checks(data)
    broken = f[f["regle"] == "rupture_serie"]
    assert broken["gravite"].tolist() == ["erreur"]
    assert "non effectué" in broken["message"].iloc[0] and "ZeroDivisionError" in broken["message"].iloc[0]
    assert "Traceback" not in caplog.text
    assert {"uai_invalide", "mois_manquant"} <= set(f.attrs["durees"])


def test_download_cli_checks_the_portal_total(faulty, tmp_path, capsys):
    faulty.script[EXPORT.format("jeu-test")] = "ok"
    faulty.script["/api/explore/v2.1/catalog/datasets/jeu-test/records"] = "total=3"
    code = main(["download", "--datasets", "jeu-test", "--out", str(tmp_path), "--base-url", faulty.base_url,
                 "--verifier-total", "--retries", "0"])
    out = capsys.readouterr().out
    assert code == 1 and "2 ligne(s) reçue(s) alors que le portail en annonce 3" in out, out
    assert not (tmp_path / "jeu-test.csv").exists()
    faulty.script["/api/explore/v2.1/catalog/datasets/jeu-test/records"] = "total=2"
    assert main(["download", "--datasets", "jeu-test", "--out", str(tmp_path), "--base-url", faulty.base_url,
                 "--verifier-total", "--retries", "0"]) == 0
    assert (tmp_path / "jeu-test.csv").exists()
