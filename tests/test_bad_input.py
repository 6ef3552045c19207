"""Bad input never stops the checks and never reaches the user as a traceback (issue #15).

A matrix of defective copies of a tiny, clean data directory (``clean_world``):
each case is run through ``gar-analysis check`` then ``gar-analysis build`` (on
top of a previous build), in process, and asserts the exit status, a finding or
message naming the place, no traceback on stderr, and output folders either
complete or untouched.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from test_checks_rules import SCHOOLS, clean_world, write_world  # noqa: E402

from gar_analysis.checks import RULES  # noqa: E402
from gar_analysis.cli import main  # noqa: E402

ACCES_HEADER = "mois;uai;id_ressource;profil;support;acces"


def _lines(text: str) -> list[str]:
    return text.split("\n")


def set_cell(rel: str, line: int, column: str, value: str):
    """Mutation: write ``value`` in ``column`` of physical ``line`` (header = 1) of a file."""
    def mutate(root: Path):
        path = root / rel
        lines = _lines(path.read_text(encoding="utf-8"))
        header = lines[0].split(";")
        cells = lines[line - 1].split(";")
        cells[header.index(column)] = value
        lines[line - 1] = ";".join(cells)
        path.write_text("\n".join(lines), encoding="utf-8")
    return mutate


def write_bytes(rel: str, func):
    """Mutation: replace a file's bytes by ``func(old bytes)``."""
    def mutate(root: Path):
        path = root / rel
        path.write_bytes(func(path.read_bytes()))
    return mutate


def text_edit(rel: str, func):
    def mutate(root: Path):
        path = root / rel
        path.write_text(func(path.read_text(encoding="utf-8")), encoding="utf-8", newline="")
    return mutate


def header_only(rel: str):
    return text_edit(rel, lambda t: t.split("\n", 1)[0] + "\n")


def as_directory(rel: str):
    def mutate(root: Path):
        (root / rel).unlink()
        (root / rel).mkdir()
        (root / rel / "x.csv").write_text("a;b\n", encoding="utf-8")
    return mutate


def symlink_loop(rel: str):
    def mutate(root: Path):
        p = root / rel
        p.unlink()
        loop = p.with_name("boucle.csv")
        os.symlink(p.name, loop)
        os.symlink(loop.name, p)
    return mutate


def broken_symlink(rel: str):
    def mutate(root: Path):
        p = root / rel
        p.unlink()
        os.symlink("nulle-part.csv", p)
    return mutate


def stray(root: Path):
    (root / "gar/extra.csv").mkdir()
    os.symlink("absent.csv", root / "crm/fantome.csv")


def blank_lines_then(rel: str, column: str, value: str):
    """Two blank lines after line 3, then a bad value on the (physical) line 7."""
    def mutate(root: Path):
        path = root / rel
        lines = _lines(path.read_text(encoding="utf-8"))
        header = lines[0].split(";")
        cells = lines[4].split(";")
        cells[header.index(column)] = value
        lines[4] = ";".join(cells)
        lines[3:3] = ["", ""]
        path.write_text("\n".join(lines), encoding="utf-8")
    return mutate


def quoted_multiline_then(rel: str, column: str, value: str):
    """A quoted value spanning two lines on line 2, then a bad value on physical line 4."""
    def mutate(root: Path):
        path = root / rel
        lines = _lines(path.read_text(encoding="utf-8"))
        header = lines[0].split(";")
        cells = lines[1].split(";")
        cells[header.index("nom")] = '"Manuel\nsur deux lignes"'
        lines[1] = ";".join(cells)
        cells = lines[2].split(";")
        cells[header.index(column)] = value
        lines[2] = ";".join(cells)
        path.write_text("\n".join(lines), encoding="utf-8")
    return mutate


def unclosed_quote(rel: str, line: int):
    def mutate(root: Path):
        path = root / rel
        lines = _lines(path.read_text(encoding="utf-8"))
        lines[line - 1] = lines[line - 1].replace(";", ';"', 1)
        path.write_text("\n".join(lines), encoding="utf-8")
    return mutate


def edugar(root: Path):
    et = root / "gar/etablissements.csv"
    lines = _lines(et.read_text(encoding="utf-8"))
    lines[1] = f"{SCHOOLS[0]};2023-09-01;EduGAR;"
    et.write_text("\n".join(lines), encoding="utf-8")


