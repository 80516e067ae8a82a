"""Wall time of a backfill: the daily DAG for N consecutive delivery days, embedded vs the stack.

    python benchmarks/backfill.py [--days 30] [--first-day 2026-10-01] [--stack]

Bootstraps the history before the first day once (not timed), then runs the daily DAG
(``dag.test``, the same run the demo makes) for each delivery day in order, as Airflow's
backfill does with ``max_active_runs=1``, and prints the time of every day and the total.
Without ``--stack`` everything is embedded (SQLite metadata DB and MLflow store, local data
root in a temporary directory); with ``--stack`` it runs on ``make stack`` (Airflow metadata
on PostgreSQL, the MLflow server, the data root on S3 under a fresh prefix). Every day must
publish a schedule: a day that does not stops the benchmark with exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devtools import demo  # noqa: E402
from tasks.config import get_settings  # noqa: E402
from tasks.timeutil import parse_day  # noqa: E402


def isolate(stack: bool, scratch: Path) -> None:
    """A fresh data root (embedded: a temp dir; stack: a new S3 prefix and mirror)."""
    if stack:
        demo.use_stack()
        os.environ["DAP_DATA_URL"] = f"{os.environ['DAP_DATA_URL']}-bench-{int(time.time())}"
    else:
        os.environ["DAP_MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow' / 'mlflow.db'}"
        os.environ["DAP_MLFLOW_ARTIFACT_ROOT"] = (scratch / "mlflow" / "artifacts").as_uri()
        (scratch / "mlflow").mkdir(parents=True, exist_ok=True)
    os.environ["DAP_DATA_ROOT"] = str(scratch / "data")
    get_settings.cache_clear()


def utc(moment: datetime) -> datetime:
    """Naive UTC, as both metadata DBs compare it (SQLite compares the text it stores)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def task_seconds(db_url: str, first: datetime, stop: datetime) -> dict[str, dict[str, float]]:
    """Mean and max seconds of every task over the runs with logical dates in [first, stop),
    from the metadata DB the runs used."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    query = sa.text(
        "select task_id, start_date, end_date from task_instance "
        "where dag_id = 'day_ahead_daily' and state = 'success' and run_id in "
        "(select run_id from dag_run where dag_id = 'day_ahead_daily' and logical_date >= :lo and logical_date < :hi)"
    )
    by_task: dict[str, list[float]] = {}
    with engine.connect() as conn:
        for task_id, *bounds in conn.execute(query, {"lo": utc(first), "hi": utc(stop)}):
            if None not in bounds:  # SQLite returns the text it stores
                start, end = (v if isinstance(v, datetime) else datetime.fromisoformat(v) for v in bounds)
                by_task.setdefault(task_id, []).append((end - start).total_seconds())
    engine.dispose()
    return {
        task: {"mean_s": round(sum(v) / len(v), 1), "max_s": round(max(v), 1), "runs": len(v)}
        for task, v in sorted(by_task.items(), key=lambda kv: -sum(kv[1]))
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--first-day", type=parse_day, default=date(2026, 10, 1))
    parser.add_argument(
        "--history-days", type=int, default=120, help="Simulated history before the first day."
    )
    parser.add_argument("--stack", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dap-backfill-"))
    isolate(args.stack, scratch)
    settings = get_settings()
    env = demo.stack_airflow_env() if args.stack else demo.airflow_env(settings)
    if not args.stack:
        demo._run([sys.executable, "-m", "airflow", "db", "migrate"], env)
    first, last = args.first_day - timedelta(days=args.history_days), args.first_day - timedelta(days=2)
    demo._run(
        [sys.executable, "-m", "devtools.bootstrap", "--first-day", str(first), "--last-day", str(last)], env
    )
    mode = "stack (PostgreSQL, MLflow server, S3 data root)" if args.stack else "embedded defaults"
    print(f"backfill of {args.days} days from {args.first_day} on the {mode}", flush=True)
    times = []
    for i in range(args.days):
        day = args.first_day + timedelta(days=i)
        started = time.perf_counter()
        state = demo.run_dag(settings, day, env)
        times.append(time.perf_counter() - started)
        published = demo.summarise(settings, day)["published"]
        print(f"  {day}  {times[-1]:6.1f} s  {state}{'' if published else '  NOT PUBLISHED'}", flush=True)
        if state != "success" or not published:
            return 1
    total = sum(times)
    print("task seconds (mean, max over the runs):", flush=True)
    runs = (
        demo.run_logical_date(settings, args.first_day),
        demo.run_logical_date(settings, day + timedelta(days=1)),
    )
    for task, stat in task_seconds(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], *runs).items():
        print(f"  {task:<20} {stat['mean_s']:7.1f} {stat['max_s']:7.1f}", flush=True)
    print(json.dumps({"mode": "stack" if args.stack else "embedded", "days": args.days,
                      "total_s": round(total, 1), "mean_day_s": round(total / len(times), 1),
                      "max_day_s": round(max(times), 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
