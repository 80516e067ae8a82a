"""The main job: the daily pipeline for one delivery day on the embedded defaults.

``python -m devtools.demo [--delivery-date D] [--days N]`` (``make demo``,
``make demo DEMO_ARGS="--days 2"``):

1. prepares a project-local Airflow home on SQLite (``var/airflow``);
2. bootstraps simulated history through the embedded ingestion path
   (``python -m devtools.bootstrap``), skipping days already landed;
3. runs the DAG ``day_ahead_daily`` with ``dag.test()`` for the run that fires on
   D-1 at 10:15 market time, i.e. the run that schedules D; with ``--days N`` then
   for D+1 ... D+N-1, one run after the other as on consecutive mornings. Each
   later run lands the previous day's actual prices and settles its published
   schedule (``realise_value``);
4. prints a summary of the schedules, the realised value of the settled days
   (from ``<data_root>/realised/`` and the capture logged in MLflow) and where the
   outputs are.

No external service is used. The delivery day defaults to tomorrow in market time:
that is the one place the wall clock is read, because a person starting the demo
means "the next delivery day"; every stage gets the day as an argument.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tasks.config import PROJECT_ROOT, Settings, get_settings
from tasks.storage import Layout
from tasks.timeutil import parse_day

STEPS = 4


def step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


def airflow_env(settings: Settings) -> dict[str, str]:
    """Project-local Airflow: SQLite metadata DB, our dags/ folder, few workers."""
    home = settings.data_root.parent / "airflow"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "dags")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def use_stack() -> None:
    """Load var/stack/stack.env into this process (settings, S3, MLflow, Airflow on PostgreSQL)."""
    from devtools.stack import STACK_DIR, Stack

    env_file = STACK_DIR / "stack.env"
    if not env_file.exists() or not Stack().status()["mlflow"]:
        sys.exit("demo --stack: the stack is not up; run `make stack` first (docs/stack.md)")
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        if key:
            os.environ[key] = value
    get_settings.cache_clear()


def stack_airflow_env() -> dict[str, str]:
    """The stack's Airflow settings (PostgreSQL metadata DB), as loaded by :func:`use_stack`."""
    keys = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "PYTHONPATH")
    return {
        **{k: os.environ[k] for k in keys},
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def default_delivery_day(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.market_timezone)).date() + timedelta(days=1)


def run_logical_date(settings: Settings, delivery_day: date) -> datetime:
    """When the daily DAG fires for ``delivery_day``: D-1 at 10:15 market time."""
    return datetime.combine(
        delivery_day - timedelta(days=1), datetime.min.time().replace(hour=10, minute=15)
    ).replace(tzinfo=ZoneInfo(settings.market_timezone))


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env={**os.environ, **env}, check=False)
    if proc.returncode != 0:
        sys.exit(f"demo: `{' '.join(cmd[1:])}` failed with exit code {proc.returncode}")


def run_dag(settings: Settings, delivery_day: date, env: dict[str, str]) -> str:
    """Run the daily DAG in a child interpreter (Airflow reads its config at import)."""
    logical = run_logical_date(settings, delivery_day)
    code = (
        "import sys\n"
        "from datetime import datetime\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag({str(PROJECT_ROOT / 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "dag = bag.dags['day_ahead_daily']\n"
        # Airflow 3.3.2's dag.test() fails a successful run of a DAG with a deadline (it looks the
        # serialised alerts up as database ids; docs/maintainers.md). No scheduler watches a test
        # run's deadline anyway.
        "dag.deadline = None\n"
        f"run = dag.test(logical_date=datetime.fromisoformat({logical.isoformat()!r}))\n"
        "print('DAG_RUN_STATE', run.state, flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    log_file = settings.data_root.parent / "airflow" / f"dag_test_{delivery_day.isoformat()}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(proc.stdout + proc.stderr)
    states = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("DAG_RUN_STATE")]
    state = states[-1] if states else "crashed"
    if state != "success":
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        print(tail, file=sys.stderr)
        print(f"\nDAG run {state}; full log: {log_file}", file=sys.stderr)
    return state


