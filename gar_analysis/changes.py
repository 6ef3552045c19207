"""Comparison base of a release and release notes (minimal stand-in, owned by developer E).

This module implements only the interface agreed between the cycle (``cycle.py``)
and the change detection: :func:`write_snapshot` and :func:`release_notes`.
Developer E's module replaces it at merge; keep the signatures.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .io import atomic_write_parquet, atomic_write_text

#: Territory code columns a snapshot table may carry (a territory's slice is selected on them).
TERRITORY_CODES = ("code_academie", "code_region_academique", "code_region", "code_departement")
#: School-level columns kept in the snapshot (no pupil-level data).
_SCHOOL_COLUMNS = ("uai", "code_departement", "code_academie", "code_region", "niveau", "secteur", "inscrit")


def write_snapshot(processed_dir, dest_dir) -> Path:
    """Write the comparison base of a release; return its folder.

    Parameters
    ----------
    processed_dir : str or Path
        Processed tables of the release.
    dest_dir : str or Path
        ``config.HISTORY_DIR / <release-id>``.

    Returns
    -------
    Path
        ``dest_dir``, holding ``etablissements.parquet`` and ``snapshot.json``.
    """
    from . import indicators as ind
    from .build import load_manifest

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    tables = ind.Tables(processed_dir)
    facts = ind.school_facts(tables)
    keep = [c for c in (*_SCHOOL_COLUMNS, "acces_12m", "actif_mois") if c in facts.columns]
    atomic_write_parquet(facts[keep].reset_index(drop=True), dest / "etablissements.parquet")
    manifest = load_manifest(processed_dir)
    info = {"periode": manifest.get("periode"), "mois_reference": facts.attrs.get("mois_reference")}
    atomic_write_text(dest / "snapshot.json", json.dumps(info, ensure_ascii=False, indent=2))
    return dest


def release_notes(reference_dir, processed_dir, run_dir, *, release_id: str, reference_id: str | None = None) -> dict:
    """Write ``nouveautes.html`` and ``changements.json`` into ``run_dir``; return a short summary.

    The stand-in counts schools newly registered or newly active per académie;
    E's module brings the full release notes.
    """
    from . import indicators as ind
    from .disclosure import Spec, publish, with_spec

    run_dir = Path(run_dir)
    facts = ind.school_facts(ind.Tables(processed_dir))
    summary = {"release": release_id, "reference": reference_id, "changements": []}
    if reference_dir is None or not (Path(reference_dir) / "etablissements.parquet").exists():
        text = "Première publication : il n'y a rien à comparer."
        summary["premiere"] = True
    else:
        before = pd.read_parquet(Path(reference_dir) / "etablissements.parquet")
        merged = facts[["uai", "code_academie", "inscrit", "actif_mois"]].merge(
            before[["uai", "inscrit", "actif_mois"]], on="uai", how="left", suffixes=("", "_avant"))
        merged["nouvel_inscrit"] = merged["inscrit"].fillna(False).astype(bool) & ~merged["inscrit_avant"].fillna(
            False).astype(bool)
        merged["nouvel_actif"] = merged["actif_mois"].fillna(False).astype(bool) & ~merged["actif_mois_avant"].fillna(
            False).astype(bool)
        counts = merged.groupby("code_academie")[["nouvel_inscrit", "nouvel_actif"]].sum().reset_index()
        counts = counts[(counts["nouvel_inscrit"] > 0) | (counts["nouvel_actif"] > 0)]
        published = publish(with_spec(counts, Spec()))  # counts of schools: facts about institutions
        summary["changements"] = published.astype(str).to_dict(orient="records")
        summary["premiere"] = False
        text = f"Depuis la publication précédente ({reference_id}) : {len(counts)} académie(s) avec des changements."
    atomic_write_text(run_dir / "nouveautes.html",
                      f"<!doctype html><html lang=\"fr\"><meta charset=\"utf-8\"><title>Nouveautés</title>"
                      f"<h1>Nouveautés de la publication {release_id}</h1><p>{text}</p></html>\n")
    atomic_write_text(run_dir / "changements.json", json.dumps(summary, ensure_ascii=False, indent=2))
    return {"release": release_id, "reference": reference_id, "texte": text,
            "n_changements": len(summary["changements"])}
