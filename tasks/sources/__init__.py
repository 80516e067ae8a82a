"""Source formats: ENTSO-E XML (A44/A65/A69), weather JSON, meter CSV.

``parse_file(name, data)`` reads any inbox file into processed-schema frames;
the name only picks the format family, zone/day/unit/resolution come from the
content. Writers of these formats (for the simulator, replay and tests) live in
``devtools.simulator.writers``.
"""

from __future__ import annotations

from tasks.sources.base import PARSE_ERROR_CODES, ParsedDocument, ParseError

__all__ = ["PARSE_ERROR_CODES", "ParseError", "ParsedDocument", "parse_file", "source_of"]


def source_of(name: str) -> str:
    """The source family of an inbox file name (see docs/sources.md), for raw/quarantine paths."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith("entsoe_"):
        parts = base.split("_")
        return f"entsoe_{parts[1]}" if len(parts) > 1 else "entsoe"
    if base.startswith("weather_"):
        return "weather"
    if base.startswith("meter_"):
        return "meter"
    return "unknown"


def parse_file(name: str, data: bytes) -> list[ParsedDocument]:
    """Parse one delivered file; raises ParseError (with ``.code``) when it cannot be read."""
    lower = name.lower()
    if lower.endswith(".xml"):
        from tasks.sources.entsoe import parse_entsoe

        return parse_entsoe(data)
    if lower.endswith(".json"):
        from tasks.sources.weather import parse_weather

        return parse_weather(data)
    if lower.endswith(".csv"):
        from tasks.sources.meter import parse_meter

        return parse_meter(data)
    raise ParseError("unknown_format", f"{name}: expected .xml (ENTSO-E), .json (weather) or .csv (meter)")
