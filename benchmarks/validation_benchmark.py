"""Validation speed: GX gate of one delivery day, TFDV statistics of six years of features.

    PYTHONPATH=. .venv/bin/python benchmarks/validation_benchmark.py [--years 6] [--repeat 3]
    PYTHONPATH=. .venv/bin/python benchmarks/validation_benchmark.py --calibrate-drift
    PYTHONPATH=. .venv/bin/python benchmarks/validation_benchmark.py --calibrate-drift \
        --features-root var/replay_DE_w1092/data --zone DE_LU --train-days 1092

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def calibrate_drift(train_days: int = 365, test_days: int = 60) -> None:
    """Largest single-day JS divergence of normal simulator days, and of shifted ones.

    Features come from tasks.features over devtools.simulator inputs, so the figures
    describe what the gate sees; thresholds in the schema should sit between the two.
    """
    from devtools.simulator.model import simulate_day
    from tasks import features as ft
    from tasks.config import get_settings
    from tasks.quality import tfdv_checks

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
    schema = _measuring_schema()
    worst: dict[str, float] = {}
    for frame in frames[train_days:]:
        for name, value in _drift_measurements(frame, schema, stats).items():
            worst[name] = max(worst.get(name, 0.0), value)
    print(f"largest JS of {test_days} normal days vs {train_days} training days:")
    for name, value in sorted(worst.items(), key=lambda kv: -kv[1]):
        print(f"  {name:16s} {value:.3f}")
    base = frames[train_days + 5]
    for label, column, factor in (("load x1.2", "load_mw", 1.2), ("load x1.3", "load_mw", 1.3)):
        js = _drift_measurements(base.assign(**{column: base[column] * factor}), schema, stats)
        print(f"  {label}: {column} JS {js.get(column, float('nan')):.3f}")


def _measuring_schema() -> Any:
    """The curated schema with a JS comparator on every feature, so each one is measured."""
    from tasks.quality import tfdv_checks

    schema = tfdv_checks.load_schema()
    for feature in schema.feature:
        if not feature.HasField("drift_comparator"):
            feature.drift_comparator.jensen_shannon_divergence.threshold = 1.0
    return schema


def _drift_measurements(frame: pd.DataFrame, schema: Any, stats: Any) -> dict[str, float]:
    """JS divergence per feature of one day's features against training statistics."""
    from tasks.quality import tfdv_checks

    return {
        info.path.step[0]: info.drift_measurements[0].value
        for info in tfdv_checks.validate_serving(frame, schema, stats).drift_skew_info
        if info.drift_measurements
    }


def calibrate_drift_on_store(
    data_root: Path, zone: str, *, train_days: int, test_days: int, refresh_every: int
) -> None:
    """Daily JS of real feature days against the statistics of the ``train_days`` before them.

    Reads ``features/zone=Z/<day>.parquet`` of a data root (e.g. the store that
    ``benchmarks/production_replay.py --keep`` leaves). Training statistics are
    refreshed every ``refresh_every`` days, as a re-training pipeline would; each
    test day is compared as it is and with its load scaled by 0.5 … 2, which
    gives the false-alarm rate and the detection rate of every threshold.
    """
    import numpy as np
    import pandas as pd

    from tasks.config import get_settings
    from tasks.quality import tfdv_checks

    settings = get_settings()
    files = sorted((data_root / "features" / f"zone={zone}").glob("*.parquet"))
    if len(files) < train_days + 7:
        raise SystemExit(f"{len(files)} feature days under {data_root} for zone {zone}: need > {train_days}")
    days = [date.fromisoformat(f.stem) for f in files]
    frames = dict(zip(days, (pd.read_parquet(f) for f in files), strict=True))
    schema = _measuring_schema()
    test = days[-test_days:] if test_days < len(days) - train_days else days[train_days:]
    factors = (0.5, 0.8, 1.2, 1.3, 1.5, 2.0)
    normal: dict[str, list[float]] = {}
    shifted: dict[float, list[float]] = {f: [] for f in factors}
    stats = None
    t0 = time.perf_counter()
    for k, day in enumerate(test):
        if k % refresh_every == 0:
            history = [d for d in days if day - timedelta(days=train_days) <= d < day]
            stats = tfdv_checks.compute_training_stats(
                pd.concat([frames[d] for d in history], ignore_index=True), settings
            )
        frame = frames[day]
        for name, value in _drift_measurements(frame, schema, stats).items():
            normal.setdefault(name, []).append(value)
        for factor in factors:
            js = _drift_measurements(frame.assign(load_mw=frame["load_mw"] * factor), schema, stats)
            shifted[factor].append(js.get("load_mw", float("nan")))
    print(
        f"{zone}: {len(test)} real days {test[0]} .. {test[-1]} against the {train_days} days before "
        f"(statistics refreshed every {refresh_every} days), {time.perf_counter() - t0:.0f} s"
    )
    print(f"  {'feature':16s} {'p50':>6s} {'p95':>6s} {'p99':>6s} {'max':>6s}  days above threshold")
    for name, values in sorted(normal.items(), key=lambda kv: -max(kv[1])):
        v = np.asarray(values)
        limit = tfdv_checks.DRIFT_THRESHOLDS.get(name)
        above = f"{int((v > limit).sum())} of {v.size} (> {limit})" if limit is not None else "-"
        print(
            f"  {name:16s} {np.percentile(v, 50):6.3f} {np.percentile(v, 95):6.3f} "
            f"{np.percentile(v, 99):6.3f} {v.max():6.3f}  {above}"
        )
        if limit is not None and (v > limit).any():
            flagged = [f"{d} ({x:.3f})" for d, x in zip(test, v, strict=True) if x > limit]
            print(f"  {'':16s} false alarms: {', '.join(flagged)}")
    thresholds = (0.75, 0.8, 0.85, 0.9)
    print("  load_mw scaled by a factor: share of days above each JS threshold")
    print(f"  {'':16s} " + " ".join(f"{t:>6.2f}" for t in thresholds))
    rows = {"as delivered": np.asarray(normal.get("load_mw", [np.nan]))}
    rows.update({f"x{f:g}": np.asarray(v) for f, v in shifted.items()})
    for label, v in rows.items():
        print(f"  {label:16s} " + " ".join(f"{(v > t).mean():6.1%}" for t in thresholds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument(
        "--calibrate-drift", action="store_true", help="Only print JS drift calibration figures."
    )
    parser.add_argument(
        "--train-days", type=int, default=365, help="--calibrate-drift: days behind the training statistics."
    )
    parser.add_argument(
        "--features-root",
        type=Path,
        help="--calibrate-drift on real feature days of this data root (e.g. a production_replay --keep store).",
    )
    parser.add_argument("--zone", default="DE_LU", help="--features-root: the zone to read.")
    parser.add_argument("--test-days", type=int, default=364, help="--features-root: last days to score.")
    parser.add_argument(
        "--refresh-every", type=int, default=28, help="--features-root: days between statistics refreshes."
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--day", default="2026-10-25", help="Delivery day for the GX run (default: a 25-hour day)."
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="dap-bench-"))
    os.environ["DAP_DATA_ROOT"] = str(tmp / "data")
    os.environ["DAP_MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    if args.calibrate_drift and args.features_root is not None:
        calibrate_drift_on_store(
            args.features_root,
            args.zone,
            train_days=args.train_days,
            test_days=args.test_days,
            refresh_every=args.refresh_every,
        )
        return
    if args.calibrate_drift:
        calibrate_drift(train_days=args.train_days)
        return

    from devtools.simulator.model import simulate_day
    from tasks.config import get_settings
    from tasks.quality.samples import feature_frame
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
