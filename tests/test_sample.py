"""Tests of the sample generator: files, layouts, determinism, internal consistency, planted truth."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gar_analysis import config, territories
from gar_analysis.contract import CONTRACT, REFERENCE_FILES, read_contract_file
from gar_analysis.io import sha256_file
from gar_analysis.sample import build_frames, generate, uai_letter
from gar_analysis.sample import generator as gen
from gar_analysis.sources import DataDir

SEED = 7
TERMS = ["Intercept", "referent", "formation", "convention", "ips_10", "rural", "niveau[T.college]",
         "niveau[T.lycee]", "secteur[T.prive]"]


@pytest.fixture(scope="module")
def mini_dir(tmp_path_factory):
    """A small sample written to disk (anomalies planted)."""
    out = tmp_path_factory.mktemp("mini") / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = generate(out, seed=SEED, scale="mini")
    return out, truth


@pytest.fixture(scope="module")
def clean():
    """The clean frames of a small sample (before anomalies), its truth and its internal school table."""
    captured = {}
    original = gen._registration

    def spy(s, p, period, rng):
        original(s, p, period, rng)
        captured["s"] = s

    gen._registration = spy
    try:
        frames, truth = build_frames(SEED, "mini", 2)
    finally:
        gen._registration = original
    return frames, truth, captured["s"]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- files and layouts

def test_every_contract_and_register_file_loads(mini_dir):
    out, _ = mini_dir
    ds = DataDir(out)
    assert ds.is_simulated and ds.truth["seed"] == SEED
    for name in [n for n in [*CONTRACT, *REFERENCE_FILES] if n != "dnma/audience"]:  # DNMA: published layout
        assert ds.has(name), name
        df = ds.get(name)
        assert len(df) > 0, name
    for name in [n for n in CONTRACT if n != "dnma/audience"]:
        assert list(read_contract_file(out, name).columns[: len(CONTRACT[name].names)]) == CONTRACT[name].names


def test_register_has_real_2023_header_and_codes(mini_dir):
    out, _ = mini_dir
    header = (out / "referentiel/annuaire.csv").read_text(encoding="utf-8-sig").split("\n", 1)[0].split(";")
    assert header == gen.ANNUAIRE_HEADER and len(header) == 69
    real = config.SHARED_OPENDATA_DIR / "dept35-ille-et-vilaine/fr-en-annuaire-education.csv"
    if real.exists():
        assert header == real.read_text(encoding="utf-8-sig").split("\n", 1)[0].split(";")
    raw = pd.read_csv(out / "referentiel/annuaire.csv", sep=";", dtype=str, keep_default_na=False,
                      encoding="utf-8-sig")
    clean_rows = raw[raw.Code_departement.str.len() == 3]
    assert "035" in set(clean_rows.Code_departement)
    ann = DataDir(out).annuaire
    assert set(ann.code_departement.dropna()) >= set(territories.departements().code_departement)
    assert ann.nombre_eleves.notna().mean() > 0.99


@pytest.mark.parametrize("name, real", [
    ("referentiel/ips_ecoles", "ips-ecoles-2021/fr-en-ips_ecoles.csv"),
    ("referentiel/ips_colleges", "ips-colleges-2022/fr-en-ips-colleges-ap2022.csv")])
def test_ips_label_layouts_match_real_headers(mini_dir, name, real):
    out, _ = mini_dir
    path = config.SHARED_OPENDATA_DIR / real
    if not path.exists():
        pytest.skip("données réelles absentes")
    ours = (out / REFERENCE_FILES[name]).read_text(encoding="utf-8-sig").split("\n", 1)[0]
    assert ours == path.read_text(encoding="utf-8-sig").split("\n", 1)[0]


def test_ips_lycees_uses_parquet_field_ids(mini_dir):
    out, _ = mini_dir
    path = config.SHARED_OPENDATA_DIR / "ips-lycees-2022/fr-en-ips-lycees-ap2022.parquet"
    header = (out / "referentiel/ips_lycees.csv").read_text(encoding="utf-8").split("\n", 1)[0].split(";")
    assert header == gen.IPS_LYCEES_HEADER
    if path.exists():
        assert header == list(pd.read_parquet(path).columns)


def test_uais_valid_unique_and_territories_complete(clean):
    frames, _, _ = clean
    ann = frames["referentiel/annuaire"]
    uai = ann.Identifiant_de_l_etablissement
    assert uai.is_unique
    assert uai.str.fullmatch(r"\d{7}[A-Z]").all()
    digits = uai.str[:7].astype(int).to_numpy()
    assert (uai.str[7].to_numpy() == uai_letter(digits)).all()
    assert ann.Code_departement.nunique() == 101
    assert ann.Code_academie.nunique() == 30 and ann.Code_region.nunique() == 18
    assert uai[ann.Code_departement == "02A"].str.startswith("620").all()
    assert uai[ann.Code_departement == "035"].str.startswith("035").all()
    assert set(ann.Type_etablissement) == {"Ecole", "Collège", "Lycée"}


def test_uai_letter_matches_real_examples():
    # UAIs published in the real register of Ille-et-Vilaine.
    assert list(uai_letter(np.array([350122, 352958, 351962]))) == ["T", "A", "T"]


# --------------------------------------------------------------------------- determinism

def test_same_seed_gives_identical_files(tmp_path, mini_dir):
    """A second run, in another process with another hash seed, writes byte-identical files."""
    out, _ = mini_dir
    code = ("import sys, warnings; warnings.simplefilter('ignore'); from gar_analysis.sample import generate; "
            f"generate(sys.argv[1], seed={SEED}, scale='mini')")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first, second = _hashes(out), _hashes(tmp_path / "b")
    assert len(first) >= len(CONTRACT) + len(REFERENCE_FILES) + 1
    assert first == second
    other, _ = build_frames(SEED + 1, "mini", 1)
    ours = pd.read_csv(out / "gar/acces.csv", sep=";", dtype=str)
    assert not ours.head(1000).equals(other["gar/acces"].astype(str).head(1000))


# --------------------------------------------------------------------------- consistency (clean frames)

def test_acces_only_on_active_subscriptions_after_registration(clean):
    frames, _, _ = clean
    acc, ab, et = frames["gar/acces"], frames["gar/abonnements"], frames["gar/etablissements"]
    assert (acc.acces > 0).all()
    assert set(acc.profil) <= set(gen.PROFILS) and set(acc.support) == set(gen.SUPPORTS)
    reg = et.set_index("uai").date_inscription.str[:7]
    assert (acc.mois >= acc.uai.map(reg)).all()
    keys = acc[["mois", "uai", "id_ressource"]].drop_duplicates()
    m = keys.merge(ab, on=["uai", "id_ressource"], how="left")
    active = (m.date_debut.str[:7] <= m.mois) & (m.date_fin.str[:7] >= m.mois)
    ok = active.groupby([m.mois, m.uai, m.id_ressource]).any()
    assert ok.all() and len(ok) == len(keys)


def test_affectations_within_licences_and_accedants_within_enrolment(clean):
    frames, _, _ = clean
    aff, ab = frames["gar/affectations"], frames["gar/abonnements"]
    tot = aff.groupby(["mois", "uai", "id_ressource"]).affectations.sum().reset_index()
    m = tot.merge(ab, on=["uai", "id_ressource"])
    m = m[(m.date_debut.str[:7] <= m.mois) & (m.date_fin.str[:7] >= m.mois)]
    lic = m.groupby(["mois", "uai", "id_ressource"]).agg(a=("affectations", "first"), l=("licences", "sum"))
    assert len(lic) == len(tot) and (lic.a <= lic.l).all()
    ann = frames["referentiel/annuaire"].set_index("Identifiant_de_l_etablissement")
    eleves = ann.Nombre_d_eleves.astype(int)
    acc = frames["gar/accedants"]
    el = acc[acc.profil == "eleve"]
    assert (el.accedants.to_numpy() <= el.uai.map(eleves).to_numpy()).all()
    act = frames["gar/accedants_actifs"]
    per = frames["gar/acces"].groupby(["mois", "uai", "profil"]).acces.sum()
    assert (act.set_index(["mois", "uai", "profil"]).accedants_actifs <= per.reindex(
        act.set_index(["mois", "uai", "profil"]).index)).all()


def test_dnma_has_visits_wherever_acces_and_budget_consistent(clean):
    frames, _, _ = clean
    aud = frames["dnma/profils"].set_index(["debutSemaine", "UAI"])
    assert aud.index.is_unique and "dnma/audience" not in frames
    assert (pd.to_numeric(aud.utilisateurs_globales, errors="coerce").fillna(0) <= aud.visites_globales).all()
    sv = frames["dnma/services"]
    week = pd.to_datetime(sv.debutsemaine)
    ent = sv.assign(mois=week.dt.strftime("%Y-%m")).groupby(["mois", "uai"]).visites_manuel_numerique.sum()
    acc = frames["gar/acces"].groupby(["mois", "uai"]).acces.sum()
    both = acc.index.intersection(ent.index)
    assert len(both) > 0 and (ent.loc[both] > 0).mean() > 0.9  # ENT resource visits follow GAR accès
    bud = frames["budget/depenses"]
    assert (bud.dont_gar <= bud.depenses_ressources_numeriques).all() and (bud.dont_gar > 0).any()


def test_realistic_shares(clean):
    frames, truth, _ = clean
    acc = frames["gar/acces"]
    share = acc.groupby("support").acces.sum() / acc.acces.sum()
    assert 0.15 <= share["mobile"] <= 0.25 and share["tablette"] > 0.03
    prof = acc.groupby("profil").acces.sum() / acc.acces.sum()
    assert prof["eleve"] > 0.6 and prof["enseignant"] > 0.1
    month = acc.groupby(acc.mois.str[5:]).acces.sum()
    assert month["08"] < 0.1 * month["03"] and month["12"] < month["01"]
    years = acc.groupby(acc.mois < "2024-09").acces.sum()
    assert years[False] > years[True]  # growth
    ctr = frames["crm/contrats"]
    assert set(ctr.statut) == {"en_attente", "signe", "clos"}
    assert (ctr.date_signature[ctr.statut == "en_attente"] == "").all()
    assert set(frames["crm/actions"].type_action) == {"formation", "webinaire", "accompagnement"}
    assert 40 <= len(frames["gar/ressources"]) <= 80 and frames["gar/ressources"].editeur.nunique() >= 10
    et = frames["gar/etablissements"]
    assert 0.03 < (et.mediacentre == "EduGAR").mean() < 0.2
    assert et.date_inscription.str[:7].nunique() > 24  # deployment spread over many months
    assert et.date_inscription.min() >= "2017-09-01" and et.date_inscription.max() <= "2025-08-31"


def test_yearly_totals_preserved_by_the_split(clean):
    frames, truth, _ = clean
    acc = frames["gar/acces"]
    year = acc[(acc.mois >= "2024-09") & (acc.mois <= "2025-08")]
    assert int(year.acces.sum()) == truth["effectifs"]["acces_annee_usage"]


# --------------------------------------------------------------------------- truth

def test_truth_format(mini_dir):
    out, truth = mini_dir
    on_disk = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(truth, default=str))
    assert on_disk["seed"] == SEED and on_disk["periode"] == {"debut": "2023-09", "fin": "2025-08"}
    ad, us = on_disk["effects"]["adoption"], on_disk["effects"]["usage"]
    assert ad["family"] == "binomial" and ad["outcome"] == "inscrit"
    assert us["family"] == "negative_binomial" and us["exposure"] == "nombre_eleves"
    assert us["annee_scolaire"] == "2024-2025" and us["alpha"] > 0
    for eff in (ad, us):
        assert list(eff["terms"]) == TERMS
        assert sorted(eff["academie"]) == sorted(territories.academies().code_academie)
        values = np.array(list(eff["academie"].values()))
        assert 0.15 < values.std() < 0.5
    for a in on_disk["anomalies"]:
        assert {"regle", "source", "uai", "mois", "id_ressource"} <= set(a)


def test_factors_from_files_match_generation(clean):
    """The build's definitions of référent, formation and convention hold in the files."""
    frames, _, s = clean
    act, cts, ctr = frames["crm/acteurs"], frames["crm/contacts"], frames["crm/actions"]
    ref_ids = set(cts.id_acteur[cts.role == "referent_gar"])
    referent = set(act.code[(act.type == "etablissement") & act.id_acteur.isin(ref_ids)])
    assert (s.uai.isin(referent) == s.referent).all()
    formation = set(ctr.uai[ctr.type_action == "formation"])
    assert (s.uai.isin(formation) == s.formation).all()
    contrats = frames["crm/contrats"]
    signed = act[act.id_acteur.isin(contrats.id_acteur[(contrats.objet == "convention_gar")
                                                       & (contrats.statut == "signe")])]
    keys = set(zip(signed.type, signed.code))
    conv = [(("commune", c) if n == "ecole" else ("departement", d) if n == "college" else ("region", r)) in keys
            for n, c, d, r in zip(s.niveau, s.code_commune, s.code_departement, s.code_region)]
    assert (np.array(conv) == s.convention.to_numpy()).all()
    assert 0.2 < s.referent.mean() < 0.5 and 0.15 < s.formation.mean() < 0.45 and 0.3 < s.convention.mean() < 0.7
    assert 0.05 < s.rural.mean() < 0.6


