"""Benchmark: the report batch (``gar-analysis reports``) against an analyst's shell loop, every audience.

The peer is what an analyst writes by hand: for each page, one after the other,
``papermill`` then ``jupyter nbconvert --to html --no-input``. Both run the
same notebooks with the same parameters (taken from the batch's own plan) on the
same processed tables, in this one run: the batch renders every page of every
audience (``--audience all --all``); the loop renders every page too, or with
``--loop-pages N`` an evenly spaced subset of N pages whose time per page is
extrapolated (the output says so). ``--national DIR`` also times the whole batch
on the processed tables of a national sample (``gar-analysis sample --scale national``).

Usage::

    .venv/bin/python benchmarks/bench_batch.py --loop-pages 30
    .venv/bin/python benchmarks/bench_batch.py --loop-pages 30 --national /tmp/nat/processed

Outputs go to ``benchmarks/out/batch/`` (git-ignored); the figures are printed
as a Markdown table and saved to ``benchmarks/out/batch/bench_batch.json``.
A relative ``--processed`` is resolved against the current directory. No speed-up
is printed unless the loop and the batch both produced every page they were given
(else the script says which are missing and exits with 1).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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


def plan(processed: Path) -> list:
    """Return the batch's jobs for every audience (the pages both methods render)."""
    from gar_analysis.reporting.batch import parse_audiences, plan_audiences

    return plan_audiences(parse_audiences("all"), all_territories=True, processed_dir=processed, run_id="bench")


def subset(jobs: list, n: int | None) -> list:
    """Return ``n`` jobs evenly spaced over the list (every job when ``n`` is None or too large)."""
    if not n or n >= len(jobs):
        return list(jobs)
    step = len(jobs) / n
    return [jobs[int(i * step)] for i in range(n)]


def page_id(job) -> str:
    """``audience__stem`` of a job's page (``academie__16``, ``academie__ecarts_territoriaux-16``)."""
    return f"{job.audience}__{job.stem}"


