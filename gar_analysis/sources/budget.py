"""Loader of local authorities' digital-resource budgets."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import SAMPLE_DIR
from ..contract import read_contract_file


def load_depenses(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``budget/depenses.csv``."""
    return read_contract_file(data_dir, "budget/depenses")
