"""Issue #15 measure: every case of tests/test_bad_input.CASES through check then build; count tracebacks.

Usage: python benchmarks/bad_input.py [REPO_ROOT]  (an older checkout as REPO_ROOT measures the old code).
"""
import contextlib, io, json, shutil, sys, tempfile, traceback
from pathlib import Path
root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]; sys.path.insert(0, str(root)); sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import logging; logging.disable(logging.CRITICAL)
from test_bad_input import CASES
from test_checks_rules import clean_world, write_world
from gar_analysis.cli import main
res = {}
base = Path(tempfile.mkdtemp(prefix="mesure-"))
clean = write_world(clean_world(), base / "clean")
for case, (mutate, expected) in CASES.items():
    d = base / case
    shutil.copytree(clean, d / "data", symlinks=True)
    mutate(d / "data")
    out = []
    for argv in (["check", "--data", str(d / "data"), "--out", str(d / "c.csv")],
                 ["build", "--data", str(d / "data"), "--out", str(d / "p")]):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
            out.append("traceback" if "Traceback" in err.getvalue() or "inattendue" in err.getvalue() else code)
        except BaseException as exc:  # escaped the CLI: the user sees a traceback
            out.append("traceback" if not isinstance(exc, SystemExit) else exc.code)
    res[case] = out
n = sum(o == "traceback" for v in res.values() for o in v)
refused = sum(v[0] == 2 for v in res.values())
print(json.dumps({"runs": 2 * len(res), "tracebacks": n, "check_refused": refused, "detail": res}))
