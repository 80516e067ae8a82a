"""Bidding zones the sources know: EIC codes, market time zone, holidays, weather sites.

Standard library only: the parser, the simulator and docs read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    """A weather location that stands for a part of a zone (load, wind or solar)."""

    id: str
    lat: float
    lon: float
    offshore: bool = False


@dataclass(frozen=True)
class ZoneInfo:
    code: str
    eic: str
    tz: str
    holiday_country: str
    sites: tuple[Site, ...]


ZONES: dict[str, ZoneInfo] = {
    "DE_LU": ZoneInfo(
        "DE_LU",
        "10Y1001A1001A82H",
        "Europe/Berlin",
        "DE",
        (
            Site("hamburg", 53.55, 9.99),
            Site("berlin", 52.52, 13.40),
            Site("cologne", 50.94, 6.96),
            Site("munich", 48.14, 11.58),
            Site("north-sea-offshore", 54.35, 6.30, offshore=True),
        ),
    ),
    "BE": ZoneInfo(
        "BE",
        "10YBE----------2",
        "Europe/Brussels",
        "BE",
        (
            Site("brussels", 50.85, 4.35),
            Site("antwerp", 51.22, 4.40),
            Site("liege", 50.63, 5.57),
            Site("belgian-offshore", 51.60, 2.90, offshore=True),
        ),
    ),
    "NL": ZoneInfo(
        "NL",
        "10YNL----------L",
        "Europe/Amsterdam",
        "NL",
        (
            Site("amsterdam", 52.37, 4.90),
            Site("rotterdam", 51.92, 4.48),
            Site("groningen", 53.22, 6.57),
            Site("dutch-offshore", 52.70, 3.80, offshore=True),
        ),
    ),
    "FR": ZoneInfo(
        "FR",
        "10YFR-RTE------C",
        "Europe/Paris",
        "FR",
        (
            Site("paris", 48.86, 2.35),
            Site("lille", 50.63, 3.06),
            Site("lyon", 45.76, 4.84),
            Site("marseille", 43.30, 5.37),
            Site("atlantic-offshore", 47.10, -2.60, offshore=True),
        ),
    ),
    "AT": ZoneInfo(
        "AT",
        "10YAT-APG------L",
        "Europe/Vienna",
        "AT",
        (
            Site("vienna", 48.21, 16.37),
            Site("graz", 47.07, 15.44),
            Site("linz", 48.31, 14.29),
        ),
    ),
}

ZONE_BY_EIC: dict[str, str] = {info.eic: code for code, info in ZONES.items()}


def zone_info(zone: str) -> ZoneInfo:
    """The zone's static facts; a clear error for a zone we have no data for."""
    from tasks.errors import ConfigError

    try:
        return ZONES[zone]
    except KeyError:
        raise ConfigError(f"unknown bidding zone {zone!r}; known: {', '.join(ZONES)}") from None
