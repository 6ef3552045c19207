"""Tests of gar_analysis.indicators on small hand-built processed tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gar_analysis import indicators as ind
from gar_analysis.disclosure import Spec, publish, with_spec
from gar_analysis.errors import ConfigError
from gar_analysis.territories import departements

MONTHS = [f"{y}-{m:02d}" for y, m in [(2023, k) for k in range(9, 13)] + [(2024, k) for k in range(1, 13)]
          + [(2025, k) for k in range(1, 9)]]
PUBLISHERS = ["Éditions Alpha", "Beta Numérique", "Gamma Savoirs"]


def make_tables(n_schools: int = 150, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Build small processed tables with the columns of gar_analysis.build (3 académies)."""
    rng = np.random.default_rng(seed)
    deps = departements()
    deps = deps[deps.code_academie.isin(["14", "17", "01"])].reset_index(drop=True)
    rows = []
    for i in range(n_schools):
        d = deps.iloc[i % len(deps)]
        niveau = ["ecole", "college", "lycee"][i % 3]
        inscrit = rng.random() < 0.75
        rows.append({
            "uai": f"{i:07d}A", "nom": f"Établissement {i}", "niveau": niveau,
            "secteur": "prive" if i % 5 == 0 else "public", "code_commune": f"{d.code_departement}001",
            "code_departement": d.code_departement, "code_academie": d.code_academie, "code_region": d.code_region,
            "nombre_eleves": int(rng.integers(50, 900)), "inscrit": inscrit,
            "date_inscription": pd.Timestamp("2022-09-01") + pd.Timedelta(days=int(rng.integers(0, 400)))
            if inscrit else pd.NaT,
            "delai_inscription_jours": int(rng.integers(0, 400)) if inscrit else pd.NA,
            "projet_ent": f"ENT-{d.code_academie}" if inscrit else None,
            "mediacentre": "EduGAR" if inscrit and i % 4 == 0 else (f"ENT-{d.code_academie}" if inscrit else None),
            "accedants_eleve": int(rng.integers(20, 500)) if inscrit else 0,
            "accedants_enseignant": int(rng.integers(5, 60)) if inscrit else 0,
            "referent": bool(rng.random() < 0.5), "actions_formation": int(rng.integers(0, 3)),
            "convention": bool(rng.random() < 0.6), "anomalies": 0,
        })
    etab = pd.DataFrame(rows)
    etab["accedants"] = etab["accedants_eleve"] + etab["accedants_enseignant"]
    etab["nombre_eleves"] = etab["nombre_eleves"].astype("Int64")
    etab["delai_inscription_jours"] = etab["delai_inscription_jours"].astype("Int64")
    ressources = pd.DataFrame({
        "id_ressource": [f"R{k}" for k in range(9)], "nom": [f"Ressource {k}" for k in range(9)],
        "editeur": [PUBLISHERS[k % 3] for k in range(9)], "type_ressource": "manuel", "degre": "tous"})
    terr = etab[["uai", "code_departement", "code_academie", "code_region", "niveau", "secteur"]]
    ar_rows = []
    for s in etab[etab.inscrit].itertuples():
        used = rng.choice(9, size=int(rng.integers(1, 5)), replace=False)
        for m in MONTHS:
            season = 0.2 if m[5:] in ("07", "08") else 1.0
            for r in used:
                if rng.random() < 0.15:
                    continue
                n = int(rng.poisson(20 * season * (1 + 0.3 * (m >= "2024-09"))))
                if n == 0:
                    continue
                mob = int(rng.binomial(n, 0.2))
                tab = int(rng.binomial(n - mob, 0.1))
                ens = int(rng.binomial(n, 0.3))
                ar_rows.append({"mois": m, "uai": s.uai, "id_ressource": f"R{r}", "acces": n,
                                "acces_eleve": n - ens, "acces_enseignant": ens, "acces_documentaliste": 0,
                                "acces_autre_personnel": 0, "acces_ordinateur": n - mob - tab,
                                "acces_tablette": tab, "acces_mobile": mob, "affectations": int(rng.integers(0, 30))})
    ar = pd.DataFrame(ar_rows)
    ar = ar.merge(ressources[["id_ressource", "editeur"]], on="id_ressource").merge(terr, on="uai")
    count_cols = [c for c in ar.columns if c.startswith(("acces", "affectations"))]
    usage = ar.groupby(["uai", "mois"], as_index=False)[count_cols].sum()
    usage["ressources_actives"] = ar.groupby(["uai", "mois"])["id_ressource"].nunique().to_numpy()
    usage = usage.merge(terr, on="uai")
    totals = usage.groupby("uai")[["acces", "affectations"]].sum()
    etab = etab.merge(totals.reset_index(), on="uai", how="left")
    etab[["acces", "affectations"]] = etab[["acces", "affectations"]].fillna(0).astype("int64")
    acteurs = [("A1", "region", "53", "Région Bretagne"), ("A2", "departement", "35", "Ille-et-Vilaine"),
               ("A3", "departement", "44", "Loire-Atlantique"), ("A4", "commune", "75056", "Paris"),
               ("A5", "ent", "", "ENT-14")]
    contrats = pd.DataFrame({
        "id_contrat": ["C1", "C2", "C3", "C4", "C5"], "id_acteur": ["A1", "A2", "A3", "A4", "A5"],
        "objet": ["convention_gar", "convention_gar", "convention_gar", "convention_gar", "convention_ent"],
        "date_signature": pd.to_datetime(["2022-01-10", None, "2021-05-01", "2023-03-01", "2020-01-01"]),
        "date_debut": pd.to_datetime(["2022-01-10", None, "2021-05-01", "2023-03-01", "2020-01-01"]),
        "date_fin": pd.to_datetime(["2027-01-01", None, "2025-10-31", "2028-01-01", "2025-12-31"]),
        "statut": ["signe", "en_attente", "signe", "signe", "signe"]})
    a = pd.DataFrame(acteurs, columns=["id_acteur", "type_acteur", "code_acteur", "nom_acteur"])
    contrats = contrats.merge(a, on="id_acteur")
    act = etab.sample(40, random_state=seed)[["uai"]].copy()
    act["date"] = pd.to_datetime("2023-10-01") + pd.to_timedelta(rng.integers(0, 600, len(act)), unit="D")
    act["type_action"] = rng.choice(["formation", "webinaire", "accompagnement"], len(act))
    act = act.drop_duplicates(["date", "uai", "type_action"]).merge(terr, on="uai")
    budget = pd.DataFrame({"annee": [2024, 2024, 2024, 2024], "niveau": ["region", "departement", "departement", "commune"],
                           "code": ["53", "35", "44", "75056"],
                           "depenses_ressources_numeriques": [100000.0, 50000.0, 40000.0, 30000.0],
                           "dont_gar": [40000.0, 10000.0, 8000.0, 3000.0]})
    constats = pd.DataFrame({
        "regle": ["uai_invalide", "acces_negatif", "doublon"], "gravite": ["erreur", "erreur", "avertissement"],
        "source": ["gar/acces.csv"] * 3, "ligne": [10, 20, 30],
        "uai": [etab.uai[0], etab.uai[1], etab.uai[2]], "mois": ["2024-01"] * 3, "id_ressource": ["R1"] * 3,
        "message": ["m1", "m2", "m3"]}).merge(
        etab[["uai", "code_departement", "code_academie", "code_region"]], on="uai")
    return {"etablissements": etab, "usage_mensuel": usage, "acces_ressources": ar, "ressources": ressources,
            "contrats": contrats, "actions": act, "budget": budget, "constats": constats}


