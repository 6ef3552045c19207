"""Loaders of the GAR's own files (establishments, catalogue, subscriptions, usage)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import SAMPLE_DIR
from ..contract import read_contract_file


def load_etablissements(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``gar/etablissements.csv`` (schools registered in the GAR)."""
    return read_contract_file(data_dir, "gar/etablissements")


def load_ressources(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``gar/ressources.csv`` (the resource catalogue)."""
    return read_contract_file(data_dir, "gar/ressources")


def load_abonnements(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``gar/abonnements.csv`` (subscriptions and licences)."""
    return read_contract_file(data_dir, "gar/abonnements")


def load_affectations(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``gar/affectations.csv`` (licences assigned, by month)."""
    return read_contract_file(data_dir, "gar/affectations")


def load_accedants(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``gar/accedants.csv`` (users holding GAR access, by school year)."""
    return read_contract_file(data_dir, "gar/accedants")


def load_acces(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``gar/acces.csv`` (successful GAR sessions, by month)."""
    return read_contract_file(data_dir, "gar/acces")
