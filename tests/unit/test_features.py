"""Feature rows: DST grids, clock-position lags, no look-ahead, clear errors."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from tasks.errors import GateClosedError, MissingInputError
from tasks.features import (
    FEATURE_COLUMNS,
    backfill,
    build_features,
    day_vector,
    design_names,
    n_slots,
    read_features,
    slot_values,
    target_slots,
)
from tasks.storage import Layout, read_lineage, write_json_atomic, write_parquet_atomic
from tasks.timeutil import days, mtu_starts_utc

if TYPE_CHECKING:
    from tasks.config import Settings

TZ = "Europe/Berlin"
SPRING = date(2026, 3, 29)  # 23 hours in Europe/Berlin
AUTUMN = date(2026, 10, 25)  # 25 hours


def _frame(day: date, resolution: int, values: dict[str, object]) -> pd.DataFrame:
    starts = pd.DatetimeIndex(mtu_starts_utc(day, TZ, resolution))
    frame = pd.DataFrame({"timestamp_utc": starts, "resolution_minutes": resolution})
    for name, value in values.items():
        frame[name] = value
    return frame


def write_history(
    root: Path,
    zone: str,
    first: date,
    last: date,
    *,
    price_mtu: int = 60,
    seed: int = 0,
    weather: bool = True,
) -> None:
    """Real-shaped processed inputs (prices driven by residual load) for ``first..last``.

    Load forecasts are 15-minute, renewables and weather hourly, prices at
    ``price_mtu``: the features must align mixed resolutions.
    """
    layout = Layout(root)
    rng = np.random.default_rng(abs(hash((zone, seed))) % 2**32)
    zone_scale = 1.0 if zone == "DE_LU" else 0.25
    for day in days(first, last):
        day_rng = np.random.default_rng([seed, day.toordinal(), len(zone)])
        wind_level = day_rng.uniform(0.1, 0.6)

        def shape(resolution: int, day: date = day) -> tuple[np.ndarray, np.ndarray]:
            starts = pd.DatetimeIndex(mtu_starts_utc(day, TZ, resolution)).tz_convert(TZ)
            hour = np.asarray(starts.hour + starts.minute / 60.0)
            return hour, np.full(hour.shape, day.weekday())

        def load_at(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
            base = 50000 + 9000 * np.sin(2 * np.pi * (hour - 9) / 24) - 6000 * (weekday >= 5)
            return zone_scale * base

        def solar_at(hour: np.ndarray) -> np.ndarray:
            return zone_scale * 18000 * np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None)

        def wind_at(hour: np.ndarray, wind_level: float = wind_level) -> np.ndarray:
            return zone_scale * 40000 * wind_level * (1 + 0.2 * np.sin(2 * np.pi * hour / 24))

        h15, wd15 = shape(15)
        h60, _ = shape(60)
        hp, wdp = shape(price_mtu)
        residual = load_at(hp, wdp) - wind_at(hp) - solar_at(hp)
        price = 10 + 0.004 * residual / zone_scale + day_rng.normal(0, 4, hp.shape) + rng.normal(0, 1)
        out = {
            "day_ahead_prices": _frame(day, price_mtu, {"price_eur_mwh": price}),
            "load_forecast": _frame(day, 15, {"load_mw": load_at(h15, wd15)}),
            "load_actual": _frame(
                day, 15, {"load_mw": load_at(h15, wd15) + day_rng.normal(0, 500, h15.shape)}
            ),
            "renewables_forecast": _frame(day, 60, {"wind_mw": wind_at(h60), "solar_mw": solar_at(h60)}),
        }
        if weather:
            frames = []
            for location, offset in (("north", -1.0), ("south", 1.0)):
                frames.append(
                    _frame(
                        day,
                        60,
                        {
                            "location": location,
                            "temperature_c": 10 + offset + 5 * np.sin(2 * np.pi * (h60 - 14) / 24),
                            "wind_speed_ms": 3 + 10 * wind_level + offset,
                            "ghi_w_m2": 600 * np.clip(np.sin(np.pi * (h60 - 6) / 12), 0, None),
                        },
                    )
                )
            out["weather_forecast"] = pd.concat(frames, ignore_index=True).sort_values("timestamp_utc")
        for dataset, frame in out.items():
            write_parquet_atomic(layout.processed_file(dataset, zone, day), frame.reset_index(drop=True))


@pytest.fixture
def two_zone_settings(monkeypatch: pytest.MonkeyPatch, data_root: Path) -> Settings:
    from tasks.config import get_settings

    monkeypatch.setenv("DAP_ZONES", "DE_LU,BE")
    monkeypatch.setenv("DAP_MTU_MINUTES", "15")
    get_settings.cache_clear()
    return get_settings()


@pytest.mark.unit
@pytest.mark.parametrize(("day", "rows"), [(date(2026, 3, 10), 96), (SPRING, 92), (AUTUMN, 100)])
def test_one_row_per_mtu_on_dst_days(two_zone_settings: Settings, day: date, rows: int) -> None:
    write_history(two_zone_settings.data_root, "DE_LU", day - timedelta(days=7), day)
    frame = pd.read_parquet(build_features("DE_LU", day, two_zone_settings))
    assert len(frame) == rows
    assert list(frame.columns) == list(FEATURE_COLUMNS)
    assert not frame.drop(columns=["temperature_c", "wind_speed_ms", "ghi_w_m2"]).isna().any().any()
    assert frame["timestamp_utc"].dt.tz is not None
    assert frame["timestamp_utc"].is_monotonic_increasing
    # Slots follow the local wall clock: 02:00-02:45 missing in spring, doubled in autumn.
    counts = frame["slot"].value_counts()
    if day == SPRING:
        assert set(range(96)) - set(frame["slot"]) == {8, 9, 10, 11}
    elif day == AUTUMN:
        assert sorted(counts[counts == 2].index) == [8, 9, 10, 11]
    else:
        assert list(frame["slot"]) == list(range(96))


@pytest.mark.unit
def test_lags_align_by_local_clock_and_hourly_prices_repeat(two_zone_settings: Settings) -> None:
    day = AUTUMN + timedelta(days=1)  # D-1 has 25 hours, D-7 is a normal day
    write_history(two_zone_settings.data_root, "DE_LU", day - timedelta(days=7), day)
    frame = pd.read_parquet(build_features("DE_LU", day, two_zone_settings))
    layout = Layout(two_zone_settings.data_root)
    week_ago = pd.read_parquet(layout.processed_file("day_ahead_prices", "DE_LU", day - timedelta(days=7)))
    local = week_ago["timestamp_utc"].dt.tz_convert(TZ)
    at_0815 = frame[(frame["hour"] == 8) & (frame["minute"] == 15)]["price_lag7"].item()
    assert at_0815 == pytest.approx(week_ago.loc[local.dt.hour == 8, "price_eur_mwh"].item())
    # Hourly prices on a 15-minute grid: four equal values per hour.
    assert frame["price_lag7"].to_numpy().reshape(24, 4).std(axis=1).max() == 0.0
    # D-1 had 02:00 twice: the lag is the mean of both.
    d1 = pd.read_parquet(layout.processed_file("day_ahead_prices", "DE_LU", day - timedelta(days=1)))
    twice = d1.loc[d1["timestamp_utc"].dt.tz_convert(TZ).dt.hour == 2, "price_eur_mwh"]
    assert len(twice) == 2
    assert frame.loc[frame["hour"] == 2, "price_lag1"].iloc[0] == pytest.approx(twice.mean())
    # 15-minute load forecast of D is taken as is.
    load = pd.read_parquet(layout.processed_file("load_forecast", "DE_LU", day))
    np.testing.assert_allclose(frame["load_mw"].to_numpy(), load["load_mw"].to_numpy())


@pytest.mark.unit
def test_no_look_ahead(two_zone_settings: Settings) -> None:
    """Changing anything not published before gate closure on D-1 leaves the features of D unchanged."""
    day = date(2026, 5, 20)
    root = two_zone_settings.data_root
    write_history(root, "DE_LU", day - timedelta(days=10), day + timedelta(days=2))
    before = pd.read_parquet(build_features("DE_LU", day, two_zone_settings))
    layout = Layout(root)

    def scale(dataset: str, d: date, column: str, factor: float) -> None:
        path = layout.processed_file(dataset, "DE_LU", d)
        frame = pd.read_parquet(path)
        frame[column] = frame[column] * factor
        write_parquet_atomic(path, frame)

    scale("day_ahead_prices", day, "price_eur_mwh", 7.0)  # D's own prices: the target
    scale("day_ahead_prices", day + timedelta(days=1), "price_eur_mwh", 7.0)
    scale("load_forecast", day + timedelta(days=1), "load_mw", 3.0)
    scale("load_actual", day - timedelta(days=1), "load_mw", 3.0)  # actuals of D-1 arrive after the run
    scale("load_actual", day, "load_mw", 3.0)
    after = pd.read_parquet(build_features("DE_LU", day, two_zone_settings))
    pd.testing.assert_frame_equal(before, after)
    # ...while an input that is known (D-1's prices) does change them: the check can fail.
    scale("day_ahead_prices", day - timedelta(days=1), "price_eur_mwh", 2.0)
    changed = pd.read_parquet(build_features("DE_LU", day, two_zone_settings))
    np.testing.assert_allclose(changed["price_lag1"], 2.0 * before["price_lag1"])


@pytest.mark.unit
def test_missing_input_names_dataset_zone_and_day(two_zone_settings: Settings) -> None:
    day = date(2026, 5, 20)
    write_history(two_zone_settings.data_root, "BE", day - timedelta(days=7), day)
    write_history(two_zone_settings.data_root, "DE_LU", day - timedelta(days=7), day)  # BE's neighbour
    Layout(two_zone_settings.data_root).processed_file(
        "renewables_forecast", "BE", day - timedelta(days=1)
    ).unlink()
    with pytest.raises(MissingInputError, match=r"renewables_forecast for zone BE day 2026-05-19"):
        build_features("BE", day, two_zone_settings)


@pytest.mark.unit
def test_weather_is_optional(two_zone_settings: Settings) -> None:
    day = date(2026, 5, 20)
    write_history(two_zone_settings.data_root, "BE", day - timedelta(days=7), day, weather=False)
    write_history(two_zone_settings.data_root, "DE_LU", day - timedelta(days=7), day)  # BE's neighbour
    frame = pd.read_parquet(build_features("BE", day, two_zone_settings))
    assert frame["temperature_c"].isna().all()
    assert not frame["price_lag1"].isna().any()


@pytest.mark.unit
def test_gated_day_is_refused_and_skipped_in_backfill(two_zone_settings: Settings) -> None:
    day = date(2026, 5, 20)
    root = two_zone_settings.data_root
    write_history(root, "DE_LU", day - timedelta(days=12), day)
    write_json_atomic(Layout(root).gate_file("DE_LU", day - timedelta(days=1)), {"failed": ["x"]})
    with pytest.raises(GateClosedError, match="2026-05-19"):
        build_features("DE_LU", day - timedelta(days=1), two_zone_settings)
    built, skipped = backfill("DE_LU", day - timedelta(days=5), day, two_zone_settings)
    assert len(built) == 5
    assert set(skipped) == {"2026-05-19"}
    assert "GateClosedError" in skipped["2026-05-19"]
    # Days whose lags reach before the written history are reported, not fatal.
    _, early = backfill("DE_LU", day - timedelta(days=12), day - timedelta(days=6), two_zone_settings)
    assert all("MissingInputError" in reason for reason in early.values())
    assert len(early) == 7


@pytest.mark.unit
def test_holiday_flag(two_zone_settings: Settings) -> None:
    christmas = date(2026, 12, 25)
    write_history(two_zone_settings.data_root, "DE_LU", christmas - timedelta(days=9), christmas)
    assert (pd.read_parquet(build_features("DE_LU", christmas, two_zone_settings))["is_holiday"] == 1).all()
    assert (
        pd.read_parquet(build_features("DE_LU", christmas - timedelta(days=2), two_zone_settings))[
            "is_holiday"
        ]
        == 0
    ).all()


@pytest.mark.unit
def test_day_vector_maps_dst_days_onto_the_fixed_grid(two_zone_settings: Settings) -> None:
    root = two_zone_settings.data_root
    write_history(root, "DE_LU", SPRING - timedelta(days=7), SPRING + timedelta(days=3))
    write_history(root, "DE_LU", AUTUMN - timedelta(days=7), AUTUMN)
    columns = ["price_lag1", "load_mw"]
    slots = n_slots(15)
    for day in (SPRING, AUTUMN, SPRING + timedelta(days=3)):
        frame = pd.read_parquet(build_features("DE_LU", day, two_zone_settings))
        vec = day_vector(frame, columns, slots)
        assert vec.shape == (len(design_names(columns, slots)),)
        assert np.isfinite(vec).all()
    spring = read_features("DE_LU", SPRING, two_zone_settings)
    grid = slot_values(spring, columns, slots)
    np.testing.assert_array_equal(grid[8:12], np.repeat(grid[7:8], 4, axis=0))  # missing hour: previous slot
    autumn = read_features("DE_LU", AUTUMN, two_zone_settings)
    grid = slot_values(autumn, ["load_mw"], slots)
    doubled = autumn.loc[autumn["slot"] == 9, "load_mw"]
    assert grid[9, 0] == pytest.approx(doubled.mean())
    prices = pd.read_parquet(Layout(root).processed_file("day_ahead_prices", "DE_LU", AUTUMN))
    target = target_slots(prices, AUTUMN, TZ, 15)
    assert target.shape == (96,)
    assert np.isfinite(target).all()


@pytest.mark.slow
@pytest.mark.unit
def test_cli_backfill(two_zone_settings: Settings) -> None:
    from tasks.features import main, parser

    day = date(2026, 5, 20)
    for zone in ("BE", "DE_LU"):  # DE_LU: BE's neighbour
        write_history(two_zone_settings.data_root, zone, day - timedelta(days=14), day)
    args = parser().parse_args(
        ["--delivery-date", "2026-05-20", "--zone", "BE", "--backfill-from", "2026-05-13"]
    )
    result = main(args)
    assert result["rows"] == 96
    assert result["built"] == 8
    assert result["skipped"] == {}
    with pytest.raises(MissingInputError, match=r"tasks.features --delivery-date 2026-06-01 --zone BE"):
        read_features("BE", date(2026, 6, 1), two_zone_settings)


@pytest.mark.unit
def test_load_split_uses_complete_actuals_up_to_d_minus_2_and_the_price_evaluation_days() -> None:
    from tasks.training_data import load_split

    delivery = date(2026, 3, 31)
    window = [delivery - timedelta(days=k) for k in range(30, 0, -1)]  # D-30 … D-1
    has_actual = [True] * 30
    has_actual[3] = False  # a day with a gap in the meter/TSO actuals
    n_fit = 24  # the last 6 days are the price model's evaluation window
    train_idx, val_idx, eval_idx = load_split(window, has_actual, delivery, n_fit, 0.2)
    assert 3 not in train_idx + val_idx
    assert eval_idx == [24, 25, 26, 27, 28], "D-1 (index 29) has no complete actuals at gate closure"
    assert max(train_idx) < min(val_idx), "validation days follow the training days"
    assert max(val_idx) < n_fit, "no evaluation day is fitted"
    assert len(val_idx) == round(0.2 * 23)


@pytest.fixture
def be_with_neighbour(two_zone_settings: Settings) -> Settings:
    """BE and DE_LU configured: BE's features carry DE_LU's forecasts (the default neighbour_zones)."""
    assert two_zone_settings.neighbours_of("BE") == ("DE_LU",)
    assert two_zone_settings.neighbours_of("DE_LU") == ()
    return two_zone_settings


@pytest.mark.unit
@pytest.mark.parametrize("day", [date(2026, 5, 20), SPRING, AUTUMN])
def test_neighbour_forecasts_join_as_its_own_feature_columns(be_with_neighbour: Settings, day: date) -> None:
    from tasks.features import NEIGHBOUR_SEP, feature_columns, neighbour_columns

    root = be_with_neighbour.data_root
    for zone in ("BE", "DE_LU"):
        write_history(root, zone, day - timedelta(days=7), day)
    be = pd.read_parquet(build_features("BE", day, be_with_neighbour))
    de = pd.read_parquet(build_features("DE_LU", day, be_with_neighbour))
    assert list(be.columns) == list(feature_columns(["DE_LU"]))
    assert list(de.columns) == list(FEATURE_COLUMNS)
    assert len(neighbour_columns(["DE_LU"])) == 9  # load, wind, solar of D, D-1 and D-7
    for column in neighbour_columns(["DE_LU"]):
        own = column.split(NEIGHBOUR_SEP)[1]
        np.testing.assert_array_equal(be[column].to_numpy(), de[own].to_numpy(), err_msg=column)
    # BE's own forecasts stay its own (the two zones' histories differ).
    assert not np.allclose(be["load_mw"], be["DE_LU: load_mw"])
    lineage = read_lineage(Layout(root).features_file("BE", day))
    zones = {entry.get("zone", "BE") for entry in lineage["inputs"]}
    assert zones == {"BE", "DE_LU"}


@pytest.mark.unit
@pytest.mark.parametrize("env", [{"DAP_ZONES": "BE"}, {"DAP_NEIGHBOUR_ZONES": "{}"}])
def test_a_neighbour_is_read_only_when_configured_and_ingested(
    two_zone_settings: Settings, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    from tasks.config import get_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    day = date(2026, 5, 20)
    write_history(settings.data_root, "BE", day - timedelta(days=7), day)  # no DE_LU data at all
    assert list(pd.read_parquet(build_features("BE", day, settings)).columns) == list(FEATURE_COLUMNS)


@pytest.mark.unit
def test_missing_or_gated_neighbour_input_refuses_the_day(be_with_neighbour: Settings) -> None:
    root = be_with_neighbour.data_root
    day = date(2026, 5, 20)
    for zone in ("BE", "DE_LU"):
        write_history(root, zone, day - timedelta(days=7), day)
    Layout(root).processed_file("load_forecast", "DE_LU", day - timedelta(days=7)).unlink()
    with pytest.raises(MissingInputError, match=r"load_forecast for zone DE_LU day 2026-05-13"):
        build_features("BE", day, be_with_neighbour)
    write_json_atomic(Layout(root).gate_file("DE_LU", day - timedelta(days=1)), {"failed": ["x"]})
    with pytest.raises(
        GateClosedError, match=r"zone DE_LU \(a neighbour whose forecasts are features of BE\)"
    ):
        build_features("BE", day - timedelta(days=1), be_with_neighbour)


@pytest.mark.unit
def test_backfill_rebuilds_days_built_before_the_neighbour_was_configured(
    be_with_neighbour: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.config import get_settings
    from tasks.features import neighbour_columns

    root = be_with_neighbour.data_root
    day = date(2026, 5, 20)
    for zone in ("BE", "DE_LU"):
        write_history(root, zone, day - timedelta(days=10), day)
    monkeypatch.setenv("DAP_NEIGHBOUR_ZONES", "{}")
    get_settings.cache_clear()
    before, _ = backfill("BE", day - timedelta(days=2), day, get_settings())
    assert all("DE_LU: load_mw" not in pd.read_parquet(p).columns for p in before)
    Layout(root).processed_file("renewables_forecast", "DE_LU", day).unlink()  # the neighbour lacks D
    monkeypatch.delenv("DAP_NEIGHBOUR_ZONES")
    get_settings.cache_clear()
    built, skipped = backfill("BE", day - timedelta(days=2), day, get_settings())
    assert len(built) == 2
    assert set(skipped) == {day.isoformat()}
    assert "renewables_forecast for zone DE_LU" in skipped[day.isoformat()]
    for path in built:
        assert set(neighbour_columns(["DE_LU"])) <= set(pd.read_parquet(path).columns)
