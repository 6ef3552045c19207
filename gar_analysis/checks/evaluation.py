"""Measure the rules against the sample's planted anomalies (``truth.json``): recall and precision per rule.

A planted anomaly is *detected* when a finding has the same rule and UAI, and
the same month when the planted anomaly has one (budget anomalies, which
concern no school, are matched on their source and line). A finding is
*correct* when it matches a planted anomaly that way. Findings that only say a
rule was skipped (a file absent) are not counted.
"""
from __future__ import annotations

import pandas as pd

SKIPPED_MARK = "non effectué"
#: Notices of lines left out for their form (see ``engine.LEFT_OUT_MARK``): not findings about the data.
LEFT_OUT_MARK = "ligne(s) écartée(s)"


def _counted(findings: pd.DataFrame) -> pd.Series:
    msg = findings["message"].fillna("")
    return ~msg.str.contains(SKIPPED_MARK, regex=False) & ~msg.str.contains(LEFT_OUT_MARK, regex=False)


def _truth_frame(anomalies: list[dict]) -> pd.DataFrame:
    t = pd.DataFrame(anomalies, columns=None)
    for c in ("regle", "source", "uai", "mois", "id_ressource"):
        if c not in t.columns:
            t[c] = ""
    t = t.fillna({"uai": "", "mois": "", "id_ressource": ""})
    if "ligne" not in t.columns:
        t["ligne"] = pd.NA
    t["ligne"] = pd.to_numeric(t["ligne"], errors="coerce").astype("Int64")
    return t.reset_index(drop=True)


def match(findings: pd.DataFrame, anomalies: list[dict]) -> tuple[pd.Series, pd.Series]:
    """Match findings and planted anomalies.

    Returns
    -------
    detected : Series of bool
        One per planted anomaly: found by a finding.
    correct : Series of bool
        One per counted finding (skip notices excluded): matches a planted anomaly.
    """
    t = _truth_frame(anomalies)
    f = findings[_counted(findings)].copy()
    f = f.assign(uai=f["uai"].fillna(""), mois=f["mois"].fillna(""), _fid=range(len(f)))
    t = t.assign(_tid=range(len(t)))
    school = t[t["uai"] != ""]
    # by rule and UAI, then month when the planted anomaly has one
    j = school.merge(f[["regle", "uai", "mois", "_fid"]], on=["regle", "uai"], suffixes=("", "_f"))
    j = j[(j["mois"] == "") | (j["mois"] == j["mois_f"])]
    # anomalies without a school: same rule, source and line
    other = t[(t["uai"] == "") & t["ligne"].notna()]
    k = other.merge(f[["regle", "source", "ligne", "_fid"]], on=["regle", "source", "ligne"])
    hit_t = set(j["_tid"]) | set(k["_tid"])
    hit_f = set(j["_fid"]) | set(k["_fid"])
    detected = pd.Series(t["_tid"].isin(hit_t).to_numpy(), index=t.index)
    correct = pd.Series(f["_fid"].isin(hit_f).to_numpy(), index=f.index)
    return detected, correct


def score(findings: pd.DataFrame, anomalies: list[dict]) -> pd.DataFrame:
    """Return recall and precision per rule.

    Parameters
    ----------
    findings : pandas.DataFrame
        Output of :func:`~gar_analysis.checks.run_checks`.
    anomalies : list of dict
        ``truth["anomalies"]`` of the sample.

    Returns
    -------
    pandas.DataFrame
        Index ``regle``; columns ``plantees, detectees, rappel, constats, corrects, precision``.
    """
    t = _truth_frame(anomalies)
    detected, correct = match(findings, anomalies)
    f = findings[_counted(findings)]
    rules = sorted(set(t["regle"]) | set(f["regle"]))
    out = pd.DataFrame(index=pd.Index(rules, name="regle"))
    out["plantees"] = t.groupby("regle").size().reindex(rules).fillna(0).astype(int)
    out["detectees"] = detected.groupby(t["regle"]).sum().reindex(rules).fillna(0).astype(int)
    out["constats"] = f.groupby("regle").size().reindex(rules).fillna(0).astype(int)
    out["corrects"] = correct.groupby(f["regle"]).sum().reindex(rules).fillna(0).astype(int)
    out["rappel"] = (out["detectees"] / out["plantees"]).where(out["plantees"] > 0)
    out["precision"] = (out["corrects"] / out["constats"]).where(out["constats"] > 0)
    return out[["plantees", "detectees", "rappel", "constats", "corrects", "precision"]]
