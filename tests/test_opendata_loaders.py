"""Real-format loaders of the other shared open-data files, and the open-data notebook."""
from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from gar_analysis.config import REPORT_NOTEBOOKS_DIR, SHARED_OPENDATA_DIR
from gar_analysis.errors import DataError
from gar_analysis.sources.opendata import (
    count_rows, load_cog, load_contours_academies, load_effectifs, load_gar_catalog, load_geoloc, load_ivac,
)
from gar_analysis.sources.referentiel import problems_frame

S = SHARED_OPENDATA_DIR


def need(rel):
    p = S / rel
    if not p.exists():
        pytest.skip(f"données partagées absentes : {p}")
    return p


def test_ivac_original_and_dirty_copy_agree():
    orig = load_ivac(need("ivac-colleges/valeur-ajoutee-colleges_original.csv"))
    dirty = load_ivac(need("ivac-colleges/fr-en-indicateurs-valeur-ajoutee-colleges.csv"))
    assert len(orig) == 13237 and len(dirty) == 13234
    assert set(orig.session) == {2022, 2023} and set(orig.secteur.dropna()) == {"public", "prive"}
    assert orig.code_academie.notna().all() and dirty.code_academie.notna().all()  # LA_REUNION handled
    key = ["uai", "session"]
    m = orig.merge(dirty, on=key, suffixes=("", "_d"))
    assert len(m) >= 13200
    assert (m.taux_reussite_g.fillna(-1) == m.taux_reussite_g_d.fillna(-1)).mean() > 0.999
    assert dirty.nb_candidats_p.isna().all() if "nb_candidats_p" in dirty else True
    assert dirty.note_ecrit_g.notna().sum() > 12000  # "None" strings became NA, numbers kept