@pytest.fixture(scope="module")
def tables():
    return ind.Tables(frames=make_tables())


# --------------------------------------------------------------------------- hand-checked aggregate


def _tiny():
    etab = pd.DataFrame({
        "uai": ["U1", "U2", "U3", "U4"], "niveau": ["college"] * 4, "inscrit": [True, True, True, False],
        "delai_inscription_jours": [10, 20, 60, None], "affectations": [5, 0, 2, 0],
        "projet_ent": ["P1", "P1", "P2", None], "mediacentre": ["EduGAR", "M1", "M1", None],
        "nombre_eleves": [100, 200, 100, 300], "accedants_enseignant": [10, 10, 0, 0],
        "accedants": [50, 50, 20, 0], "referent": [True, False, False, True], "actions_formation": [1, 0, 0, 0],
        "convention": [True, True, False, False],
        "acces_12m": [400, 100, 0, 0], "acces_eleve_12m": [300, 100, 0, 0], "acces_enseignant_12m": [100, 0, 0, 0],
        "acces_mobile_tablette_12m": [50, 50, 0, 0], "acces_mois": [10, 0, 0, 0], "acces_mois_an": [5, 0, 0, 0],
        "acces_3_mois": [30, 10, 0, 0], "acces_3_mois_an": [20, 0, 0, 0], "affectations_mois": [60, 0, 0, 0]})
    etab["actif_mois"] = etab["acces_mois"] > 0
    return etab


