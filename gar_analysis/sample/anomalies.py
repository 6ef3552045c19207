"""Plant known anomalies in the clean sample, one set per quality rule, and return the truth.

:func:`plant_anomalies` is called by the generator once the clean frames are
built and before they are written. Each anomaly is planted on its own school
(never two anomalies on the same UAI), in a way that triggers its rule and no
other: a corrupted UAI is planted on a *copy* of a line (the school's own
series stays whole), a negative count on a small line of a busy month, a
collapse keeps the month reported, and so on. The quality checks
(:mod:`gar_analysis.checks`) are measured against the returned truth.
"""
from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
#: Anomalies planted per rule.
PER_RULE = {"default": 20, "national": 40}
#: Term months (seasonal factor well above the holiday threshold of the checks).
TERM_MONTHS = ("09", "10", "11", "01", "03", "05", "06")


def _letter(uai: str) -> str:
    return UAI_LETTERS[int(uai[:7]) % 23]


def _wrong_letter(uai: str, k: int) -> str:
    """Return the UAI with a wrong check letter (``k`` picks which)."""
    good = UAI_LETTERS.index(_letter(uai))
    return uai[:7] + UAI_LETTERS[(good + 1 + k % 22) % 23]


def _corrupt(uai: str, k: int) -> str:
    """Return an invalid variant of a UAI (wrong letter, missing digit, lower case or letter O)."""
    kind = k % 4
    if kind == 0:
        return _wrong_letter(uai, k)
    if kind == 1:
        return uai[:3] + uai[4:]                      # a digit lost
    if kind == 2:
        return uai[:7] + uai[7].lower()
    return uai[:7] + "O"                              # O is never a check letter


def _src(name: str) -> str:
    """Return the file of a frame name, relative to the data directory."""
    from .dnma import DNMA_RAW_FILES

    return DNMA_RAW_FILES[name][0] if name in DNMA_RAW_FILES else f"{name}.csv"


def _truth(regle, source, uai="", mois="", id_ressource="", **extra) -> dict:
    out = {"regle": regle, "source": source, "uai": str(uai), "mois": "" if mois is None else str(mois),
           "id_ressource": "" if id_ressource is None else str(id_ressource)}
    out.update(extra)
    return out


