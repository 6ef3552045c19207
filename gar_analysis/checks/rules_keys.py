"""Rules on identifiers and keys: UAIs, duplicates, unknown keys, territorial codes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import territories
from ..contract import CONTRACT
from .context import IPS_FILES, UAI_FILES, Context, fast_isin, fmt_int, source_path, uai_status
from .registry import concat_findings, make_findings, rule

#: Files whose UAIs must be known to the register.
GAR_FILES = ("gar/etablissements", "gar/abonnements", "gar/affectations", "gar/accedants", "gar/acces",
             "gar/accedants_actifs", "dnma/audience", "dnma/profils", "crm/actions")
#: Key of every file (contract key; register: uai; IPS: uai and rentrée).
KEYS = {**{n: list(fs.key) for n, fs in CONTRACT.items() if fs.key},
        "referentiel/annuaire": ["uai"], **{n: ["uai", "rentree_scolaire"] for n in IPS_FILES},
        "dnma/profils": ["debutsemaine", "uai"]}


def _opt(df: pd.DataFrame, col: str):
    return df[col] if col in df.columns else None


def _school_actors(ctx: Context) -> pd.DataFrame:
    """Return CRM actors of type établissement with a code, as (uai, line)."""
    act = ctx.frame("crm/acteurs")
    sel = act[(act["type"] == "etablissement") & act["code"].notna()]
    return sel


def _uai_columns(ctx: Context, names) -> list[tuple[str, pd.DataFrame, str]]:
    """Return (file, frame, UAI column) for the files present, plus the CRM's school actors (column ``code``)."""
    targets = [(n, ctx.frame(n), "uai") for n in ctx.present(names)]
    if ctx.has("crm/acteurs"):
        targets.append(("crm/acteurs", _school_actors(ctx), "code"))
    return targets


@rule("uai_invalide", "UAI invalide", "erreur", any_of=(*UAI_FILES, "crm/acteurs"),
      explication="Un UAI comporte 7 chiffres suivis d'une lettre de contrôle calculée à partir des chiffres ; "
                  "une valeur qui ne respecte pas ce format ne désigne aucun établissement.",
      action="Corriger l'identifiant à la source d'après l'annuaire de l'éducation (souvent une faute de frappe "
             "ou un identifiant provisoire).")
def uai_invalide(ctx: Context) -> pd.DataFrame:
    """Flag UAIs that are not 7 digits and the right check letter."""
    out = []
    for name, df, col in _uai_columns(ctx, UAI_FILES):
        s = df[col]
        valid, expected = ctx.uai_valid(name) if col == "uai" else uai_status(s)
        bad = ~valid & s.notna().to_numpy()
        if not bad.any():
            continue
        sub, exp = df.loc[bad], expected[bad]
        val = sub[col].astype("string")
        wrong_letter = val.str.fullmatch(r"[0-9]{7}[A-Za-z]").fillna(False) & exp.notna()
        msg = ("UAI « " + val + " » invalide : 7 chiffres suivis d'une lettre de contrôle sont attendus ; "
               "corriger l'identifiant d'après l'annuaire de l'éducation.")
        msg = msg.where(~wrong_letter, "UAI « " + val + " » invalide : la lettre de contrôle attendue est « "
                        + exp.fillna("") + " » ; vérifier l'identifiant dans l'annuaire de l'éducation.")
        out.append(make_findings("uai_invalide", "erreur", source_path(name), msg, ligne=sub.index, uai=val,
                                 mois=_opt(sub, "mois"), id_ressource=_opt(sub, "id_ressource")))
    return concat_findings(out)


@rule("doublon", "Doublon", "erreur", any_of=tuple(KEYS),
      explication="La même clé (par exemple le même établissement, mois, ressource, profil et support) figure "
                  "deux fois dans un fichier : les totaux sont comptés deux fois.",
      action="Supprimer la ligne en double ou corriger sa clé ; une ligne que l'annuaire signale lui-même comme "
             "« multi-lignes » est seulement signalée pour information.")
