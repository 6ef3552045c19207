"""A publisher's page: year on year, licences bought vs affectations vs use, subscribed schools without use."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_indicators import PUBLISHERS, make_tables  # noqa: E402

from gar_analysis import indicators as ind  # noqa: E402
from gar_analysis.disclosure import publish  # noqa: E402
from gar_analysis.publishers import assign_ids  # noqa: E402

REF = "2025-06"


def make_frames() -> dict:
    """The tables of test_indicators with subscriptions (two resources per registered school)."""
    f = make_tables()
    f["ressources"] = assign_ids(f["ressources"])
    ids = dict(zip(f["ressources"]["id_ressource"], f["ressources"]["id_editeur"]))
    f["acces_ressources"]["id_editeur"] = f["acces_ressources"]["id_ressource"].map(ids)
    etab = f["etablissements"]
    rows = []
    for k, s in enumerate(etab[etab.inscrit].itertuples()):
        for r in (f"R{k % 9}", f"R{(k + 4) % 9}"):
            active = k % 7 != 0  # one subscription in seven ended before the reference month
            rows.append({"id_abonnement": f"AB{len(rows)}", "uai": s.uai, "id_ressource": r,
                         "date_debut": pd.Timestamp("2024-09-01"),
                         "date_fin": pd.Timestamp("2025-08-31" if active else "2025-01-31"),
                         "licences": 100 + k + 37 * int(r[1:])})
    abo = pd.DataFrame(rows)
    abo["id_editeur"] = abo["id_ressource"].map(ids)
    f["abonnements"] = abo.merge(etab[["uai", "code_departement", "code_academie", "code_region", "niveau",
                                       "secteur"]], on="uai")
    return f


@pytest.fixture(scope="module")
def frames():
    return make_frames()


@pytest.fixture(scope="module")
def tables(frames):
    return ind.Tables(frames=frames)


def _own(frames, name):
    pid = frames["ressources"].set_index("editeur")["id_editeur"].to_dict()[name]
    return pid, set(frames["ressources"].loc[frames["ressources"].id_editeur == pid, "id_ressource"])


def test_year_on_year_compares_the_same_months_a_year_apart(tables, frames):
    name = PUBLISHERS[0]
    _, own = _own(frames, name)
    ar = frames["acces_ressources"]
    mine = ar[ar.id_ressource.isin(own)].groupby("mois").acces.sum()
    out = ind.editeur_year_on_year(tables, name)
    assert list(out.mois) == ind.window(frames["usage_mensuel"])
    row = out.set_index("mois").loc[REF]
    assert row.acces == mine[REF] and row.mois_an == "2024-06" and row.acces_an == mine["2024-06"]
    assert row.evolution == pytest.approx(mine[REF] / mine["2024-06"] - 1)
    assert out.attrs["evolution_mois_an"] == pytest.approx(row.evolution)
    last3, prev3 = ["2025-04", "2025-05", REF], ["2024-04", "2024-05", "2024-06"]
    assert out.attrs["evolution_3_mois"] == pytest.approx(mine[last3].sum() / mine[prev3].sum() - 1)
    # a month a year earlier outside the data: no evolution
    assert out.set_index("mois").loc["2024-09", "acces_an"] == mine["2023-09"]
    small = out.copy()
    small.loc[0, "acces_an"] = 2
    pub = publish(small, threshold=5)
    assert pub.loc[0, "acces_an"] == "c" and pub.loc[0, "evolution"] == "c"


def test_take_up_counts_licences_affectations_and_use_of_its_own_subscriptions(tables, frames):
    name = PUBLISHERS[1]
    pid, own = _own(frames, name)
    out = ind.editeur_take_up(tables, name)
    assert out["mois"] == REF
    abo = frames["abonnements"]
    active = abo[(abo.id_editeur == pid) & (abo.date_fin >= "2025-06-01")]
    ar = frames["acces_ressources"]
    month = ar[ar.id_ressource.isin(own) & (ar.mois == REF)]
    used = set(month.loc[month.acces > 0, "uai"])
    v = out["valeurs"]
    assert v["abonnes"] == active.uai.nunique()
    assert v["abonnes_utilisateurs"] == len(set(active.uai) & used)
    assert v["abonnes_sans_usage"] == v["abonnes"] - v["abonnes_utilisateurs"]
    assert v["licences_mois"] == active.licences.sum()
    assert v["affectations_licences_mois"] == month.affectations.sum()
    assert v["part_licences_affectees"] == pytest.approx(month.affectations.sum() / active.licences.sum())
    assert v["acces_par_affectation"] == pytest.approx(month.acces.sum() / month.affectations.sum())
    pa = out["par_academie"]
    assert pa.abonnes.sum() == v["abonnes"] and pa.licences_mois.sum() == v["licences_mois"]
    assert set(out["sans_usage"].uai) == set(active.uai) - used
    assert out["sans_usage"].licences.is_monotonic_decreasing
    # every figure is a registered indicator of the publisher's page
    for k in ("abonnes", "abonnes_utilisateurs", "part_abonnes_utilisateurs", "licences_mois",
              "affectations_licences_mois", "part_licences_affectees", "acces_par_affectation"):
        assert ind.INDICATORS[k].editeur and k in v
    table = ind.take_up_table(v)
    assert list(table.indicateur) == [i.label for i in ind.INDICATORS.values() if i.editeur]


def test_take_up_holds_nothing_of_another_publisher(tables, frames):
    out = ind.editeur_take_up(tables, PUBLISHERS[0])
    abo = frames["abonnements"]
    others = abo[abo.id_editeur != _own(frames, PUBLISHERS[0])[0]]
    numbers = {float(x) for x in out["valeurs"].values()}
    numbers |= {float(x) for x in out["par_academie"].select_dtypes("number").to_numpy().ravel() if not pd.isna(x)}
    for pid, g in others.groupby("id_editeur"):
        assert float(g[g.date_fin >= "2025-06-01"].licences.sum()) not in numbers
    assert float(abo[abo.date_fin >= "2025-06-01"].licences.sum()) not in numbers
    listed = {r for cell in out["sans_usage"]["ressources"] for r in cell.split(", ")}
    own_names = set(frames["ressources"].loc[frames["ressources"].editeur == PUBLISHERS[0], "nom"])
    assert listed and listed <= own_names


def test_take_up_disclosure_hides_small_affectations_not_schools(tables):
    out = ind.editeur_take_up(tables, PUBLISHERS[2])
    out["valeurs"] = {**out["valeurs"], "affectations_licences_mois": 3.0, "part_licences_affectees": 0.01}
    pa = out["par_academie"].copy()
    pa.loc[0, "affectations_licences_mois"] = 2
    out["par_academie"] = pa
    pub = ind.publishable_take_up(out, 5)
    assert pub["valeurs"]["affectations_licences_mois"] == "c" and pub["valeurs"]["part_licences_affectees"] == "c"
    assert pub["valeurs"]["abonnes"] == out["valeurs"]["abonnes"]
    assert pub["par_academie"].loc[0, "affectations_licences_mois"] == "c"
    assert pub["par_academie"].loc[0, "part_licences_affectees"] == "c"
    # one hidden cell would be given back by the total: a second one is hidden
    assert (pub["par_academie"]["affectations_licences_mois"] == "c").sum() >= 2
    assert pub["par_academie"]["abonnes"].tolist() == pa["abonnes"].tolist()


def test_take_up_without_subscriptions_is_empty_not_an_error(frames):
    f = {k: v for k, v in frames.items() if k != "abonnements"}
    out = ind.editeur_take_up(ind.Tables(frames=f), PUBLISHERS[0])
    assert out["valeurs"]["abonnes"] == 0 and np.isnan(out["valeurs"]["part_abonnes_utilisateurs"])
    assert out["sans_usage"].empty and out["par_academie"].empty


def test_publisher_figures_stay_off_territory_pages(tables):
    values = ind.territory_values(tables, "academie", "14")
    assert not set(values.index) & {n for n, i in ind.INDICATORS.items() if i.editeur}
