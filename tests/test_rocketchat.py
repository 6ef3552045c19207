"""``gar-analysis share``: digest composition, privacy guard, and posting to a fake Rocket.Chat.

The fake (:mod:`tests.rocketchat_server`) is a real HTTP server on 127.0.0.1
answering as Rocket.Chat's own code does; each behaviour cites the server file
and function it follows (see its module docstring and the comments below).
"""
from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest

from gar_analysis import cli, config
from gar_analysis.integrations import rocketchat as rc
from gar_analysis.integrations.http import RetryPolicy, ServiceError, redact

sys.path.insert(0, str(Path(__file__).parent))
from rocketchat_server import FakeRocketChat, Integration, Settings, SimClock  # noqa: E402

TOKEN = "tok-9f8e7d6c5b4a3210"
USER_ID = "uid-Xq7Lm2Pz9Rt4"
HOOK_ID, HOOK_TOKEN = "65f1a2b3c4d5e6f7", "Hk8sQ2wZr5Tn9VbX"
HOOK_PATH = f"/hooks/{HOOK_ID}/{HOOK_TOKEN}"
CHANNEL = "#gar-pilotage"
ROOM_ID = "GENERALroom1234567"
BASE = "https://rapports.example.fr/reports"
ENV_VARS = (config.ENV_ROCKETCHAT_WEBHOOK, config.ENV_ROCKETCHAT_URL, config.ENV_ROCKETCHAT_TOKEN,
            config.ENV_ROCKETCHAT_USER_ID, config.ENV_ROCKETCHAT_CHANNEL, rc.ENV_REPORTS_BASE_URL)


@pytest.fixture
def clock():
    return SimClock()


@pytest.fixture
def make_chat(clock):
    """Start fake Rocket.Chat servers (closed at the end of the test)."""
    started = []

    def make(settings: Settings | None = None, integrations=None) -> FakeRocketChat:
        srv = FakeRocketChat(clock, token=TOKEN, user_id=USER_ID, settings=settings,
                             integrations=[Integration(HOOK_ID, HOOK_TOKEN)] if integrations is None else integrations)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.close()


@pytest.fixture
def chat(make_chat):
    return make_chat()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def sim_sleep(monkeypatch, clock):
    """Make the CLI's retry policy sleep on the simulated clock."""
    real = rc.RetryPolicy

    def policy(**kwargs):
        return real(**{**kwargs, "sleep": clock.sleep})

    monkeypatch.setattr(rc, "RetryPolicy", policy)
    return clock


def _rest_env(env, chat, channel=CHANNEL):
    for name, value in ((config.ENV_ROCKETCHAT_URL, chat.url), (config.ENV_ROCKETCHAT_TOKEN, TOKEN),
                        (config.ENV_ROCKETCHAT_USER_ID, USER_ID), (config.ENV_ROCKETCHAT_CHANNEL, channel)):
        env.setenv(name, value)


def _rest(chat, clock, **kw):
    return rc.Poster(server=chat.url, token=TOKEN, user_id=USER_ID, channel=kw.pop("channel", CHANNEL),
                     policy=RetryPolicy(sleep=clock.sleep, backoff=0.01), **kw)


def _hook(chat, clock, path=HOOK_PATH, **kw):
    return rc.Poster(webhook=chat.url + path, policy=RetryPolicy(sleep=clock.sleep, backoff=0.01), **kw)


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

def test_digest_never_names_a_publisher_page(tmp_path):
    """Issue #19: each publisher gets its own link; the shared channel never gets a publisher's page or figures."""
    index = _index()
    index["reports"].append({"audience": "editeur", "territoire": "numerilivre", "nom": "Numérilivre",
                             "notebook": "editeur", "statut": "ok", "html": "editeur/numerilivre.html",
                             "duree_s": 4.0, "erreur": None,
                             "points_forts": ["Votre catalogue progresse de 40 % sur un an."], "a_corriger": []})
    run = _write_run(tmp_path, index)
    msgs = rc.compose_digest(index, run, base_url=BASE + "/", threshold=5)
    text = json.dumps(msgs, ensure_ascii=False)
    assert "Rennes" in text  # the public territories are there
    assert "numerilivre" not in text.lower() and "Numérilivre" not in text and "40 %" not in text


