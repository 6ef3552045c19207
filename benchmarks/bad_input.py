"""Issue #15 measure: every case of ``tests/test_bad_input.CASES`` through ``check`` then ``build``.

Counts the runs where the user would see a Python traceback (an exception escaping
``gar_analysis.cli.main``, or a traceback printed on stderr) and the exit codes.

Usage: ``python benchmarks/bad_input.py [REPO_ROOT]`` — an older checkout as
``REPO_ROOT`` measures the old code with today's cases. Prints one JSON object.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run every case and print the counts."""
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    sys.path[:0] = [str(root), str(HERE / "tests")]
    logging.disable(logging.CRITICAL)
    from test_bad_input import CASES
    from test_checks_rules import clean_world, write_world

    from gar_analysis.cli import main as cli

    base = Path(tempfile.mkdtemp(prefix="mesure-"))
    clean = write_world(clean_world(), base / "clean")
    detail = {}
    for case, (mutate, _expected) in CASES.items():
        d = base / case
        shutil.copytree(clean, d / "data", symlinks=True)
        mutate(d / "data")
        out = []
        for argv in (["check", "--data", str(d / "data"), "--out", str(d / "c.csv")],
                     ["build", "--data", str(d / "data"), "--out", str(d / "p")]):
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    code = cli(argv)
                shown = "Traceback" in err.getvalue() or "inattendue" in err.getvalue()
                out.append("traceback" if shown else code)
            except SystemExit as exc:
                out.append(exc.code)
            except BaseException:  # noqa: BLE001 - escaped the CLI: the user sees a traceback
                out.append("traceback")
        detail[case] = out
    shutil.rmtree(base, ignore_errors=True)
    print(json.dumps({"runs": 2 * len(detail),
                      "tracebacks": sum(o == "traceback" for v in detail.values() for o in v),
                      "check_refused": sum(v[0] == 2 for v in detail.values()), "detail": detail},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
