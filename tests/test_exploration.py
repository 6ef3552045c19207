"""Exploration notebooks: shape, links, public API only, and how `make test` and `make lab` use them.

Running them is nbval's job (`make test`: ``--nbval-lax notebooks/exploration``).
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gar_analysis as ga
from gar_analysis.config import DOCS_DIR, NOTEBOOKS_DIR, ROOT

EXPLORATION = NOTEBOOKS_DIR / "exploration"
LANDING = EXPLORATION / "00_accueil.ipynb"
WALKS = sorted(p for p in EXPLORATION.glob("*.ipynb") if p != LANDING)
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _links(path: Path) -> list[str]:
    text = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")
    return re.findall(r"\]\(([^)#\s]+)\)", text)


def test_five_walks_and_a_landing_page():
    assert LANDING.exists()
    assert len(WALKS) == 5, [p.name for p in WALKS]


@pytest.mark.parametrize("path", WALKS, ids=lambda p: p.name)
def test_walk_shape(path):
    cells = _cells(path)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# ")
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [1], "one parameters cell, right after the title"
    for line in _source(cells[1]).splitlines():  # plain defaults, each explained in a French comment
        assert re.match(r'^\w+ = ("[^"]*"|\d+)  # \S', line), line
    # a narrated walk: markdown between the steps, not a script
    kinds = [c["cell_type"] for c in cells[2:]]
    assert kinds.count("markdown") >= 4 and kinds.count("code") >= 4


@pytest.mark.parametrize("path", [LANDING, *WALKS], ids=lambda p: p.name)
def test_notebooks_use_only_the_public_api(path):
    public = set(dir(ga))
    for cell in _cells(path):
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(_source(cell))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ga":
                assert node.attr in public, f"{path.name}: ga.{node.attr} n'est pas dans dir(ga)"
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("gar_analysis"), f"{path.name}: from {node.module} import"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name == "gar_analysis" or not alias.name.startswith("gar_analysis"), alias.name


@pytest.mark.parametrize("path", [LANDING, *WALKS], ids=lambda p: p.name)
def test_links_resolve(path):
    links = [u for u in _links(path) if not u.startswith(("http://", "https://"))]
    assert links, path.name
    for link in links:
        assert (path.parent / link).resolve().exists(), f"{path.name} : lien mort {link}"


def test_landing_links_every_walk_and_the_docs():
    links = {(LANDING.parent / u).resolve() for u in _links(LANDING)}
    assert {p.resolve() for p in WALKS} <= links
    assert (DOCS_DIR / "exploration.md").resolve() in links
    assert (DOCS_DIR / "methods.md").resolve() in links


def test_opendata_walk_reads_the_published_dnma_and_gar_figures():
    text = "\n".join(_source(c) for c in _cells(EXPLORATION / "05_donnees_ouvertes.ipynb"))
    assert "ga.load_dnma(" in text and "ga.weekly_to_monthly(" in text and "national_opendata" in text
    assert 'ga.load(data_dir, "audience")' not in text  # the deprecated file the sample no longer writes


def _recipe(target: str) -> list[str]:
    m = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert m, target
    return [line.strip() for line in m.group(1).splitlines()]


def test_make_test_runs_doctests_and_notebooks():
    for target in ("test", "test-all"):
        lines = _recipe(target)
        assert any("--doctest-modules" in ln and "gar_analysis" in ln.split() for ln in lines), target
        nb = [ln for ln in lines if "--nbval-lax" in ln]
        assert nb and "notebooks/exploration" in nb[0].split(), target
        # a notebook's cells run in one kernel: xdist must keep them on one worker
        assert "--dist loadfile" in nb[0] or " -n " not in nb[0], target


@pytest.mark.slow
def test_make_lab_opens_the_landing_notebook(tmp_path):
    """Start JupyterLab as `make lab` does (without a browser) and read the page it would open."""
    pytest.importorskip("jupyterlab")
    line = next(ln for ln in _recipe("lab") if " lab " in ln)
    args = shlex.split(line.split(" lab ", 1)[1].replace("$(CURDIR)", str(ROOT)))
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    extra = ["--allow-root"] if os.geteuid() == 0 else []  # CI containers run as root; JupyterLab refuses it
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", *args, "--no-browser", "--ServerApp.port=0",
                             *extra], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        opened = []
        while time.time() < deadline and not opened:
            opened = list((tmp_path / "runtime").glob("jpserver-file-to-run-*-open.html"))
            time.sleep(0.5)
        assert opened, "JupyterLab n'a pas préparé l'ouverture de la page d'accueil"
        assert "/lab/tree/notebooks/exploration/00_accueil.ipynb" in opened[0].read_text(encoding="utf-8")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
