"""GX input gate on simulator days: one good day and the classic bad days.

Each bad day must fail with exactly the expectations that describe it, so a
suite that stops checking something (or starts flagging good data) fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from devtools.simulator.model import simulate_day
from tasks.errors import GateClosedError, ValidationFailed
from tasks.quality.gx_runner import GxRunner
from tasks.storage import Layout, write_parquet_atomic
from tasks.validate import input_days, run_gate, validate_inputs

if TYPE_CHECKING:
    from tasks.config import Settings

pytestmark = pytest.mark.integration

ZONE = "DE_LU"
TZ = "Europe/Berlin"
DAY = date(2026, 6, 10)
FALL_BACK = date(2026, 10, 25)  # 25-hour day


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> GxRunner:
    """One GX file context for the module: building one costs seconds."""
    return GxRunner(tmp_path_factory.mktemp("gx"))


def inputs_of(day: date) -> dict[tuple[str, date], pd.DataFrame]:
    frames: dict[tuple[str, date], pd.DataFrame] = {}
    for name, data_day in input_days(day).items():
        frames[(name, data_day)] = simulate_day(ZONE, data_day, seed=11, tz=TZ, mtu_minutes=15)[name]
    return frames


def failed_names(
    settings: Settings,
    runner: GxRunner,
    day: date,
    change: Callable[[dict[tuple[str, date], pd.DataFrame]], None] | None = None,
) -> set[str]:
    frames = inputs_of(day)
    if change:
        change(frames)
    result = validate_inputs(ZONE, day, settings, runner, read=lambda name, d: frames.get((name, d)))
    return {c.name for c in result.failed}


def test_good_days_pass_including_dst_days(settings: Settings, runner: GxRunner) -> None:
    for day in (DAY, date(2026, 3, 29), FALL_BACK):
        frames = inputs_of(day)
        result = validate_inputs(ZONE, day, settings, runner, read=lambda n, d: frames.get((n, d)))  # noqa: B023
        assert result.passed, [(c.name, c.observed, c.sample) for c in result.failed]
        assert not result.warnings, [c.name for c in result.warnings]
        assert {s.suite for s in result.suites} == set(input_days(day))


def _prices(day: date) -> tuple[str, date]:
    return ("day_ahead_prices", day - timedelta(days=1))


def _load(day: date) -> tuple[str, date]:
    return ("load_forecast", day)


def test_missing_hour(settings: Settings, runner: GxRunner) -> None:
    def drop_hour(frames: dict[tuple[str, date], pd.DataFrame]) -> None:
        frame = frames[_prices(DAY)]
        frames[_prices(DAY)] = frame.drop(index=frame.index[40:44])

    assert failed_names(settings, runner, DAY, drop_hour) == {
        "day_ahead_prices.row_count_per_mtu",
        "day_ahead_prices.timestamps_contiguous",
    }


def test_duplicate_timestamp(settings: Settings, runner: GxRunner) -> None:
    def duplicate(frames: dict[tuple[str, date], pd.DataFrame]) -> None:
        frame = frames[_load(DAY)]
        frames[_load(DAY)] = pd.concat([frame, frame.iloc[[7]]]).sort_values("timestamp_utc")

    assert failed_names(settings, runner, DAY, duplicate) == {
        "load_forecast.row_count_per_mtu",
        "load_forecast.timestamps_unique",
        "load_forecast.timestamps_contiguous",
    }


def test_25_hour_day_counted_as_24(settings: Settings, runner: GxRunner) -> None:
    """A source that ignores DST delivers 24 hourly values for the 25-hour day."""

    def twenty_four(frames: dict[tuple[str, date], pd.DataFrame]) -> None:
        hourly = frames[_load(FALL_BACK)].set_index("timestamp_utc")["load_mw"].resample("60min").mean()
        frames[_load(FALL_BACK)] = pd.DataFrame(
            {"timestamp_utc": hourly.index[:24], "resolution_minutes": 60, "load_mw": hourly.to_numpy()[:24]}
        )

    assert failed_names(settings, runner, FALL_BACK, twenty_four) == {"load_forecast.row_count_per_mtu"}


def test_price_spike_beyond_sdac_cap(settings: Settings, runner: GxRunner) -> None:
    def spike(frames: dict[tuple[str, date], pd.DataFrame]) -> None:
        frames[_prices(DAY)].loc[50, "price_eur_mwh"] = 4500.0

    assert failed_names(settings, runner, DAY, spike) == {"day_ahead_prices.price_within_sdac_limits"}


def test_negative_load(settings: Settings, runner: GxRunner) -> None:
    def negative(frames: dict[tuple[str, date], pd.DataFrame]) -> None:
        frames[_load(DAY)].loc[[3, 4], "load_mw"] = -120.0

    assert failed_names(settings, runner, DAY, negative) == {"load_forecast.load_mw.non_negative"}


def test_naive_timestamps_wind_above_capacity_and_missing_file(settings: Settings, runner: GxRunner) -> None:
    def several(frames: dict[tuple[str, date], pd.DataFrame]) -> None:
        key = ("renewables_forecast", DAY)
        frames[key]["timestamp_utc"] = frames[key]["timestamp_utc"].dt.tz_localize(None)
        frames[key].loc[10, "wind_mw"] = 250_000.0  # kW delivered as MW
        del frames[_load(DAY)]

    assert failed_names(settings, runner, DAY, several) == {
        "renewables_forecast.timestamp_is_utc",
        "renewables_forecast.wind_mw.below_capacity",
        "load_forecast.file_present",
    }


def test_weather_in_kelvin_and_meter_in_kilowatts(settings: Settings, runner: GxRunner) -> None:
    def units(frames: dict[tuple[str, date], pd.DataFrame]) -> None:
        weather = frames[("weather_forecast", DAY)]
        weather["temperature_c"] = weather["temperature_c"] + 273.15
        meters = frames[("meter_readings", DAY - timedelta(days=2))]
        meters.loc[meters.index[:3], "power_mw"] = meters.loc[meters.index[:3], "power_mw"] * 1000 + 1000

    assert failed_names(settings, runner, DAY, units) == {
        "weather_forecast.temperature_c.plausible",
        "meter_readings.power_mw.within_connection",
    }


def write_inputs(layout: Layout, frames: dict[tuple[str, date], pd.DataFrame]) -> None:
    for (name, data_day), frame in frames.items():
        write_parquet_atomic(layout.processed_file(name, ZONE, data_day), frame)


def test_cli_gate_fails_quarantines_and_recovers(
    settings: Settings, runner: GxRunner, data_root: Path
) -> None:
    """The stage: bad day -> exit 2 message + marker + report; fixed day -> marker gone."""
    from tasks import features

    layout = Layout(data_root)
    frames = inputs_of(DAY)
    frames[_prices(DAY)].loc[50, "price_eur_mwh"] = 4500.0
    write_inputs(layout, frames)
    with pytest.raises(ValidationFailed) as err:
        run_gate("inputs", ZONE, DAY, settings, runner=runner)
    message = str(err.value)
    assert "gate 'inputs' failed for zone DE_LU delivery day 2026-06-10" in message
    assert "day_ahead_prices.price_within_sdac_limits" in message
    assert "4500.0" in message  # sample row
    assert "python -m tasks.ingest --delivery-date 2026-06-10 --zone DE_LU" in message
    report = Path(err.value.report)
    assert json.loads(report.read_text())["passed"] is False
    assert report.parent == layout.reports_dir("gx", DAY) / "zone=DE_LU"
    docs = Path(json.loads(report.read_text())["data_docs"].removeprefix("file://"))
    assert docs.name == "index.html"
    assert docs.exists()
    marker = json.loads(layout.gate_file(ZONE, DAY).read_text())
    assert marker["datasets"]["inputs"]["failed_expectations"][0]["name"] == (
        "day_ahead_prices.price_within_sdac_limits"
    )
    # Quarantine: nothing is built on the day.
    with pytest.raises(GateClosedError):
        features.build_features(ZONE, DAY, settings)

    frames[_prices(DAY)].loc[50, "price_eur_mwh"] = 80.0
    write_inputs(layout, frames)
    result = run_gate("inputs", ZONE, DAY, settings, runner=runner)
    assert result["passed"] is True
    assert result["failed_expectations"] == []
    assert not layout.gate_file(ZONE, DAY).exists()


def test_severity_override_turns_a_failure_into_a_warning(
    data_root: Path, runner: GxRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.config import get_settings

    monkeypatch.setenv("DAP_QUALITY_SEVERITY", '{"load_forecast.load_mw.*": "warn"}')
    get_settings.cache_clear()
    settings = get_settings()
    frames = inputs_of(DAY)
    frames[_load(DAY)].loc[3, "load_mw"] = -1.0
    write_inputs(Layout(data_root), frames)
    result = run_gate("inputs", ZONE, DAY, settings, runner=runner)
    assert result["passed"] is True
    assert result["warnings"] == ["load_forecast.load_mw.non_negative"]


def test_stage_cli_reports_result(
    settings: Settings, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m tasks.validate`` contract: exit 0 + result file on pass, exit 2 on a failed gate."""
    from tasks import validate
    from tasks.cli import run_stage

    layout = Layout(data_root)
    frames = inputs_of(DAY)
    write_inputs(layout, frames)
    result_file = tmp_path / "result.json"
    monkeypatch.setenv("DAP_RESULT_FILE", str(result_file))
    argv = ["--delivery-date", DAY.isoformat(), "--zone", ZONE, "--dataset", "inputs"]
    assert run_stage(validate.main, validate.parser(), argv) == 0
    result = json.loads(result_file.read_text())
    assert result["passed"] is True
    assert Path(result["report"]).exists()
    frames[_load(DAY)].loc[0, "load_mw"] = -5.0
    write_inputs(layout, frames)
    assert run_stage(validate.main, validate.parser(), argv) == 2
    assert layout.gate_file(ZONE, DAY).exists()