def test_aggregate_hand_checked():
    v = ind.aggregate(_tiny())
    assert v["etablissements"] == 4 and v["inscrits"] == 3
    assert v["part_inscrits"] == pytest.approx(0.75)
    assert v["delai_median_jours"] == 20
    assert v["avec_affectation"] == 2 and v["part_avec_affectation"] == pytest.approx(2 / 3)
    assert v["actifs_mois"] == 1 and v["part_actifs_mois"] == pytest.approx(1 / 3)
    assert v["projets_ent"] == 2 and v["mediacentres"] == 2
    assert v["referents"] == 2 and v["part_referents"] == 0.5
    assert v["part_convention"] == 0.5
    assert v["eleves"] == 400  # registered schools only
    assert v["acces_par_eleve"] == pytest.approx(400 / 400)
    assert v["acces_par_enseignant"] == pytest.approx(100 / 20)
    assert v["affectations_par_accedant"] == pytest.approx(60 / 120)
    assert v["part_acces_enseignants"] == pytest.approx(100 / 500)
    assert v["part_acces_mobile_tablette"] == pytest.approx(100 / 500)
    assert v["evolution_3_mois"] == pytest.approx(40 / 20 - 1)
    assert v["evolution_mois_an"] == pytest.approx(10 / 5 - 1)
    assert np.isnan(ind.aggregate(_tiny(), year_on_year=False)["evolution_mois_an"])


def test_months_helpers():
    usage = pd.DataFrame({"mois": ["2024-06", "2024-07", "2024-08"]})
    assert ind.reference_month(usage) == "2024-06"  # summer months skipped
    assert ind.window(usage, 3) == ["2024-06", "2024-07", "2024-08"]
    assert ind.window(pd.DataFrame({"mois": ["2025-01"]}), 2) == ["2024-12", "2025-01"]


# --------------------------------------------------------------------------- territory filter


def test_select_scopes_funded_level(tables):
    etab = tables["etablissements"]
    reg = ind.select(etab, "region", "53")
    assert set(reg.niveau) == {"lycee"} and set(reg.code_region) == {"53"}
    dep = ind.select(etab, "departement", "35")
    assert set(dep.niveau) == {"college"} and set(dep.code_departement) == {"35"}
    aca = ind.select(etab, "academie", "14")
    assert set(aca.niveau) == {"ecole", "college", "lycee"}
    assert len(ind.select(etab, "national", "FR")) == len(etab)
    assert set(ind.reference(etab, "departement").niveau) == {"college"}


def test_check_territory_refuses_unknown(tables):
    assert ind.check_territory("departement", "035") == "35"
    with pytest.raises(ConfigError, match="Codes possibles"):
        ind.check_territory("academie", "99")
    with pytest.raises(ConfigError, match="Valeurs possibles"):
        ind.check_territory("ministere", "FR")
    assert ind.check_territory("editeur", "editions alpha", tables) == "editions-alpha"
    assert ind.editeur_name(tables, "editions-alpha") == "Éditions Alpha"
    with pytest.raises(ConfigError, match="Éditeurs du catalogue"):
        ind.check_territory("editeur", "Inconnu", tables)


# --------------------------------------------------------------------------- territory values


def test_territory_values_ratio_and_national(tables):
    v = ind.territory_values(tables, "academie", "14")
    etab = tables["etablissements"]
    local = etab[etab.code_academie == "14"]
    assert v.at["etablissements", "valeur"] == len(local)
    assert v.at["etablissements", "valeur_nationale"] == len(etab)
    assert v.at["part_inscrits", "valeur"] == pytest.approx(local.inscrit.mean())
    assert v.at["part_inscrits", "ratio"] == pytest.approx(local.inscrit.mean() / etab.inscrit.mean())
    # the usage window is the last 12 months
    usage = tables["usage_mensuel"]
    w = usage[usage.mois.isin(MONTHS[-12:]) & usage.uai.isin(local.uai)]
    assert v.at["acces", "valeur"] == w.acces.sum()
    assert v.attrs["mois_reference"] == "2025-06"
    assert v.at["evolution_mois_an", "valeur"] == pytest.approx(
        usage[usage.uai.isin(local.uai) & (usage.mois == "2025-06")].acces.sum()
        / usage[usage.uai.isin(local.uai) & (usage.mois == "2024-06")].acces.sum() - 1)
    assert 0 < v.at["ressources_distinctes", "valeur"] <= 9


