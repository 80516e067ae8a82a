"""A small data root with published schedules, without training a model: for the desk API and notebook.

``python -m devtools.sample_schedules --data-root DIR --first D [--days N] [--zones DE_LU,BE]``
writes a synthetic forecast per zone and day (a daily price shape with a few negative
hours, P10/P50/P90, load, wind and solar) with its sidecar, runs the real schedule
stage (``tasks.schedule.run_schedule``, HiGHS LP, summaries) on it, records each
version as validated and publishes it (``tasks.publish``). The schedule gate itself
(GX) is **not** run: the versions are marked validated so that publish accepts them;
use the daily pipeline (``make demo``) for the gated path. Seconds per day.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from tasks.config import Settings
from tasks.publish import publish
from tasks.quality.gate import record_schedule_validation
from tasks.schedule import run_schedule
from tasks.storage import Layout
from tasks.timeutil import mtu_starts_utc, parse_day


@dataclass(frozen=True)
class SampleDay:
    day: date
    version_dir: Path
    published: str


def write_forecast(
    settings: Settings,
    zone: str,
    day: date,
    *,
    seed: int = 0,
    model_version: str = "1",
    run_id: str | None = None,
) -> Path:
    """A synthetic but well-formed forecast of ``zone`` on ``day`` (every MTU of the DST-aware grid)."""
    import pandas as pd

    starts = mtu_starts_utc(day, settings.market_timezone, settings.mtu_minutes)
    n = len(starts)
    rng = np.random.default_rng(seed)
    x = np.arange(n) / n
    p50 = 60 + 35 * np.sin(4 * np.pi * x) + rng.normal(0, 5, n)
    p50[: n // 12] = -30.0  # a few negative hours
    frame = pd.DataFrame(
        {
            "timestamp_utc": pd.DatetimeIndex(starts),
            "resolution_minutes": settings.mtu_minutes,
            "price_q10": p50 - 12,
            "price_q50": p50,
            "price_q90": p50 + 18,
            "load_mw": 50_000 + 8_000 * np.sin(2 * np.pi * x),
            "wind_mw": rng.uniform(2_000, 20_000, n),
            "solar_mw": np.clip(25_000 * np.sin(2 * np.pi * (x - 0.25)), 0, None),
        }
    )
    path = Layout(settings.data_root).forecast_file(zone, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    sidecar = {
        "model_name": f"day_ahead_price_{zone}",
        "model_version": model_version,
        "run_id": run_id or f"sample{seed:04d}",
        "quantiles": list(settings.quantiles),
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def publish_day(settings: Settings, day: date, *, seed: int = 0) -> SampleDay:
    """Forecasts, schedule, validation record and publish of one day; returns the published version."""
    for k, zone in enumerate(settings.zones):
        write_forecast(settings, zone, day, seed=seed * 10 + k)
    result = run_schedule(day, settings, log_mlflow=False)
    version_dir = Path(result["version_dir"])
    layout = Layout(settings.data_root)
    for zone in settings.zones:
        record_schedule_validation(layout, zone, day, version_dir, passed=True)
    published = publish(day, settings)
    return SampleDay(day, version_dir, str(published["version"]))


def build(settings: Settings, first: date, days: int) -> list[SampleDay]:
    return [publish_day(settings, first + timedelta(days=i), seed=i) for i in range(days)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--first", type=parse_day, required=True, help="First delivery day (YYYY-MM-DD).")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--zones", default="DE_LU", help="Comma-separated zones (in the portfolio).")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"data_root": args.data_root, "zones": args.zones}
    settings = Settings(**overrides)
    for sample in build(settings, args.first, args.days):
        print(f"{sample.day} published {sample.published} ({sample.version_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
