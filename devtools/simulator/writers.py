"""Writers of the source formats the simulator publishes: ENTSO-E XML, weather JSON, meter CSV.

Each writer produces a document shaped like the real source's delivery (for
ENTSO-E: the Transparency Platform REST API reply, with the same namespaces,
element names and order, EIC codes, UTC ``timeInterval`` with minute precision
and one ``Period`` per market day). The product only *parses* these formats
(``tasks.sources``); the writers exist for the simulator, replay and tests.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tasks.sources.entsoe import (
    ENTSOE_EIC,
    LOAD_DATASET_BY_PROCESS,
    NS_GL,
    NS_PUBLICATION,
    PSR_SOLAR,
    PSR_WIND_OFFSHORE,
    PSR_WIND_ONSHORE,
    fmt_utc,
)
from tasks.sources.meter import COLUMNS as METER_COLUMNS
from tasks.sources.weather import CANONICAL_UNITS
from tasks.sources.zones import zone_info

if TYPE_CHECKING:
    import pandas as pd


# --------------------------------------------------------------------------- ENTSO-E XML


def _fmt_created(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mrid(*parts: object) -> str:
    # Deterministic document id: re-publishing a day gives the same bytes.
    return hashlib.sha1("|".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:32]


def _fmt_value(value: float, decimals: int) -> str:
    if decimals == 0:
        return str(round(value))
    return f"{value:.{decimals}f}"


def _periods(
    frame: pd.DataFrame, column: str, tz: str
) -> list[tuple[datetime, datetime, int, list[tuple[int, float]]]]:
    """Split rows into one Period per local market day: (start, end, minutes, [(pos, value)]).

    Positions come from the timestamps, so a missing or duplicated row in the
    frame becomes a missing or duplicated Point (used to inject faults in tests).
    """
    import numpy as np

    from tasks.timeutil import day_bounds_utc

    if frame.empty:
        return []
    stamps = frame["timestamp_utc"]
    local_days = stamps.dt.tz_convert(tz).dt.date.to_numpy()
    ns = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    values = frame[column].to_numpy(dtype=float)
    minutes_all = frame["resolution_minutes"].to_numpy()
    out = []
    for day in sorted(set(local_days)):
        mask = local_days == day
        minutes = int(minutes_all[mask][0])
        start, end = day_bounds_utc(day, tz)
        start_ns = int(start.timestamp()) * 1_000_000_000
        positions = (ns[mask] - start_ns) // (minutes * 60 * 1_000_000_000) + 1
        points = [(int(pos), float(v)) for pos, v in zip(positions, values[mask], strict=True)]
        out.append((start, end, minutes, points))
    return out


def _points_xml(points: list[tuple[int, float]], tag: str, decimals: int, curve_type: str) -> list[str]:
    lines = []
    previous: tuple[int, str] | None = None
    for pos, value in points:
        text = _fmt_value(value, decimals)
        if curve_type == "A03" and previous is not None and previous == (pos - 1, text):
            # A03 "variable sized block": a point equal to its predecessor is left out.
            previous = (pos, text)
            continue
        previous = (pos, text)
        lines.append(
            f"      <Point>\n        <position>{pos}</position>\n        <{tag}>{text}</{tag}>\n      </Point>"
        )
    return lines


def _period_xml(
    start: datetime,
    end: datetime,
    minutes: int,
    points: list[tuple[int, float]],
    *,
    tag: str,
    decimals: int,
    curve_type: str,
) -> str:
    body = "\n".join(_points_xml(points, tag, decimals, curve_type))
    return (
        "    <Period>\n      <timeInterval>\n"
        f"        <start>{fmt_utc(start)}</start>\n        <end>{fmt_utc(end)}</end>\n"
        f"      </timeInterval>\n      <resolution>PT{minutes}M</resolution>\n{body}\n    </Period>"
    )


def _header(
    root: str, ns: str, mrid: str, doc_type: str, *, created: datetime, process_type: str | None
) -> str:
    process = f"  <process.processType>{process_type}</process.processType>\n" if process_type else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<{root} xmlns="{ns}">\n'
        f"  <mRID>{mrid}</mRID>\n  <revisionNumber>1</revisionNumber>\n  <type>{doc_type}</type>\n{process}"
        f'  <sender_MarketParticipant.mRID codingScheme="A01">{ENTSOE_EIC}</sender_MarketParticipant.mRID>\n'
        "  <sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>\n"
        f'  <receiver_MarketParticipant.mRID codingScheme="A01">{ENTSOE_EIC}</receiver_MarketParticipant.mRID>\n'
        "  <receiver_MarketParticipant.marketRole.type>A33</receiver_MarketParticipant.marketRole.type>\n"
        f"  <createdDateTime>{_fmt_created(created)}</createdDateTime>\n"
    )


def _interval(tag: str, periods: Iterable[tuple[datetime, datetime, int, Any]]) -> str:
    periods = list(periods)
    start = min(p[0] for p in periods)
    end = max(p[1] for p in periods)
    return f"  <{tag}>\n    <start>{fmt_utc(start)}</start>\n    <end>{fmt_utc(end)}</end>\n  </{tag}>\n"


def _default_created(periods: list[tuple[datetime, datetime, int, Any]], hours_before: float) -> datetime:
    return min(p[0] for p in periods) - timedelta(hours=hours_before)


def write_prices_xml(
    zone: str,
    frame: pd.DataFrame,
    *,
    tz: str | None = None,
    curve_type: str = "A03",
    created: datetime | None = None,
) -> bytes:
    """A44 Publication_MarketDocument: one TimeSeries per market day, as the API answers a range.

    ``frame``: ``timestamp_utc``, ``resolution_minutes``, ``price_eur_mwh``.
    The platform publishes DE-LU prices with curveType A03 (repeated prices left out).
    """
    info = zone_info(zone)
    periods = _periods(frame, "price_eur_mwh", tz or info.tz)
    if not periods:
        raise ValueError("no rows to write")
    created = created or _default_created(periods, 11.0)  # published ~13:00 local on D-1
    mrid = _mrid("A44", zone, fmt_utc(periods[0][0]), len(periods))
    series = []
    for i, (start, end, minutes, points) in enumerate(periods, 1):
        series.append(
            "  <TimeSeries>\n"
            f"    <mRID>{i}</mRID>\n"
            "    <auction.type>A01</auction.type>\n"
            "    <businessType>A62</businessType>\n"
            f'    <in_Domain.mRID codingScheme="A01">{info.eic}</in_Domain.mRID>\n'
            f'    <out_Domain.mRID codingScheme="A01">{info.eic}</out_Domain.mRID>\n'
            "    <contract_MarketAgreement.type>A01</contract_MarketAgreement.type>\n"
            "    <currency_Unit.name>EUR</currency_Unit.name>\n"
            "    <price_Measure_Unit.name>MWH</price_Measure_Unit.name>\n"
            "    <classificationSequence_AttributeInstanceComponent.position>1"
            "</classificationSequence_AttributeInstanceComponent.position>\n"
            f"    <curveType>{curve_type}</curveType>\n"
            f"{_period_xml(start, end, minutes, points, tag='price.amount', decimals=2, curve_type=curve_type)}\n"
            "  </TimeSeries>"
        )
    text = (
        _header("Publication_MarketDocument", NS_PUBLICATION, mrid, "A44", created=created, process_type=None)
        + _interval("period.timeInterval", periods)
        + "\n".join(series)
        + "\n</Publication_MarketDocument>\n"
    )
    return text.encode()


def _gl_series(
    i: int,
    *,
    business_type: str,
    aggregation: str,
    domain_tag: str,
    eic: str,
    psr: str | None,
    periods: list[tuple[datetime, datetime, int, list[tuple[int, float]]]],
    decimals: int,
    curve_type: str,
    unit: str = "MAW",
) -> str:
    psr_xml = f"    <MktPSRType>\n      <psrType>{psr}</psrType>\n    </MktPSRType>\n" if psr else ""
    body = "\n".join(
        _period_xml(start, end, minutes, points, tag="quantity", decimals=decimals, curve_type=curve_type)
        for start, end, minutes, points in periods
    )
    return (
        "  <TimeSeries>\n"
        f"    <mRID>{i}</mRID>\n"
        f"    <businessType>{business_type}</businessType>\n"
        f"    <objectAggregation>{aggregation}</objectAggregation>\n"
        f'    <{domain_tag} codingScheme="A01">{eic}</{domain_tag}>\n'
        f"    <quantity_Measure_Unit.name>{unit}</quantity_Measure_Unit.name>\n"
        f"    <curveType>{curve_type}</curveType>\n"
        f"{psr_xml}{body}\n"
        "  </TimeSeries>"
    )


def write_load_xml(
    zone: str,
    frame: pd.DataFrame,
    *,
    process_type: str,
    tz: str | None = None,
    curve_type: str = "A01",
    created: datetime | None = None,
) -> bytes:
    """A65 GL_MarketDocument (total load): one TimeSeries, one Period per market day.

    ``process_type`` A01 = day-ahead forecast, A16 = realised.
    """
    if process_type not in LOAD_DATASET_BY_PROCESS:
        raise ValueError(f"A65 process type must be A01 or A16, got {process_type!r}")
    info = zone_info(zone)
    periods = _periods(frame, "load_mw", tz or info.tz)
    if not periods:
        raise ValueError("no rows to write")
    # Forecast published ~10:00 local on D-1; actuals about an hour after the day ends.
    hours = 14.0 if process_type == "A01" else -25.0
    created = created or _default_created(periods, hours)
    mrid = _mrid("A65", process_type, zone, fmt_utc(periods[0][0]), len(periods))
    series = _gl_series(
        1,
        business_type="A04",
        aggregation="A01",
        domain_tag="outBiddingZone_Domain.mRID",
        eic=info.eic,
        psr=None,
        periods=periods,
        decimals=0,
        curve_type=curve_type,
    )
    text = (
        _header("GL_MarketDocument", NS_GL, mrid, "A65", created=created, process_type=process_type)
        + _interval("time_Period.timeInterval", periods)
        + series
        + "\n</GL_MarketDocument>\n"
    )
    return text.encode()


def write_renewables_xml(
    zone: str,
    frame: pd.DataFrame,
    *,
    tz: str | None = None,
    curve_type: str = "A01",
    created: datetime | None = None,
) -> bytes:
    """A69 GL_MarketDocument (wind and solar day-ahead forecast), one TimeSeries per psrType.

    ``frame``: ``wind_mw``, ``solar_mw`` and optionally ``wind_offshore_mw`` (part
    of ``wind_mw``); offshore is written as B18, the rest of wind as B19, solar B16.
    A zone without offshore (no column, or all zero and no offshore site) has no B18 series.
    """
    info = zone_info(zone)
    tz = tz or info.tz
    work = frame.copy()
    has_offshore = "wind_offshore_mw" in work.columns and any(s.offshore for s in info.sites)
    if has_offshore:
        work["_onshore"] = work["wind_mw"] - work["wind_offshore_mw"]
    else:
        work["_onshore"] = work["wind_mw"]
    columns = [(PSR_SOLAR, "solar_mw")]
    if has_offshore:
        columns.append((PSR_WIND_OFFSHORE, "wind_offshore_mw"))
    columns.append((PSR_WIND_ONSHORE, "_onshore"))
    created_at = created
    blocks = []
    first_start = None
    all_periods = []
    for i, (psr, column) in enumerate(columns, 1):
        periods = _periods(work, column, tz)
        if not periods:
            raise ValueError("no rows to write")
        all_periods.extend(periods)
        first_start = first_start or periods[0][0]
        blocks.append(
            _gl_series(
                i,
                business_type="A01",
                aggregation="A08",
                domain_tag="inBiddingZone_Domain.mRID",
                eic=info.eic,
                psr=psr,
                periods=periods,
                decimals=2,
                curve_type=curve_type,
            )
        )
    created_at = created_at or _default_created(all_periods, 6.0)  # ~18:00 local on D-1
    mrid = _mrid("A69", zone, fmt_utc(first_start) if first_start else "", len(all_periods))
    text = (
        _header("GL_MarketDocument", NS_GL, mrid, "A69", created=created_at, process_type="A01")
        + _interval("time_Period.timeInterval", all_periods)
        + "\n".join(blocks)
        + "\n</GL_MarketDocument>\n"
    )
    return text.encode()


# --------------------------------------------------------------------------- weather JSON


def write_weather_json(
    zone: str, delivery_day: date, frame: pd.DataFrame, *, issued_at: datetime, model: str = "icon-eu-sim"
) -> bytes:
    """Serialise an hourly per-location frame (processed weather schema) as the service's JSON."""
    info = zone_info(zone)
    sites = {s.id: s for s in info.sites}
    locations = []
    for loc, group in frame.groupby("location", sort=False):
        part = group.sort_values("timestamp_utc")
        site = sites.get(str(loc))
        locations.append(
            {
                "id": str(loc),
                "lat": site.lat if site else None,
                "lon": site.lon if site else None,
                "hourly": {
                    "time": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in part["timestamp_utc"]],
                    "temperature_2m": [round(float(v), 1) for v in part["temperature_c"]],
                    "wind_speed_100m": [round(float(v), 2) for v in part["wind_speed_ms"]],
                    "shortwave_radiation": [round(float(v), 1) for v in part["ghi_w_m2"]],
                },
            }
        )
    doc = {
        "provider": "dap-sim",
        "model": model,
        "issued_at": issued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "zone": zone,
        "bidding_zone_eic": info.eic,
        "delivery_day": delivery_day.isoformat(),
        "timezone": "UTC",
        "units": dict(CANONICAL_UNITS),
        "locations": locations,
    }
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


# --------------------------------------------------------------------------- meter CSV


def write_meter_csv(zone: str, frame: pd.DataFrame, quality: list[str] | None = None) -> bytes:
    """``frame``: ``timestamp_utc``, ``resolution_minutes``, ``meter_id``, ``power_mw`` (processed schema)."""
    import pandas as pd

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(METER_COLUMNS)
    ends = frame["timestamp_utc"] + pd.to_timedelta(frame["resolution_minutes"], unit="min")
    kwh = frame["power_mw"] * 1000.0 * frame["resolution_minutes"] / 60.0
    flags = quality or ["A"] * len(frame)
    for meter, start, end, energy, flag in zip(
        frame["meter_id"], frame["timestamp_utc"], ends, kwh, flags, strict=True
    ):
        writer.writerow(
            [
                meter,
                zone,
                start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                f"{energy:.3f}",
                flag,
            ]
        )
    return buf.getvalue().encode()
