"""Aggregate raw access events into the contract's monthly tables.

``events_dir/mois=YYYY-MM/*.parquet`` → ``out_dir/gar/acces.csv`` (+ ``.parquet``)
and ``out_dir/gar/accedants_actifs.csv`` (+ ``.parquet``), plus the findings in
``out_dir/constats_evenements.csv``.

The work is split in three steps, so that both engines share everything but
the scan:

1. *discovery* (pyarrow, Parquet footers only): partitions and files, their
   columns and types; a bad file is a finding and is left out;
2. *scan* (the engine: DuckDB by default, or PySpark): two grouping queries —
   accès per month × school × resource × profile × support with validity
   counters (SQL shared by both engines), and distinct accédants per month ×
   school × profile over valid events only, counted on a 64-bit hash of the
   pseudonym (DuckDB: on integer keys, two phases, :func:`actifs_keyed_sql`;
   Spark: :func:`actifs_sql` with ``xxhash64``);
3. *finishing* (DuckDB over the small grouped tables): valid rows kept, bad
   values turned into findings, outputs sorted and written atomically.

Pseudonymous identifiers never leave step 2: only counts are written.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import config
from ..contract import PROFILS, SUPPORTS
from ..errors import ConfigError, DataError
from ..io import atomic_write_text, csv_text, spreadsheet_safe_sql
from .generate import EVENT_COLUMNS

log = logging.getLogger(__name__)

ENGINES = ("duckdb", "spark")
FINDING_COLUMNS = ["regle", "gravite", "source", "ligne", "uai", "mois", "id_ressource", "message"]
ACCES_COLUMNS = ["mois", "uai", "id_ressource", "profil", "support", "acces"]
ACTIFS_COLUMNS = ["mois", "uai", "profil", "accedants_actifs", "sous_seuil"]
_PARTITION_RE = re.compile(r"^mois=([0-9]{4}-(0[1-9]|1[0-2]))$")  # ASCII digits only
_STRING_COLUMNS = ("uai", "id_accedant", "profil", "id_ressource", "support")


# --------------------------------------------------------------------------- result

@dataclass
class AggregationResult:
    """What :func:`aggregate_events` produced.

    Attributes
    ----------
    engine : str
        ``duckdb`` or ``spark``.
    acces_path, acces_parquet_path, actifs_path, actifs_parquet_path, findings_path : Path
        Files written.
    findings : pandas.DataFrame
        Findings (columns ``regle;gravite;source;ligne;uai;mois;id_ressource;message``).
    n_files, n_files_excluded : int
        Event files read, and left out because of a finding.
    n_events, n_excluded : int
        Events aggregated, and events of read files left out (bad values).
    acces_rows, actifs_rows, sous_seuil : int
        Rows of the two tables; distinct counts below the threshold.
    threshold : int
        Disclosure threshold used for ``sous_seuil``.
    duration_s : float
        Wall-clock time.
    mode : str
        ``complet`` (every month read), ``incrémental`` (some months reused from the
        previous outputs) or ``inchangé`` (no input changed: nothing written).
    months_aggregated, months_reused : list of str
        Months read from the events, and months taken from the previous outputs.
    state_path : Path
        State of the run (``agregation_etat.json``).
    """

    engine: str
    acces_path: Path
    acces_parquet_path: Path
    actifs_path: Path
    actifs_parquet_path: Path
    findings_path: Path
    findings: pd.DataFrame = field(repr=False)
    n_files: int = 0
    n_files_excluded: int = 0
    n_events: int = 0
    n_excluded: int = 0
    acces_rows: int = 0
    actifs_rows: int = 0
    sous_seuil: int = 0
    threshold: int = config.DEFAULT_DISCLOSURE_THRESHOLD
    duration_s: float = 0.0
    mode: str = "complet"
    months_aggregated: list = field(default_factory=list)
    months_reused: list = field(default_factory=list)
    state_path: Path | None = None

    def summary(self) -> str:
        """Return a short French summary for the command line."""
        lines = [f"Agrégation ({self.engine}) : {self.n_events:,} événements de {self.n_files} fichier(s) "
                 f"en {self.duration_s:.1f} s.".replace(",", "\u202f"),
                 f"  {self.acces_path} : {self.acces_rows} ligne(s)",
                 f"  {self.actifs_path} : {self.actifs_rows} ligne(s), dont {self.sous_seuil} sous le seuil "
                 f"de {self.threshold} (sous_seuil = 1, à masquer en diffusion)"]
        if self.mode == "inchangé":
            lines[0] = (f"Agrégation ({self.engine}) : aucun fichier d'événements modifié depuis l'agrégation "
                        f"précédente ({self.state_path}) ; sorties conservées.")
        elif self.mode == "incrémental":
            lines.append(f"  incrémental : {len(self.months_aggregated)} mois relu(s) "
                         f"({_span(self.months_aggregated)}), {len(self.months_reused)} repris de la sortie "
                         "précédente (--full pour tout relire)")
        if len(self.findings):
            lines.append(f"  {len(self.findings)} constat(s) dans {self.findings_path} : "
                         f"{self.n_files_excluded} fichier(s) et {self.n_excluded:,} événement(s) écartés ; "
                         "corriger la source puis relancer.".replace(",", "\u202f"))
        return "\n".join(lines)


def _span(months: list) -> str:
    """Return months as a short French list (the first three, then a count)."""
    if not months:
        return "aucun"
    return ", ".join(months[:3]) + (f" et {len(months) - 3} autre(s)" if len(months) > 3 else "")


def _finding(regle: str, source: str, message: str, *, gravite: str = "erreur", ligne=None,
             uai: str = "", mois: str = "", id_ressource: str = "") -> dict:
    return {"regle": regle, "gravite": gravite, "source": source, "ligne": ligne, "uai": uai or "",
            "mois": mois or "", "id_ressource": id_ressource or "", "message": message}


# --------------------------------------------------------------------------- step 1: discovery

def _type_ok(name: str, typ: pa.DataType) -> bool:
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if name == "horodatage":
        return pa.types.is_timestamp(typ)
    return pa.types.is_string(typ) or pa.types.is_large_string(typ)


def _list_paths(events_dir: Path) -> list[Path]:
    """Return the Parquet files under ``events_dir``, sorted; raise when there is none."""
    if not events_dir.is_dir():
        raise DataError.single(events_dir, "répertoire d'événements absent.")
    paths = sorted(p for p in events_dir.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not paths:
        raise DataError.single(events_dir, "aucun fichier Parquet d'événements "
                               "(attendu : mois=AAAA-MM/*.parquet).")
    return paths


def _inspect(path: Path, events_dir: Path) -> dict:
    """Check one file from its footer: ``mois`` ("" outside a partition), ``lignes``, ``sain``, ``constat``.

    ``constat`` is the finding that leaves the file out, or None; ``sain`` tells whether
    the footer statistics prove the file free of nulls and out-of-month timestamps.
    """
    src = str(path)
    rel = path.relative_to(events_dir)
    m = _PARTITION_RE.match(rel.parts[0]) if len(rel.parts) == 2 else None
    entry = {"mois": "", "lignes": 0, "sain": False, "constat": None}
    if m is None:
        entry["constat"] = _finding("partition_invalide", src, "fichier hors d'une partition mois=AAAA-MM : "
                                    "le placer dans le répertoire du mois de ses événements ; fichier écarté.")
        return entry
    mois = entry["mois"] = m.group(1)
    try:
        meta = pq.ParquetFile(path).metadata
        schema = meta.schema.to_arrow_schema()
        n_rows = meta.num_rows
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding
        entry["constat"] = _finding("fichier_illisible", src, f"fichier Parquet illisible ({type(exc).__name__}) :"
                                    " le régénérer ; fichier écarté.", mois=mois)
        return entry
    missing = [c for c in EVENT_COLUMNS if c not in schema.names]
    if missing:
        entry["constat"] = _finding("colonne_manquante", src,
                                    f"colonne(s) absente(s) : {', '.join(missing)} (colonnes attendues : "
                                    f"{', '.join(EVENT_COLUMNS)}) ; fichier écarté.", mois=mois)
        return entry
    bad = [f"{c} ({schema.field(c).type})" for c in EVENT_COLUMNS if not _type_ok(c, schema.field(c).type)]
    if bad:
        entry["constat"] = _finding("type_invalide", src,
                                    f"type inattendu : {', '.join(bad)} ; horodatage doit être un timestamp, "
                                    "les autres colonnes du texte ; fichier écarté.", mois=mois)
        return entry
    entry["lignes"] = int(n_rows)
    entry["sain"] = bool(n_rows) and _clean(meta, mois)
    return entry


def _split(events_dir: Path, entries: dict[str, dict]) -> tuple[list[tuple[Path, str, bool]], list[dict]]:
    """Return (usable files, file findings) from inspected entries keyed by relative path."""
    files = [(events_dir / rel, e["mois"], e["sain"]) for rel, e in entries.items()
             if e["constat"] is None and e["lignes"]]
    return files, [e["constat"] for e in entries.values() if e["constat"] is not None]


def discover(events_dir: str | Path) -> tuple[list[tuple[Path, str, bool]], list[dict]]:
    """List the usable event files and report the others as findings.

    Parameters
    ----------
    events_dir : str or Path
        Directory of ``mois=YYYY-MM/*.parquet`` partitions.

    Returns
    -------
    files : list of (Path, str, bool)
        Usable files, their partition month, and whether their footer statistics
        prove them free of nulls and of timestamps outside the month.
    findings : list of dict
        One finding per file left out (``partition_invalide``, ``fichier_illisible``,
        ``colonne_manquante``, ``type_invalide``).

    Raises
    ------
    DataError
        When the directory is absent or holds no Parquet file.
    """
    events_dir = Path(events_dir)
    entries = {p.relative_to(events_dir).as_posix(): _inspect(p, events_dir) for p in _list_paths(events_dir)}
    return _split(events_dir, entries)


def _clean(meta: pq.FileMetaData, mois: str) -> bool:
    """Tell from the footer statistics that a file has no null and no timestamp outside its month.

    Such a file needs no row-level check of nulls and timestamps (vocabularies are
    checked after grouping, for every file). Without statistics, a file is checked row by row.
    """
    first = pd.Timestamp(f"{mois}-01")
    nxt = first + pd.offsets.MonthBegin(1)
    names = meta.schema.to_arrow_schema().names
    cols = {c: names.index(c) for c in EVENT_COLUMNS}
    try:
        for i in range(meta.num_row_groups):
            rg = meta.row_group(i)
            for c, j in cols.items():
                st = rg.column(j).statistics
                if st is None or not st.has_null_count or st.null_count:
                    return False
            st = rg.column(cols["horodatage"]).statistics
            if not st.has_min_max:
                return False
            lo, hi = pd.Timestamp(st.min), pd.Timestamp(st.max)
            if lo.tzinfo is not None:
                lo, hi = (t.tz_convert("Europe/Paris").tz_localize(None) for t in (lo, hi))
            if lo < first or hi >= nxt:
                return False
    except (ValueError, TypeError, IndexError):  # nested or unusual layouts: check row by row
        return False
    return True


# --------------------------------------------------------------------------- step 2: scan (shared SQL)

def _in_list(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


_MONTH_OK = ("(year(horodatage) * 100 + month(horodatage)) = "
             "(CAST(substr(mois, 1, 4) AS INT) * 100 + CAST(substr(mois, 6, 2) AS INT))")


def acces_sql(source: str, validate: bool = True) -> str:
    """Return the accès grouping query (with validity counters) over a relation ``source``.

    With ``validate=False`` (files whose statistics prove every timestamp in the
    month and no null) the counters are constants: the bare grouping.
    """
    if not validate:
        return f"""
SELECT mois, uai, id_ressource, profil, support, count(*) AS evenements, count(*) AS acces,
       CAST(0 AS BIGINT) AS hors_partition, CAST(0 AS BIGINT) AS manquants
FROM {source} e
GROUP BY mois, uai, id_ressource, profil, support"""
    return f"""
SELECT mois, uai, id_ressource, profil, support,
       count(*) AS evenements,
       count_if(t_ok AND id_accedant IS NOT NULL) AS acces,
       count_if(NOT t_ok) AS hors_partition,
       count_if(horodatage IS NULL OR id_accedant IS NULL) AS manquants
FROM (SELECT mois, uai, id_ressource, profil, support, id_accedant, horodatage, {_MONTH_OK} AS t_ok
      FROM {source}) e
GROUP BY mois, uai, id_ressource, profil, support"""


def _valid_union(clean: str | None, checked: str | None, support_filter: bool, columns: str) -> str:
    """Return the ``UNION ALL`` of the valid events (``columns``) of the clean and checked relations."""
    supports = f"support IN ({_in_list(SUPPORTS)})"
    parts = []
    if clean:
        where = f" WHERE {supports}" if support_filter else ""
        parts.append(f"SELECT {columns} FROM {clean}{where}")
    if checked:
        parts.append(f"SELECT {columns} FROM {checked} WHERE {supports} "
                     "AND uai IS NOT NULL AND id_ressource IS NOT NULL AND id_accedant IS NOT NULL "
                     f"AND profil IS NOT NULL AND {_MONTH_OK}")
    return "\n      UNION ALL\n      ".join(parts)


def actifs_sql(clean: str | None, checked: str | None, support_filter: bool = True,
               id_hash: str = "hash") -> str:
    """Return the distinct-accédants query over the valid events of two relations.

    ``clean`` holds files proven free of nulls and out-of-month timestamps,
    ``checked`` the others (filtered row by row); either may be None. Groups of
    an unknown profile are dropped afterwards; events of an unknown support must
    be filtered out here, unless the accès query found none (``support_filter=False``).
    Distinct accédants are counted on a 64-bit hash of the pseudonym (``id_hash``:
    ``hash`` in DuckDB, ``xxhash64`` in Spark), cheaper than on the string; see
    docs/events.md for the (negligible) collision probability.
    """
    union = _valid_union(clean, checked, support_filter, "mois, uai, profil, id_accedant")
    return f"""
SELECT mois, uai, profil, count(DISTINCT {id_hash}(id_accedant)) AS accedants_actifs
FROM ({union}) v
GROUP BY mois, uai, profil"""


def actifs_keyed_sql(clean: str | None, checked: str | None, support_filter: bool = True) -> str:
    """Return the DuckDB two-phase distinct query on integer keys only.

    Phase 1 keeps the distinct pairs (``k`` = ``hash(mois, uai, profil)``,
    ``h`` = ``hash(id_accedant)``), phase 2 counts them per ``k``: two UBIGINT
    keys instead of four strings, about half the CPU. ``k`` is mapped back to
    its (mois, uai, profil) exactly by :func:`_scan_duckdb`, which checks that
    no two groups share a ``k``.
    """
    union = _valid_union(clean, checked, support_filter, "hash(mois, uai, profil) AS k, hash(id_accedant) AS h")
    return f"""
SELECT k, count(*) AS accedants_actifs
FROM (SELECT DISTINCT k, h FROM ({union}) v) d
GROUP BY k"""


def scan_acces_sql(clean: str | None, checked: str | None) -> str:
    """Return the accès scan query over the clean and checked relations (either may be None)."""
    parts = []
    if clean:
        parts.append(acces_sql(clean, validate=False))
    if checked:
        parts.append(acces_sql(checked, validate=True))
    if len(parts) == 1:
        return parts[0]
    # a group may span clean and checked files of the same month: add them up
    return f"""
SELECT mois, uai, id_ressource, profil, support, sum(evenements) AS evenements, sum(acces) AS acces,
       sum(hors_partition) AS hors_partition, sum(manquants) AS manquants
FROM ({parts[0]}
      UNION ALL
      {parts[1]}) u
GROUP BY mois, uai, id_ressource, profil, support"""


def _support_filter_needed(con) -> bool:
    """Tell whether ``acces_brut`` holds events of an unknown or missing support."""
    return bool(con.execute(f"SELECT count(*) FROM acces_brut WHERE support IS NULL "
                            f"OR support NOT IN ({_in_list(SUPPORTS)})").fetchone()[0])


def _duckdb_connect(memory_limit: str | None, threads: int | None,
                    temp_directory: str | Path) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB with bounded memory, spilling to ``temp_directory``."""
    cfg = {"threads": int(threads or os.cpu_count() or 1), "preserve_insertion_order": False,
           "temp_directory": str(temp_directory)}
    if memory_limit:
        cfg["memory_limit"] = str(memory_limit)
    con = duckdb.connect(config=cfg)
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:  # in Jupyter without ipywidgets: already off, and cannot be set
        pass
    con.execute("SET TimeZone = 'Europe/Paris'")
    return con


def _scan_duckdb(con, files: list[tuple[Path, str, bool]], keyed: bool = True) -> None:
    """Run both queries with DuckDB into the temporary tables ``acces_brut`` and ``actifs_brut``.

    ``keyed=False`` counts distinct accédants grouped on the strings (:func:`actifs_sql`)
    instead of the integer keys (:func:`actifs_keyed_sql`); both give the same table.
    """
    def relation(paths):
        if not paths:
            return None
        listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
        return (f"(SELECT {', '.join(EVENT_COLUMNS)}, mois FROM read_parquet({listing}, hive_partitioning = true, "
                "hive_types = {'mois': VARCHAR}, union_by_name = true))")

    clean = relation([p for p, _, ok in files if ok])
    checked = relation([p for p, _, ok in files if not ok])
    con.execute(f"CREATE TEMP TABLE acces_brut AS {scan_acces_sql(clean, checked)}")
    support_filter = _support_filter_needed(con)
    # Every (mois, uai, profil) of a valid event is a group of acces_brut: map the keys back from it.
    if keyed:
        con.execute("CREATE TEMP TABLE groupes AS SELECT DISTINCT mois, uai, profil, hash(mois, uai, profil) AS k "
                    "FROM acces_brut WHERE uai IS NOT NULL AND profil IS NOT NULL")
        keyed = _keys_unique(con)
    if keyed:
        con.execute(f"CREATE TEMP TABLE actifs_k AS {actifs_keyed_sql(clean, checked, support_filter)}")
        con.execute("CREATE TEMP TABLE actifs_brut AS SELECT g.mois, g.uai, g.profil, a.accedants_actifs "
                    "FROM actifs_k a JOIN groupes g USING (k)")
    else:  # a 64-bit key collision between two groups (never seen): group on the strings
        log.info("agrégation : clés de groupe en collision, comptage sur les chaînes")
        con.execute(f"CREATE TEMP TABLE actifs_brut AS {actifs_sql(clean, checked, support_filter)}")


def _keys_unique(con) -> bool:
    """Tell whether every (mois, uai, profil) of ``groupes`` has its own key ``k``."""
    n_groups, n_keys = con.execute("SELECT count(*), count(DISTINCT k) FROM groupes").fetchone()
    return n_groups == n_keys


def _spark_session(master: str | None):
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("moteur spark indisponible : installer l'option « spark » "
                          "(pip install 'gar-analysis[spark]') ou utiliser --engine duckdb.") from None
    builder = (SparkSession.builder.appName("gar-analysis-aggregate")
               .config("spark.sql.session.timeZone", "Europe/Paris")
               .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
               .config("spark.sql.files.openCostInBytes", str(1 << 20))
               .config("spark.sql.shuffle.partitions", str(max(4, 2 * (os.cpu_count() or 1)))))
    if master or not os.environ.get("SPARK_MASTER"):
        builder = builder.master(master or "local[*]")
    try:
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        return spark
    except Exception as exc:  # noqa: BLE001 - Java absent, gateway failure…
        raise ConfigError(f"moteur spark indisponible ({type(exc).__name__} : {str(exc)[:200]}) : "
                          "vérifier Java (17) ou utiliser --engine duckdb.") from None


def _scan_spark(con, files: list[tuple[Path, str, bool]], events_dir: Path, tmp: Path,
                master: str | None) -> None:
    """Run both queries with PySpark; load their Parquet outputs into ``acces_brut`` and ``actifs_brut``."""
    from pyspark.sql import types as T

    spark = _spark_session(master)
    views = []
    # An explicit schema: no job to infer it from every footer (types were checked by discover).
    schema = T.StructType([T.StructField("horodatage", T.TimestampNTZType())]
                          + [T.StructField(c, T.StringType()) for c in EVENT_COLUMNS[1:]]
                          + [T.StructField("mois", T.StringType())])

    def relation(paths, name):
        if not paths:
            return None
        df = (spark.read.schema(schema).option("basePath", str(events_dir)).parquet(*[str(p) for p in paths])
              .select(*EVENT_COLUMNS, "mois"))
        df.createOrReplaceTempView(name)
        views.append(name)
        return name

    clean = relation([p for p, _, ok in files if ok], "gar_evenements_sains")
    checked = relation([p for p, _, ok in files if not ok], "gar_evenements_a_verifier")
    a, b = tmp / "acces_brut", tmp / "actifs_brut"
    spark.sql(scan_acces_sql(clean, checked)).write.mode("overwrite").parquet(str(a))
    con.execute(f"CREATE TEMP TABLE acces_brut AS SELECT * FROM read_parquet('{a}/*.parquet')")
    actifs = actifs_sql(clean, checked, _support_filter_needed(con), id_hash="xxhash64")
    spark.sql(actifs).write.mode("overwrite").parquet(str(b))
    con.execute(f"CREATE TEMP TABLE actifs_brut AS SELECT * FROM read_parquet('{b}/*.parquet')")
    for name in views:
        spark.catalog.dropTempView(name)


# --------------------------------------------------------------------------- step 3: finishing

def _row_findings(con, events_dir: Path) -> list[dict]:
    """Turn the bad groups of ``acces_brut`` into findings (one per rule, month and value)."""
    profils, supports = _in_list(PROFILS), _in_list(SUPPORTS)
    con.execute(f"""CREATE TEMP TABLE acces_defauts AS SELECT * FROM acces_brut
        WHERE hors_partition > 0 OR manquants > 0 OR uai IS NULL OR id_ressource IS NULL
           OR profil IS NULL OR support IS NULL OR profil NOT IN ({profils}) OR support NOT IN ({supports})""")
    q = f"""
WITH b AS (SELECT * FROM acces_defauts),
f AS (
  SELECT 'valeur_manquante' AS regle, mois, 'uai' AS colonne, NULL AS valeur, sum(evenements) AS n,
         NULL AS u1, NULL AS u2, min(id_ressource) AS r1, max(id_ressource) AS r2 FROM b WHERE uai IS NULL GROUP BY mois
  UNION ALL
  SELECT 'valeur_manquante', mois, 'id_ressource', NULL, sum(evenements), min(uai), max(uai), NULL, NULL
    FROM b WHERE id_ressource IS NULL AND uai IS NOT NULL GROUP BY mois
  UNION ALL
  SELECT 'valeur_manquante', mois, 'profil', NULL, sum(evenements), min(uai), max(uai), min(id_ressource), max(id_ressource)
    FROM b WHERE profil IS NULL AND uai IS NOT NULL AND id_ressource IS NOT NULL GROUP BY mois
  UNION ALL
  SELECT 'valeur_manquante', mois, 'support', NULL, sum(evenements), min(uai), max(uai), min(id_ressource), max(id_ressource)
    FROM b WHERE support IS NULL AND profil IS NOT NULL AND uai IS NOT NULL AND id_ressource IS NOT NULL GROUP BY mois
  UNION ALL
  SELECT 'valeur_inconnue', mois, 'profil', profil, sum(evenements), min(uai), max(uai), min(id_ressource), max(id_ressource)
    FROM b WHERE profil NOT IN ({profils}) AND uai IS NOT NULL AND id_ressource IS NOT NULL GROUP BY mois, profil
  UNION ALL
  SELECT 'valeur_inconnue', mois, 'support', support, sum(evenements), min(uai), max(uai), min(id_ressource), max(id_ressource)
    FROM b WHERE support NOT IN ({supports}) AND profil IN ({profils}) AND uai IS NOT NULL AND id_ressource IS NOT NULL
    GROUP BY mois, support
  UNION ALL
  SELECT 'horodatage_hors_partition', mois, 'horodatage', NULL, sum(hors_partition), min(uai), max(uai),
         min(id_ressource), max(id_ressource)
    FROM b WHERE hors_partition > 0 AND uai IS NOT NULL AND id_ressource IS NOT NULL
      AND profil IN ({profils}) AND support IN ({supports}) GROUP BY mois
  UNION ALL
  SELECT 'valeur_manquante', mois, 'horodatage ou id_accedant', NULL, sum(manquants), min(uai), max(uai),
         min(id_ressource), max(id_ressource)
    FROM b WHERE manquants > 0 AND uai IS NOT NULL AND id_ressource IS NOT NULL
      AND profil IN ({profils}) AND support IN ({supports}) GROUP BY mois)
SELECT * FROM f WHERE n > 0 ORDER BY mois, regle, colonne, valeur NULLS FIRST"""
    out = []
    for regle, mois, colonne, valeur, n, u1, u2, r1, r2 in con.execute(q).fetchall():
        n = int(n)
        if regle == "valeur_inconnue":
            allowed = ", ".join(PROFILS if colonne == "profil" else SUPPORTS)
            msg = (f"{n} événement(s) avec {colonne} « {valeur} » inconnu : valeurs possibles {allowed} ; "
                   "événements écartés.")
        elif regle == "horodatage_hors_partition":
            msg = (f"{n} événement(s) horodaté(s) hors du mois {mois} de leur partition : les ranger dans la "
                   "partition de leur mois ; événements écartés.")
        else:
            msg = f"{n} événement(s) sans {colonne} : champ obligatoire ; événements écartés."
        out.append(_finding(regle, str(events_dir / f"mois={mois}"), msg, mois=mois,
                            uai=u1 if u1 is not None and u1 == u2 else "",
                            id_ressource=r1 if r1 is not None and r1 == r2 else ""))
    return out


# --------------------------------------------------------------------------- incremental state

#: State of the last aggregation, beside its outputs (``out_dir/agregation_etat.json``).
STATE_NAME = "agregation_etat.json"
#: Version of the state layout and of the aggregation rules: another version means a full run.
STATE_VERSION = 1
_OUTPUTS = ("gar/acces.csv", "gar/acces.parquet", "gar/accedants_actifs.csv", "gar/accedants_actifs.parquet",
            "constats_evenements.csv")


def _fingerprint(path: Path) -> dict:
    """Return the stat fingerprint of a file: size, mtime, ctime (ns) and inode.

    Any write changes the ctime, which no tool can set back (unlike the mtime that
    ``cp -p`` or ``rsync -a`` restore); a file replaced by a rename gets a new inode.
    Reading the files (a sha256) would cost as much as aggregating them.
    """
    st = path.stat()
    return {"taille": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def _same(entry: dict | None, fp: dict) -> bool:
    return entry is not None and all(entry.get(k) == v for k, v in fp.items())


def _load_state(out_dir: Path, events_dir: Path) -> tuple[dict | None, str]:
    """Return the usable previous state, or None and why a full run is needed (French)."""
    path = out_dir / STATE_NAME
    if not path.exists():
        return None, "aucun état d'une agrégation précédente"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            return None, f"état {path} d'une autre version"
        if state["evenements"] != str(events_dir.resolve()):
            return None, f"état {path} d'un autre répertoire d'événements ({state['evenements']})"
        for rel, fp in state["sorties"].items():
            if not (out_dir / rel).exists() or not _same(fp, _fingerprint(out_dir / rel)):
                return None, f"sortie {out_dir / rel} absente ou modifiée depuis l'agrégation précédente"
        if not (isinstance(state["fichiers"], dict) and isinstance(state["mois"], dict)):
            return None, f"état {path} illisible"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, f"état {path} illisible"
    return state, ""


def _plan(events_dir: Path, out_dir: Path, full: bool) -> tuple[dict, dict | None, set, str]:
    """Inspect the event files, reusing the previous state for unchanged ones.

    Returns
    -------
    entries : dict
        Relative path → inspection (:func:`_inspect`) and fingerprint, in path order.
    state : dict or None
        The previous state, None for a full run.
    dirty : set of str
        Months to aggregate again: every month for a full run, else the months of
        added, changed and removed files.
    why_full : str
        Why the run is full ("" when incremental).
    """
    paths = _list_paths(events_dir)
    state, why_full = (None, "agrégation complète demandée (--full)") if full else _load_state(out_dir, events_dir)
    old = state["fichiers"] if state else {}
    entries = {}
    dirty = set()
    for p in paths:
        rel = p.relative_to(events_dir).as_posix()
        fp = _fingerprint(p)
        if _same(old.get(rel), fp):
            entries[rel] = old[rel]
        else:
            entries[rel] = {**_inspect(p, events_dir), **fp}
            dirty.add(entries[rel]["mois"])
            if rel in old:
                dirty.add(old[rel]["mois"])
    dirty |= {e["mois"] for rel, e in old.items() if rel not in entries}
    if state is None:
        dirty |= {e["mois"] for e in entries.values()}
    dirty.discard("")
    return entries, state, dirty, why_full


def _stage(con, table: str, path: Path, options: str, staged: list) -> None:
    """Write a DuckDB table to a temporary file beside ``path``; record it in ``staged``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    staged.append((Path(tmp), path))
    target = tmp.replace("'", "''")
    con.execute(f"COPY {table} TO '{target}' {options}")


def _publish(staged: list) -> None:
    """Move staged files into place (after every one was written), with the usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    for tmp, path in staged:
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)


def _months_sql(months) -> str:
    return _in_list(sorted(months)) if months else "NULL"


# --------------------------------------------------------------------------- entry point

def aggregate_events(events_dir: str | Path, out_dir: str | Path, *, engine: str = "duckdb",
                     threshold: int | None = None, memory_limit: str | None = "2600MB",
                     threads: int | None = None, temp_directory: str | Path | None = None,
                     spark_master: str | None = None, full: bool = False) -> AggregationResult:
    """Aggregate raw events into ``gar/acces.csv`` and ``gar/accedants_actifs.csv``.

    Incremental: the state of the last run (``out_dir/agregation_etat.json``) says
    which file fed which month; only the months of added, changed or removed files
    are read again and merged with the previous outputs. The outputs are identical
    to those of a full run.

    Parameters
    ----------
    events_dir : str or Path
        Directory of ``mois=YYYY-MM/*.parquet`` event partitions.
    out_dir : str or Path
        Output data directory: ``gar/acces.csv`` (+ ``.parquet``),
        ``gar/accedants_actifs.csv`` (+ ``.parquet``), ``constats_evenements.csv``
        and the state ``agregation_etat.json``.
    engine : {"duckdb", "spark"}, optional
        Engine of the scan. Both give identical outputs.
    threshold : int, optional
        Disclosure threshold: distinct counts below it get ``sous_seuil = 1``.
        Default ``config.DISCLOSURE_THRESHOLD``.
    memory_limit : str, optional
        DuckDB memory limit (spills to ``temp_directory`` beyond it).
    threads : int, optional
        DuckDB threads (default: all CPUs).
    temp_directory : str or Path, optional
        Spill and intermediate directory (default: a fresh temporary directory).
    spark_master : str, optional
        Spark master URL (default ``local[*]``, or the running session's).
    full : bool, optional
        Ignore the state: read every file again.

    Returns
    -------
    AggregationResult
        Paths, row counts, findings, and which months were aggregated or reused.

    Raises
    ------
    ConfigError
        On an unknown engine, or Spark unavailable.
    DataError
        When the events directory is absent or holds no Parquet file, or when no
        valid access remains (every file rejected, every row invalid): the findings
        are written, the previous ``gar/*`` outputs are kept, never replaced by empty ones.
    """
    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise ConfigError(f"moteur inconnu : {engine!r} ; moteurs possibles : {', '.join(ENGINES)}.")
    threshold = config.disclosure_threshold(threshold)
    events_dir, out_dir = Path(events_dir), Path(out_dir)
    entries, state, dirty, why_full = _plan(events_dir, out_dir, full)
    all_files, file_findings = _split(events_dir, entries)
    gar = out_dir / "gar"
    paths = {k: gar / v for k, v in (("acces", "acces.csv"), ("acces_pq", "acces.parquet"),
                                     ("actifs", "accedants_actifs.csv"),
                                     ("actifs_pq", "accedants_actifs.parquet"))}
    findings_path = out_dir / "constats_evenements.csv"
    state_path = out_dir / STATE_NAME
    months = sorted({e["mois"] for e in entries.values()} - {""})
    reused = [m for m in months if m not in dirty]
    unchanged = (state is not None and not dirty and state.get("seuil") == threshold
                 and list(state["fichiers"]) == list(entries)
                 and all(state["fichiers"][k] is entries[k] for k in entries))
    if unchanged:  # nothing to do: the outputs are those of the state
        return _result(engine, paths, findings_path, state_path, state, threshold, "inchangé", [], reused,
                       t0)
    files = [f for f in all_files if f[1] in dirty]
    if temp_directory is not None:
        Path(temp_directory).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gar-agg-", dir=temp_directory))
    staged: list[tuple[Path, Path]] = []
    try:
        con = _duckdb_connect(memory_limit, threads, tmp)
        if files:
            if engine == "duckdb":
                _scan_duckdb(con, files)
            else:
                _scan_spark(con, files, events_dir, tmp, spark_master)
        else:
            con.execute("CREATE TEMP TABLE acces_brut (mois VARCHAR, uai VARCHAR, id_ressource VARCHAR, "
                        "profil VARCHAR, support VARCHAR, evenements BIGINT, acces BIGINT, "
                        "hors_partition BIGINT, manquants BIGINT)")
            con.execute("CREATE TEMP TABLE actifs_brut (mois VARCHAR, uai VARCHAR, profil VARCHAR, "
                        "accedants_actifs BIGINT)")
        # per month: events read and row findings, new for the dirty months, from the state for the others
        per_month = {m: {"evenements": 0, "constats": []} for m in months if m in dirty}
        per_month.update({m: state["mois"].get(m, {"evenements": 0, "constats": []}) for m in reused})
        for f in _row_findings(con, events_dir):
            per_month.setdefault(f["mois"], {"evenements": 0, "constats": []})["constats"].append(f)
        for m, n in con.execute("SELECT mois, sum(evenements) FROM acces_brut GROUP BY mois").fetchall():
            per_month.setdefault(m, {"evenements": 0, "constats": []})["evenements"] = int(n)
        findings = file_findings + [f for m in sorted(per_month) for f in per_month[m]["constats"]]
        profils, supports = _in_list(PROFILS), _in_list(SUPPORTS)
        con.execute("SET preserve_insertion_order = true")  # sorted tables stay sorted when written
        # free-text keys written spreadsheet-safe (gar_analysis.io.spreadsheet_safe): CSV and Parquet alike
        uai, res = spreadsheet_safe_sql("uai"), spreadsheet_safe_sql("id_ressource")
        old_acces = old_actifs = ""
        if reused:  # rows of the unchanged months, from the previous outputs (checked against the state)
            kept = _months_sql(reused)
            pa_, pb_ = (str(paths[k]).replace("'", "''") for k in ("acces_pq", "actifs_pq"))
            old_acces = (f"UNION ALL SELECT mois, uai, id_ressource, profil, support, acces "
                         f"FROM read_parquet('{pa_}') WHERE mois IN ({kept})")
            old_actifs = (f"UNION ALL SELECT mois, uai, profil, accedants_actifs "
                          f"FROM read_parquet('{pb_}') WHERE mois IN ({kept})")
        con.execute(f"""
            CREATE TEMP TABLE acces_final AS
            SELECT * FROM (
              SELECT mois, {uai} AS uai, {res} AS id_ressource, profil, support, CAST(acces AS BIGINT) AS acces
              FROM acces_brut
              WHERE acces > 0 AND uai IS NOT NULL AND id_ressource IS NOT NULL
                AND profil IN ({profils}) AND support IN ({supports})
              {old_acces})
            ORDER BY mois, uai, id_ressource, profil, support""")
        con.execute(f"""
            CREATE TEMP TABLE actifs_final AS
            SELECT mois, uai, profil, accedants_actifs,
                   CAST(accedants_actifs < {threshold} AS INTEGER) AS sous_seuil FROM (
              SELECT mois, {uai} AS uai, profil, CAST(accedants_actifs AS BIGINT) AS accedants_actifs
              FROM actifs_brut WHERE uai IS NOT NULL AND profil IN ({profils})
              {old_actifs})
            ORDER BY mois, uai, profil""")
        fdf = pd.DataFrame(findings, columns=FINDING_COLUMNS)
        fdf["ligne"] = fdf["ligne"].astype("Int64")
        if not con.execute("SELECT count(*) FROM acces_final").fetchone()[0]:
            con.close()
            atomic_write_text(findings_path, csv_text(fdf))
            why = (f"les {len(file_findings)} fichier(s) d'événements sont écartés" if not all_files
                   else "aucun événement valide dans les fichiers lus")
            raise DataError.single(events_dir, f"aucun accès à agréger : {why} (voir {findings_path}) ; "
                                   f"les sorties existantes de {gar} sont conservées.")
        # every output is written beside its target first, then all are moved into place:
        # a failure while writing leaves the previous outputs whole
        for table, csv_key, pq_key in (("acces_final", "acces", "acces_pq"), ("actifs_final", "actifs", "actifs_pq")):
            _stage(con, table, paths[csv_key], "(HEADER, DELIMITER ';')", staged)
            _stage(con, table, paths[pq_key], "(FORMAT parquet, COMPRESSION snappy)", staged)
        (n_events, acces_rows), = con.execute("SELECT coalesce(sum(acces), 0), count(*) FROM acces_final").fetchall()
        (actifs_rows, sous_seuil), = con.execute(
            "SELECT count(*), coalesce(sum(sous_seuil), 0) FROM actifs_final").fetchall()
        con.close()
        fd, ftmp = tempfile.mkstemp(prefix=f".{findings_path.name}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        staged.append((Path(ftmp), findings_path))
        Path(ftmp).write_text(csv_text(fdf), encoding="utf-8")
        _publish(staged)
        staged = []
    finally:
        for t, _ in staged:
            t.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    new_state = {
        "version": STATE_VERSION, "evenements": str(events_dir.resolve()), "seuil": threshold,
        "ecrit_le": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "resume": {"n_events": int(n_events), "n_excluded": sum(v["evenements"] for v in per_month.values())
                   - int(n_events), "acces_rows": int(acces_rows), "actifs_rows": int(actifs_rows),
                   "sous_seuil": int(sous_seuil)},
        "fichiers": entries, "mois": {m: per_month[m] for m in sorted(per_month)},
        "sorties": {rel: _fingerprint(out_dir / rel) for rel in _OUTPUTS}}
    atomic_write_text(state_path, json.dumps(new_state, ensure_ascii=False, indent=1, default=str))
    mode = "complet" if state is None else "incrémental"
    if why_full:
        log.info("agrégation complète : %s", why_full)
    return _result(engine, paths, findings_path, state_path, new_state, threshold, mode,
                   sorted(dirty), reused, t0, fdf)


def _result(engine, paths, findings_path, state_path, state, threshold, mode, aggregated, reused, t0,
            fdf=None) -> AggregationResult:
    """Build the :class:`AggregationResult` of a run from its state."""
    if fdf is None:
        findings = ([e["constat"] for e in state["fichiers"].values() if e["constat"] is not None]
                    + [f for m in sorted(state["mois"]) for f in state["mois"][m]["constats"]])
        fdf = pd.DataFrame(findings, columns=FINDING_COLUMNS)
        fdf["ligne"] = fdf["ligne"].astype("Int64")
    files = state["fichiers"].values()
    r = state["resume"]
    result = AggregationResult(
        engine=engine, acces_path=paths["acces"], acces_parquet_path=paths["acces_pq"],
        actifs_path=paths["actifs"], actifs_parquet_path=paths["actifs_pq"], findings_path=findings_path,
        findings=fdf, n_files=sum(1 for e in files if e["constat"] is None and e["lignes"]),
        n_files_excluded=sum(1 for e in files if e["constat"] is not None), n_events=r["n_events"],
        n_excluded=r["n_excluded"], acces_rows=r["acces_rows"], actifs_rows=r["actifs_rows"],
        sous_seuil=r["sous_seuil"], threshold=threshold, duration_s=round(time.perf_counter() - t0, 3),
        mode=mode, months_aggregated=list(aggregated), months_reused=list(reused), state_path=state_path)
    log.info("agrégation %s (%s) : %d événements, %d constat(s), %.1f s", engine, mode, r["n_events"],
             len(fdf), result.duration_s)
    return result
