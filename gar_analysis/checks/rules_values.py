"""Rules on values: periods, negative counts, capacities, IPS and budgets."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .context import IPS_FILES, Context, fast_isin, fmt_int, month_start, source_path
from .registry import concat_findings, make_findings, rule

#: Count and amount columns that cannot be negative, by file.
NON_NEGATIVE = {
    "gar/abonnements": ("licences", "montant_ht"),
    "gar/affectations": ("affectations",),
    "gar/accedants": ("accedants",),
    "gar/acces": ("acces",),
    "gar/accedants_actifs": ("accedants_actifs",),
    "dnma/audience": ("visites", "visiteurs"),
    "dnma/profils": ("visites_globales", "utilisateurs_globales"),
    "budget/depenses": ("depenses_ressources_numeriques", "dont_gar"),
    "referentiel/communes": ("population", "superficie_km2"),
}
#: Plausible range of an IPS (published values lie between about 50 and 165).
IPS_MIN, IPS_MAX = 40.0, 180.0


def _opt(df, col):
    return df[col] if col in df.columns else None


def _fmt_num(s: pd.Series) -> pd.Series:
    """Format numbers for a message (French decimal comma)."""
    return s.map(lambda v: fmt_int(v) if float(v).is_integer() else f"{v:.2f}".replace(".", ",")).astype("string")


@rule("periode_invalide", "Période invalide", "erreur", any_of=("gar/abonnements", "crm/contrats"),
      explication="Une date de fin est antérieure à la date de début (abonnement, contrat).",
      action="Corriger la date de début ou de fin ; les deux dates sont peut-être inversées.")
def periode_invalide(ctx: Context) -> pd.DataFrame:
    """Flag subscriptions and contracts ending before they start."""
    out = []
    if ctx.has("gar/abonnements"):
        ab = ctx.frame("gar/abonnements")
        bad = (ab["date_fin"] < ab["date_debut"]).fillna(False).to_numpy(bool)
        sub = ab.loc[bad]
        msg = ("Abonnement « " + sub["id_abonnement"].astype("string") + " » : fin le "
               + sub["date_fin"].dt.strftime("%d/%m/%Y").astype("string") + ", avant son début le "
               + sub["date_debut"].dt.strftime("%d/%m/%Y").astype("string")
               + " ; corriger les dates (peut-être inversées).")
        out.append(make_findings("periode_invalide", "erreur", source_path("gar/abonnements"), msg,
                                 ligne=sub.index, uai=sub["uai"], id_ressource=sub["id_ressource"]))
    if ctx.has("crm/contrats"):
        ct = ctx.frame("crm/contrats")
        bad = (ct["date_fin"] < ct["date_debut"]).fillna(False).to_numpy(bool)
        sub = ct.loc[bad]
        uai = None
        if ctx.has("crm/acteurs") and len(sub):
            act = ctx.frame("crm/acteurs")
            codes = act[act["type"] == "etablissement"].drop_duplicates("id_acteur").set_index("id_acteur")["code"]
            uai = sub["id_acteur"].map(codes)
        msg = ("Contrat « " + sub["id_contrat"].astype("string") + " » : fin le "
               + sub["date_fin"].dt.strftime("%d/%m/%Y").astype("string") + ", avant son début le "
               + sub["date_debut"].dt.strftime("%d/%m/%Y").astype("string")
               + " ; corriger les dates (peut-être inversées).")
        out.append(make_findings("periode_invalide", "erreur", source_path("crm/contrats"), msg,
                                 ligne=sub.index, uai=uai))
    return concat_findings(out)


@rule("valeur_negative", "Valeur négative", "erreur", any_of=tuple(NON_NEGATIVE),
      explication="Un nombre (accès, affectations, accédants, licences, visites) ou un montant est négatif, "
                  "ce qui est impossible.",
      action="Corriger la valeur à la source (souvent un signe ou une correction comptable mal reportée).")
def valeur_negative(ctx: Context) -> pd.DataFrame:
    """Flag negative counts and amounts."""
    out = []
    for name, cols in NON_NEGATIVE.items():
        if not ctx.has(name):
            continue
        df = ctx.frame(name)
        for col in cols:
            if col not in df.columns:
                continue
            bad = (pd.to_numeric(df[col], errors="coerce") < 0).fillna(False).to_numpy(bool)
            if not bad.any():
                continue
            sub = df.loc[bad]
            msg = ("Valeur négative dans « " + col + " » (" + _fmt_num(sub[col].astype("float64"))
                   + ") : un nombre positif ou nul est attendu.")
            out.append(make_findings("valeur_negative", "erreur", source_path(name), msg, ligne=sub.index,
                                     uai=_opt(sub, "uai"), mois=_opt(sub, "mois"),
                                     id_ressource=_opt(sub, "id_ressource")))
    return concat_findings(out)


@rule("accedants_sup_effectif", "Accédants élèves supérieurs à l'effectif", "avertissement",
      needs=("gar/accedants",), any_of=("referentiel/annuaire", *IPS_FILES),
      explication="Un établissement compte plus d'élèves accédants que d'élèves inscrits (annuaire, sinon "
                  "effectifs de l'IPS).",
      action="Vérifier les comptes élèves de l'ENT (comptes d'anciens élèves non clôturés, rattachement à un "
             "autre établissement) ou l'effectif de l'annuaire.")
def accedants_sup_effectif(ctx: Context) -> pd.DataFrame:
    """Flag school years with more pupil accédants than pupils enrolled."""
    acc = ctx.frame("gar/accedants")
    keep = (acc["profil"] == "eleve").fillna(False).to_numpy(bool) & ctx.clean("gar/accedants", "accedants")
    a = acc.loc[keep]
    eff = ctx.effectifs
    if not len(a) or not len(eff):
        return concat_findings([])
    g = a.assign(_l=a.index).groupby(["annee_scolaire", "uai"], observed=True) \
        .agg(accedants=("accedants", "sum"), ligne=("_l", "min")).reset_index()
    g["effectif"] = g["uai"].map(eff)
    bad = g[(g["effectif"].notna()) & (g["accedants"] > g["effectif"])]
    msg = (bad["annee_scolaire"] + " : " + bad["accedants"].map(fmt_int).astype("string")
           + " élèves accédants pour un effectif de " + bad["effectif"].map(fmt_int).astype("string")
           + " élèves : vérifier les comptes élèves de l'ENT ou l'effectif de l'annuaire.")
    return make_findings("accedants_sup_effectif", "avertissement", source_path("gar/accedants"), msg,
                         ligne=bad["ligne"], uai=bad["uai"])


def active_subscriptions(ctx: Context, pairs: pd.DataFrame) -> pd.DataFrame:
    """Join (uai, id_ressource, mois) groups with the subscriptions active that month.

    Subscriptions with inverted dates count over the span between their two
    dates (the inversion is reported by ``periode_invalide``).

    Returns
    -------
    pandas.DataFrame
        ``pairs`` columns plus ``licences`` (summed over active subscriptions,
        NA when one of them has a negative or missing count, or when a
        subscription of the school and resource was left out for its form),
        ``actifs`` (number of active subscriptions) and ``incertain`` (a
        subscription of the school and resource was left out for its form:
        whether one is active is unknown).
    """
    ab = ctx.frame("gar/abonnements")
    inv = ctx.invalid("gar/abonnements")
    unsure = set(zip(ab.loc[inv, "uai"].tolist(), ab.loc[inv, "id_ressource"].tolist())) if inv.any() else set()
    start = ab[["date_debut", "date_fin"]].min(axis=1)
    end = ab[["date_debut", "date_fin"]].max(axis=1)
    subs = pd.DataFrame({"uai": ab["uai"], "id_ressource": ab["id_ressource"], "_d": start, "_f": end,
                         "_lic": pd.to_numeric(ab["licences"], errors="coerce")}).dropna(subset=["_d", "_f"])
    subs = subs[fast_isin(subs["uai"], set(pairs["uai"].unique().tolist()))]
    m = pairs[["uai", "id_ressource", "mois"]].drop_duplicates()
    m = m.assign(_m0=month_start(m["mois"]))
    m["_m1"] = m["_m0"] + pd.offsets.MonthEnd(0)
    j = m.merge(subs, on=["uai", "id_ressource"], how="inner")
    j = j[(j["_d"] <= j["_m1"]) & (j["_f"] >= j["_m0"])]
    j["_neg"] = j["_lic"].isna() | (j["_lic"] < 0)
    agg = j.groupby(["uai", "id_ressource", "mois"], observed=True).agg(
        licences=("_lic", "sum"), actifs=("_lic", "size"), _neg=("_neg", "any")).reset_index()
    agg["licences"] = agg["licences"].astype("float64").mask(agg["_neg"])
    out = pairs.merge(agg.drop(columns="_neg"), on=["uai", "id_ressource", "mois"], how="left")
    out["actifs"] = out["actifs"].fillna(0).astype("int64")
    out.loc[out["actifs"] == 0, "licences"] = 0.0
    out["incertain"] = np.fromiter(((u, r) in unsure for u, r in zip(out["uai"], out["id_ressource"])),
                                   dtype=bool, count=len(out))
    out.loc[out["incertain"], "licences"] = np.nan
    return out


@rule("affectations_sup_licences", "Affectations supérieures aux licences", "avertissement",
      needs=("gar/affectations", "gar/abonnements"),
      explication="Un mois donné, un établissement a affecté plus de licences d'une ressource que ses "
                  "abonnements actifs n'en comptent.",
      action="Vérifier le nombre de licences des abonnements (ou leurs dates) et les affectations faites dans "
             "la console d'affectation.")
def affectations_sup_licences(ctx: Context) -> pd.DataFrame:
    """Flag (school, resource, month) with more affectations than active licences."""
    af = ctx.frame("gar/affectations")
    keep = ctx.clean("gar/affectations", "affectations", resource=True)
    a = af.loc[keep, ["uai", "id_ressource", "mois", "affectations"]]
    if not len(a):
        return concat_findings([])
    g = a.assign(_l=a.index).groupby(["uai", "id_ressource", "mois"], observed=True) \
        .agg(affectations=("affectations", "sum"), ligne=("_l", "min")).reset_index()
    j = active_subscriptions(ctx, g)
    bad = j[j["licences"].notna() & (j["affectations"] > j["licences"])]
    msg = (bad["mois"] + " : " + bad["affectations"].map(fmt_int).astype("string") + " affectations de la ressource « "
           + bad["id_ressource"] + " » pour " + bad["licences"].map(fmt_int).astype("string")
           + " licence(s) active(s) : vérifier les licences des abonnements ou les affectations.")
    return make_findings("affectations_sup_licences", "avertissement", source_path("gar/affectations"), msg,
                         ligne=bad["ligne"], uai=bad["uai"], mois=bad["mois"], id_ressource=bad["id_ressource"])


@rule("ips_hors_plage", "IPS hors plage", "erreur", any_of=IPS_FILES,
      explication=f"Un indice de position sociale hors de la plage plausible ({IPS_MIN:.0f} à {IPS_MAX:.0f} ; les "
                  "valeurs publiées vont d'environ 50 à 165).",
      action="Vérifier la valeur dans la publication de la DEPP (séparateur décimal, colonne décalée).")
def ips_hors_plage(ctx: Context) -> pd.DataFrame:
    """Flag IPS values outside the plausible range."""
    out = []
    for name in ctx.present(IPS_FILES):
        df = ctx.frame(name)
        ips = pd.to_numeric(df["ips"], errors="coerce")
        bad = ((ips < IPS_MIN) | (ips > IPS_MAX)).fillna(False).to_numpy(bool)
        if not bad.any():
            continue
        sub = df.loc[bad]
        msg = ("IPS de " + _fmt_num(ips[bad]) + " hors de la plage plausible (" + f"{IPS_MIN:.0f} à {IPS_MAX:.0f}"
               + ") : vérifier la valeur publiée.")
        out.append(make_findings("ips_hors_plage", "erreur", source_path(name), msg, ligne=sub.index, uai=sub["uai"]))
    return concat_findings(out)


def _problem_rows(problems) -> pd.DataFrame:
    """Turn a loader's ``attrs["problemes"]`` (Problems, dicts or a frame) into rows."""
    if problems is None:
        return pd.DataFrame(columns=["ligne", "colonne", "message", "uai"])
    if isinstance(problems, pd.DataFrame):
        rows = problems.to_dict("records")
    else:
        rows = []
        for p in problems:
            if getattr(p, "kind", None):  # form problems have their own rules (rules_form)
                continue
            if isinstance(p, dict):
                rows.append(p)
            else:
                rows.append({"ligne": getattr(p, "line", None), "colonne": getattr(p, "column", None),
                             "message": getattr(p, "message", str(p)), "uai": getattr(p, "uai", None)})
    norm = []
    for r in rows:
        norm.append({"ligne": r.get("ligne", r.get("line")), "colonne": r.get("colonne", r.get("column")),
                     "message": r.get("message", ""), "uai": r.get("uai")})
    return pd.DataFrame(norm, columns=["ligne", "colonne", "message", "uai"])


