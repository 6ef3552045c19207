"""``gar-analysis cycle``: lock, releases, the ``latest`` link, retention, recipes, failure alert (fast tests).

The cycles that execute notebooks, the crash and resume, and the set of pages
re-rendered when one académie's data change are in ``test_cycle_slow.py``.
"""
from __future__ import annotations

import ast
import configparser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gar_analysis import cli, config, cycle

sys.path.insert(0, str(Path(__file__).parent))
from rocketchat_server import FakeRocketChat, Integration, SimClock  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DAG = ROOT / "docs" / "examples" / "airflow_gar_cycle.py"
HOOK_ID, HOOK_TOKEN = "65f1a2b3c4d5e6f7", "Hk8sQ2wZr5Tn9VbX"


def _layout(tmp_path):
    return cycle.Layout(tmp_path / "reports", tmp_path / "history")


def _release(layout, rid, statut="complete", debut=None, reference=None):
    d = layout.releases / rid
    d.mkdir(parents=True)
    (d / "index.html").write_text(rid)
    cycle.write_manifest(d, {"release": rid, "statut": statut, "debut": debut or rid, "reference": reference})
    (layout.history_dir / rid).mkdir(parents=True)
    return d


def test_lock_refuses_a_second_cycle_at_once(tmp_path, capsys):
    layout = _layout(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    with cycle.Lock(layout.lock):
        with pytest.raises(cycle.CycleLocked):
            with cycle.Lock(layout.lock):
                pass
        code = cli.main(["cycle", "--data", str(data), "--reports", str(layout.reports_dir), "--no-refresh"])
    err = capsys.readouterr().err
    assert code == cycle.EXIT_LOCKED == 75
    assert "un autre cycle est en cours" in err and f"pid {os.getpid()}" in err
    assert not layout.releases.exists()  # nothing was done
    with cycle.Lock(layout.lock):  # released: the next cycle takes it
        pass


def test_lock_is_held_across_processes(tmp_path):
    layout = _layout(tmp_path)
    code = ("import sys, time; from gar_analysis import cycle; from pathlib import Path\n"
            "with cycle.Lock(Path(sys.argv[1])):\n    print('pris', flush=True); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(layout.lock)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "pris"
        with pytest.raises(cycle.CycleLocked, match=f"pid {proc.pid}"):
            with cycle.Lock(layout.lock):
                pass
    finally:
        proc.kill()
        proc.wait()
    with cycle.Lock(layout.lock):  # the dead process's lock is gone with it
        pass


def test_latest_switch_is_a_relative_symlink_replaced_in_one_step(tmp_path):
    layout = _layout(tmp_path)
    _release(layout, "r1")
    _release(layout, "r2")
    cycle.switch_latest(layout, "r1")
    assert os.readlink(layout.latest) == "releases/r1" and cycle.latest_release(layout) == "r1"
    cycle.switch_latest(layout, "r2")
    assert (layout.latest / "index.html").read_text() == "r2"
    assert [p.name for p in layout.reports_dir.iterdir() if p.name.startswith(".latest")] == []


def test_plain_latest_folder_is_moved_into_releases_not_lost(tmp_path, capsys):
    layout = _layout(tmp_path)
    (layout.latest / "national").mkdir(parents=True)
    (layout.latest / "national" / "FR.html").write_text("ancien")
    name = cycle.adopt_plain_latest(layout)
    assert name.startswith("ancien-latest-") and not layout.latest.exists()
    assert (layout.releases / name / "national" / "FR.html").read_text() == "ancien"
    assert cycle.read_manifest(layout.releases / name)["statut"] == "ancien"
    assert "déplacé" in capsys.readouterr().out
    cycle.switch_latest(layout, name)  # a symlink now: left alone
    assert cycle.adopt_plain_latest(layout) is None


def test_prune_keeps_the_last_n_latest_its_base_and_failed_releases(tmp_path):
    layout = _layout(tmp_path)
    _release(layout, "r1")
    _release(layout, "r2")
    _release(layout, "r3", statut="echec")
    _release(layout, "r4")
    _release(layout, "r5", reference={"release": "r1", "instantane": "x"})
    _release(layout, "r6")
    cycle.switch_latest(layout, "r5")  # e.g. a re-run published r5 while r6 came later
    removed = cycle.prune(layout, keep=1)
    assert removed == ["r2", "r4"]
    left = sorted(p.name for p in layout.releases.iterdir())
    assert left == ["r1", "r3", "r5", "r6"]  # r1: base of latest; r3: failed, kept; r5: latest; r6: newest
    assert not (layout.history_dir / "r2").exists() and (layout.history_dir / "r1").exists()


def test_keep_from_the_environment(monkeypatch):
    monkeypatch.delenv(cycle.ENV_KEEP, raising=False)
    assert cycle.keep_from_env() == cycle.DEFAULT_KEEP
    monkeypatch.setenv(cycle.ENV_KEEP, "12")
    assert cycle.keep_from_env() == 12
    for bad in ("0", "-3", "douze"):
        monkeypatch.setenv(cycle.ENV_KEEP, bad)
        with pytest.raises(cycle.ConfigError, match="GAR_CYCLE_KEEP"):
            cycle.keep_from_env()


def test_inventory_and_up_to_date_processed_tables(tmp_path):
    data = tmp_path / "data"
    (data / "gar").mkdir(parents=True)
    (data / "gar" / "acces.csv").write_text("mois;uai;acces\n2025-01;0010001A;3\n2025-02;0010001A;4\n")
    inv = cycle.input_inventory(data)
    assert inv == [{"fichier": "gar/acces.csv", "sha256": inv[0]["sha256"], "lignes": 2}]
    processed = tmp_path / "processed"
    processed.mkdir()
    (processed / "t.parquet").write_text("x")
    manifest = {"sources": [{"fichier": "gar/acces.csv", "sha256": inv[0]["sha256"], "lignes": 2}],
                "outputs": {"t": {"fichier": "t.parquet"}}}
    (processed / "manifest.json").write_text(json.dumps(manifest))
    assert cycle.processed_up_to_date(inv, processed)
    (data / "gar" / "acces.csv").write_text("mois;uai;acces\n2025-01;0010001A;3\n2025-02;0010001A;5\n")
    assert not cycle.processed_up_to_date(cycle.input_inventory(data), processed)


def test_code_version_names_package_commit_and_sources():
    v = cycle.code_version()
    assert v["version"] == __import__("gar_analysis").__version__
    assert len(v["sources_sha256"]) == 64
    assert v["commit"] is None or len(v["commit"]) == 40


def test_refresh_is_skipped_with_one_message_when_the_portal_is_unreachable(monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    monkeypatch.setenv(config.ENV_OPENDATA_BASE_URL, f"http://127.0.0.1:{port}")
    text = cycle.refresh_opendata(timeout=1.0)
    assert text.startswith("Données ouvertes : portail 127.0.0.1 injoignable") and "ignoré" in text


# --------------------------------------------------------------------------- failure: kept, not published, alert

def test_failed_release_is_kept_unpublished_and_alert_posted(tmp_path, monkeypatch, capsys):
    """Real code path: the cycle fails (no CSV in --data) and posts an alert to the Rocket.Chat test server."""
    for name in (config.ENV_ROCKETCHAT_URL, config.ENV_ROCKETCHAT_TOKEN, config.ENV_ROCKETCHAT_USER_ID,
                 config.ENV_ROCKETCHAT_CHANNEL):
        monkeypatch.delenv(name, raising=False)
    chat = FakeRocketChat(SimClock(), token="tok-9f8e7d6c5b4a3210", user_id="uid-Xq7Lm2Pz9Rt4",
                          integrations=[Integration(HOOK_ID, HOOK_TOKEN)])
    try:
        monkeypatch.setenv(config.ENV_ROCKETCHAT_WEBHOOK, f"{chat.url}/hooks/{HOOK_ID}/{HOOK_TOKEN}")
        layout = _layout(tmp_path)
        _release(layout, "r0")
        cycle.switch_latest(layout, "r0")
        empty = tmp_path / "vide"
        empty.mkdir()
        code = cli.main(["cycle", "--data", str(empty), "--reports", str(layout.reports_dir), "--no-refresh",
                         "--release-id", "r1", "--history", str(layout.history_dir)])
        assert code == cli.EXIT_REFUSED
        assert "aucun fichier CSV" in capsys.readouterr().err
        assert cycle.latest_release(layout) == "r0"  # never published
        m = cycle.read_manifest(layout.releases / "r1")
        assert m["statut"] == "echec" and m["publiee"] is False and "aucun fichier CSV" in m["erreur"]
        assert len(chat.webhook_posts) == 1
        text = chat.webhook_posts[0]["text"]
        assert "Cycle GAR en échec" in text and "aucun fichier CSV" in text
    finally:
        chat.close()


def test_no_alert_without_rocketchat(monkeypatch):
    for name in (config.ENV_ROCKETCHAT_WEBHOOK, config.ENV_ROCKETCHAT_URL, config.ENV_ROCKETCHAT_TOKEN,
                 config.ENV_ROCKETCHAT_USER_ID, config.ENV_ROCKETCHAT_CHANNEL):
        monkeypatch.delenv(name, raising=False)
    assert cycle.alert_failure("essai") is False


# --------------------------------------------------------------------------- scheduling recipes

def test_cron_line_runs_the_cycle_monthly(capsys):
    assert cli.main(["cycle", "--print-schedule", "cron", "--data", "/srv/gar/data"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert fields[:5] == ["30", "2", "3", "*", "*"]
    assert "gar-analysis cycle --data /srv/gar/data" in fields[5]


def test_systemd_units_parse_and_verify(tmp_path, capsys):
    assert cli.main(["cycle", "--print-schedule", "systemd", "--data", "/srv/gar/data"]) == 0
    files = cycle.split_systemd(capsys.readouterr().out)
    assert set(files) == {"gar-cycle.service", "gar-cycle.timer"}
    service = configparser.ConfigParser(strict=True, interpolation=None)
    service.optionxform = str
    service.read_string(files["gar-cycle.service"])
    assert service["Service"]["ExecStart"].endswith("gar-analysis cycle --data /srv/gar/data")
    assert service["Service"]["Type"] == "oneshot" and service["Service"]["SuccessExitStatus"] == "75"
    timer = configparser.ConfigParser(strict=True, interpolation=None)
    timer.read_string(files["gar-cycle.timer"])
    assert timer["Timer"]["OnCalendar"] == "*-*-03 02:30:00"
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace(str(Path(sys.executable).with_name("gar-analysis")),
                                                  "/bin/true"))
    cal = subprocess.run([tool, "calendar", timer["Timer"]["OnCalendar"]], capture_output=True, text=True)
    assert cal.returncode == 0 and "Next elapse" in cal.stdout
    out = subprocess.run([tool, "verify", str(tmp_path / "gar-cycle.service"), str(tmp_path / "gar-cycle.timer")],
                         capture_output=True, text=True)
    problems = [ln for ln in (out.stderr + out.stdout).splitlines()
                if "gar-cycle" in ln and "WorkingDirectory" not in ln]
    assert problems == [] and out.returncode == 0, out.stderr


def test_airflow_dag_example_calls_the_exact_command():
    tree = ast.parse(DAG.read_text(encoding="utf-8"))
    consts = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name)}
    command = ast.literal_eval(consts["CYCLE_COMMAND"].values[-1]) if isinstance(
        consts["CYCLE_COMMAND"], ast.JoinedStr) else ast.literal_eval(consts["CYCLE_COMMAND"])
    assert command.strip().endswith("gar-analysis cycle --data data/raw/sample")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "BashOperator"]
    assert len(calls) == 1
    kw = {k.arg: k.value for k in calls[0].keywords}
    assert getattr(kw["bash_command"], "id", "") == "CYCLE_COMMAND"
    assert ast.literal_eval(kw["skip_on_exit_code"]) == cycle.EXIT_LOCKED
    if importlib.util.find_spec("airflow") is None:
        pytest.skip("Airflow non installé : fichier vérifié sans l'importer")
    spec = importlib.util.spec_from_file_location("airflow_gar_cycle", DAG)  # pragma: no cover
    mod = importlib.util.module_from_spec(spec)  # pragma: no cover
    spec.loader.exec_module(mod)  # pragma: no cover
    assert mod.dag.task_dict["gar_analysis_cycle"].bash_command == mod.CYCLE_COMMAND  # pragma: no cover
