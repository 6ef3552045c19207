"""``gar-analysis crm pull`` against a real HTTP server replaying recorded Dolibarr 20.0.2 exchanges."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd
import pytest

from gar_analysis import cli, config
from gar_analysis.contract import read_contract_file
from gar_analysis.integrations import dolibarr as dol
from gar_analysis.integrations.http import RetryPolicy, ServiceError

sys.path.insert(0, str(Path(__file__).parent))
from replay_server import ReplayServer  # noqa: E402

pytestmark = pytest.mark.shared

KEY = "Zt8Qm2vLx9Kp4RwN7cYh"  # test key, 20 characters, never a real one
FIXTURES = config.SHARED_DOLIBARR_DIR


def _need_fixtures():
    if not (FIXTURES / "README.md").exists():
        pytest.skip(f"enregistrements Dolibarr absents ({FIXTURES})")


@pytest.fixture
def server():
    _need_fixtures()
    srv = ReplayServer(FIXTURES, KEY)
    # category 2 ("Éditeurs scolaires", supplier type) has no recorded members query: empty list
    srv.add("GET", "/categories/2/objects", {"type": "supplier"}, like="categories_list_page_past_end_empty")
    with srv:
        yield srv


def _client(url, key=KEY, waits=None, **kw):
    sleep = (waits.append if waits is not None else (lambda s: None))
    return dol.DolibarrClient(url, key, policy=RetryPolicy(retries=3, backoff=0.01, sleep=sleep), progress=False,
                              **kw)


# --------------------------------------------------------------------------- pagination

def test_thirdparties_pages_end_with_recorded_404(server):
    items = _client(server.url).list_all("thirdparties", page_size=3)
    assert [t["id"] for t in items] == [str(i) for i in range(1, 11)]
    assert server.served() == ["thirdparties_list_limit3_page0", "thirdparties_list_limit3_page1",
                               "thirdparties_list_limit3_page2", "thirdparties_list_limit3_page3",
                               "error_thirdparties_list_limit3_page4_end_404"]


def test_contracts_pages_end_with_recorded_empty_list(server):
    items = _client(server.url).list_all("contracts", page_size=2)
    assert [c["id"] for c in items] == ["1", "2", "3", "4"]
    assert server.served() == ["contracts_list_limit2_page0", "contracts_list_limit2_page1",
                               "contracts_list_limit2_page2"]
    assert [ln["id"] for ln in items[0]["lines"]] == ["1", "2"]


def test_v21_pagination_wrapper(server):
    server.v21 = True
    items = _client(server.url, page_size=3, pagination_data=True).list_all("thirdparties")  # bar off
    server.log.clear()
    client = dol.DolibarrClient(server.url, KEY, page_size=3, pagination_data=True, progress=True)
    assert client.list_all("thirdparties") == items  # same pages with the progress bar (total from the wrapper)
    assert [t["id"] for t in items] == [str(i) for i in range(1, 11)]
    # the wrapper's page_count (4) ends the loop: no request past the end
    assert server.served() == [f"thirdparties_list_limit3_page{i}+v21" for i in range(4)]
    assert all(e["query"]["pagination_data"] == "true" for e in server.log)


def test_empty_filter_result_is_an_empty_list_not_an_error(server):
    client = _client(server.url)
    paging = {"sortfield": "t.rowid", "sortorder": "ASC", "limit": 100, "page": 0}
    # the recorded « no match » 404s of third parties and contacts are read as empty results
    server.add("GET", "/thirdparties", {"sqlfilters": "(ef.uai:=:'9999999Z')", **paging},
               like="error_thirdparties_list_sqlfilters_nomatch_404")
    server.add("GET", "/contacts", {"thirdparty_ids": "7", **paging}, like="error_contacts_list_empty_404")
    assert client.list_all("thirdparties", {"sqlfilters": "(ef.uai:=:'9999999Z')"}) == []
    assert client.list_all("contacts", {"thirdparty_ids": "7"}) == []
    assert [e["status"] for e in server.log] == [404, 404]


# --------------------------------------------------------------------------- full pull → contract files

def test_full_pull_writes_contract_files(server, tmp_path):
    client = _client(server.url)
    raw = dol.pull(client)
    frames = dol.to_frames(raw)
    dol.write_crm(frames, tmp_path)

    acteurs = read_contract_file(tmp_path, "crm/acteurs").set_index("id_acteur")
    assert len(acteurs) == 10
    assert acteurs.loc["1", ["type", "code"]].tolist() == ["etablissement", "0750001A"]
    assert acteurs.loc["1", "source_type"] == "catégorie"  # category « Lycées »
    assert acteurs.loc["3", "code"] == "0130456C"
    assert (acteurs.loc[["6", "7", "8", "10"], "type"] == "editeur").all()
    assert pd.isna(acteurs.loc["7", "code"])

    contrats = read_contract_file(tmp_path, "crm/contrats").set_index("id_contrat")
    assert contrats["statut"].tolist() == ["signe", "en_attente", "en_attente", "en_attente"]
    assert contrats.loc["1", "date_signature"] == pd.Timestamp("2026-09-01")
    assert contrats.loc["1", "date_debut"] == pd.Timestamp("2026-09-01")
    assert contrats.loc["1", "date_fin"] == pd.Timestamp("2027-08-31")
    assert contrats.loc["1", "objet"] == "licence"
    assert contrats.loc["1", "projet"] == "Manuels numériques 2026-2027"
    assert pd.isna(contrats.loc["2", "date_signature"])  # draft: not signed yet
    assert contrats.loc["4", "id_acteur"] == "7"
    assert set(contrats["id_acteur"]) <= set(acteurs.index)

    contacts = read_contract_file(tmp_path, "crm/contacts")
    assert contacts[["id_contact", "id_acteur", "role"]].values.tolist() == [
        ["1", "1", "chef_etablissement"], ["2", "2", "chef_etablissement"]]
    text = (tmp_path / "crm/contacts.csv").read_text(encoding="utf-8")
    assert "Durand" not in text and "@" not in text  # no nominative data

    actions = read_contract_file(tmp_path, "crm/actions")
    assert actions.empty  # agenda endpoint not recorded → treated as a disabled module
    assert "unrecorded" in server.served()[-1] and server.log[-1]["path"] == "/agendaevents"


def test_cli_pull_and_key_never_leaks(server, tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv(config.ENV_DOLIBARR_KEY, KEY)
    monkeypatch.setenv(config.ENV_DOLIBARR_URL, server.url)
    caplog.set_level(logging.DEBUG)
    assert cli.main(["-v", "crm", "pull", "--out", str(tmp_path), "--retries", "1"]) == 0
    out = capsys.readouterr()
    assert "crm/acteurs.csv : 10 ligne(s)" in out.out
    # the key went in the header of every request, never in a query string
    assert all(h.get("DOLAPIKEY") == KEY for h in server.headers_seen)
    assert all("DOLAPIKEY" not in e["query"] for e in server.log)
    # … and nowhere in logs, console or written files
    assert caplog.records and KEY not in caplog.text
    assert KEY not in out.out + out.err
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"acteurs.csv", "contrats.csv", "contacts.csv", "actions.csv",
                                       "dolibarr_pull.json"}
    assert not any(KEY in p.read_text(encoding="utf-8") for p in files)


# --------------------------------------------------------------------------- errors

def test_bad_key_gives_clear_401_error(server, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "WrongKey-000000000000"
    with pytest.raises(ServiceError) as err:
        _client(server.url, key=wrong).status()
    msg = str(err.value)
    assert "HTTP 401" in msg and config.ENV_DOLIBARR_KEY in msg and "Error user not valid" in msg
    assert wrong not in msg and wrong not in caplog.text
    assert server.served() == ["error_auth_bad_key"]  # no retry on an auth error


def test_encrypted_key_gives_clear_error_without_retry(server):
    with pytest.raises(ServiceError, match="ne doit pas commencer par « dolcrypt: »") as err:
        _client(server.url, key="dolcrypt:AES-256-CTR:abcdef0123456789").status()
    assert "abcdef0123456789" not in str(err.value)
    assert server.served() == ["error_auth_dolcrypt_prefix"]


def test_missing_right_gives_403_error_naming_the_right(server):
    server.forbid("contracts")
    with pytest.raises(ServiceError) as err:
        _client(server.url).list_all("contracts")
    msg = str(err.value)
    assert "HTTP 403" in msg and "contrat → lire" in msg and "Permissions" in msg
    assert server.served() == ["error_forbidden_403_contracts_list"]


@pytest.mark.parametrize("resource,query,fixture,status", [
    ("contracts", {"sqlfilters": "(t.statut:=:1"}, "error_contracts_list_sqlfilters_malformed", 400),
    ("thirdparties", {"sqlfilters": "t.client=1"}, "error_thirdparties_list_sqlfilters_bad_syntax", 400),
    ("thirdparties", {"sqlfilters": "(t.nosuchcolumn:=:1)"}, "error_thirdparties_list_sqlfilters_unknown_column", 503),
])
def test_malformed_filter_is_a_clear_error_without_retry(server, resource, query, fixture, status):
    with pytest.raises(ServiceError) as err:
        _client(server.url).get(resource, query, resource=resource)
    msg = str(err.value)
    assert f"filtre refusé par Dolibarr (HTTP {status}" in msg and query["sqlfilters"] in msg
    assert server.served() == [fixture]  # a filter error is not retried, even a 503


def test_transient_5xx_is_retried_with_backoff(server):
    server.fail("/thirdparties", times=2, status=502)
    waits: list[float] = []
    items = _client(server.url, waits=waits).list_all("thirdparties", page_size=3)
    assert len(items) == 10
    assert server.served()[:3] == ["fault 502", "fault 502", "thirdparties_list_limit3_page0"]
    assert len(waits) == 2 and waits[1] > waits[0] > 0  # exponential back-off


def test_persistent_5xx_gives_up_with_message(server):
    server.fail("/contracts", times=10, status=503)
    with pytest.raises(ServiceError, match=r"indisponible \(HTTP 503\) après 4 tentative"):
        _client(server.url).list_all("contracts")
    assert server.served() == ["fault 503"] * 4


def test_unknown_endpoint_501_html(server):
    with pytest.raises(dol.ModuleUnavailable, match="HTTP 501"):
        _client(server.url).get("nosuchendpoint")
    assert server.log[0]["fixture"] == "error_unknown_endpoint"


def test_route_not_found_is_not_mistaken_for_end_of_list(server):
    with pytest.raises(ServiceError, match="introuvable"):
        _client(server.url).get("thirdparties/1/contacts", resource="thirdparties")


# --------------------------------------------------------------------------- incremental

def test_incremental_pull_merges_with_previous_files(server, tmp_path):
    client = _client(server.url)
    dol.write_crm(dol.to_frames(dol.pull(client)), tmp_path)
    since = "2000-01-01"
    flt = {"sqlfilters": dol.since_filter(since), "sortfield": "t.rowid", "sortorder": "ASC", "limit": 100}
    # modified since: the two recorded third parties of the t.tms filter, nothing else
    server.add("GET", "/thirdparties", {**flt, "page": 0}, like="thirdparties_list_sqlfilters_tms_since")
    server.add("GET", "/thirdparties", {**flt, "page": 1}, like="error_thirdparties_list_sqlfilters_nomatch_404")
    server.add("GET", "/contacts", {**flt, "includeroles": 1, "page": 0}, like="error_contacts_list_empty_404")
    for res in ("contracts", "projects"):
        server.add("GET", f"/{res}", {**flt, "page": 0}, like="contracts_list_sqlfilters_nomatch_empty")
    server.log.clear()
    raw = dol.pull(client, since=since, actions=False)
    assert [t["id"] for t in raw.thirdparties] == ["1", "2"] and raw.contracts == [] and raw.contacts == []
    assert all(e["query"].get("sqlfilters") == "(t.tms:>:'2000-01-01 00:00:00')" for e in server.log
               if e["path"] in ("/thirdparties", "/contacts", "/contracts", "/projects"))
    frames = dol.to_frames(raw, known_uai=dol.existing_uai(tmp_path))
    frames["crm/acteurs"].loc[0, "nom"] = "Lycée Victor Hugo (renommé)"
    dol.write_crm(frames, tmp_path, merge=True)
    acteurs = read_contract_file(tmp_path, "crm/acteurs").set_index("id_acteur")
    assert len(acteurs) == 10 and acteurs.loc["1", "nom"] == "Lycée Victor Hugo (renommé)"
    assert len(read_contract_file(tmp_path, "crm/contrats")) == 4  # kept from the full pull
    assert len(read_contract_file(tmp_path, "crm/contacts")) == 2