@rule("valeur_non_exploitable", "Valeur publiée non exploitable", "info",
      any_of=("referentiel/annuaire", *IPS_FILES),
      explication="L'annuaire ou la DEPP publie certaines valeurs sous une forme non exploitable : IPS non "
                  "diffusé (NS : non significatif, ND : non disponible, le plus souvent pour de petits "
                  "effectifs), secteur, académie ou département non reconnus.",
      action="Rien à corriger dans les fichiers publiés : ces valeurs sont laissées vides et l'établissement "
             "est analysé sans elles.")
def valeur_non_exploitable(ctx: Context) -> pd.DataFrame:
    """Turn the register loaders' non-blocking problems (NS/ND values…) into information findings."""
    out = []
    for name in ctx.present(("referentiel/annuaire", *IPS_FILES)):
        df = ctx.frame(name)
        rows = _problem_rows(ctx.attrs.get(name, {}).get("problemes"))
        if not len(rows):
            continue
        lignes = pd.to_numeric(rows["ligne"], errors="coerce").astype("Int64")
        uai = rows["uai"].astype("string")
        if uai.isna().all() and "uai" in df.columns:
            uai = pd.Series(df["uai"].reindex(lignes.fillna(-1).astype("int64")).to_numpy(), dtype="string")
        col = rows["colonne"].astype("string")
        msg = rows["message"].astype("string").fillna("")
        msg = ("Colonne « " + col + " » : " + msg).where(col.notna(), msg)
        out.append(make_findings("valeur_non_exploitable", "info", source_path(name), msg, ligne=lignes, uai=uai))
    return concat_findings(out)


