"""Airflow DAG example: the monthly GAR steering cycle (``gar-analysis cycle``).

Copy this file into the DAGs folder of an Airflow 2 installation that can run
``gar-analysis`` (the project's virtual environment). The task runs exactly the
command of the systemd and cron recipes (``gar-analysis cycle --print-schedule``);
Airflow only schedules it. Exit status 75 means another cycle holds the lock
(nothing was done): the task is then marked skipped, not failed.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

#: Folder of the gar-analysis checkout (the command runs from there).
GAR_ROOT = "/opt/gar-analysis"
#: The exact command of the cycle (same as the systemd and cron recipes).
CYCLE_COMMAND = f"cd {GAR_ROOT} && .venv/bin/gar-analysis cycle --data data/raw/sample"

with DAG(
    dag_id="gar_cycle_mensuel",
    description="Cycle mensuel de pilotage du GAR : contrôles, tables, rapports, nouveautés, partage",
    schedule="30 2 3 * *",  # the 3rd of each month at 02:30, like the cron line
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=30)},
    tags=["gar"],
) as dag:
    cycle = BashOperator(
        task_id="gar_analysis_cycle",
        bash_command=CYCLE_COMMAND,
        skip_on_exit_code=75,
        execution_timeout=timedelta(hours=6),
    )