NO_FINDING = None
#: id → (mutation, expected: None (no serious finding), (regle, source, line, column) or "needed"
#: when the build must refuse because a file it needs is unreadable).
CASES = {
    "edugar_sans_projet_ent": (edugar, NO_FINDING),
    "projet_ent_vide_hors_edugar": (set_cell("gar/etablissements.csv", 3, "projet_ent", ""),
                                    ("valeur_manquante", "gar/etablissements.csv", 3, "projet_ent")),
    "statut_actif": (set_cell("crm/contrats.csv", 2, "statut", "actif"), NO_FINDING),
    "statut_active": (set_cell("crm/contrats.csv", 2, "statut", "active"), NO_FINDING),
    "statut_signe_accent": (set_cell("crm/contrats.csv", 2, "statut", "Signé"), NO_FINDING),
    "statut_inconnu": (set_cell("crm/contrats.csv", 2, "statut", "suspendu"),
                       ("valeur_hors_liste", "crm/contrats.csv", 2, "statut")),
    "degre_1": (set_cell("gar/ressources.csv", 2, "degre", "1"), NO_FINDING),
    "degre_inconnu": (set_cell("gar/ressources.csv", 3, "degre", "3e"),
                      ("valeur_hors_liste", "gar/ressources.csv", 3, "degre")),
    "profil_vide": (set_cell("gar/acces.csv", 5, "profil", ""), ("valeur_manquante", "gar/acces.csv", 5, "profil")),
    "acces_milliers_point": (set_cell("gar/acces.csv", 4, "acces", "2.000"),
                             ("format_invalide", "gar/acces.csv", 4, "acces")),
    "acces_inf": (set_cell("gar/acces.csv", 6, "acces", "inf"), ("format_invalide", "gar/acces.csv", 6, "acces")),
    "acces_nan": (set_cell("gar/acces.csv", 6, "acces", "nan"), ("format_invalide", "gar/acces.csv", 6, "acces")),
    "acces_enorme": (set_cell("gar/acces.csv", 7, "acces", "99999999999999999999999"),
                     ("format_invalide", "gar/acces.csv", 7, "acces")),
    "acces_ns": (set_cell("gar/acces.csv", 7, "acces", "NS"), ("format_invalide", "gar/acces.csv", 7, "acces")),
    "acces_emoji": (set_cell("gar/acces.csv", 8, "acces", "12🙂"), ("format_invalide", "gar/acces.csv", 8, "acces")),
    "uai_emoji": (set_cell("gar/acces.csv", 13, "uai", "🙂"), ("uai_invalide", "gar/acces.csv", 13, None)),
    "montant_1e400": (set_cell("gar/abonnements.csv", 2, "montant_ht", "1e400"),
                      ("format_invalide", "gar/abonnements.csv", 2, "montant_ht")),
    "montant_moins_infini": (set_cell("gar/abonnements.csv", 3, "montant_ht", "-Infinity"),
                             ("format_invalide", "gar/abonnements.csv", 3, "montant_ht")),
    "ips_inf": (set_cell("referentiel/ips_colleges.csv", 2, "IPS", "inf"),
                ("format_invalide", "referentiel/ips_colleges.csv", 2, "IPS")),
    "latitude_1e400": (set_cell("referentiel/annuaire.csv", 3, "latitude", "1e400"),
                       ("format_invalide", "referentiel/annuaire.csv", 3, "latitude")),
    "eleves_milliers_point": (set_cell("referentiel/annuaire.csv", 4, "Nombre_d_eleves", "2.000"),
                              ("format_invalide", "referentiel/annuaire.csv", 4, "Nombre_d_eleves")),
    "eleves_chiffres_arabes": (set_cell("referentiel/annuaire.csv", 3, "Nombre_d_eleves", "٣٠٠"),
                               ("format_invalide", "referentiel/annuaire.csv", 3, "Nombre_d_eleves")),
    "mois_chiffres_arabes": (set_cell("gar/acces.csv", 3, "mois", "٢٠٢٣-09"),
                             ("format_invalide", "gar/acces.csv", 3, "mois")),
    "date_invalide": (set_cell("gar/abonnements.csv", 2, "date_debut", "31/12/2023"),
                      ("format_invalide", "gar/abonnements.csv", 2, "date_debut")),
    "annee_scolaire_invalide": (set_cell("gar/accedants.csv", 2, "annee_scolaire", "2023-2025"),
                                ("format_invalide", "gar/accedants.csv", 2, "annee_scolaire")),
    "lignes_vides_puis_erreur": (blank_lines_then("gar/acces.csv", "acces", "x"),
                                 ("format_invalide", "gar/acces.csv", 7, "acces")),
    "guillemets_multiligne_puis_erreur": (quoted_multiline_then("gar/ressources.csv", "degre", "zz"),
                                          ("valeur_hors_liste", "gar/ressources.csv", 4, "degre")),
    "champ_en_trop": (text_edit("gar/acces.csv", lambda t: t.replace("\n", ";9\n", 3).replace(";9\n", "\n", 2)),
                      ("format_invalide", "gar/acces.csv", 3, None)),
    "octet_nul": (write_bytes("gar/ressources.csv", lambda b: b.replace(b"Dictionnaire", b"Dict\x00ionnaire")),
                  ("format_invalide", "gar/ressources.csv", 3, "nom")),
    "ligne_longue": (set_cell("gar/ressources.csv", 2, "nom", "x" * 300_000), NO_FINDING),
    "emoji_texte": (set_cell("gar/ressources.csv", 2, "nom", "Manuel 📚"), NO_FINDING),
    "bom": (write_bytes("gar/acces.csv", lambda b: b"\xef\xbb\xbf" + b), NO_FINDING),
    "crlf": (write_bytes("gar/acces.csv", lambda b: b.replace(b"\n", b"\r\n")), NO_FINDING),
    "crlf_lignes_vides_puis_erreur": (lambda r: (blank_lines_then("gar/acces.csv", "acces", "x")(r),
                                                 write_bytes("gar/acces.csv", lambda b: b.replace(b"\n", b"\r\n"))(r)),
                                      ("format_invalide", "gar/acces.csv", 7, "acces")),
    # whole files that cannot be read: one error each, the other files still checked
    "vide": (write_bytes("gar/acces.csv", lambda b: b""), ("fichier_illisible", "gar/acces.csv", 1, "needed")),
    "latin1": (write_bytes("gar/ressources.csv", lambda b: b.decode().replace("Éditeur", "Éditeur").encode("latin-1")),
               ("fichier_illisible", "gar/ressources.csv", 2, "needed")),
    "utf16": (write_bytes("crm/contrats.csv", lambda b: b.decode().encode("utf-16")),
              ("fichier_illisible", "crm/contrats.csv", 1, None)),
    "binaire": (write_bytes("budget/depenses.csv", lambda b: bytes(range(256)) * 20),
                ("fichier_illisible", "budget/depenses.csv", None, None)),
    "separateur_virgule": (text_edit("gar/acces.csv", lambda t: t.replace(";", ",")),
                           ("fichier_illisible", "gar/acces.csv", 1, "needed")),
    "separateur_tabulation": (text_edit("crm/actions.csv", lambda t: t.replace(";", "\t")),
                              ("fichier_illisible", "crm/actions.csv", 1, None)),
    "colonne_absente": (text_edit("budget/depenses.csv", lambda t: t.replace("dont_gar", "dont_garr", 1)),
                        ("fichier_illisible", "budget/depenses.csv", 1, None)),
    "entete_double_espace": (text_edit("gar/acces.csv", lambda t: t.replace(ACCES_HEADER, ACCES_HEADER + ";acces ", 1)
                                       .replace("\n", ";0\n")[: -len(";0\n")] + "\n"),
                             ("fichier_illisible", "gar/acces.csv", 1, "needed")),
    "guillemet_non_ferme": (unclosed_quote("gar/acces.csv", 9), ("fichier_illisible", "gar/acces.csv", 9, "needed")),
    "acces_entete_seul": (header_only("gar/acces.csv"), NO_FINDING),
    "accedants_entete_seul": (header_only("gar/accedants.csv"), NO_FINDING),
    "etablissements_entete_seul": (header_only("gar/etablissements.csv"), "any"),
    "annuaire_entete_seul": (header_only("referentiel/annuaire.csv"), "any"),
    "acces_dossier": (as_directory("gar/acces.csv"), ("fichier_illisible", "gar/acces.csv", None, "needed")),
    "acces_lien_en_boucle": (symlink_loop("gar/acces.csv"), ("fichier_illisible", "gar/acces.csv", None, "needed")),
    "contacts_lien_casse": (broken_symlink("crm/contacts.csv"), ("fichier_illisible", "crm/contacts.csv", None, None)),
    "dossier_et_lien_parasites": (stray, NO_FINDING),
}


