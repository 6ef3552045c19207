"""Tests of the chart text alternatives: they name the right extremes, trend and positions."""
from __future__ import annotations

import pandas as pd

from gar_analysis.reporting import alt_text as at

NNBSP = "\u202f"


def test_ranking_names_highest_and_lowest():
    df = pd.DataFrame({"nom": ["Rennes", "Lyon", "Guyane", "Nice"], "part": [0.81, 0.55, 0.32, "c"]})
    text = at.describe_ranking(df, "nom", "part", what="Part des établissements inscrits", unit_label="académie",
                               kind="percent")
    assert "la plus élevée pour Rennes (81,0" in text and "la plus basse pour Guyane (32,0" in text
    assert "1 valeur non publiée" in text and "3 valeurs" in text
    assert text.count(".") <= 2


def test_ranking_edge_cases():
    assert "aucune valeur publiable" in at.describe_ranking(pd.DataFrame({"n": ["x"], "v": ["c"]}), "n", "v",
                                                            what="Accès", unit_label="académie")
    assert "une seule valeur" in at.describe_ranking(pd.DataFrame({"n": ["x"], "v": [3]}), "n", "v",
                                                      what="Accès", unit_label="académie")
    assert "même valeur partout" in at.describe_ranking(pd.DataFrame({"n": ["x", "y"], "v": [3, 3]}), "n", "v",
                                                         what="Accès", unit_label="académie")


def test_trend_up_down_stable():
    months = [f"2024-{m:02d}" for m in range(1, 7)]
    up = pd.DataFrame({"mois": months, "acces": [100, 100, 100, 200, 200, 210]})
    text = at.describe_trend(up, "mois", "acces", what="Accès mensuels")
    assert "de janvier 2024 à juin 2024" in text and "en hausse de 103" in text
    assert "Maximum en juin 2024 (210)" in text
    down = up.assign(acces=[300, 300, 300, 100, 100, 100])
    assert "en baisse de 67" in at.describe_trend(down, "mois", "acces", what="Accès")
    flat = up.assign(acces=[100, 101, 99, 102, 100, 98])
    assert "stable" in at.describe_trend(flat, "mois", "acces", what="Accès")
    shuffled = up.sample(frac=1, random_state=1)  # order of rows does not matter
    assert at.describe_trend(shuffled, "mois", "acces", what="Accès mensuels") == text
    assert at.trend_direction([0, 0, 5, 5]) == ("hausse", None)


def test_shares_largest_first():
    df = pd.DataFrame({"support": ["mobile", "ordinateur", "tablette"], "part": [0.1, 0.75, 0.15]})
    text = at.describe_shares(df, "support", "part", what="Accès par support")
    assert text == f"Accès par support : ordinateur 75,0{NNBSP}%, tablette 15,0{NNBSP}%, mobile 10,0{NNBSP}%."


def test_funnel_positions_named():
    df = pd.DataFrame({"nom": list("ABCDEF"),
                       "position": ["au-dessus", "dans", "en dessous", "en dessous", "dans", "dans"]})
    text = at.describe_funnel(df, "nom", "position", what="Accès par élève", unit_label="académies")
    assert "6 académies" in text and "1 au-dessus des limites attendues (A)" in text
    assert "2 en dessous des limites attendues (C, D)" in text and "3 dans la zone attendue" in text


def test_comparison_sentence():
    text = at.describe_comparison("Rennes", 0.8, 0.5, what="Part inscrite", kind="percent")
    assert "au-dessus de la valeur nationale" in text and "1,60 fois" in text
    assert "secret statistique" in at.describe_comparison("X", "c", 0.5, what="Part")
