"""The processed-zone contract: dataset names, their columns and units.

Every processed dataset is one Parquet file per zone and *data day* (the local
market day its rows cover) at ``Layout.processed_file(dataset, zone, day)``,
with these common columns:

* ``timestamp_utc`` — start of the interval, ``datetime64[ns, UTC]``;
* ``resolution_minutes`` — interval length (15 or 60), int;

plus the value columns below (floats, SI-ish energy-market units). Rows are
sorted by ``timestamp_utc`` and unique per ``(timestamp_utc[, location/meter_id])``.

Each dataset also states its ``day_offset``: the data day the run of delivery
day D reads, as D + offset (what the sources have published when the run fires
on D-1: prices up to D-1, forecasts for D, actuals up to D-2), and whether the
run cannot schedule without it. Ingest (freshness, required inputs) and the
input quality gate both read these.

This module is light (standard library only) so DAG files and docs can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

#: Harmonised SDAC (single day-ahead coupling) clearing price limits, EUR/MWh: the
#: range of ``price_eur_mwh`` and of every bid curve. Settings defaults refer to these.
SDAC_PRICE_FLOOR_EUR_MWH = -500.0
SDAC_PRICE_CAP_EUR_MWH = 4000.0


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    value_columns: tuple[str, ...]
    units: tuple[str, ...]
    day_offset: int
    required_for_run: bool = False
    key_columns: tuple[str, ...] = ("timestamp_utc",)
    description: str = ""


PRICES = DatasetSpec(
    "day_ahead_prices",
    ("price_eur_mwh",),
    ("EUR/MWh",),
    day_offset=-1,
    required_for_run=True,
    description="Day-ahead clearing price per market time unit (ENTSO-E A44).",
)
LOAD_FORECAST = DatasetSpec(
    "load_forecast",
    ("load_mw",),
    ("MW",),
    day_offset=0,
    required_for_run=True,
    description="TSO day-ahead total load forecast (ENTSO-E A65, processType A01).",
)
LOAD_ACTUAL = DatasetSpec(
    "load_actual",
    ("load_mw",),
    ("MW",),
    day_offset=-2,
    description="Actual total load (ENTSO-E A65, processType A16).",
)
RENEWABLES_FORECAST = DatasetSpec(
    "renewables_forecast",
    ("wind_mw", "solar_mw"),
    ("MW", "MW"),
    day_offset=0,
    required_for_run=True,
    description="Day-ahead wind (on+offshore) and solar forecast (ENTSO-E A69).",
)
WEATHER_FORECAST = DatasetSpec(
    "weather_forecast",
    ("temperature_c", "wind_speed_ms", "ghi_w_m2"),
    ("degC", "m/s", "W/m2"),
    day_offset=0,
    key_columns=("timestamp_utc", "location"),
    description="Hourly weather forecast per location (weather service JSON).",
)
METER = DatasetSpec(
    "meter_readings",
    ("power_mw",),
    ("MW",),
    day_offset=-2,
    key_columns=("timestamp_utc", "meter_id"),
    description="Utility's own 15-minute meter/SCADA readings (average power per interval).",
)

#: In the order the run of D reads them: required inputs first.
ALL = (PRICES, LOAD_FORECAST, RENEWABLES_FORECAST, WEATHER_FORECAST, LOAD_ACTUAL, METER)
BY_NAME = {spec.name: spec for spec in ALL}


def data_day(spec: DatasetSpec, delivery_day: date) -> date:
    """The data day of ``spec`` that the run for ``delivery_day`` reads."""
    return delivery_day + timedelta(days=spec.day_offset)