@pytest.fixture(scope="module")
def previous_build(tmp_path_factory):
    """A clean data directory and its build (the « old » tables every case starts from)."""
    base = tmp_path_factory.mktemp("bad_input")
    data = write_world(clean_world(), base / "clean")
    out = base / "processed"
    assert main(["build", "--data", str(data), "--out", str(out)]) == 0
    return data, out


def snapshot(folder: Path) -> dict[str, str]:
    """Return the SHA-256 of every file of a folder (relative path → digest)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_build_consistent(out: Path) -> dict:
    """Every table of the manifest is the one the manifest describes (no mix of two builds)."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name, info in manifest["outputs"].items():
        digest = hashlib.sha256((out / info["fichier"]).read_bytes()).hexdigest()
        assert digest == info["sha256"], f"{name} ne correspond pas au manifeste"
    return manifest


@pytest.mark.parametrize("case", list(CASES))
def test_check_then_build(case, previous_build, tmp_path, capsys):
    clean, old_out = previous_build
    mutate, expected = CASES[case]
    data = tmp_path / "data"
    shutil.copytree(clean, data, symlinks=True)
    mutate(data)
    out_csv = tmp_path / "constats.csv"
    code = main(["check", "--data", str(data), "--out", str(out_csv), "--html", str(tmp_path / "q.html")])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "inattendue" not in err, err
    assert code == 0, err
    assert out_csv.exists() and (tmp_path / "q.html").exists()
    f = pd.read_csv(out_csv, sep=";", dtype=str, keep_default_na=False)
    assert not (f["message"].str.contains("non effectué") & (f["gravite"] == "erreur")).any()
    serious = f[f["gravite"] != "info"]
    needed = False
    if expected is None:
        assert serious.empty, serious.to_string()
    elif expected != "any":
        regle, source, line, column = expected
        needed = column == "needed"
        hit = serious[(serious["regle"] == regle) & (serious["source"] == source)]
        assert len(hit), serious.to_string()
        if line is not None:
            assert str(line) in hit["ligne"].tolist(), hit.to_string()
        if column not in (None, "needed"):
            assert hit["message"].str.contains(f"« {column} »", regex=False).any(), hit.to_string()
        assert set(serious["regle"]) <= {regle, "fichier_illisible", "uai_inconnu", "uai_invalide"}, \
            serious.to_string()
        html = (tmp_path / "q.html").read_text(encoding="utf-8")
        assert source in html and RULES[regle].titre in html
    # build on top of the previous tables
    out = tmp_path / "processed"
    shutil.copytree(old_out, out)
    before = snapshot(out)
    code = main(["build", "--data", str(data), "--out", str(out), "--findings", str(out_csv)])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "inattendue" not in err, err
    if needed:
        assert code == 2 and source in err, err
        assert snapshot(out) == before
    else:
        assert code == 0, err
        manifest = assert_build_consistent(out)
        if expected not in (None, "any") and regle in ("valeur_manquante", "valeur_hors_liste", "format_invalide"):
            assert manifest["lignes_ecartees"].get(source, 0) >= 1, manifest["lignes_ecartees"]
            constats = pd.read_parquet(out / "constats.parquet")
            assert ((constats["regle"] == regle) & (constats["source"] == source)).any()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".processed.")]


