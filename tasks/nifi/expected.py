"""Which inbox files the run of delivery day D waits for (names as in docs/sources.md).

Standard library only. A file counts as present when it is in the inbox, in an
ingest claim folder, or already landed in the raw zone (a re-run of a day whose
files were ingested before must not wait forever).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tasks import datasets as ds
from tasks.storage import Layout


def expected_inbox_files(zones: tuple[str, ...] | list[str], run_day: date) -> list[tuple[str, str, date]]:
    """``(file name, raw source, data day)`` of every file the run of D needs.

    The files behind tasks.ingest_checks.REQUIRED_FOR_RUN: prices of D-1, load
    and wind/solar forecasts of D. Weather, actual load and meters are optional.
    """
    prices = ds.data_day(ds.PRICES, run_day)
    load = ds.data_day(ds.LOAD_FORECAST, run_day)
    renewables = ds.data_day(ds.RENEWABLES_FORECAST, run_day)
    out = []
    for zone in zones:
        out += [
            (f"entsoe_A44_{zone}_{prices.isoformat()}.xml", "entsoe_A44", prices),
            (f"entsoe_A65_{zone}_{load.isoformat()}_A01.xml", "entsoe_A65", load),
            (f"entsoe_A69_{zone}_{renewables.isoformat()}_A01.xml", "entsoe_A69", renewables),
        ]
    return out


def _landed(layout: Layout, source: str, zone: str, day: date, name: str) -> bool:
    raw_dir = layout.raw_dir(source, zone, day)
    stem, _, suffix = name.rpartition(".")
    return raw_dir.is_dir() and any(raw_dir.glob(f"{stem}.r*.{suffix}"))


def missing_expected_files(
    inbox: Path, data_root: Path, zones: tuple[str, ...] | list[str], run_day: date
) -> list[str]:
    """Names of expected files that are neither in the inbox nor landed yet."""
    layout = Layout(data_root)
    claimed = {p.name for p in (inbox / ".claimed").glob("*/*")} if (inbox / ".claimed").is_dir() else set()
    missing = []
    for zone in zones:
        for name, source, day in expected_inbox_files([zone], run_day):
            if (inbox / name).is_file() or name in claimed or _landed(layout, source, zone, day, name):
                continue
            missing.append(name)
    return missing