def summarise(settings: Settings, delivery_day: date) -> dict[str, Any]:
    """Read the published schedule's manifest and totals for the closing summary."""
    layout = Layout(settings.data_root)
    day_dir = layout.schedule_dir(delivery_day)
    pointer = day_dir / "LATEST"  # the published version (docs/output-contract.md)
    if pointer.exists():
        version_dir = day_dir / json.loads(pointer.read_text())["version"]
    else:
        return {"published": False, "day_dir": str(day_dir)}
    manifest = json.loads((version_dir / "manifest.json").read_text())
    return {"published": True, "version_dir": str(version_dir), "manifest": manifest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--delivery-date", type=parse_day, default=None, help="Default: tomorrow, market time."
    )
    parser.add_argument(
        "--days",
        type=int,
        default=1,
        help="Consecutive delivery days to run from D (default 1); from 2 on, the earlier days are settled.",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=None,
        help="Days of history to bootstrap (default: min(training window, 365) + 28).",
    )
    parser.add_argument(
        "--stack",
        action="store_true",
        help="Run against `make stack` (PostgreSQL metadata DB, MLflow server, data root on S3) "
        "instead of the embedded defaults; reads var/stack/stack.env.",
    )
    args = parser.parse_args(argv)
    if args.stack:
        use_stack()
    settings = get_settings()
    day: date = args.delivery_date or default_delivery_day(settings)
    # A year of simulated history keeps the demo's bootstrap short; training uses what landed.
    history_days = args.history_days or min(settings.train_window_days, 365) + 28
    env = airflow_env(settings) if not args.stack else stack_airflow_env()
    started = time.perf_counter()
    print(f"Day-ahead pipeline demo for delivery day {day} (zones {', '.join(settings.zones)}).", flush=True)

    step(1, f"Airflow metadata DB ({'PostgreSQL' if args.stack else 'SQLite'}) under {env['AIRFLOW_HOME']}")
    _run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        {**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"},
    )

    first = day - timedelta(days=history_days)
    last = day - timedelta(days=2)  # D-1 is published and ingested by the run itself
    step(2, f"bootstrap history {first} .. {last} through the embedded ingestion path")
    _run(
        [
            sys.executable,
            "-m",
            "devtools.bootstrap",
            "--first-day",
            first.isoformat(),
            "--last-day",
            last.isoformat(),
        ],
        env,
    )

    run_days = [day + timedelta(days=i) for i in range(max(1, args.days))]
    for run_day in run_days:
        step(
            3,
            f"run DAG day_ahead_daily for {run_day} (dag.test, fires {run_logical_date(settings, run_day)})",
        )
        state = run_dag(settings, run_day, env)
        if state != "success":
            return 1

    step(4, "summary")
    summaries = [summarise(settings, run_day) for run_day in run_days]
    for run_day, summary in zip(run_days, summaries, strict=True):
        print_summary(settings, run_day, summary, time.perf_counter() - started)
    print_realised(settings, run_days[:-1])
    return 0 if all(s["published"] for s in summaries) else 1


def realised_records(settings: Settings, days: list[date]) -> list[dict[str, Any]]:
    """The realised-value records of ``days`` for every zone, with the capture read back from MLflow."""
    layout = Layout(settings.data_root)
    records = []
    for day in days:
        for zone in settings.zones:
            path = layout.realised_file(zone, day)
            if not path.exists():
                records.append({"delivery_date": day.isoformat(), "zone": zone, "missing": str(path)})
                continue
            record = json.loads(path.read_text())
            record["mlflow_capture_ratio"] = _mlflow_capture(settings, record)
            records.append(record)
    return records


def _mlflow_capture(settings: Settings, record: dict[str, Any]) -> float | None:
    """The capture logged on the forecasting model's run for the record's day (None if not logged)."""
    if not record.get("model_run_id"):
        return None
    from mlflow import MlflowClient

    step = int(record["delivery_date"].replace("-", ""))
    history = MlflowClient(settings.tracking_uri).get_metric_history(
        record["model_run_id"], "realised_capture_ratio"
    )
    values = [m.value for m in history if m.step == step]
    return values[-1] if values else None


def print_realised(settings: Settings, days: list[date]) -> None:
    if not days:
        return
    print()
    print("Realised value of the published schedules (settled by the next run at the actual prices)")
    for r in realised_records(settings, days):
        if "missing" in r:
            print(f"  {r['delivery_date']} {r['zone']:<6} not settled: no {r['missing']}")
            continue
        capture = "n/a" if r["capture_ratio"] is None else f"{100 * r['capture_ratio']:.1f} %"
        logged = "n/a" if r["mlflow_capture_ratio"] is None else f"{100 * r['mlflow_capture_ratio']:.1f} %"
        print(
            f"  {r['delivery_date']} {r['zone']:<6} realised {r['realised_profit_eur']:>10,.0f} EUR   "
            f"perfect foresight {r['perfect_foresight_profit_eur']:>10,.0f} EUR   capture {capture} "
            f"(MLflow, model v{r['model_version']}: {logged})   forecast MAE {r['forecast_mae_eur_mwh']:.1f} EUR/MWh   "
            f"P10-P90 coverage {100 * r['interval_coverage']:.0f} %"
        )


def print_summary(settings: Settings, day: date, summary: dict[str, Any], seconds: float) -> None:
    layout = Layout(settings.data_root)
    if not summary["published"]:
        print(f"No schedule was published for {day}: see {summary['day_dir']}")
        return
    manifest = summary["manifest"]
    print()
    print(f"Schedule for delivery day {day} — published ({manifest['rows']['schedule']} rows)")
    for zone, figures in manifest.get("figures", {}).items():
        print(
            f"  {zone:<6} expected margin {figures['expected_margin_eur']:>12,.0f} EUR   "
            f"bought {figures['energy_bought_mwh']:>10,.1f} MWh   sold {figures['energy_sold_mwh']:>10,.1f} MWh   "
            f"storage cycles {figures['storage_cycles']:.2f}"
        )
    print(f"  schedule         {summary['version_dir']}")
    print(f"  summary          {summary['version_dir']}/summary.html (offline page), summary.png")
    print(f"  MLflow runs      {settings.tracking_uri}  (make mlflow-ui)")
    print(f"  validation       {layout.reports_dir('gx')}")
    print(f"  wall time        {seconds:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
