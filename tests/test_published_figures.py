"""The GAR figures the ministry publishes: loaders (real-layout fixtures and the shared files) and reconciliation.

Fixtures follow ``gar-dnma-published-figures/SOURCE.md``: three académie
datasets with the « Autres » row whose codes are null, joined on
``libelle_aca``; the profil dataset with the literal ``Null``; national totals
10,829,562 accédants, 54,096,270 accès, 86,549,678 affectations.
"""
from __future__ import annotations

import pandas as pd
import pytest

from gar_analysis.config import SHARED_OPENDATA_DIR
from gar_analysis.errors import DataError
from gar_analysis.sources.published import (AUTRES_LABEL, NULL_PROFIL_LABEL, academie_figures, catalogue_summary,
                                            compare_own_totals, find_published, read_academie, read_degre,
                                            read_profil, read_ressources, reconcile_totals)

FIG = SHARED_OPENDATA_DIR / "gar-dnma-published-figures"
ACADEMIE_TOTAL_ACCES = 54_096_270
KNOWN = {  # SOURCE.md: accédants / accès / affectations
    "Versailles": (747_564, 6_312_657, 11_343_027), "Créteil": (987_220, 3_859_850, 8_390_137),
    "Nancy-Metz": (413_632, 5_236_932, 5_750_736), "Lille": (865_143, 983_336, 1_651_569),
    "Strasbourg": (354_449, 3_864_026, 3_290_345), "Bordeaux": (584_983, 1_918_590, 5_634_981),
    "Guadeloupe": (95_059, 39_857, 263_512), "Autres": (7_189, 1_935, 25_281)}
CODES = {"Versailles": ("25", "VERSAILLES", "Île-de-France"), "Créteil": ("24", "CRETEIL", "Île-de-France"),
         "Nancy-Metz": ("12", "NANCY-METZ", "Grand Est"), "Lille": ("09", "LILLE", "Hauts-de-France"),
         "Strasbourg": ("15", "STRASBOURG", "Grand Est"), "Bordeaux": ("04", "BORDEAUX", "Nouvelle-Aquitaine"),
         "Guadeloupe": ("32", "GUADELOUPE", "Guadeloupe"), "Autres": ("", "", "")}
HEAD = "libelle_aca;libelle_aca_majuscules;libelle_region_2016;code_academie;code_region_2016;geo_point"


def need(path):
    if not path.exists():
        pytest.skip(f"données partagées absentes : {path}")
    return path