# --------------------------------------------------------------------------- CLI and errors

def test_cli_parser_defaults_and_bad_values():
    from gar_analysis.cli import build_parser
    from gar_analysis.errors import ConfigError
    from gar_analysis.sample.cli import run

    args = build_parser().parse_args(["sample"])
    assert args.out == config.SAMPLE_DIR and args.seed == config.SAMPLE_SEED
    assert args.scale == "default" and args.years == 2 and args.events == 0
    with pytest.raises(ConfigError, match="--years"):
        run(argparse.Namespace(out=Path("/nonexistent"), seed=1, scale="mini", years=0, events=0, events_out=None))
    with pytest.raises(ConfigError, match="Échelle inconnue"):
        build_frames(1, "enorme")


def test_cli_run_writes_sample_and_events(tmp_path, capsys):
    from gar_analysis.sample.cli import run

    args = argparse.Namespace(out=tmp_path / "d", seed=3, scale="mini", years=1, events=500,
                              events_out=tmp_path / "ev")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run(args) == 0
    assert "Échantillon simulé écrit" in capsys.readouterr().out
    truth = json.loads((tmp_path / "d/truth.json").read_text(encoding="utf-8"))
    assert truth["periode"] == {"debut": "2024-09", "fin": "2025-08"}
    assert list((tmp_path / "ev").rglob("*.parquet"))


def test_calibration_file_is_derived_from_real_data():
    cal = gen.load_calibration(gen.CALIBRATION_FILE)
    assert len(cal) == 101 and cal.code_departement.is_unique
    assert cal.n_ecole_public.sum() > 20000 and cal.n_college_public.sum() > 4000
    if not (config.SHARED_OPENDATA_DIR / "ips-lycees-2022").exists():
        pytest.skip("données réelles absentes")
    from gar_analysis.sample.calibrate import derive

    fresh = derive()
    pd.testing.assert_frame_equal(fresh.reset_index(drop=True), cal, check_dtype=False, atol=1e-3)
