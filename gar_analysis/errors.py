"""Exceptions raised on bad input, with the file, line and column concerned."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One defect found in an input file.

    Parameters
    ----------
    file : str
        Path of the file.
    line : int or None
        Physical line number (header = 1), None when the whole file is concerned.
    column : str or None
        Column name, None when the whole line or file is concerned.
    message : str
        What is wrong and what was expected (French).
    kind : str, optional
        ``valeur_manquante``, ``valeur_hors_liste``, ``format_invalide`` (a cell) or
        ``fichier_illisible`` (the whole file); None for other problems.
    value : str, optional
        The offending value, as read.
    expected : str, optional
        What was expected (French), e.g. ``un nombre entier``.
    """

    file: str
    line: int | None
    column: str | None
    message: str
    kind: str | None = None
    value: str | None = None
    expected: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", ligne {self.line}"
        if self.column:
            where += f", colonne « {self.column} »"
        return f"{where} : {self.message}"


class GarAnalysisError(Exception):
    """Base class of the package's errors."""


class DataError(GarAnalysisError, ValueError):
    """Raised when an input file cannot be used; lists every problem found.

    Parameters
    ----------
    problems : list of Problem
        All the defects found (not only the first).
    max_shown : int, optional
        How many problems the message lists before summarising the rest.
    """

    def __init__(self, problems: list[Problem], max_shown: int = 20):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:max_shown]]
        if len(self.problems) > max_shown:
            lines.append(f"… et {len(self.problems) - max_shown} autre(s) problème(s).")
        head = f"{len(self.problems)} problème(s) dans les données :"
        super().__init__("\n".join([head, *("  - " + s for s in lines)]))

    @classmethod
    def single(cls, file: str | Path, message: str, line: int | None = None,
               column: str | None = None) -> "DataError":
        """Build an error about one problem."""
        return cls([Problem(str(file), line, column, message)])


class ConfigError(GarAnalysisError, ValueError):
    """Raised on an unknown parameter, audience or territory, before any work starts."""


class Frozen(tuple):
    """Immutable tuple kept in ``DataFrame.attrs``: pandas' deep copies return it as is."""

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self
