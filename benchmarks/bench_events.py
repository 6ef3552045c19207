"""Benchmark of the raw-event aggregation (issue 8): DuckDB vs bare SQL vs pandas.

Usage::

    .venv/bin/python benchmarks/bench_events.py --sizes 1e6 1e7 1e8 --repeat 3

Steps:

1. a demo data directory (``benchmarks/out/data``: registered schools and
   subscriptions) and, per size, generated events in ``benchmarks/out/events_<n>``,
   reused on later runs (a ``_generation.json`` marker records the parameters);
2. per size, each variant runs in its own fresh subprocess, timed, its peak
   memory read with ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``:

   - ``duckdb``: :func:`gar_analysis.events.aggregate_events` (validation,
     findings, CSV + Parquet outputs, atomic writes; distinct accédants counted
     on 64-bit hashes with integer group keys);
   - ``sql``: the bare DuckDB grouping queries alone, as written naively
     (``count(DISTINCT id_accedant)`` on the string, no memory limit);
   - ``pandas``: plain pandas, read everything then ``groupby``. It runs at a
     size only when its estimated peak (``PANDAS_BYTES_PER_EVENT``) fits in the
     available memory and the size is at most ``--pandas-max``; otherwise the
     comparison is per-event throughput on the largest size that fits;
   - ``pandas_str`` (``--variants``): the same, reading the dictionary columns as
     plain strings (what pandas gets from files written without Arrow metadata,
     e.g. by Spark), to show whether the file layout favours the baseline;
   - ``spark`` (``--spark``): the PySpark engine.

With ``--incremental`` (issue 20) the script measures instead the incremental
``aggregate``: per size and per added month (``--added-months last largest`` or
``YYYY-MM``), the month is withheld, the other months aggregated (``initial``), the
month put back, then timed: the incremental run (``incremental``: that month read
and merged), a run with nothing changed (``inchange``) and a full run of the same
folder (``full``, ``full=True``); the incremental and full outputs are compared
byte for byte. ``--work DIR`` puts the data and outputs outside the repository.

With ``--repeat K`` every measurement is taken K times, variants interleaved
(round-robin, so that drifting load hits each alike); the table gives the
median, the JSON every run. Results are printed as a Markdown table and written
to ``benchmarks/out/bench_events.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
N_SCHOOLS = 10_000
N_RESOURCES = 500
SEED = 20241
# Peak memory of the pandas variants per event, measured at 10 M and 100 M events
# (pandas 1.70 and 13.99 GB, pandas_str 2.41 and 19.20 GB): used to skip them where they would not fit.
PANDAS_BYTES_PER_EVENT = {"pandas": 140, "pandas_str": 195}
PANDAS_BASE_BYTES = 400 * 2**20


def label(n: int) -> str:
    """Return a short label for a size (1M, 100M)."""
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else str(n)


def ensure_events(n: int) -> Path:
    """Generate (or reuse) ``n`` events in ``benchmarks/out/events_<n>``."""
    from gar_analysis.events import generate_events
    from gar_analysis.events.demo import write_demo_data_dir

    data = OUT / "data"
    if not (data / "gar/abonnements.csv").exists():
        write_demo_data_dir(data, n_schools=N_SCHOOLS, n_resources=N_RESOURCES, seed=SEED)
    events = OUT / f"events_{label(n)}"
    marker = events / "_generation.json"
    params = {"n_events": n, "seed": SEED, "schools": N_SCHOOLS, "resources": N_RESOURCES}
    if marker.exists() and json.loads(marker.read_text())["params"] == params:
        return events
    t0 = time.perf_counter()
    info = generate_events(data, n, events, seed=SEED)
    info["params"] = params
    info["wall_s"] = round(time.perf_counter() - t0, 1)
    marker.write_text(json.dumps(info, indent=1))
    print(f"généré {label(n)} événements en {info['wall_s']} s", flush=True)
    return events


# --------------------------------------------------------------------------- variants (run in a child)

def variant_duckdb(events: Path, out: Path) -> dict:
    from gar_analysis.events import aggregate_events

    r = aggregate_events(events, out, engine="duckdb", full=True)  # every run does the whole work
    return {"acces_rows": r.acces_rows, "actifs_rows": r.actifs_rows, "events": r.n_events}


def variant_incremental(events: Path, out: Path) -> dict:
    from gar_analysis.events import aggregate_events

    r = aggregate_events(events, out, engine="duckdb")  # incremental against the state in ``out``
    return {"acces_rows": r.acces_rows, "actifs_rows": r.actifs_rows, "events": r.n_events, "mode": r.mode,
            "months_read": len(r.months_aggregated)}


def variant_spark(events: Path, out: Path) -> dict:
    from gar_analysis.events import aggregate_events

    r = aggregate_events(events, out, engine="spark", full=True)
    return {"acces_rows": r.acces_rows, "actifs_rows": r.actifs_rows, "events": r.n_events}


def variant_sql(events: Path, out: Path) -> dict:
    import duckdb

    con = duckdb.connect(config={"threads": os.cpu_count() or 2, "preserve_insertion_order": False})
    con.execute("SET enable_progress_bar = false")
    src = f"read_parquet('{events}/*/*.parquet', hive_partitioning = true)"
    a = con.sql(f"SELECT mois, uai, id_ressource, profil, support, count(*) AS acces FROM {src} "
                "GROUP BY mois, uai, id_ressource, profil, support").to_arrow_table()
    b = con.sql(f"SELECT mois, uai, profil, count(DISTINCT id_accedant) AS accedants_actifs FROM {src} "
                "GROUP BY mois, uai, profil").to_arrow_table()
    return {"acces_rows": a.num_rows, "actifs_rows": b.num_rows}


def variant_pandas(events: Path, out: Path, plain_strings: bool = False) -> dict:
    import pandas as pd
    import pyarrow as pa

    kwargs = {}
    if plain_strings:  # as if the files carried no Arrow dictionary types
        kwargs["schema"] = pa.schema([("horodatage", pa.timestamp("us")), ("uai", pa.string()),
                                      ("id_accedant", pa.string()), ("profil", pa.string()),
                                      ("id_ressource", pa.string()), ("support", pa.string()),
                                      ("mois", pa.string())])
    df = pd.read_parquet(events, **kwargs)  # every partition, mois from the directory names
    acces = df.groupby(["mois", "uai", "id_ressource", "profil", "support"], observed=True).size()
    actifs = df.groupby(["mois", "uai", "profil"], observed=True)["id_accedant"].nunique()
    acces = acces[acces > 0]
    return {"acces_rows": int(len(acces)), "actifs_rows": int((actifs > 0).sum()), "events": int(len(df))}


def variant_pandas_str(events: Path, out: Path) -> dict:
    return variant_pandas(events, out, plain_strings=True)


VARIANTS = {"duckdb": variant_duckdb, "sql": variant_sql, "pandas": variant_pandas,
            "pandas_str": variant_pandas_str, "spark": variant_spark, "incremental": variant_incremental}


def child(variant: str, events: str, out: str) -> None:
    """Run one variant and print its timing as JSON (in a fresh subprocess).

    Libraries are imported before the clock starts: the timing is the work only.
    """
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    if variant in ("duckdb", "spark", "incremental"):
        import gar_analysis.events  # noqa: F401
    t0 = time.perf_counter()
    info = VARIANTS[variant](Path(events), Path(out))
    info["seconds"] = round(time.perf_counter() - t0, 2)
    print("RESULT " + json.dumps(info), flush=True)


def run_variant(variant: str, events: Path, n: int, out: Path | None = None) -> dict:
    """Run a variant in a subprocess; return its time and peak memory (MB)."""
    out = out or OUT / f"agg_{variant}_{label(n)}"
    cmd = [sys.executable, __file__, "--child", variant, str(events), str(out)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # this process has only this child
    peak_kb = usage.ru_maxrss
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        return {"variant": variant, "n": n, "error": (proc.stderr or proc.stdout)[-800:]}
    info = json.loads(line[7:])
    info.update(variant=variant, n=n, wall_s=round(wall, 2), cpu_s=round(usage.ru_utime + usage.ru_stime, 1),
                peak_mb=round(peak_kb / 1024, 1), load_before=round(load, 1),
                load_after=round(os.getloadavg()[0], 1))
    return info


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()} — {os.cpu_count()} CPU (nproc), {mem:.0f} Go RAM, Python {platform.python_version()}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7, 1e8])
    p.add_argument("--pandas-max", type=float, default=1e9,
                   help="taille maximale pour la variante pandas (et la mémoire disponible)")
    p.add_argument("--repeat", type=int, default=1, help="mesures par variante et taille (médiane)")
    p.add_argument("--spark", action="store_true", help="mesurer aussi le moteur PySpark")
    p.add_argument("--spark-max", type=float, default=1e7)
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=None,
                   help="variantes à mesurer (défaut : sql, duckdb, pandas jusqu'à --pandas-max, spark si --spark)")
    p.add_argument("--generate-only", action="store_true")
    p.add_argument("--work", default=None, metavar="REP",
                   help="répertoire des données générées et des sorties (défaut : benchmarks/out)")
    p.add_argument("--incremental", action="store_true",
                   help="mesurer l'agrégation incrémentale (un mois ajouté) contre l'agrégation complète")
    p.add_argument("--added-months", nargs="+", default=["last"], metavar="MOIS",
                   help="mois ajoutés (--incremental) : last, largest ou AAAA-MM")
    p.add_argument("--child", nargs=3, metavar=("VARIANT", "EVENTS", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    global OUT
    if args.work:
        OUT = Path(args.work).resolve()
    if args.child:
        child(*args.child)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(s) for s in args.sizes)
    dirs = {n: ensure_events(n) for n in sizes}
    if args.generate_only:
        return 0
    if args.incremental:
        return main_incremental(dirs, args.added_months, args.repeat)
    results = []
    for n in sizes:
        # Each variant runs in a child of a dedicated measuring process (measure_isolated),
        # so that getrusage(RUSAGE_CHILDREN) there reports that variant alone.
        order = ["sql", "duckdb"]
        if args.spark and n <= args.spark_max:
            order.append("spark")
        order += ["pandas", "pandas_str"] if args.variants else ["pandas"]
        if args.variants:
            order = [v for v in order if v in args.variants]
        for v in [v for v in order if v.startswith("pandas")]:
            if not pandas_fits(v, n, args.pandas_max):
                order.remove(v)
                print(f"{v} {label(n)} : non lancé (mémoire estimée {pandas_need(v, n) / 2**30:.1f} Go, "
                      f"disponible {mem_available() / 2**30:.1f} Go, --pandas-max {args.pandas_max:g})", flush=True)
        for _ in range(args.repeat):
            for v in order:
                r = measure_isolated(v, dirs[n], n)
                results.append(r)
                print(json.dumps(r), flush=True)
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "results": results}
    (OUT / "bench_events.json").write_text(json.dumps(report, indent=1))
    stamp = report["date"].replace(":", "").replace("-", "")[:15]
    (OUT / f"bench_events-{stamp}.json").write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


# --------------------------------------------------------------------------- incremental (issue 20)

def added_month(events: Path, choice: str) -> str:
    """Return the month to add: ``last``, ``largest`` (most events) or an explicit ``YYYY-MM``."""
    sizes = {p.name[5:]: sum(f.stat().st_size for f in p.glob("*.parquet")) for p in events.glob("mois=*")}
    if choice == "last":
        return max(sizes)
    if choice == "largest":
        return max(sizes, key=sizes.get)
    if choice not in sizes:
        raise SystemExit(f"mois {choice} absent de {events}")
    return choice


def same_outputs(a: Path, b: Path) -> bool:
    """Tell whether two aggregation outputs have the same CSV files, byte for byte."""
    names = ("gar/acces.csv", "gar/accedants_actifs.csv", "constats_evenements.csv")
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def measure_incremental(events: Path, n: int, month: str) -> list[dict]:
    """One round: withhold ``month``, aggregate the rest, put it back; time incremental, no-op and full runs."""
    import shutil

    out_inc, out_full = OUT / f"inc_{label(n)}", OUT / f"agg_duckdb_{label(n)}"
    shutil.rmtree(out_inc, ignore_errors=True)
    part, held = events / f"mois={month}", OUT / f"retenu_mois={month}"
    os.replace(part, held)
    try:
        initial = measure_isolated("incremental", events, n, out_inc)
    finally:
        os.replace(held, part)
    info = json.loads((events / "_generation.json").read_text()) if (events / "_generation.json").exists() else {}
    runs = [dict(initial, step="initial")]
    for step, variant, out in (("incremental", "incremental", out_inc), ("inchange", "incremental", out_inc),
                               ("full", "duckdb", out_full)):
        runs.append(dict(measure_isolated(variant, events, n, out), step=step))
    same = same_outputs(out_inc, out_full)
    for r in runs:
        r.update(month=month, month_events=info.get("months", {}).get(month), identical=same)
    return runs


def main_incremental(dirs: dict, choices: list[str], repeat: int) -> int:
    """Measure the incremental aggregation for every size and added month; print and save the table."""
    results = []
    for n, events in dirs.items():
        for choice in choices:
            month = added_month(events, choice)
            for _ in range(repeat):
                for r in measure_incremental(events, n, month):
                    results.append(r)
                    print(json.dumps(r), flush=True)
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "results": results}
    stamp = report["date"].replace(":", "").replace("-", "")[:15]
    (OUT / f"bench_events_incremental-{stamp}.json").write_text(json.dumps(report, indent=1))
    print(markdown_incremental(report))
    return 0 if all(r.get("identical") for r in results) else 1


def markdown_incremental(report: dict) -> str:
    """Format the incremental runs: median time per (size, month, step), and the ratio full / incremental."""
    groups: dict[tuple, list[dict]] = {}
    for r in report["results"]:
        groups.setdefault((r["n"], r["month"], r["step"]), []).append(r)
    rows = ["| événements | mois ajouté (événements) | étape | mesures | durée (s), médiane [min – max] "
            "| CPU (s) | mémoire max (Mo) | charge 1 min | sorties identiques |", "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    medians = {}
    for (n, month, step), runs in groups.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            rows.append(f"| {label(n)} | {month} | {step} | 0 | échec | | | | |")
            continue
        sec = statistics.median(r["seconds"] for r in ok)
        medians[(n, month, step)] = sec
        loads = [x for r in ok for x in (r["load_before"], r["load_after"])]
        rows.append(f"| {label(n)} | {month} ({ok[0].get('month_events') or '?'}) | {step} | {len(ok)} "
                    f"| {sec:.2f} [{min(r['seconds'] for r in ok):.2f} – {max(r['seconds'] for r in ok):.2f}] "
                    f"| {statistics.median(r['cpu_s'] for r in ok):.1f} "
                    f"| {statistics.median(r['peak_mb'] for r in ok):.0f} | {min(loads)} – {max(loads)} "
                    f"| {'oui' if all(r.get('identical') for r in ok) else 'NON'} |")
    lines = []
    for (n, month, step), sec in medians.items():
        if step == "incremental" and (n, month, "full") in medians:
            full = medians[(n, month, "full")]
            lines.append(f"- {label(n)}, {month} ajouté : complète {full:.2f} s, incrémentale {sec:.2f} s "
                         f"(× {full / sec:.1f} plus rapide), sans changement "
                         f"{medians.get((n, month, 'inchange'), float('nan')):.2f} s")
    return f"{report['date']} — {report['machine']}\n\n" + "\n".join(rows) + "\n\n" + "\n".join(lines)


def pandas_need(variant: str, n: int) -> int:
    """Return the estimated peak memory (bytes) of a pandas variant on ``n`` events."""
    return PANDAS_BASE_BYTES + PANDAS_BYTES_PER_EVENT[variant] * n


def mem_available() -> int:
    """Return the memory available now (``MemAvailable``, bytes), or all memory if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def pandas_fits(variant: str, n: int, pandas_max: float) -> bool:
    """Tell whether a pandas variant should run on ``n`` events (size cap, 90 % of free memory)."""
    return n <= pandas_max and pandas_need(variant, n) <= 0.9 * mem_available()


