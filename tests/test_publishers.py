"""Publishers keyed by a stable identifier (issue #16, items 1 and 2): colliding spellings never share a page."""
from __future__ import annotations

import pandas as pd
import pytest

from gar_analysis import indicators as ind
from gar_analysis import publishers as pub
from gar_analysis.errors import ConfigError
from gar_analysis.reporting.batch import plan_batch

from test_indicators import make_tables  # the indicator tests' small processed tables


def _renamed(tables: dict, mapping: dict[str, str]) -> dict:
    """The small tables with some resources' publisher written differently (ids of resources kept)."""
    out = dict(tables)
    res = tables["ressources"].copy()
    for rid, name in mapping.items():
        res.loc[res["id_ressource"] == rid, "editeur"] = name
    out["ressources"] = res.drop(columns=["id_editeur"], errors="ignore")
    return out


def test_two_spellings_sharing_a_slug_get_two_pages_each_with_its_own_figures():
    base = make_tables(60, seed=1)
    res = base["ressources"]
    name = res["editeur"].iloc[0]
    own = res.loc[res["editeur"] == name, "id_ressource"].tolist()
    assert len(own) >= 2
    upper = {own[0]: name.upper()}  # « DICO PLUS » beside « Dico Plus »
    t = ind.Tables(frames=_renamed(base, upper))
    ids = ind.editeurs(t)
    id_lower = pub.resolve(t["ressources"], name)
    id_upper = pub.resolve(t["ressources"], name.upper())
    assert id_lower != id_upper and ids[id_lower] == name and ids[id_upper] == name.upper()
    lower = ind.editeur_usage(t, name)
    upper_usage = ind.editeur_usage(t, name.upper())
    ar = t["acces_ressources"]
    w = ar[ar["mois"].astype(str).isin(ind.window(t["usage_mensuel"]))]
    assert lower["valeurs"]["acces"] == w[w["id_ressource"].isin(own[1:])]["acces"].sum()
    assert upper_usage["valeurs"]["acces"] == w[w["id_ressource"] == own[0]]["acces"].sum()
    with pytest.raises(ConfigError, match="Éditeur ambigu"):  # the slug alone names two publishers
        pub.resolve(t["ressources"], pub.name_slug(name).replace("-", " "))
    assert pub.spelling_conflicts(t["ressources"]["editeur"].tolist()) == [sorted([name, name.upper()])]


def test_non_latin_names_get_distinct_non_empty_identifiers(tmp_path):
    base = make_tables(60, seed=1)
    res = base["ressources"]
    names = res["editeur"].unique()[:2]
    first = res.loc[res["editeur"] == names[0], "id_ressource"].tolist()
    second = res.loc[res["editeur"] == names[1], "id_ressource"].tolist()
    frames = _renamed(base, {**{r: "学研" for r in first}, **{r: "ベネッセ" for r in second}})
    t = ind.Tables(frames=frames)
    ids = ind.editeurs(t)
    gakken, benesse = pub.resolve(t["ressources"], "学研"), pub.resolve(t["ressources"], "ベネッセ")
    assert gakken and benesse and gakken != benesse and not gakken.startswith(".")
    assert ids[gakken] == "学研" and ids[benesse] == "ベネッセ"
    ar = t["acces_ressources"]
    usage = ind.editeur_usage(t, "学研")
    w = ar[ar["mois"].astype(str).isin(ind.window(t["usage_mensuel"]))]
    assert usage["valeurs"]["acces"] == w[w["id_ressource"].isin(first)]["acces"].sum()
    # the batch plans one file per identifier, never a hidden « .html »
    frames["ressources"].to_parquet(tmp_path / "ressources.parquet")
    jobs = plan_batch("editeur", only=["学研"], processed_dir=tmp_path, run_id="x")
    assert {j.territoire for j in jobs} == {gakken} and all(not j.html_rel.split("/")[-1].startswith(".") for j in jobs)


def test_catalogue_identifier_and_mapping_file_win_over_spelling(tmp_path):
    cat = pd.DataFrame({"id_ressource": ["r1", "r2", "r3"], "editeur": ["Dico Plus", "DICO PLUS", "Nathan"]})
    mapped = pub.assign_ids(cat, {"Dico Plus": "dicoplus", "DICO PLUS": "dicoplus"})
    assert mapped["id_editeur"].tolist()[:2] == ["dicoplus", "dicoplus"]
    assert pub.publisher_names(mapped)["dicoplus"] in {"Dico Plus", "DICO PLUS"}
    given = pub.assign_ids(cat.assign(id_editeur=["E1", "E1", "E2"]))
    assert given["id_editeur"].tolist() == ["E1", "E1", "E2"]
    (tmp_path / "gar").mkdir()
    (tmp_path / "gar" / "editeurs.csv").write_text("editeur;id_editeur\nDico Plus;dicoplus\nDICO PLUS;dicoplus\n",
                                                   encoding="utf-8")
    assert pub.read_mapping(tmp_path) == {"Dico Plus": "dicoplus", "DICO PLUS": "dicoplus"}
    (tmp_path / "gar" / "editeurs.csv").write_text("editeur;id_editeur\nDico Plus;Dico Plus!\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="ligne 2"):
        pub.read_mapping(tmp_path)


def test_spellings_are_a_finding_until_the_mapping_file_settles_them(sample_build, tmp_path):
    import shutil

    from gar_analysis.build import build_tables
    from gar_analysis.checks import run_checks

    data = tmp_path / "data"
    shutil.copytree(sample_build.data_dir, data)
    path = data / "gar" / "ressources.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    name = lines[1].split(";")[2]
    lines[1] = lines[1].replace(name, name.upper())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = run_checks(data)
    hit = found[found["regle"] == "editeur_orthographes"]
    assert len(hit) == 1 and name.upper() in hit["message"].iloc[0] and hit["ligne"].iloc[0] == 2
    tables = build_tables(data, found)
    ids = tables["ressources"].groupby("editeur")["id_editeur"].first()
    assert ids[name] != ids[name.upper()]  # two spellings, two reports, never merged by guesswork
    (data / "gar" / "editeurs.csv").write_text(f"editeur;id_editeur\n{name};mon-editeur\n{name.upper()};mon-editeur\n",
                                               encoding="utf-8")
    found = run_checks(data)
    assert not (found["regle"] == "editeur_orthographes").any()
    tables = build_tables(data, found)
    res = tables["ressources"]
    assert set(res.loc[res["editeur"].isin([name, name.upper()]), "id_editeur"]) == {"mon-editeur"}
    assert "id_editeur" in tables["acces_ressources"].columns
