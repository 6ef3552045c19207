"""Simulated raw GAR access events, streamed to month-partitioned Parquet.

One event is one successful access (a GAR session) of a pseudonymous accédant
to a subscribed resource. Events are consistent with a data directory:

- only registered schools (``gar/etablissements.csv``), from the month of their
  inscription on;
- only resources the school subscribes to that month (``gar/abonnements.csv``);
- a school-year seasonality (busy autumn and spring, quiet July and August),
  school days and school hours;
- each school has a fixed pool of accédants per profile (sized from
  ``gar/accedants.csv`` when present), so that distinct counts are meaningful.

Events are generated month by month in chunks of at most ``chunk_size`` rows
with vectorised numpy and written with pyarrow: memory stays bounded whatever
``n_events`` (100 million events are fine).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..contract import PROFILS, SUPPORTS, read_contract_file
from ..errors import DataError
from ..io import atomic_path

log = logging.getLogger(__name__)

#: Columns of an event file, in order.
EVENT_COLUMNS = ("horodatage", "uai", "id_accedant", "profil", "id_ressource", "support")
#: Relative activity by calendar month (index 0 = January): a school year.
SEASONALITY = np.array([1.10, 0.95, 1.20, 0.90, 1.00, 0.60, 0.06, 0.03, 1.00, 1.10, 1.25, 0.80])
#: Share of each hour of the day (school hours, some evening homework).
HOUR_WEIGHTS = np.array([0, 0, 0, 0, 0, 0, 0.2, 1.5, 6, 9, 10, 8, 4, 5, 9, 9, 7, 6, 5, 4, 3, 2, 0.8, 0.2])
#: Default pool of accédants per profile when gar/accedants.csv is absent (median sizes).
DEFAULT_POOL = {"eleve": 300, "enseignant": 25, "documentaliste": 1, "autre_personnel": 3}
#: Sessions per accédant relative to a pupil.
PROFILE_ACTIVITY = {"eleve": 1.0, "enseignant": 2.5, "documentaliste": 4.0, "autre_personnel": 0.5}
#: Share of sessions per support.
SUPPORT_WEIGHTS = np.array([0.62, 0.23, 0.15])
#: Default number of events per Parquet file.
CHUNK_SIZE = 2_000_000

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash (vectorised, wraps)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _hex_ids(h: np.ndarray) -> pa.Array:
    """Format 64-bit hashes as 16-character lowercase hex strings (zero-copy Arrow array)."""
    b = h.astype(">u8").view(np.uint8).reshape(-1, 8)
    out = np.empty((len(h), 16), dtype=np.uint8)
    out[:, 0::2] = _HEX[b >> 4]
    out[:, 1::2] = _HEX[b & 15]
    offsets = np.arange(0, 16 * len(h) + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(h), [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def _months(data_dir: Path, subs: pd.DataFrame) -> pd.PeriodIndex:
    """Return the months to simulate: the sample's period when known, else the subscriptions' span."""
    truth = data_dir / "truth.json"
    if truth.exists():
        try:
            periode = json.loads(truth.read_text(encoding="utf-8"))["periode"]
            return pd.period_range(periode["debut"], periode["fin"], freq="M")
        except (KeyError, ValueError, TypeError):
            pass
    start = subs["date_debut"].min().to_period("M")
    end = subs["date_fin"].max().to_period("M")
    if end - start > 35:  # keep at most three school years, the most recent ones
        start = end - 35
    return pd.period_range(start, end, freq="M")


def _pools(data_dir: Path, uais: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return accédant pool sizes, shape (schools, profiles), at least 1."""
    path = data_dir / "gar/accedants.csv"
    pools = None
    if path.exists():
        acc = read_contract_file(data_dir, "gar/accedants")
        wide = (acc.groupby(["uai", "profil"])["accedants"].max().unstack("profil")
                .reindex(index=uais, columns=list(PROFILS)))
        if wide.notna().any().any():
            pools = wide.to_numpy(dtype="float64")
    if pools is None:
        pools = np.full((len(uais), len(PROFILS)), np.nan)
    size = rng.lognormal(0.0, 0.7, size=len(uais))[:, None]
    default = np.array([DEFAULT_POOL[p] for p in PROFILS])[None, :] * size
    pools = np.where(np.isnan(pools), default, pools)
    return np.maximum(np.rint(pools), 1).astype(np.int64)


