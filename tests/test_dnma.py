"""DNMA in its published weekly layout: loader, weeks → months, the sample's files, checks and build on them.

Fixtures follow ``gar-dnma-published-figures/SOURCE.md`` (field ids, label
headers ``debutSemaine``/``UAI``, ``N/A`` cells, ``HH:MM:SS[:ms]`` durations,
``PU``/``PR``, académie labels incl. overseas collectivities and « Etranger »)
and the field ids of the services and profils-appareils datasets
(``visites_services_vie_scolaire``, ``visites_eleve_smartphone``,
``visites_eleve_autresappareil``) as listed in the dsfr-data study of the
portal's DNMA page (« DNMA — Les usages numériques constatés via les ENT »).
"""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

from gar_analysis.errors import DataError
from gar_analysis.sources.dnma import (DNMA_DATASETS, load_dnma, monthly_audience, parse_duration, read_dnma,
                                       week_month_split, weekly_to_monthly)

CTX_IDS = "debutsemaine;uai;academie;commune;departement;region;ministere;circonscription;nature_uai;secteur"
CTX_LABELS = CTX_IDS.replace("debutsemaine", "debutSemaine").replace(";uai;", ";UAI;")
MEAS = "visites_globales;utilisateurs_globales;duree_globales;visites_eleve;utilisateurs_eleve;duree_eleve"
ROWS = [
    "2025-03-31;0350001L;Rennes;RENNES;ILLE-ET-VILAINE;BRETAGNE;MENJ;;COLLEGE;PU;700;100;01:02:03;350;60;00:05:00",
    "2025-03-24;0350001L;Rennes;RENNES;ILLE-ET-VILAINE;BRETAGNE;MENJ;;COLLEGE;PU;70;10;00:00:10:500;N/A;N/A;N/A",
    "2025-03-24;9870001A;Polynésie Française;PAPEETE;;;MENJ;;LYCEE;PU;5;2;00:01:00;N/A;N/A;",
    "2025-03-24;9990001X;Etranger;;;;MAE;;LYCEE;PR;12;4;00:03:00;8;3;00:03:00",
    "2025-03-24;9750001B;Saint-Pierre-et-Miquelon;SAINT-PIERRE;;;MENJ;;COLLEGE;PU;9;3;00:02:00;4;2;00:02:00",
]


