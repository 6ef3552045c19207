"""Derive the sample generator's calibration figures from the real open data.

Reads the real files shared beside the repository (``config.SHARED_OPENDATA_DIR``)
and writes **aggregate figures only**, one row per département, to
``gar_analysis/data/calibration_departements.csv``:

- school counts by level and sector (IPS écoles, rentrée 2024-2025; IPS collèges
  and lycées, rentrée 2022-2023);
- IPS mean and standard deviation by level and sector;
- mean log pupil count of collèges and lycées (IPS files' ``effectifs``);
- the département's centroid and the spread of its communes' coordinates;
- the communes' count and the mean / standard deviation of their log population
  and log area, and the share of rural communes (density below
  ``config.RURAL_DENSITY``).

Run ``python -m gar_analysis.sample.calibrate`` to regenerate it; no real file
is ever copied into the repository.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config, territories
from ..io import atomic_write_text, csv_text

CALIBRATION_FILE = config.REFERENCE_DIR / "calibration_departements.csv"

_ECOLES = "ips-ecoles-2022-2025/fr-en-ips-ecoles-ap2022.parquet"
_COLLEGES = "ips-colleges-2022/fr-en-ips-colleges-ap2022.csv"
_LYCEES = "ips-lycees-2022/fr-en-ips-lycees-ap2022.parquet"
_COMMUNES = "communes-2024-population/communes.csv"
_DEPARTEMENTS = "communes-2024-population/departements.csv"


def _sector(values: pd.Series) -> pd.Series:
    return np.where(values.astype(str).str.lower().str.startswith("public"), "public", "prive")


def _level_frame(opendata: Path) -> pd.DataFrame:
    """Return one row per real school: code_departement, niveau, secteur, ips, effectifs."""
    e = pd.read_parquet(opendata / _ECOLES)
    e = e[e.rentree_scolaire == "2024-2025"]
    ecoles = pd.DataFrame({"code_departement": e.code_du_departement.map(territories.normalize_departement),
                           "niveau": "ecole", "secteur": _sector(e.secteur),
                           "ips": pd.to_numeric(e.ips, errors="coerce"), "effectifs": np.nan})
    c = pd.read_csv(opendata / _COLLEGES, sep=";", dtype=str, encoding="utf-8-sig")
    colleges = pd.DataFrame({"code_departement": c["Code du département"].map(territories.normalize_departement),
                             "niveau": "college", "secteur": _sector(c["Secteur"]),
                             "ips": pd.to_numeric(c["IPS"], errors="coerce"),
                             "effectifs": pd.to_numeric(c["Effectifs"], errors="coerce")})
    ly = pd.read_parquet(opendata / _LYCEES)
    lycees = pd.DataFrame({"code_departement": ly.code_du_departement.map(territories.normalize_departement),
                           "niveau": "lycee", "secteur": _sector(ly.secteur),
                           "ips": pd.to_numeric(ly.ips_ensemble_gt_pro, errors="coerce"),
                           "effectifs": pd.to_numeric(ly.effectifs_ensemble_gt_pro, errors="coerce")})
    return pd.concat([ecoles, colleges, lycees], ignore_index=True)


def derive(opendata: Path = config.SHARED_OPENDATA_DIR) -> pd.DataFrame:
    """Compute the per-département calibration figures from the real files.

    Parameters
    ----------
    opendata : Path
        Folder of the real open-data files (``../shared/data/opendata``).

    Returns
    -------
    pandas.DataFrame
        One row per département (the 101 of :mod:`gar_analysis.territories`).
    """
    deps = territories.departements()[["code_departement"]].copy()
    schools = _level_frame(opendata)
    out = deps.set_index("code_departement")
    for niveau in ("ecole", "college", "lycee"):
        for secteur in ("public", "prive"):
            sub = schools[(schools.niveau == niveau) & (schools.secteur == secteur)]
            g = sub.groupby("code_departement")
            key = f"{niveau}_{secteur}"
            out[f"n_{key}"] = g.size().reindex(out.index).fillna(0).astype(int)
            out[f"ips_mean_{key}"] = g.ips.mean().reindex(out.index).round(2)
            out[f"ips_sd_{key}"] = g.ips.std().reindex(out.index).round(2)
    for niveau in ("college", "lycee"):
        sub = schools[(schools.niveau == niveau) & (schools.effectifs > 0)]
        out[f"log_eleves_mean_{niveau}"] = np.log(sub.effectifs).groupby(sub.code_departement).mean() \
            .reindex(out.index).round(3)
    com = pd.read_csv(opendata / _COMMUNES, dtype={"insee_com": str, "insee_dep": str})
    com = com[(com.commune_type == "COM") & (com.population_2021 > 0) & (com.superficie_km2 > 0)]
    com["code_departement"] = com.insee_dep.map(territories.normalize_departement)
    com["log_pop"] = np.log(com.population_2021)
    com["log_area"] = np.log(com.superficie_km2)
    com["rural"] = com.population_2021 / com.superficie_km2 < config.RURAL_DENSITY
    g = com.groupby("code_departement")
    out["n_communes"] = g.size().reindex(out.index).fillna(0).astype(int)
    out["log_pop_mean"] = g.log_pop.mean().reindex(out.index).round(3)
    out["log_pop_sd"] = g.log_pop.std().reindex(out.index).round(3)
    out["log_area_mean"] = g.log_area.mean().reindex(out.index).round(3)
    out["log_area_sd"] = g.log_area.std().reindex(out.index).round(3)
    out["part_communes_rurales"] = g.rural.mean().reindex(out.index).round(3)
    out["lat_sd"] = g.lat.std().reindex(out.index).round(3)
    out["lon_sd"] = g.lng.std().reindex(out.index).round(3)
    dep = pd.read_csv(opendata / _DEPARTEMENTS, dtype={"insee_dep": str})
    dep["code_departement"] = dep.insee_dep.map(territories.normalize_departement)
    dep = dep.set_index("code_departement")
    out["latitude"] = dep.lat.reindex(out.index).round(4)
    out["longitude"] = dep.lng.reindex(out.index).round(4)
    return out.reset_index()


def write(df: pd.DataFrame, path: Path = CALIBRATION_FILE) -> Path:
    """Write the calibration table (``;`` CSV) atomically."""
    return atomic_write_text(path, csv_text(df))


def load_calibration(path: Path = CALIBRATION_FILE) -> pd.DataFrame:
    """Return the committed calibration table, one row per département."""
    return pd.read_csv(path, sep=";", dtype={"code_departement": str})


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``calibration_departements.csv`` from the real files."""
    p = argparse.ArgumentParser(description="Recalculer la calibration du générateur d'échantillon.")
    p.add_argument("--opendata", type=Path, default=config.SHARED_OPENDATA_DIR)
    p.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    args = p.parse_args(argv)
    df = derive(args.opendata)
    write(df, args.out)
    print(f"Calibration écrite : {args.out} ({len(df)} départements)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
