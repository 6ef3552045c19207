"""Mapping of Dolibarr records to the contract's CRM files (no server needed)."""
from __future__ import annotations

import pandas as pd
import pytest

from gar_analysis.contract import read_contract_file
from gar_analysis.errors import ConfigError
from gar_analysis.integrations import dolibarr as dol


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
