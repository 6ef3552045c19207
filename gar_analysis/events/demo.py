"""A minimal contract-format data directory, for event tests and benchmarks.

Only the files the event generator reads are written (``gar/etablissements.csv``,
``gar/ressources.csv``, ``gar/abonnements.csv`` and a ``truth.json`` with the
period). The full simulated sample is ``gar-analysis sample``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import write_contract_file
from ..io import atomic_write_text

_UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def uai_with_key(number: int) -> str:
    """Return a syntactically valid UAI (7 digits and the control letter) for a number."""
    digits = f"{number:07d}"
    return digits + _UAI_LETTERS[int(digits) % 23]


def write_demo_data_dir(path: str | Path, n_schools: int = 50, n_resources: int = 20,
                        seed: int = 1, debut: str = "2023-09", fin: str = "2025-08") -> Path:
    """Write a small data directory of registered schools and their subscriptions.

    Parameters
    ----------
    path : str or Path
        Directory to create.
    n_schools, n_resources : int, optional
        Registered schools and catalogue size.
    seed : int, optional
        Random seed.
    debut, fin : str, optional
        Period (``AAAA-MM``) written to ``truth.json``.

    Returns
    -------
    Path
        The data directory.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    start, end = pd.Period(debut, "M").start_time, pd.Period(fin, "M").end_time.normalize()
    span = (end - start).days
    uais = [uai_with_key(3_500_000 + 37 * i) for i in range(n_schools)]
    # Some schools register before the period, others during it.
    offsets = np.where(rng.random(n_schools) < 0.6, -rng.integers(1, 700, n_schools),
                       rng.integers(0, span, n_schools))
    etabs = pd.DataFrame({"uai": uais,
                          "date_inscription": start + pd.to_timedelta(offsets, unit="D"),
                          "mediacentre": "EduGAR", "projet_ent": "ENT-DEMO"})
    write_contract_file(etabs, path, "gar/etablissements")
    res = pd.DataFrame({"id_ressource": [f"R{i:04d}" for i in range(n_resources)],
                        "nom": [f"Ressource {i}" for i in range(n_resources)],
                        "editeur": [f"Éditeur {i % 7}" for i in range(n_resources)],
                        "type_ressource": "manuel", "degre": "tous"})
    write_contract_file(res, path, "gar/ressources")
    rows = []
    for s, uai in enumerate(uais):
        k = int(rng.integers(1, min(8, n_resources) + 1))
        for r in rng.choice(n_resources, size=k, replace=False):
            year = int(rng.integers(0, 2))
            d0 = pd.Timestamp(start.year + year, 9, 1)
            d1 = pd.Timestamp(start.year + year + int(rng.integers(1, 3)), 8, 31)
            rows.append({"id_abonnement": f"AB{len(rows):06d}", "uai": uai, "id_ressource": f"R{r:04d}",
                         "date_debut": d0, "date_fin": d1, "licences": int(rng.integers(10, 500)),
                         "montant_ht": float(rng.integers(100, 5000))})
    write_contract_file(pd.DataFrame(rows), path, "gar/abonnements")
    atomic_write_text(path / "truth.json", json.dumps({"seed": seed, "periode": {"debut": debut, "fin": fin}}))
    return path