def test_digest_national_first_then_territories(tmp_path):
    run = _write_run(tmp_path)
    msgs = rc.compose_digest(_index(), run, base_url=BASE + "/", threshold=5)
    assert len(msgs) == 1
    text = msgs[0]["text"]
    assert text.startswith("*Synthèse du lot de rapports GAR « 2026-11-29 »*\n_Données simulées")
    assert "3 rapport(s) produit(s) sur 4, pour 3 territoire(s)." in text
    assert "• Les accès progressent de 12 % sur un an." in text
    assert f"Rapport national : {BASE}/2026-11-29/national/FR.html" in text
    assert "Rapports à relancer : Lyon (Académie)." in text
    lyon, paris, rennes = msgs[0]["attachments"]  # académies sorted by name
    assert rennes == {
        "title": "Rennes – Académie",
        "title_link": f"{BASE}/2026-11-29/academie/14.html",
        "text": "*Points forts*\n• Usage élevé au collège : 8,2 accès par élève.\n\n*À corriger en priorité*\n"
                "• Fiabiliser les UAI : 12 lignes d'accès portent un UAI inconnu.",
        "color": rc.COLOR_TODO,
        "fields": [{"short": True, "title": "Public", "value": "Académie"},
                   {"short": True, "title": "Territoire", "value": "14"}]}
    assert paris["color"] == rc.COLOR_OK and "Tous les lycées" in paris["text"]
    assert lyon["color"] == rc.COLOR_FAIL and "relancé" in lyon["text"] and "title_link" not in lyon


@pytest.mark.parametrize("base_url", [None, "rapports.example.fr/reports", "HTTPS://r.example.fr", "file:///srv/r"])
def test_links_only_when_absolute_http_urls(tmp_path, caplog, base_url):
    # isURL.ts: /^(https?:\/\/|data:)/ (case-sensitive); anything else → 400 « Invalid href value provided »
    run = _write_run(tmp_path)
    msgs = rc.compose_digest(_index(), run, base_url=base_url)
    rennes = msgs[0]["attachments"][2]
    assert "title_link" not in rennes
    path = rc.report_link("academie/14.html", run, "2026-11-29", base_url)
    assert rennes["text"].endswith(f"\n\nRapport : `{path}`")
    assert "Rapport national : `" in msgs[0]["text"]
    assert ("doit commencer par http" in caplog.text) is bool(base_url)


def test_never_an_empty_field(tmp_path):
    index = {"run_id": "r", "reports": [{"audience": "academie", "territoire": "", "nom": "Sans code",
                                         "statut": "ok", "html": "academie/x.html", "points_forts": [],
                                         "a_corriger": []}]}
    (att,) = rc.compose_digest(index, tmp_path, base_url=BASE)[0]["attachments"]
    assert att["fields"] == [{"short": True, "title": "Public", "value": "Académie"}]
    assert att["title"] and att["text"]


def test_markdown_of_report_sentences_is_neutralised(tmp_path):
    index = {"run_id": "lot_1", "reports": [{
        "audience": "academie", "territoire": "14", "nom": "Rennes", "statut": "ok", "html": "academie/14.html",
        "points_forts": ["Taux *élevé* : ~ 80 % des _collèges_ [voir](https://x.example)."], "a_corriger": []}]}
    msgs = rc.compose_digest(index, tmp_path, base_url=BASE)
    att = msgs[0]["attachments"][0]
    assert att["text"] == ("*Points forts*\n• Taux \u2217élevé\u2217 : \u223c 80 % des \uff3fcollèges\uff3f "
                           "\uff3bvoir\uff3d(https://x.example).")
    assert msgs[0]["text"].startswith("*Synthèse du lot de rapports GAR « lot\uff3f1 »*")


