"""Benchmark of `gar-analysis cycle`: first cycle, second cycle without new data, cycle with one académie changed.

Usage: .venv/bin/python benchmarks/bench_cycle.py --data data/raw/sample --work /tmp/bench-cycle
       [--audiences national region_academique academie] [--jobs 2]

Works on a copy of the data directory (raw data stay read-only) with its own processed tables,
reports and history folders under --work. The third cycle moves one accès from 2024-11 to 2024-12
for a few schools of the largest académie (as in tests/test_cycle_slow.py): it is also the first
with a comparison base, so every dashboard is redone once. The fourth does the same in another
académie (another région académique): the steady state. Prints one JSON line per
cycle (wall time, CPU time of the children, pages produced and reused) and the load average.
The figures go to docs/benchmarks.md (section "Cycle").
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def cycle(work: Path, data: Path, rid: str, audiences: list[str], jobs: int) -> dict:
    cmd = [sys.executable, "-m", "gar_analysis.cli", "cycle", "--data", str(data), "--processed",
           str(work / "processed"), "--reports", str(work / "reports"), "--history", str(work / "history"),
           "--no-refresh", "--share-dry-run", "--jobs", str(jobs), "--release-id", rid, "--audiences", *audiences]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    manifest = json.loads((work / "reports" / "releases" / rid / "manifest.json").read_text(encoding="utf-8"))
    pages = manifest["pages"].values()
    return {"release": rid, "code": proc.returncode, "wall_s": round(wall, 1),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "pages": len(pages), "produites": sum(p["statut"] == "ok" for p in pages),
            "reutilisees": sum(p["statut"] == "reutilise" for p in pages),
            "check_build": manifest["etapes"].get("check_build"), "charge_debut": round(load0, 1),
            "charge_fin": round(os.getloadavg()[0], 1), "tail": proc.stdout.strip().splitlines()[-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "raw" / "sample"))
    parser.add_argument("--work", default="/tmp/bench-cycle")
    parser.add_argument("--audiences", nargs="+", default=["national", "region_academique", "academie"])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    shutil.copytree(args.data, data)
    print(json.dumps(cycle(work, data, "c1-premier", args.audiences, args.jobs), ensure_ascii=False), flush=True)
    print(json.dumps(cycle(work, data, "c2-sans-changement", args.audiences, args.jobs), ensure_ascii=False),
          flush=True)
    from gar_analysis.build import load_processed
    from test_cycle_slow import _move_one_access

    schools = load_processed("etablissements", work / "processed")
    order = schools["code_academie"].value_counts().index
    first = order[0]
    second = next(a for a in order[1:] if schools.loc[schools["code_academie"] == a, "code_region"].iloc[0]
                  != schools.loc[schools["code_academie"] == first, "code_region"].iloc[0])
    for rid, academie in (("c3-une-academie", first), ("c4-une-autre-academie", second)):
        moved = _move_one_access(data, schools, academie)
        print(json.dumps({"academie_modifiee": academie, "lignes": len(moved)}), flush=True)
        print(json.dumps(cycle(work, data, rid, args.audiences, args.jobs), ensure_ascii=False), flush=True)

if __name__ == "__main__":
    main()