def measure_isolated(variant: str, events: Path, n: int, out: Path | None = None) -> dict:
    """Measure one variant through a dedicated parent process, so its ru_maxrss is its own."""
    code = ("import json, sys; sys.path.insert(0, %r); import bench_events as b; b.OUT = b.Path(%r); "
            "print('ISO ' + json.dumps(b.run_variant(%r, b.Path(%r), %d, %s)))"
            % (str(Path(__file__).parent), str(OUT), variant, str(events), n,
               "None" if out is None else "b.Path(%r)" % str(out)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ISO ")), None)
    if line is None:
        return {"variant": variant, "n": n, "error": proc.stderr[-800:]}
    return json.loads(line[4:])


def summarise(results: list[dict]) -> list[dict]:
    """Group the runs by (size, variant): median time, CPU and peak memory, range of the times."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["n"], r["variant"]), []).append(r)
    out = []
    for (n, variant), runs in groups.items():
        ok = [r for r in runs if "error" not in r]
        row = {"n": n, "variant": variant, "runs": len(runs), "failed": len(runs) - len(ok)}
        if ok:
            row.update({k: statistics.median(r[k] for r in ok) for k in ("seconds", "cpu_s", "peak_mb")})
            row.update(min_s=min(r["seconds"] for r in ok), max_s=max(r["seconds"] for r in ok),
                       load_min=min(min(r["load_before"], r["load_after"]) for r in ok),
                       load_max=max(max(r["load_before"], r["load_after"]) for r in ok))
        out.append(row)
    return out


def ratios(summary: list[dict]) -> list[str]:
    """Return the target ratios per size: DuckDB against pandas and against the bare SQL."""
    by = {(r["n"], r["variant"]): r for r in summary if "seconds" in r}
    lines = []
    for n in sorted({r["n"] for r in summary}):
        d = by.get((n, "duckdb"))
        if not d:
            continue
        parts = []
        for base in ("pandas", "pandas_str"):
            if (n, base) in by:
                b = by[(n, base)]
                parts.append(f"{base} / duckdb : durée × {b['seconds'] / d['seconds']:.2f}, "
                             f"mémoire duckdb / {base} {d['peak_mb'] / b['peak_mb']:.2f}")
        if (n, "sql") in by:
            parts.append(f"duckdb / sql : × {d['seconds'] / by[(n, 'sql')]['seconds']:.2f}")
        if parts:
            lines.append(f"- {label(n)} : " + " ; ".join(parts))
    return lines


def markdown(report: dict) -> str:
    """Format the results (medians over repeats) as a Markdown table, then the ratios."""
    summary = summarise(report["results"])
    rows = ["| événements | variante | mesures | durée (s), médiane [min – max] | CPU (s) | débit (M év./s) "
            "| mémoire max (Mo) | charge 1 min |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in summary:
        if "seconds" not in r:
            rows.append(f"| {label(r['n'])} | {r['variant']} | {r['runs']} | échec | | | | |")
            continue
        rate = r["n"] / r["seconds"] / 1e6
        rows.append(f"| {label(r['n'])} | {r['variant']} | {r['runs'] - r['failed']} "
                    f"| {r['seconds']:.1f} [{r['min_s']:.1f} – {r['max_s']:.1f}] | {r['cpu_s']:.0f} | {rate:.2f} "
                    f"| {r['peak_mb']:.0f} | {r['load_min']} – {r['load_max']} |")
    return (f"{report['date']} — {report['machine']}\n\n" + "\n".join(rows) + "\n\n"
            + "\n".join(ratios(summary)))


if __name__ == "__main__":
    sys.exit(main())
