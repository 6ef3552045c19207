"""Tests of gar_analysis.disclosure (secret statistique)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gar_analysis import config
from gar_analysis.disclosure import is_suppressed, suppress, suppress_value
from gar_analysis.errors import ConfigError


def test_counts_below_threshold_become_c():
    df = pd.DataFrame({"nom": ["a", "b", "c", "d"], "n": [0, 4, 5, 120]})
    out = suppress(df, ["n"], threshold=5)
    assert out["n"].tolist() == [0, "c", 5, 120]  # zero reveals no one: shown as zero
    assert out["nom"].tolist() == df["nom"].tolist()
    assert df["n"].tolist() == [0, 4, 5, 120]  # input untouched


def test_default_threshold_is_config(monkeypatch):
    monkeypatch.setattr(config, "DISCLOSURE_THRESHOLD", 10)
    out = suppress(pd.DataFrame({"n": [9, 10]}), ["n"])
    assert out["n"].tolist() == ["c", 10]


def test_rate_on_small_denominator_becomes_c():
    df = pd.DataFrame({"etablissements": [3, 50, 8], "inscrits": [3, 40, 2], "part": [1.0, 0.8, 0.25]})
    out = suppress(df, ["etablissements", "inscrits"], rate_cols=["part"],
                   denominators={"part": "etablissements"}, threshold=5)
    assert out["part"].tolist() == ["c", 0.8, 0.25]
    assert out["inscrits"].tolist() == ["c", 40, "c"]
    assert out["etablissements"].tolist() == ["c", 50, 8]


def test_rate_on_a_count_of_people_goes_with_it_but_not_on_schools():
    df = pd.DataFrame({"eleves": [2, 300, 0], "acces_par_eleve": [7.5, 1.2, np.nan]})
    out = suppress(df, ["eleves"], rate_cols=["acces_par_eleve"], denominators={"acces_par_eleve": "eleves"},
                   threshold=5)
    assert out["acces_par_eleve"].tolist()[:2] == ["c", 1.2] and out["eleves"].tolist() == ["c", 300, 0]
    schools = pd.DataFrame({"etablissements": [2, 300], "part": [0.5, 0.1]})
    out = suppress(schools, [], rate_cols=["part"], denominators={"part": "etablissements"}, threshold=5)
    assert out["part"].tolist() == [0.5, 0.1]  # a share of schools is an institutional fact


def test_already_suppressed_denominator_propagates():
    df = pd.DataFrame({"n": ["c", 30], "taux": [0.5, 0.4]})
    out = suppress(df, ["n"], rate_cols=["taux"], denominators={"taux": "n"}, threshold=5)
    assert out["taux"].tolist() == ["c", 0.4]


def test_nullable_int_and_missing_values():
    df = pd.DataFrame({"n": pd.array([1, None, 7], dtype="Int64")})
    out = suppress(df, ["n"], threshold=5)
    assert out["n"].iloc[0] == "c" and pd.isna(out["n"].iloc[1]) and out["n"].iloc[2] == 7


def test_errors_name_the_problem():
    df = pd.DataFrame({"n": [1]})
    with pytest.raises(ConfigError, match="absentes.*m"):
        suppress(df, ["m"])
    with pytest.raises(ConfigError, match="dénominateur"):
        suppress(df, ["n"], rate_cols=["n"])
    with pytest.raises(ConfigError, match="invalide"):
        suppress(df, ["n"], threshold="beaucoup")


def test_is_suppressed_and_single_values():
    assert is_suppressed("c") and not is_suppressed("C") and not is_suppressed(0) and not is_suppressed(np.nan)
    assert suppress_value(4, threshold=5) == "c" and suppress_value(5, threshold=5) == 5
    assert suppress_value(0.3, 4, threshold=5) == "c" and suppress_value(0.3, 40, threshold=5) == 0.3
    assert suppress_value(0.3, "c") == "c"
    assert suppress_value(0.3, np.nan) == "c"


def test_implied_count_of_a_share_is_protected():
    # 60 % of 5 teachers gives back 3 teachers: the share must go too
    df = pd.DataFrame({"enseignants": [5, 50, 5], "part": [0.6, 0.06, 1.0], "indice": [0.6, 0.06, 1.0]})
    out = suppress(df, ["enseignants"], rate_cols=["part", "indice"],
                   denominators={"part": "enseignants", "indice": "enseignants"}, threshold=5,
                   implied=["part"])
    assert out["part"].tolist() == ["c", "c", 1.0]  # 3 and 3 people hidden, 5 shown
    assert out["indice"].tolist() == [0.6, 0.06, 1.0]  # not declared implied: denominator rule only
    every = suppress(df, [], rate_cols=["part"], denominators={"part": "enseignants"}, threshold=5, implied=True)
    assert every["part"].tolist() == ["c", "c", 1.0]
    zero = suppress(df.assign(part=0.0), ["enseignants"], rate_cols=["part"], denominators={"part": "enseignants"},
                    threshold=5, implied=True)
    assert zero["part"].tolist() == [0.0, 0.0, 0.0]  # 0 % implies zero people: shown


def test_a_hidden_cell_cannot_be_recomputed_from_a_published_total():
    """#16: secondary suppression — with one hidden cell in a group that adds up to a published total,
    the smallest other non-zero cell goes too (and the rates on it)."""
    df = pd.DataFrame({"dimension": ["profil"] * 3 + ["support"] * 3, "acces": [3, 50, 100, 40, 60, 0],
                       "part": [3 / 153, 50 / 153, 100 / 153, 0.4, 0.6, 0.0]})
    out = suppress(df, ["acces"], rate_cols=["part"], denominators={"part": "acces"}, threshold=5,
                   totals={"acces": "dimension"})
    assert out["acces"].tolist() == ["c", "c", 100, 40, 60, 0]
    assert out["part"].tolist()[:2] == ["c", "c"] and out["part"].tolist()[2] == pytest.approx(100 / 153)
    two = df.assign(acces=[3, 4, 100, 40, 60, 0])  # two already hidden: nothing more to hide
    assert suppress(two, ["acces"], threshold=5, totals={"acces": "dimension"})["acces"].tolist() == \
        ["c", "c", 100, 40, 60, 0]


def test_units_of_a_territory_never_leave_one_count_of_people_alone_hidden():
    from gar_analysis import indicators as ind

    units = pd.DataFrame({"code": ["a", "b", "c"], "nom": ["A", "B", "C"], "etablissements": [3, 40, 50],
                          "inscrits": [2, 30, 40], "part_inscrits": [2 / 3, 0.75, 0.8], "acces": [4, 900, 1200],
                          "eleves": [300, 5000, 6000], "acces_par_eleve": [4 / 300, 0.18, 0.2]})
    pub = ind.publishable(units, 5)
    assert pub["acces"].tolist() == ["c", "c", 1200]  # 4 = total − 900 − 1200 otherwise
    assert pub["etablissements"].tolist() == [3, 40, 50]  # schools: institutional facts
