"""``gar-analysis share``: digest composition, privacy guard and posting to a real local HTTP server."""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gar_analysis import cli, config
from gar_analysis.integrations import rocketchat as rc
from gar_analysis.integrations.http import RetryPolicy, ServiceError

TOKEN = "tok-9f8e7d6c5b4a3210"
USER_ID = "uid-Xq7Lm2Pz9Rt4"
HOOK_PATH = "/hooks/65f1a2b3c4d5e6f7/Hk8sQ2wZr5Tn9VbX"
ENV_VARS = (config.ENV_ROCKETCHAT_WEBHOOK, config.ENV_ROCKETCHAT_URL, config.ENV_ROCKETCHAT_TOKEN,
            config.ENV_ROCKETCHAT_USER_ID, config.ENV_ROCKETCHAT_CHANNEL, rc.ENV_REPORTS_BASE_URL)


class ChatServer:
    """A local HTTP server that records posts and answers from a script (then 200 success)."""

    def __init__(self):
        self.received: list[dict] = []
        self.script: list[tuple[int, dict, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.received.append({"path": self.path, "headers": dict(self.headers),
                                        "json": json.loads(raw.decode("utf-8")), "at": time.monotonic()})
                status, headers, body = server.script.pop(0) if server.script else (200, {}, {"success": True})
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat():
    srv = ChatServer()
    yield srv
    srv.close()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _index():
    return {"run_id": "2026-11-29", "simule": True, "reports": [
        {"audience": "national", "territoire": "FR", "nom": "France", "notebook": "tableau_de_bord",
         "statut": "ok", "html": "national/FR.html", "duree_s": 12.0, "erreur": None,
         "points_forts": ["Les accès progressent de 12 % sur un an."],
         "a_corriger": ["Relancer l'inscription des écoles : 1 245 écoles restent à inscrire."]},
        {"audience": "academie", "territoire": "14", "nom": "Rennes", "notebook": "tableau_de_bord",
         "statut": "ok", "html": "academie/14.html", "duree_s": 9.5, "erreur": None,
         "points_forts": ["Usage élevé au collège : 8,2 accès par élève.",
                          "3 établissements seulement n'ont aucun accès.",  # small count: never posted
                          "Élève INE 123456789AB très actif."],  # pupil-level: never posted
         "a_corriger": ["Fiabiliser les UAI : 12 lignes d'accès portent un UAI inconnu."]},
        {"audience": "academie", "territoire": "10", "nom": "Lyon", "notebook": "tableau_de_bord",
         "statut": "echec", "html": "academie/10.html", "duree_s": 3.0, "erreur": "CellExecutionError",
         "points_forts": [], "a_corriger": []},
        {"audience": "academie", "territoire": "01", "nom": "Paris", "notebook": "tableau_de_bord",
         "statut": "ok", "html": "academie/01.html", "duree_s": 8.0, "erreur": None,
         "points_forts": ["Tous les lycées sont inscrits."], "a_corriger": []},
    ]}


def _write_run(tmp_path, index=None):
    run = tmp_path / "2026-11-29"
    run.mkdir()
    (run / "index.json").write_text(json.dumps(index or _index(), ensure_ascii=False), encoding="utf-8")
    return run


# --------------------------------------------------------------------------- composition

def test_digest_national_first_then_territories(tmp_path):
    run = _write_run(tmp_path)
    msgs = rc.compose_digest(_index(), run, base_url="https://rapports.example.fr/reports/", threshold=5)
    assert len(msgs) == 1
    text = msgs[0]["text"]
    assert text.startswith("*Synthèse du lot de rapports GAR « 2026-11-29 »*\n_Données simulées")
    assert "3 rapport(s) produit(s) sur 4, pour 3 territoire(s)." in text
    assert "• Les accès progressent de 12 % sur un an." in text
    assert "Rapport national : https://rapports.example.fr/reports/2026-11-29/national/FR.html" in text
    assert "Rapports à relancer : Lyon (Académie)." in text
    lyon, paris, rennes = msgs[0]["attachments"]  # académies sorted by name
    assert rennes == {
        "title": "Rennes – Académie",
        "title_link": "https://rapports.example.fr/reports/2026-11-29/academie/14.html",
        "text": "*Points forts*\n• Usage élevé au collège : 8,2 accès par élève.\n\n*À corriger en priorité*\n"
                "• Fiabiliser les UAI : 12 lignes d'accès portent un UAI inconnu.",
        "color": rc.COLOR_TODO,
        "fields": [{"short": True, "title": "Public", "value": "Académie"},
                   {"short": True, "title": "Territoire", "value": "14"}]}
    assert paris["color"] == rc.COLOR_OK and "Tous les lycées" in paris["text"]
    assert lyon["color"] == rc.COLOR_FAIL and "relancé" in lyon["text"]


def test_links_are_local_paths_without_base_url(tmp_path):
    run = _write_run(tmp_path)
    msgs = rc.compose_digest(_index(), run)
    assert msgs[0]["attachments"][2]["title_link"] == (run / "academie/14.html").as_posix()


def test_nothing_below_threshold_or_pupil_level_is_posted(tmp_path, caplog):
    run = _write_run(tmp_path)
    caplog.set_level(logging.WARNING)
    dump = json.dumps(rc.compose_digest(_index(), run, threshold=5), ensure_ascii=False)
    assert "3 établissements" not in dump and "123456789AB" not in dump and "INE" not in dump
    assert "Usage élevé au collège" in dump  # the safe sentences of the same report are kept
    assert caplog.text.count("Phrase non publiée") == 2 and "123456789AB" not in caplog.text


@pytest.mark.parametrize("sentence,safe", [
    ("3 établissements n'ont aucun accès.", False),
    ("0 accès en 2024-09.", False),
    ("12 345 accès, dont 2 écoles sans affectation.", False),
    ("Contact : prenom.nom@ac-rennes.fr", False),
    ("Née le 3 mars 2012.", False),
    ("Taux d'usage de 3,5 % en hausse de 2 points.", True),
    ("Collèges de l'Ain (01) : 12 345 accès en 2024-2025.", True),
    ("Le 1er trimestre progresse, 2 fois plus d'accès.", True),
    ("L'UAI 0351234X progresse de 4 %.", True),
    ("12 écoles ont doublé leurs accès.", True),
])
def test_guard(sentence, safe):
    assert (rc.unsafe_reason(sentence, 5) is None) is safe


def test_long_digest_is_split_within_the_size_limit(tmp_path):
    reports = [{"audience": "departement", "territoire": f"{i:02d}", "nom": f"Département {i:02d}",
                "notebook": "tableau_de_bord", "statut": "ok", "html": f"departement/{i:02d}.html",
                "points_forts": [f"Point fort numéro {k} : les accès progressent nettement dans le territoire, "
                                 f"{'avec des usages réguliers ' * 4}." for k in range(3)],
                "a_corriger": ["Inscrire les collèges qui ne le sont pas encore, en lien avec la DRANE."]}
               for i in range(1, 41)]
    index = {"run_id": "gros-lot", "reports": reports}
    msgs = rc.compose_digest(index, tmp_path, threshold=5, max_chars=rc.MAX_MESSAGE_CHARS)
    assert len(msgs) > 2
    for m in msgs:
        assert rc._size(m["text"], m["attachments"]) <= rc.MAX_MESSAGE_CHARS
        assert len(m["attachments"]) <= rc.MAX_ATTACHMENTS
    titles = [a["title"] for m in msgs for a in m["attachments"]]
    assert titles == [f"Département {i:02d} – Conseil départemental (collèges)" for i in range(1, 41)]
    assert msgs[1]["text"] == f"*Synthèse du lot « gros-lot » (suite 2/{len(msgs)})*"
    assert msgs[0]["text"].startswith("*Synthèse du lot de rapports GAR « gros-lot »*")


def test_an_oversized_attachment_is_shortened(tmp_path):
    reports = [{"audience": "academie", "territoire": "14", "nom": "Rennes", "statut": "ok",
                "html": "academie/14.html", "points_forts": ["x" * 290] * 3, "a_corriger": ["y" * 290] * 3}]
    msgs = rc.compose_digest({"run_id": "r", "reports": reports}, tmp_path, max_chars=800)
    for m in msgs:
        assert rc._size(m["text"], m["attachments"]) <= 800
    assert msgs[-1]["attachments"][0]["text"].endswith("…")


# --------------------------------------------------------------------------- posting

def test_webhook_posts_exact_json(tmp_path, chat, clean_env, capsys):
    run = _write_run(tmp_path)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, chat.url + HOOK_PATH)
    assert cli.main(["share", "--run", str(run), "--base-url", "https://r.example.fr/reports"]) == 0
    expected = rc.compose_digest(_index(), run, base_url="https://r.example.fr/reports")
    assert [r["json"] for r in chat.received] == expected
    assert {r["path"] for r in chat.received} == {HOOK_PATH}
    assert chat.received[0]["headers"]["Content-Type"] == "application/json"
    assert "X-Auth-Token" not in chat.received[0]["headers"]
    assert "1 message(s) publié(s) sur Rocket.Chat (webhook)." in capsys.readouterr().out


def test_rest_posts_with_auth_headers_and_channel(tmp_path, chat, clean_env):
    run = _write_run(tmp_path)
    for name, value in ((config.ENV_ROCKETCHAT_URL, chat.url), (config.ENV_ROCKETCHAT_TOKEN, TOKEN),
                        (config.ENV_ROCKETCHAT_USER_ID, USER_ID), (config.ENV_ROCKETCHAT_CHANNEL, "#gar-pilotage"),
                        (rc.ENV_REPORTS_BASE_URL, "https://r.example.fr/reports")):
        clean_env.setenv(name, value)
    assert cli.main(["share", "--run", str(run)]) == 0
    (post,) = chat.received
    assert post["path"] == "/api/v1/chat.postMessage"
    assert post["headers"]["X-Auth-Token"] == TOKEN and post["headers"]["X-User-Id"] == USER_ID
    expected = rc.compose_digest(_index(), run, base_url="https://r.example.fr/reports")[0]
    assert post["json"] == {"channel": "#gar-pilotage", **expected}


def test_retry_on_429_waits_as_asked(chat):
    chat.script = [(429, {"Retry-After": "7"}, {"success": False, "error": "Too many requests"}),
                   (429, {"X-RateLimit-Reset": str(int((time.time() + 30) * 1000))}, {"success": False}),
                   (400, {}, {"success": False, "errorType": "error-too-many-requests",
                              "error": "Error, too many requests. Please slow down. You must wait 12 seconds "
                                       "before trying this endpoint again. [error-too-many-requests]"})]
    waits: list[float] = []
    poster = rc.Poster(webhook=chat.url + HOOK_PATH, policy=RetryPolicy(retries=4, sleep=waits.append))
    poster.post({"text": "Bonjour", "attachments": []})
    assert len(chat.received) == 4 and all(r["json"] == {"text": "Bonjour", "attachments": []}
                                           for r in chat.received)
    assert waits[0] == 7.0 and 25 < waits[1] <= 30 and waits[2] == 12.0


def test_quota_exhausted_waits_before_next_message(chat):
    chat.script = [(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int((time.time() + 20) * 1000))},
                    {"success": True})]
    waits: list[float] = []
    poster = rc.Poster(webhook=chat.url + HOOK_PATH, policy=RetryPolicy(sleep=waits.append))
    poster.post({"text": "a"})
    assert len(waits) == 1 and 15 < waits[0] <= 20


