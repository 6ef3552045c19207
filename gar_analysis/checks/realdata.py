"""Run the checks on real published files (``../shared/data/opendata``).

:func:`build_real_data_dir` assembles a data directory from the real register
and IPS exports (copied or converted into a temporary folder, never into the
repository): only the register rules can run there, the GAR rules are listed as
skipped. :func:`check_external_file` applies the UAI and duplicate rules to any
other published CSV (e.g. ``fr-en-effectifs-second-degre``), which is not a
contract file.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ..config import SHARED_OPENDATA_DIR
from ..contract import read_raw_csv
from ..io import csv_text
from .context import fmt_int, key_codes, uai_status
from .registry import concat_findings, make_findings

#: Real files used for each register file of a data directory.
REAL_FILES = {
    "referentiel/annuaire.csv": "dept35-ille-et-vilaine/fr-en-annuaire-education.csv",
    "referentiel/ips_ecoles.csv": "ips-ecoles-2022-2025/fr-en-ips-ecoles-ap2022.parquet",
    "referentiel/ips_colleges.csv": "ips-colleges-2022/fr-en-ips-colleges-ap2022.csv",
    "referentiel/ips_lycees.csv": "ips-lycees-2022/fr-en-ips-lycees-ap2022.parquet",
}
#: Other real files checked with :func:`check_external_file`: path → (UAI column, key columns).
EXTERNAL_FILES = {
    "dept35-ille-et-vilaine/fr-en-effectifs-second-degre.csv": ("Numero_d_etablissement",
                                                                ("Annee_scolaire", "Numero_d_etablissement")),
    "dept35-ille-et-vilaine/fr-en-adresse-et-geolocalisation-etablissements-premier-et-second-degre.csv":
        ("Code établissement", ("Code établissement",)),
    "ips-ecoles-2021/fr-en-ips_ecoles.csv": ("UAI", ("UAI",)),
}


def build_real_data_dir(out: str | Path, opendata: str | Path = SHARED_OPENDATA_DIR) -> Path:
    """Assemble a data directory from the real register and IPS files.

    Parameters
    ----------
    out : str or Path
        Folder to create (a temporary folder: real files never enter the repository).
    opendata : str or Path
        Folder of the real files (``config.SHARED_OPENDATA_DIR``).

    Returns
    -------
    Path
        The data directory (CSV copies; Parquet exports written as ``;`` CSV with their field ids).
    """
    out, opendata = Path(out), Path(opendata)
    for target, source in REAL_FILES.items():
        src = opendata / source
        dst = out / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".parquet":
            df = pd.read_parquet(src)
            dst.write_text(csv_text(df), encoding="utf-8")
        else:
            shutil.copyfile(src, dst)
    return out


def check_external_file(path: str | Path, uai_column: str, key: tuple[str, ...] = (), *,
                        source: str | None = None) -> pd.DataFrame:
    """Apply ``uai_invalide`` and ``doublon`` to any ``;``-separated published CSV.

    Parameters
    ----------
    path : str or Path
        The file.
    uai_column : str
        Header of its UAI column.
    key : tuple of str
        Columns that identify a line (duplicates are reported on them).
    source : str, optional
        Name shown in the findings (default: the file name).

    Returns
    -------
    pandas.DataFrame
        Findings (``ligne`` = physical line, header = 1).
    """
    path = Path(path)
    source = source or path.name
    df = read_raw_csv(path, unique_header=False)
    out = []
    uai = df[uai_column].astype("string").str.strip()
    valid, expected = uai_status(uai)
    bad = ~valid & (uai.fillna("") != "").to_numpy()
    if bad.any():
        val = uai[bad]
        msg = ("UAI « " + val + " » invalide (lettre de contrôle attendue : « " + expected[bad].fillna("?")
               + " ») : identifiant provisoire ou erroné, à rapprocher de l'annuaire de l'éducation.")
        out.append(make_findings("uai_invalide", "erreur", source, msg, ligne=df.index[bad], uai=val))
    if key:
        codes = key_codes(df, list(key))
        dup = pd.Series(codes).duplicated().to_numpy()
        if dup.any():
            lines = pd.Series(df.index.to_numpy())
            first = lines.groupby(codes).transform("min").to_numpy()[dup]
            msg = pd.Series([f"Clé en double ({', '.join(key)}) : déjà présente ligne {fmt_int(x)} ; "
                             "supprimer la ligne en double." for x in first], dtype="string")
            out.append(make_findings("doublon", "erreur", source, msg, ligne=df.index[dup], uai=uai[dup]))
    return concat_findings(out)


def check_real_files(out: str | Path, opendata: str | Path = SHARED_OPENDATA_DIR) -> pd.DataFrame:
    """Build the real data directory in ``out``, run every rule and the external-file checks.

    Returns
    -------
    pandas.DataFrame
        All findings (data-directory rules first, then the external files).
    """
    from .engine import run_checks

    data = build_real_data_dir(out, opendata)
    frames = [run_checks(data)]
    for rel, (col, key) in EXTERNAL_FILES.items():
        p = Path(opendata) / rel
        if p.exists():
            frames.append(check_external_file(p, col, key, source=rel))
    res = pd.concat(frames, ignore_index=True)
    res.attrs = frames[0].attrs
    return res


__all__ = ["build_real_data_dir", "check_external_file", "check_real_files"]
