"""Stage ``tasks.realise``: what the published schedule of a past day earned, and how good its forecast was.

``python -m tasks.realise --delivery-date D --zone Z`` settles the published
schedule of D (``schedules/day=D/LATEST``) at the actual day-ahead prices of D
(``processed/day_ahead_prices/zone=Z/<D>.parquet``) and records:

* ``realised_profit_eur``: what the zone's storage earned at the actual prices
  (discharge minus charge, times price and MTU hours, minus degradation);
* ``perfect_foresight_profit_eur``: the same LP (tasks.optimise) on the actual
  prices, with the same assets and inflexible volume;
* ``capture_ratio`` = realised / perfect foresight (None when perfect foresight
  earns nothing);
* ``forecast_mae_eur_mwh`` (median forecast) and ``interval_coverage`` (share
  of actual prices inside the lowest-highest quantile band, P10-P90 by default).

The record is written atomically to ``<data_root>/realised/zone=Z/<D>.json``
(docs/output-contract.md), logged to MLflow on the run of the model version
that made the forecast (metric step = YYYYMMDD of D) and pushed as metrics
(tasks.metrics). A day without a published schedule or without complete
actual prices is skipped (``skipped: true`` and the reason), never settled as zero.

``--earliest-pending`` (the daily DAG): ``--delivery-date`` is the run's day and
the stage settles the earliest day of the ``--lookback-days`` before it that has
a published schedule, actual prices and no record yet; none: a skip.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError
from tasks.storage import Layout, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import Portfolio

log = logging.getLogger("tasks.realise")

#: Realised days before D whose mean the record carries (the "recent level" the alerts compare with).
RECENT_DAYS = 28
DEFAULT_LOOKBACK_DAYS = 7


def prices_file(layout: Layout, zone: str, day: date) -> Path:
    from tasks.datasets import PRICES

    return layout.processed_file(PRICES.name, zone, day)


def published_version(layout: Layout, day: date) -> Path | None:
    """The published version directory of D (through ``LATEST``), or None."""
    from tasks.publish import current_pointer

    day_dir = layout.schedule_dir(day)
    if not day_dir.is_dir():
        return None
    version = current_pointer(day_dir)
    return day_dir / version if version else None


def pending_day(layout: Layout, zone: str, run_day: date, lookback_days: int) -> date | None:
    """Earliest day in ``[run_day - lookback, run_day - 1]`` with a published schedule, prices and no record."""
    for back in range(lookback_days, 0, -1):
        day = run_day - timedelta(days=back)
        if layout.realised_file(zone, day).exists() or not prices_file(layout, zone, day).exists():
            continue
        if (layout.schedule_dir(day) / "LATEST").exists():
            return day
    return None


def actual_prices(frame: pd.DataFrame, starts: pd.DatetimeIndex) -> np.ndarray:
    """The clearing price of each MTU start (an hourly price covers its four 15-minute MTUs); NaN if none."""
    import pandas as pd

    stamps = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_utc"], utc=True))
    ends = stamps + pd.to_timedelta(frame["resolution_minutes"].astype(int), unit="min")
    values = frame["price_eur_mwh"].to_numpy(dtype=float)
    out = np.full(len(starts), np.nan)
    idx = stamps.searchsorted(starts, side="right") - 1
    ok = (idx >= 0) & (starts < ends[np.clip(idx, 0, None)])
    out[ok] = values[idx[ok]]
    return out


def settle(
    schedule: pd.DataFrame,
    actual: np.ndarray,
    portfolio: Portfolio,
    *,
    mtu_minutes: int,
    quantiles: list[float],
) -> dict[str, Any]:
    """Realised and perfect-foresight profit and forecast quality of one zone's rows (pure: no I/O)."""
    from tasks.optimise import Storage, optimise_zone

    h = mtu_minutes / 60.0
    rows = schedule.sort_values("mtu_index")
    port = rows[rows["asset_type"] == "portfolio"]
    assets = [Storage.from_asset(a) for a in portfolio.storage]
    realised = 0.0
    for asset in assets:
        own = rows[rows["asset"] == asset.name]
        charge, discharge = own["charge_mw"].to_numpy(float), own["discharge_mw"].to_numpy(float)
        realised += float(
            actual @ (discharge - charge) * h - asset.degradation_eur_per_mwh * discharge.sum() * h
        )
    inflexible = (port["retail_load_mw"] - port["renewables_mw"]).to_numpy(float)
    perfect = optimise_zone(actual[None, :], inflexible, assets, mtu_minutes).storage_margin_eur
    cols = [f"price_q{round(100 * q)}" for q in sorted(quantiles)]
    median = port["price_q50"].to_numpy(float)  # settings guarantee the median quantile
    low, high = port[cols[0]].to_numpy(float), port[cols[-1]].to_numpy(float)
    return {
        "realised_profit_eur": round(realised, 2),
        "perfect_foresight_profit_eur": round(perfect, 2),
        "capture_ratio": round(realised / perfect, 4) if perfect > 1e-6 else None,
        "forecast_mae_eur_mwh": round(float(np.mean(np.abs(median - actual))), 3),
        "interval_coverage": round(float(np.mean((actual >= low - 1e-9) & (actual <= high + 1e-9))), 4),
        "interval": f"{cols[0]}-{cols[-1]}",
        "realised_cost_eur": round(float(actual @ port["position_mw"].to_numpy(float) * h), 2),
        "mtus": len(actual),
    }