def doublon(ctx: Context) -> pd.DataFrame:
    """Flag every repeat of a file's key (the first occurrence is kept)."""
    out = []
    for name, key in KEYS.items():
        if not ctx.has(name):
            continue
        df = ctx.frame(name)
        key = [k for k in key if k in df.columns]
        if not key or not len(df):
            continue
        if name in CONTRACT and not ctx.repeats(name).any():
            continue
        codes = ctx.key_codes(name, key)
        rep = pd.Series(codes).duplicated().to_numpy()
        if not rep.any():
            continue
        dup_any = np.isin(codes, np.unique(codes[rep]))
        sub = df.loc[dup_any]
        sub_codes = codes[dup_any]
        lines = pd.Series(sub.index.to_numpy(), index=sub.index)
        first = lines.groupby(sub_codes).transform("min")
        repeat = (lines != first).to_numpy()
        sub, first = sub.loc[repeat], first[repeat]
        desc = None
        for k in key:
            part = k + "=" + sub[k].astype("string").fillna("")
            desc = part if desc is None else desc + ", " + part
        gravite = pd.Series("erreur", index=sub.index)
        msg = ("Clé en double (" + desc + ") : déjà présente ligne " + first.astype("string")
               + " ; supprimer la ligne en double ou corriger la clé.")
        if name == "referentiel/annuaire" and "multi_lignes" in sub.columns:
            multi = sub["multi_lignes"].fillna(False).astype(bool)
            gravite = gravite.mask(multi, "info")
            msg = msg.mask(multi, "UAI « " + sub["uai"].astype("string") + " » sur plusieurs lignes (déjà ligne "
                           + first.astype("string") + "), signalée par l'annuaire comme établissement "
                           "multi-lignes : une seule ligne est retenue pour l'analyse.")
        for g in ("erreur", "info"):
            m = (gravite == g).to_numpy()
            if m.any():
                s = sub.loc[m]
                out.append(make_findings("doublon", g, source_path(name), msg[m], ligne=s.index,
                                         uai=_opt(s, "uai"), mois=_opt(s, "mois"),
                                         id_ressource=_opt(s, "id_ressource")))
    return concat_findings(out)


@rule("uai_inconnu", "UAI inconnu de l'annuaire", "erreur", needs=("referentiel/annuaire",),
      any_of=(*GAR_FILES, "crm/acteurs"),
      explication="Un UAI valide d'un fichier du GAR, de la mesure d'audience ou du CRM n'existe pas dans "
                  "l'annuaire : ses données ne peuvent être rattachées à aucun territoire.",
      action="Vérifier l'identifiant (établissement fusionné, fermé ou renuméroté) ou mettre à jour l'annuaire "
             "utilisé.")
def uai_inconnu(ctx: Context) -> pd.DataFrame:
    """Flag valid UAIs absent from the register (one finding per file and UAI)."""
    out = []
    for name, df, col in _uai_columns(ctx, GAR_FILES):
        if col == "uai":
            unknown = ctx.uai_valid(name)[0] & ~ctx.uai_known(name)
        else:
            unknown = uai_status(df[col])[0] & ~fast_isin(df[col], ctx.register_set)
        if not unknown.any():
            continue
        sub = df.loc[unknown]
        g = pd.DataFrame({"uai": sub[col].astype("string"), "ligne": sub.index}).groupby("uai")
        agg = g["ligne"].agg(["min", "size"]).reset_index()
        msg = ("UAI « " + agg["uai"] + " » absente de l'annuaire (" + agg["size"].map(fmt_int).astype("string")
               + " ligne(s)) : vérifier l'identifiant ou mettre à jour l'annuaire.")
        out.append(make_findings("uai_inconnu", "erreur", source_path(name), msg, ligne=agg["min"], uai=agg["uai"]))
    return concat_findings(out)


@rule("ressource_inconnue", "Ressource inconnue du catalogue", "erreur", needs=("gar/ressources",),
      any_of=("gar/abonnements", "gar/affectations", "gar/acces"),
      explication="Un identifiant de ressource n'existe pas dans le catalogue des ressources : ses accès ne "
                  "peuvent être attribués à aucun éditeur.",
      action="Corriger l'identifiant de ressource ou compléter le catalogue (gar/ressources.csv).")
