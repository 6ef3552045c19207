"""Lists of schools to act on (indicators.schools_*): registry definitions, scope, order, disclosure, CSV."""
from __future__ import annotations

import html as html_lib
import urllib.parse
import io
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_indicators import make_tables  # noqa: E402

from gar_analysis import indicators as ind  # noqa: E402
from gar_analysis.disclosure import publish  # noqa: E402
from gar_analysis.reporting import display as d  # noqa: E402


@pytest.fixture(scope="module")
def frames():
    f = make_tables()
    f["etablissements"]["nom_commune"] = "Commune " + f["etablissements"]["code_commune"]
    return f


@pytest.fixture(scope="module")
def tables(frames):
    return ind.Tables(frames=frames)


def _aca(frames):
    return str(frames["etablissements"]["code_academie"].iloc[0])


def test_not_registered_is_the_complement_of_the_registry_inscrits(tables, frames):
    aca = _aca(frames)
    etab = frames["etablissements"]
    local = etab[etab.code_academie == aca]
    out = ind.schools_not_registered(tables, "academie", aca)
    assert set(out.uai) == set(local.loc[~local.inscrit, "uai"])
    values = ind.territory_values(tables, "academie", aca)
    assert len(out) == values.at["etablissements", "valeur"] - values.at["inscrits", "valeur"]
    assert (out.motif == ind.FOLLOW_UP_MOTIFS["non_inscrit"]).all()
    assert list(out.columns) == ind.FOLLOW_UP_COLUMNS
    # largest schools first
    assert out.eleves.astype(float).is_monotonic_decreasing
    assert set(out.commune) == {f"Commune {c}" for c in local.loc[~local.inscrit, "code_commune"]}
    assert out.departement.str.len().gt(0).all()


def test_inactive_lists_registered_schools_without_access_in_the_reference_month(tables, frames):
    aca = _aca(frames)
    etab, usage = frames["etablissements"], frames["usage_mensuel"]
    ref = ind.reference_month(usage)
    assert ref == "2025-06"  # July and August are holidays
    active = set(usage.loc[(usage.mois == ref) & (usage.acces > 0), "uai"])
    local = etab[(etab.code_academie == aca) & etab.inscrit]
    out = ind.schools_inactive(tables, "academie", aca)
    assert set(out.uai) == set(local.uai) - active
    values = ind.territory_values(tables, "academie", aca)
    assert len(out) == values.at["inscrits", "valeur"] - values.at["actifs_mois", "valeur"]
    # another month: same definition
    other = ind.schools_inactive(tables, "academie", aca, month="2024-03")
    active_m = set(usage.loc[(usage.mois == "2024-03") & (usage.acces > 0), "uai"])
    assert set(other.uai) == set(local.uai) - active_m
    last = usage[(usage.acces > 0) & (usage.mois <= "2024-03")].groupby("uai").mois.max()
    for u, det in zip(other.uai, other.detail):
        assert det == (f"dernier accès : {ind._month_label(last[u])}" if u in last.index
                       else "aucun accès dans les données")


def test_without_referent_and_with_findings(tables, frames):
    aca = _aca(frames)
    etab = frames["etablissements"]
    local = etab[etab.code_academie == aca]
    out = ind.schools_without_referent(tables, "academie", aca)
    assert set(out.uai) == set(local.loc[~local.referent, "uai"])
    found = ind.schools_with_findings(tables, "academie", aca)
    c = frames["constats"]
    expected = set(c[(c.code_academie == aca) & c.gravite.isin(["erreur", "avertissement"])].uai)
    assert set(found.uai) == expected and expected
    assert found.detail.str.match(r"^1 constat\(s\) : ").all()
    assert "UAI invalide" in " ".join(found.detail)  # rule titles, not rule identifiers


def test_region_and_departement_lists_keep_the_funded_level(tables, frames):
    etab = frames["etablissements"]
    reg = str(etab.code_region.iloc[0])
    out = ind.schools_to_follow(tables, "region", reg)
    lycees = set(etab[(etab.code_region == reg) & (etab.niveau == "lycee")].uai)
    assert len(out) and set(out.uai) <= lycees
    assert set(out.niveau) == {"lycée"}
    dep = str(etab.code_departement.iloc[1])
    out = ind.schools_to_follow(tables, "departement", dep)
    assert set(out.uai) <= set(etab[(etab.code_departement == dep) & (etab.niveau == "college")].uai)


def test_schools_to_follow_summary_and_disclosure(tables, frames):
    aca = _aca(frames)
    out = ind.schools_to_follow(tables, "academie", aca)
    summary = ind.follow_up_summary(out)
    assert list(summary.motif) == list(ind.FOLLOW_UP_MOTIFS.values())
    for motif, n in zip(summary.motif, summary.etablissements):
        assert n == int((out.motif == motif).sum())
    small = out.copy()
    small.loc[small.index[0], "eleves"] = 3
    pub = publish(small, threshold=5)
    assert pub.loc[pub.index[0], "eleves"] == "c"
    assert pub["uai"].tolist() == small["uai"].tolist()  # schools are shown, their pupils' small counts hidden


def test_table_html_anchor_and_csv_download(tables, frames):
    out = publish(ind.schools_not_registered(tables, "academie", _aca(frames)))
    out.loc[out.index[0], "nom"] = "=HYPERLINK(1)"
    html = d.table_html(out, "Non inscrits", max_rows=5, anchor="a-suivre-non-inscrit", download=out,
                        labels={"eleves": "Élèves (nombre)"})
    assert 'id="a-suivre-non-inscrit"' in html
    assert html.count("<tr>") == 6  # header + 5 rows shown
    uri = re.search(r'href="data:text/csv;charset=utf-8,([^"]+)"', html).group(1)
    raw = urllib.parse.unquote(html_lib.unescape(uri)).encode("utf-8")
    assert raw.startswith("\ufeff".encode())
    back = pd.read_csv(io.StringIO(raw.decode("utf-8-sig")), sep=";", dtype=str)
    assert len(back) == len(out)  # the full list, not the rows shown
    assert "Élèves (nombre)" in back.columns and "UAI" in back.columns
    assert back.iloc[0]["Nom"] == "'=HYPERLINK(1)"
    assert 'download="a-suivre-non-inscrit.csv"' in html
