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


def test_trend_compares_the_same_months_a_year_apart():
    """#14 item 6: a school-year series starting in September must not compare autumn with summer."""
    months = [f"{y}-{m:02d}" for y, m in [(2023, 9), (2023, 10), (2023, 11), (2023, 12)]
              + [(2024, m) for m in range(1, 13)] + [(2025, m) for m in range(1, 9)]]
    seasonal = {"09": 120, "10": 130, "11": 140, "12": 100, "01": 120, "02": 110, "03": 130, "04": 100,
                "05": 110, "06": 80, "07": 10, "08": 10}
    growth = {m: 1.0 if m < "2024-09" else 1.383 for m in months}
    df = pd.DataFrame({"mois": months, "acces": [round(seasonal[m[5:]] * 100 * growth[m]) for m in months]})
    text = at.describe_trend(df, "mois", "acces", what="Accès mensuels")
    assert "en hausse de 38" in text and "mêmes mois un an plus tôt" in text
    assert "baisse" not in text  # Sep–Nov vs Jun–Aug would have read « en baisse de 48 % »
    down = df.assign(acces=[round(seasonal[m[5:]] * 100 / growth[m]) for m in months])
    assert "en baisse de 28" in at.describe_trend(down, "mois", "acces", what="Accès")
    flat = df.assign(acces=[seasonal[m[5:]] * 100 for m in months])
    assert "stable" in at.describe_trend(flat, "mois", "acces", what="Accès")
    shuffled = df.sample(frac=1, random_state=1)  # order of rows does not matter
    assert at.describe_trend(shuffled, "mois", "acces", what="Accès mensuels") == text
    short = df.head(6)
    assert "moins d'un an de recul" in at.describe_trend(short, "mois", "acces", what="Accès")
    rate = pd.DataFrame({"mois": months, "part": [0.5 if m < "2024-09" else 0.6 for m in months]})
    assert "en hausse de 10,0 point(s)" in at.describe_trend(rate, "mois", "part", what="Part", kind="percent")
    assert at.trend_direction([0, 0, 5, 5]) == ("hausse", None)


def test_forest_alt_text_reads_the_table_by_column_name():
    """#14 item 5: the alt text's numbers are the table's, estimate first, whatever the column order."""
    t = pd.DataFrame({"Facteur": ["Référent GAR désigné", "IPS (+10)"], "Rapport de cotes": [2.54, 1.1],
                      "IC 95 % bas": [2.10, 0.9], "IC 95 % haut": [3.07, 41.1], "p": ["< 0,001", "0,210"]})
    text = at.describe_effects(t)
    assert "Référent GAR désigné : 2,54 (de 2,10 à 3,07)." in text and "IPS (+10) : 1,10 (de 0,90 à 41,1)." in text
    assert at.describe_effects(t[["p", "IC 95 % haut", "Facteur", "IC 95 % bas", "Rapport de cotes"]]) == text


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