def _write(path, header_ctx=CTX_IDS, rows=ROWS, measures=MEAS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([f"{header_ctx};{measures}", *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path):
    _write(tmp_path / "dnma" / f"{DNMA_DATASETS['profils']}.csv")
    return tmp_path


def test_both_header_styles_give_the_same_frame(tmp_path):
    by_id = read_dnma(_write(tmp_path / "a.csv"), "profils")
    by_label = read_dnma(_write(tmp_path / "b.csv", CTX_LABELS), "profils")
    by_id.attrs, by_label.attrs = {}, {}
    pd.testing.assert_frame_equal(by_id, by_label)
    assert list(by_id.columns[:2]) == ["debutsemaine", "uai"]


def test_na_cells_durations_sectors_and_academies(data_dir):
    w = load_dnma(data_dir, "profils")
    assert w.loc[3, "visites_eleve"] is pd.NA and w.loc[3, "utilisateurs_eleve"] is pd.NA
    assert str(w["visites_globales"].dtype) == "Int64"
    assert w.loc[2, "duree_globales"] == 3723.0 and w.loc[3, "duree_globales"] == 10.5
    assert pd.isna(w.loc[4, "duree_eleve"])  # empty cell
    assert set(w["secteur"]) == {"PU", "PR"}
    assert {"Polynésie Française", "Etranger", "Saint-Pierre-et-Miquelon"} <= set(w["academie"])
    assert w.loc[2, "circonscription"] is pd.NA
    assert (w["debutsemaine"].dt.day_of_week == 0).all()


@pytest.mark.parametrize("cell, col, value, expected", [
    (0, "debutsemaine", "2025-04-01", "n'est pas un lundi"),
    (0, "debutsemaine", "01/04/2025", "illisible"),
    (9, "secteur", "PUBLIC", "PU (public) ou PR (privé)"),
    (12, "duree_globales", "1h02", "HH:MM:SS"),
    (10, "visites_globales", "12,5", "nombre entier"),
])
def test_bad_cells_name_file_line_and_column(tmp_path, cell, col, value, expected):
    rows = list(ROWS)
    parts = rows[2].split(";")
    parts[cell] = value
    rows[2] = ";".join(parts)
    path = _write(tmp_path / "bad.csv", rows=rows)
    with pytest.raises(DataError) as err:
        read_dnma(path, "profils")
    (p,) = err.value.problems
    assert (p.file, p.line, p.column) == (str(path), 4, col)
    assert expected in p.message


def test_missing_key_column_and_no_measure(tmp_path):
    path = _write(tmp_path / "x.csv", header_ctx=CTX_IDS.replace("uai", "etab"))
    with pytest.raises(DataError, match="uai") as err:
        read_dnma(path)
    assert err.value.problems[0].line == 1
    path = tmp_path / "y.csv"
    path.write_text(CTX_IDS + "\n" + ROWS[0].rsplit(";", 6)[0] + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="aucune colonne de mesure"):
        read_dnma(path)


def test_parse_duration():
    s, bad = parse_duration(pd.Series(["00:00:01", "123:00:00", "00:01:00:250", "N/A", "", "1:2", "x"]))
    assert s.tolist()[:3] == [1.0, 442800.0, 60.25]
    assert bad.tolist() == [False, False, False, False, False, True, True]


def test_week_spanning_two_months_is_split_by_days():
    """Monday 31 March 2025: 1 day in March, 6 in April; Monday 24 March: 7 days in March."""
    m1, d1, m2 = week_month_split(pd.Series(pd.to_datetime(["2025-03-31", "2025-03-24"])))
    assert m1.tolist() == ["2025-03", "2025-03"] and d1.tolist() == [1, 7] and m2.tolist() == ["2025-04", "2025-03"]
    w = pd.DataFrame({"debutsemaine": pd.to_datetime(["2025-03-31", "2025-03-24"]), "uai": ["A", "A"],
                      "visites_globales": pd.array([700, 70], dtype="Int64"),
                      "utilisateurs_globales": pd.array([100, 10], dtype="Int64")}, index=[2, 3])
    m = weekly_to_monthly(w).set_index("mois")
    assert m.loc["2025-03", "visites_globales"] == pytest.approx(70 + 700 / 7)
    assert m.loc["2025-04", "visites_globales"] == pytest.approx(700 * 6 / 7)
    assert m["visites_globales"].sum() == pytest.approx(770)  # nothing lost nor counted twice
    assert m.loc["2025-03", "jours_mesures"] == 8 and m.loc["2025-04", "jours_mesures"] == 6
    # distinct users are never summed across weeks: a day-weighted mean of the weeks
    assert m.loc["2025-03", "utilisateurs_globales_semaine"] == pytest.approx((10 * 7 + 100 * 1) / 8)
    assert m.loc["2025-04", "utilisateurs_globales_semaine"] == pytest.approx(100)
    assert "utilisateurs_globales" not in m.columns


def test_monthly_audience_prefers_published_layout(data_dir):
    (data_dir / "dnma" / "audience.csv").write_text("mois;uai;ent;visites;visiteurs\n2025-03;0350001L;X;1;1\n",
                                                    encoding="utf-8")
    au, source = monthly_audience(data_dir)
    assert source == "dnma/fr-en-dnma-par-uai-profils.csv"
    row = au[(au["uai"] == "0350001L") & (au["mois"] == "2025-03")].iloc[0]
    assert row["visites"] == 170 and row["ligne"] == 2
    (data_dir / "dnma" / f"{DNMA_DATASETS['profils']}.csv").unlink()
    au, source = monthly_audience(data_dir)  # deprecated file still read
    assert source == "dnma/audience.csv" and au["visites"].tolist() == [1]


# --------------------------------------------------------------------------- the sample and the pipeline

@pytest.fixture(scope="module")
def sample(sample_build):
    """The session's default sample (generated and built once, see conftest)."""
    import json

    return sample_build.data_dir, json.loads((sample_build.data_dir / "truth.json").read_text(encoding="utf-8"))


def test_sample_writes_the_published_layout(sample):
    out, _ = sample
    assert not (out / "dnma" / "audience.csv").exists()
    head = (out / "dnma" / "fr-en-dnma-par-uai-profils.csv").read_text(encoding="utf-8").split("\n", 1)[0]
    assert head.startswith(CTX_LABELS.replace(";", ";"))  # label headers, as a labelled CSV export
    p = load_dnma(out, "profils")
    s = load_dnma(out, "services")
    pa = load_dnma(out, "profils_appareils")
    for df in (p, s, pa):
        assert (df["debutsemaine"].dt.day_of_week == 0).all()
        assert set(df["secteur"].dropna()) <= {"PU", "PR"}
    assert {"visites_manuel_numerique", "visites_ressource_documentaire", "visites_services_vie_scolaire",
            "visites_notes"} <= set(s.columns)
    assert {"visites_eleve_smartphone", "visites_parent_autresappareil"} <= set(pa.columns)
    # calibrated on the published national shares
    tot = p[p["visites_globales"] >= 0]
    share = tot[["visites_eleve", "visites_parent", "visites_enseignant"]].sum() / tot["visites_globales"].sum()
    assert share["visites_eleve"] == pytest.approx(0.402, abs=0.02)
    assert share["visites_parent"] == pytest.approx(0.375, abs=0.02)
    e = pa[["visites_eleve_ordinateur", "visites_eleve_smartphone", "visites_eleve_tablette"]].sum()
    assert e["visites_eleve_smartphone"] / e.sum() == pytest.approx(0.538, abs=0.02)
    par = pa[["visites_parent_ordinateur", "visites_parent_smartphone", "visites_parent_tablette"]].sum()
    assert par["visites_parent_smartphone"] / par.sum() == pytest.approx(0.817, abs=0.02)
    # the visites_notes series break
    notes = s.groupby("debutsemaine")["visites_notes"].sum()
    assert notes[notes.index < "2025-01-06"].gt(0).all() and notes[notes.index >= "2025-01-06"].eq(0).all()
    assert p["utilisateurs_eleve"].isna().any()  # N/A cells where no visit


def test_checks_and_build_run_on_the_sample_dnma(sample, sample_build):
    from gar_analysis.build import load_processed
    from gar_analysis.checks.evaluation import score

    out, truth = sample
    findings = load_processed("constats", sample_build.processed_dir)
    sc = score(findings, truth["anomalies"])
    for rid in ("incoherence_dnma", "ressources_ent_gar", "rupture_serie", "valeur_negative", "doublon"):
        assert sc.loc[rid, "rappel"] >= 0.95 and sc.loc[rid, "precision"] >= 0.9, (rid, sc.loc[rid].to_dict())
    dn = findings[findings["source"].str.startswith("dnma/fr-en-dnma").fillna(False)]
    assert {"incoherence_dnma", "ressources_ent_gar", "rupture_serie", "valeur_negative"} <= set(dn["regle"])
    brk = dn[(dn["regle"] == "rupture_serie")]
    assert brk["message"].str.contains("visites_notes").any()
    assert sample_build.manifest["outputs"]["dnma_mensuel"]["lignes"] > 0
    mens = load_processed("dnma_mensuel", sample_build.processed_dir)
    cross = load_processed("croisement_ent_gar", sample_build.processed_dir)
    assert mens.groupby(["uai", "mois"]).size().max() == 1
    assert not any(c.startswith("utilisateurs_") and not c.endswith("_semaine") for c in mens.columns)
    assert {"code_academie", "visites_ressources_ent", "visites_eleve_smartphone"} <= set(mens.columns)
    assert {"ent_sans_gar", "gar_sans_ent", "coherent"} <= set(cross["constat"])
    planted = {a["uai"] for a in truth["anomalies"] if a["regle"] == "ressources_ent_gar"}
    flagged = set(cross.loc[cross["constat"].isin(["ent_sans_gar", "gar_sans_ent"]), "uai"])
    assert flagged == planted
    usage = load_processed("usage_mensuel", sample_build.processed_dir)
    assert usage["mesure_dnma"].any() and usage["visites_dnma"].sum() > 0


def test_dashboard_functions(sample_build, tmp_path):
    from gar_analysis import dnma
    from gar_analysis.indicators import Tables

    t = Tables(sample_build.processed_dir)
    x = dnma.ent_gar_crossing(t, "national", "FR")
    tot = x.set_index("constat")
    assert tot.loc["total", "etablissements"] == tot.drop("total")["etablissements"].sum()
    mix = dnma.device_mix(t, "national", "FR").set_index("profil")
    assert mix.loc["parents", "part_smartphone"] > mix.loc["élèves", "part_smartphone"] \
        > mix.loc["enseignants", "part_smartphone"]
    assert (mix["part_smartphone"] == mix["part_smartphone_national"]).all()
    pu = dnma.parent_use(t, "academie", "14")
    assert len(pu) and (pu["part_parents"].dropna().between(0, 1)).all()
    from gar_analysis.indicators import Tables

    old_build = Tables(tmp_path)  # a build made before the DNMA tables existed: none of its files is there
    assert dnma.ent_gar_crossing(old_build, "national", "FR").empty


@pytest.fixture(scope="module")
def public_only(sample_build, tmp_path_factory):
    """Public files only (register, IPS, communes, DNMA): no internal GAR export, checked and built."""
    import shutil

    from gar_analysis.build import build

    base = tmp_path_factory.mktemp("public_only")
    for sub in ("referentiel", "dnma"):
        shutil.copytree(sample_build.data_dir / sub, base / "data" / sub)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build(base / "data", base / "processed")
    return base


def test_public_only_build_says_gar_side_is_unknown(public_only):
    from gar_analysis import dnma
    from gar_analysis.build import load_processed
    from gar_analysis.indicators import Tables

    cross = load_processed("croisement_ent_gar", public_only / "processed")
    assert len(cross) and (cross["constat"] == "gar_absent").all() and cross["acces_gar"].isna().all()
    t = Tables(public_only / "processed")
    assert not dnma.internal_gar_available(t) and dnma.dnma_available(t)
    x = dnma.ent_gar_crossing(t, "national", "FR")
    assert x["constat"].tolist() == ["gar_absent", "total"]  # never « ENT sans GAR » for want of GAR data
    assert len(dnma.device_mix(t, "national", "FR")) == 3


@pytest.mark.slow
@pytest.mark.parametrize("mode, audience, code", [("sample", "academie", "14"), ("sample", "departement", "35"),
                                                  ("public", "academie", "14")])
def test_dashboards_show_the_ent_section(sample_build, public_only, tmp_path, mode, audience, code):
    import nbformat

    papermill = pytest.importorskip("papermill")
    from gar_analysis.config import REPORT_NOTEBOOKS_DIR

    processed = sample_build.processed_dir if mode == "sample" else public_only / "processed"
    papermill.execute_notebook(str(REPORT_NOTEBOOKS_DIR / "tableau_de_bord.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters={"audience": audience, "territoire": code, "processed_dir": str(processed)},
                               progress_bar=False)
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in out.cells for o in c.get("outputs", []))
    assert "ENT et écosystème mobile" in html and "Part sur smartphone (%)" in html
    assert "Ressources consultées depuis l" in html
    assert ("Données publiques seulement" in html) == (mode == "public")


def test_rupture_serie_on_a_stopped_measure_not_on_the_summer_lull(tmp_path):
    """A measure at zero everywhere from a term week on is a break; zeros only in July-August are not."""
    from gar_analysis.checks import run_checks

    weeks = pd.date_range("2024-09-02", "2025-08-25", freq="7D")
    rows = []
    for k, w in enumerate(weeks):
        summer = w.month in (7, 8)
        notes = 0 if w >= pd.Timestamp("2025-01-06") else 40
        doc = 0 if summer else 15
        for uai in ("0350001L", "0350002M"):
            rows.append(f"{w:%Y-%m-%d};{uai};Rennes;RENNES;;;MENJ;;COLLEGE;PU;{notes};N/A;N/A;{doc};3;00:01:00")
    _write(tmp_path / "dnma" / f"{DNMA_DATASETS['services']}.csv", rows=rows,
           measures="visites_notes;utilisateurs_notes;duree_notes;visites_ressource_documentaire;"
                    "utilisateurs_ressource_documentaire;duree_ressource_documentaire")
    f = run_checks(tmp_path, rules=["rupture_serie"])
    got = f[f["gravite"] == "avertissement"]
    assert len(got) == 1
    row = got.iloc[0]
    first = 2 + 2 * list(weeks).index(pd.Timestamp("2025-01-06"))
    assert (row["source"], int(row["ligne"]), row["mois"]) == ("dnma/fr-en-dnma-par-uai-services.csv", first, "2025-01")
    assert "visites_notes" in row["message"] and "06/01/2025" in row["message"]
