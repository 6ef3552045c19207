"""The small public API names what users call, resolves every name, and behaves like pandas and statsmodels."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import gar_analysis as ga
from gar_analysis.build import TABLES
from gar_analysis.errors import DataError


def test_every_public_name_resolves():
    for name in ga.__all__:
        assert getattr(ga, name) is not None, name
    assert callable(ga.funnel_table) and callable(ga.fit_success_factors) and callable(ga.run_checks)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        ga.nothing_here


def test_dir_is_the_api():
    names = dir(ga)
    assert names == sorted(ga.__all__)
    assert {"tables", "load_processed", "example_data", "funnel_figure", "oe_figure"} <= set(names)
    assert not [n for n in names if n.startswith("_") and n != "__version__"]


# --- the newcomer's calls, on the sample's processed tables ----------------------------------------------

@pytest.fixture(scope="module")
def schools(sample_build):
    return ga.load_processed("etablissements", sample_build.processed_dir)


def test_newcomer_model_call_drops_missing_rows_and_says_which(schools):
    # the issue's call: 26 schools have no IPS; statsmodels' formulas drop such rows and say how many
    assert schools["ips"].isna().any()
    res = ga.fit_success_factors(schools, "inscrit", ["ips", "rural", "niveau"], family="binomial",
                                 groups="code_academie")
    lost = schools[["inscrit", "ips", "rural", "niveau", "code_academie"]].isna().any(axis=1)
    assert res.diagnostics["n"] == int((~lost).sum())
    assert res.missing["n_dropped"] == res.diagnostics["n_missing"] == int(lost.sum())
    assert res.missing["columns"]["ips"] == int(schools["ips"].isna().sum())
    expected_units = schools.loc[lost, "code_academie"].value_counts()
    assert res.missing["units"] == {str(k): int(v) for k, v in expected_units.items()}
    assert any("retirée(s) pour valeur manquante" in w for w in res.warnings)
    assert {"ips", "rural"} <= set(res.table["term"])


def test_missing_raise_lists_the_rows(schools):
    with pytest.raises(DataError, match="valeur manquante") as err:
        ga.fit_success_factors(schools, "inscrit", ["ips", "rural", "niveau"], groups="code_academie",
                               missing="raise")
    assert {p.column for p in err.value.problems} >= {"ips"}
    with pytest.raises(DataError, match="missing"):
        ga.fit_success_factors(schools, "inscrit", ["ips"], missing="ignore")


def test_funnel_on_school_rows_counts_them(schools):
    # no denominator: each row counts for one, as a column of ones would
    counted = ga.funnel_table(schools, "inscrit", unit="code_academie")
    ones = ga.funnel_table(schools.assign(un=1), "inscrit", "un", "code_academie")
    pd.testing.assert_series_equal(counted["rate"], ones["rate"])
    pd.testing.assert_series_equal(counted["upper_998"], ones["upper_998"])
    sizes = schools["code_academie"].value_counts()
    assert dict(zip(counted["unit"], counted["denominator"])) == {k: float(v) for k, v in sizes.items()}
    # and the same answer from per-unit counts
    per_unit = (schools.assign(inscrit=schools["inscrit"].astype(int)).groupby("code_academie")
                .agg(inscrits=("inscrit", "sum"), ecoles=("uai", "size")).reset_index())
    agg = ga.funnel_table(per_unit, "inscrits", "ecoles", "code_academie")
    np.testing.assert_allclose(agg["rate"], counted["rate"])
    np.testing.assert_allclose(agg["lower_95"], counted["lower_95"])
    assert (agg["position_998"] == counted["position_998"]).all()


def test_funnel_needs_a_unit():
    with pytest.raises(DataError, match="unité"):
        ga.funnel_table(pd.DataFrame({"u": ["a", "b"], "y": [1, 0]}), "y")


def test_funnel_drop_reports_count_and_units():
    data = pd.DataFrame({"u": ["a", "a", "b", "b", None, "c"], "y": [1, np.nan, 0, 1, 1, 1],
                         "n": [2, 3, 2, 2, 2, np.nan]})
    with pytest.warns(ga.MissingValuesWarning, match="3 ligne"):
        t = ga.funnel_table(data, "y", "n", "u")
    assert t.attrs["missing"]["n_dropped"] == 3
    assert t.attrs["missing"]["units"] == {"a": 1, "(manquant)": 1, "c": 1}
    assert t.attrs["missing"]["columns"] == {"u": 1, "y": 1, "n": 1}
    assert list(t["unit"]) == ["a", "b"] and list(t["denominator"]) == [2.0, 4.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped: no warning
        assert ga.funnel_table(data.dropna(), "y", "n", "u").attrs["missing"] is None


def test_observed_vs_expected_drops_missing_covariates(schools):
    with pytest.warns(ga.MissingValuesWarning, match="ips_10"):
        oe = ga.observed_vs_expected(schools, "inscrit", ["ips_10", "niveau"], "code_academie")
    lost = schools["ips_10"].isna()
    assert oe.attrs["missing"]["n_dropped"] == int(lost.sum())
    assert int(oe["n_ecoles"].sum()) == int((~lost).sum())
    with pytest.raises(DataError, match="valeur manquante"):
        ga.observed_vs_expected(schools, "inscrit", ["ips_10", "niveau"], "code_academie", missing="raise")


def test_all_rows_missing_is_a_clear_error():
    data = pd.DataFrame({"u": ["a", "b"], "y": [np.nan, np.nan], "n": [2, 2]})
    with pytest.raises(DataError, match="toutes les lignes"):
        ga.funnel_table(data, "y", "n", "u")


# --- results display as HTML and plot with the project's style ---------------------------------------------

def test_success_factors_html_and_plot(schools):
    import matplotlib as mpl
    from matplotlib.collections import LineCollection

    from gar_analysis.reporting.display import chart_palette

    res = ga.fit_success_factors(schools, "inscrit", ["ips_10", "rural", "niveau"], groups="code_academie",
                                 multilevel=False)
    html = res._repr_html_()
    assert "Facteurs de succès" in html and "<caption" in html and "<th scope=\"col\"" in html
    assert "IPS (par point)" not in html and "IPS (+10 points)" in html
    assert "retirée(s) pour valeur manquante" in html and "pas des relations de cause à effet" in html
    assert "Au-dessus de 1 : association positive" in html  # odds ratios, compared with 1
    assert repr(res).startswith("<SuccessFactors : Modèle binomial de « inscrit »")
    backend, rc_grid = mpl.get_backend(), mpl.rcParams["axes.grid"]
    fig = res.plot()
    try:
        assert isinstance(fig, mpl.figure.Figure)
        ax = fig.axes[0]
        assert ax.get_xscale() == "log" and ax.xaxis.get_gridlines()[0].get_visible()  # whitegrid style
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert np.allclose(lines[0].get_colors()[0][:3], chart_palette()[0], atol=0.01)
        assert [t.get_text() for t in ax.get_yticklabels()][-1] == res.table["label"].iloc[1]
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
    # the style is scoped to the figure: backend and global settings are left as they were
    assert mpl.get_backend() == backend and mpl.rcParams["axes.grid"] == rc_grid


# --- the processed tables accessor ----------------------------------------------------------------------

def test_tables_accessor_documents_every_column(sample_build):
    t = ga.tables(sample_build.processed_dir)
    assert list(t) == list(TABLES)
    for name in t:
        cols = t.columns(name)
        assert list(cols["colonne"]) == list(pd.read_parquet(sample_build.processed_dir / f"{name}.parquet")
                                             .columns), name
        undocumented = cols.loc[cols["description"] == "", "colonne"].tolist()
        assert not undocumented, (name, undocumented)
    pd.testing.assert_frame_equal(t.etablissements, ga.load_processed("etablissements", sample_build.processed_dir))
    assert t["etablissements"] is t.etablissements  # loaded once
    assert "etablissements" in dir(t)
    overview = t.overview().set_index("table")
    assert overview.loc["etablissements", "lignes"] == sample_build.manifest["outputs"]["etablissements"]["lignes"]
    html = t._repr_html_()
    assert "<caption" in html and "usage_mensuel" in html


def test_tables_accessor_errors_are_french(tmp_path):
    t = ga.tables(tmp_path)
    with pytest.raises(KeyError, match="Table inconnue"):
        t["eleves"]
    with pytest.raises(AttributeError):
        t.eleves
    with pytest.raises(DataError, match="gar-analysis build"):
        t.etablissements
    with pytest.raises(DataError, match="gar-analysis build"):
        t.columns("etablissements")
    assert t.overview()["lignes"].isna().all()  # no manifest yet: the overview still lists the tables
