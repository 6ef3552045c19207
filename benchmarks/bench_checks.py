"""Benchmark of the quality checks (``gar-analysis check``) on the national-scale sample.

Usage::

    python benchmarks/bench_checks.py                      # generates the national sample in a temp dir
    python benchmarks/bench_checks.py --data /tmp/nat      # reuses a generated data directory
    python benchmarks/bench_checks.py --data /tmp/nat --write   # also writes docs/benchmarks.md

Measures, in one process: the loading of every file (the loaders' cost
counts), then each rule, in wall-clock and CPU seconds, plus peak memory. The
target is a full run (loading included) under 60 s on a 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 60.0


def _ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        return float("nan")


def measure(data: Path) -> dict:
    """Load every file, then run every rule; return timings."""
    from gar_analysis.checks import RULES
    from gar_analysis.checks.context import Context, source_path
    from gar_analysis.checks.engine import _skip_reason
    from gar_analysis.contract import present_files

    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    ctx = Context(data)
    loads = []
    for name in present_files(data):
        a, b = time.perf_counter(), time.process_time()
        df = ctx.frame(name)
        loads.append((source_path(name), len(df), time.perf_counter() - a, time.process_time() - b))
    t_load, c_load = time.perf_counter() - t0, time.process_time() - c0
    rules, n_findings = [], 0
    for rid, rule in RULES.items():
        a, b = time.perf_counter(), time.process_time()
        n = 0
        if _skip_reason(ctx, rule) is None:
            n = len(rule.func(ctx))
        n_findings += n
        rules.append((rid, n, time.perf_counter() - a, time.process_time() - b))
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "load_wall": t_load,
            "load_cpu": c_load, "loads": loads, "rules": rules, "findings": n_findings,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loadavg_before": load0, "loadavg_after": os.getloadavg()[0]}


def to_markdown(res: dict, data: Path, scale: str, years: int) -> str:
    """Return the results as the markdown of docs/benchmarks.md."""
    from gar_analysis.checks.report import fmt_int

    def s(x):
        return f"{x:.1f}".replace(".", ",")

    ok = "oui" if res["wall"] < TARGET_S else "non"
    lines = [
        "# Benchmark des contrôles qualité (`gar-analysis check`)", "",
        f"Mesuré le {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC par `benchmarks/bench_checks.py` "
        f"sur l'échantillon simulé `--scale {scale} --years {years}` ({data}).", "",
        f"Machine : {os.cpu_count()} cœurs (`nproc`), {s(_ram_gb())} Go de RAM, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()}. Charge moyenne (1 min) au début : "
        f"{s(res['loadavg_before'])}, à la fin : {s(res['loadavg_after'])} (d'autres processus partageaient la "
        "machine : le temps CPU du processus est le temps qu'aurait pris le contrôle sur une machine libre).", "",
        "| Mesure | Temps réel (s) | Temps CPU (s) |", "|---|---:|---:|",
        f"| Chargement de tous les fichiers (chargeurs du contrat) | {s(res['load_wall'])} | {s(res['load_cpu'])} |",
        f"| Règles | {s(res['wall'] - res['load_wall'])} | {s(res['cpu'] - res['load_cpu'])} |",
        f"| **Total** | **{s(res['wall'])}** | **{s(res['cpu'])}** |", "",
        f"Objectif : moins de {TARGET_S:.0f} s au total, chargement compris — atteint en temps réel : {ok} ; "
        f"en temps CPU : {'oui' if res['cpu'] < TARGET_S else 'non'}. Mémoire maximale : "
        f"{fmt_int(res['rss_mb'])} Mo. Constats : {fmt_int(res['findings'])}.", "",
        "## Chargement par fichier", "", "| Fichier | Lignes | Réel (s) | CPU (s) |", "|---|---:|---:|---:|"]
    for src, n, w, c in sorted(res["loads"], key=lambda r: -r[3]):
        lines.append(f"| `{src}` | {fmt_int(n)} | {s(w)} | {s(c)} |")
    lines += ["", "## Par règle", "", "| Règle | Constats | Réel (s) | CPU (s) |", "|---|---:|---:|---:|"]
    for rid, n, w, c in res["rules"]:
        lines.append(f"| `{rid}` | {fmt_int(n)} | {s(w)} | {s(c)} |")
    lines += ["", "Reproduire : `gar-analysis sample --scale national --years 1 --out /tmp/nat` puis "
              "`python benchmarks/bench_checks.py --data /tmp/nat --write`.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="data directory (default: generate one)")
    p.add_argument("--scale", default="national")
    p.add_argument("--years", type=int, default=1)
    p.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = p.parse_args(argv)
    data = args.data
    if data is None:
        from gar_analysis.sample import generate

        data = Path(tempfile.mkdtemp(prefix="bench_checks_"))
        t = time.perf_counter()
        generate(data, scale=args.scale, years=args.years)
        print(f"échantillon généré en {time.perf_counter() - t:.1f} s dans {data}")
    res = measure(data)
    md = to_markdown(res, data, args.scale, args.years)
    print(md)
    if args.write:
        from _docs import write_section

        write_section("benchmarks.md", "bench_checks", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
