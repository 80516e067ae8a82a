"""Settings of the development upstream (simulator and replay), apart from the product's.

The product reads ``tasks.config.Settings``; only the development tools read
these. Both take ``DAP_*`` env vars, so one environment configures both, e.g.
``DAP_SOURCE=replay DAP_REPLAY_CSVS='{"BE": "BE.csv", "DE_LU": "DE.csv"}'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.errors import ConfigError

Fault = Literal["load_above_capacity", "price_above_cap", "missing_interval"]


class SimulatorSettings(BaseSettings):
    """What the simulator or the replay publishes; env vars ``DAP_<FIELD>`` override the defaults."""

    model_config = SettingsConfigDict(env_prefix="DAP_", frozen=True, extra="ignore")

    simulator_seed: int = Field(default=7, description="Seed of the simulated market.")
    simulator_faults: dict[str, Fault] = Field(
        default_factory=dict,
        description=(
            "Drills: bad deliveries the simulator publishes, {'DAY' or 'ZONE:DAY': fault}, e.g. "
            'DAP_SIMULATOR_FAULTS=\'{"BE:2026-10-26": "load_above_capacity"}\' (devtools/README.md).'
        ),
    )
    replay_csv: Path | None = Field(
        default=None, description="Hourly epftoolbox-layout CSV for source=replay (zones not in replay_csvs)."
    )
    replay_csvs: dict[str, Path] = Field(
        default_factory=dict,
        description='Per-zone replay CSVs, e.g. DAP_REPLAY_CSVS=\'{"BE": "BE.csv", "DE_LU": "DE.csv"}\'.',
    )

    def fault_of(self, zone: str, day: str) -> Fault | None:
        """The drill fault published for ``zone`` on data day ``day`` (ISO), if any."""
        return self.simulator_faults.get(f"{zone}:{day}") or self.simulator_faults.get(day)

    def replay_csv_for(self, zone: str) -> Path:
        """The CSV replayed as ``zone`` (``replay_csvs`` first, else ``replay_csv``)."""
        csv = self.replay_csvs.get(zone, self.replay_csv)
        if csv is None:
            raise ConfigError(
                f"source=replay needs DAP_REPLAY_CSV or a DAP_REPLAY_CSVS entry for zone {zone} "
                "(an hourly epftoolbox-layout CSV)"
            )
        return csv
