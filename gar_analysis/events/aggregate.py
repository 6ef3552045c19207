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

import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import config
from ..contract import PROFILS, SUPPORTS
from ..errors import ConfigError, DataError
from ..io import atomic_path, atomic_write_text, csv_text, spreadsheet_safe_sql
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

    def summary(self) -> str:
        """Return a short French summary for the command line."""
        lines = [f"Agrégation ({self.engine}) : {self.n_events:,} événements de {self.n_files} fichier(s) "
                 f"en {self.duration_s:.1f} s.".replace(",", "\u202f"),
                 f"  {self.acces_path} : {self.acces_rows} ligne(s)",
                 f"  {self.actifs_path} : {self.actifs_rows} ligne(s), dont {self.sous_seuil} sous le seuil "
                 f"de {self.threshold} (sous_seuil = 1, à masquer en diffusion)"]
        if len(self.findings):
            lines.append(f"  {len(self.findings)} constat(s) dans {self.findings_path} : "
                         f"{self.n_files_excluded} fichier(s) et {self.n_excluded:,} événement(s) écartés ; "
                         "corriger la source puis relancer.".replace(",", "\u202f"))
        return "\n".join(lines)


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


def discover(events_dir: str | Path) -> tuple[list[tuple[Path, str]], list[dict]]:
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
    if not events_dir.is_dir():
        raise DataError.single(events_dir, "répertoire d'événements absent.")
    paths = sorted(p for p in events_dir.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not paths:
        raise DataError.single(events_dir, "aucun fichier Parquet d'événements "
                               "(attendu : mois=AAAA-MM/*.parquet).")
    files, findings = [], []
    for path in paths:
        src = str(path)
        rel = path.relative_to(events_dir)
        m = _PARTITION_RE.match(rel.parts[0]) if len(rel.parts) == 2 else None
        if m is None:
            findings.append(_finding("partition_invalide", src, "fichier hors d'une partition mois=AAAA-MM : "
                                     "le placer dans le répertoire du mois de ses événements ; fichier écarté."))
            continue
        mois = m.group(1)
        try:
            meta = pq.ParquetFile(path).metadata
            schema = meta.schema.to_arrow_schema()
            n_rows = meta.num_rows
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding
            findings.append(_finding("fichier_illisible", src, f"fichier Parquet illisible ({type(exc).__name__}) :"
                                     " le régénérer ; fichier écarté.", mois=mois))
            continue
        missing = [c for c in EVENT_COLUMNS if c not in schema.names]
        if missing:
            findings.append(_finding("colonne_manquante", src,
                                     f"colonne(s) absente(s) : {', '.join(missing)} (colonnes attendues : "
                                     f"{', '.join(EVENT_COLUMNS)}) ; fichier écarté.", mois=mois))
            continue
        bad = [f"{c} ({schema.field(c).type})" for c in EVENT_COLUMNS if not _type_ok(c, schema.field(c).type)]
        if bad:
            findings.append(_finding("type_invalide", src,
                                     f"type inattendu : {', '.join(bad)} ; horodatage doit être un timestamp, "
                                     "les autres colonnes du texte ; fichier écarté.", mois=mois))
            continue
        if n_rows:
            files.append((path, mois, _clean(meta, mois)))
    return files, findings


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


def _copy(con, table: str, path: Path, options: str) -> None:
    """Write a DuckDB table to ``path`` atomically with ``COPY … TO``."""
    with atomic_path(path) as tmp:
        target = str(tmp).replace("'", "''")
        con.execute(f"COPY {table} TO '{target}' {options}")


def aggregate_events(events_dir: str | Path, out_dir: str | Path, *, engine: str = "duckdb",
                     threshold: int | None = None, memory_limit: str | None = "2600MB",
                     threads: int | None = None, temp_directory: str | Path | None = None,
                     spark_master: str | None = None) -> AggregationResult:
    """Aggregate raw events into ``gar/acces.csv`` and ``gar/accedants_actifs.csv``.

    Parameters
    ----------
    events_dir : str or Path
        Directory of ``mois=YYYY-MM/*.parquet`` event partitions.
    out_dir : str or Path
        Output data directory: ``gar/acces.csv`` (+ ``.parquet``),
        ``gar/accedants_actifs.csv`` (+ ``.parquet``) and ``constats_evenements.csv``.
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

    Returns
    -------
    AggregationResult
        Paths, row counts and findings.

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
    files, findings = discover(events_dir)
    n_bad_files = len(findings)
    if temp_directory is not None:
        Path(temp_directory).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gar-agg-", dir=temp_directory))
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
        findings += _row_findings(con, events_dir)
        profils, supports = _in_list(PROFILS), _in_list(SUPPORTS)
        con.execute("SET preserve_insertion_order = true")  # sorted tables stay sorted when written
        # free-text keys written spreadsheet-safe (gar_analysis.io.spreadsheet_safe): CSV and Parquet alike
        uai, res = spreadsheet_safe_sql("uai"), spreadsheet_safe_sql("id_ressource")
        con.execute(f"""
            CREATE TEMP TABLE acces_final AS
            SELECT mois, {uai} AS uai, {res} AS id_ressource, profil, support, CAST(acces AS BIGINT) AS acces
            FROM acces_brut
            WHERE acces > 0 AND uai IS NOT NULL AND id_ressource IS NOT NULL
              AND profil IN ({profils}) AND support IN ({supports})
            ORDER BY mois, uai, id_ressource, profil, support""")
        con.execute(f"""
            CREATE TEMP TABLE actifs_final AS
            SELECT mois, {uai} AS uai, profil, CAST(accedants_actifs AS BIGINT) AS accedants_actifs,
                   CAST(accedants_actifs < {threshold} AS INTEGER) AS sous_seuil FROM actifs_brut
            WHERE uai IS NOT NULL AND profil IN ({profils})
            ORDER BY mois, uai, profil""")
        gar = out_dir / "gar"
        paths = {k: gar / v for k, v in (("acces", "acces.csv"), ("acces_pq", "acces.parquet"),
                                         ("actifs", "accedants_actifs.csv"),
                                         ("actifs_pq", "accedants_actifs.parquet"))}
        if not con.execute("SELECT count(*) FROM acces_final").fetchone()[0]:
            con.close()
            fdf = pd.DataFrame(findings, columns=FINDING_COLUMNS)
            findings_path = out_dir / "constats_evenements.csv"
            atomic_write_text(findings_path, csv_text(fdf))
            why = (f"les {n_bad_files} fichier(s) d'événements sont écartés" if not files
                   else "aucun événement valide dans les fichiers lus")
            raise DataError.single(events_dir, f"aucun accès à agréger : {why} (voir {findings_path}) ; "
                                   f"les sorties existantes de {gar} sont conservées.")
        for table, csv_key, pq_key in (("acces_final", "acces", "acces_pq"), ("actifs_final", "actifs", "actifs_pq")):
            _copy(con, table, paths[csv_key], "(HEADER, DELIMITER ';')")
            _copy(con, table, paths[pq_key], "(FORMAT parquet, COMPRESSION snappy)")
        (n_events, acces_rows), = con.execute("SELECT coalesce(sum(acces), 0), count(*) FROM acces_final").fetchall()
        (actifs_rows, sous_seuil), = con.execute(
            "SELECT count(*), coalesce(sum(sous_seuil), 0) FROM actifs_final").fetchall()
        totals = con.execute("SELECT coalesce(sum(evenements), 0) FROM acces_brut").fetchone()[0]
        con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fdf = pd.DataFrame(findings, columns=FINDING_COLUMNS)
    fdf["ligne"] = fdf["ligne"].astype("Int64")
    findings_path = out_dir / "constats_evenements.csv"
    atomic_write_text(findings_path, csv_text(fdf))
    result = AggregationResult(
        engine=engine, acces_path=paths["acces"], acces_parquet_path=paths["acces_pq"],
        actifs_path=paths["actifs"], actifs_parquet_path=paths["actifs_pq"], findings_path=findings_path,
        findings=fdf, n_files=len(files), n_files_excluded=n_bad_files, n_events=int(n_events),
        n_excluded=int(totals) - int(n_events), acces_rows=int(acces_rows), actifs_rows=int(actifs_rows),
        sous_seuil=int(sous_seuil), threshold=threshold,
        duration_s=round(time.perf_counter() - t0, 3))
    log.info("agrégation %s : %d événements, %d constat(s), %.1f s", engine, n_events, len(fdf),
             result.duration_s)
    return result
