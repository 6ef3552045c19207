"""``gar-analysis crm pull`` against a real HTTP server replaying recorded Dolibarr 20.0.2 exchanges."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pandas as pd
import pytest

from gar_analysis import cli, config
from gar_analysis.contract import read_contract_file, write_contract_file
from gar_analysis.integrations import dolibarr as dol
from gar_analysis.integrations.http import RetryPolicy, ServiceError

sys.path.insert(0, str(Path(__file__).parent))
from replay_server import ReplayServer  # noqa: E402

pytestmark = pytest.mark.shared

KEY = "Zt8Qm2vLx9Kp4RwN7cYh"  # test key standing for the recorded admin key, never a real one
READER = "Rd4Wq8Nx2Lm6Tz0Yb3Kp"  # stands for <APIKEY_READER> (rights 121, 2411, later 262)
FIXTURES = config.SHARED_DOLIBARR_DIR


def _need_fixtures():
    if not (FIXTURES / "README.md").exists():
        pytest.skip(f"enregistrements Dolibarr absents ({FIXTURES})")


@pytest.fixture
def server():
    """The replay server; a request without a recorded answer fails the test at teardown."""
    _need_fixtures()
    with ReplayServer(FIXTURES, KEY, reader_key=READER) as srv:
        yield srv


def declare_default_install(srv):
    """Declare the three answers a default pull needs that were not recorded with its exact query.

    - ``GET /contacts?includeroles=1``: the recorded list (``contacts_list``), whose two contacts have no role;
      with ``includeroles=1`` a contact without role has ``roles: []`` (README, ``includeroles``), as recorded.
    - ``GET /agendaevents`` (``t.id``, 100 a page): the recorded first page of ``t.id`` (5 events) stands
      for the agenda; shorter than the page, it ends the list.
    - ``GET /categories/2/objects?type=supplier`` was not recorded: declared empty (the recorded end of a
      category list, ``200 []``); the publishers it would hold are typed by their supplier flag anyway.
    """
    srv.add("GET", "/contacts", {"includeroles": 1}, like="contacts_list")
    srv.add("GET", "/agendaevents", {}, like="agendaevents_list_sortfield_id")
    srv.add("GET", "/categories/2/objects", {"type": "supplier"}, like="categories_list_page_past_end_empty")


def _client(url, key=KEY, waits=None, **kw):
    sleep = (waits.append if waits is not None else (lambda s: None))
    return dol.DolibarrClient(url, key, policy=RetryPolicy(retries=3, backoff=0.01, sleep=sleep), progress=False,
                              **kw)


def _recorded(name):
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- pagination

def test_thirdparties_pages_end_on_short_page(server):
    items = _client(server.url).list_all("thirdparties", page_size=3)
    assert [t["id"] for t in items] == [str(i) for i in range(1, 11)]
    # Dolibarr reads limit + 1 rows: the short fourth page is the last, no request past it
    assert server.served() == ["thirdparties_list_limit3_page0", "thirdparties_list_limit3_page1",
                               "thirdparties_list_limit3_page2", "thirdparties_list_limit3_page3"]


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
    # the recorded « no match » 404s of third parties and contacts are read as empty results
    assert client.list_all("thirdparties", {"sqlfilters": "(ef.uai:=:'9999999Z')"}) == []
    assert client.list_all("contacts", {"thirdparty_ids": "7"}) == []
    assert server.served() == ["error_thirdparties_list_sqlfilters_nomatch_404", "error_contacts_list_empty_404"]


def test_unrecorded_request_fails_instead_of_an_invented_answer():
    _need_fixtures()
    srv = ReplayServer(FIXTURES, KEY)
    with pytest.raises(AssertionError, match="sans échange enregistré"):
        with srv:
            with pytest.raises(ServiceError):
                _client(srv.url).get("contracts/42")  # never recorded
    assert srv.served() == ["UNRECORDED"]


# --------------------------------------------------------------------------- agenda (defect 1)

def test_agenda_is_sorted_by_its_own_key(server):
    # the replay stands for an agenda holding the 5 recorded events: page 1 gets the recorded past-end `200 []`
    server.add("GET", "/agendaevents", {"sortfield": "t.id", "sortorder": "ASC", "limit": 5, "page": 1},
               like="agendaevents_list_page_past_end")
    events = _client(server.url).list_all("agendaevents", page_size=5)
    assert [e["id"] for e in events] == ["2", "4", "6", "8", "10"]
    assert server.log[0]["query"]["sortfield"] == "t.id"
    assert server.served()[0] == "agendaevents_list_sortfield_id"


def test_sql_error_is_reported_as_such_not_as_a_filter(server):
    with pytest.raises(ServiceError) as err:
        _client(server.url).get("agendaevents", {"sortfield": "t.rowid", "limit": 5}, resource="agendaevents")
    msg = str(err.value)
    assert "erreur SQL de Dolibarr (HTTP 503" in msg and "Unknown column 't.rowid' in 'ORDER BY'" in msg
    assert "sortfield=t.rowid" in msg and "filtre" not in msg
    assert server.served() == ["agendaevents_list_sortfield_rowid_error"]  # deterministic: not retried


# --------------------------------------------------------------------------- full pull → contract files

def test_full_pull_writes_contract_files(server, tmp_path):
    declare_default_install(server)
    client = _client(server.url)
    raw = dol.pull(client)
    assert raw.timezone == "UTC" and raw.version == "20.0.2"
    frames = dol.to_frames(raw, tz=raw.timezone)
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

    # the agenda was read (sorted by t.id); its 5 recorded events are Dolibarr's own (AC_OTH_AUTO)
    assert len(raw.events) == 5 and not raw.unavailable
    assert read_contract_file(tmp_path, "crm/actions").empty
    assert set(frames["_skipped"]["motif"]) == {"événement créé automatiquement par Dolibarr (création, "
                                                 "modification, suppression d'une fiche)"}


def test_cli_pull_and_secrets_never_leak(server, tmp_path, monkeypatch, caplog, capsys):
    declare_default_install(server)
    password = "Pr0xyS3cret-pw"
    monkeypatch.setenv(config.ENV_DOLIBARR_KEY, KEY)
    url = server.url.replace("http://", f"http://gar:{password}@")
    caplog.set_level(logging.DEBUG)
    assert cli.main(["-v", "crm", "pull", "--url", url, "--out", str(tmp_path), "--retries", "1"]) == 0
    out = capsys.readouterr()
    assert "crm/acteurs.csv : 10 ligne(s)" in out.out
    # the key went in the header of every request, never in a query string; the URL's password as basic auth
    assert all(h.get("DOLAPIKEY") == KEY for h in server.headers_seen)
    assert all(h.get("Authorization", "").startswith("Basic ") for h in server.headers_seen)
    assert all("DOLAPIKEY" not in e["query"] for e in server.log)
    # … and nowhere in logs, console or written files
    assert caplog.records and KEY not in caplog.text and password not in caplog.text
    assert KEY not in out.out + out.err and password not in out.out + out.err
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"acteurs.csv", "contrats.csv", "contacts.csv", "actions.csv",
                                       "dolibarr_pull.json"}
    assert not any(KEY in p.read_text(encoding="utf-8") or password in p.read_text(encoding="utf-8")
                   for p in files)
    state = json.loads((tmp_path / "crm/dolibarr_pull.json").read_text(encoding="utf-8"))
    assert state["host"] == server.url.removeprefix("http://") and state["fuseau"] == "UTC"
    # log noise (defect 8): the 5 automatic events make one summary line, not one warning each
    auto = [r for r in caplog.records if "créé automatiquement" in r.getMessage()]
    assert [r.levelno for r in auto if r.levelno >= logging.INFO] == [logging.INFO]
    assert "5 événement(s) non repris" in auto[-1].getMessage() or any(
        "5 événement(s) non repris" in r.getMessage() for r in auto)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "Dolibarr :" in r.getMessage()]


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
    with pytest.raises(dol.RightMissing) as err:
        _client(server.url, key=READER).list_all("contracts")
    msg = str(err.value)
    assert "HTTP 403" in msg and "contrat → lire" in msg and "Permissions" in msg
    # a non-admin key: Dolibarr's bare 403 may also be a disabled module, and the message says so
    assert "module « Contrats »" in msg
    assert server.served() == ["error_forbidden_403_contracts_list", "error_setup_extrafields_list_reader_not_admin"]


# --------------------------------------------------------------------------- rights and modules (defects 2, 5)

def test_disabled_module_told_apart_from_missing_right(server, caplog):
    client = _client(server.url)
    with pytest.raises(dol.ModuleUnavailable, match="module « Projets » est désactivé") as err:
        client.list_all("projects", page_size=2)
    assert "droit" not in str(err.value)
    # optional module: a warning and an empty list, the admin probe is asked once
    assert client.list_all("projects", page_size=2, optional=True) == []
    assert "désactivé" in caplog.text and client.unavailable["projects"]
    assert server.served() == ["error_module_disabled_projects", "setup_extrafields_list_thirdparty",
                               "error_module_disabled_projects"]


def test_agenda_without_myactions_names_the_missing_right(server):
    with pytest.raises(dol.RightMissing) as err:
        _client(server.url, key=READER).list_all("agendaevents", page_size=5)
    msg = str(err.value)
    assert "Insufficient rights to read events" in msg and "droit 2401" in msg and "myactions" in msg
    assert server.served() == ["agendaevents_list_reader_without_myactions"]  # a detailed 403: no probe


def test_narrowed_pull_never_empties_good_files(server, tmp_path):
    declare_default_install(server)
    good = dol.to_frames(dol.pull(_client(server.url)), tz="UTC")
    dol.save(good, tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "crm").glob("*.csv")}
    reader = _client(server.url, key=READER)
    for fixture in ("error_thirdparties_list_reader_without_readall_404", "thirdparties_list_reader_without_readall"):
        server.prefer(fixture)
        narrowed = dol.CrmPull(thirdparties=reader.list_all("thirdparties", page_size=3))
        assert len(narrowed.thirdparties) in (0, 2)  # 404 « not found », or only the 2 of the sales rep
        frames = dol.to_frames(narrowed, tz="UTC")
        with pytest.raises(ServiceError) as err:
            dol.save(frames, tmp_path)
        msg = str(err.value)
        assert "acteurs.csv : " in msg and "au lieu de 10" in msg and "droit 262" in msg and "--force" in msg
        assert {p.name: p.read_bytes() for p in (tmp_path / "crm").glob("*.csv")} == before
    dol.save(frames, tmp_path, force=True)  # a real drop is accepted when forced
    assert len(read_contract_file(tmp_path, "crm/acteurs")) == 2


# --------------------------------------------------------------------------- closed contracts, roles, time zones

def test_closed_contract_derived_from_its_lines(server):
    contract = _client(server.url).get("contracts/305", resource="contracts")
    assert contract["statut"] == "1" and [ln["statut"] for ln in contract["lines"]] == ["5", "0"]
    row = dol.to_frames(dol.CrmPull(contracts=[contract]), tz="UTC")["crm/contrats"].iloc[0]
    assert row["statut"] == "clos"
    assert row["date_fin"] == "2026-11-30"  # the day its running line was closed
    assert row["date_fin_prevue"] == "2027-08-31"  # the planned end is kept
    assert row["date_signature"] == "2026-09-01"
    assert server.served() == ["contracts_get_closed"]


def test_contact_roles_from_the_json_object(server):
    contact = _client(server.url).get("contacts/9", {"includeroles": 1})
    assert isinstance(contact["roles"], dict)
    assert dol.role_of(contact) == "referent_gar"  # not the link id « 2 »
    assert server.served() == ["contacts_get_includeroles"]


def test_server_time_zone_read_from_status(server):
    server.prefer("status_server_tz_paris")
    server.prefer("contracts_get_server_tz_paris")
    client = _client(server.url)
    tz = dol.resolve_timezone(client.server_timezone(), None)
    assert tz == "Europe/Paris"
    contract = client.get("contracts/305", resource="contracts")
    row = dol.to_frames(dol.CrmPull(contracts=[contract]), tz=tz)["crm/contrats"].iloc[0]
    assert [row["date_signature"], row["date_debut"], row["date_fin_prevue"]] == [
        "2026-09-01", "2026-09-01", "2027-08-31"]
    shifted = dol.to_frames(dol.CrmPull(contracts=[contract]), tz="UTC")["crm/contrats"].iloc[0]
    assert shifted["date_signature"] == "2026-08-31"  # what the old default --tz UTC wrote


def test_production_server_requires_tz(server, tmp_path, monkeypatch, capsys):
    server.prefer("prod_status_ok")
    monkeypatch.setenv(config.ENV_DOLIBARR_KEY, KEY)
    assert cli.main(["crm", "pull", "--url", server.url, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "fuseau horaire du serveur Dolibarr inconnu" in err and "--tz Europe/Paris" in err
    assert server.served() == ["prod_status_ok"] and not (tmp_path / "crm").exists()


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


# --------------------------------------------------------------------------- incremental (defect 6)

def test_incremental_pull_rereads_contracts_in_full(server, tmp_path):
    declare_default_install(server)
    client = _client(server.url)
    dol.write_crm(dol.to_frames(dol.pull(client), tz="UTC"), tmp_path)
    # nothing was modified after 2026-12-01 on the recorded server (its clock said 2026-11-29): each filtered
    # list gets that endpoint's recorded « no match » answer
    since = "2026-12-01"
    flt = {"sqlfilters": dol.since_filter(since)}
    server.add("GET", "/thirdparties", flt, like="error_thirdparties_list_sqlfilters_nomatch_404")
    server.add("GET", "/contacts", {**flt, "includeroles": 1}, like="error_contacts_list_empty_404")
    server.add("GET", "/projects", flt, like="contracts_list_sqlfilters_nomatch_empty")
    server.log.clear()
    raw = dol.pull(client, since=since, actions=False)
    assert raw.thirdparties == [] and raw.contacts == [] and raw.projects == []
    # closing a contract or adding a line leaves its tms alone (contracts_list_modified_since): read them all
    contract_queries = [e["query"] for e in server.log if e["path"] == "/contracts"]
    assert contract_queries and all("sqlfilters" not in q for q in contract_queries)
    assert [c["id"] for c in raw.contracts] == ["1", "2", "3", "4"]
    frames = dol.to_frames(raw, tz="UTC", known_uai=dol.existing_uai(tmp_path))
    dol.save(frames, tmp_path, merge=True)
    assert len(read_contract_file(tmp_path, "crm/acteurs")) == 10  # kept from the full pull
    assert len(read_contract_file(tmp_path, "crm/contrats")) == 4
    assert len(read_contract_file(tmp_path, "crm/contacts")) == 2
    # a category-only change is invisible to tms: categories, read in full, show the drift
    assert dol.category_drift(raw, tmp_path) == []
    acteurs = read_contract_file(tmp_path, "crm/acteurs").reset_index(drop=True)
    acteurs.loc[acteurs["id_acteur"] == "1", "type"] = "editeur"  # as if it had been in « Éditeurs »
    write_contract_file(acteurs, tmp_path, "crm/acteurs")
    assert dol.category_drift(raw, tmp_path) == ["1"]  # « Lycées » now says etablissement


def test_tms_filter_misses_closed_contracts_as_recorded(server):
    """Why contracts are re-read in full: the recorded tms filter returns only the validated contract."""
    listed = _client(server.url).get("contracts", {"sqlfilters": "(t.tms:>:'2026-11-30 00:42:31')",
                                                   "sortfield": "t.rowid", "sortorder": "ASC", "limit": 10},
                                     resource="contracts")
    assert [c["id"] for c in listed] == ["307"]  # 305 (closed) and 306 (new line) are missing
