"""Weather forecast JSON (one file per zone and delivery day): writer and parser.

Layout (documented in docs/sources.md), modelled on point-forecast services
such as Open-Meteo; times are UTC ISO-8601, one entry per hour::

    {"provider": "dap-sim", "model": "icon-eu-sim", "issued_at": "2026-11-26T00:00:00Z",
     "zone": "DE_LU", "bidding_zone_eic": "10Y1001A1001A82H", "delivery_day": "2026-11-27",
     "timezone": "UTC",
     "units": {"temperature_2m": "°C", "wind_speed_100m": "m/s", "shortwave_radiation": "W/m²"},
     "locations": [{"id": "hamburg", "lat": 53.55, "lon": 9.99,
                    "hourly": {"time": ["2026-11-26T23:00:00Z", ...],
                               "temperature_2m": [...], "wind_speed_100m": [...],
                               "shortwave_radiation": [...]}}]}
"""

from __future__ import annotations

import json
import math
from typing import Any

from tasks.sources.base import ParsedDocument, ParseError
from tasks.sources.zones import ZONE_BY_EIC, ZONES, zone_info

# JSON variable -> (processed column, the only unit we accept: never converted silently)
VARIABLES = {
    "temperature_2m": ("temperature_c", ("°C", "degC", "C")),
    "wind_speed_100m": ("wind_speed_ms", ("m/s",)),
    "shortwave_radiation": ("ghi_w_m2", ("W/m²", "W/m2")),
}
CANONICAL_UNITS = {"temperature_2m": "°C", "wind_speed_100m": "m/s", "shortwave_radiation": "W/m²"}


def _number(value: object, where: str) -> float:
    """A JSON number (null: a missing value, NaN); a number written as a string is refused."""
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParseError(
            "malformed_number",
            f'{where}: {value!r} is not a JSON number (a string such as "53,2" is not read as one)',
        )
    return float(value)


def parse_weather(data: bytes) -> list[ParsedDocument]:
    import pandas as pd

    if not data.strip():
        raise ParseError("empty_file", "the file is empty")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError("malformed_json", f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("locations"), list):
        raise ParseError("malformed_json", "expected an object with a 'locations' list")
    zone = doc.get("zone")
    eic = doc.get("bidding_zone_eic")
    if eic is not None:
        by_eic = ZONE_BY_EIC.get(str(eic))
        if by_eic is None or (zone is not None and zone != by_eic):
            raise ParseError("unknown_zone", f"bidding_zone_eic {eic!r} / zone {zone!r} is not a known zone")
        zone = by_eic
    if zone not in ZONES:
        raise ParseError("unknown_zone", f"zone {zone!r} is not a known bidding zone")
    units = doc.get("units") or {}
    for var, (_, accepted) in VARIABLES.items():
        unit = units.get(var)
        if unit not in accepted:
            raise ParseError("unit_mismatch", f"{var} in {unit!r}; expected {accepted[0]} (not converted)")
    frames = []
    for loc in doc["locations"]:
        try:
            hourly = loc["hourly"]
            times = pd.to_datetime(hourly["time"], utc=True)
            n = len(times)
            columns: dict[str, Any] = {}
            for var, (column, _) in VARIABLES.items():
                values = hourly[var]
                if len(values) != n:
                    raise ParseError(
                        "malformed_json",
                        f"location {loc.get('id')!r}: {var} has {len(values)} values, time {n}",
                    )
                columns[column] = pd.Series(
                    [_number(v, f"location {loc.get('id')!r} {var}[{i}]") for i, v in enumerate(values)],
                    dtype="float64",
                )
            frame = pd.DataFrame({"timestamp_utc": times, **{k: v.to_numpy() for k, v in columns.items()}})
            frame.insert(1, "location", str(loc["id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError("malformed_json", f"bad location entry ({type(exc).__name__}: {exc})") from None
        frames.append(frame)
    if not frames:
        raise ParseError("malformed_json", "no locations")
    frame = pd.concat(frames, ignore_index=True)
    steps = frame.groupby("location")["timestamp_utc"].transform("diff").dropna().dt.total_seconds().div(60)
    minutes = int(steps.mode().iloc[0]) if not steps.empty else 60
    if minutes not in (15, 60):
        raise ParseError("unsupported_resolution", f"weather steps of {minutes} minutes; expected hourly")
    frame.insert(1, "resolution_minutes", minutes)
    frame["resolution_minutes"] = frame["resolution_minutes"].astype("int64")
    frame = frame.sort_values(["timestamp_utc", "location"], kind="stable").reset_index(drop=True)
    tz = zone_info(zone).tz
    meta = {
        "provider": doc.get("provider"),
        "model": doc.get("model"),
        "issued_at": doc.get("issued_at"),
        "delivery_day": doc.get("delivery_day"),
        "locations": sorted({str(loc.get("id")) for loc in doc["locations"]}),
        "data_days": sorted({d.isoformat() for d in frame["timestamp_utc"].dt.tz_convert(tz).dt.date}),
    }
    return [ParsedDocument("weather", "weather_forecast", zone, frame, "degC,m/s,W/m2", minutes, meta)]
