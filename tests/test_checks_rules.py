"""Unit tests of each quality rule on a tiny, clean data directory with one planted defect."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gar_analysis.checks import RULES, run_checks
from gar_analysis.checks.context import uai_status

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
MONTHS = pd.period_range("2023-09", "2024-08", freq="M").strftime("%Y-%m").tolist()
#: Seasonal pattern of the tiny world (August is a holiday month).
SEASON = [1.0, 0.8, 1.1, 0.9, 1.0, 0.7, 1.1, 0.8, 1.0, 0.6, 0.2, 0.02]
ANNUAIRE_HEADER = (
    "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Adresse_1;Adresse_2;"
    "Adresse_3;Code postal;Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;Ecole_maternelle;"
    "Ecole_elementaire;Voie_generale;Voie_technologique;Voie_professionnelle;Telephone;Fax;Web;Mail;Restauration;"
    "Hebergement;ULIS;Apprentissage;Segpa;Section_arts;Section_cinema;Section_theatre;Section_sport;"
    "Section_internationale;Section_europeenne;Lycee_Agricole;Lycee_militaire;Lycee_des_metiers;Post_BAC;"
    "Appartenance_Education_Prioritaire;GRETA;SIREN_SIRET;Nombre_d_eleves;Fiche_onisep;position;Type_contrat_prive;"
    "Libelle_departement;Libelle_academie;Libelle_region;coordonnee_X;coordonnee_Y;epsg;nom_circonscription;latitude;"
    "longitude;precision_localisation;date_ouverture;date_maj_ligne;etat;ministere_tutelle;etablissement_multi_lignes;"
    "rpi_concentre;rpi_disperse;code_nature;libelle_nature;Code_type_contrat_prive;PIAL;etablissement_mere;"
    "type_rattachement_etablissement_mere;code_bassin_formation;libelle_bassin_formation").split(";")


def uai(n: int) -> str:
    """Return a valid UAI built on the number ``n`` (département 035)."""
    num = 350000 + n
    return f"{num:07d}{LETTERS[num % 23]}"


SCHOOLS = [uai(i) for i in range(1, 5)]


def clean_world() -> dict[str, pd.DataFrame]:
    """Return a small, fully consistent data directory as frames of strings."""
    ann = pd.DataFrame("", index=range(len(SCHOOLS)), columns=ANNUAIRE_HEADER)
    ann["Identifiant_de_l_etablissement"] = SCHOOLS
    ann["Nom_etablissement"] = [f"Collège {i}" for i in range(len(SCHOOLS))]
    ann["Type_etablissement"] = "Collège"
    ann["Statut_public_prive"] = "Public"
    ann["Code_commune"] = "35238"
    ann["Nom_commune"] = "Rennes"
    ann["Code_departement"] = "035"
    ann["Code_academie"] = "14"
    ann["Code_region"] = "53"
    ann["Nombre_d_eleves"] = "300"
    ann["latitude"] = "48.1"
    ann["longitude"] = "-1.68"
    ann["etat"] = "OUVERT"
    ann["etablissement_multi_lignes"] = "0"
    ips = pd.DataFrame({"Rentrée scolaire": "2022-2023", "Académie": "RENNES", "Code du département": "035",
                        "Département": "ILLE-ET-VILAINE", "UAI": SCHOOLS, "Nom de l'établissment": "COLLEGE",
                        "Code INSEE de la commune": "35238", "Nom de la commune": "RENNES", "Secteur": "public",
                        "Effectifs": "300", "IPS": ["95.1", "110.2", "101.0", "88.0"], "Ecart-type de l'IPS": "30.1"})
    rows_acces, rows_aff, rows_dnma = [], [], []
    for k, u in enumerate(SCHOOLS):
        for m, s in zip(MONTHS, SEASON):
            n = max(1, int(round((400 + 100 * k) * s)))
            rows_acces.append({"mois": m, "uai": u, "id_ressource": "R1", "profil": "eleve",
                               "support": "ordinateur", "acces": n})
            rows_aff.append({"mois": m, "uai": u, "id_ressource": "R1", "profil": "eleve", "affectations": 100})
            rows_dnma.append({"mois": m, "uai": u, "ent": "ENT-35", "visites": 500, "visiteurs": 120})
    frames = {
        "referentiel/annuaire": ann,
        "referentiel/ips_colleges": ips,
        "gar/etablissements": pd.DataFrame({"uai": SCHOOLS, "date_inscription": "2023-09-01",
                                            "mediacentre": "ENT-35", "projet_ent": "Toutatice"}),
        "gar/ressources": pd.DataFrame({"id_ressource": ["R1", "R2"], "nom": ["Manuel", "Dictionnaire"],
                                        "editeur": ["Éditeur A", "Éditeur B"], "type_ressource": "manuel",
                                        "degre": "second"}),
        "gar/abonnements": pd.DataFrame({"id_abonnement": [f"AB{i}" for i in range(len(SCHOOLS))], "uai": SCHOOLS,
                                         "id_ressource": "R1", "date_debut": "2023-09-01", "date_fin": "2025-08-31",
                                         "licences": 500, "montant_ht": 1200.5}),
        "gar/affectations": pd.DataFrame(rows_aff),
        "gar/accedants": pd.DataFrame({"annee_scolaire": "2023-2024", "uai": SCHOOLS, "profil": "eleve",
                                       "accedants": 250}),
        "gar/acces": pd.DataFrame(rows_acces),
        "dnma/audience": pd.DataFrame(rows_dnma),
        "crm/acteurs": pd.DataFrame({"id_acteur": ["A1", "A2"], "type": ["etablissement", "region"],
                                     "nom": ["Collège 0", "Région Bretagne"], "code": [SCHOOLS[0], "53"]}),
        "crm/contrats": pd.DataFrame({"id_contrat": ["C1"], "id_acteur": ["A2"], "objet": ["convention_gar"],
                                      "date_signature": ["2023-06-01"], "date_debut": ["2023-09-01"],
                                      "date_fin": ["2026-08-31"], "statut": ["signe"]}),
        "crm/contacts": pd.DataFrame({"id_contact": ["K1"], "id_acteur": ["A1"], "role": ["referent_gar"]}),
        "crm/actions": pd.DataFrame({"date": ["2024-01-15"], "uai": [SCHOOLS[0]], "type_action": ["formation"]}),
        "budget/depenses": pd.DataFrame({"annee": [2024], "niveau": ["region"], "code": ["53"],
                                         "depenses_ressources_numeriques": [1000.0], "dont_gar": [500.0]}),
    }
    return frames


def write_world(frames: dict[str, pd.DataFrame], root: Path) -> Path:
    """Write frames as a data directory (``;``-separated CSV, UTF-8)."""
    for name, df in frames.items():
        path = root / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, sep=";", index=False)
    return root


def serious(findings: pd.DataFrame) -> pd.DataFrame:
    """Return the findings that are not mere information."""
    return findings[findings["gravite"] != "info"]


def run_with(tmp_path, mutate=None, drop=()):
    frames = clean_world()
    for name in drop:
        frames.pop(name)
    if mutate:
        mutate(frames)
    return run_checks(write_world(frames, tmp_path))


def only_rule(findings, regle):
    """Assert that every serious finding is of rule ``regle`` and return them."""
    s = serious(findings)
    assert set(s["regle"]) == {regle}, s[["regle", "source", "ligne", "uai", "mois", "message"]].to_string()
    return s


# --------------------------------------------------------------------------- basics

def test_every_issue_rule_is_registered():
    ids = {"uai_invalide", "doublon", "uai_inconnu", "ressource_inconnue", "territoire_incoherent",
           "acces_avant_inscription", "acces_sans_abonnement", "periode_invalide", "valeur_negative",
           "accedants_sup_effectif", "affectations_sup_licences", "rupture_serie", "mois_manquant",
           "incoherence_dnma", "ips_hors_plage", "depense_incoherente"}
    assert ids <= set(RULES)
    for r in RULES.values():
        assert r.explication and r.action and r.titre


def test_uai_check_letter():
    ok, expected = uai_status(pd.Series(["0350122T", "0350122A", "035012T", "0350122t", None, "0351122O"]))
    assert ok.tolist() == [True, False, False, False, False, False]
    assert expected[1] == "T"


def test_clean_world_has_no_serious_finding(tmp_path):
    f = run_with(tmp_path)
    assert serious(f).empty, serious(f).to_string()
    assert list(f.columns) == ["regle", "gravite", "source", "ligne", "uai", "mois", "id_ressource", "message"]
    assert f.attrs["lignes"]["gar/acces.csv"] == len(SCHOOLS) * len(MONTHS)


def test_missing_files_skip_rules_with_one_info_each(tmp_path):
    frames = {"referentiel/annuaire": clean_world()["referentiel/annuaire"]}
    f = run_checks(write_world(frames, tmp_path))
    skipped = f[f["message"].str.contains("non effectué")]
    assert (skipped["gravite"] == "info").all()
    assert skipped["regle"].is_unique
    assert {"acces_sans_abonnement", "rupture_serie", "depense_incoherente", "uai_inconnu"} <= set(skipped["regle"])
    assert "uai_invalide" not in set(skipped["regle"])  # runs on the register alone
    row = skipped.set_index("regle").loc["depense_incoherente"]
    assert row["source"] == "budget/depenses.csv"


# --------------------------------------------------------------------------- one defect per rule
# Every rule's defect is planted on its own keys in ONE directory (loading costs more than checking):
# each test asserts that its rule finds exactly its defect, and the collateral test that nothing else fires.
N = len(SCHOOLS) * len(MONTHS)
EXTRA_UAI = "0350001X"          # wrong check letter (expected: L)
UNKNOWN_UAI = uai(99)


def _append(fr, name, rows):
    fr[name] = pd.concat([fr[name], rows], ignore_index=True)


def plant_all(fr):
    """Plant one defect per rule, each on keys no other defect touches."""
    a = fr["gar/acces"]                                     # row k*12 + m: school k, month m
    a.loc[2, "acces"] = a.loc[2, "acces"] * 12                                         # rupture_serie: spike
    a.loc[12 + 4, "acces"] = 5                                                         # rupture_serie: collapse
    a.loc[24 + 3, "acces"] = 0                                                         # mois_manquant (row dropped)
    _append(fr, "gar/acces", a.iloc[[5]].assign(uai=EXTRA_UAI))                       # uai_invalide, line N+2
    fr["crm/actions"].loc[0, "uai"] = "35AB12"                                         # uai_invalide
    _append(fr, "gar/acces", fr["gar/acces"].iloc[[3]])                                # doublon, line N+3
    ann = fr["referentiel/annuaire"]
    extra = ann.iloc[[1]].copy()
    ann.loc[1, "etablissement_multi_lignes"] = "1"
    extra["etablissement_multi_lignes"] = "1"
    fr["referentiel/annuaire"] = pd.concat([ann, extra], ignore_index=True)           # doublon info
    fr["dnma/audience"].loc[[0, 1], "uai"] = UNKNOWN_UAI                               # uai_inconnu
    _append(fr, "gar/acces", a.iloc[[14]].assign(id_ressource="R9"))                 # ressource_inconnue N+4
    fr["referentiel/annuaire"].loc[0, "Code_academie"] = "12"                          # territoire_incoherent
    fr["referentiel/annuaire"].loc[2, "Code_commune"] = "29019"                        # territoire_incoherent
    fr["gar/etablissements"].loc[1, "date_inscription"] = "2023-11-15"                 # acces_avant_inscription
    _append(fr, "gar/acces", a.iloc[[7]].assign(id_ressource="R2"))                   # acces_sans_abonnement
    ab = fr["gar/abonnements"]
    ab.loc[2, ["date_debut", "date_fin"]] = ["2025-08-31", "2023-09-01"]               # periode_invalide
    fr["crm/contrats"].loc[0, "date_fin"] = "2022-01-01"                               # periode_invalide
    fr["gar/abonnements"].loc[0, "montant_ht"] = -5                                    # valeur_negative
    fr["dnma/audience"].loc[4, "visiteurs"] = -1                                       # valeur_negative
    fr["gar/accedants"].loc[3, "accedants"] = 301                                      # accedants_sup_effectif
    fr["gar/affectations"].loc[13, "affectations"] = 600                               # affectations_sup_licences
    fr["dnma/audience"].loc[30, ["visites", "visiteurs"]] = [0, 0]                     # incoherence_dnma
    fr["referentiel/ips_colleges"].loc[1, "IPS"] = "1102"                              # ips_hors_plage
    fr["referentiel/ips_colleges"].loc[2, "IPS"] = "NS"                                # valeur_non_exploitable
    fr["budget/depenses"].loc[0, "dont_gar"] = 1500.0                                  # depense_incoherente
    fr["gar/acces"] = fr["gar/acces"][fr["gar/acces"]["acces"] != 0].reset_index(drop=True)


#: rule → expected serious findings as (source, ligne, uai, mois)
EXPECTED = {
    "uai_invalide": {("gar/acces.csv", N + 1, EXTRA_UAI, MONTHS[5]), ("crm/actions.csv", 2, "35AB12", None)},
    "doublon": {("gar/acces.csv", N + 2, SCHOOLS[0], MONTHS[3])},
    "uai_inconnu": {("dnma/audience.csv", 2, UNKNOWN_UAI, None)},
    "ressource_inconnue": {("gar/acces.csv", N + 3, SCHOOLS[1], MONTHS[2])},
    "territoire_incoherent": {("referentiel/annuaire.csv", 2, SCHOOLS[0], None),
                              ("referentiel/annuaire.csv", 4, SCHOOLS[2], None)},
    "acces_avant_inscription": {("gar/acces.csv", 14, SCHOOLS[1], MONTHS[0]),
                                ("gar/acces.csv", 15, SCHOOLS[1], MONTHS[1])},
    "acces_sans_abonnement": {("gar/acces.csv", N + 4, SCHOOLS[0], MONTHS[7])},
    "periode_invalide": {("gar/abonnements.csv", 4, SCHOOLS[2], None), ("crm/contrats.csv", 2, None, None)},
    "valeur_negative": {("gar/abonnements.csv", 2, SCHOOLS[0], None), ("dnma/audience.csv", 6, SCHOOLS[0], MONTHS[4])},
    "accedants_sup_effectif": {("gar/accedants.csv", 5, SCHOOLS[3], None)},
    "affectations_sup_licences": {("gar/affectations.csv", 15, SCHOOLS[1], MONTHS[1])},
    "rupture_serie": {("gar/acces.csv", 4, SCHOOLS[0], MONTHS[2]), ("gar/acces.csv", 18, SCHOOLS[1], MONTHS[4])},
    "mois_manquant": {("gar/acces.csv", None, SCHOOLS[2], MONTHS[3])},
    "incoherence_dnma": {("dnma/audience.csv", 32, SCHOOLS[2], MONTHS[6])},
    "ips_hors_plage": {("referentiel/ips_colleges.csv", 3, SCHOOLS[1], None)},
    "depense_incoherente": {("budget/depenses.csv", 2, None, None)},
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    frames = clean_world()
    plant_all(frames)
    return run_checks(write_world(frames, tmp_path_factory.mktemp("planted")))


def _keys(df):
    def na(v):
        return None if pd.isna(v) else (int(v) if isinstance(v, (int,)) or hasattr(v, "__index__") else v)
    return {(r.source, na(r.ligne), na(r.uai), na(r.mois)) for r in df.itertuples()}


@pytest.mark.parametrize("regle", sorted(EXPECTED))
def test_rule_finds_exactly_its_defect(planted, regle):
    got = serious(planted[planted["regle"] == regle])
    assert _keys(got) == EXPECTED[regle], got.to_string()
    assert got["message"].str.len().gt(20).all()


def test_no_collateral_finding(planted):
    got = serious(planted)
    assert set(got["regle"]) == set(EXPECTED)
    assert len(got) == sum(len(v) for v in EXPECTED.values()), got.to_string()


def test_messages_say_what_to_do(planted):
    def text(regle):
        return " ".join(planted.loc[planted["regle"] == regle, "message"])
    assert "lettre de contrôle attendue est « L »" in text("uai_invalide")
    assert "académie attendue : 14" in text("territoire_incoherent")
    assert "commune 29019" in text("territoire_incoherent")
    assert "pic" in text("rupture_serie") and "chute" in text("rupture_serie")
    assert "Région 53, 2024" in text("depense_incoherente")
    assert "(-5)" in text("valeur_negative")


def test_register_multi_line_is_information(planted):
    info = planted[(planted["regle"] == "doublon") & (planted["gravite"] == "info")]
    assert info["uai"].tolist() == [SCHOOLS[1]] and info["ligne"].tolist() == [len(SCHOOLS) + 2]
    assert "multi-lignes" in info.iloc[0]["message"]


def test_ips_ns_becomes_information(planted):
    ns = planted[planted["regle"] == "valeur_non_exploitable"]
    assert ns[["uai", "ligne"]].values.tolist() == [[SCHOOLS[2], 4]]
    assert "NS" in ns.iloc[0]["message"] and (ns["gravite"] == "info").all()


def test_accedants_falls_back_on_ips_effectifs(tmp_path):
    def mutate(fr):
        fr["referentiel/annuaire"]["Nombre_d_eleves"] = ""
        fr["referentiel/ips_colleges"].loc[0, "Effectifs"] = "200"
    f = only_rule(run_with(tmp_path, mutate), "accedants_sup_effectif")
    assert f["uai"].tolist() == [SCHOOLS[0]]


def test_unusable_file_is_a_finding_and_no_readable_file_raises(tmp_path):
    from gar_analysis.errors import DataError

    frames = clean_world()
    write_world(frames, tmp_path)
    (tmp_path / "gar/acces.csv").write_text("mois,uai,id_ressource,profil,support,acces\n", encoding="utf-8")
    f = run_checks(tmp_path)
    bad = f[f["regle"] == "fichier_illisible"]
    assert bad["source"].tolist() == ["gar/acces.csv"] and "séparateur" in bad["message"].iloc[0]
    skipped = f[(f["regle"] == "rupture_serie") & (f["gravite"] == "info")]
    assert "illisible" in skipped["message"].iloc[0]
    only = tmp_path / "only"
    (only / "gar").mkdir(parents=True)
    (only / "gar/acces.csv").write_text("mois,uai,id_ressource,profil,support,acces\n", encoding="utf-8")
    with pytest.raises(DataError, match="séparateur"):
        run_checks(only)