def test_region_compares_with_national_lycees(tables):
    v = ind.territory_values(tables, "region", "53")
    etab = tables["etablissements"]
    assert v.at["etablissements", "valeur_nationale"] == (etab.niveau == "lycee").sum()


def test_publishable_suppresses_people_and_shows_institutions():
    """Decided once (docs/indicators.md): counts of people and rates on them are suppressed; counts of
    schools and rates on them are facts about public institutions and are shown; zero is shown."""
    values = pd.DataFrame({"indicateur": ["etablissements", "inscrits", "part_inscrits", "acces", "eleves",
                                          "acces_par_eleve", "enseignants", "accedants"],
                           "valeur": [4, 3, 0.75, 1000.0, 3, 2.0, 0, 12],
                           "valeur_nationale": [400, 300, 0.75, 1e5, 1e4, 10.0, 100, 1000],
                           "ratio": [np.nan, np.nan, 1.0, np.nan, np.nan, 0.2, np.nan, np.nan]})
    values.index = values.indicateur
    pub = ind.publishable(values, threshold=5)
    assert pub.at["etablissements", "valeur"] == 4 and pub.at["inscrits", "valeur"] == 3
    assert pub.at["part_inscrits", "valeur"] == 0.75 and pub.at["part_inscrits", "ratio"] == 1.0
    assert pub.at["eleves", "valeur"] == "c"  # 3 pupils
    assert pub.at["acces_par_eleve", "valeur"] == "c" and pub.at["acces_par_eleve", "ratio"] == "c"
    assert pub.at["enseignants", "valeur"] == 0  # zero reveals no one
    assert pub.at["acces", "valeur"] == 1000.0 and pub.at["accedants", "valeur"] == 12


def test_by_unit_national_lists_academies(tables):
    t = ind.by_unit(tables, "national", "FR")
    assert sorted(t.code) == ["01", "14", "17"]
    assert set(t.nom) == {"Paris", "Rennes", "Nantes"}
    etab = tables["etablissements"]
    assert t.etablissements.sum() == len(etab)
    assert "ratio_part_inscrits" in t.columns
    rennes = t[t.code == "14"].iloc[0]
    share = etab[etab.code_academie == "14"].inscrit.mean()
    assert rennes.ratio_part_inscrits == pytest.approx(share / etab.inscrit.mean())
    dep = ind.by_unit(tables, "departement", "35")
    colleges = etab[(etab.code_departement == "35") & (etab.niveau == "college")]
    assert set(dep.code) == set(colleges.secteur) and dep.etablissements.sum() == len(colleges)
    pub = ind.publishable(dep, threshold=10**6)  # every count below: schools are still shown
    assert pub.etablissements.tolist() == dep.etablissements.tolist()
    assert pub.part_inscrits.tolist() == dep.part_inscrits.tolist()
    assert (pub.acces == "c").sum() == (dep.acces > 0).sum()


def test_school_list_and_its_disclosure(tables):
    sl = ind.school_list(tables, "departement", "35")
    etab = tables["etablissements"]
    assert set(sl.uai) == set(etab[(etab.code_departement == "35") & (etab.niveau == "college")].uai)
    assert set(sl.inscrit) <= {"oui", "non"} and set(sl.anomalies) <= {"oui", "non"}
    sl.loc[0, "acces"] = 3
    sl.loc[1, "eleves"] = 2
    pub = publish(sl, threshold=5)
    assert pub.loc[0, "acces"] == "c" and pub.loc[1, "acces_par_eleve"] == "c" and pub.loc[1, "eleves"] == "c"


def test_periode_cuts_usage_at_end_of_school_year():
    t = ind.Tables(frames=make_tables(60, seed=3), periode="2023-2024")
    assert t["usage_mensuel"].mois.max() == "2024-08"
    v = ind.territory_values(t, "national", "FR")
    assert v.attrs["mois_reference"] == "2024-06"
    with pytest.raises(ConfigError, match="Période invalide"):
        ind.Tables(periode="2024-2026")


def test_registration_by_level_and_sector(tables):
    r = ind.registration_by(tables, "academie", "14")
    etab = tables["etablissements"]
    row = r[(r.niveau == "college") & (r.secteur == "public")].iloc[0]
    sub = etab[(etab.code_academie == "14") & (etab.niveau == "college") & (etab.secteur == "public")]
    assert row.etablissements == len(sub) and row.part_inscrits == pytest.approx(sub.inscrit.mean())


