"""Territorial reference: real codes, normalisation of labels and codes."""
from __future__ import annotations

import pytest

from gar_analysis import territories as t
from gar_analysis.errors import ConfigError


def test_real_counts():
    assert len(t.departements()) == 101
    assert len(t.academies()) == 30
    assert len(t.regions()) == 18
    d = t.departements().set_index("code_departement")
    assert d.loc["35", "code_academie"] == "14" and d.loc["35", "code_region"] == "53"
    assert d.loc["2A", "nom_academie"] == "Corse"
    assert d.loc["14", "code_academie"] == "70"  # Calvados → Normandie


@pytest.mark.parametrize("raw,expected", [("035", "35"), ("35", "35"), (35, "35"), ("1", "01"), ("001", "01"),
                                          ("02A", "2A"), ("2b", "2B"), ("971", "971"), ("", None), (None, None)])
def test_normalize_departement(raw, expected):
    assert t.normalize_departement(raw) == expected


@pytest.mark.parametrize("label,code", [("RENNES", "14"), ("Rennes", "14"), ("ORLEANS-TOURS", "18"),
                                        ("Orléans-Tours", "18"), ("LA_REUNION", "28"), ("La Réunion", "28"),
                                        ("CAEN", "70"), ("ROUEN", "70"), ("NORMANDIE", "70"), ("AIX-MARSEILLE", "02"),
                                        ("14", "14"), ("2", "02"), ("Nowhere", None)])
def test_academie_code(label, code):
    assert t.academie_code(label) == code


def test_audiences_and_codes():
    assert t.territory_codes("national") == ["FR"]
    assert len(t.territory_codes("academie")) == 30
    assert len(t.territory_codes("departement")) == 101
    with pytest.raises(ConfigError, match="Valeurs possibles"):
        t.territory_codes("mairie")
    assert t.territory_name("academie", "14") == "académie de Rennes"
    assert t.territory_name("academie", "02") == "académie d'Aix-Marseille"


def test_academie_labels_follow_french_usage():
    labels = {t.academie_name(c): t.academie_label(c) for c in t.academies().code_academie}
    assert labels["Amiens"] == "académie d'Amiens" and labels["Orléans-Tours"] == "académie d'Orléans-Tours"
    assert labels["Guyane"] == "académie de la Guyane" and labels["La Réunion"] == "académie de La Réunion"
    assert labels["Rennes"] == "académie de Rennes" and labels["Mayotte"] == "académie de Mayotte"
    assert sum(v.startswith("académie d'") for v in labels.values()) == 3
    assert t.academie_label("Amiens", capitalize=True) == "Académie d'Amiens"  # a name works too