@rule("depense_incoherente", "Dépense GAR incohérente", "erreur", needs=("budget/depenses",),
      explication="Les dépenses en ressources accessibles par le GAR dépassent les dépenses totales en "
                  "ressources numériques de la même collectivité et année.",
      action="Vérifier les deux montants déclarés par la collectivité (le total doit inclure la part GAR).")
def depense_incoherente(ctx: Context) -> pd.DataFrame:
    """Flag budget rows where GAR spending exceeds total digital-resource spending."""
    b = ctx.frame("budget/depenses")
    tot, gar = b["depenses_ressources_numeriques"], b["dont_gar"]
    bad = ((gar > tot) & (tot >= 0) & (gar >= 0)).fillna(False).to_numpy(bool)
    sub = b.loc[bad]
    niveau = sub["niveau"].map({"region": "Région", "departement": "Département", "commune": "Commune"})
    msg = (niveau.astype("string").fillna("Collectivité") + " " + sub["code"].astype("string") + ", "
           + sub["annee"].astype("string") + " : dont GAR (" + _fmt_num(sub["dont_gar"]) + " €) supérieur au total ("
           + _fmt_num(sub["depenses_ressources_numeriques"]) + " €) ; vérifier les deux montants.")
    return make_findings("depense_incoherente", "erreur", source_path("budget/depenses"), msg, ligne=sub.index)


