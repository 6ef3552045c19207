"""Benchmark: the académie batch (``gar-analysis reports``) against an analyst's shell loop.

The peer is what an analyst writes by hand: for each académie, one after the
other, ``papermill`` then ``jupyter nbconvert --to html --no-input``. Both run
the same dashboard notebook on the same processed tables, side by side in this
one run (the loop first, then the batch, or the reverse with ``--batch-first``).

Usage::

    .venv/bin/python benchmarks/bench_batch.py                 # 30 académies
    .venv/bin/python benchmarks/bench_batch.py --territories 4 # quick check

Outputs go to ``benchmarks/out/batch/`` (git-ignored); the figures are printed
as a Markdown table and saved to ``benchmarks/out/batch/bench_batch.json``.
A relative ``--processed`` is resolved against the current directory. No speed-up
is printed unless the loop and the batch both produced the page of every
territory (else the script says which are missing and exits with 1).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOTEBOOK = ROOT / "notebooks" / "reports" / "tableau_de_bord.ipynb"


def _ensure_processed(out: Path, processed: str | None) -> Path:
    if processed:
        # resolved here, against the current directory: the notebooks run in another folder
        path = Path(processed).expanduser().resolve()
        if not (path / "manifest.json").exists():
            raise SystemExit(f"Tables traitées introuvables : {path} n'a pas de manifest.json "
                             f"(--processed {processed}).")
        return path
    target = out / "processed"
    if not (target / "manifest.json").exists():
        from gar_analysis.build import build
        from gar_analysis.sample import generate

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            print("Échantillon par défaut : génération et construction…", flush=True)
            generate(out / "sample")
            build(out / "sample", target)
    return target


def _shell_loop(codes: list[str], processed: Path, out: Path) -> float:
    lines = []  # like an analyst's loop: a failing territory does not stop the others
    for code in codes:
        executed = out / "executed" / f"tableau_de_bord-{code}.ipynb"
        lines.append(f"{BIN / 'papermill'} --no-progress-bar {shlex.quote(str(NOTEBOOK))} "
                     f"{shlex.quote(str(executed))} -r audience academie -r territoire {code} "
                     f"-r processed_dir {shlex.quote(str(processed))}")
        lines.append(f"{BIN / 'jupyter'} nbconvert --to html --no-input --log-level WARN "
                     f"--output-dir {shlex.quote(str(out / 'html'))} --output {code} {shlex.quote(str(executed))}")
    (out / "executed").mkdir(parents=True, exist_ok=True)
    script = out / "loop.sh"
    script.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    subprocess.run(["bash", str(script)], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _batch(codes: list[str], processed: Path, out: Path, jobs: int | None, all_codes: bool) -> float:
    cmd = [str(BIN / "gar-analysis"), "reports", "--audience", "academie", "--notebook", "tableau_de_bord",
           "--processed", str(processed), "--out", str(out), "--run-id", "bench", "--no-progress"]
    cmd += ["--all"] if all_codes else ["--only", *codes]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"attention : le lot a rendu le code {proc.returncode} (voir {out / 'bench' / 'batch.log'})")
    return elapsed


def speedup(codes: list[str], times: dict, html_loop: list[Path], html_batch: list[Path]) -> tuple:
    """Return (loop time / batch time, "") when both produced every territory's page, else (None, reason).

    A ratio of two runs that did not produce the same pages measures nothing: a batch whose every
    report failed is "fast".
    """
    want = set(codes)
    got = {"la boucle": {p.stem for p in html_loop}, "le lot": {p.stem for p in html_batch}}
    problems = [f"{who} a produit {len(pages & want)} page(s) sur {len(want)}"
                + (f" (manquent : {', '.join(sorted(want - pages)[:5])}{' …' if len(want - pages) > 5 else ''})"
                   if want - pages else "")
                for who, pages in got.items() if not want <= pages]
    if problems:
        return None, ("Pas d'accélération calculée : " + " ; ".join(problems)
                      + ". Les deux méthodes doivent produire les mêmes pages pour être comparées.")
    return round(times["boucle"] / times["lot"], 2), ""


def _machine() -> dict:
    mem = "?"
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} Gio"
    except (OSError, StopIteration, ValueError):
        pass
    return {"nproc": os.cpu_count(), "ram": mem, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "load_avg_debut": os.getloadavg()[0]}


def main(argv=None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--territories", type=int, default=30, help="nombre d'académies (défaut : 30, toutes)")
    parser.add_argument("--jobs", type=int, default=None, help="--jobs du lot (défaut : celui de la commande)")
    parser.add_argument("--processed", default=None, help="tables traitées (défaut : échantillon par défaut)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "batch"))
    parser.add_argument("--batch-first", action="store_true", help="lancer le lot avant la boucle")
    args = parser.parse_args(argv)
    from gar_analysis.territories import territory_codes

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    processed = _ensure_processed(out, args.processed)
    codes = territory_codes("academie")[: args.territories]
    machine = _machine()
    print(f"{len(codes)} académies, machine : {machine}", flush=True)
    for sub in ("boucle", "lot"):  # pages left by an earlier run must not count for this one
        shutil.rmtree(out / sub, ignore_errors=True)
    runs = [("boucle", lambda: _shell_loop(codes, processed, out / "boucle")),
            ("lot", lambda: _batch(codes, processed, out / "lot", args.jobs, len(codes) == 30))]
    if args.batch_first:
        runs.reverse()
    times = {}
    for name, fn in runs:
        print(f"… {name}", flush=True)
        times[name] = fn()
        print(f"{name} : {times[name]:.1f} s", flush=True)
    html_loop = sorted((out / "boucle" / "html").glob("*.html"))
    html_batch = sorted((out / "lot" / "bench" / "academie").glob("*.html"))
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine,
              "academies": len(codes), "jobs": args.jobs or len(os.sched_getaffinity(0)),
              "boucle_s": round(times["boucle"], 1), "lot_s": round(times["lot"], 1),
              "acceleration": None,
              "rapports_boucle": len(html_loop), "rapports_lot": len(html_batch),
              "taille_max_lot_octets": max((p.stat().st_size for p in html_batch), default=0),
              "taille_max_boucle_octets": max((p.stat().st_size for p in html_loop), default=0),
              "load_avg_fin": os.getloadavg()[0], "ordre": [n for n, _ in runs]}
    ratio, refusal = speedup(codes, times, html_loop, html_batch)
    result["acceleration"] = ratio
    (out / "bench_batch.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    print("\n| Méthode | Rapports | Durée (s) | s / rapport |\n|---|---|---|---|")
    print(f"| Boucle shell papermill + nbconvert | {len(html_loop)} | {times['boucle']:.1f} | "
          f"{times['boucle'] / max(len(codes), 1):.1f} |")
    print(f"| gar-analysis reports (--jobs {result['jobs']}) | {len(html_batch)} | {times['lot']:.1f} | "
          f"{times['lot'] / max(len(codes), 1):.1f} |")
    if ratio is None:
        print(f"\n{refusal}")
        return 1
    print(f"\nAccélération : ×{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