def test_monthly_and_seasonality(tables):
    m = ind.monthly(tables, "national", "FR")
    assert m.mois.tolist() == MONTHS
    assert m.acces.sum() == tables["usage_mensuel"].acces.sum()
    assert (m.part_actifs <= 1).all()
    s = ind.seasonality(m)
    assert s.libelle.iloc[0] == "septembre" and len(s) == 12
    low = s.set_index("libelle").indice
    assert low["août"] < 50 < low["mars"]  # planted summer dip
    assert s.indice.mean() == pytest.approx(100)


def test_usage_mix_shares_sum_to_one(tables):
    mix = ind.usage_mix(tables, "academie", "17")
    for dim in ("profil", "support"):
        assert mix[mix.dimension == dim].part.sum() == pytest.approx(1)


def test_top_resources(tables):
    top = ind.top_resources(tables, "national", "FR", n=3)
    assert len(top) == 3 and top.acces.is_monotonic_decreasing
    assert set(top.editeur) <= set(PUBLISHERS)


# --------------------------------------------------------------------------- CRM, budget, anomalies


def test_conventions_by_territory(tables):
    nat = ind.conventions(tables, "national", "FR", today=pd.Timestamp("2025-08-31"))
    assert len(nat) == 5
    expiring = nat[nat.expire_bientot].acteur.tolist()
    assert sorted(expiring) == ["ENT-14", "Loire-Atlantique"]
    dep = ind.conventions(tables, "departement", "35")
    assert dep.acteur.tolist() == ["Ille-et-Vilaine"] and dep.statut.tolist() == ["en_attente"]
    aca = ind.conventions(tables, "academie", "14")
    assert set(aca.acteur) == {"Région Bretagne", "Ille-et-Vilaine"}
    paris = ind.conventions(tables, "academie", "01")
    assert paris.acteur.tolist() == ["Paris"]  # commune 75056 → département 75 → académie 01
    s = ind.conventions_summary(nat)
    assert s.set_index("type_acteur").loc["departement"].tolist() == [1, 1, 1]


def test_training_actions_per_quarter(tables):
    a = ind.training_actions(tables, "national", "FR")
    assert a.total.sum() == len(tables["actions"])
    assert a.periode.iloc[0] == "2023-T4"
    assert (a[["formation", "webinaire", "accompagnement"]].sum(axis=1) == a.total).all()


def test_budget_cost_per_access(tables):
    b = ind.budget(tables, "region", "53")
    assert b.annee.tolist() == [2024]
    row = b.iloc[0]
    assert row.part_gar == pytest.approx(0.4)
    usage, etab = tables["usage_mensuel"], tables["etablissements"]
    lyc = etab[(etab.code_region == "53") & (etab.niveau == "lycee")].uai
    acces = usage[usage.uai.isin(lyc) & usage.mois.str.startswith("2024")].acces.sum()
    months = sorted(usage.mois.unique())
    assert row.mois_acces == sum(m.startswith("2024") for m in months)
    assert row.acces == acces
    if row.mois_acces == 12:
        assert row.cout_pour_1000_acces == pytest.approx(1000 * 40000 / acces)
    else:  # a full year's spending is never divided by part of a year's accès
        assert np.isnan(row.cout_pour_1000_acces)
    aca = ind.budget(tables, "academie", "14")  # région 53 + département 35
    assert aca.iloc[0].depenses_ressources_numeriques == 150000
    assert ind.budget(tables, "national", "FR").iloc[0].dont_gar == 61000


def test_findings_and_summary(tables):
    etab = tables["etablissements"]
    f = ind.findings(tables, "national", "FR")
    assert len(f) == 3
    code = etab.code_academie[0]
    f14 = ind.findings(tables, "academie", code)
    assert set(f14.uai) == set(etab[etab.code_academie == code].uai) & set(f.uai)
    s = ind.anomalies_summary(f)
    assert s.set_index("regle").loc["doublon", "avertissements"] == 1
    assert s.iloc[0].erreurs == 1


# --------------------------------------------------------------------------- publisher isolation