def test_size_is_counted_in_utf16_units_per_field(tmp_path):
    # executeSendMessage: message.msg.length (JavaScript: UTF-16 units) > Message_MaxAllowedSize
    emoji = "\U0001F4C8"  # one character for Python, two UTF-16 units for the server
    reports = [{"audience": "academie", "territoire": f"{i:02d}", "nom": f"Académie {i}", "statut": "ok",
                "html": f"academie/{i:02d}.html", "points_forts": [f"Hausse {emoji * 60} nette."] * 3,
                "a_corriger": []} for i in range(3)]
    msgs = rc.compose_digest({"run_id": "r", "reports": reports}, tmp_path, base_url=BASE, max_size=300)
    assert rc.utf16_len(emoji * 60) == 120
    for m in msgs:
        assert rc.utf16_len(m["text"]) <= 300
        for a in m["attachments"]:
            assert rc.utf16_len(a["text"]) <= 300 and a["text"].endswith("…")
            assert len(a["text"]) < 300 // 2 + 30  # Python's count would have let far more through
    # titles, fields and links do not count: the three attachments stay in one message
    assert len(msgs) == 1 and len(msgs[0]["attachments"]) == 3


def test_cuts_never_fall_inside_a_marker():
    text = "*Synthèse du lot de rapports GAR « un-identifiant-de-lot-assez-long »*"
    for limit in range(5, len(text)):
        cut = rc.fit_text(text, limit)
        assert rc.utf16_len(cut) <= limit and cut.count("*") % 2 == 0
    assert rc.fit_text(text, 30) == "Synthèse du lot de rapports…"  # the open « * » is dropped, not kept
    assert rc.split_text("*Titre*\n• a\n_Note en italique_\n• b", 12) == ["*Titre*\n• a", "Note en…\n• b"]


def test_long_digest_is_split_into_messages_of_ten_attachments(tmp_path):
    reports = [{"audience": "departement", "territoire": f"{i:02d}", "nom": f"Département {i:02d}",
                "notebook": "tableau_de_bord", "statut": "ok", "html": f"departement/{i:02d}.html",
                "points_forts": [f"Point fort numéro {k} : les accès progressent nettement dans le territoire, "
                                 f"{'avec des usages réguliers ' * 4}." for k in range(3)],
                "a_corriger": ["Inscrire les collèges qui ne le sont pas encore, en lien avec la DRANE."]}
               for i in range(1, 41)]
    msgs = rc.compose_digest({"run_id": "gros-lot", "reports": reports}, tmp_path, threshold=5)
    assert len(msgs) == 4 and [len(m["attachments"]) for m in msgs] == [10, 10, 10, 10]
    titles = [a["title"] for m in msgs for a in m["attachments"]]
    assert titles == [f"Département {i:02d} – Conseil départemental (collèges)" for i in range(1, 41)]
    assert msgs[1]["text"] == "*Synthèse du lot « gros-lot » (suite 2/4)*"
    assert msgs[0]["text"].startswith("*Synthèse du lot de rapports GAR « gros-lot »*")
    ids = [rc.message_id("gros-lot", i, m) for i, m in enumerate(msgs)]
    assert len(set(ids)) == 4 and all(re.fullmatch(r"[2-9A-Za-z]{17}", i) for i in ids)
    assert ids == [rc.message_id("gros-lot", i, m) for i, m in enumerate(msgs)]  # stable


def test_redaction_of_server_texts():
    # share must never print a secret a server or proxy echoes back (issue #16 item 7)
    text = (f"POST https://chat.example.org{HOOK_PATH} → 400 ; https://bot:Pa55w0rd@chat.example.org/api ; "
            f"token={TOKEN}&user=x ; {{\"authToken\": \"{TOKEN}\"}} ; "
            f"encodé : {HOOK_TOKEN.replace('s', '%73')} ; {'tok%2D9f8e7d6c5b4a3210'}")
    out = redact(text, (TOKEN, HOOK_TOKEN))
    for secret in (HOOK_TOKEN, HOOK_ID, "Pa55w0rd", TOKEN, "tok%2D9f8e7d6c5b4a3210"):
        assert secret not in out
    assert "/hooks/***" in out and "https://bot:***@chat.example.org/api" in out and "token=***" in out
    assert redact("Invalid integration id or token provided.") == "Invalid integration id or token provided."


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


# --------------------------------------------------------------------------- posting

def test_webhook_success_posts_exact_json(tmp_path, chat, clean_env, sim_sleep, capsys):
    run = _write_run(tmp_path)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, chat.url + HOOK_PATH)
    assert cli.main(["share", "--run", str(run), "--base-url", BASE]) == 0
    assert chat.webhook_posts == rc.compose_digest(_index(), run, base_url=BASE)
    assert [r["status"] for r in chat.log] == [200]
    assert "1 message(s) publié(s) sur Rocket.Chat (webhook)." in capsys.readouterr().out


