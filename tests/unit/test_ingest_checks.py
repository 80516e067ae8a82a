"""Content checks of parsed frames: each finding has its reason, severity and one-line message."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from tasks.ingest import name_hint, normalise_frame
from tasks.ingest_checks import (
    REASONS,
    check_document,
    check_stale,
    required_inputs,
    severity_of,
)
from tasks.sources import PARSE_ERROR_CODES
from tasks.timeutil import mtu_starts_utc

pytestmark = pytest.mark.unit

TZ = "Europe/Berlin"
LIMITS = {"price_floor": -500.0, "price_cap": 4000.0}


def _frame(day: date, minutes: int, column: str = "price_eur_mwh", value: float = 80.0) -> pd.DataFrame:
    starts = pd.DatetimeIndex(mtu_starts_utc(day, TZ, minutes))
    return pd.DataFrame({"timestamp_utc": starts, "resolution_minutes": minutes, column: value})


def _check(
    frame: pd.DataFrame, day: date, minutes: int, dataset: str = "day_ahead_prices", unit: str = "EUR/MWh"
):
    return check_document(frame, dataset=dataset, unit=unit, resolution=minutes, day=day, tz=TZ, **LIMITS)


@pytest.mark.parametrize(
    ("day", "minutes"),
    [
        (date(2026, 6, 10), 15),
        (date(2026, 6, 10), 60),
        (date(2026, 3, 29), 15),
        (date(2026, 3, 29), 60),
        (date(2026, 10, 25), 15),
        (date(2026, 10, 25), 60),
    ],
)
def test_complete_days_pass(day: date, minutes: int) -> None:
    assert _check(_frame(day, minutes), day, minutes) == []


def test_every_reason_has_a_severity_and_every_parser_code_is_known() -> None:
    assert set(PARSE_ERROR_CODES) <= set(REASONS)
    assert {sev for sev, _ in REASONS.values()} == {"error", "warning"}
    assert severity_of("stale") == "warning"
    assert severity_of("price_out_of_bounds") == "error"
    assert severity_of("something_new") == "error"  # unknown reasons fail safe


def test_duplicate_interval() -> None:
    day = date(2026, 6, 10)
    frame = _frame(day, 15)
    issues = _check(pd.concat([frame, frame.iloc[[5]]]), day, 15)
    assert [i.reason for i in issues] == ["duplicate_intervals"]
    assert "01:15" in issues[0].message


def test_missing_intervals() -> None:
    day = date(2026, 6, 10)
    issues = _check(_frame(day, 60).drop(index=[3, 4]), day, 60)
    assert [i.reason for i in issues] == ["missing_intervals"]
    assert (
        issues[0].message
        == "day_ahead_prices 2026-06-10: 2 of 24 intervals missing, first 2026-06-10T03:00+02:00"
    )


@pytest.mark.parametrize(
    ("day", "expected_text"),
    [
        (date(2026, 10, 25), "is a 25-hour day: got 24 intervals, expected 25"),
        (date(2026, 3, 29), "is a 23-hour day: got 24 intervals, expected 23"),
    ],
)
def test_dst_day_with_a_24_hour_count(day: date, expected_text: str) -> None:
    # A sender that ignores DST: 24 hourly values from local midnight, one hour apart.
    start = pd.Timestamp(day.isoformat(), tz=TZ).tz_convert("UTC")
    frame = pd.DataFrame(
        {
            "timestamp_utc": pd.date_range(start, periods=24, freq="60min"),
            "resolution_minutes": 60,
            "price_eur_mwh": 50.0,
        }
    )
    issues = _check(frame, day, 60)
    assert [i.reason for i in issues] == ["dst_interval_count"]
    assert expected_text in issues[0].message


def test_off_grid_interval() -> None:
    day = date(2026, 6, 10)
    frame = _frame(day, 60)
    shifted = frame["timestamp_utc"].copy()
    shifted.iloc[5] = shifted.iloc[5] + pd.Timedelta(minutes=30)
    frame["timestamp_utc"] = shifted
    reasons = {i.reason for i in _check(frame, day, 60)}
    assert reasons == {"missing_intervals", "unexpected_intervals"}


@pytest.mark.parametrize(("price", "ok"), [(-500.0, True), (4000.0, True), (-500.01, False), (4000.5, False)])
def test_sdac_price_limits(price: float, ok: bool) -> None:
    day = date(2026, 6, 10)
    frame = _frame(day, 15)
    frame.loc[10, "price_eur_mwh"] = price
    issues = _check(frame, day, 15)
    assert (issues == []) is ok
    if not ok:
        assert issues[0].reason == "price_out_of_bounds"
        assert "[-500, 4000]" in issues[0].message


@pytest.mark.parametrize(
    ("dataset", "unit", "ok"),
    [
        ("load_forecast", "MW", True),
        ("load_forecast", "GW", False),
        ("day_ahead_prices", "EUR", False),
        ("day_ahead_prices", "EUR/MWh", True),
        ("weather_forecast", "degC,m/s,W/m2", True),
        ("weather_forecast", "degC", False),
    ],
)
def test_units(dataset: str, unit: str, ok: bool) -> None:
    day = date(2026, 6, 10)
    if dataset == "weather_forecast":
        frame = _frame(day, 60, "temperature_c").assign(wind_speed_ms=3.0, ghi_w_m2=0.0, location="berlin")
    else:
        frame = _frame(day, 15, "load_mw" if dataset == "load_forecast" else "price_eur_mwh")
    reasons = [
        i.reason for i in _check(frame, day, 60 if dataset == "weather_forecast" else 15, dataset, unit)
    ]
    assert (reasons == []) is ok
    if not ok:
        assert reasons == ["unit_mismatch"]


def test_nan_values_and_unsupported_resolution() -> None:
    day = date(2026, 6, 10)
    frame = _frame(day, 15)
    frame.loc[3, "price_eur_mwh"] = np.nan
    assert [i.reason for i in _check(frame, day, 15)] == ["missing_values"]
    assert [i.reason for i in _check(frame, day, 30)] == ["unsupported_resolution"]


def test_gaps_are_judged_per_location() -> None:
    day = date(2026, 6, 10)
    base = _frame(day, 60, "temperature_c").assign(wind_speed_ms=3.0, ghi_w_m2=0.0)
    frame = pd.concat([base.assign(location="berlin"), base.drop(index=[0]).assign(location="munich")])
    issues = _check(frame, day, 60, "weather_forecast", "degC,m/s,W/m2")
    assert [i.reason for i in issues] == ["missing_intervals"]
    assert "location=munich" in issues[0].message


@pytest.mark.parametrize(
    ("dataset", "day", "stale"),
    [
        ("day_ahead_prices", date(2026, 6, 9), False),  # D-1: what the run needs
        ("day_ahead_prices", date(2026, 6, 8), True),
        ("load_forecast", date(2026, 6, 10), False),
        ("load_forecast", date(2026, 6, 9), True),
        ("load_actual", date(2026, 6, 8), False),  # D-2 actuals are fresh
        ("meter_readings", date(2026, 6, 7), True),
    ],
)
def test_stale_window_per_dataset(dataset: str, day: date, stale: bool) -> None:
    issue = check_stale(dataset, day, date(2026, 6, 10))
    assert (issue is not None) is stale
    if issue:
        assert issue.severity == "warning"


def test_required_inputs_of_a_run() -> None:
    assert required_inputs(date(2026, 3, 30)) == [
        ("day_ahead_prices", date(2026, 3, 29)),
        ("load_forecast", date(2026, 3, 30)),
        ("renewables_forecast", date(2026, 3, 30)),
    ]


@pytest.mark.parametrize(
    ("name", "source", "zone", "day"),
    [
        ("entsoe_A44_DE_LU_2026-03-29.xml", "entsoe_A44", "DE_LU", date(2026, 3, 29)),
        ("entsoe_A65_BE_2026-03-29_A16.xml", "entsoe_A65", "BE", date(2026, 3, 29)),
        ("weather_DE_LU_2026-10-25.json", "weather", "DE_LU", date(2026, 10, 25)),
        ("meter_NL_2026-10-25.csv", "meter", "NL", date(2026, 10, 25)),
    ],
)
def test_name_hints(name: str, source: str, zone: str, day: date) -> None:
    hint = name_hint(name)
    assert hint is not None
    assert (hint.source, hint.zone, hint.day) == (source, zone, day)
    assert name_hint("report.pdf") is None


def test_normalise_frame_orders_and_types() -> None:
    day = date(2026, 6, 10)
    base = _frame(day, 60, "temperature_c").assign(ghi_w_m2=1, wind_speed_ms=2)
    frame = pd.concat([base.assign(location="munich"), base.assign(location="berlin")]).iloc[::-1]
    out = normalise_frame(frame, "weather_forecast", 60)
    assert list(out.columns) == [
        "timestamp_utc",
        "resolution_minutes",
        "location",
        "temperature_c",
        "wind_speed_ms",
        "ghi_w_m2",
    ]
    assert out["timestamp_utc"].is_monotonic_increasing
    assert list(out["location"].iloc[:2]) == ["berlin", "munich"]
    assert str(out["ghi_w_m2"].dtype) == "float64"
    assert list(out.index) == list(range(len(out)))


def test_docs_severity_table_matches_the_code() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "ingestion.md").read_text()
    for reason, (severity, _meaning) in REASONS.items():
        assert f"| `{reason}` | {severity} |" in text, reason
