"""Mapping of Dolibarr records to the contract's CRM files (no server needed)."""
from __future__ import annotations

import pandas as pd
import pytest

from gar_analysis import cli, config
from gar_analysis.contract import read_contract_file
from gar_analysis.errors import ConfigError
from gar_analysis.integrations import dolibarr as dol
from gar_analysis.integrations.http import RetryPolicy, ServiceError


def _tp(id_, name, **kw):
    base = {"id": str(id_), "name": name, "client": "1", "fournisseur": "0", "idprof1": "", "idprof6": "",
            "typent_code": None, "array_options": {"options_uai": None}}
    base.update(kw)
    return base


def test_dates_in_every_recorded_form():
    assert dol.to_date(1819756799) == "2027-08-31"
    assert dol.to_date("1788220800") == "2026-09-01"
    assert [dol.to_date(v) for v in (None, "", "0", 0)] == [None, None, None, None]
    # a server in Paris stores midnight local time: 2026-08-31T22:00Z is the 1st of September there
    assert dol.to_date(1788213600, dol._zone("Europe/Paris")) == "2026-09-01"
    with pytest.raises(ConfigError, match="Fuseau horaire inconnu"):
        dol._zone("Mars/Olympus")


def test_uai_from_extrafield_then_idprof6_and_array_options_as_list():
    assert dol.uai_of(_tp(1, "X", array_options={"options_uai": "0750001a "}, idprof6="0000000Z")) == "0750001A"
    assert dol.uai_of(_tp(2, "X", array_options=[], idprof6="0691234B")) == "0691234B"
    assert dol.uai_of(_tp(3, "X", array_options={"options_uai": None})) == ""
    assert dol.options({"array_options": []}) == {}


@pytest.mark.parametrize("record,categories,expected", [
    (_tp(1, "Rectorat de Lyon"), [], ("academie", "nom")),
    (_tp(2, "Conseil régional Grand Est"), [], ("region", "nom")),
    (_tp(3, "Conseil départemental du Rhône"), [], ("departement", "nom")),
    (_tp(4, "Mairie de Rennes"), [], ("commune", "nom")),
    (_tp(5, "Kosmos", fournisseur="1"), ["Fournisseurs ENT"], ("ent", "catégorie")),
    (_tp(6, "Lycée de la Région"), [], ("etablissement", "nom")),
    (_tp(7, "Société X", array_options={"options_type_acteur": "departement"}), ["Lycées"],
     ("departement", "extrafield")),
    (_tp(8, "Société Y", typent_code="TE_COLLECTIVITE_COMMUNE"), [], ("commune", "type de tiers")),
    (_tp(9, "Sans nom parlant", array_options={"options_uai": "0330001F"}), [], ("etablissement", "UAI")),
    (_tp(10, "Nathan", fournisseur="1"), [], ("editeur", "fournisseur")),
    (_tp(11, "Association Z"), [], (None, "")),
])
def test_actor_type(record, categories, expected):
    assert dol.actor_type(record, categories) == expected


def test_actor_codes():
    dep = _tp(1, "Conseil départemental du Rhône", state_id="372")
    assert dol.actor_code(dep, "departement", {"372": "69"}) == "69"
    assert dol.actor_code(_tp(2, "Région", array_options={"options_code_insee": "53"}), "region") == "53"
    assert dol.actor_code(_tp(3, "Éditeur", idprof1="552100554"), "editeur") == "552100554"
    assert dol.actor_code(_tp(4, "Mairie", idprof1="217500016"), "commune") == ""  # a SIREN is not an INSEE code


@pytest.mark.shared
def test_departement_code_from_the_states_dictionary(tmp_path):
    """The recorded state 378 is Paris: a département actor without code gets « 75 »."""
    if not (config.SHARED_DOLIBARR_DIR / "setup_dictionary_state_378.json").exists():
        pytest.skip("enregistrements Dolibarr absents")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from replay_server import ReplayServer

    with ReplayServer(config.SHARED_DOLIBARR_DIR, "Zt8Qm2vLx9Kp4RwN7cYh") as srv:
        client = dol.DolibarrClient(srv.url, "Zt8Qm2vLx9Kp4RwN7cYh", progress=False)
        assert client.state_code("378") == "75"
        assert srv.served() == ["setup_dictionary_state_378"]


def test_roles_extrafield_roles_then_poste():
    assert dol.role_of({"array_options": {"options_role": "Référent GAR"}, "poste": "Principal"}) == "referent_gar"
    assert dol.role_of({"roles": [{"code": "BILLING", "label": "Facturation"},
                                  {"code": "DRANE", "label": "Délégué régional académique au numérique"}]}) == "drane"
    assert dol.role_of({"poste": "Référent numérique"}) == "referent_numerique"
    assert dol.role_of({"poste": "Gestionnaire"}) == "gestionnaire"
    assert dol.role_of({"poste": None, "roles": []}) == "contact"