def test_digest_without_base_url_is_accepted(tmp_path, chat, clean_env, sim_sleep):
    # before: local paths went out as title_link and the server refused the first message (isURL.ts)
    run = _write_run(tmp_path)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, chat.url + HOOK_PATH)
    assert cli.main(["share", "--run", str(run)]) == 0
    (post,) = chat.webhook_posts
    assert all("title_link" not in a and "Rapport : `" in a["text"] for a in post["attachments"] if "Lyon" not in
               a["title"])


def test_rest_success_with_chosen_ids_and_no_repost(tmp_path, chat, clean_env, sim_sleep, capsys):
    run = _write_run(tmp_path)
    _rest_env(clean_env, chat)
    assert cli.main(["share", "--run", str(run)]) == 0  # no base URL: plain-text paths, accepted
    expected = rc.compose_digest(_index(), run)
    ids = [rc.message_id("2026-11-29", i, m) for i, m in enumerate(expected)]
    assert [r["path"] for r in chat.log] == ["/api/v1/rooms.info", "/api/v1/chat.sendMessage"]
    assert chat.log[1]["json"] == {"message": {"_id": ids[0], "rid": ROOM_ID, "msg": expected[0]["text"],
                                               "attachments": expected[0]["attachments"]}}
    assert list(chat.messages) == ids
    # the same digest again: the server skips known ids (sendMessage.ts); nothing is posted twice
    assert cli.main(["share", "--run", str(run)]) == 0
    assert list(chat.messages) == ids
    assert "dont 1 déjà présent(s)" in capsys.readouterr().out


def test_local_link_is_refused_by_the_server(chat, clock):
    # sendMessage.ts validFullURLParam: a title_link failing isURL → Error('Invalid href value provided')
    payload = {"text": "Synthèse", "attachments": [{"title": "Rennes", "title_link": "reports/r/academie/14.html",
                                                    "text": "t"}]}
    for poster in (_hook(chat, clock), _rest(chat, clock)):
        with pytest.raises(ServiceError, match=r"lien refusé.*http\(s\).*Invalid href value provided"):
            poster.post(payload, "A" * 17)
    assert chat.webhook_posts == [] and chat.messages == {}


def test_empty_field_is_refused_by_the_server(chat, clock):
    # sendMessage.ts validateAttachmentsFields: Error('Invalid attachment field, title and value is required')
    payload = {"text": "Synthèse", "attachments": [{"title": "Rennes", "text": "t",
                                                    "fields": [{"short": True, "title": "Territoire", "value": ""}]}]}
    with pytest.raises(ServiceError, match="champ de pièce jointe refusé"):
        _rest(chat, clock).post(payload, "B" * 17)


def test_invalid_channel(make_chat, clock):
    chat = make_chat(integrations=[Integration(HOOK_ID, HOOK_TOKEN, channel="#supprime")])
    # rooms.ts findRoomByIdOrName: Meteor.Error('error-room-not-found', …)
    with pytest.raises(ServiceError) as err:
        _rest(chat, clock, channel="#inconnu").post({"text": "a"}, "C" * 17)
    assert "canal « #inconnu » introuvable" in str(err.value) and config.ENV_ROCKETCHAT_CHANNEL in str(err.value)
    assert "[error-room-not-found]" in str(err.value)
    # processWebhookMessage.ts: Meteor.Error('invalid-channel') → api.ts failure(error || message)
    with pytest.raises(ServiceError, match="le canal de l'intégration n'existe plus"):
        _hook(chat, clock).post({"text": "a"})


@pytest.mark.parametrize("settings,message", [
    (Settings(can_access=False), "n'a pas accès au canal « #gar-pilotage »"),  # rooms.info failure('not-allowed')
    (Settings(readonly=True), "en lecture seule"),  # canSendMessage.ts: room.ro without post-readonly
])
def test_rest_not_allowed(make_chat, clock, settings, message):
    chat = make_chat(settings)
    with pytest.raises(ServiceError, match=message):
        _rest(chat, clock).post({"text": "a"}, "D" * 17)
    assert chat.messages == {}


