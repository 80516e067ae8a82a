"""Time the forecasting stages of one daily run on a year of 15-minute history.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_forecasting.py [--days 365] [--zone DE_LU] [--keep DIR] \
        [--neighbour ZONE]

Writes simulated processed inputs (devtools.simulator) for ``--days`` + 8 days
into a throwaway data root, then runs each stage as its CLI command (the way
the local runner and the pod do, imports included) and prints wall time and
peak RSS per stage: features (backfill of the whole window, then D),
train, evaluate, register, forecast. The budget is 5 minutes and 4 GiB for the
whole daily run on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_inputs(root: Path, zone: str, first: date, last: date, *, tz: str, mtu: int, seed: int) -> float:
    from devtools.simulator.model import simulate_day
    from tasks.storage import Layout, write_parquet_atomic
    from tasks.timeutil import days

    t0 = time.perf_counter()
    layout = Layout(root)
    for day in days(first, last):
        for dataset, frame in simulate_day(zone, day, seed=seed, tz=tz, mtu_minutes=mtu).items():
            if dataset == "renewables_actual":
                continue
            write_parquet_atomic(layout.processed_file(dataset, zone, day), frame)
    return time.perf_counter() - t0


def run(stage: str, args: list[str], env: dict[str, str]) -> tuple[float, float, float, dict[str, object]]:
    """Run ``python -m tasks.<stage>``; return wall s, CPU s, peak RSS (MiB) and the result."""
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0 = usage.ru_utime + usage.ru_stime
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", f"tasks.{stage}", *args],
            env={**env, "DAP_RESULT_FILE": str(result_file)},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = usage.ru_utime + usage.ru_stime - cpu0
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            raise SystemExit(f"tasks.{stage} failed with {proc.returncode}")
        result = json.loads(result_file.read_text())
    # ru_maxrss of children is the largest child so far (KiB): stages run in order, so a
    # stage's figure is an upper bound of its own peak.
    return wall, cpu, usage.ru_maxrss / 1024, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--zone", default="DE_LU")
    parser.add_argument("--mtu", type=int, default=15)
    parser.add_argument("--delivery-date", default="2026-11-10")
    parser.add_argument(
        "--neighbour",
        action="append",
        default=[],
        metavar="ZONE",
        help="A coupled zone whose forecasts join --zone's features (settings.neighbour_zones); "
        "its inputs are simulated too, e.g. --zone BE --neighbour DE_LU.",
    )
    parser.add_argument("--keep", type=Path, default=None, help="Use (and keep) this directory.")
    args = parser.parse_args()
    day = date.fromisoformat(args.delivery_date)
    base = args.keep or Path(tempfile.mkdtemp(prefix="dap-bench-"))
    root = base / "data"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DAP_DATA_ROOT": str(root),
        "DAP_MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
        "DAP_MLFLOW_ARTIFACT_ROOT": (base / "artifacts").as_uri(),
        "DAP_ZONES": ",".join([args.zone, *args.neighbour]),
        "DAP_NEIGHBOUR_ZONES": json.dumps({args.zone: args.neighbour}),
        "DAP_MTU_MINUTES": str(args.mtu),
        "DAP_TRAIN_WINDOW_DAYS": str(args.days),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    first = day - timedelta(days=args.days + 8)
    if not (root / "processed").exists():
        seconds = sum(
            write_inputs(root, zone, first, day, tz="Europe/Berlin", mtu=args.mtu, seed=7)
            for zone in (args.zone, *args.neighbour)
        )
        print(f"simulated inputs {first}..{day}: {seconds:.1f} s (not part of the daily run)")
    common = ["--delivery-date", day.isoformat(), "--zone", args.zone]
    rows = []
    wall, cpu, rss, res = run(
        "features", [*common, "--backfill-from", (day - timedelta(days=args.days)).isoformat()], env
    )
    rows.append(
        ("features (backfill window + D)", wall, cpu, rss, f"built {res['built']}, rows {res['rows']}")
    )
    wall, cpu, rss, res = run("features", common, env)
    rows.append(("features (D only, daily)", wall, cpu, rss, f"rows {res['rows']}"))
    wall, cpu, rss, res = run("train", common, env)
    run_id = str(res["run_id"])
    members = res["members"]
    assert isinstance(members, list)
    rows.append(
        (
            "train",
            wall,
            cpu,
            rss,
            f"{'+'.join(members)} mae {res['mae']:.2f} rmae {res['rmae']:.3f} "
            + " ".join(
                f"{name} {res[f'{name}_mae']:.2f}" for name in dict.fromkeys(["dnn", *members, "naive"])
            ),
        )
    )
    wall, cpu, rss, res = run("evaluate", [*common, "--run-id", run_id], env)
    rows.append(("evaluate", wall, cpu, rss, f"challenger {res['challenger_mae']:.2f}"))
    wall, cpu, rss, res = run("register", [*common, "--run-id", run_id], env)
    rows.append(("register", wall, cpu, rss, f"v{res['version']} promoted {res['promoted']}"))
    wall, cpu, rss, res = run("forecast", common, env)
    rows.append(("forecast", wall, cpu, rss, f"rows {res['rows']}"))
    wall, cpu, rss, res = run("train", [*common, "--if-due"], env)
    rows.append(("train --if-due (not due)", wall, cpu, rss, f"skipped {res['skipped']}"))

    import mlflow

    mlflow.set_tracking_uri(env["DAP_MLFLOW_TRACKING_URI"])
    metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
    print(
        f"\n{args.days} days, {args.mtu}-minute MTU, zone {args.zone}"
        + (f" (neighbours {', '.join(args.neighbour)})" if args.neighbour else "")
        + f", delivery day {day} ({os.cpu_count()} cores)"
    )
    print(f"{'stage':34s} {'wall s':>7s} {'CPU s':>7s} {'peak MiB':>9s}  result")
    for name, wall, cpu, rss, note in rows:
        print(f"{name:34s} {wall:7.1f} {cpu:7.1f} {rss:9.0f}  {note}")
    daily_wall = sum(float(r[1]) for r in rows[1:6])
    daily_cpu = sum(float(r[2]) for r in rows[1:6])
    print(
        f"daily run (features D, train, evaluate, register, forecast): wall {daily_wall:.1f} s, CPU {daily_cpu:.1f} s"
    )
    inner = [
        "data_seconds",
        *(k for k in metrics if k.endswith("_fit_seconds")),
        "log_model_seconds",
        "epochs_run",
    ]
    print("inside train: " + ", ".join(f"{k} {metrics[k]:.1f}" for k in inner))
    print(
        "evaluation window: "
        + ", ".join(
            f"{k} {metrics[k]:.3f}" for k in ("mae", "rmae", "smape", "rmse", "pinball", "coverage_80")
        )
    )
    print(f"data in {base}")


if __name__ == "__main__":
    main()
