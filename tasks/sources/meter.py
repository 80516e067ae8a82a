"""Meter/SCADA readings CSV of the utility's retail meters: writer and parser.

Columns (header required, UTC ISO-8601 times, one row per meter and interval)::

    meter_id,bidding_zone,interval_start_utc,interval_end_utc,energy_kwh,quality

``energy_kwh`` is the energy metered in the interval; ``quality`` is ``A``
(actual) or ``E`` (estimated/substituted, as MDM systems flag it). The parser
gives average power: ``power_mw = energy_kwh / 1000 / interval_hours``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from tasks.sources.base import ParsedDocument, ParseError, canonical_float
from tasks.sources.zones import ZONE_BY_EIC, ZONES, zone_info

COLUMNS = ("meter_id", "bidding_zone", "interval_start_utc", "interval_end_utc", "energy_kwh", "quality")
QUALITY_FLAGS = ("A", "E")

if TYPE_CHECKING:
    import pandas as pd


def _energy(frame: pd.DataFrame) -> pd.Series:
    """``energy_kwh`` as float64: a plain decimal number, or empty (a missing value, NaN)."""
    import pandas as pd

    values = [
        float("nan") if not text.strip() else canonical_float(text.strip(), f"row {row} energy_kwh")
        for row, text in enumerate(frame["energy_kwh"], start=2)
    ]
    return pd.Series(values, index=frame.index, dtype="float64")


def parse_meter(data: bytes) -> list[ParsedDocument]:
    import pandas as pd

    if not data.strip():
        raise ParseError("empty_file", "the file is empty")
    try:
        text = data.decode("utf-8-sig")
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ParseError("malformed_csv", f"cannot read CSV ({type(exc).__name__}: {exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ParseError("malformed_csv", f"missing columns {missing}; expected header {','.join(COLUMNS)}")
    if frame.empty:
        raise ParseError("empty_file", "header only, no readings")
    zones = set(frame["bidding_zone"])
    if len(zones) != 1:
        raise ParseError("malformed_csv", f"one file must hold one bidding zone, found {sorted(zones)}")
    zone = zones.pop()
    zone = ZONE_BY_EIC.get(zone, zone)
    if zone not in ZONES:
        raise ParseError("unknown_zone", f"bidding_zone {zone!r} is not a known bidding zone")
    try:
        start = pd.to_datetime(frame["interval_start_utc"], utc=True)
        end = pd.to_datetime(frame["interval_end_utc"], utc=True)
    except (ValueError, TypeError) as exc:
        raise ParseError("malformed_csv", f"bad time value ({exc})") from None
    energy = _energy(frame)
    minutes_all = ((end - start).dt.total_seconds() / 60).round().astype("int64")
    lengths = sorted(set(minutes_all))
    if len(lengths) != 1 or lengths[0] not in (15, 60):
        raise ParseError(
            "unsupported_resolution", f"interval lengths {lengths} minutes; expected all 15 or all 60"
        )
    minutes = lengths[0]
    bad_flags = sorted(set(frame["quality"]) - set(QUALITY_FLAGS))
    if bad_flags:
        raise ParseError("malformed_csv", f"unknown quality flags {bad_flags}; expected A or E")
    out = pd.DataFrame(
        {
            "timestamp_utc": start,
            "resolution_minutes": minutes_all,
            "meter_id": frame["meter_id"].astype(str),
            "power_mw": energy / 1000.0 / (minutes / 60.0),
        }
    )
    out = out.sort_values(["timestamp_utc", "meter_id"], kind="stable").reset_index(drop=True)
    tz = zone_info(zone).tz
    meta = {
        "meters": sorted(set(out["meter_id"])),
        "estimated_readings": int((frame["quality"] == "E").sum()),
        "data_days": sorted({d.isoformat() for d in out["timestamp_utc"].dt.tz_convert(tz).dt.date}),
    }
    return [ParsedDocument("meter", "meter_readings", zone, out, "MW", minutes, meta)]