def ressource_inconnue(ctx: Context) -> pd.DataFrame:
    """Flag rows whose id_ressource is absent from the catalogue."""
    out = []
    for name in ctx.present(("gar/abonnements", "gar/affectations", "gar/acces")):
        df = ctx.frame(name)
        bad = ~ctx.resource_known(name)
        if not bad.any():
            continue
        sub = df.loc[bad]
        msg = ("Ressource « " + sub["id_ressource"].astype("string") + " » absente du catalogue : corriger "
               "l'identifiant ou compléter gar/ressources.csv.")
        out.append(make_findings("ressource_inconnue", "erreur", source_path(name), msg, ligne=sub.index,
                                 uai=sub["uai"], mois=_opt(sub, "mois"), id_ressource=sub["id_ressource"]))
    return concat_findings(out)


def _commune_ok(commune: pd.Series, dep: pd.Series) -> np.ndarray:
    """Return whether each commune code starts with its département's code (NA: True)."""
    c = commune.astype("string").str.strip()
    d = dep.astype("string")
    prefix = c.str.slice(0, 3).where(d.str.len() == 3, c.str.slice(0, 2))
    ok = (prefix == d) | c.isna() | d.isna() | (c == "")
    return ok.fillna(True).to_numpy(bool)


@rule("territoire_incoherent", "Territoire incohérent", "erreur",
      any_of=("referentiel/annuaire", *IPS_FILES),
      explication="Les codes commune, département, académie et région d'un établissement ne s'emboîtent pas "
                  "(commune hors du département indiqué, département hors de l'académie…).",
      action="Corriger le code erroné dans la source (le plus souvent le code académie ou région d'une ligne "
             "recopiée d'un autre établissement).")
def territoire_incoherent(ctx: Context) -> pd.DataFrame:
    """Flag rows whose commune, département, académie and région do not nest."""
    ref = territories.departements().set_index("code_departement")
    known_deps = set(ref.index) | territories.OVERSEAS_COLLECTIVITIES
    out = []
    for name in ctx.present(("referentiel/annuaire", *IPS_FILES)):
        df = ctx.frame(name)
        if "code_departement" not in df.columns:
            continue
        dep = df["code_departement"].astype("string")
        problems = []
        unknown_dep = (dep.notna() & ~dep.isin(known_deps)).to_numpy(bool)
        problems.append((unknown_dep, "département « " + dep.fillna("") + " » inconnu"))
        if "code_academie" in df.columns:
            exp = dep.map(ref["code_academie"]).astype("string")
            aca = df["code_academie"].astype("string")
            bad = (aca.notna() & exp.notna() & (aca != exp)).fillna(False).to_numpy(bool)
            problems.append((bad, "le département " + dep.fillna("") + " n'appartient pas à l'académie "
                             + aca.fillna("") + " (académie attendue : " + exp.fillna("") + ")"))
        if "code_region" in df.columns:
            exp = dep.map(ref["code_region"]).astype("string")
            reg = df["code_region"].astype("string")
            bad = (reg.notna() & exp.notna() & (reg != exp)).fillna(False).to_numpy(bool)
            problems.append((bad, "le département " + dep.fillna("") + " n'appartient pas à la région "
                             + reg.fillna("") + " (région attendue : " + exp.fillna("") + ")"))
        if "code_commune" in df.columns:
            bad = ~_commune_ok(df["code_commune"], dep) & ~unknown_dep
            problems.append((bad, "la commune " + df["code_commune"].astype("string").fillna("")
                             + " n'est pas dans le département " + dep.fillna("")))
        any_bad = np.zeros(len(df), dtype=bool)
        for m, _ in problems:
            any_bad |= m
        if not any_bad.any():
            continue
        msg = pd.Series("", index=df.index, dtype="string")
        for m, text in problems:
            sep = msg.where(msg == "", msg + " ; ")
            msg = msg.where(~m, sep + text)
        sub_msg = ("Codes territoriaux incohérents : " + msg[any_bad]
                   + ". Corriger le code erroné à la source.")
        sub = df.loc[any_bad]
        out.append(make_findings("territoire_incoherent", "erreur", source_path(name), sub_msg,
                                 ligne=sub.index, uai=sub["uai"]))
    return concat_findings(out)
