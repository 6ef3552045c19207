"""Loaders of the CRM exports (actors, contracts, contacts, support actions)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import SAMPLE_DIR
from ..contract import read_contract_file


def load_acteurs(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``crm/acteurs.csv``."""
    return read_contract_file(data_dir, "crm/acteurs")


def load_contrats(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``crm/contrats.csv``."""
    return read_contract_file(data_dir, "crm/contrats")


def load_contacts(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``crm/contacts.csv``."""
    return read_contract_file(data_dir, "crm/contacts")


def load_actions(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``crm/actions.csv``."""
    return read_contract_file(data_dir, "crm/actions")
