"""Validation speed: GX gate of one delivery day, TFDV statistics of six years of features.

    PYTHONPATH=. .venv/bin/python benchmarks/validation_benchmark.py [--years 6] [--repeat 3]
    PYTHONPATH=. .venv/bin/python benchmarks/validation_benchmark.py --calibrate-drift

Prints wall-clock figures (targets: GX one day <= 10 s, TFDV six years of
hourly features <= 60 s on 2 cores). Uses a throwaway data root. Import times
(GX ~3-8 s, TFDV ~12 s) are reported separately: they are paid once per
process and are not part of the validation itself.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def calibrate_drift(train_days: int = 365, test_days: int = 60) -> None:
    """Largest single-day JS divergence of normal simulator days, and of shifted ones.

    Features come from tasks.features over tasks.simulator inputs, so the figures
    describe what the gate sees; thresholds in the schema should sit between the two.
    """
    from tasks import features as ft
    from tasks.config import get_settings
    from tasks.quality import tfdv_checks
    from tasks.simulator.model import simulate_day

    settings = get_settings()
    tz, zone = settings.market_timezone, settings.zones[0]
    import pandas as pd

    cache: dict[date, dict[str, pd.DataFrame]] = {}

    def get(dataset: str, day: date, *, required: bool = True) -> pd.DataFrame:  # noqa: ARG001 - build_day's reader signature
        if day not in cache:
            cache[day] = simulate_day(zone, day, seed=7, tz=tz, mtu_minutes=settings.mtu_minutes)
        return cache[day][dataset]

    first = date(2025, 1, 8)
    frames = [
        ft.build_day(
            zone, first + timedelta(days=i), get, tz=tz, mtu_minutes=settings.mtu_minutes, holidays_=set()
        )
        for i in range(train_days + test_days)
    ]
    stats = tfdv_checks.compute_training_stats(pd.concat(frames[:train_days], ignore_index=True), settings)
    schema = tfdv_checks.load_schema()
    for feature in schema.feature:  # measure every numeric feature, not only the curated ones
        if not feature.HasField("drift_comparator"):
            feature.drift_comparator.jensen_shannon_divergence.threshold = 1.0
    worst: dict[str, float] = {}
    for frame in frames[train_days:]:
        for info in tfdv_checks.validate_serving(frame, schema, stats).drift_skew_info:
            for m in info.drift_measurements:
                worst[info.path.step[0]] = max(worst.get(info.path.step[0], 0.0), m.value)
    print(f"largest JS of {test_days} normal days vs {train_days} training days:")
    for name, value in sorted(worst.items(), key=lambda kv: -kv[1]):
        print(f"  {name:16s} {value:.3f}")
    base = frames[train_days + 5]
    for label, column, factor in (("load x1.2", "load_mw", 1.2), ("load x1.3", "load_mw", 1.3)):
        shifted = base.assign(**{column: base[column] * factor})
        js = {
            i.path.step[0]: i.drift_measurements[0].value
            for i in tfdv_checks.validate_serving(shifted, schema, stats).drift_skew_info
        }
        print(f"  {label}: {column} JS {js.get(column, float('nan')):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument(
        "--calibrate-drift", action="store_true", help="Only print JS drift calibration figures."
    )
    parser.add_argument(
        "--train-days", type=int, default=365, help="--calibrate-drift: days behind the training statistics."
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--day", default="2026-10-25", help="Delivery day for the GX run (default: a 25-hour day)."
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="dap-bench-"))
    os.environ["DAP_DATA_ROOT"] = str(tmp / "data")
    os.environ["DAP_MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    if args.calibrate_drift:
        calibrate_drift(train_days=args.train_days)
        return

    from tasks.config import get_settings
    from tasks.quality.samples import feature_frame
    from tasks.simulator.model import simulate_day
    from tasks.storage import Layout, write_parquet_atomic
    from tasks.validate import input_days, run_gate

    settings = get_settings()
    zone = settings.zones[0]
    day = date.fromisoformat(args.day)
    layout = Layout(settings.data_root)
    for name, data_day in input_days(day).items():
        frame = simulate_day(
            zone, data_day, seed=1, tz=settings.market_timezone, mtu_minutes=settings.mtu_minutes
        )
        write_parquet_atomic(layout.processed_file(name, zone, data_day), frame[name])
    rows = feature_frame(day, 1, tz=settings.market_timezone, mtu_minutes=settings.mtu_minutes)
    write_parquet_atomic(layout.features_file(zone, day), rows)

    t0 = time.perf_counter()
    from tasks.quality.gx_runner import GxRunner, import_gx

    import_gx()
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    runner = GxRunner(layout.reports_dir("gx"))
    t_context = time.perf_counter() - t0
    print(f"GX import {t_import:.1f} s, file context {t_context:.1f} s (once per process)")
    for dataset in ("inputs", "features"):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = run_gate(dataset, zone, day, settings, runner=runner, tfdv=False)
            times.append(time.perf_counter() - t0)
            assert result["passed"], result
        print(
            f"GX gate --dataset {dataset} for {day} ({settings.mtu_minutes}-min MTU, incl. Data Docs): "
            f"best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s  [target <= 10 s]"
        )

    t0 = time.perf_counter()
    from tasks.quality import tfdv_checks

    tfdv_checks.import_tfdv()
    print(f"TFDV import {time.perf_counter() - t0:.1f} s (once per process)")
    first = date(2019, 1, 1)
    n_days = (first.replace(year=first.year + args.years) - first).days
    t0 = time.perf_counter()
    history = feature_frame(first, n_days, tz=settings.market_timezone, mtu_minutes=60)
    print(
        f"generated {len(history)} hourly feature rows x {history.shape[1]} columns in {time.perf_counter() - t0:.1f} s"
    )
    t0 = time.perf_counter()
    stats = tfdv_checks.compute_training_stats(history, settings)
    elapsed = time.perf_counter() - t0
    n_features = len(stats.datasets[0].features)
    print(
        f"TFDV statistics ({settings.tfdv_beam_runner} via Beam) over {args.years} years, "
        f"{len(history)} rows, {n_features} features: {elapsed:.1f} s  [target <= 60 s]"
    )
    schema = tfdv_checks.load_schema()
    serving = history.iloc[-24:]
    t0 = time.perf_counter()
    anomalies = tfdv_checks.validate_serving(serving, schema, stats)
    print(
        f"TFDV serving validation of one day vs training stats: {time.perf_counter() - t0:.2f} s, "
        f"anomalies: {sorted(anomalies.anomaly_info) or 'none'}"
    )
    print(f"(data root {tmp}; machine load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
