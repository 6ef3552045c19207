"""The rules against the sample's planted anomalies (recall, precision) and against real open data."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from gar_analysis import config
from gar_analysis.checks import RULES, run_checks
from gar_analysis.checks.evaluation import score

ISSUE_RULES = ["uai_invalide", "doublon", "uai_inconnu", "ressource_inconnue", "territoire_incoherent",
               "acces_avant_inscription", "acces_sans_abonnement", "periode_invalide", "valeur_negative",
               "accedants_sup_effectif", "affectations_sup_licences", "rupture_serie", "mois_manquant",
               "incoherence_dnma", "ips_hors_plage", "depense_incoherente"]


@pytest.fixture(scope="session")
def sample_checked(tmp_path_factory):
    from gar_analysis.sample import generate

    out = tmp_path_factory.mktemp("sample_checks")
    truth = generate(out, seed=config.SAMPLE_SEED, scale="default")
    return truth, run_checks(out)


def test_every_rule_has_planted_anomalies(sample_checked):
    truth, _ = sample_checked
    planted = pd.DataFrame(truth["anomalies"])["regle"].value_counts()
    for rid in ISSUE_RULES:
        assert planted.get(rid, 0) >= 10, rid
    assert set(planted.index) <= set(RULES)


@pytest.mark.parametrize("regle", ISSUE_RULES)
def test_recall_and_precision_per_rule(sample_checked, regle):
    truth, findings = sample_checked
    s = score(findings, truth["anomalies"]).loc[regle]
    assert s["rappel"] >= 0.95, s.to_dict()
    assert s["precision"] >= 0.90, s.to_dict()


def test_truth_records_are_complete(sample_checked):
    truth, _ = sample_checked
    for a in truth["anomalies"]:
        assert {"regle", "source", "uai", "mois", "id_ressource"} <= set(a)
        assert a["source"].endswith(".csv") and "/" in a["source"]
        assert a["uai"] or "ligne" in a


@pytest.mark.slow
def test_planting_is_deterministic():
    import numpy as np

    from gar_analysis.sample import build_frames
    from gar_analysis.sample.anomalies import plant_anomalies

    frames, _ = build_frames(seed=7, scale="default", years=1)
    copy = {k: v.copy() for k, v in frames.items()}
    t1 = plant_anomalies(frames, np.random.default_rng(1), "default")
    t2 = plant_anomalies(copy, np.random.default_rng(1), "default")
    assert t1 == t2 and len(t1) > 200
    assert frames["gar/acces"].equals(copy["gar/acces"])
    assert json.dumps(t1, default=str)


# --------------------------------------------------------------------------- real data

@pytest.mark.shared
def test_real_open_data_findings(tmp_path):
    if not (config.SHARED_OPENDATA_DIR / "dept35-ille-et-vilaine").exists():
        pytest.skip("données ouvertes réelles absentes (../shared/data/opendata)")
    from gar_analysis.checks.realdata import check_real_files

    f = check_real_files(tmp_path / "reel")
    # the Ille-et-Vilaine register: 3 UAIs on 2 lines each, flagged multi-line by the register itself
    multi = f[(f["regle"] == "doublon") & (f["source"] == "referentiel/annuaire.csv")]
    assert sorted(multi["uai"]) == ["0350778F", "0350852L", "0352072M"]
    assert (multi["gravite"] == "info").all()
    assert sorted(multi["ligne"].tolist()) == [940, 961, 974]
    # effectifs second degré: 8 pseudo-UAIs ending in "O" (no UAI has the check letter O)
    bad = f[(f["regle"] == "uai_invalide")]
    assert len(bad) == 8 and bad["uai"].str.endswith("O").all()
    assert set(bad["source"]) == {"dept35-ille-et-vilaine/fr-en-effectifs-second-degre.csv"}
    assert sorted(bad["ligne"].tolist()) == [52, 83, 213, 316, 388, 389, 474, 773]
    # IPS des écoles 2022-2025: 6 926 values published as NS
    ns = f[f["regle"] == "valeur_non_exploitable"]
    assert len(ns) == 6926 and ns["message"].str.contains("NS").all()
    # every real UAI of the IPS files has the right check letter; IPS within the plausible range
    assert not ((f["regle"] == "ips_hors_plage").any())
    assert not (f["regle"].isin(["territoire_incoherent"]) & (f["gravite"] != "info")).any()
    # GAR rules have no GAR file to read: skipped, one information each
    skipped = f[f["message"].str.contains("non effectué")]
    assert {"acces_sans_abonnement", "rupture_serie", "depense_incoherente"} <= set(skipped["regle"])


def test_check_external_file_on_a_published_layout(tmp_path):
    from gar_analysis.checks.realdata import check_external_file

    p = tmp_path / "effectifs.csv"
    p.write_text("\ufeffAnnee_scolaire;Numero_d_etablissement;Nombre_d_eleves\n"
                 "2018-2019;0350002M;768\n2018-2019;0351122O;12\n2019-2020;0350002M;770\n2019-2020;0350002M;771\n",
                 encoding="utf-8")
    f = check_external_file(p, "Numero_d_etablissement", ("Annee_scolaire", "Numero_d_etablissement"),
                            source="effectifs.csv")
    inv = f[f["regle"] == "uai_invalide"]
    assert inv[["ligne", "uai"]].values.tolist() == [[3, "0351122O"]]
    assert "« E »" in inv.iloc[0]["message"]
    dup = f[f["regle"] == "doublon"]
    assert dup[["ligne", "uai"]].values.tolist() == [[5, "0350002M"]] and "ligne 4" in dup.iloc[0]["message"]