def generate_events(data_dir: str | Path, n_events: int, out_dir: str | Path, seed: int = 20241, *,
                    chunk_size: int = CHUNK_SIZE) -> dict:
    """Generate pseudonymised raw access events consistent with a data directory.

    Parameters
    ----------
    data_dir : str or Path
        Data directory with ``gar/etablissements.csv`` and ``gar/abonnements.csv``
        (``gar/accedants.csv`` and ``truth.json`` used when present).
    n_events : int
        Number of events to generate (exactly).
    out_dir : str or Path
        Output directory; written as ``out_dir/mois=YYYY-MM/part-NNNNN.parquet``.
        Event files of a previous generation there are replaced.
    seed : int, optional
        Random seed: same inputs and seed give the same events.
    chunk_size : int, optional
        Maximum events held in memory and written per file.

    Returns
    -------
    dict
        ``n_events``, ``n_files``, ``months`` (events per month), ``schools``,
        ``resources``, ``out_dir``, ``seed``, ``duration_s``.

    Raises
    ------
    DataError
        When the data directory has no registered school with an active subscription.
    """
    t0 = time.perf_counter()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    n_events = int(n_events)
    if n_events < 0:
        raise ValueError("n_events doit être positif ou nul.")
    etabs = read_contract_file(data_dir, "gar/etablissements")
    subs = read_contract_file(data_dir, "gar/abonnements")
    uais = np.array(sorted(set(etabs["uai"].dropna())), dtype=object)
    inscription = etabs.drop_duplicates("uai").set_index("uai")["date_inscription"].reindex(uais)
    subs = subs[subs["uai"].isin(set(uais)) & subs["date_debut"].notna() & subs["date_fin"].notna()]
    subs = subs[subs["date_debut"] <= subs["date_fin"]]
    if subs.empty:
        raise DataError.single(data_dir / "gar/abonnements.csv",
                               "aucun abonnement d'un établissement inscrit : impossible de simuler des accès.")
    ressources = np.array(sorted(set(subs["id_ressource"])), dtype=object)
    school_idx = pd.Index(uais).get_indexer(subs["uai"])
    res_idx = pd.Index(ressources).get_indexer(subs["id_ressource"])
    months = _months(data_dir, subs)

    rng = np.random.default_rng(seed)
    school_intensity = rng.lognormal(0.0, 1.0, size=len(uais))
    resource_popularity = rng.pareto(1.5, size=len(ressources)) + 0.2
    pools = _pools(data_dir, uais, rng)
    activity = np.array([PROFILE_ACTIVITY[p] for p in PROFILS])
    prof_cum = np.cumsum(pools * activity, axis=1)
    prof_cum /= prof_cum[:, -1:]
    school_salt = _mix64(np.arange(len(uais), dtype=np.uint64) + np.uint64(seed) * np.uint64(1_000_003))

    # Active (school, resource) pairs per month and their weight.
    deb = subs["date_debut"].to_numpy()
    fin = subs["date_fin"].to_numpy()
    insc = inscription.to_numpy(dtype="datetime64[ns]")[school_idx]
    pair_w = school_intensity[school_idx] * resource_popularity[res_idx]
    per_month = []
    for m in months:
        first = np.datetime64(m.start_time.normalize(), "ns")
        last = np.datetime64(m.end_time.normalize(), "ns")
        active = (deb <= last) & (fin >= first) & ~(insc > last)
        idx = np.flatnonzero(active)
        per_month.append(idx)
    month_mass = np.array([pair_w[i].sum() * SEASONALITY[m.month - 1] for m, i in zip(months, per_month)])
    if month_mass.sum() <= 0:
        raise DataError.single(data_dir / "gar/abonnements.csv",
                               "aucun abonnement actif sur la période : impossible de simuler des accès.")
    counts = rng.multinomial(n_events, month_mass / month_mass.sum())

    if out_dir.exists():  # replace a previous generation's files, nothing else
        for old in out_dir.glob("mois=*/part-*.parquet"):
            old.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)

    uai_dict = pa.array(uais.astype(str), pa.string())
    res_dict = pa.array(ressources.astype(str), pa.string())
    prof_dict = pa.array(list(PROFILS), pa.string())
    sup_dict = pa.array(list(SUPPORTS), pa.string())
    hour_cum = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()
    sup_cum = np.cumsum(SUPPORT_WEIGHTS) / SUPPORT_WEIGHTS.sum()
    schema = pa.schema([("horodatage", pa.timestamp("us")),
                        ("uai", pa.dictionary(pa.int32(), pa.string())),
                        ("id_accedant", pa.string()),
                        ("profil", pa.dictionary(pa.int8(), pa.string())),
                        ("id_ressource", pa.dictionary(pa.int32(), pa.string())),
                        ("support", pa.dictionary(pa.int8(), pa.string()))])
    seeds = np.random.SeedSequence(seed).spawn(len(months))
    n_files = 0
    by_month = {}
    for k, (m, idx, n_m) in enumerate(zip(months, per_month, counts)):
        if n_m == 0 or len(idx) == 0:
            continue
        mrng = np.random.default_rng(seeds[k])
        cum_w = np.cumsum(pair_w[idx])
        days = pd.date_range(m.start_time, m.end_time.normalize(), freq="D")
        day_w = np.where(days.day_of_week < 5, 1.0, 0.15)
        if m.month in (7, 8):
            day_w = np.ones(len(days))
        day_cum = np.cumsum(day_w) / day_w.sum()
        start_us = np.int64(m.start_time.value // 1000)
        part_dir = out_dir / f"mois={m.strftime('%Y-%m')}"
        part_dir.mkdir(parents=True, exist_ok=True)
        by_month[m.strftime("%Y-%m")] = int(n_m)
        for c, lo in enumerate(range(0, int(n_m), chunk_size)):
            n = min(chunk_size, int(n_m) - lo)
            pick = idx[np.minimum(np.searchsorted(cum_w, mrng.random(n) * cum_w[-1], side="right"),
                                  len(idx) - 1)]
            s = school_idx[pick]
            prof = (mrng.random(n)[:, None] > prof_cum[s]).sum(axis=1).clip(0, len(PROFILS) - 1)
            pool = pools[s, prof]
            # Skewed activity within the pool: a few accédants return often.
            user = np.minimum((pool * mrng.random(n) ** 1.6).astype(np.int64), pool - 1)
            key = (school_salt[s] ^ (prof.astype(np.uint64) << np.uint64(56))) + user.astype(np.uint64)
            ids = _hex_ids(_mix64(key))
            day = np.searchsorted(day_cum, mrng.random(n), side="right").clip(0, len(days) - 1)
            hour = np.searchsorted(hour_cum, mrng.random(n), side="right").clip(0, 23)
            ts = (start_us + day.astype(np.int64) * 86_400_000_000 + hour.astype(np.int64) * 3_600_000_000
                  + mrng.integers(0, 3_600_000_000, size=n))
            order = np.argsort(ts, kind="stable")
            sup = np.searchsorted(sup_cum, mrng.random(n), side="right").clip(0, len(SUPPORTS) - 1)
            table = pa.Table.from_arrays([
                pa.array(ts[order], pa.timestamp("us")),
                pa.DictionaryArray.from_arrays(pa.array(s[order].astype(np.int32)), uai_dict),
                ids.take(pa.array(order)),
                pa.DictionaryArray.from_arrays(pa.array(prof[order].astype(np.int8)), prof_dict),
                pa.DictionaryArray.from_arrays(pa.array(res_idx[pick][order].astype(np.int32)), res_dict),
                pa.DictionaryArray.from_arrays(pa.array(sup[order].astype(np.int8)), sup_dict),
            ], schema=schema)
            path = part_dir / f"part-{c:05d}.parquet"
            with atomic_path(path) as tmp:
                pq.write_table(table, tmp, compression="snappy", row_group_size=1 << 20)
            n_files += 1
            del table, ids
        log.debug("événements %s : %d", m, n_m)
    duration = time.perf_counter() - t0
    log.info("%d événements simulés en %.1f s dans %s", n_events, duration, out_dir)
    return {"n_events": int(counts.sum()), "n_files": n_files, "months": by_month,
            "schools": int(len(uais)), "resources": int(len(ressources)), "out_dir": str(out_dir),
            "seed": int(seed), "duration_s": round(duration, 2)}
