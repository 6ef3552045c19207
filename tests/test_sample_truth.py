"""The planted effects of the default sample are recoverable from its files alone (slow)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from gar_analysis import config
from gar_analysis.sample import generate
from gar_analysis.sources import DataDir

FORMULA = ("{y} ~ referent + formation + convention + ips_10 + rural + C(niveau, Treatment('ecole'))"
           " + C(secteur, Treatment('public'))")
RENAME = {"C(niveau, Treatment('ecole'))[T.college]": "niveau[T.college]",
          "C(niveau, Treatment('ecole'))[T.lycee]": "niveau[T.lycee]",
          "C(secteur, Treatment('public'))[T.prive]": "secteur[T.prive]"}


def school_table(ds: DataDir) -> pd.DataFrame:
    """Derive one row per school with the build's factor definitions, from the files only."""
    a = ds.annuaire.reset_index(drop=True)
    ips = pd.concat([ds.ips_ecoles, ds.ips_colleges, ds.ips_lycees])[["uai", "ips"]]
    a = a.merge(ips.drop_duplicates("uai"), on="uai", how="left")
    com = ds.communes.reset_index(drop=True)
    com["densite"] = com.population / com.superficie_km2
    a = a.merge(com[["code_commune", "densite"]].drop_duplicates("code_commune"), on="code_commune", how="left")
    # schools whose register, IPS or commune carries a planted anomaly are left out (their
    # covariates are wrong on purpose); other anomalies stay (leaving out schools chosen for their
    # activity would select on the outcome)
    flagged = {x["uai"] for x in ds.truth["anomalies"] if x["source"].startswith("referentiel/")}
    a = a[~a.uai.isin(flagged)].dropna(subset=["densite", "ips", "nombre_eleves"]).drop_duplicates("uai")
    a["rural"] = (a.densite < config.RURAL_DENSITY).astype(int)
    a["ips_10"] = (a.ips - 100) / 10
    act, cts, ctr = ds.acteurs, ds.contacts, ds.contrats
    ref_ids = set(cts.id_acteur[cts.role == "referent_gar"])
    a["referent"] = a.uai.isin(set(act.code[(act.type == "etablissement") & act.id_acteur.isin(ref_ids)])).astype(int)
    a["formation"] = a.uai.isin(set(ds.actions.uai[ds.actions.type_action == "formation"])).astype(int)
    signed = act[act.id_acteur.isin(ctr.id_acteur[(ctr.objet == "convention_gar") & (ctr.statut == "signe")])]
    keys = set(zip(signed.type, signed.code))
    a["convention"] = [int((("commune", c) if n == "ecole" else ("departement", d) if n == "college"
                            else ("region", r)) in keys)
                       for n, c, d, r in zip(a.niveau, a.code_commune, a.code_departement, a.code_region)]
    et = ds.etablissements.drop_duplicates("uai")
    a["inscrit"] = a.uai.isin(set(et.uai)).astype(int)
    return a.merge(et[["uai", "date_inscription"]], on="uai", how="left")


@pytest.mark.slow
def test_planted_effects_recovered_from_files(tmp_path):
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generate(tmp_path, seed=config.SAMPLE_SEED)
        ds = DataDir(tmp_path)
        a = school_table(ds)
        truth = ds.truth["effects"]
        groups = a.code_academie.astype("category").cat.codes
        fit = smf.glm(FORMULA.format(y="inscrit"), a, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": groups})
        acces = ds.acces
        year = acces[(acces.mois >= "2024-09") & (acces.mois <= "2025-08")].groupby("uai").acces.sum()
        u = a[(a.inscrit == 1) & (a.date_inscription < "2024-09-01")].copy()
        u["acces"] = u.uai.map(year).fillna(0)
        alpha = truth["usage"]["alpha"]
        fit_u = smf.glm(FORMULA.format(y="acces"), u, family=sm.families.NegativeBinomial(alpha=alpha),
                        offset=np.log(u.nombre_eleves.astype(float))).fit(
            cov_type="cluster", cov_kwds={"groups": u.code_academie.astype("category").cat.codes})
    for model, res in (("adoption", fit), ("usage", fit_u)):
        ci = res.conf_int().rename(index=RENAME)
        for term, value in truth[model]["terms"].items():
            lo, hi = ci.loc[term]
            assert lo <= value <= hi, (model, term, value, lo, hi)
    # the académie effects are genuine departures: observed/expected ranks follow the planted ranks
    a["p"] = fit.predict(a)
    oe = a.groupby("code_academie").apply(lambda g: g.inscrit.sum() / g.p.sum(), include_groups=False)
    planted = pd.Series(truth["adoption"]["academie"]).reindex(oe.index)
    assert np.corrcoef(np.log(oe), planted)[0, 1] > 0.5
