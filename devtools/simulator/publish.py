"""Write what the sources publish, as files in the inbox (names: docs/sources.md).

A run for delivery day D fires on D-1 before gate closure. By then the
platform has published day-ahead prices up to D-1, the load, wind/solar and
weather forecasts for D, and actual load and meter readings up to D-2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tasks.storage import write_bytes_atomic
from tasks.timeutil import days

if TYPE_CHECKING:
    import pandas as pd

    from devtools.settings import SimulatorSettings
    from tasks.config import Settings

Progress = Callable[[int, int], None]


def inbox_name(kind: str, zone: str, day: date) -> str:
    """Inbox file name of one source file: kind is A44, A65_A01, A65_A16, A69, weather or meter."""
    d = day.isoformat()
    if kind == "A44":
        return f"entsoe_A44_{zone}_{d}.xml"
    if kind in ("A65_A01", "A65_A16"):
        return f"entsoe_A65_{zone}_{d}_{kind[4:]}.xml"
    if kind == "A69":
        return f"entsoe_A69_{zone}_{d}_A01.xml"
    if kind == "weather":
        return f"weather_{zone}_{d}.json"
    if kind == "meter":
        return f"meter_{zone}_{d}.csv"
    raise ValueError(f"unknown source file kind {kind!r}")


def _local(day: date, hh: int, tz: str) -> datetime:
    return datetime.combine(day, time(hh), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def render(kind: str, zone: str, day: date, frames: dict[str, pd.DataFrame], tz: str) -> bytes:
    """Bytes of one source file for data day ``day``, from simulated (or replayed) frames."""
    from devtools.simulator.writers import (
        write_load_xml,
        write_meter_csv,
        write_prices_xml,
        write_renewables_xml,
        write_weather_json,
    )

    before = day - timedelta(days=1)
    if kind == "A44":
        return write_prices_xml(zone, frames["day_ahead_prices"], tz=tz, created=_local(before, 13, tz))
    if kind == "A65_A01":
        return write_load_xml(
            zone, frames["load_forecast"], process_type="A01", tz=tz, created=_local(before, 10, tz)
        )
    if kind == "A65_A16":
        return write_load_xml(
            zone,
            frames["load_actual"],
            process_type="A16",
            tz=tz,
            created=_local(day + timedelta(days=1), 1, tz),
        )
    if kind == "A69":
        return write_renewables_xml(
            zone, frames["renewables_forecast"], tz=tz, created=_local(before, 18, tz)
        )
    if kind == "weather":
        issued = datetime.combine(before, time(0), tzinfo=UTC)  # the 00 UTC model run of D-1
        return write_weather_json(zone, day, frames["weather_forecast"], issued_at=issued)
    if kind == "meter":
        return write_meter_csv(zone, frames["meter_readings"])
    raise ValueError(f"unknown source file kind {kind!r}")


ALL_KINDS = ("A44", "A65_A01", "A65_A16", "A69", "weather", "meter")


def _zones(settings: Settings, zones: Iterable[str] | None) -> list[str]:
    return list(zones) if zones else list(settings.zones)


def _retail_share(settings: Settings, zone: str) -> float | None:
    loads = settings.load_portfolio().for_zone(zone).retail_loads
    return sum(r.share_of_system_load for r in loads) if loads else None


def _frames(
    settings: Settings, sim: SimulatorSettings, zone: str, day: date, share: float | None
) -> dict[str, pd.DataFrame]:
    from devtools.simulator.model import simulate_frames

    frames = simulate_frames(
        zone,
        day,
        seed=sim.simulator_seed,
        tz=settings.market_timezone,
        mtu_minutes=settings.mtu_minutes,
        retail_share=share,
    )
    fault = sim.fault_of(zone, day.isoformat())
    return apply_fault(frames, fault) if fault else frames


def _sim(sim: SimulatorSettings | None) -> SimulatorSettings:
    from devtools.settings import SimulatorSettings

    return sim if sim is not None else SimulatorSettings()


def apply_fault(frames: dict[str, pd.DataFrame], fault: str) -> dict[str, pd.DataFrame]:
    """A bad delivery for drills, each caught by a different defence (docs/sources.md).

    * ``load_above_capacity``: the TSO load forecast ×4 — well-formed, so ingest lands
      it, and the input quality gate (GX, physical limits) stops the day;
    * ``price_above_cap``: one price at 4500 EUR/MWh, above the SDAC cap — ingest
      quarantines the A44 document;
    * ``missing_interval``: one interval of the load forecast dropped — ingest
      quarantines the A65 document (incomplete day).
    """
    out = {name: frame.copy() for name, frame in frames.items()}
    if fault == "load_above_capacity":
        out["load_forecast"]["load_mw"] = out["load_forecast"]["load_mw"] * 4
    elif fault == "price_above_cap":
        prices = out["day_ahead_prices"]
        prices.loc[prices.index[len(prices) // 2], "price_eur_mwh"] = 4500.0
    elif fault == "missing_interval":
        load = out["load_forecast"]
        out["load_forecast"] = load.drop(index=load.index[len(load) // 2]).reset_index(drop=True)
    else:
        raise ValueError(f"unknown simulator fault {fault!r}")
    return out


def publish_for_run(
    settings: Settings,
    delivery_day: date,
    inbox: Path,
    zones: Iterable[str] | None = None,
    *,
    sim: SimulatorSettings | None = None,
) -> list[Path]:
    """Files the sources have published by gate closure on D-1, for the run of ``delivery_day``.

    ``sim``: seed and drill faults (default: from the ``DAP_*`` environment).
    """
    sim = _sim(sim)
    d = delivery_day
    wanted = {
        d - timedelta(days=1): ("A44",),
        d: ("A65_A01", "A69", "weather"),
        d - timedelta(days=2): ("A65_A16", "meter"),
    }
    written = []
    tz = settings.market_timezone
    for zone in _zones(settings, zones):
        share = _retail_share(settings, zone)
        for day, kinds in wanted.items():
            frames = _frames(settings, sim, zone, day, share)
            for kind in kinds:
                target = Path(inbox) / inbox_name(kind, zone, day)
                written.append(write_bytes_atomic(target, render(kind, zone, day, frames, tz)))
    return written


def publish_history(  # noqa: PLR0917 - the documented API takes zones/progress positionally too
    settings: Settings,
    first_day: date,
    last_day: date,
    inbox: Path,
    zones: Iterable[str] | None = None,
    progress: Progress | None = None,
    *,
    sim: SimulatorSettings | None = None,
) -> list[Path]:
    """Every source file of every day in [first_day, last_day] (bootstrap of history)."""
    sim = _sim(sim)
    if first_day > last_day:
        raise ValueError(f"first_day {first_day} is after last_day {last_day}")
    tz = settings.market_timezone
    zone_list = _zones(settings, zones)
    all_days = days(first_day, last_day)
    total = len(all_days) * len(zone_list)
    written: list[Path] = []
    done = 0
    for zone in zone_list:
        share = _retail_share(settings, zone)
        for day in all_days:
            frames = _frames(settings, sim, zone, day, share)
            for kind in ALL_KINDS:
                target = Path(inbox) / inbox_name(kind, zone, day)
                written.append(write_bytes_atomic(target, render(kind, zone, day, frames, tz)))
            done += 1
            if progress is not None:
                progress(done, total)
    return written