def test_rate_limit_never_lifted_is_reported(chat):
    chat.script = [(429, {"Retry-After": "1"}, {"success": False})] * 3
    poster = rc.Poster(webhook=chat.url + HOOK_PATH, policy=RetryPolicy(retries=2, sleep=lambda s: None))
    with pytest.raises(ServiceError, match="limite de débit toujours atteinte"):
        poster.post({"text": "a"})
    assert len(chat.received) == 3


def test_rest_auth_error_names_the_variables(chat):
    chat.script = [(401, {}, {"status": "error", "message": "You must be logged in to do this."})]
    poster = rc.Poster(server=chat.url, token=TOKEN, user_id=USER_ID, channel="#gar",
                       policy=RetryPolicy(sleep=lambda s: None))
    with pytest.raises(ServiceError) as err:
        poster.post({"text": "a"})
    assert config.ENV_ROCKETCHAT_TOKEN in str(err.value) and TOKEN not in str(err.value)


def test_secrets_never_in_logs_or_output(tmp_path, chat, clean_env, caplog, capsys):
    run = _write_run(tmp_path)
    caplog.set_level(logging.DEBUG)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, chat.url + HOOK_PATH)
    chat.script = [(429, {"Retry-After": "0"}, {"success": False})]
    assert cli.main(["-v", "share", "--run", str(run)]) == 0
    clean_env.delenv(config.ENV_ROCKETCHAT_WEBHOOK)
    for name, value in ((config.ENV_ROCKETCHAT_URL, chat.url), (config.ENV_ROCKETCHAT_TOKEN, TOKEN),
                        (config.ENV_ROCKETCHAT_USER_ID, USER_ID), (config.ENV_ROCKETCHAT_CHANNEL, "#gar")):
        clean_env.setenv(name, value)
    chat.script = [(503, {}, {"success": False})]
    assert cli.main(["-v", "share", "--run", str(run), "--dry-run"]) == 0
    assert cli.main(["-v", "share", "--run", str(run)]) == 0
    out = capsys.readouterr()
    assert len(chat.received) == 4  # 429 → retry → ok; dry run: nothing; 503 → retry → ok
    assert "HTTP 429" in caplog.text and "HTTP 503" in caplog.text
    assert '"POST *** HTTP/1.1"' in caplog.text  # urllib3's request line, webhook path masked
    for secret in (TOKEN, USER_ID, HOOK_PATH, "Hk8sQ2wZr5Tn9VbX"):
        assert secret not in caplog.text and secret not in out.out and secret not in out.err


