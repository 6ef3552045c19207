"""What the rules share: the loaded files and derived, cached views of them.

Every derived view is computed once per run (cached), with vectorised pandas
only. The principle "one root cause, one finding": rules that relate files
(accès before inscription, accès without subscription…) only judge rows whose
keys are valid and known, because invalid or unknown keys, negative counts and
inverted periods are already reported by their own rule.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import CONTRACT, DNMA_FILES, REFERENCE_FILES
from ..sources import DataDir

#: Check letters of a UAI: ``LETTERS[int(digits) % 23]``.
LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
IPS_FILES = ("referentiel/ips_ecoles", "referentiel/ips_colleges", "referentiel/ips_lycees")
#: Files holding a ``uai`` column, in report order.
UAI_FILES = ("referentiel/annuaire", *IPS_FILES, "gar/etablissements", "gar/abonnements", "gar/affectations",
             "gar/accedants", "gar/acces", "gar/accedants_actifs", "dnma/audience", "dnma/profils", "crm/actions")


def source_path(name: str) -> str:
    """Return a file's path relative to the data directory (``"gar/acces.csv"``)."""
    if name in DNMA_FILES:
        return DNMA_FILES[name]
    return CONTRACT[name].path if name in CONTRACT else REFERENCE_FILES[name]


def uai_status(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Check UAIs: 7 digits then the right check letter.

    Parameters
    ----------
    values : Series of str
        UAIs (NA allowed).

    Returns
    -------
    valid : numpy.ndarray of bool
        Whether each value is a valid UAI.
    expected : Series of str
        For 7-digit values, the expected check letter (NA otherwise).

    Examples
    --------
    >>> ok, exp = uai_status(pd.Series(["0350122T", "0350122A", "035012T", None]))
    >>> ok.tolist(), exp.tolist()
    ([True, False, False, False], ['T', 'T', <NA>, <NA>])
    """
    codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
    u = pd.Series(uniques, dtype="string")
    digits_ok = u.str.slice(0, 7).str.fullmatch(r"[0-9]{7}").fillna(False).to_numpy(bool)
    exp = np.full(len(u), None, dtype=object)
    if digits_ok.any():
        num = pd.to_numeric(u[digits_ok].str.slice(0, 7)).to_numpy(np.int64)
        exp[digits_ok] = LETTERS[num % 23]
    fmt = u.str.fullmatch(r"[0-9]{7}[A-Z]").fillna(False).to_numpy(bool)
    ok_u = fmt & (u.str.slice(7, 8).to_numpy(object) == exp)
    ok_u = np.asarray(ok_u, dtype=bool)
    valid = np.where(codes >= 0, ok_u[np.maximum(codes, 0)] if len(u) else False, False)
    expected = pd.Series(np.where(codes >= 0, exp[np.maximum(codes, 0)] if len(u) else None, None),
                         index=values.index, dtype="string")
    return valid.astype(bool), expected


def key_codes(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """Return one int64 code per row, equal for rows with equal values in ``cols``."""
    code = np.zeros(len(df), dtype=np.int64)
    for c in cols:
        k, uniq = pd.factorize(df[c], use_na_sentinel=False)
        code = code * (len(uniq) + 1) + k
        if len(uniq) and code.max(initial=0) > 2**40:
            code, _ = pd.factorize(code)
            code = code.astype(np.int64)
    return code


def fast_isin(values: pd.Series, pool) -> np.ndarray:
    """Return whether each value is in ``pool`` (membership tested once per distinct value).

    pandas' ``isin`` on Arrow strings loops in Python over the pool; this
    factorizes the values and tests only their distinct values against a set.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if not len(uniques):
        return np.zeros(len(values), dtype=bool)
    pool = pool if isinstance(pool, (set, frozenset)) else set(pd.Series(pool).dropna().tolist())
    hit = np.fromiter((u in pool for u in uniques.tolist()), dtype=bool, count=len(uniques))
    return np.where(codes >= 0, hit[np.maximum(codes, 0)], False)


def month_start(mois: pd.Series) -> pd.Series:
    """Return the first day of ``YYYY-MM`` months as datetimes."""
    return pd.to_datetime(mois.astype("string") + "-01", format="%Y-%m-%d", errors="coerce")


def fmt_int(x) -> str:
    """Format an integer the French way (narrow no-break space between thousands)."""
    try:
        return f"{int(x):,}".replace(",", "\u202f")
    except (TypeError, ValueError):
        return str(x)


class Context:
    """The data directory being checked, with cached views shared by rules.

    Parameters
    ----------
    data_dir : str or Path or DataDir
        The data directory.
    """

    def __init__(self, data_dir: str | Path | DataDir):
        self.ds = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, lenient=True)
        self._frames: dict[str, pd.DataFrame] = {}
        self._cache: dict = {}
        self.attrs: dict[str, dict] = {}
        #: files present but unreadable as a whole: name → the DataError
        self.unreadable: dict[str, Exception] = {}

    # ------------------------------------------------------------------ files
    def has(self, name: str) -> bool:
        """Return whether a file is present and readable."""
        return self.ds.has(name) and name not in self.unreadable

    def load_all(self) -> None:
        """Load every present file once; an unreadable one is recorded in :attr:`unreadable`."""
        from ..errors import DataError

        for name in [*CONTRACT, *REFERENCE_FILES]:
            if not self.ds.has(name) or name in self._frames or name in self.unreadable:
                continue
            try:
                self.frame(name)
            except DataError as exc:
                self.unreadable[name] = exc

    def invalid(self, name: str) -> np.ndarray:
        """Return the rows with a form problem (missing, out-of-list or unparsable value)."""
        def compute():
            df = self.frame(name)
            lines = self.attrs.get(name, {}).get("lignes_invalides", ())
            if not lines:
                return np.zeros(len(df), dtype=bool)
            return df.index.isin(list(lines))
        return self._cached(("invalid", name), compute)

    def frame(self, name: str) -> pd.DataFrame:
        """Return a loaded file (loaded once).

        The frame's ``attrs`` (loader problems, headers) are moved to
        ``self.attrs[name]``: pandas copies ``attrs`` on every operation.
        """
        if name not in self._frames:
            df = self.ds.get(name)
            self.attrs[name] = dict(df.attrs)
            light = df.copy(deep=False)
            light.attrs = {}
            self._frames[name] = light
        return self._frames[name]

    def present(self, names) -> list[str]:
        """Return the present files among ``names``."""
        return [n for n in names if self.has(n)]

    def row_counts(self) -> dict[str, int]:
        """Return the number of data lines of every file loaded so far, by source path."""
        return {source_path(n): int(len(df)) for n, df in self._frames.items() if not n.startswith("_")}

    def _cached(self, key, func):
        if key not in self._cache:
            self._cache[key] = func()
        return self._cache[key]

    def key_codes(self, name: str, cols: list[str]) -> np.ndarray:
        """Return (once) one int64 code per row of a file, equal for equal keys."""
        return self._cached(("codes", name, tuple(cols)), lambda: key_codes(self.frame(name), list(cols)))

    def repeats(self, name: str) -> np.ndarray:
        """Return the rows repeating an earlier row's key (``doublon``), as a boolean array."""
        def compute():
            from ..contract import CONTRACT

            df = self.frame(name)
            cols = [c for c in CONTRACT[name].key if c in df.columns] if name in CONTRACT else []
            if not cols or not len(df):
                return np.zeros(len(df), dtype=bool)
            dup = pd.Series(self.key_codes(name, cols)).duplicated().to_numpy()
            return dup & df[cols].notna().all(axis=1).to_numpy(bool)  # an unreadable key is no repeat
        return self._cached(("repeats", name), compute)

    def deduped(self, name: str) -> pd.DataFrame:
        """Return a file without the repeats of its key (first occurrence kept; repeats are ``doublon``)."""
        def compute():
            df, dup = self.frame(name), self.repeats(name)
            return df.loc[~dup] if dup.any() else df
        return self._cached(("deduped", name), compute)

    def uai_valid(self, name: str, col: str = "uai") -> tuple[np.ndarray, pd.Series]:
        """Return (valid, expected letter) for a file's UAI column (computed once)."""
        return self._cached(("valid", name, col), lambda: uai_status(self.frame(name)[col]))

    def uai_known(self, name: str, col: str = "uai") -> np.ndarray:
        """Return whether each UAI of a file is valid and in the register (valid only, without one)."""
        def compute():
            valid, _ = self.uai_valid(name, col)
            if self.register_set is None:
                return valid
            return valid & fast_isin(self.frame(name)[col], self.register_set)
        return self._cached(("known", name, col), compute)

    def resource_known(self, name: str) -> np.ndarray:
        """Return whether each id_ressource of a file is in the catalogue (True without a catalogue)."""
        return self._cached(("resource", name), lambda: self.known_resource(self.frame(name)["id_ressource"]))

    def clean(self, name: str, count: str | None = None, resource: bool = False) -> np.ndarray:
        """Return the rows fit for cross-file rules: no repeat, known UAI (and resource), count ≥ 0."""
        df = self.frame(name)
        keep = ~self.repeats(name) & self.uai_known(name) & ~self.invalid(name)
        if resource:
            keep &= self.resource_known(name)
        if count is not None:
            keep &= (df[count].fillna(0) >= 0).to_numpy(bool)
        return keep

    # ------------------------------------------------------------------ keys
    @cached_property
    def register_uais(self) -> pd.Index | None:
        """Return the register's UAIs (None without a register)."""
        if not self.has("referentiel/annuaire"):
            return None
        return pd.Index(self.frame("referentiel/annuaire")["uai"].dropna().unique())

    @cached_property
    def register_set(self) -> set | None:
        """Return the register's UAIs as a set (None without a register)."""
        return None if self.register_uais is None else set(self.register_uais.tolist())

    def known(self, uai: pd.Series) -> np.ndarray:
        """Return whether each UAI is valid and present in the register (valid only, without one)."""
        valid, _ = uai_status(uai)
        if self.register_set is None:
            return valid
        return valid & fast_isin(uai, self.register_set)

    @cached_property
    def resource_ids(self) -> pd.Index | None:
        """Return the catalogue's resource ids (None without a catalogue)."""
        if not self.has("gar/ressources"):
            return None
        return pd.Index(self.frame("gar/ressources")["id_ressource"].dropna().unique())

    def known_resource(self, ids: pd.Series) -> np.ndarray:
        """Return whether each resource id is in the catalogue (True without a catalogue)."""
        if self.resource_ids is None:
            return np.ones(len(ids), dtype=bool)
        return fast_isin(ids, set(self.resource_ids.tolist()))

    # ------------------------------------------------------------------ usage
    @cached_property
    def acces_clean(self) -> pd.DataFrame:
        """Return accès rows (keys and count): no repeat, known school and resource, count ≥ 0."""
        a = self.frame("gar/acces")
        return a.loc[self.clean("gar/acces", "acces", resource=True), ["mois", "uai", "id_ressource", "acces"]]

    @cached_property
    def monthly(self) -> pd.DataFrame:
        """Return accès per known school and month, with the first line of each group.

        Every resource counts (an unknown resource id does not mean the accès did
        not happen); negative counts count as zero but the month stays reported.
        """
        a = self.frame("gar/acces")
        keep = ~self.repeats("gar/acces") & self.uai_known("gar/acces") & ~self.invalid("gar/acces")
        a = a.loc[keep, ["uai", "mois", "acces"]]
        g = pd.DataFrame({"uai": a["uai"], "mois": a["mois"], "acces": a["acces"].fillna(0).clip(lower=0),
                          "ligne": a.index}).groupby(["uai", "mois"], observed=True, sort=True)
        return g.agg(acces=("acces", "sum"), ligne=("ligne", "min")).reset_index()

    @cached_property
    def effectifs(self) -> pd.Series:
        """Return pupils enrolled per UAI: register, else the latest IPS effectifs."""
        parts = []
        if self.has("referentiel/annuaire"):
            ann = self.frame("referentiel/annuaire")
            if "nombre_eleves" in ann.columns:
                s = ann.dropna(subset=["uai"]).drop_duplicates("uai").set_index("uai")["nombre_eleves"]
                parts.append(pd.to_numeric(s, errors="coerce").dropna())
        for name in IPS_FILES:
            if self.has(name):
                ips = self.frame(name)
                if "effectifs" in ips.columns:
                    ips = ips.dropna(subset=["uai", "effectifs"]).sort_values("rentree_scolaire")
                    parts.append(pd.to_numeric(ips.drop_duplicates("uai", keep="last").set_index("uai")["effectifs"]))
        if not parts:
            return pd.Series(dtype="float64")
        out = pd.concat(parts)
        out = out[out > 0]
        return out[~out.index.duplicated(keep="first")].astype("float64")
