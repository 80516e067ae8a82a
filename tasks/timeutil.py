"""Delivery days in market time, stored as UTC.

Pure standard library so DAG files may import it. A delivery day is a local
market day (e.g. Europe/Berlin): 23 or 25 hours on DST switch days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_bounds_utc(delivery_day: date, tz: str) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of a local delivery day."""
    zone = ZoneInfo(tz)
    start = datetime.combine(delivery_day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(delivery_day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def mtu_starts_utc(delivery_day: date, tz: str, mtu_minutes: int) -> list[datetime]:
    """UTC start of every market time unit of the delivery day (92/96/100 or 23/24/25)."""
    start, end = day_bounds_utc(delivery_day, tz)
    step = timedelta(minutes=mtu_minutes)
    n = int((end - start) / step)
    return [start + i * step for i in range(n)]


def mtu_count(delivery_day: date, tz: str, mtu_minutes: int) -> int:
    start, end = day_bounds_utc(delivery_day, tz)
    return int((end - start) / timedelta(minutes=mtu_minutes))


def delivery_day_for_run(logical_date: datetime, tz: str) -> date:
    """The delivery day a run schedules: the local day after the run fires.

    The daily DAG fires on D-1 before gate closure, so its logical date (the
    moment it fires, in Airflow 3's default trigger timetable) lies on D-1 in
    market time; the run therefore schedules D = local date + 1.
    """
    if logical_date.tzinfo is None:
        raise ValueError("logical_date must be timezone-aware")
    return logical_date.astimezone(ZoneInfo(tz)).date() + timedelta(days=1)


def parse_day(value: str) -> date:
    """Parse YYYY-MM-DD with a clear error."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"expected a delivery date as YYYY-MM-DD, got {value!r}") from exc


def days(first: date, last: date) -> list[date]:
    """All days from first to last, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def public_holidays(country: str, years: Iterable[int]) -> frozenset[date] | None:
    """Public holidays of ``country`` (a `holidays` package code) in ``years``; None without a calendar.

    The package is imported here, not at module level, so DAG files can still import this module.
    """
    import holidays

    try:
        return frozenset(holidays.country_holidays(country, years=list(years)).keys())
    except NotImplementedError:
        return None