def recent_means(layout: Layout, zone: str, day: date, days: int = RECENT_DAYS) -> dict[str, float | None]:
    """Mean capture and forecast MAE of the realised records of the ``days`` days before D."""
    captures, maes = [], []
    for back in range(1, days + 1):
        path = layout.realised_file(zone, day - timedelta(days=back))
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        if record.get("capture_ratio") is not None:
            captures.append(float(record["capture_ratio"]))
        if record.get("forecast_mae_eur_mwh") is not None:
            maes.append(float(record["forecast_mae_eur_mwh"]))
    return {
        "capture_ratio_recent_mean": round(float(np.mean(captures)), 4) if captures else None,
        "forecast_mae_recent_mean_eur_mwh": round(float(np.mean(maes)), 3) if maes else None,
        "recent_days": len(maes),
    }


def skipped(day: date, zone: str, reason: str) -> dict[str, Any]:
    log.warning("realised value of %s %s skipped: %s", zone, day, reason)
    return {"skipped": True, "reason": reason, "delivery_date": day.isoformat(), "zone": zone}


def realise(day: date, zone: str, settings: Settings, *, log_mlflow: bool = True) -> dict[str, Any]:
    """Settle the published schedule of one zone and day; a skip when it cannot be settled."""
    import pandas as pd

    from tasks.timeutil import mtu_starts_utc

    layout = Layout(settings.data_root)
    version_dir = published_version(layout, day)
    if version_dir is None:
        return skipped(
            day, zone, f"no published schedule for {day} (no {layout.schedule_dir(day) / 'LATEST'})"
        )
    manifest = json.loads((version_dir / "manifest.json").read_text())
    if zone not in manifest.get("zones", []):
        return skipped(day, zone, f"the published schedule {version_dir} does not cover zone {zone}")
    path = prices_file(layout, zone, day)
    if not path.exists():
        return skipped(day, zone, f"actual prices of {day} have not landed ({path})")
    schedule = pd.read_parquet(version_dir / "schedule.parquet")
    schedule = schedule[schedule["zone"] == zone]
    mtu = int(schedule["resolution_minutes"].iloc[0])
    starts = pd.DatetimeIndex(mtu_starts_utc(day, settings.market_timezone, mtu))
    actual = actual_prices(pd.read_parquet(path), starts)
    missing = int(np.isnan(actual).sum())
    if missing:
        return skipped(
            day, zone, f"actual prices of {day} cover {len(actual) - missing} of {len(actual)} MTUs"
        )
    portfolio = settings.load_portfolio().for_zone(zone)
    scheduled = set(schedule.loc[schedule["asset_type"] == "storage", "asset"])
    if scheduled != {a.name for a in portfolio.storage}:
        return skipped(
            day,
            zone,
            f"storage assets of the schedule {sorted(scheduled)} differ from the portfolio's "
            f"{sorted(a.name for a in portfolio.storage)}; the perfect-foresight LP cannot be rebuilt",
        )
    figures = settle(schedule, actual, portfolio, mtu_minutes=mtu, quantiles=list(settings.quantiles))
    model = manifest.get("inputs", {}).get(zone, {})
    record = {
        "delivery_date": day.isoformat(),
        "zone": zone,
        "schedule_version": version_dir.name,
        "manifest_sha256": _sha(version_dir / "manifest.json"),
        "prices_file": str(path.relative_to(settings.data_root)),
        "expected_margin_eur": manifest.get("figures", {}).get(zone, {}).get("expected_margin_eur"),
        **figures,
        **recent_means(layout, zone, day),
        "model_name": model.get("model_name"),
        "model_version": model.get("model_version"),
        "model_run_id": model.get("run_id"),
    }
    # MLflow first: if its server is down the stage exits 75 with no record written, so the
    # retry (--earliest-pending) settles the same day again instead of skipping past it.
    logged = bool(log_mlflow and record["model_run_id"] and log_on_model_run(settings, record))
    target = write_json_atomic(layout.realised_file(zone, day), record)
    return {"skipped": False, "path": str(target), "mlflow_logged": logged, **record}