def test_webhook_user_not_allowed(make_chat, clock):
    # canSendMessage.ts validateRoomMessagePermissionsAsync: new Error('error-not-allowed')
    chat = make_chat(integrations=[Integration(HOOK_ID, HOOK_TOKEN, user_can_post=False)])
    with pytest.raises(ServiceError, match="n'a pas accès à son canal.*error-not-allowed"):
        _hook(chat, clock).post({"text": "a"})


def test_size_exceeded_is_resplit(tmp_path, make_chat, clock, caplog):
    # executeSendMessage: msg longer than Message_MaxAllowedSize (set lower on this server) → 400
    chat = make_chat(Settings(max_size=600))
    sentences = [f"Phrase nationale {k} : " + "les usages progressent partout " * 8 for k in "ABC"]
    index = {"run_id": "r", "reports": [{"audience": "national", "territoire": "FR", "nom": "France",
                                         "statut": "ok", "html": "national/FR.html", "points_forts": sentences,
                                         "a_corriger": sentences}]}
    (payload,) = rc.compose_digest(index, tmp_path, base_url=BASE)
    assert rc.utf16_len(payload["text"]) > 1200
    poster = _rest(chat, clock)
    assert poster.post(payload, rc.message_id("r", 0, payload)) > 1
    refused = [r for r in chat.log if r["status"] == 400]
    assert refused and all(r["path"].endswith("chat.sendMessage") for r in refused)
    stored = list(chat.messages.values())
    assert all(rc.utf16_len(m["msg"]) <= 600 for m in stored)
    delivered = "\n".join(m["msg"] for m in stored)
    for s in sentences:
        assert s.strip() in delivered
    assert "redécoupé" in caplog.text and poster.max_size <= 600


@pytest.mark.parametrize("breaking_8", [False, True])
def test_rest_401_names_the_variables(make_chat, clock, breaking_8):
    # ApiClass.ts: unauthorized('You must be logged in to do this.') (+ status/message before 8.0)
    chat = make_chat(Settings(breaking_8=breaking_8))
    poster = rc.Poster(server=chat.url, token="wrong-token-123", user_id=USER_ID, channel=CHANNEL,
                       policy=RetryPolicy(sleep=clock.sleep))
    with pytest.raises(ServiceError) as err:
        poster.post({"text": "a"}, "E" * 17)
    msg = str(err.value)
    assert "authentification refusée" in msg and config.ENV_ROCKETCHAT_TOKEN in msg
    assert "You must be logged in to do this." in msg and "wrong-token-123" not in msg
    assert len(chat.log) == 1  # a 401 is final


def test_429_real_body_and_headers_waited_by_the_server_clock(make_chat, clock):
    # ApiClass.enforceRateLimit: 429, X-RateLimit-* (Reset in epoch ms), no Retry-After;
    # the simulated server clock is years away from the machine's: only server-relative waits work
    chat = make_chat(Settings(calls=2, started_ms_ago=0))
    poster = _hook(chat, clock)
    for k in range(5):
        poster.post({"text": f"message {k}"})
    assert [p["text"] for p in chat.webhook_posts] == [f"message {k}" for k in range(5)]
    assert [r["status"] for r in chat.log] == [200] * 5  # paced by X-RateLimit-Remaining: never refused
    assert all(55 <= w <= 62 for w in clock.waits) and len(clock.waits) == 2


def test_429_without_pacing_waits_the_text_n(make_chat, clock):
    import requests
    from gar_analysis.integrations.http import pace_wait, rate_limit_wait

    chat = make_chat(Settings(calls=1, started_ms_ago=20_000))
    url = chat.url + "/api/v1/rooms.info"
    headers = {"X-Auth-Token": TOKEN, "X-User-Id": USER_ID}
    first = requests.get(url, params={"roomName": "gar-pilotage"}, headers=headers, timeout=5)
    assert first.status_code == 200 and first.headers["X-RateLimit-Remaining"] == "0"
    assert 40 < pace_wait(first) <= 42  # reset − Date + 1 s margin
    second = requests.get(url, params={"roomName": "gar-pilotage"}, headers=headers, timeout=5)
    assert second.status_code == 429 and "Retry-After" not in second.headers
    assert second.json() == {"success": False, "error": "Error, too many requests. Please slow down. You must wait "
                                                        "40 seconds before trying this endpoint again. "
                                                        "[error-too-many-requests]"}
    assert int(second.headers["X-RateLimit-Reset"]) > 1e12  # epoch milliseconds
    assert rate_limit_wait(second) == 41.0


