"""What one Airflow run sets on the NiFi flow's parameter context before it starts the flow.

The flow (``nifi/day_ahead_ingest.json``) fetches exactly the files the run of
delivery day D needs; D and the zones come from the Airflow run, never from
NiFi's clock, so manual runs and backfills ask for the right day. The ENTSO-E
request list names, per zone and document, the query parameters the
Transparency Platform API requires (A44 prices: ``in_Domain`` and ``out_Domain``;
A65 load: ``processType`` and ``outBiddingZone_Domain``; A69 wind and solar:
``processType`` and ``in_Domain``), and the data day relative to D that
``docs/sources.md`` fixes for each file. Standard library only: imported at DAG
parse time through ``tasks.nifi``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from tasks.sources.zones import ZONES

#: Parameters of the flow's context that Airflow sets on every run.
DELIVERY_DAY = "delivery.day"
ENTSOE_REQUESTS = "entsoe.requests"
WEATHER_REQUESTS = "weather.requests"
MARKET_TIMEZONE = "market.timezone"


@dataclass(frozen=True)
class EntsoeDocument:
    """One ENTSO-E request of a zone: document, process type, which domains, which data day."""

    document_type: str
    process_type: str
    domains: tuple[str, ...]  # query parameters that carry the zone's EIC code
    day_offset: int  # data day relative to the delivery day D
    suffix: str  # file-name suffix (docs/sources.md)


#: What the run of D fetches per zone: prices of D-1 (published), the TSO load forecast of D
#: and the actual load of D-2, the wind/solar forecast of D.
ENTSOE_DOCUMENTS = (
    EntsoeDocument("A44", "", ("in_Domain", "out_Domain"), -1, ""),
    EntsoeDocument("A65", "A01", ("outBiddingZone_Domain",), 0, "_A01"),
    EntsoeDocument("A65", "A16", ("outBiddingZone_Domain",), -2, "_A16"),
    EntsoeDocument("A69", "A01", ("in_Domain",), 0, "_A01"),
)

#: Request-object field (a flowfile attribute in NiFi) per ENTSO-E domain parameter.
DOMAIN_FIELDS = {
    "in_Domain": "inDomain",
    "out_Domain": "outDomain",
    "outBiddingZone_Domain": "outBiddingZone",
}


def entsoe_requests(zones: Iterable[str]) -> list[dict[str, object]]:
    """The ENTSO-E request objects of the zones, in the shape the flow's EvaluateJsonPath reads."""
    requests: list[dict[str, object]] = []
    for zone in zones:
        eic = ZONES[zone].eic
        for doc in ENTSOE_DOCUMENTS:
            request: dict[str, object] = {
                "documentType": doc.document_type,
                "processType": doc.process_type,
                "zone": zone,
                **{field: (eic if param in doc.domains else "") for param, field in DOMAIN_FIELDS.items()},
                "dayOffset": doc.day_offset,
                "suffix": doc.suffix,
            }
            requests.append(request)
    return requests


def run_parameters(delivery_day: date, zones: Iterable[str], market_timezone: str) -> dict[str, str]:
    """Parameter values for the run of ``delivery_day`` (all non-sensitive)."""
    zones = tuple(zones)
    unknown = [z for z in zones if z not in ZONES]
    if unknown:
        raise ValueError(f"unknown bidding zone(s) {unknown}; known: {', '.join(ZONES)}")
    return {
        DELIVERY_DAY: delivery_day.isoformat(),
        ENTSOE_REQUESTS: json.dumps(entsoe_requests(zones)),
        WEATHER_REQUESTS: json.dumps([{"zone": zone} for zone in zones]),
        MARKET_TIMEZONE: market_timezone,
    }
