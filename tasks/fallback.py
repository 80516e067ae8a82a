"""Fallback forecast of D when a zone has no regular one, so a flagged schedule is still published.

``python -m tasks.fallback --delivery-date D --zone Z``

The daily DAG runs this after ``forecast`` whatever became of it (trigger rule
``all_done``). When ``forecasts/zone=Z/<D>.parquet`` holds a regular forecast
(made by the champion), it does nothing. Otherwise (the champion, the tracking
server or the day's data was unavailable and retries are spent) it writes a
forecast of D from the configured source, ``DAP_FALLBACK_SOURCE``:

A zone whose data failed a quality gate gets no fallback (exit 2): publish
refuses a gate-closed zone, and bad data must not reach a schedule.

* ``naive``: the price of D-1 at the same clock time (D-7 on Mondays, Saturdays and
  Sundays, the epftoolbox naive benchmark), read from D's feature file, with the
  volumes of D; the quantile spread around it is that of the newest regular
  forecast, if any (otherwise all quantiles equal the naive price);
* ``last_good_forecast``: the newest regular forecast of an earlier day, at most
  ``DAP_FALLBACK_MAX_AGE_DAYS`` old, by clock time; volumes from D's features
  where they exist.

The other source is tried when the configured one cannot be built (``naive``
needs D's features). The sidecar records ``fallback: {source, reason,
reference_day}``; the schedule carries it into its manifest and a ``fallback``
column, the publish result and the summary show it. ``none`` disables fallbacks.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, GateClosedError, MissingInputError
from tasks.schedule import price_columns
from tasks.storage import Layout, write_json_atomic, write_parquet_atomic
from tasks.timeutil import mtu_starts_utc

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

VOLUME_COLUMNS = ("load_mw", "wind_mw", "solar_mw")
#: Weekdays (Monday=0) whose naive price is a week old: the weekend and Monday follow no similar day.
WEEKLY_NAIVE_DAYS = (0, 5, 6)


@dataclass(frozen=True)
class Reference:
    """A regular forecast of an earlier day: its frame and day."""

    day: date
    frame: pd.DataFrame


def naive_price(features: pd.DataFrame, day: date) -> np.ndarray:
    """The epftoolbox naive forecast: D-7's price on Mon/Sat/Sun, D-1's otherwise (same clock time)."""
    column = "price_lag7" if day.weekday() in WEEKLY_NAIVE_DAYS else "price_lag1"
    return features[column].to_numpy(dtype=float)


def by_clock(frame: pd.DataFrame, column: str, grid: pd.DatetimeIndex, tz: str, mtu: int) -> np.ndarray:
    """A column of another day's frame at the clock times of ``grid`` (as the lag features are read)."""
    import pandas as pd

    from tasks.features import by_clock as lag_by_clock
    from tasks.features import wall_minutes

    return lag_by_clock(frame, column, tz, wall_minutes(pd.Series(grid), tz) // mtu * mtu, mtu)


def quantile_frame(
    grid: pd.DatetimeIndex, median: np.ndarray, spread: np.ndarray, settings: Settings
) -> pd.DataFrame:
    """Price quantiles = median + spread (per quantile), clipped to the limits and non-crossing."""
    import pandas as pd

    values = np.clip(median[:, None] + spread, settings.price_floor_eur_mwh, settings.price_cap_eur_mwh)
    values = np.maximum.accumulate(values, axis=1)
    out = pd.DataFrame({"timestamp_utc": grid, "resolution_minutes": settings.mtu_minutes})
    for i, column in enumerate(price_columns(settings.quantiles)):
        out[column] = values[:, i]
    return out


def reference_spread(reference: Reference | None, grid: pd.DatetimeIndex, settings: Settings) -> np.ndarray:
    """Each quantile's distance from the median in the reference forecast, by clock time (0 without one)."""
    from tasks.forecasting.metrics import median_index

    cols = price_columns(settings.quantiles)
    if reference is None:
        return np.zeros((len(grid), len(cols)))
    values = np.column_stack(
        [by_clock(reference.frame, c, grid, settings.market_timezone, settings.mtu_minutes) for c in cols]
    )
    return values - values[:, [median_index(settings.quantiles)]]


def from_naive(
    features: pd.DataFrame, day: date, reference: Reference | None, settings: Settings
) -> pd.DataFrame:
    """Naive prices of D with the reference forecast's spread, and D's volumes (pure)."""
    import pandas as pd

    grid = pd.DatetimeIndex(pd.to_datetime(features["timestamp_utc"], utc=True))
    median = naive_price(features, day)
    if not np.isfinite(median).all():
        raise MissingInputError(f"D's features lack the lagged prices of the naive forecast for {day}")
    out = quantile_frame(grid, median, reference_spread(reference, grid, settings), settings)
    for column in VOLUME_COLUMNS:
        out[column] = features[column].to_numpy(dtype=float)
    out["load_tso_mw"] = out["load_mw"]
    return out


def from_reference(
    reference: Reference, day: date, features: pd.DataFrame | None, settings: Settings
) -> pd.DataFrame:
    """The reference forecast moved onto D's grid by clock time; D's volumes where known (pure)."""
    import pandas as pd

    from tasks.forecasting.metrics import median_index

    grid = pd.DatetimeIndex(mtu_starts_utc(day, settings.market_timezone, settings.mtu_minutes))
    tz, mtu = settings.market_timezone, settings.mtu_minutes
    cols = price_columns(settings.quantiles)
    median = by_clock(reference.frame, cols[median_index(settings.quantiles)], grid, tz, mtu)
    out = quantile_frame(grid, median, reference_spread(reference, grid, settings), settings)
    for column in VOLUME_COLUMNS:
        if features is not None:
            out[column] = features[column].to_numpy(dtype=float)
        else:
            out[column] = by_clock(reference.frame, column, grid, tz, mtu)
    out["load_tso_mw"] = out["load_mw"]
    return out


def is_regular(sidecar: Path) -> bool:
    """A forecast sidecar written by the champion's forecast (not by a fallback)."""
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    return bool(meta) and not meta.get("fallback")


def last_good(layout: Layout, zone: str, day: date, max_age_days: int) -> Reference | None:
    """The newest regular forecast of the ``max_age_days`` days before D."""
    import pandas as pd

    for age in range(1, max_age_days + 1):
        path = layout.forecast_file(zone, day - timedelta(days=age))
        if path.exists() and is_regular(path.with_suffix(".json")):
            return Reference(day=day - timedelta(days=age), frame=pd.read_parquet(path))
    return None


def missing_reason(layout: Layout, zone: str, day: date) -> str:
    """Why D has no regular forecast, as far as the data root tells."""
    if not layout.features_file(zone, day).exists():
        return f"the day's data is unavailable: no features of {zone} for {day}"
    return f"the forecast stage failed for {zone} on {day} (champion or tracking server unavailable)"


def build(
    source: str, zone: str, day: date, settings: Settings
) -> tuple[pd.DataFrame, Reference | None] | None:
    """The fallback frame from one source, or None when that source cannot be built."""
    import pandas as pd

    layout = Layout(settings.data_root)
    reference = last_good(layout, zone, day, settings.fallback_max_age_days)
    features_path = layout.features_file(zone, day)
    features = pd.read_parquet(features_path) if features_path.exists() else None
    if source == "naive":
        if features is None or not {"price_lag1", "price_lag7"} <= set(features.columns):
            return None
        return from_naive(features, day, reference, settings), reference
    if reference is None:
        return None
    return from_reference(reference, day, features, settings), reference


def fallback(zone: str, day: date, settings: Settings | None = None) -> dict[str, Any]:
    """Write a flagged fallback forecast of D unless a regular one is there."""
    settings = settings or get_settings()
    if zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (settings.zones = {list(settings.zones)})")
    layout = Layout(settings.data_root)
    path = layout.forecast_file(zone, day)
    if path.exists() and is_regular(path.with_suffix(".json")):
        return {"fallback": False, "zone": zone, "path": str(path)}
    gate = layout.gate_file(zone, day)
    if gate.exists():
        raise GateClosedError(
            f"zone {zone} day {day.isoformat()} failed a quality gate ({gate}): no fallback is published "
            "over data that failed its checks; fix the inputs and re-run the day"
        )
    reason = missing_reason(layout, zone, day)
    if settings.fallback_source == "none":
        raise MissingInputError(f"{reason}; no fallback is published (DAP_FALLBACK_SOURCE=none)")
    order = [settings.fallback_source, *({"naive", "last_good_forecast"} - {settings.fallback_source})]
    for source in order:
        built = build(source, zone, day, settings)
        if built is None:
            continue
        frame, reference = built
        info = {
            "source": source,
            "reason": reason,
            "reference_day": reference.day.isoformat() if reference else None,
        }
        return _write(layout, zone, day, frame, info)
    raise MissingInputError(
        f"{reason}; no fallback either: D's features (naive) and a regular forecast of the last "
        f"{settings.fallback_max_age_days} days (last_good_forecast) are both missing"
    )


def _write(layout: Layout, zone: str, day: date, frame: pd.DataFrame, info: dict[str, Any]) -> dict[str, Any]:
    path = write_parquet_atomic(layout.forecast_file(zone, day), frame)
    sidecar: dict[str, Any] = {
        "zone": zone,
        "delivery_date": day.isoformat(),
        "model_name": None,
        "model_version": None,
        "run_id": None,
        "rows": len(frame),
        "load_source": "tso",
        "fallback": info,
        "inputs": [],
    }
    write_json_atomic(path.with_suffix(".json"), sidecar)
    log.warning("FALLBACK forecast of %s for %s from %s: %s", zone, day, info["source"], info["reason"])
    return {
        "fallback": True,
        "zone": zone,
        "path": str(path),
        **{f"fallback_{k}": v for k, v in info.items()},
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    return fallback(args.zone or settings.zones[0], day_arg(args), settings)


def parser() -> argparse.ArgumentParser:
    return base_parser("Write a flagged fallback forecast of D when the zone has no regular forecast.")


if __name__ == "__main__":
    exit_stage(run_stage(main, parser()))
