"""Embedded market simulator: deterministic truth per zone and day, published as source files.

``simulate_day`` gives the truth of one day; ``publish_for_run`` and
``publish_history`` write the ENTSO-E XML, weather JSON and meter CSV files
the real sources would have delivered (see docs/sources.md).
"""

from __future__ import annotations

from tasks.simulator.model import simulate_day
from tasks.simulator.publish import publish_for_run, publish_history

__all__ = ["publish_for_run", "publish_history", "simulate_day"]
