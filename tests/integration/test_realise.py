"""Realised value: a published schedule settled at actual prices, logged to MLflow on the forecasting model."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import Settings, get_settings
from tasks.datasets import PRICES
from tasks.ingest import write_processed
from tasks.publish import publish
from tasks.realise import pending_day, run_realise
from tasks.schedule import run_schedule
from tasks.storage import Layout
from tasks.timeutil import mtu_starts_utc
from tests.integration.test_schedule import gate_passed, write_forecast

pytestmark = pytest.mark.integration
ZONE = "DE_LU"
DAY = date(2026, 3, 29)  # a 23-hour DST day: 92 quarter-hours, 23 hourly prices


@pytest.fixture
def env(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DAP_ZONES", ZONE)
    get_settings.cache_clear()
    return get_settings()


def model_run(settings: Settings) -> tuple[str, str, str]:
    """A registered model version with its run in the test's MLflow store."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    experiment = client.create_experiment("day_ahead_price_models", artifact_location=settings.artifact_root)
    run = client.create_run(experiment)
    client.create_registered_model("day_ahead_price_DE_LU")
    version = client.create_model_version("day_ahead_price_DE_LU", run.info.artifact_uri, run.info.run_id)
    return "day_ahead_price_DE_LU", str(version.version), run.info.run_id


def publish_day(settings: Settings, day: date, model: tuple[str, str, str] | None = None) -> Path:
    forecast = write_forecast(settings, ZONE, day, seed=day.toordinal())
    if model is not None:
        name, version, run_id = model
        forecast.with_suffix(".json").write_text(
            json.dumps({"model_name": name, "model_version": int(version), "run_id": run_id})
        )
    result = run_schedule(day, settings, log_mlflow=False)
    gate_passed(settings, day)
    publish(day, settings)
    return Path(result["version_dir"])


def land_prices(settings: Settings, day: date, *, drop_last: bool = False) -> np.ndarray:
    """Hourly actual prices of D as ingest writes them (the schedule runs on 15-minute MTUs)."""
    starts = mtu_starts_utc(day, settings.market_timezone, 60)
    rng = np.random.default_rng(day.toordinal())
    x = np.arange(len(starts)) / len(starts)
    prices = 55 + 40 * np.sin(4 * np.pi * x + 0.3) + rng.normal(0, 8, len(starts))
    frame = pd.DataFrame(
        {"timestamp_utc": pd.DatetimeIndex(starts), "resolution_minutes": 60, "price_eur_mwh": prices}
    )
    if drop_last:
        frame = frame.iloc[:-1]
    write_processed(Layout(settings.data_root).processed_file(PRICES.name, ZONE, day), frame)
    return np.repeat(prices, 4)


def test_settles_the_published_schedule_and_logs_on_the_model_run(env: Settings) -> None:
    from mlflow import MlflowClient

    model = model_run(env)
    version_dir = publish_day(env, DAY, model)
    actual = land_prices(env, DAY)

    result = run_realise(DAY, env, zone=ZONE)

    assert result["skipped"] is False
    path = Layout(env.data_root).realised_file(ZONE, DAY)
    assert Path(result["path"]) == path == env.data_root / "realised" / "zone=DE_LU" / "2026-03-29.json"
    record = json.loads(path.read_text())
    assert record["schedule_version"] == version_dir.name
    assert record["mtus"] == 92
    # Recompute the realised storage profit from the schedule rows, independently.
    rows = pd.read_parquet(version_dir / "schedule.parquet")
    bess = rows[rows["asset"] == "de-bess-1"].sort_values("mtu_index")
    net = bess["discharge_mw"].to_numpy() - bess["charge_mw"].to_numpy()
    expected = actual @ net * 0.25 - 2.0 * bess["discharge_mw"].sum() * 0.25  # degradation 2 EUR/MWh
    assert record["realised_profit_eur"] == pytest.approx(expected, abs=0.01)
    # Perfect foresight is the optimum on the actual prices: no schedule beats it.
    assert record["perfect_foresight_profit_eur"] >= record["realised_profit_eur"] - 1e-6
    assert record["perfect_foresight_profit_eur"] > 0
    assert record["capture_ratio"] == pytest.approx(
        record["realised_profit_eur"] / record["perfect_foresight_profit_eur"], abs=1e-4
    )
    port = rows[rows["asset_type"] == "portfolio"].sort_values("mtu_index")
    assert record["forecast_mae_eur_mwh"] == pytest.approx(
        np.mean(np.abs(port["price_q50"] - actual)), abs=1e-3
    )
    inside = (actual >= port["price_q10"].to_numpy()) & (actual <= port["price_q90"].to_numpy())
    assert record["interval_coverage"] == pytest.approx(inside.mean(), abs=1e-4)
    assert record["interval"] == "price_q10-price_q90"
    assert record["model_run_id"] == model[2]
    # Logged on the model's own run, step = the delivery day.
    client = MlflowClient(env.tracking_uri)
    history = client.get_metric_history(model[2], "realised_capture_ratio")
    assert [(m.step, round(m.value, 4)) for m in history] == [(20260329, record["capture_ratio"])]
    assert client.get_model_version(model[0], model[1]).tags["realised_last_day"] == "2026-03-29"

    # The next day's record carries the mean of the days before it (the alerts' "recent level").
    publish_day(env, DAY + timedelta(days=1))
    land_prices(env, DAY + timedelta(days=1))
    nxt = run_realise(DAY + timedelta(days=1), env, zone=ZONE, log_mlflow=False)
    assert nxt["capture_ratio_recent_mean"] == record["capture_ratio"]
    assert nxt["recent_days"] == 1


def test_missing_inputs_are_skips_never_zeros(env: Settings) -> None:
    nothing = run_realise(DAY, env, zone=ZONE, log_mlflow=False)
    assert nothing["skipped"] is True
    assert "no published schedule" in nothing["reason"]
    assert "realised_profit_eur" not in nothing

    publish_day(env, DAY)
    no_prices = run_realise(DAY, env, zone=ZONE, log_mlflow=False)
    assert no_prices["skipped"] is True
    assert "have not landed" in no_prices["reason"]

    land_prices(env, DAY, drop_last=True)
    partial = run_realise(DAY, env, zone=ZONE, log_mlflow=False)
    assert partial["skipped"] is True
    assert "cover 88 of 92 MTUs" in partial["reason"]
    assert not Layout(env.data_root).realised_file(ZONE, DAY).exists()


def test_earliest_pending_day_is_settled_first(env: Settings) -> None:
    layout = Layout(env.data_root)
    first, second = DAY, DAY + timedelta(days=1)
    for day in (first, second):
        publish_day(env, day)
        land_prices(env, day)
    run_day = second + timedelta(days=2)
    assert pending_day(layout, ZONE, run_day, 7) == first
    assert (
        run_realise(run_day, env, zone=ZONE, earliest_pending=True, log_mlflow=False)["delivery_date"]
        == "2026-03-29"
    )
    assert (
        run_realise(run_day, env, zone=ZONE, earliest_pending=True, log_mlflow=False)["delivery_date"]
        == "2026-03-30"
    )
    done = run_realise(run_day, env, zone=ZONE, earliest_pending=True, log_mlflow=False)
    assert done["skipped"] is True
    assert "no day in the 7 days before" in done["reason"]