def _sha(path: Path) -> str:
    from tasks.storage import sha256_file

    return sha256_file(path)


MLFLOW_KEYS = (
    "realised_profit_eur",
    "perfect_foresight_profit_eur",
    "capture_ratio",
    "expected_margin_eur",
    "forecast_mae_eur_mwh",
    "interval_coverage",
)


def log_on_model_run(settings: Settings, record: dict[str, Any]) -> bool:
    """Log the figures on the run of the model version that made the forecast, step YYYYMMDD of D.

    The metric's timestamp is the start of D (not the clock), so a re-run logs the same point.
    """
    from tasks.registry import client, tracking_server
    from tasks.timeutil import day_bounds_utc

    day = date.fromisoformat(record["delivery_date"])
    step = int(day.strftime("%Y%m%d"))
    stamp = int(day_bounds_utc(day, settings.market_timezone)[0].timestamp() * 1000)
    with tracking_server(settings):
        mlflow_client = client(settings)
        for key in MLFLOW_KEYS:
            value = record.get(key)
            if value is not None:
                mlflow_client.log_metric(
                    record["model_run_id"],
                    f"realised_{key.removeprefix('realised_')}",
                    float(value),
                    stamp,
                    step,
                )
        if record.get("model_name") and record.get("model_version") is not None:
            mlflow_client.set_model_version_tag(
                record["model_name"],
                str(record["model_version"]),
                "realised_last_day",
                record["delivery_date"],
            )
    return True


def run_realise(
    day: date,
    settings: Settings,
    *,
    zone: str | None = None,
    earliest_pending: bool = False,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    log_mlflow: bool = True,
) -> dict[str, Any]:
    zone = zone or settings.zones[0]
    if zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (DAP_ZONES={list(settings.zones)})")
    if earliest_pending:
        pending = pending_day(Layout(settings.data_root), zone, day, lookback_days)
        if pending is None:
            result = skipped(
                day,
                zone,
                f"no day in the {lookback_days} days before {day} has a published schedule, "
                "actual prices and no realised record",
            )
            result["delivery_date"] = None
            return result
        day = pending
    return realise(day, zone, settings, log_mlflow=log_mlflow)


def main(args: argparse.Namespace) -> dict[str, Any]:
    return run_realise(
        day_arg(args),
        get_settings(),
        zone=args.zone,
        earliest_pending=args.earliest_pending,
        lookback_days=args.lookback_days,
        log_mlflow=not args.no_mlflow,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(
        "Settle a published schedule at the actual prices: realised value and forecast quality."
    )
    parser.add_argument(
        "--earliest-pending",
        action="store_true",
        help="--delivery-date is the run's day: settle the earliest unsettled day before it (the daily DAG).",
    )
    parser.add_argument(
        "--lookback-days",
        type=int,
        default=DEFAULT_LOOKBACK_DAYS,
        help=f"Days before --delivery-date searched by --earliest-pending (default {DEFAULT_LOOKBACK_DAYS}).",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="Do not log the figures to MLflow.")
    return parser


if __name__ == "__main__":
    exit_stage(run_stage(main, build_parser()))