def test_editeur_usage_contains_only_its_resources(tables):
    out = ind.editeur_usage(tables, "Éditions Alpha")
    own = {"Ressource 0", "Ressource 3", "Ressource 6"}
    assert set(out["par_ressource"].ressource) == own
    ar = tables["acces_ressources"]
    mine = ar[ar.editeur == "Éditions Alpha"]
    assert out["mensuel"].acces.sum() == mine.acces.sum()
    assert out["par_academie"].acces.sum() == mine[mine.mois.isin(MONTHS[-12:])].acces.sum()
    # no value in any output equals another publisher's own total (nor the grand total)
    others = {float(ar[ar.editeur == p].acces.sum()) for p in PUBLISHERS[1:]} | {float(ar.acces.sum())}
    numbers = {float(x) for df in (out["mensuel"], out["par_academie"], out["par_ressource"], out["par_support"])
               for x in df.select_dtypes("number").to_numpy().ravel() if not pd.isna(x)}
    numbers |= {float(x) for x in out["valeurs"].values()}
    assert not numbers & others
    text = " ".join(str(x) for df in (out["par_ressource"], out["par_academie"]) for x in df.to_numpy().ravel())
    assert "Beta" not in text and "Gamma" not in text


# --------------------------------------------------------------------------- key messages


def test_key_messages_follow_the_interval_rule_of_the_cards():
    """A strength or a lever is named only when its position (the cards' rule) says so (#14, item 10)."""
    values = pd.DataFrame({
        "indicateur": ["etablissements", "inscrits", "part_inscrits", "part_actifs_mois", "part_referents"],
        "valeur": [100, 90, 0.9, 0.3, 0.5], "valeur_nationale": [1000, 600, 0.6, 0.5, 0.45],
        "ratio": [np.nan, np.nan, 1.5, 0.6, 1.11], "position": [None, None, "au-dessus", "en-dessous", "conforme"]})
    values.index = values.indicateur
    forts, corriger = ind.key_messages(values, threshold=5)
    assert len(forts) == 1 and "90\u202f%" in forts[0] and "60\u202f%" in forts[0]
    assert len(corriger) == 1 and "piste d'action" in corriger[0] and "relancer" in corriger[0]
    assert not any(m.startswith("Part des établissements avec un référent") for m in forts + corriger)  # within
    within = values.assign(position="conforme")
    assert ind.key_messages(within, threshold=5) == ([], [])


def test_cards_and_messages_agree_on_the_sample(tables):
    """The card's ▲/▼ and the sentences come from the same positions (#14, item 10)."""
    from gar_analysis.reporting.display import headlines_html

    for code in ("01", "14", "17"):
        v = ind.territory_values(tables, "academie", code)
        pub = ind.publishable(v, 5)
        forts, corriger = ind.key_messages(v, 5)
        for name in ind.MESSAGE_LEVERS:
            card = headlines_html([ind.headline(pub, name)])
            label = ind.INDICATORS[name].label
            named_low = any(m.startswith(label) for m in corriger)
            assert ("▼" in card) == (v.at[name, "position"] == "en-dessous")
            if named_low:
                assert "▼" in card
            if "▼" not in card:
                assert not named_low


def test_unit_messages_name_only_units_outside_the_limits():
    rest = [0.62, 0.6, 0.6, 0.58, 0.6, 0.61, 0.59, 0.6, 0.57, 0.63, 0.6, 0.61, 0.6, 0.59, 0.6, 0.62, 0.58, 0.6]
    codes = [chr(65 + i) for i in range(len(rest) + 2)]
    units = pd.DataFrame({"code": codes, "nom": [f"Académie {k}" for k in codes],
                          "etablissements": [400] * len(codes), "part_inscrits": [0.95, *rest, 0.2]})
    last = codes[-1]
    forts, corriger = ind.unit_messages(units, 5, columns=("part_inscrits",), national={"part_inscrits": 0.6})
    assert len(forts) == 1 and "Académie A (95\u202f%)" in forts[0] and "Académie B" not in forts[0]
    assert len(corriger) == 1 and f"Académie {last} (20\u202f%)" in corriger[0] and "piste d'action" in corriger[0]
    assert "Académie J" not in corriger[0]  # 57 %, last but one, within the limits: never named for its rank
    same = units.assign(part_inscrits=0.6)
    assert ind.unit_messages(same, 5, columns=("part_inscrits",)) == ([], [])


