"""Shared fixtures: the sample data directory, its processed tables, tiny report notebooks.

``sample_build`` generates the default sample and builds it once per test
session, in a folder shared by the xdist workers (a file lock makes the other
workers wait for the first one), through the public APIs only
(``gar_analysis.sample.generate``, ``gar_analysis.build.build``).
"""
from __future__ import annotations

import fcntl
import functools
import importlib.util
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@functools.cache
def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_benchmark():
    """Return a loader of the scripts of ``benchmarks/`` by name (``"simulate_gaps"``), each loaded once."""
    return _load_benchmark


@pytest.fixture(scope="session")
def generated_events(tmp_path_factory):
    """Clean raw events from ``generate_events``: 12,000 in a few files per month (read-only)."""
    from gar_analysis.events import generate_events
    from gar_analysis.events.demo import write_demo_data_dir

    base = tmp_path_factory.mktemp("ev")
    data = write_demo_data_dir(base / "data", n_schools=20, n_resources=10, seed=3)
    generate_events(data, 12_000, base / "evenements", seed=9, chunk_size=400)
    return base / "evenements"


PARAMETERS_CELL = ('audience = "national"\nterritoire = "FR"\nprocessed_dir = ""\nseuil_secret = 5\n'
                   'run_id = ""')


@contextmanager
def _shared_dir(tmp_path_factory, name: str):
    """Yield (folder shared by every xdist worker, True if it still has to be filled), under a lock."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / name
    with open(base / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield folder, not (folder / ".done").exists()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory):
    """The default sample and its processed tables, built once per session.

    Returns
    -------
    types.SimpleNamespace
        ``data_dir`` (the sample), ``processed_dir`` (tables + manifest.json), ``manifest`` (dict).
    """
    with _shared_dir(tmp_path_factory, "sample_build") as (folder, todo):
        data_dir, processed_dir = folder / "data", folder / "processed"
        if todo:
            try:
                from gar_analysis.build import build
                from gar_analysis.sample import generate
            except ImportError as exc:  # pragma: no cover - while the owners deliver
                pytest.skip(f"générateur ou construction indisponible : {exc}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                generate(data_dir)
                build(data_dir, processed_dir)
            (folder / ".done").write_text("ok")
    manifest = json.loads((processed_dir / "manifest.json").read_text(encoding="utf-8"))
    return SimpleNamespace(data_dir=data_dir, processed_dir=processed_dir, manifest=manifest)


def write_notebook(path: Path, code_cells: list[str], *, title: str = "# Rapport de test",
                   parameters: str = PARAMETERS_CELL) -> Path:
    """Write a small report notebook: a title cell, a ``parameters`` cell, then code cells."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(title), params] + [nbformat.v4.new_code_cell(c) for c in code_cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny_manifest(tmp_path):
    """A processed folder holding only a manifest (for batches of tiny notebooks)."""
    folder = tmp_path / "processed"
    folder.mkdir()
    manifest = {"built_at": "2026-11-28T06:00:00+00:00", "version": "0.1.0", "commit": "abc1234",
                "simulated": True, "periode": ["2023-09", "2025-08"],
                "sources": [{"fichier": "gar/acces.csv", "lignes": 123456, "modifie": "2026-11-27"},
                            {"fichier": "gar/etablissements.csv", "lignes": 2500, "modifie": "2026-11-27"}],
                "constats": {"erreur": 3, "avertissement": 12}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return SimpleNamespace(processed_dir=folder, manifest=manifest)


CHROMIUM = os.environ.get("GAR_CHROMIUM", "/usr/bin/chromium")
#: Flags for Debian's Chromium as root on a machine without network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test session (Playwright's sync API allows one loop per process)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium absent ({CHROMIUM}) : lancez « make browser ».")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