def test_every_file_unreadable_exits_2(tmp_path, capsys):
    data = write_world(clean_world(), tmp_path / "d")
    for p in data.rglob("*.csv"):
        p.write_bytes(b"\xff\xfe\x00garbage")
    code = main(["check", "--data", str(data), "--out", str(tmp_path / "c.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and ".csv" in err
    assert len(err.strip().splitlines()) == 1 and "autre(s) problème(s)" in err
    assert not (tmp_path / "c.csv").exists()


# --------------------------------------------------------------------------- a register the team never saw

ISSUE_RULES = ["uai_invalide", "doublon", "uai_inconnu", "ressource_inconnue", "territoire_incoherent",
               "acces_avant_inscription", "acces_sans_abonnement", "periode_invalide", "valeur_negative",
               "accedants_sup_effectif", "affectations_sup_licences", "rupture_serie", "mois_manquant",
               "incoherence_dnma", "ips_hors_plage", "depense_incoherente"]


@pytest.fixture(scope="module")
def unseen_register(tmp_path_factory):
    """A sample drawn with another seed, written the way real exports are: EduGAR schools without an
    ENT project, contract statuses ``actif``/``Signé``, resource degrees ``1``/``2``."""
    from gar_analysis.sample import generate

    out = tmp_path_factory.mktemp("registre_inconnu")
    truth = generate(out, seed=77, scale="default")
    et = pd.read_csv(out / "gar/etablissements.csv", sep=";", dtype=str, keep_default_na=False)
    n_edugar = int((et["mediacentre"] == "EduGAR").sum())
    et.loc[et["mediacentre"] == "EduGAR", "projet_ent"] = ""
    et.to_csv(out / "gar/etablissements.csv", sep=";", index=False)
    ct = pd.read_csv(out / "crm/contrats.csv", sep=";", dtype=str, keep_default_na=False)
    signed = ct.index[ct["statut"] == "signe"]
    ct.loc[signed[::2], "statut"] = "actif"
    ct.loc[signed[1::2], "statut"] = "Signé"
    ct.to_csv(out / "crm/contrats.csv", sep=";", index=False)
    rs = pd.read_csv(out / "gar/ressources.csv", sep=";", dtype=str, keep_default_na=False)
    rs["degre"] = rs["degre"].replace({"premier": "1", "second": "2"})
    rs.to_csv(out / "gar/ressources.csv", sep=";", index=False)
    from gar_analysis.checks import run_checks

    return truth, run_checks(out), n_edugar


def test_unseen_register_with_edugar_schools_has_no_form_finding(unseen_register):
    _, findings, n_edugar = unseen_register
    assert n_edugar > 20
    form = findings[findings["regle"].isin(["fichier_illisible", "valeur_manquante", "valeur_hors_liste",
                                            "format_invalide"])]
    assert form.empty, form.head().to_string()


@pytest.mark.parametrize("regle", ISSUE_RULES)
def test_unseen_register_every_rule_at_its_usual_recall_and_precision(unseen_register, regle):
    from gar_analysis.checks.evaluation import score

    truth, findings, _ = unseen_register
    s = score(findings, truth["anomalies"]).loc[regle]
    assert s["rappel"] >= 0.95, s.to_dict()
    assert s["precision"] >= 0.90, s.to_dict()


# --------------------------------------------------------------------------- check, build, then one report

@pytest.mark.slow
def test_defective_sample_check_build_then_one_report(sample_build, tmp_path, capsys):
    """The sample with several defects: check and build complete, the dashboard is produced."""
    data = tmp_path / "data"
    shutil.copytree(sample_build.data_dir, data)
    edugar(data)
    set_cell("gar/acces.csv", 10, "acces", "2.000")(data)
    set_cell("gar/acces.csv", 12, "mois", "٢٠٢٣-09")(data)
    set_cell("crm/contrats.csv", 3, "statut", "actif")(data)
    set_cell("gar/ressources.csv", 2, "degre", "1")(data)
    blank_lines_then("gar/affectations.csv", "affectations", "inf")(data)
    write_bytes("budget/depenses.csv", lambda b: b.replace(b"\n", b"\r\n"))(data)
    csv_path = tmp_path / "constats.csv"
    assert main(["check", "--data", str(data), "--out", str(csv_path)]) == 0
    f = pd.read_csv(csv_path, sep=";", dtype=str, keep_default_na=False)
    form = f[f["regle"] == "format_invalide"]
    assert {("gar/acces.csv", "10"), ("gar/acces.csv", "12"), ("gar/affectations.csv", "7")} <= \
        set(zip(form["source"], form["ligne"]))
    out = tmp_path / "processed"
    assert main(["build", "--data", str(data), "--out", str(out), "--findings", str(csv_path)]) == 0
    manifest = assert_build_consistent(out)
    assert manifest["lignes_ecartees"] == {"gar/acces.csv": 2, "gar/affectations.csv": 1}
    code = main(["reports", "--audience", "national", "--only", "FR", "--notebook", "tableau_de_bord",
                 "--processed", str(out), "--out", str(tmp_path / "rapports"), "--run-id", "lot",
                 "--no-progress", "--jobs", "1"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and code == 0, err
    page = (tmp_path / "rapports/lot/national/FR.html").read_text(encoding="utf-8")
    assert "Données simulées" in page


# --------------------------------------------------------------------------- every loader × generic mutations

def _truncate_sample(out: Path, lines: int = 30) -> Path:
    for p in out.rglob("*.csv"):
        text = p.read_text(encoding="utf-8-sig")
        p.write_text("\n".join(text.split("\n")[:lines]) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    """A small copy of the sample: every contract and register file, 29 data lines each."""
    from gar_analysis.sample import generate

    out = tmp_path_factory.mktemp("petit_echantillon")
    generate(out, seed=5, scale="default")
    return _truncate_sample(out)


def _cell_edit(value):
    """Mutation of the 5th physical line: its last cell becomes ``value``."""
    def edit(text: str) -> str:
        lines = text.split("\n")
        cells = lines[4].split(";")
        cells[-1] = value
        lines[4] = ";".join(cells)
        return "\n".join(lines)
    return edit


MUTATIONS = {
    "virgule": lambda t: t.replace(";", ","),
    "tabulation": lambda t: t.replace(";", "\t"),
    "latin1": "latin1",
    "utf16": "utf16",
    "bom": lambda t: "\ufeff" + t,
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "octet_nul": _cell_edit("12\x003"),
    "ligne_longue": _cell_edit("9" * 200_000),
    "emoji": _cell_edit("🙂"),
    "chiffres_arabes": _cell_edit("٣٠٠"),
    "infini": _cell_edit("inf"),
    "lignes_vides": lambda t: "\n".join(t.split("\n")[:3] + ["", "  "] + t.split("\n")[3:]),
    "entete_seul": lambda t: t.split("\n", 1)[0] + "\n",
    "vide": lambda t: "",
    "derniere_ligne_coupee": lambda t: t.rstrip("\n")[:-3],
    "champ_en_trop": lambda t: "\n".join(line + (";x" if i == 5 else "") for i, line in enumerate(t.split("\n"))),
    "guillemet_non_ferme": lambda t: "\n".join(line.replace(";", ';"', 1) if i == 6 else line
                                               for i, line in enumerate(t.split("\n"))),
}


def _all_files():
    """Every contract and reference file the sample writes (the deprecated ``dnma/audience.csv`` is no longer
    written: the DNMA's published layout has its own bad-input tests in test_dnma.py)."""
    from gar_analysis.contract import CONTRACT, REFERENCE_FILES

    return [n for n in [*CONTRACT, *REFERENCE_FILES] if n != "dnma/audience"]


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("name", _all_files())
def test_every_loader_survives_every_mutation(small_sample, tmp_path, name, mutation):
    """A lenient load returns a frame or raises one DataError naming the file; never another exception."""
    from gar_analysis.errors import DataError
    from gar_analysis.sources import _path_of, load

    rel = _path_of(name)
    src = small_sample / rel
    data = tmp_path / "d"
    (data / rel).parent.mkdir(parents=True)
    text = src.read_text(encoding="utf-8")
    m = MUTATIONS[mutation]
    if m == "latin1":
        (data / rel).write_bytes(_cell_edit("Élève")(text).encode("latin-1", errors="replace"))
    elif m == "utf16":
        (data / rel).write_bytes(text.encode("utf-16"))
    else:
        (data / rel).write_bytes(m(text).encode("utf-8"))
    original = load(small_sample, name, lenient=True)
    try:
        df = load(data, name, lenient=True)
    except DataError as exc:
        assert all(str(data / rel) in p.file for p in exc.problems), exc
        assert exc.problems and all(p.message for p in exc.problems)
        assert mutation not in ("bom", "crlf", "emoji", "ligne_longue", "lignes_vides", "entete_seul")
        return
    assert pd.api.types.is_integer_dtype(df.index) and (len(df) == 0 or df.index.min() >= 2)
    problems = df.attrs.get("problemes", ())
    assert all(str(data / rel) in p.file for p in problems)
    if mutation in ("bom", "crlf"):
        pd.testing.assert_frame_equal(df, original)
    if mutation == "lignes_vides":  # physical lines: the records after the blank lines moved by 2
        expected = [i if i <= 3 else i + 2 for i in original.index]
        assert df.index.tolist() == expected
    if mutation == "entete_seul":
        assert len(df) == 0
    if mutation in ("champ_en_trop",):
        assert 6 in {p.line for p in problems}, problems
    if mutation in ("chiffres_arabes", "infini", "octet_nul"):
        # the last column is a number in most files: then line 5 is reported
        strict_error = None
        try:
            load(data, name)
        except DataError as exc:
            strict_error = exc
        if strict_error is not None:
            assert 5 in {p.line for p in strict_error.problems}
            assert 5 in df.attrs.get("lignes_invalides", ())
