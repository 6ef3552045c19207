"""``gar-analysis crm push`` against a real HTTP server replaying the recorded Dolibarr 20.0.2 writes.

Third party 7 is « Académie de Paris » (``options_code_academie`` « 01 ») in the recorded write session;
the extrafields ``gar_etab_inscrits`` (int), ``gar_part_actifs`` (double 24,8) and ``gar_maj`` (varchar 10)
are those the recorded ``setup_extrafields_post_gar_*`` created. The test data give Paris 42 registered
schools, 24 of them active in 2026-11: 24/42 = 0.57, the values of the recorded PUT.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from gar_analysis import cli, config
from gar_analysis.contract import write_contract_file
from gar_analysis.errors import ConfigError
from gar_analysis.integrations import dolibarr as dol
from gar_analysis.integrations import dolibarr_push as push
from gar_analysis.integrations.http import RetryPolicy, ServiceError

sys.path.insert(0, str(Path(__file__).parent))
from replay_server import READER as READER_ROLE  # noqa: E402
from replay_server import ReplayServer  # noqa: E402

pytestmark = pytest.mark.shared

KEY = "Zt8Qm2vLx9Kp4RwN7cYh"
READER = "Rd4Wq8Nx2Lm6Tz0Yb3Kp"
FIXTURES = config.SHARED_DOLIBARR_DIR


@pytest.fixture
def server():
    if not (FIXTURES / "README.md").exists():
        pytest.skip(f"enregistrements Dolibarr absents ({FIXTURES})")
    with ReplayServer(FIXTURES, KEY, reader_key=READER) as srv:
        yield srv


def _schools(academie: str, n: int, active: int, start: int) -> tuple[list[dict], list[dict]]:
    etab, usage = [], []
    for i in range(n):
        uai = f"{start + i:07d}A"
        etab.append({"uai": uai, "inscrit": True, "code_academie": academie, "code_region": "11",
                     "code_departement": "75", "code_commune": "75056"})
        usage.append({"uai": uai, "mois": "2026-10", "acces": 10})
        usage.append({"uai": uai, "mois": "2026-11", "acces": 7 if i < active else 0})
    return etab, usage


@pytest.fixture
def data(tmp_path):
    """A CRM pull (acteurs) and processed tables: Paris 42/24, Aix-Marseille 3/3, Besançon 40/3."""
    acteurs = pd.DataFrame([
        {"id_acteur": "7", "type": "academie", "nom": "Académie de Paris", "code": "01"},
        {"id_acteur": "8", "type": "academie", "nom": "Académie d'Aix-Marseille", "code": "02"},
        {"id_acteur": "9", "type": "academie", "nom": "Académie de Besançon", "code": "03"},
        {"id_acteur": "1", "type": "etablissement", "nom": "Lycée Victor Hugo", "code": "0750001A"}])
    raw = tmp_path / "raw"
    write_contract_file(acteurs, raw, "crm/acteurs")
    etab, usage = [], []
    for academie, n, active, start in (("01", 42, 24, 1000), ("02", 3, 3, 2000), ("03", 40, 3, 3000)):
        e, u = _schools(academie, n, active, start)
        etab += e
        usage += u
    etab.append({"uai": "0759999Z", "inscrit": False, "code_academie": "01", "code_region": "11",
                 "code_departement": "75", "code_commune": "75056"})  # not registered: not counted
    processed = tmp_path / "processed"
    processed.mkdir()
    pd.DataFrame(etab).to_parquet(processed / "etablissements.parquet")
    pd.DataFrame(usage).to_parquet(processed / "usage_mensuel.parquet")
    return raw, processed


def _run(server, data, *extra, key=KEY, monkeypatch):
    raw, processed = data
    monkeypatch.setenv(config.ENV_DOLIBARR_KEY, key)
    return cli.main(["crm", "push", "--url", server.url, "--data", str(raw), "--processed", str(processed),
                     "--retries", "0", *extra])


def _client(server, key=KEY):
    return dol.DolibarrClient(server.url, key, policy=RetryPolicy(retries=2, backoff=0.01, sleep=lambda s: None),
                              progress=False)


def test_statistics_follow_the_disclosure_rules(data):
    from gar_analysis.build import load_processed
    from gar_analysis.contract import read_contract_file

    raw, processed = data
    stats = push.statistics(read_contract_file(raw, "crm/acteurs"), load_processed("etablissements", processed),
                            load_processed("usage_mensuel", processed), threshold=5)
    by_id = stats.set_index("id_acteur")
    assert by_id.loc["7", ["gar_etab_inscrits", "gar_part_actifs", "gar_maj"]].tolist() == [42, 0.57, "2026-11"]
    assert by_id.loc["8", ["gar_etab_inscrits", "gar_part_actifs"]].tolist() == ["c", "c"]  # 3 schools
    assert by_id.loc["9", "gar_part_actifs"] == "c"  # 3 active of 40: the share gives back a small count
    assert "1" not in by_id.index  # a school is not a territory


def test_dry_run_prints_changes_and_writes_nothing(server, data, monkeypatch, capsys):
    server.prefer("thirdparties_get_before_put_array_options")
    assert _run(server, data, monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert ("tiers 7 (Académie de Paris) : gar_etab_inscrits vide → 42 ; gar_part_actifs vide → 0.57 ; "
            "gar_maj vide → 2026-11") in out
    assert "événement « Tiers modifié » à l'agenda" in out and "--apply" in out
    assert out.count("secret statistique") == 2  # Aix-Marseille and Besançon: nothing asked, nothing written
    assert [e["method"] for e in server.log] == ["GET"]
    assert server.served() == ["thirdparties_get_before_put_array_options"]


def test_apply_writes_json_numbers_once(server, data, monkeypatch, capsys):
    server.prefer("thirdparties_get_before_put_array_options")
    assert _run(server, data, "--apply", monkeypatch=monkeypatch) == 0
    assert server.served() == ["thirdparties_get_before_put_array_options", "thirdparties_put_array_options"]
    sent = server.log[-1]["body"]["array_options"]
    # JSON numbers: a decimal string would be read in the request's language ("0,62" became 62)
    assert sent == {"options_gar_etab_inscrits": 42, "options_gar_part_actifs": 0.57, "options_gar_maj": "2026-11"}
    assert type(sent["options_gar_etab_inscrits"]) is int and type(sent["options_gar_part_actifs"]) is float
    assert "1 tiers mis à jour" in capsys.readouterr().out


def test_second_push_is_idempotent(server, data, monkeypatch, capsys):
    server.prefer("thirdparties_get_after_put_array_options")  # "42", "0.57000000", "2026-11" stored
    assert _run(server, data, "--apply", monkeypatch=monkeypatch) == 0
    assert server.served() == ["thirdparties_get_after_put_array_options"]  # no PUT, so no agenda event
    assert "Aucune modification" in capsys.readouterr().out


def test_changed_values_only_are_sent(server):
    """The recorded second PUT: every value changed, all are sent; the answer holds them."""
    server.prefer("thirdparties_get_after_put_array_options")
    stats = pd.DataFrame([{"id_acteur": "7", "type": "academie", "nom": "Académie de Paris", "code": "01",
                           "gar_etab_inscrits": 43, "gar_part_actifs": 0.61, "gar_maj": "2026-12"}])
    client = _client(server)
    changes, notes = push.plan(client, stats)
    assert notes == [] and [c.values for c in changes] == [
        {"options_gar_etab_inscrits": 43, "options_gar_part_actifs": 0.61, "options_gar_maj": "2026-12"}]
    assert push.apply(client, changes) == [
        "tiers 7 (Académie de Paris) : gar_etab_inscrits 42 → 43 ; gar_part_actifs 0.57000000 → 0.61 ; "
        "gar_maj 2026-11 → 2026-12"]
    assert server.served()[-1] == "thirdparties_put_array_options_second"


def test_missing_write_right_stops_with_the_right_named(server, data, monkeypatch, capsys):
    # the reader (121 + 262) reads third party 7 as the admin does: a sync key sees every extrafield in
    # array_options (README « Extrafields can be created… only with an admin key »)
    server.add("GET", "/thirdparties/7", {}, like="thirdparties_get_before_put_array_options", role=READER_ROLE)
    assert _run(server, data, "--apply", key=READER, monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert "HTTP 403" in err and "droit 122" in err and "Rien n'a été écrit" in err
    assert server.served()[-1] == "error_thirdparties_put_reader"


def test_create_fields_with_admin_key(server):
    lines = push.ensure_fields(_client(server))
    assert lines == ["extrafield gar_etab_inscrits (int 10) : créé (id 8)",
                     "extrafield gar_part_actifs (double 24,8) : créé (id 9)",
                     "extrafield gar_maj (varchar 10) : créé (id 10)"]
    assert server.served() == ["setup_extrafields_list_thirdparty", "setup_extrafields_post_gar_etab_inscrits",
                               "setup_extrafields_post_gar_part_actifs", "setup_extrafields_post_gar_maj"]
    assert all(e["path"].startswith("/setup/extrafields/societe/") for e in server.log[1:])  # never "thirdparty"


def test_create_fields_duplicate_is_not_an_error(server):
    server.prefer("error_setup_extrafields_post_duplicate")
    lines = push.ensure_fields(_client(server))
    assert lines[0] == "extrafield gar_etab_inscrits : déjà présent (HTTP 409)"
    assert server.served()[1] == "error_setup_extrafields_post_duplicate"


def test_create_fields_needs_an_admin_key(server):
    with pytest.raises(ServiceError, match="Only an admin user can get list of extrafields") as err:
        push.ensure_fields(_client(server, READER))
    assert "Attributs supplémentaires" in str(err.value)
    assert server.served() == ["error_setup_extrafields_list_reader_not_admin"]


def test_wrong_type_is_refused_before_sending_and_explained_after(server):
    with pytest.raises(ConfigError, match="valeur non numérique"):
        push.typed("gar_etab_inscrits", "quarante-deux")
    with pytest.raises(ConfigError, match="attend un entier"):
        push.typed("gar_etab_inscrits", 41.6)  # Dolibarr would silently store 42
    with pytest.raises(ServiceError) as err:
        _client(server).write("PUT", "thirdparties/7",
                              {"array_options": {"options_gar_etab_inscrits": "quarante-deux"}}, right="x")
    assert "HTTP 500 sans détail" in str(err.value) and "type" in str(err.value)
    assert server.served() == ["thirdparties_put_wrong_type_extrafield"]  # a Dolibarr 500 is not retried


def test_manual_agenda_event(server):
    change = push.Change("7", "Académie de Paris", {}, "2026-11", {
        "options_gar_etab_inscrits": 42, "options_gar_part_actifs": 0.57, "options_gar_maj": "2026-11"})
    server.prefer("thirdparties_put_array_options")
    push.apply(_client(server), [change], event_owner=1, now=1795999699)
    assert server.served() == ["thirdparties_put_array_options", "agendaevents_post"]


def test_missing_extrafields_are_named(server):
    stats = pd.DataFrame([{"id_acteur": "7", "type": "academie", "nom": "Nathan", "code": "01",
                           "gar_etab_inscrits": 42, "gar_part_actifs": 0.57, "gar_maj": "2026-11"}])
    server.prefer("thirdparties_get_publisher")  # the first install's 7: no gar_* extrafield
    with pytest.raises(ConfigError, match="gar_etab_inscrits, gar_part_actifs, gar_maj.*--create-fields"):
        push.plan(_client(server), stats)