def _academie_file(path, measure: str, order=None):
    pos = {"accedants": 0, "acces": 1, "affectations": 2}[measure]
    names = order or list(KNOWN)
    lines = [f"{HEAD};{measure}"]
    for lib in names:
        code, upper, region = CODES[lib]
        point = "" if lib == "Autres" else "48.8,2.1"
        lines.append(f"{lib};{upper};{region};{code};;{point};{KNOWN[lib][pos]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def od(tmp_path):
    d = tmp_path / "opendata"
    d.mkdir()
    _academie_file(d / "fr-en-gar-acces_academie.csv", "acces")
    _academie_file(d / "fr-en-gar-accedants_academie2024-2025.csv", "accedants", order=list(reversed(KNOWN)))
    _academie_file(d / "fr-en-gar-affectations_academie2024-2025.csv", "affectations")
    (d / "fr-en-gar-acces_profil2024-2025.csv").write_text(
        "profil;acces\nElève;48473661\nEnseignants;5255190\nDocumentaliste;197081\nAutres;87545\nNull;79258\n",
        encoding="utf-8")
    (d / "fr-en-gar-accedants_degre2024-2025.csv").write_text("Degré;Accédants\n1er degré;3100000\n"
                                                              "2nd degré;7729562\n", encoding="utf-8")
    return d


def test_three_academie_datasets_join_on_libelle_with_autres_kept(od):
    files = find_published(od)
    t = academie_figures({k: v for k, v in files.items() if k.endswith("_academie")})
    assert len(t) == 8
    row = t.set_index("libelle_aca").loc["Autres"]
    assert row["autres"] and pd.isna(row["code_academie"]) and row["nom_academie"] == AUTRES_LABEL
    assert (row["accedants"], row["acces"], row["affectations"]) == KNOWN["Autres"]
    v = t.set_index("libelle_aca").loc["Versailles"]
    assert v["code_academie"] == "25" and (v["accedants"], v["acces"], v["affectations"]) == KNOWN["Versailles"]
    assert v["acces_par_accedant"] == pytest.approx(6_312_657 / 747_564)
    assert t["autres"].tolist()[-1]  # the « Autres » row last, after the académies


def test_profil_null_is_a_value_shown_as_not_filled(od):
    p = read_profil(od / "fr-en-gar-acces_profil2024-2025.csv")
    null = p[p["non_renseigne"]]
    assert null["profil"].tolist() == ["Null"] and null["libelle"].tolist() == [NULL_PROFIL_LABEL]
    assert int(p["acces"].sum()) == 54_092_735


def test_reconciliation_finds_the_3535_gap(od):
    t = academie_figures([od / "fr-en-gar-acces_academie.csv"])
    p = read_profil(od / "fr-en-gar-acces_profil2024-2025.csv")
    r = reconcile_totals(t, p, published_total=ACADEMIE_TOTAL_ACCES).set_index("constat")
    gap = r.loc["Total des accès par académie et total par profil"]
    assert (gap["total_a"], gap["total_b"], gap["ecart"]) == (54_096_270, 54_092_735, 3_535)
    assert "3\u202f535" in gap["explication"]
    assert r.loc["Ligne sans code d'académie", "total_a"] == 1_935
    assert r.loc["Accès sans profil (« Null » publié)", "total_a"] == 79_258


def test_degre_label_headers(od):
    d = read_degre(od / "fr-en-gar-accedants_degre2024-2025.csv")
    assert d.columns.tolist() == ["degre", "accedants"] and int(d["accedants"].sum()) == 10_829_562


def test_bad_cells_name_file_line_and_column(tmp_path):
    p = tmp_path / "fr-en-gar-acces_academie.csv"
    p.write_text("libelle_aca;acces\nLille;983336\n;12\nCréteil;3,8 M\nLille;5\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_academie(p)
    got = {(x.line, x.column) for x in err.value.problems}
    assert got == {(3, "libelle_aca"), (4, "acces"), (5, "libelle_aca")}
    assert all(x.file == str(p) for x in err.value.problems)
    q = tmp_path / "profil.csv"
    q.write_text("profil;affectations\nElève;3\n", encoding="utf-8")
    with pytest.raises(DataError, match="acces"):
        read_profil(q)


def test_resource_catalogue(tmp_path):
    p = tmp_path / "fr-en-gestionnaire-dacces-aux-ressources-gar-liste_des_ressources-2026.csv"
    p.write_text("nom_de_la_ressource;type;cout;libelle_de_l_editeur;libelle_du_distributeur_technique_dtr;"
                 "libelle_du_distributeur_commercial_dcr;nouveau;id\n"
                 "Manuel A;Manuel numérique;Payant;Éditeur 1;DTR 1;DCR 1;Oui;1\n"
                 "Dico B;Dictionnaire;Gratuit;Éditeur 2;DTR 1;;Non;2\n"
                 "Manuel C;Manuel numérique;Payant;Éditeur 1;DTR 2;DCR 1;;3\n", encoding="utf-8")
    cat = read_ressources(p)
    assert cat["nouveau"].tolist()[:2] == [True, False] and pd.isna(cat["nouveau"].iloc[2])
    assert pd.isna(cat.loc[3, "libelle_du_distributeur_commercial_dcr"])
    by_type = catalogue_summary(cat, "type").set_index("type")
    assert by_type.loc["Manuel numérique", "ressources"] == 2
    assert catalogue_summary(cat, "libelle_de_l_editeur").iloc[0]["libelle_de_l_editeur"] == "Éditeur 1"


def test_own_totals_against_published(od):
    pub = academie_figures([od / "fr-en-gar-acces_academie.csv"])
    own = pd.DataFrame({"code_academie": ["25", "25", "09", "14"], "acces": [6_000_000, 312_657, 983_000, 10]})
    c = compare_own_totals(pub, own).set_index("code_academie")
    assert c.loc["25", "acces_ecart"] == 0
    assert c.loc["09", "acces_ecart"] == -336
    assert pd.isna(c.loc["14", "acces_publie"]) and c.loc["14", "acces_calcule"] == 10


# --------------------------------------------------------------------------- the two real files


def test_real_shared_files_and_the_3535_gap():
    aca = academie_figures([need(FIG / "gar-academie-2024-2025.partial.csv")])
    prof = read_profil(need(FIG / "gar-acces-profil-2024-2025.csv"))
    got = aca.set_index("libelle_aca")[["accedants", "acces", "affectations"]]
    for lib, values in KNOWN.items():
        assert tuple(int(x) for x in got.loc[lib]) == values
    autres = aca[aca["autres"]]
    assert autres["libelle_aca"].tolist() == ["Autres"] and autres["code_academie"].isna().all()
    assert prof["libelle"].tolist() == ["Elève", "Enseignants", "Documentaliste", "Autres", NULL_PROFIL_LABEL]
    r = reconcile_totals(aca, prof, published_total=ACADEMIE_TOTAL_ACCES)
    assert r.iloc[0]["ecart"] == 3_535


@pytest.mark.slow
def test_national_opendata_page_on_published_figures(tmp_path, monkeypatch):
    """The open-data page: accès per accédant with funnel limits, the catalogue, the 3,535 reconciliation."""
    import json

    import nbformat

    papermill = pytest.importorskip("papermill")
    from gar_analysis.config import REPORT_NOTEBOOKS_DIR

    od = tmp_path / "od"
    od.mkdir()
    rows = [r.split(";") for r in need(FIG / "gar-academie-2024-2025.partial.csv").read_text(
        encoding="utf-8").split("\n")[1:] if r]
    for m, i, ds in (("accedants", 1, "fr-en-gar-accedants_academie2024-2025"),
                     ("acces", 2, "fr-en-gar-acces_academie"),
                     ("affectations", 3, "fr-en-gar-affectations_academie2024-2025")):
        (od / f"{ds}.csv").write_text(f"libelle_aca;{m}\n" + "\n".join(f"{r[0]};{r[i]}" for r in rows) + "\n",
                                      encoding="utf-8")
    (od / "fr-en-gar-acces_profil2024-2025.csv").write_bytes((FIG / "gar-acces-profil-2024-2025.csv").read_bytes())
    (od / "fr-en-gestionnaire-dacces-aux-ressources-gar-liste_des_ressources-2026.csv").write_text(
        "type;cout;libelle_de_l_editeur;nouveau\nManuel numérique;Payant;Éditeur 1;Oui\n", encoding="utf-8")
    summary = tmp_path / "summary.json"
    monkeypatch.setenv("GAR_REPORT_SUMMARY", str(summary))
    papermill.execute_notebook(str(REPORT_NOTEBOOKS_DIR / "national_opendata.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters={"opendata_dir": str(od), "processed_dir": str(tmp_path / "absent")},
                               progress_bar=False)
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in out.cells for o in c.get("outputs", []))
    assert "Accès par accédant par académie" in html and "Limite haute (95 %)" in html
    assert "3\u202f535" in html and NULL_PROFIL_LABEL in html and "Ressources par type" in html
    assert "Ce que les données publiques ne permettent pas" in html
    import re

    assert any(re.search(r"3\s535 accès", s) for s in json.loads(summary.read_text(encoding="utf-8"))["a_corriger"])


def test_own_totals_from_the_processed_sample(sample_build):
    """The sample covers 2024-2025: its own accès by académie are read and set beside the published rows."""
    from gar_analysis.build import load_processed
    from gar_analysis.sources.published import own_academie_totals

    own = own_academie_totals(sample_build.processed_dir)
    usage = load_processed("usage_mensuel", sample_build.processed_dir)
    year = usage[(usage["annee_scolaire"] == "2024-2025") & usage["code_academie"].notna()]
    assert own is not None and own["acces"].sum() == year["acces"].sum()
    assert {"code_academie", "acces", "accedants"} <= set(own.columns)
    assert own_academie_totals(sample_build.processed_dir, "2019-2020") is None
    pub = academie_figures([need(FIG / "gar-academie-2024-2025.partial.csv")])
    c = compare_own_totals(pub, own).set_index("code_academie")
    assert c.loc["25", "acces_publie"] == 6_312_657
    assert c.loc["25", "acces_ecart"] == c.loc["25", "acces_calcule"] - 6_312_657


def test_degre_totals_reconciled_with_academie_totals(od):
    t = academie_figures([od / "fr-en-gar-accedants_academie2024-2025.csv"])
    d = read_degre(od / "fr-en-gar-accedants_degre2024-2025.csv")
    r = reconcile_totals(t, None, degres=[d], totals={"accedants": 10_829_562}).set_index("constat")
    row = r.loc["Total des accédants par académie et total par degré"]
    assert (row["total_a"], row["total_b"], row["ecart"]) == (10_829_562, 10_829_562, 0)
    d.loc[d.index[0], "accedants"] -= 12
    r = reconcile_totals(t, None, degres=[d], totals={"accedants": 10_829_562}).set_index("constat")
    assert r.loc["Total des accédants par académie et total par degré", "ecart"] == 12
