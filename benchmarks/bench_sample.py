"""Benchmark of `gar-analysis sample`: wall time, CPU time and peak memory, per scale.

Usage: .venv/bin/python benchmarks/bench_sample.py [--scales default national] [--out benchmarks/out/sample]

Each scale runs in a fresh subprocess (so peak RSS is the run's own); prints one JSON line per
scale and the size of gar/acces.csv. The figures go to docs/benchmarks.md (section "Sample").
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(scale: str, years: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "gar_analysis.cli", "sample", "--out", str(out), "--scale", scale,
           "--years", str(years)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out / "gar/acces.csv", "rb") as f:
        lines = sum(1 for _ in f) - 1
    return {"scale": scale, "years": years, "wall_s": round(wall, 1),
            "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
            "peak_rss_mb": round(after.ru_maxrss / 1024), "acces_lines": lines,
            "load_avg_1min": round(os.getloadavg()[0], 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scales", nargs="+", default=["default", "national"])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/sample")
    args = p.parse_args()
    for scale in args.scales:
        years = 1 if scale == "national" else 2
        print(json.dumps(run(scale, years, args.out / scale)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