def test_dry_run_prints_and_sends_nothing(tmp_path, chat, clean_env, capsys):
    run = _write_run(tmp_path)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, chat.url + HOOK_PATH)
    assert cli.main(["share", "--run", str(run), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert chat.received == []
    body = out.split("# message 1/1\n", 1)[1]
    assert [json.loads(body)] == rc.compose_digest(_index(), run)


def test_dry_run_is_the_default_when_nothing_is_configured(tmp_path, clean_env, capsys):
    run = _write_run(tmp_path)
    assert cli.main(["share", "--run", str(run)]) == 0
    captured = capsys.readouterr()
    assert "Aucune destination Rocket.Chat configurée" in captured.err
    assert '"title": "Rennes – Académie"' in captured.out


@pytest.mark.parametrize("argv,message", [
    (["--webhook-only"], config.ENV_ROCKETCHAT_WEBHOOK),
    ([], "index du lot absent"),
])
def test_clear_errors(tmp_path, clean_env, capsys, argv, message):
    run = _write_run(tmp_path) if argv else tmp_path / "absent"
    assert cli.main(["share", "--run", str(run), *argv]) == 2
    assert message in capsys.readouterr().err


def test_invalid_webhook_is_refused_without_echoing_it(tmp_path, clean_env, capsys):
    run = _write_run(tmp_path)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, "chat.example.org/hooks/Hk8sQ2wZr5Tn9VbX")
    assert cli.main(["share", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert config.ENV_ROCKETCHAT_WEBHOOK in err and "Hk8sQ2wZr5Tn9VbX" not in err


def test_incomplete_rest_configuration(tmp_path, clean_env, capsys):
    run = _write_run(tmp_path)
    clean_env.setenv(config.ENV_ROCKETCHAT_URL, "http://127.0.0.1:9")
    clean_env.setenv(config.ENV_ROCKETCHAT_TOKEN, TOKEN)
    assert cli.main(["share", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert config.ENV_ROCKETCHAT_USER_ID in err and config.ENV_ROCKETCHAT_CHANNEL in err and TOKEN not in err