def test_publishable_editeur_and_messages(tables):
    out = ind.editeur_usage(tables, "Beta Numérique")
    pub = ind.publishable_editeur(out, threshold=10**9)  # everything below: everything hidden
    assert pub["valeurs"]["acces"] == "c" and pub["valeurs"]["part_acces_mobile_tablette"] == "c"
    assert (pub["par_academie"]["ratio"] == "c").all() and (pub["mensuel"]["acces"] == "c").all()
    pub = ind.publishable_editeur(out, threshold=5)
    assert pub["valeurs"]["acces"] == out["valeurs"]["acces"]
    forts, _ = ind.editeur_messages(out, 5)
    assert forts and "Ressource" in forts[0]
    assert all("Alpha" not in s and "Gamma" not in s for s in forts)


def test_every_table_of_a_page_carries_its_disclosure_rule(tables):
    """publish() reads the rule the producing function attached; a table without one is refused."""
    m = publish(ind.monthly(tables, "national", "FR").head(3).assign(acces=[3, 100, 200], etablissements_actifs=[1, 20, 30]),
                threshold=5)
    # 3 hidden, and 100 with it: the months add up to the published 12-month total (secondary suppression)
    assert m.acces.tolist() == ["c", "c", 200] and m.etablissements_actifs.tolist() == [1, 20, 30]  # schools shown
    mix = ind.usage_mix(tables, "national", "FR")
    mix.loc[0, "acces"] = 2.0
    assert publish(mix, threshold=5).loc[0, ["acces", "part"]].tolist() == ["c", "c"]
    b = ind.budget(tables, "region", "53")
    b.loc[0, "acces"] = 2
    pb = publish(b, threshold=5)
    assert pb.acces.tolist() == ["c"] and pb.cout_pour_1000_acces.tolist() == ["c"]
    assert pb.dont_gar.tolist() == b.dont_gar.tolist()
    counts = publish(ind.anomalies_summary(pd.DataFrame({"regle": ["r", "r"], "gravite": ["erreur", "erreur"],
                                                           "uai": ["a", "b"]})), threshold=5)
    assert counts.iloc[0].tolist() == ["r", 2, 0, 0, 2]  # findings on institutions are shown
    for table in (ind.registration_by(tables, "national", "FR"), ind.top_resources(tables, "national", "FR"),
                  ind.training_actions(tables, "national", "FR"), ind.seasonality(ind.monthly(tables, "national", "FR")),
                  ind.school_list(tables, "departement", "35")):
        publish(table, threshold=5)  # each declares its rule
    with pytest.raises(ConfigError, match="secret statistique"):
        publish(pd.DataFrame({"n": [1]}))


def test_conventions_display_is_french(tables):
    conv = ind.conventions(tables, "national", "FR", today=pd.Timestamp("2025-08-31"))
    shown = ind.conventions_display(conv)
    assert conv.expire_bientot.iloc[0]  # expiring first
    assert set(shown["statut"]) <= {"signée", "en attente", "close"}
    assert "31/10/2025" in shown["Fin de validité"].tolist()
    assert "projet ENT" in shown["type_acteur"].tolist()


def test_title_and_headline(tables):
    assert ind.title("academie", "14") == "Tableau de bord du GAR — académie de Rennes"
    pub = ind.publishable(ind.territory_values(tables, "academie", "14"), 5)
    card = ind.headline(pub, "part_inscrits")
    assert card["kind"] == "percent" and 0 < card["value"] < 1 and card["ratio"] > 0
    assert "national" not in ind.headline(pub, "part_inscrits", national=False)


def test_values_table_formats_each_kind(tables):
    pub = ind.publishable(ind.territory_values(tables, "academie", "14"), 5)
    t = ind.values_table(pub).set_index("indicateur")
    assert t.loc["Part des établissements inscrits au GAR", "valeur"].endswith("\u202f%")
    assert "Accès des 3 derniers mois" not in t.index
    assert set(t.columns) == {"valeur", "valeur_nationale", "ratio"}
    assert list(ind.values_table(pub, national=False).columns) == ["indicateur", "valeur"]


def test_publishable_protects_implied_counts_and_counts_have_no_ratio(tables):
    values = pd.DataFrame({"indicateur": ["etablissements", "inscrits", "part_inscrits", "eleves",
                                          "acces_par_eleve", "delai_median_jours"],
                           "valeur": [5, 3, 0.6, 300, 0.01, 2.0], "valeur_nationale": [500, 300, 0.6, 3e4, 2.0, 30],
                           "ratio": [np.nan, np.nan, 1.0, np.nan, 0.005, 0.07]})
    values.index = values.indicateur
    pub = ind.publishable(values, 5)
    assert pub.at["part_inscrits", "valeur"] == 0.6  # 3 schools: an institutional fact, shown
    assert pub.at["acces_par_eleve", "valeur"] == "c"  # 0.01 × 300 pupils = 3 accès
    assert pub.at["etablissements", "valeur"] == 5
    v = ind.territory_values(tables, "academie", "14")
    assert v.loc[[k for k, i in ind.INDICATORS.items() if i.kind == "count" and not i.editeur], "ratio"].isna().all()


