"""Development upstream: a deterministic market simulator and a CSV replay that fill the inbox.

In production NiFi fills the inbox from the real sources; in development and
the demo this package plays that part. ``simulate_day`` gives the truth of one
day; ``fill_inbox`` writes what the configured source (``DAP_SOURCE``:
simulator or replay) had published by gate closure for the run of a delivery
day, as the ENTSO-E XML, weather JSON and meter CSV files the real sources
deliver (``devtools.simulator.writers``; see docs/ingestion.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devtools.simulator.model import simulate_day
from devtools.simulator.publish import publish_for_run, publish_history

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date
    from pathlib import Path

    from devtools.settings import SimulatorSettings
    from tasks.config import Settings


def fill_inbox(
    settings: Settings,
    run_day: date,
    inbox: Path | None = None,
    zones: Sequence[str] | None = None,
    *,
    sim: SimulatorSettings | None = None,
) -> list[Path]:
    """Publish what the configured source had delivered by D-1 gate closure for the run of ``run_day``.

    ``source=simulator`` simulates; ``source=replay`` serves each zone's CSV;
    ``source=inbox`` publishes nothing (something else fills the inbox).
    ``sim``: seed, drill faults and replay CSVs (default: from the ``DAP_*`` environment).
    """
    from devtools.settings import SimulatorSettings
    from devtools.simulator.replay import replay_for_run

    sim = sim if sim is not None else SimulatorSettings()
    inbox = inbox or settings.inbox
    zones = list(zones or settings.zones)
    if settings.source == "simulator":
        return list(publish_for_run(settings, run_day, inbox, zones, sim=sim))
    if settings.source == "replay":
        return [
            path
            for zone in zones
            for path in replay_for_run(settings, sim.replay_csv_for(zone), run_day, inbox, [zone])
        ]
    return []


__all__ = ["fill_inbox", "publish_for_run", "publish_history", "simulate_day"]