def _raw():
    return dol.CrmPull(
        thirdparties=[_tp(1, "Collège A", array_options={"options_uai": "0351234X"}),
                      _tp(2, "Conseil départemental d'Ille-et-Vilaine",
                          array_options={"options_code_insee": "35"}),
                      _tp(3, "Association sans type")],
        contracts=[
            {"id": "5", "socid": "2", "statut": "2", "date_contrat": 1700000000, "ref_customer": "Convention GAR 35",
             "array_options": [], "lines": [
                 {"desc": "Adhésion", "date_start": 1700000000, "date_start_real": "", "date_end": 1750000000,
                  "date_end_real": 1740000000, "total_ht": "0.00000000"}]},
            {"id": "6", "socid": "2", "statut": "1", "date_contrat": 1700000000, "array_options": [],
             "lines": [{"desc": "Convention ENT Toutatice", "date_start": None, "date_end": None}]},
            {"id": "7", "socid": "2", "statut": "9", "array_options": [], "lines": []},
        ],
        contacts=[{"id": "1", "socid": "1", "poste": "Référente GAR", "lastname": "Nom", "email": "a@b.fr"},
                  {"id": "2", "socid": None, "poste": "DRANE"}],
        events=[{"id": "1", "socid": "1", "datep": 1760000000, "label": "Formation GAR des enseignants",
                 "percentage": "100"},
                {"id": "2", "socid": "1", "datep": 1760000000, "type_code": "AC_RDV",
                 "label": "Visite d'accompagnement", "percentage": "-1"},
                {"id": "3", "socid": "1", "datep": 1900000000, "label": "Webinaire", "percentage": "0"},
                {"id": "4", "socid": "2", "datep": 1760000000, "label": "Formation", "percentage": "100"},
                {"id": "5", "socid": "1", "datep": 1760000000, "label": "Réunion budgétaire", "percentage": "100"}])


def test_frames_validate_against_the_contract(tmp_path):
    frames = dol.to_frames(_raw(), today="2026-11-29")
    dol.write_crm(frames, tmp_path)
    acteurs = read_contract_file(tmp_path, "crm/acteurs")
    assert acteurs[["id_acteur", "type", "code"]].values.tolist() == [["1", "etablissement", "0351234X"],
                                                                      ["2", "departement", "35"]]
    contrats = read_contract_file(tmp_path, "crm/contrats").set_index("id_contrat")
    assert contrats.loc["5", ["objet", "statut"]].tolist() == ["convention_gar", "clos"]
    assert contrats.loc["5", "date_signature"] == pd.Timestamp("2023-11-14")
    assert contrats.loc["5", "date_fin"] == pd.Timestamp("2025-02-19")  # the real end wins over the planned one
    assert contrats.loc["6", "objet"] == "convention_ent" and pd.isna(contrats.loc["6", "date_debut"])
    assert "7" not in contrats.index
    contacts = read_contract_file(tmp_path, "crm/contacts")
    assert contacts[["id_contact", "role"]].values.tolist() == [["1", "referent_gar"]]
    actions = read_contract_file(tmp_path, "crm/actions")
    assert actions.assign(date=actions["date"].dt.strftime("%Y-%m-%d")).values.tolist() == [
        ["2025-10-09", "0351234X", "accompagnement"], ["2025-10-09", "0351234X", "formation"]]
    motifs = frames["_skipped"]
    assert sorted(zip(motifs["objet"], motifs["id"])) == [
        ("contact", "2"), ("contrat", "7"), ("tiers", "3"), ("événement", "3"), ("événement", "4"),
        ("événement", "5")]


def test_base_url_normalisation():
    assert dol.normalize_base_url("https://crm.example.org/") == "https://crm.example.org/api/index.php"
    assert dol.normalize_base_url("http://h/dolibarr/api/index.php") == "http://h/dolibarr/api/index.php"
    with pytest.raises(ConfigError):
        dol.normalize_base_url("crm.example.org")


def test_client_refuses_missing_key():
    with pytest.raises(ConfigError, match="DOLAPIKEY"):
        dol.DolibarrClient("http://127.0.0.1:9", "")


def test_since_auto_reads_the_previous_pull(tmp_path):
    assert dol._resolve_since("auto", tmp_path) is None  # no previous pull: full pull
    (tmp_path / "crm").mkdir()
    (tmp_path / dol.STATE_FILE).write_text('{"pulled_at": "2026-11-20T08:00:00+00:00"}', encoding="utf-8")
    assert dol._resolve_since("auto", tmp_path) == "2026-11-19 08:00:00"  # one day of margin
    assert dol._resolve_since("2026-01-01", tmp_path) == "2026-01-01"


def test_cli_refuses_key_absent(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(config.ENV_DOLIBARR_KEY, raising=False)
    assert cli.main(["crm", "pull", "--url", "http://127.0.0.1:9", "--out", str(tmp_path)]) == 2
    assert "DOLAPIKEY" in capsys.readouterr().err


def test_since_filter_syntax():
    assert dol.since_filter("2026-11-01 08:30:00") == "(t.tms:>:'2026-11-01 08:30:00')"
    with pytest.raises(ConfigError, match="illisible"):
        dol.since_filter("1er novembre")


def test_connection_error_is_retried_then_reported():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    waits: list[float] = []
    with pytest.raises(ServiceError, match="injoignable après 4 tentative"):
        dol.DolibarrClient(f"http://127.0.0.1:{port}", "Zt8Qm2vLx9Kp4RwN7cYh", progress=False,
                           policy=RetryPolicy(retries=3, backoff=0.01, sleep=waits.append)).status()
    assert len(waits) == 3