def test_registration_by_level_shows_school_counts_as_facts():
    reg = pd.DataFrame({"niveau": ["college", "lycee"], "secteur": ["public", "public"],
                        "etablissements": [10, 40], "inscrits": [3, 30], "part_inscrits": [0.3, 0.75],
                        "part_nationale": [0.5, 0.5], "ratio": [0.6, 1.5]})
    out = publish(with_spec(reg, Spec()), threshold=5)
    assert out.inscrits.tolist() == [3, 30] and out.part_inscrits.tolist() == [0.3, 0.75]


def test_docs_glossary_is_generated_from_the_registry():
    from gar_analysis.config import DOCS_DIR

    text = (DOCS_DIR / "indicators.md").read_text(encoding="utf-8")
    section = text.split("<!-- registre:start -->\n", 1)[1].split("<!-- registre:end -->", 1)[0]
    assert section.strip() == ind.registry_markdown().strip(), "python -m benchmarks.write_glossary"
    for name, i in ind.INDICATORS.items():
        assert i.definition and i.numerator and i.population and i.window, name
        assert i.denominator is None or i.denominator in ind.INDICATORS, name


def test_an_indicator_registered_but_not_computed_is_an_error(tables, monkeypatch):
    monkeypatch.setitem(ind.INDICATORS, "nouvel_indicateur", ind.Indicator("nouvel_indicateur", "Nouveau", "count"))
    with pytest.raises(ConfigError, match="nouvel_indicateur"):
        ind.territory_values(tables, "academie", "14")


def test_figures_exclude_what_the_checks_reject_and_the_page_says_so(tables):
    """#14 item 8: « Ressources distinctes utilisées : 71 » with 60 in the catalogue (11 unknown ids)."""
    frames = dict(tables._frames) if isinstance(tables, ind.Tables) else dict(tables)
    ar = frames["acces_ressources"].copy()
    months = ind.window(frames["usage_mensuel"])
    row = ar[ar["mois"].astype(str).isin(months) & (ar["acces"] > 0)].iloc[[0]].copy()
    ar = pd.concat([ar, row.assign(id_ressource="INCONNUE", acces=3)], ignore_index=True)
    frames["acces_ressources"] = ar
    t = ind.Tables(frames=frames)
    v = ind.territory_values(t, "national", "FR")
    catalogue = set(frames["ressources"]["id_ressource"])
    used = ar[ar["mois"].astype(str).isin(months) & (ar["acces"] > 0)]
    assert v.at["ressources_distinctes", "valeur"] == used.loc[used["id_ressource"].isin(catalogue),
                                                               "id_ressource"].nunique()
    excl = ind.exclusions(t, "national", "FR")
    assert excl["ressources_inconnues"] == 1 and excl["acces_ressources_inconnues"] == 3
    text = ind.exclusions_text(excl, 5)
    assert "1 identifiant(s) de ressource absent(s) du catalogue (c accès)" in text  # 3 accès: a count of acts


def test_publisher_messages_name_an_academie_only_outside_the_limits(tables):
    """#14 item 10 for the publisher's page: « the highest » was named for its rank alone."""
    from gar_analysis.gaps import funnel_table

    for pid in ind.editeurs(tables):
        out = ind.editeur_usage(tables, pid)
        forts, _ = ind.editeur_messages(out, 5)
        pa = out["par_academie"]
        if len(pa) < 3:
            continue
        t = funnel_table(pa.assign(unit=pa["code"].astype(str)), "acces", "etablissements", "unit", kind="rate")
        flagged = set(pa.set_index(pa["code"].astype(str)).loc[t.loc[t["position_998"] == "au-dessus", "unit"], "nom"])
        named = " ".join(m for m in forts if m.startswith("Académies où"))
        assert all(f"{nom} (" not in named for nom in set(pa["nom"]) - flagged), named  # never for a rank alone
        assert bool(named) == bool(flagged)  # and every page with a flagged académie says so