class _Planter:
    """Shared state: frames, random generator, schools already used."""

    def __init__(self, frames: dict, rng: np.random.Generator, n: int):
        self.f = frames
        self.rng = rng
        self.n = n
        self.taken: set[str] = set()
        self.truth: list[dict] = []
        self._groups: dict = {}
        acces = frames["gar/acces"]
        mt = acces.groupby(["uai", "mois"], sort=True).agg(total=("acces", "sum"), lignes=("acces", "size"))
        self.mt = mt.reset_index()
        per = self.mt.groupby("uai").agg(actifs=("mois", "size"), mediane=("total", "median"),
                                         debut=("mois", "min"), fin=("mois", "max"))
        self.schools = per
        ann = frames["referentiel/annuaire"]
        self.register = set(ann["Identifiant_de_l_etablissement"].astype(str))

    # ------------------------------------------------------------------ helpers
    def rows(self, df: pd.DataFrame, uai: str) -> pd.DataFrame:
        """Return the rows of ``df`` with this UAI (positions grouped once per frame: no full scan)."""
        key = id(df)
        hit = self._groups.get(key)
        if hit is None or hit[0]() is not df or hit[1] != len(df):
            self._groups = {k: v for k, v in self._groups.items() if v[0]() is not None}
            hit = (weakref.ref(df), len(df), df.groupby(df[self.uai_col(df)].to_numpy(), sort=False).indices)
            self._groups[key] = hit
        pos = hit[2].get(uai)
        return df.iloc[pos] if pos is not None else df.iloc[:0]

    def uai_col(self, df_or_name) -> str:
        """Return the UAI column of a frame (``UAI`` in the DNMA exported with labels)."""
        df = self.f[df_or_name] if isinstance(df_or_name, str) else df_or_name
        return "UAI" if "UAI" in df.columns else "uai"

    def pick(self, candidates, k=None) -> list[str]:
        """Pick up to ``k`` distinct, unused UAIs among candidates (marked as used)."""
        k = self.n if k is None else k
        pool = sorted(set(map(str, candidates)) - self.taken)
        if not pool:
            return []
        chosen = list(self.rng.choice(pool, size=min(k, len(pool)), replace=False))
        self.taken.update(chosen)
        return chosen

    def add(self, **kw):
        self.truth.append(_truth(**kw))

    def append(self, name: str, rows: pd.DataFrame) -> None:
        self.f[name] = pd.concat([self.f[name], rows], ignore_index=True)

    def busy(self, min_active=8, min_median=120.0) -> pd.Index:
        s = self.schools
        return s.index[(s["actifs"] >= min_active) & (s["mediane"] >= min_median)]

    def inner_term_month(self, uai: str, min_total=150.0) -> str | None:
        """Return a term month strictly inside the school's active span with a large total, or None."""
        s = self.schools.loc[uai]
        m = self.mt[(self.mt["uai"] == uai) & (self.mt["mois"] > s["debut"]) & (self.mt["mois"] < s["fin"])
                    & self.mt["mois"].str[5:].isin(TERM_MONTHS) & (self.mt["total"] >= min_total)]
        if not len(m):
            return None
        return str(m["mois"].iloc[int(self.rng.integers(len(m)))])

    def fresh_uai(self, like: str) -> str:
        """Return a valid UAI of the same département that no file uses."""
        prefix = int(like[:3])
        while True:
            digits = prefix * 10000 + int(self.rng.integers(10000))
            u = f"{digits:07d}{UAI_LETTERS[digits % 23]}"
            if u not in self.register and u not in self.taken:
                self.taken.add(u)
                return u

    # ------------------------------------------------------------------ rules
    def uai_invalide(self):
        acces, au, act = self.f["gar/acces"], self.f["dnma/profils"], self.f["crm/actions"]
        for i, u in enumerate(self.pick(self.schools.index)):
            bad = _corrupt(u, i)
            target = ("gar/acces", "gar/acces", "dnma/profils", "crm/actions")[i % 4]
            df = {"gar/acces": acces, "dnma/profils": au, "crm/actions": act}[target]
            rows = self.rows(df, u)
            if not len(rows):
                target, df, rows = "gar/acces", acces, self.rows(acces, u)
            row = rows.iloc[[int(self.rng.integers(len(rows)))]].copy()
            row[self.uai_col(target)] = bad
            self.append(target, row)
            self.add(regle="uai_invalide", source=_src(target), uai=bad,
                     mois=row["mois"].iloc[0] if "mois" in row else "",
                     id_ressource=row["id_ressource"].iloc[0] if "id_ressource" in row else "")
        # a register line with an invalid UAI (a copy: the school itself stays known)
        ann = self.f["referentiel/annuaire"]
        for i, u in enumerate(self.pick(ann["Identifiant_de_l_etablissement"], max(2, self.n // 10))):
            row = ann[ann["Identifiant_de_l_etablissement"] == u].iloc[[0]].copy()
            bad = _wrong_letter(u, i + 3)
            row["Identifiant_de_l_etablissement"] = bad
            self.append("referentiel/annuaire", row)
            self.add(regle="uai_invalide", source="referentiel/annuaire.csv", uai=bad)

    def one_line(self, uai, name):
        """Return a copy of one random line of ``uai`` in file ``name`` (else in gar/acces)."""
        rows = self.rows(self.f[name], uai)
        if not len(rows):
            name = "gar/acces"
            rows = self.rows(self.f[name], uai)
        return name, rows.iloc[[int(self.rng.integers(len(rows)))]].copy()

    def doublon(self):
        targets = ("gar/acces", "gar/affectations", "dnma/profils", "gar/accedants", "gar/etablissements")
        for i, u in enumerate(self.pick(self.schools.index)):
            name, row = self.one_line(u, targets[i % len(targets)])
            self.append(name, row)
            self.add(regle="doublon", source=_src(name), uai=u, mois=row["mois"].iloc[0] if "mois" in row else "",
                     id_ressource=row["id_ressource"].iloc[0] if "id_ressource" in row else "")

    def uai_inconnu(self):
        targets = ("gar/acces", "gar/affectations", "dnma/profils", "gar/etablissements", "crm/actions")
        for i, u in enumerate(self.pick(self.schools.index)):
            name, row = self.one_line(u, targets[i % len(targets)])
            new = self.fresh_uai(u)
            row[self.uai_col(name)] = new
            self.append(name, row)
            self.add(regle="uai_inconnu", source=_src(name), uai=new)

    def ressource_inconnue(self):
        acces = self.f["gar/acces"]
        for i, u in enumerate(self.pick(self.schools.index)):
            unknown = f"R9{900 + i:03d}"
            if i % 4 == 3:  # a subscription to an unknown resource (a copy: the real one stays)
                ab = self.f["gar/abonnements"]
                rows = self.rows(ab, u)
                if len(rows):
                    row = rows.iloc[[0]].copy()
                    row["id_ressource"] = unknown
                    row["id_abonnement"] = f"AB9{i:06d}"
                    self.append("gar/abonnements", row)
                    self.add(regle="ressource_inconnue", source="gar/abonnements.csv", uai=u, id_ressource=unknown)
                    continue
            idx = self.rows(acces, u).index
            j = idx[int(self.rng.integers(len(idx)))]
            acces.loc[j, "id_ressource"] = unknown     # a typo in place: the school's totals are unchanged
            self.add(regle="ressource_inconnue", source="gar/acces.csv", uai=u, mois=acces.at[j, "mois"],
                     id_ressource=unknown)

    def territoire_incoherent(self):
        from .. import territories

        ann = self.f["referentiel/annuaire"]
        deps = territories.departements()
        acas = sorted(deps["code_academie"].unique())
        regs = sorted(deps["code_region"].unique())
        key = ann["Identifiant_de_l_etablissement"]
        chosen = self.pick(key[~key.isin(self.taken)])
        for i, u in enumerate(chosen):
            j = ann.index[key == u][0]
            kind = i % 4
            if kind in (0, 1):
                cur = ann.at[j, "Code_academie"]
                ann.at[j, "Code_academie"] = [a for a in acas if a != cur][int(self.rng.integers(len(acas) - 1))]
            elif kind == 2:
                cur = ann.at[j, "Code_region"]
                ann.at[j, "Code_region"] = [r for r in regs if r != cur][int(self.rng.integers(len(regs) - 1))]
            else:
                cur = str(ann.at[j, "Code_commune"])
                other = "29019" if not cur.startswith("29") else "35238"
                ann.at[j, "Code_commune"] = other
            self.add(regle="territoire_incoherent", source="referentiel/annuaire.csv", uai=u)
        # an académie label that does not match the département in an IPS file
        ips = self.f["referentiel/ips_colleges"]
        for u in self.pick(ips["UAI"], max(2, self.n // 5)):
            j = ips.index[ips["UAI"] == u][0]
            ips.at[j, "Académie"] = "LILLE" if ips.at[j, "Académie"] != "LILLE" else "RENNES"
            self.add(regle="territoire_incoherent", source="referentiel/ips_colleges.csv", uai=u)

    def acces_avant_inscription(self):
        et = self.f["gar/etablissements"]
        cand = self.busy(min_active=6, min_median=1)
        cand = cand[cand.isin(et["uai"])]
        for u in self.pick(cand):
            months = sorted(self.mt.loc[self.mt["uai"] == u, "mois"])
            k = int(self.rng.integers(1, 4))
            new_first = months[k]
            j = et.index[et["uai"] == u][0]
            et.at[j, "date_inscription"] = f"{new_first}-{int(self.rng.integers(1, 28)):02d}"
            for m in months[:k]:
                self.add(regle="acces_avant_inscription", source="gar/acces.csv", uai=u, mois=m)

    def acces_sans_abonnement(self):
        acces, ab, cat = self.f["gar/acces"], self.f["gar/abonnements"], self.f["gar/ressources"]
        subscribed = ab.groupby("uai")["id_ressource"].agg(set)
        catalogue = cat["id_ressource"].tolist()
        rows = []
        for u in self.pick(self.schools.index.intersection(subscribed.index)):
            free = [r for r in catalogue if r not in subscribed[u]]
            res = free[int(self.rng.integers(len(free)))]
            src = self.rows(acces, u)
            row = src.iloc[[int(self.rng.integers(len(src)))]].copy()
            row["id_ressource"] = res
            row["acces"] = int(self.rng.integers(1, 6))
            rows.append(row)
            self.add(regle="acces_sans_abonnement", source="gar/acces.csv", uai=u, mois=row["mois"].iloc[0],
                     id_ressource=res)
        if rows:
            self.append("gar/acces", pd.concat(rows))

    def periode_invalide(self):
        ab = self.f["gar/abonnements"]
        for u in self.pick(ab["uai"]):
            j = ab.index[ab["uai"] == u]
            j = j[int(self.rng.integers(len(j)))]
            d0, d1 = ab.at[j, "date_debut"], ab.at[j, "date_fin"]
            if d0 == d1:
                continue
            ab.at[j, "date_debut"], ab.at[j, "date_fin"] = d1, d0
            self.add(regle="periode_invalide", source="gar/abonnements.csv", uai=u,
                     id_ressource=ab.at[j, "id_ressource"])

    def valeur_negative(self):
        acces, aff, au, ab = (self.f[k] for k in ("gar/acces", "gar/affectations", "dnma/profils", "gar/abonnements"))
        for i, u in enumerate(self.pick(self.busy(min_active=6, min_median=50))):
            kind = i % 4
            if kind == 0:   # a small line of a busy month: the school's monthly total barely moves
                sub = self.rows(acces, u)
                tot = sub.groupby("mois")["acces"].transform("sum")
                small = sub[(sub["acces"] <= 0.1 * tot) & (tot >= 50)]
                if not len(small):
                    kind = 1
                else:
                    j = small.index[int(self.rng.integers(len(small)))]
                    acces.loc[j, "acces"] = -int(acces.at[j, "acces"])
                    self.add(regle="valeur_negative", source="gar/acces.csv", uai=u, mois=acces.at[j, "mois"],
                             id_ressource=acces.at[j, "id_ressource"])
                    continue
            if kind == 1:
                idx = self.rows(aff, u).index
                if len(idx):
                    j = idx[int(self.rng.integers(len(idx)))]
                    aff.loc[j, "affectations"] = -int(aff.at[j, "affectations"])
                    self.add(regle="valeur_negative", source="gar/affectations.csv", uai=u, mois=aff.at[j, "mois"],
                             id_ressource=aff.at[j, "id_ressource"])
                    continue
            if kind == 2:
                idx = self.rows(au, u).index
                if len(idx):
                    j = idx[int(self.rng.integers(len(idx)))]
                    au.loc[j, "visites_globales"] = -max(1, int(au.at[j, "visites_globales"]))
                    self.add(regle="valeur_negative", source=_src("dnma/profils"), uai=u)
                    continue
            idx = ab.index[ab["uai"] == u]
            if len(idx):
                j = idx[int(self.rng.integers(len(idx)))]
                ab.loc[j, "montant_ht"] = -abs(float(ab.at[j, "montant_ht"])) - 1.0
                self.add(regle="valeur_negative", source="gar/abonnements.csv", uai=u,
                         id_ressource=ab.at[j, "id_ressource"])

    def accedants_sup_effectif(self):
        acc, ann = self.f["gar/accedants"], self.f["referentiel/annuaire"]
        eff = pd.to_numeric(ann.set_index("Identifiant_de_l_etablissement")["Nombre_d_eleves"], errors="coerce")
        eff = eff[~eff.index.duplicated()]
        el = acc[(acc["profil"] == "eleve") & acc["uai"].isin(eff.dropna().index)]
        for u in self.pick(el["uai"]):
            j = self.rows(el, u).index
            j = j[int(self.rng.integers(len(j)))]
            acc.loc[j, "accedants"] = int(np.ceil(eff[u] * self.rng.uniform(1.3, 2.0))) + 5
            self.add(regle="accedants_sup_effectif", source="gar/accedants.csv", uai=u)

    def affectations_sup_licences(self):
        aff, ab = self.f["gar/affectations"], self.f["gar/abonnements"]
        lic = ab.groupby(["uai", "id_ressource"])["licences"].sum()
        el = aff[aff["profil"] == "eleve"]
        for u in self.pick(el["uai"]):
            j = self.rows(el, u).index
            j = j[int(self.rng.integers(len(j)))]
            total = int(lic.get((u, aff.at[j, "id_ressource"]), 0))
            aff.loc[j, "affectations"] = total + int(self.rng.integers(5, 60))
            self.add(regle="affectations_sup_licences", source="gar/affectations.csv", uai=u, mois=aff.at[j, "mois"],
                     id_ressource=aff.at[j, "id_ressource"])

    def rupture_serie(self):
        acces = self.f["gar/acces"]
        drop = []
        for i, u in enumerate(self.pick(self.busy(min_active=10, min_median=150))):
            m = self.inner_term_month(u, min_total=150)
            if m is None:
                continue
            r = self.rows(acces, u)
            rows = r.index[(r["mois"] == m).to_numpy()]
            if i % 2 == 0:   # spike: a month loaded many times over
                acces.loc[rows, "acces"] = acces.loc[rows, "acces"] * int(self.rng.integers(8, 16))
            else:            # collapse: the month keeps one small line
                total = int(acces.loc[rows, "acces"].sum())
                acces.loc[rows[0], "acces"] = max(1, total // 30)
                drop.extend(rows[1:])
            self.add(regle="rupture_serie", source="gar/acces.csv", uai=u, mois=m)
        self.f["gar/acces"] = acces.drop(index=drop).reset_index(drop=True)
        sv = self.f.get("dnma/services")
        if sv is not None and len(sv):  # the DNMA's own break: visites_notes no longer measured
            from .dnma import NOTES_STOP

            after = np.flatnonzero((sv["debutsemaine"] >= NOTES_STOP).to_numpy())
            if len(after):
                self.add(regle="rupture_serie", source=_src("dnma/services"), mois=NOTES_STOP[:7],
                         ligne=int(after[0]) + 2)

    def mois_manquant(self):
        acces = self.f["gar/acces"]
        drop = []
        for u in self.pick(self.busy(min_active=10, min_median=150)):
            m = self.inner_term_month(u, min_total=150)
            if m is None:
                continue
            r = self.rows(acces, u)
            drop.extend(r.index[(r["mois"] == m).to_numpy()])
            self.add(regle="mois_manquant", source="gar/acces.csv", uai=u, mois=m)
        self.f["gar/acces"] = acces.drop(index=drop).reset_index(drop=True)

    def incoherence_dnma(self):
        """Zero ENT visits in every week touching a month with GAR accès."""
        au = self.f["dnma/profils"]
        week = pd.to_datetime(au["debutSemaine"])
        m1 = week.dt.strftime("%Y-%m")
        m2 = (week + pd.Timedelta(days=6)).dt.strftime("%Y-%m")
        withacc = self.mt[self.mt["total"] > 0]
        cand = pd.DataFrame({"uai": au["UAI"], "mois": m1}).merge(withacc[["uai", "mois"]]).drop_duplicates()
        # keep school-months fully covered by weeks of the file (not the first or last month)
        cand = cand[(cand["mois"] > m1.min()) & (cand["mois"] < m2.max())]
        cols = [c for c in au.columns if c.startswith(("visites_", "utilisateurs_", "duree_"))]
        for u in self.pick(cand["uai"]):
            rows = cand[cand["uai"] == u]
            m = str(rows["mois"].iloc[int(self.rng.integers(len(rows)))])
            hit = au.index[((au["UAI"] == u) & ((m1 == m) | (m2 == m))).to_numpy()]
            for c in cols:
                au[c] = au[c].astype(object)
                au.loc[hit, c] = 0 if c.startswith("visites_") else "N/A"
            self.add(regle="incoherence_dnma", source=_src("dnma/profils"), uai=u, mois=m)

    def ressources_ent_gar(self):
        """ENT resource visits without GAR accès in a school year, and the reverse."""
        from ..sources.dnma import SERVICES_RESSOURCES

        sv = self.f.get("dnma/services")
        if sv is None or not len(sv):
            return
        week = pd.to_datetime(sv["debutsemaine"])
        m1 = week.dt.strftime("%Y-%m")
        year_acc = self.mt[self.mt["mois"].isin(set(m1))].groupby("uai")["total"].sum()
        measured = pd.Index(sorted(set(sv["uai"])))
        without = measured[~measured.isin(year_acc[year_acc > 0].index)]
        busy = measured[measured.isin(year_acc[year_acc >= 200].index)]
        half = max(1, self.n // 2)
        for u in self.pick(without, half):
            idx = sv.index[(sv["uai"] == u).to_numpy()]
            hit = idx[self.rng.choice(len(idx), size=min(3, len(idx)), replace=False)]
            for c in ("visites_manuel_numerique", "utilisateurs_manuel_numerique", "duree_manuel_numerique"):
                sv[c] = sv[c].astype(object)
            sv.loc[hit, "visites_manuel_numerique"] = self.rng.integers(30, 90, len(hit))
            sv.loc[hit, "utilisateurs_manuel_numerique"] = self.rng.integers(10, 30, len(hit)).astype(str)
            sv.loc[hit, "duree_manuel_numerique"] = "00:07:12"
            self.add(regle="ressources_ent_gar", source=_src("dnma/services"), uai=u)
        for u in self.pick(busy, half):
            idx = sv.index[(sv["uai"] == u).to_numpy()]
            for name in SERVICES_RESSOURCES:
                for c in (f"visites_{name}", f"utilisateurs_{name}", f"duree_{name}"):
                    sv[c] = sv[c].astype(object)
                    sv.loc[idx, c] = 0 if c.startswith("visites_") else "N/A"
            self.add(regle="ressources_ent_gar", source=_src("dnma/services"), uai=u)

    def ips_hors_plage(self):
        specs = (("referentiel/ips_ecoles", "UAI", "IPS"), ("referentiel/ips_colleges", "UAI", "IPS"),
                 ("referentiel/ips_lycees", "uai", "ips_ensemble_gt_pro"))
        for i, u in enumerate(self.pick(pd.concat([self.f[n][c] for n, c, _ in specs]))):
            for name, col, val in specs:
                df = self.f[name]
                hit = df.index[df[col] == u]
                if len(hit):
                    j = hit[0]
                    v = float(df.at[j, val])
                    df.loc[j, val] = round(v * 10, 1) if i % 2 == 0 else round(v / 10, 1)
                    self.add(regle="ips_hors_plage", source=f"{name}.csv", uai=u)
                    break

    def valeur_non_exploitable(self):
        ips = self.f["referentiel/ips_ecoles"]
        ips["IPS"] = ips["IPS"].astype(object)
        for u in self.pick(ips["UAI"], max(2, self.n // 2)):
            j = ips.index[ips["UAI"] == u][0]
            ips.loc[j, "IPS"] = "NS"
            self.add(regle="valeur_non_exploitable", source="referentiel/ips_ecoles.csv", uai=u)

    def depense_incoherente(self):
        b = self.f["budget/depenses"]
        ok = b.index[(b["depenses_ressources_numeriques"] > 0)]
        chosen = self.rng.choice(ok, size=min(self.n, len(ok)), replace=False)
        for j in sorted(chosen):
            b.loc[j, "dont_gar"] = round(float(b.at[j, "depenses_ressources_numeriques"]) * self.rng.uniform(1.1, 1.6), 2)
            self.add(regle="depense_incoherente", source="budget/depenses.csv", ligne=int(b.index.get_loc(j)) + 2,
                     code=str(b.at[j, "code"]), niveau=str(b.at[j, "niveau"]), annee=int(b.at[j, "annee"]))


#: Planting order: rules that drop accès lines last (they renumber the lines).
ORDER = ("uai_invalide", "doublon", "uai_inconnu", "ressource_inconnue", "territoire_incoherent",
         "acces_avant_inscription", "acces_sans_abonnement", "periode_invalide", "valeur_negative",
         "accedants_sup_effectif", "affectations_sup_licences", "incoherence_dnma", "ressources_ent_gar",
         "ips_hors_plage", "valeur_non_exploitable", "depense_incoherente", "rupture_serie", "mois_manquant")


def plant_anomalies(frames: dict, rng: np.random.Generator, scale: str = "default") -> list[dict]:
    """Plant anomalies of every quality rule in the clean sample frames (in place).

    Parameters
    ----------
    frames : dict
        Contract name → DataFrame as about to be written (``referentiel/*`` in
        their published layouts). Frames are modified or replaced in the dict.
    rng : numpy.random.Generator
        Random generator (seeded by the caller: same seed, same anomalies).
    scale : str
        ``"default"`` (about 20 anomalies per rule) or ``"national"`` (40).

    Returns
    -------
    list of dict
        One record per planted anomaly: ``regle``, ``source`` (path relative to
        the data directory), ``uai``, ``mois``, ``id_ressource`` ("" when not
        applicable); budget anomalies also carry ``ligne``, ``niveau``,
        ``code``, ``annee`` (they concern no school).
    """
    p = _Planter(frames, rng, PER_RULE.get(scale, PER_RULE["default"]))
    for name in ORDER:
        getattr(p, name)()
    return p.truth