def test_webhook_429_is_waited_as_its_text_says(make_chat, clock):
    # a second run (no pacing state) meets the webhook's own limiter (api.ts WebHookAPI.enforceRateLimit)
    chat = make_chat(Settings(calls=1))
    _hook(chat, clock).post({"text": "premier"})
    clock.sleep(15)
    clock.waits.clear()
    _hook(chat, clock).post({"text": "second"})
    assert [r["status"] for r in chat.log] == [200, 429, 200]
    assert clock.waits == [45 + 1]  # « You must wait 45 seconds » + 1 s margin, from the server's own count
    assert [p["text"] for p in chat.webhook_posts] == ["premier", "second"]


def test_bypass_permission_means_no_headers_and_no_wait(make_chat, clock):
    # ApiClass.shouldVerifyRateLimit: a user with api-bypass-rate-limit is never counted (REST only)
    chat = make_chat(Settings(calls=1, bypass_rate_limit=True))
    poster = _rest(chat, clock)
    for k in range(4):
        poster.post({"text": f"m{k}"}, f"{k:017d}")
    assert len(chat.messages) == 4 and clock.waits == []


def test_rate_limit_is_waited_for_a_full_window_before_giving_up(make_chat, clock):
    chat = make_chat(Settings(calls=1, interval_ms=600_000, started_ms_ago=0))
    poster = _rest(chat, clock)
    poster.policy.max_wait = 30
    with pytest.raises(ServiceError, match="limite de débit toujours atteinte après 60 s"):
        for k in range(3):
            poster.post({"text": f"m{k}"}, f"{k:017d}")
    assert sum(clock.waits) >= 60


@pytest.mark.parametrize("old", [False, True])
def test_webhook_disabled_503_is_not_retried(make_chat, clock, old):
    chat = make_chat(Settings(old_webhooks=old), integrations=[Integration(HOOK_ID, HOOK_TOKEN, enabled=False)])
    with pytest.raises(ServiceError, match="webhook désactivé"):
        _hook(chat, clock).post({"text": "a"})
    assert [r["status"] for r in chat.log] == [503]


@pytest.mark.parametrize("old,status", [(False, 500), (True, 404)])
def test_webhook_wrong_token(make_chat, clock, old, status):
    chat = make_chat(Settings(old_webhooks=old))
    with pytest.raises(ServiceError) as err:
        _hook(chat, clock, path=f"/hooks/{HOOK_ID}/MauvaisJeton42").post({"text": "a"})
    assert "URL de webhook invalide" in str(err.value) and f"HTTP {status}" in str(err.value)
    assert "MauvaisJeton42" not in str(err.value) and config.ENV_ROCKETCHAT_WEBHOOK in str(err.value)
    assert [r["status"] for r in chat.log] == [status]  # not retried


def test_webhook_timeout_is_not_resent_unless_asked(chat, clock):
    chat.stall("hooks", 1.0)
    with pytest.raises(ServiceError, match="a pu être reçue"):
        _hook(chat, clock, timeout=0.3).post({"text": "a"})
    assert len(chat.webhook_posts) == 1
    chat.stall("hooks", 1.0)
    _hook(chat, clock, timeout=0.3, webhook_retry=True).post({"text": "b"})
    assert [p["text"] for p in chat.webhook_posts] == ["a", "b", "b"]  # asked for: a duplicate is possible


