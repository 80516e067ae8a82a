"""Fallback forecasts and schedules: built when a zone has no regular forecast, flagged everywhere."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from tasks.config import Settings, get_settings
from tasks.errors import GateClosedError, MissingInputError
from tasks.fallback import by_clock, fallback, naive_price
from tasks.quality.gate import record_schedule_validation
from tasks.schedule import run_schedule
from tasks.storage import Layout
from tasks.timeutil import mtu_starts_utc
from tests.integration.test_schedule import env, write_forecast  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 29)  # a Sunday and the 23-hour spring DST day in Europe/Berlin


def write_features(settings: Settings, zone: str, day: date) -> pd.DataFrame:
    starts = pd.DatetimeIndex(mtu_starts_utc(day, settings.market_timezone, settings.mtu_minutes))
    n = len(starts)
    frame = pd.DataFrame(
        {
            "timestamp_utc": starts,
            "resolution_minutes": settings.mtu_minutes,
            "price_lag1": np.full(n, 41.0),
            "price_lag7": np.linspace(10.0, 90.0, n),
            "load_mw": np.full(n, 50_000.0),
            "wind_mw": np.full(n, 9_000.0),
            "solar_mw": np.full(n, 3_000.0),
        }
    )
    path = Layout(settings.data_root).features_file(zone, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return frame


def test_naive_price_is_a_week_old_on_weekends_and_mondays() -> None:
    features = pd.DataFrame({"price_lag1": [1.0, 2.0], "price_lag7": [7.0, 8.0]})
    assert naive_price(features, date(2026, 3, 29)).tolist() == [7.0, 8.0]  # Sunday
    assert naive_price(features, date(2026, 3, 30)).tolist() == [7.0, 8.0]  # Monday
    assert naive_price(features, date(2026, 3, 31)).tolist() == [1.0, 2.0]  # Tuesday


def test_by_clock_moves_a_25_hour_day_onto_a_23_hour_grid() -> None:
    tz = "Europe/Berlin"
    autumn = pd.DatetimeIndex(mtu_starts_utc(date(2026, 10, 25), tz, 60))
    spring = pd.DatetimeIndex(mtu_starts_utc(date(2026, 3, 29), tz, 60))
    local_hour = autumn.tz_convert(tz).hour.to_numpy(dtype=float)
    frame = pd.DataFrame({"timestamp_utc": autumn, "v": local_hour})
    out = by_clock(frame, "v", spring, tz, 60)
    assert len(autumn) == 25
    assert len(out) == len(spring) == 23
    assert out.tolist() == spring.tz_convert(tz).hour.to_numpy(dtype=float).tolist()


def test_naive_fallback_is_written_flagged_and_scheduled(env: Settings) -> None:  # noqa: F811
    write_features(env, "DE_LU", DAY)
    write_forecast(env, "BE", DAY)  # BE's regular forecast is there
    write_forecast(env, "DE_LU", DAY - timedelta(days=2), seed=3)  # the spread comes from it
    result = fallback("DE_LU", DAY, env)
    assert result["fallback"] is True
    assert result["fallback_source"] == "naive"
    assert result["fallback_reference_day"] == (DAY - timedelta(days=2)).isoformat()
    path = Layout(env.data_root).forecast_file("DE_LU", DAY)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["fallback"]["source"] == "naive"
    assert meta["model_version"] is None
    assert "forecast stage failed" in meta["fallback"]["reason"]
    frame = pd.read_parquet(path)
    assert len(frame) == 92  # the 23-hour day in 15-minute MTUs
    assert np.allclose(frame["price_q50"], np.linspace(10.0, 90.0, 92))  # Sunday: D-7's prices
    assert (frame["price_q90"] >= frame["price_q50"]).all()
    assert (frame["price_q90"] > frame["price_q10"]).any()
    assert fallback("BE", DAY, env)["fallback"] is False  # a regular forecast is left alone

    schedule = run_schedule(DAY, env, log_mlflow=False)
    manifest = json.loads(
        (Layout(env.data_root).schedule_dir(DAY) / schedule["version"] / "manifest.json").read_text()
    )
    assert manifest["fallback"]["source"] == "naive"
    assert set(manifest["fallback"]["zones"]) == {"DE_LU"}
    assert manifest["inputs"]["BE"]["fallback"] is None
    rows = pd.read_parquet(schedule["schedule"])
    assert rows.groupby("zone")["fallback"].agg(set).to_dict() == {"DE_LU": {True}, "BE": {False}}
    assert schedule["fallback"]["reason"].startswith("DE_LU: ")

    from tasks.publish import publish

    version_dir = Layout(env.data_root).schedule_dir(DAY) / schedule["version"]
    for zone in env.zones:
        record_schedule_validation(Layout(env.data_root), zone, DAY, version_dir, passed=True)
    assert publish(DAY, env)["fallback"]["source"] == "naive"


def test_last_good_forecast_when_the_days_data_is_missing(env: Settings) -> None:  # noqa: F811
    ref = write_forecast(env, "DE_LU", DAY - timedelta(days=1))
    result = fallback("DE_LU", DAY, env)  # no features of D: naive cannot be built
    assert result["fallback_source"] == "last_good_forecast"
    assert "no features" in result["fallback_reason"]
    frame = pd.read_parquet(Layout(env.data_root).forecast_file("DE_LU", DAY))
    reference = pd.read_parquet(ref)
    assert len(frame) == 92
    assert len(reference) == 96
    # 00:00-01:45 local are the first 8 MTUs of both days.
    assert np.allclose(frame["price_q50"].iloc[:8], reference["price_q50"].iloc[:8])


def test_no_fallback_over_a_failed_gate_or_when_disabled_or_impossible(
    env: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(MissingInputError, match="both missing"):
        fallback("DE_LU", DAY, env)
    write_features(env, "DE_LU", DAY)
    monkeypatch.setenv("DAP_FALLBACK_SOURCE", "none")
    get_settings.cache_clear()
    with pytest.raises(MissingInputError, match="DAP_FALLBACK_SOURCE=none"):
        fallback("DE_LU", DAY, get_settings())
    gate = Layout(env.data_root).gate_file("DE_LU", DAY)
    gate.parent.mkdir(parents=True, exist_ok=True)
    gate.write_text("{}")
    with pytest.raises(GateClosedError, match="no fallback"):
        fallback("DE_LU", DAY, env)
