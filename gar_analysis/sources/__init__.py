"""Loaders: one per source, each returning a typed, checked DataFrame.

:class:`DataDir` gives access to every file of a data directory by its short
name (``ds.acces``, ``ds.annuaire``), loading each file once, on first use.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from ..config import SAMPLE_DIR
from ..contract import CONTRACT, DNMA_FILES, REFERENCE_FILES, read_contract_file

#: Short names of the contract's files.
SHORT_NAMES = {name.split("/", 1)[1]: name for name in [*CONTRACT, *REFERENCE_FILES]}
SHORT_NAMES["audience"] = "dnma/audience"
SHORT_NAMES["depenses"] = "budget/depenses"
SHORT_NAMES.update({f"dnma_{name.split('/', 1)[1]}": name for name in DNMA_FILES})


def _path_of(name: str) -> str:
    if name in DNMA_FILES:
        return DNMA_FILES[name]
    return CONTRACT[name].path if name in CONTRACT else REFERENCE_FILES[name]


def load(data_dir: str | Path, name: str, *, lenient: bool = False) -> pd.DataFrame:
    """Load one file of a data directory by contract or short name.

    Parameters
    ----------
    data_dir : str or Path
        The data directory.
    name : str
        ``"gar/acces"`` or its short name ``"acces"``.
    lenient : bool, optional
        Form problems (a missing, out-of-list or unparsable value) do not raise: the
        cell is NA, the problem is in ``attrs["problemes"]`` and its line in
        ``attrs["lignes_invalides"]``. A file that cannot be read at all still raises.

    Returns
    -------
    pandas.DataFrame
        Typed frame, index = physical line in the file.
    """
    name = SHORT_NAMES.get(name, name)
    if name in DNMA_FILES:
        from .dnma import read_dnma

        return read_dnma(Path(data_dir) / DNMA_FILES[name], name.split("/", 1)[1])
    if name in REFERENCE_FILES:
        from . import referentiel

        return referentiel.load_reference_file(Path(data_dir) / REFERENCE_FILES[name], name, lenient=lenient)
    return read_contract_file(data_dir, name, lenient=lenient)


class DataDir:
    """A data directory whose files are loaded on first access and kept.

    Parameters
    ----------
    path : str or Path, optional
        The data directory (default: the embedded sample).
    lenient : bool, optional
        Load every file leniently (see :func:`load`).

    Examples
    --------
    >>> ds = DataDir()                   # doctest: +SKIP
    >>> ds.acces.groupby("mois").acces.sum()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path = SAMPLE_DIR, lenient: bool = False):
        self.path = Path(path)
        self.lenient = lenient
        self._cache: dict[str, pd.DataFrame] = {}

    def has(self, name: str) -> bool:
        """Return whether the file is present."""
        name = SHORT_NAMES.get(name, name)
        p = self.path / _path_of(name)
        return p.exists() or p.is_symlink()  # a broken link is present, and unreadable

    def file(self, name: str) -> Path:
        """Return the path of a file of the directory."""
        return self.path / _path_of(SHORT_NAMES.get(name, name))

    def get(self, name: str) -> pd.DataFrame:
        """Return the loaded frame of a file (loading it once)."""
        name = SHORT_NAMES.get(name, name)
        if name not in self._cache:
            self._cache[name] = load(self.path, name, lenient=self.lenient)
        return self._cache[name]

    def __getattr__(self, item: str) -> pd.DataFrame:
        if item.startswith("_") or item not in SHORT_NAMES:
            raise AttributeError(item)
        return self.get(item)

    @cached_property
    def truth(self) -> dict | None:
        """Return the sample's planted truth (``truth.json``), None for real data."""
        import json

        p = self.path / "truth.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None

    @property
    def is_simulated(self) -> bool:
        """Return whether the directory holds simulated data."""
        return (self.path / "truth.json").exists()

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"
