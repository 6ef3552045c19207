"""Loader of the ENT audience measurement (DNMA)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import SAMPLE_DIR
from ..contract import read_contract_file


def load_audience(data_dir: str | Path = SAMPLE_DIR) -> pd.DataFrame:
    """Load ``dnma/audience.csv`` (ENT visits and visitors by school and month)."""
    return read_contract_file(data_dir, "dnma/audience")