def test_ivac_ns_reported_and_garbage_refused(tmp_path):
    p = tmp_path / "ivac.csv"
    p.write_text("Session;UAI;Académie;Secteur;Taux de réussite - G;VA du taux de réussite - G\n"
                 "2023;0010005A;LYON;PU;93,0;-2\n2023;0010042R;LYON;PR;NS;ND\n", encoding="utf-8")
    df = load_ivac(p)
    assert df.taux_reussite_g.iloc[0] == 93.0 and pd.isna(df.taux_reussite_g.iloc[1])
    assert set(zip(problems_frame(df).ligne, problems_frame(df).colonne)) == {
        (3, "Taux de réussite - G"), (3, "VA du taux de réussite - G")}
    p.write_text("Session;UAI\n2023;0010005A\ndeux mille;0010042R\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_ivac(p)
    assert (err.value.problems[0].line, err.value.problems[0].column) == (3, "Session")


def test_geoloc_ids_and_labels():
    nat = load_geoloc(need("geoloc-colleges/fr-en-adresse-et-geolocalisation-etablissements-premier-et-second-degre.csv"))
    assert len(nat) == 7654 and nat.uai.is_unique
    assert nat.latitude.isna().sum() == 147
    probs = problems_frame(nat)
    assert probs.message.str.contains("coordonnées absentes pour 147").any()
    assert probs.message.str.contains("« 988 »").any()  # Nouvelle-Calédonie outside the 101 départements
    assert (nat.code_departement == "988").sum() > 0
    d35 = load_geoloc(need("dept35-ille-et-vilaine/fr-en-adresse-et-geolocalisation-etablissements-premier-et-"
                           "second-degre.csv"))
    assert len(d35) == 117 and set(d35.code_departement) == {"35"} and set(d35.code_academie) == {"14"}
    assert d35.latitude.notna().all()


def test_effectifs_layouts():
    sd = load_effectifs(need("dept35-ille-et-vilaine/fr-en-effectifs-second-degre.csv"))
    assert sd.attrs["layout"] == "effectifs-second-degre" and len(sd) == 823
    pseudo = sd.uai[sd.uai.str.endswith("O")]
    assert len(pseudo) == 8 and pseudo.is_unique  # 8 pseudo-UAIs, kept for the checks to report
    ec = load_effectifs(need("dept35-ille-et-vilaine/fr-en-ecoles-effectifs-nb_classes.csv"))
    assert ec.attrs["layout"] == "effectifs-ecoles" and ec.loc[2, "effectifs"] == 289
    assert ec.loc[2, "rentree_scolaire"] == "2022-2023"
    col = load_effectifs(need("dept35-ille-et-vilaine/fr-en-college-effectifs-niveau-sexe-lv.csv"))
    assert col.attrs["layout"] == "effectifs-colleges" and col.effectifs.notna().all()
    ly = load_effectifs(need("effectifs-lycees-gt/fr-en-lycee_gt-effectifs-niveau-sexe-lv.csv"))
    assert ly.attrs["layout"] == "effectifs-lycees" and len(ly) == 7506


def test_contours_cog_catalog():
    geo = load_contours_academies(need("contours-academies-2020/fr-en-contour-academies-2020.geojson"))
    assert len(geo) == 30 and geo.code_academie.is_unique and geo.code_academie.notna().all()
    assert geo.geometry.map(lambda g: g["type"]).isin(["Polygon", "MultiPolygon"]).all()
    assert geo.latitude.notna().all()
    communes = load_cog(need("cog-2025/cog-communes@2025.parquet"))
    assert len(communes) == 37548 and set(communes.type.dropna()) >= {"COM", "COMD", "ARM"}
    deps = load_cog(need("cog-2025/cog-departments@2025.csv"))
    assert len(deps) == 101 and deps.code_region.notna().all()
    cat = load_gar_catalog(need("gar-opendata-catalog-metadata/gar_datasets_schema.json"))
    assert "acces" in cat["fr-en-gar-acces_academie"]["fields"]
    assert "code_academie" in cat["fr-en-gar-affectations_academie2024-2025"]["fields"]


def test_count_rows_kinds(tmp_path):
    p = tmp_path / "a.tmp"
    p.write_text('a;b\n1;"x\ny"\n2;z\n', encoding="utf-8")
    assert count_rows(p, ".csv") == 2
    g = tmp_path / "g.geojson"
    g.write_text(json.dumps({"type": "FeatureCollection", "features": [{}, {}, {}]}), encoding="utf-8")
    assert count_rows(g) == 3


def test_national_opendata_notebook_structure():
    nb = nbformat.read(REPORT_NOTEBOOKS_DIR / "national_opendata.ipynb", as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    src = params[0].source
    for name in ("audience", "territoire", "processed_dir", "seuil_secret", "run_id", "opendata_dir"):
        assert f"{name} = " in src
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
def test_national_opendata_notebook_runs(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    from test_enrich import _write_gar_files

    od = tmp_path / "od"
    od.mkdir()
    _write_gar_files(od)
    (od / "fr-en-ips-colleges-ap2022.csv").symlink_to(need("ips-colleges-2022/fr-en-ips-colleges-ap2022.csv"))
    summary = tmp_path / "summary.json"
    monkeypatch.setenv("GAR_REPORT_SUMMARY", str(summary))
    papermill.execute_notebook(str(REPORT_NOTEBOOKS_DIR / "national_opendata.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters={"opendata_dir": str(od)}, progress_bar=False)
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in out.cells for o in c.get("outputs", []))
    assert "Accès GAR par établissement" in html and "<table" in html
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["points_forts"] and data["a_corriger"]


@pytest.mark.parametrize("loader, rel", [
    ("ivac", "ivac-colleges/valeur-ajoutee-colleges_original.csv"),
    ("geoloc", "dept35-ille-et-vilaine/fr-en-adresse-et-geolocalisation-etablissements-premier-et-second-degre.csv"),
    ("effectifs", "dept35-ille-et-vilaine/fr-en-ecoles-effectifs-nb_classes.csv"),
    ("effectifs", "dept35-ille-et-vilaine/fr-en-college-effectifs-niveau-sexe-lv.csv"),
    ("ips", "ips-colleges-2022/fr-en-ips-colleges-ap2022.csv"),
    ("ips", "ips-ecoles-2021/fr-en-ips_ecoles.csv"),
    ("annuaire", "dept35-ille-et-vilaine/fr-en-annuaire-education.csv"),
])
def test_label_and_id_headers_load_the_same(loader, rel, tmp_path):
    """The portal exports labels or field ids (labels slugified): both give the same frame."""
    from gar_analysis.sources import referentiel

    fn = {"ivac": load_ivac, "geoloc": load_geoloc, "effectifs": load_effectifs,
          "ips": referentiel.load_ips, "annuaire": referentiel.load_annuaire}[loader]
    text = need(rel).read_text(encoding="utf-8-sig")
    header, body = text.split("\n", 1)
    ids = ";".join(referentiel.field_id(h) for h in header.rstrip("\r").split(";"))
    p = tmp_path / "ids.csv"
    p.write_text(ids + "\n" + body, encoding="utf-8")
    by_label, by_id = fn(need(rel)), fn(p)
    assert by_label.attrs["layout"] == by_id.attrs["layout"]
    pd.testing.assert_frame_equal(by_label, by_id)