def test_secrets_never_in_logs_or_output(tmp_path, make_chat, clean_env, sim_sleep, caplog, capsys):
    chat = make_chat(Settings(calls=1, started_ms_ago=0))
    run = _write_run(tmp_path)
    caplog.set_level(logging.DEBUG)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, chat.url + HOOK_PATH)
    assert cli.main(["-v", "share", "--run", str(run)]) == 0
    assert cli.main(["-v", "share", "--run", str(run)]) == 0  # second post: paced by the quota
    clean_env.delenv(config.ENV_ROCKETCHAT_WEBHOOK)
    _rest_env(clean_env, chat)
    assert cli.main(["-v", "share", "--run", str(run), "--dry-run"]) == 0
    assert cli.main(["-v", "share", "--run", str(run)]) == 0
    out = capsys.readouterr()
    assert "limite de débit (HTTP 429)" in caplog.text and '"POST *** HTTP/1.1"' in caplog.text
    for secret in (TOKEN, USER_ID, HOOK_PATH, HOOK_TOKEN):
        assert secret not in caplog.text and secret not in out.out and secret not in out.err


def test_dry_run_prints_and_sends_nothing(tmp_path, chat, clean_env, capsys):
    run = _write_run(tmp_path)
    clean_env.setenv(config.ENV_ROCKETCHAT_WEBHOOK, chat.url + HOOK_PATH)
    assert cli.main(["share", "--run", str(run), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert chat.log == []
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


# --------------------------------------------------------------------------- the sample's batch

def _sample_index(sample_build) -> dict:
    """The index a batch over the sample would write (national, régions académiques, académies, départements).

    The sentences are those ``notebooks/reports/tableau_de_bord.ipynb`` hands to ``write_summary``.
    """
    from gar_analysis import indicators as ind
    from gar_analysis.reporting.batch import audience_territories

    tables = ind.Tables(sample_build.processed_dir)
    reports = []
    for audience in ("national", "region_academique", "academie", "departement"):
        for code, nom in audience_territories(audience, sample_build.processed_dir).items():
            if audience == "national":
                pf, ac = ind.unit_messages(ind.by_unit(tables, audience, code), 5, unit_label="académies")
            else:
                pf, ac = ind.key_messages(ind.territory_values(tables, audience, code), 5)
            reports.append({"audience": audience, "territoire": code, "nom": nom, "notebook": "tableau_de_bord",
                            "statut": "ok", "html": f"{audience}/{code}.html", "points_forts": pf,
                            "a_corriger": ac})
    return {"run_id": "echantillon", "simule": True, "reports": reports}


@pytest.mark.slow
def test_sample_batch_digest_delivered_in_full_under_the_real_limit(tmp_path, sample_build, make_chat, clean_env,
                                                                    sim_sleep, capsys):
    chat = make_chat()  # 10 calls per 60 s (rate.ts), a window already begun (REST rules start at boot)
    run = tmp_path / "echantillon"
    run.mkdir()
    index = _sample_index(sample_build)
    (run / "index.json").write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
    expected = rc.compose_digest(index, run)
    ids = [rc.message_id("echantillon", i, m) for i, m in enumerate(expected)]
    assert len(expected) > 10  # more messages than one window allows
    chat.stall("chat.sendMessage", 1.5)  # the first answer comes after the client's timeout
    _rest_env(clean_env, chat)
    assert cli.main(["share", "--run", str(run), "--timeout", "0.5"]) == 0
    assert list(chat.messages) == ids  # every message once, in order
    assert [m["msg"] for m in chat.messages.values()] == [m["text"] for m in expected]
    sends = chat.requests_to("chat.sendMessage")
    assert len(sends) == len(ids) + 1  # one resend, after the timeout, skipped by the server
    assert sends[0]["json"] == sends[1]["json"] and sends[1]["status"] == 400
    assert len(chat.requests_to("chat.getMessage")) == 1
    assert all(r["status"] != 429 for r in chat.log)  # paced by X-RateLimit-Remaining
    # the first window began 37 s before the first call: 10 calls, then a wait up to its reset (+ 1 s margin)
    assert len([r for r in chat.log if r["path"].endswith(("chat.sendMessage", "chat.getMessage"))]) > 10
    (pace,) = [w for w in sim_sleep.waits if w > 5]
    assert 60 - 37 - 0.5 <= pace <= 60 - 37 + 2
    first_after = min(r["at"] for r in sends if r["at"] >= sends[0]["at"] + pace - 2)
    assert first_after - sends[0]["at"] >= 21.9
    assert f"{len(ids)} message(s) publié(s) sur Rocket.Chat (rest)." in capsys.readouterr().out
