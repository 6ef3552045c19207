"""Notebook hygiene and execution: every report notebook runs on the sample."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from gar_analysis.config import NOTEBOOKS_DIR, REPORT_NOTEBOOKS_DIR

ALL_NOTEBOOKS = sorted(NOTEBOOKS_DIR.rglob("*.ipynb"))
REPORT_NOTEBOOKS = sorted(REPORT_NOTEBOOKS_DIR.glob("*.ipynb"))
STANDARD = ("audience", "territoire", "processed_dir", "seuil_secret", "run_id")


def test_there_are_report_notebooks():
    names = {p.stem for p in REPORT_NOTEBOOKS}
    assert {"tableau_de_bord", "ecarts_territoriaux", "facteurs_de_succes"} <= names


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, path.name


@pytest.mark.parametrize("path", REPORT_NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_right_after_the_title(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, path.name
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).lstrip().startswith("# ")
    assert tagged[0] == 1, "the parameters cell comes right after the title"
    source = "".join(cells[1]["source"])
    for name in STANDARD:
        assert f"{name} =" in source, (path.name, name)
    # plain defaults only: nothing derived (no calls, no references to other names)
    for line in source.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            value = line.split("=", 1)[1].split("#")[0].strip()
            assert "(" not in value and "[" not in value.replace("[]", ""), (path.name, line)
