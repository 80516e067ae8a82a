"""The processed-zone contract: dataset names, their columns and units.

Every processed dataset is one Parquet file per zone and *data day* (the local
market day its rows cover) at ``Layout.processed_file(dataset, zone, day)``,
with these common columns:

* ``timestamp_utc`` — start of the interval, ``datetime64[ns, UTC]``;
* ``resolution_minutes`` — interval length (15 or 60), int;

plus the value columns below (floats, SI-ish energy-market units). Rows are
sorted by ``timestamp_utc`` and unique per ``(timestamp_utc[, location/meter_id])``.
This module is light (standard library only) so DAG files and docs can read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    value_columns: tuple[str, ...]
    units: tuple[str, ...]
    key_columns: tuple[str, ...] = ("timestamp_utc",)
    description: str = ""


PRICES = DatasetSpec(
    "day_ahead_prices",
    ("price_eur_mwh",),
    ("EUR/MWh",),
    description="Day-ahead clearing price per market time unit (ENTSO-E A44).",
)
LOAD_FORECAST = DatasetSpec(
    "load_forecast",
    ("load_mw",),
    ("MW",),
    description="TSO day-ahead total load forecast (ENTSO-E A65, processType A01).",
)
LOAD_ACTUAL = DatasetSpec(
    "load_actual",
    ("load_mw",),
    ("MW",),
    description="Actual total load (ENTSO-E A65, processType A16).",
)
RENEWABLES_FORECAST = DatasetSpec(
    "renewables_forecast",
    ("wind_mw", "solar_mw"),
    ("MW", "MW"),
    description="Day-ahead wind (on+offshore) and solar forecast (ENTSO-E A69).",
)
WEATHER_FORECAST = DatasetSpec(
    "weather_forecast",
    ("temperature_c", "wind_speed_ms", "ghi_w_m2"),
    ("degC", "m/s", "W/m2"),
    key_columns=("timestamp_utc", "location"),
    description="Hourly weather forecast per location (weather service JSON).",
)
METER = DatasetSpec(
    "meter_readings",
    ("power_mw",),
    ("MW",),
    key_columns=("timestamp_utc", "meter_id"),
    description="Utility's own 15-minute meter/SCADA readings (average power per interval).",
)

ALL = (PRICES, LOAD_FORECAST, LOAD_ACTUAL, RENEWABLES_FORECAST, WEATHER_FORECAST, METER)
BY_NAME = {spec.name: spec for spec in ALL}