def _shell_loop(jobs: list, out: Path) -> float:
    lines = []  # like an analyst's loop: a failing page does not stop the others
    for job in jobs:
        executed = out / "executed" / f"{job.audience}-{job.notebook}-{job.territoire}.ipynb"
        lines.append(f"{BIN / 'papermill'} --no-progress-bar {shlex.quote(job.input_path)} "
                     f"{shlex.quote(str(executed))} -y {shlex.quote(json.dumps(job.parameters))}")
        lines.append(f"{BIN / 'jupyter'} nbconvert --to html --no-input --log-level WARN "
                     f"--output-dir {shlex.quote(str(out / 'html' / job.audience))} --output {job.stem} "
                     f"{shlex.quote(str(executed))}")
    (out / "executed").mkdir(parents=True, exist_ok=True)
    script = out / "loop.sh"
    script.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    subprocess.run(["bash", str(script)], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _batch(processed: Path, out: Path, jobs: int | None) -> float:
    cmd = [str(BIN / "gar-analysis"), "reports", "--audience", "all", "--all",
           "--processed", str(processed), "--out", str(out), "--run-id", "bench", "--no-progress"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"attention : le lot a rendu le code {proc.returncode} (voir {out / 'bench' / 'batch.log'})")
    return elapsed


def _batch_pages(out: Path) -> tuple[list[Path], dict]:
    """Return (HTML pages of the batch, statuses from its index.json)."""
    run = out / "bench"
    pages = sorted(run.glob("*/*.html"))
    try:
        index = json.loads((run / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {"reports": []}
    statuses: dict = {}
    for r in index.get("reports", []):
        statuses[r["statut"]] = statuses.get(r["statut"], 0) + 1
    return pages, statuses


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


def _cpu_children() -> float:
    """CPU seconds (user + system) of every finished child process so far (kernels included)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


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
    parser.add_argument("--loop-pages", type=int, default=None,
                        help="pages rendered by la boucle (sous-ensemble régulier, extrapolé ; défaut : toutes)")
    parser.add_argument("--jobs", type=int, default=None, help="--jobs du lot (défaut : celui de la commande)")
    parser.add_argument("--processed", default=None, help="tables traitées (défaut : échantillon par défaut)")
    parser.add_argument("--national", default=None, help="tables traitées d'un échantillon national : lot chronométré")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "batch"))
    parser.add_argument("--batch-first", action="store_true", help="lancer le lot avant la boucle")
    parser.add_argument("--skip-loop", action="store_true", help="sans la boucle (lot seul)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    processed = _ensure_processed(out, args.processed)
    jobs = plan(processed)
    loop_jobs = subset(jobs, args.loop_pages)
    machine = _machine()
    print(f"{len(jobs)} pages (boucle : {len(loop_jobs)}), machine : {machine}", flush=True)
    for sub in ("boucle", "lot", "national"):  # pages left by an earlier run must not count for this one
        shutil.rmtree(out / sub, ignore_errors=True)
    runs = [("boucle", lambda: _shell_loop(loop_jobs, out / "boucle")),
            ("lot", lambda: _batch(processed, out / "lot", args.jobs))]
    if args.batch_first:
        runs.reverse()
    if args.skip_loop:
        runs = [r for r in runs if r[0] == "lot"]
    times, loads, cpu = {}, {}, {}
    for name, fn in runs:
        print(f"… {name}", flush=True)
        load0, cpu0 = os.getloadavg()[0], _cpu_children()
        times[name] = fn()
        cpu[name] = round(_cpu_children() - cpu0, 1)
        loads[name] = [round(load0, 1), round(os.getloadavg()[0], 1)]
        print(f"{name} : {times[name]:.1f} s, CPU {cpu[name]} s (charge {loads[name][0]} → {loads[name][1]})",
              flush=True)
    html_batch, statuses = _batch_pages(out / "lot")
    html_loop = sorted((out / "boucle" / "html").glob("*/*.html"))
    n = len(jobs)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine,
              "pages": n, "pages_boucle": len(loop_jobs), "jobs": args.jobs or len(os.sched_getaffinity(0)),
              "lot_s": round(times["lot"], 1), "cpu_s": cpu, "statuts_lot": statuses,
              "pages_par_minute_lot": round(n / times["lot"] * 60, 1),
              "taille_max_lot_octets": max((p.stat().st_size for p in html_batch), default=0),
              "page_la_plus_lourde": max(html_batch, key=lambda p: p.stat().st_size).relative_to(
                  out / "lot" / "bench").as_posix() if html_batch else "",
              "charges": loads, "ordre": [r[0] for r in runs], "acceleration": None}
    ratio, refusal = None, "boucle non mesurée (--skip-loop)"
    if "boucle" in times:
        per_page_loop = times["boucle"] / max(len(loop_jobs), 1)
        result.update(boucle_s=round(times["boucle"], 1), boucle_s_par_page=round(per_page_loop, 2),
                      boucle_extrapolee_s=round(per_page_loop * n, 1),
                      taille_max_boucle_octets=max((p.stat().st_size for p in html_loop), default=0))
        want = [page_id(j) for j in loop_jobs]
        got_loop = [Path(f"{p.parent.name}__{p.stem}.html") for p in html_loop]
        got_batch = [Path(f"{p.parent.name}__{p.stem}.html") for p in html_batch]
        ratio, refusal = speedup(want, {"boucle": per_page_loop, "lot": times["lot"] / n}, got_loop, got_batch)
        missing_batch = {page_id(j) for j in jobs} - {p.stem for p in got_batch}
        if ratio is not None and missing_batch:
            ratio, refusal = None, (f"Pas d'accélération calculée : le lot n'a pas produit {len(missing_batch)} "
                                    f"page(s) ({', '.join(sorted(missing_batch)[:5])}).")
    result["acceleration"] = ratio
    if args.national:
        nat = _ensure_processed(out, args.national)
        n_nat = len(plan(nat))
        load0, cpu0 = os.getloadavg()[0], _cpu_children()
        t_nat = _batch(nat, out / "national", args.jobs)
        pages_nat, statuses_nat = _batch_pages(out / "national")
        result["national"] = {"pages": n_nat, "lot_s": round(t_nat, 1), "statuts": statuses_nat,
                              "cpu_s": round(_cpu_children() - cpu0, 1),
                              "charge": [round(load0, 1), round(os.getloadavg()[0], 1)],
                              "taille_max_octets": max((p.stat().st_size for p in pages_nat), default=0)}
        print(f"national : {n_nat} pages en {t_nat:.1f} s ({statuses_nat})", flush=True)
    result["load_avg_fin"] = os.getloadavg()[0]
    (out / "bench_batch.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    print("\n| Méthode | Pages | Durée (s) | s / page |\n|---|---|---|---|")
    if "boucle" in times:
        print(f"| Boucle shell papermill + nbconvert | {len(loop_jobs)} | {times['boucle']:.1f} | "
              f"{result['boucle_s_par_page']:.2f} |")
    print(f"| gar-analysis reports --audience all (--jobs {result['jobs']}) | {n} | {times['lot']:.1f} | "
          f"{times['lot'] / max(n, 1):.2f} |")
    print(f"\nPages par minute (lot) : {result['pages_par_minute_lot']} ; statuts : {statuses} ; page la plus "
          f"lourde : {result['page_la_plus_lourde']} ({result['taille_max_lot_octets'] / 1e6:.2f} Mo)")
    if ratio is None:
        print(f"\n{refusal}")
        return 1
    extra = " (boucle extrapolée par page)" if len(loop_jobs) < n else ""
    print(f"\nAccélération par page : ×{ratio}{extra}")
    return 0 if statuses.get("ok", 0) == n else 1


if __name__ == "__main__":
    sys.exit(main())