__all__ = ["NON_NEGATIVE", "active_subscriptions"]


@rule("editeur_orthographes", "Éditeur écrit de plusieurs façons", "avertissement", needs=("gar/ressources",),
      explication="Plusieurs graphies d'un nom d'éditeur ne diffèrent que par la casse, les accents ou la "
                  "ponctuation (« DICO PLUS », « Dico Plus ») : s'agit-il d'un même éditeur ou de deux ? Sans "
                  "réponse, chaque graphie a son propre rapport d'éditeur, jamais les chiffres d'une autre.",
      action="Regrouper les graphies d'un même éditeur sous un identifiant dans gar/editeurs.csv "
             "(colonnes editeur;id_editeur), ou corriger le catalogue.")
def editeur_orthographes(ctx: Context) -> pd.DataFrame:
    """Flag publisher spellings that share a slug and that no mapping file settles."""
    from ..publishers import read_mapping, spelling_conflicts

    res = ctx.frame("gar/ressources")
    names = res["editeur"].astype("string").fillna("")
    mapping = read_mapping(ctx.ds.path) or {}
    out = []
    for group in spelling_conflicts(names.tolist()):
        if len({mapping.get(n) for n in group}) == 1 and mapping.get(group[0]):
            continue  # the mapping file says they are one publisher
        first = [int(res.index[(names == n).to_numpy()][0]) for n in group]
        listed = ", ".join(f"« {n} » (ligne {line})" for n, line in zip(group, first))
        out.append(make_findings("editeur_orthographes", "avertissement", source_path("gar/ressources"),
                                 f"Graphies d'éditeur proches : {listed} ; chacune a son propre rapport tant que "
                                 "gar/editeurs.csv ne les regroupe pas.", ligne=min(first)))
    return concat_findings(out)
