"""The secret-statistique threshold (issue #16, item 5): an integer ≥ 3, refused otherwise, at use.

``GAR_SEUIL_SECRET=0`` used to switch the secret statistique off silently, ``-1`` was not
refused up front and ``abc`` crashed every command at import with a traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gar_analysis import config
from gar_analysis.disclosure import suppress, suppress_value
from gar_analysis.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BAD = ["0", "-1", "abc", "2.5"]
MESSAGE = "Seuil du secret statistique invalide"


def run_cli(args: list[str], seuil: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``gar-analysis ARGS`` in a fresh interpreter with ``GAR_SEUIL_SECRET=seuil``."""
    env = {**os.environ, "GAR_SEUIL_SECRET": seuil, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gar_analysis.cli", *args], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=300)


def assert_refused(proc: subprocess.CompletedProcess, seuil: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert MESSAGE in lines[0] and f"GAR_SEUIL_SECRET = « {seuil} »" in lines[0]
    assert "supérieur ou égal à 3" in lines[0]


@pytest.fixture
def env_threshold(monkeypatch):
    """Set ``GAR_SEUIL_SECRET`` for in-process code (``config.DISCLOSURE_THRESHOLD`` is read at use)."""
    # another test may have pinned the module attribute with monkeypatch.setattr: read the environment again
    if "DISCLOSURE_THRESHOLD" in vars(config):
        monkeypatch.delattr(config, "DISCLOSURE_THRESHOLD")

    def set_(value: str) -> None:
        monkeypatch.setenv("GAR_SEUIL_SECRET", value)

    return set_


@pytest.mark.parametrize("value", [0, -1, 1, 2, "abc", "2.5", 2.5, "", True])
def test_bad_threshold_refused_by_suppress(value):
    df = pd.DataFrame({"n": [1, 2, 40]})
    with pytest.raises(ConfigError, match=MESSAGE):
        suppress(df, ["n"], threshold=value)
    with pytest.raises(ConfigError, match=MESSAGE):
        suppress_value(1, threshold=value)


@pytest.mark.parametrize("value, expected", [(3, 3), ("7", 7), (" 10 ", 10), (5.0, 5)])
def test_good_threshold_accepted(value, expected):
    assert config.disclosure_threshold(value) == expected
    out = suppress(pd.DataFrame({"n": [expected - 1, expected]}), ["n"], threshold=value)
    assert out["n"].tolist() == ["c", expected]


@pytest.mark.parametrize("seuil", BAD)
def test_bad_environment_threshold_refused_at_use(env_threshold, seuil):
    env_threshold(seuil)
    with pytest.raises(ConfigError) as info:
        suppress(pd.DataFrame({"n": [1, 40]}), ["n"])
    assert str(info.value).startswith(MESSAGE) and f"« {seuil} »" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=MESSAGE):
        config.DISCLOSURE_THRESHOLD  # noqa: B018  (every reader of the threshold is refused)


def test_environment_threshold_is_used(env_threshold):
    env_threshold("10")
    assert config.DISCLOSURE_THRESHOLD == 10
    assert suppress(pd.DataFrame({"n": [9, 10]}), ["n"])["n"].tolist() == ["c", 10]


@pytest.mark.parametrize("seuil", BAD)
def test_check_refuses_bad_threshold(tmp_path, seuil):
    data = tmp_path / "data"
    (data / "gar").mkdir(parents=True)
    (data / "gar" / "ressources.csv").write_text("id_ressource;nom;editeur;type_ressource;degre\n"
                                                 "r1;Dico;Dico Plus;dictionnaire;tous\n", encoding="utf-8")
    out = tmp_path / "constats.csv"
    proc = run_cli(["check", "--data", str(data), "--out", str(out)], seuil, tmp_path)
    assert_refused(proc, seuil)
    assert not out.exists()


@pytest.mark.parametrize("seuil", BAD)
def test_reports_refuses_bad_threshold(tmp_path, tiny_manifest, seuil):
    from conftest import write_notebook

    nbdir = tmp_path / "nb"
    write_notebook(nbdir / "tableau_de_bord.ipynb", ["print(seuil_secret)"])
    out = tmp_path / "reports"
    proc = run_cli(["reports", "--audience", "academie", "--only", "14", "--notebook", "tableau_de_bord",
                    "--notebooks-dir", str(nbdir), "--processed", str(tiny_manifest.processed_dir),
                    "--out", str(out), "--run-id", "x", "--no-progress"], seuil, tmp_path)
    assert_refused(proc, seuil)
    assert not out.exists() or not any(out.rglob("*.html"))


def test_commands_that_do_not_publish_still_start(tmp_path):
    """A bad threshold is no import-time crash: the help and the other commands still start."""
    proc = run_cli(["--help"], "abc", tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "check" in proc.stdout
    proc = run_cli(["crm", "--help"], "abc", tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
