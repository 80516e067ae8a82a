"""Feature rows of one delivery day, shared by training and serving.

``python -m tasks.features --delivery-date D --zone Z [--backfill-from DAY]``
writes ``features/zone=Z/<D>.parquet``: one row per market time unit of D
(92/96/100 or 23/24/25), no target. Only inputs published before the gate
closure on D-1 are read: day-ahead prices of D-1, D-2, D-3 and D-7, the load,
wind/solar and weather forecasts of D, and the forecasts of D-1 and D-7 as
exogenous lags. Nothing of D's prices or actuals is touched, so a feature row
cannot look ahead.

Lagged days are aligned by *local clock position* (the 08:15 MTU of D gets
08:15 of D-7), which keeps the daily shape across DST switches: a lag day
without 02:00–02:59 (spring) lends its previous MTU, a lag day with that hour
twice (autumn) lends the mean of both.

The models take one row per delivery day on a fixed slot grid (``24·60/MTU``
slots by local wall clock): :func:`day_matrix` flattens a day's rows onto the
grid and :func:`slot_index` maps predictions back. On a 23-hour day the slots
of the missing hour are filled with the previous slot's values (the forecast
for them is dropped again); on a 25-hour day the two rows of the repeated hour
share one slot (their inputs are averaged and both get the slot's forecast).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, GateClosedError, MissingInputError
from tasks.storage import Layout, read_lineage, write_parquet_atomic
from tasks.timeutil import days, mtu_starts_utc, public_holidays

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

PRICE_LAGS = (1, 2, 3, 7)
EXO_COLUMNS = ("load_mw", "wind_mw", "solar_mw")
EXO_LAGS = (1, 7)
WEATHER_COLUMNS = ("temperature_c", "wind_speed_ms", "ghi_w_m2")
CALENDAR_COLUMNS = ("slot", "hour", "minute", "weekday", "month", "is_holiday")

#: Per-MTU numeric columns the models read (flattened over the slot grid).
PRICE_LAG_COLUMNS = tuple(f"price_lag{k}" for k in PRICE_LAGS)
EXO_LAG_COLUMNS = tuple(f"{c}_lag{k}" for c in EXO_COLUMNS for k in EXO_LAGS)
SLOT_COLUMNS = (*PRICE_LAG_COLUMNS, *EXO_COLUMNS, *EXO_LAG_COLUMNS, *WEATHER_COLUMNS)
FEATURE_COLUMNS = ("timestamp_utc", "resolution_minutes", *CALENDAR_COLUMNS, *SLOT_COLUMNS)

#: Separates a neighbouring zone from its series' names (``"DE_LU: load_mw"``); the
#: backtest's design names a neighbour's series the same way.
NEIGHBOUR_SEP = ": "


def neighbour_column(zone: str, column: str) -> str:
    """The name of a neighbouring zone's series among another zone's inputs (``"DE_LU: load_mw"``)."""
    return f"{zone}{NEIGHBOUR_SEP}{column}"


def neighbour_of(column: str) -> str | None:
    """The neighbouring zone a column comes from; None for the zone's own."""
    zone, sep, _ = column.partition(NEIGHBOUR_SEP)
    return zone if sep else None


def is_neighbour_column(column: str) -> bool:
    return neighbour_of(column) is not None


def neighbour_columns(neighbours: Sequence[str]) -> tuple[str, ...]:
    """Feature columns a zone gets from coupled zones: their load and wind/solar forecasts of D and lags."""
    return tuple(neighbour_column(zone, c) for zone in neighbours for c in (*EXO_COLUMNS, *EXO_LAG_COLUMNS))


def feature_columns(neighbours: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns of a feature file of a zone with these neighbours (:data:`FEATURE_COLUMNS` first)."""
    return (*FEATURE_COLUMNS, *neighbour_columns(neighbours))


#: Holiday calendar of each bidding zone (``holidays`` country code).
ZONE_COUNTRY = {
    "DE_LU": "DE",
    "DE": "DE",
    "BE": "BE",
    "NL": "NL",
    "FR": "FR",
    "AT": "AT",
    "CH": "CH",
    "PL": "PL",
    "CZ": "CZ",
    "DK1": "DK",
    "DK2": "DK",
    "ES": "ES",
    "PT": "PT",
}


def n_slots(mtu_minutes: int) -> int:
    """Slots of the fixed daily grid: 96 for 15-minute MTUs, 24 for hourly ones."""
    return 24 * 60 // mtu_minutes


def wall_minutes(times_utc: pd.Series, tz: str) -> np.ndarray:
    local = times_utc.dt.tz_convert(tz)
    return (local.dt.hour * 60 + local.dt.minute).to_numpy()


def by_clock(frame: pd.DataFrame, column: str, tz: str, target_minutes: np.ndarray, mtu: int) -> np.ndarray:
    """Values of a lag day at the target wall-clock minutes (see module docstring)."""
    import pandas as pd

    keys = wall_minutes(frame["timestamp_utc"], tz) // mtu * mtu
    series = pd.Series(frame[column].to_numpy(dtype=float)).groupby(keys).mean().sort_index()
    # Coarser sources (hourly data, 15-minute MTU) and a spring lag day's gap:
    # take the last value at or before the target clock position.
    out = series.reindex(sorted(set(series.index) | set(target_minutes.tolist()))).ffill().bfill()
    return out.reindex(target_minutes).to_numpy(dtype=float)


def _by_time(frame: pd.DataFrame, column: str, targets: pd.DatetimeIndex, mtu: int) -> np.ndarray:
    """Values of D aligned on D's MTU starts: finer sources averaged, coarser ones repeated."""
    import numpy as np

    keys = frame["timestamp_utc"].dt.floor(f"{mtu}min")
    series = frame[column].astype(float).groupby(keys).mean().sort_index()
    res = int(frame["resolution_minutes"].max()) if "resolution_minutes" in frame else mtu
    exact = series.reindex(targets).to_numpy(dtype=float)
    if res > mtu and np.isnan(exact).any():
        # A coarser source (hourly data, 15-minute MTUs): each MTU gets its interval's value.
        coarse = series.reindex(targets.floor(f"{res}min")).to_numpy(dtype=float)
        exact = np.where(np.isnan(exact), coarse, exact)
    return exact


def holiday_dates(zone: str, years: Sequence[int]) -> set[date]:
    """Public holidays of the zone's country (empty for zones without a calendar)."""
    country = ZONE_COUNTRY.get(zone, zone[:2])
    calendar = public_holidays(country, years)
    if calendar is None:
        log.warning("no holiday calendar for zone %s (country %s); is_holiday is 0", zone, country)
        return set()
    return set(calendar)


@dataclass
class Inputs:
    """Reads processed files once per (dataset, day) so a backfill is fast."""

    layout: Layout
    zone: str
    cache: dict[tuple[str, date], Any] = field(default_factory=dict)
    lineage: dict[tuple[str, date], Any] = field(default_factory=dict)  # raw revision per file read

    def get(self, dataset: str, day: date, *, required: bool = True) -> pd.DataFrame | None:
        import pandas as pd

        key = (dataset, day)
        if key not in self.cache:
            path = self.layout.processed_file(dataset, self.zone, day)
            self.cache[key] = pd.read_parquet(path) if path.exists() else None
            self.lineage[key] = read_lineage(path) if path.exists() else None
        frame = self.cache[key]
        if frame is None or len(frame) == 0:
            if required:
                path = self.layout.processed_file(dataset, self.zone, day)
                raise MissingInputError(
                    f"{dataset} for zone {self.zone} day {day.isoformat()} is missing ({path}); "
                    "run tasks.ingest for that day first"
                )
            return None
        return frame


Getter = Callable[..., "pd.DataFrame | None"]


def _need(get: Getter, zone: str, dataset: str, data_day: date) -> pd.DataFrame:
    frame = get(dataset, data_day)
    if frame is None:
        raise MissingInputError(f"{dataset} for zone {zone} day {data_day.isoformat()} is missing")
    return frame


def _exogenous(
    zone: str,
    day: date,
    get: Getter,
    *,
    starts: pd.DatetimeIndex,
    wall: np.ndarray,
    tz: str,
    mtu_minutes: int,
) -> dict[str, np.ndarray]:
    """One zone's load and wind/solar forecasts of D (by time) and of the lag days (by clock)."""
    source = {"load_mw": "load_forecast", "wind_mw": "renewables_forecast", "solar_mw": "renewables_forecast"}
    out = {c: _by_time(_need(get, zone, source[c], day), c, starts, mtu_minutes) for c in EXO_COLUMNS}
    for lag in EXO_LAGS:
        lag_day = day - timedelta(days=lag)
        for c in EXO_COLUMNS:
            out[f"{c}_lag{lag}"] = by_clock(_need(get, zone, source[c], lag_day), c, tz, wall, mtu_minutes)
    return out


def build_day(
    zone: str,
    day: date,
    get: Getter,
    *,
    tz: str,
    mtu_minutes: int,
    holidays_: set[date] | None = None,
    neighbours: Mapping[str, Getter] | None = None,
) -> pd.DataFrame:
    """Pure feature builder: ``get(dataset, day, required=...)`` returns a processed frame.

    ``neighbours`` maps coupled zones to their getters: their load and
    wind/solar forecasts join as ``"<zone>: <column>"`` (:func:`neighbour_columns`).
    """
    import numpy as np
    import pandas as pd

    starts = pd.DatetimeIndex(mtu_starts_utc(day, tz, mtu_minutes))
    local = starts.tz_convert(tz)
    wall = np.asarray(local.hour * 60 + local.minute)
    hol = holidays_ if holidays_ is not None else holiday_dates(zone, [day.year])
    out = pd.DataFrame(
        {
            "timestamp_utc": starts,
            "resolution_minutes": np.full(len(starts), mtu_minutes, dtype="int64"),
            "slot": (wall // mtu_minutes).astype("int64"),
            "hour": np.asarray(local.hour, dtype="int64"),
            "minute": np.asarray(local.minute, dtype="int64"),
            "weekday": np.full(len(starts), day.weekday(), dtype="int64"),
            "month": np.full(len(starts), day.month, dtype="int64"),
            "is_holiday": np.full(len(starts), int(day in hol), dtype="int64"),
        }
    )

    for lag in PRICE_LAGS:
        prices = _need(get, zone, "day_ahead_prices", day - timedelta(days=lag))
        out[f"price_lag{lag}"] = by_clock(prices, "price_eur_mwh", tz, wall, mtu_minutes)

    def exogenous(source_zone: str, source_get: Getter) -> dict[str, np.ndarray]:
        return _exogenous(
            source_zone, day, source_get, starts=starts, wall=wall, tz=tz, mtu_minutes=mtu_minutes
        )

    for column, values in exogenous(zone, get).items():
        out[column] = values
    weather = get("weather_forecast", day, required=False)
    for column in WEATHER_COLUMNS:
        if weather is not None and column in weather:
            # Mean over the zone's locations, then onto the MTU grid.
            means = pd.DataFrame(weather.groupby("timestamp_utc")[column].mean()).reset_index()
            means["resolution_minutes"] = int(weather["resolution_minutes"].max())
            out[column] = _by_time(means, column, starts, mtu_minutes)
        else:
            out[column] = np.nan
    for neighbour, get_neighbour in (neighbours or {}).items():
        for column, values in exogenous(neighbour, get_neighbour).items():
            out[neighbour_column(neighbour, column)] = values
    columns = feature_columns(tuple(neighbours or ()))
    required = [
        c for c in columns if (c in SLOT_COLUMNS and c not in WEATHER_COLUMNS) or is_neighbour_column(c)
    ]
    gaps = [c for c in required if out[c].isna().any()]
    if gaps:
        raise MissingInputError(
            f"features of zone {zone} day {day.isoformat()} have gaps in {gaps}: "
            "the processed inputs do not cover the whole day; re-ingest them"
        )
    return out[list(columns)]


def build_features(
    zone: str,
    day: date,
    settings: Settings | None = None,
    *,
    inputs: Inputs | None = None,
    neighbour_inputs: Mapping[str, Inputs] | None = None,
) -> Path:
    """Build and atomically write the feature file of one zone and delivery day.

    The zone's neighbours (``settings.neighbours_of``) must have their inputs of
    D landed and must not be gated for D: their forecasts become this zone's features.
    """
    settings = settings or get_settings()
    layout = Layout(settings.data_root)
    if zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (settings.zones = {list(settings.zones)})")
    neighbours = settings.neighbours_of(zone)
    for gated_zone in (zone, *neighbours):
        gate = layout.gate_file(gated_zone, day)
        if gate.exists():
            role = "" if gated_zone == zone else f" (a neighbour whose forecasts are features of {zone})"
            raise GateClosedError(
                f"zone {gated_zone}{role} day {day.isoformat()} failed a gate ({gate}); "
                "fix its inputs and remove the marker"
            )
    readers = {zone: inputs or Inputs(layout, zone)}
    readers.update({n: (neighbour_inputs or {}).get(n) or Inputs(layout, n) for n in neighbours})
    used: set[tuple[str, str, date]] = set()

    def getter(source_zone: str) -> Getter:
        def get(dataset: str, data_day: date, *, required: bool = True) -> pd.DataFrame | None:
            frame = readers[source_zone].get(dataset, data_day, required=required)
            if frame is not None:
                used.add((source_zone, dataset, data_day))
            return frame

        return get

    frame = build_day(
        zone,
        day,
        getter(zone),
        tz=settings.market_timezone,
        mtu_minutes=settings.mtu_minutes,
        holidays_=holiday_dates(zone, [day.year]),
        neighbours={n: getter(n) for n in neighbours},
    )
    sources = [
        {
            "dataset": dataset,
            "day": data_day.isoformat(),
            **({} if source_zone == zone else {"zone": source_zone}),
            **(readers[source_zone].lineage.get((dataset, data_day)) or {}),
        }
        for source_zone, dataset, data_day in sorted(used, key=lambda u: (u[0] != zone, u))
    ]
    return write_parquet_atomic(layout.features_file(zone, day), frame, lineage={"inputs": sources})


def _has_columns(path: Path, columns: Sequence[str]) -> bool:
    """Whether a feature file has every column (reads the Parquet footer only)."""
    import pyarrow.parquet as pq

    return set(columns) <= set(pq.read_schema(path).names)


def backfill(
    zone: str, first: date, last: date, settings: Settings | None = None, *, overwrite: bool = False
) -> tuple[list[Path], dict[str, str]]:
    """Build feature files for every day of ``first..last`` in one process.

    Days that are gated or lack inputs are skipped and reported (reason per
    day), so a training window can use whatever history is clean. A file
    built before a neighbour was configured lacks its columns and is rebuilt.
    """
    settings = settings or get_settings()
    layout = Layout(settings.data_root)
    inputs = Inputs(layout, zone)
    neighbours = settings.neighbours_of(zone)
    neighbour_inputs = {n: Inputs(layout, n) for n in neighbours}
    expected = neighbour_columns(neighbours)
    built: list[Path] = []
    skipped: dict[str, str] = {}
    for day in days(first, last):
        path = layout.features_file(zone, day)
        if path.exists() and not overwrite and (not expected or _has_columns(path, expected)):
            built.append(path)
            continue
        try:
            built.append(
                build_features(zone, day, settings, inputs=inputs, neighbour_inputs=neighbour_inputs)
            )
        except (MissingInputError, GateClosedError) as exc:
            skipped[day.isoformat()] = f"{type(exc).__name__}: {exc}"
    return built, skipped


def read_features(zone: str, day: date, settings: Settings | None = None) -> pd.DataFrame:
    """The feature file of one day, with a clear error when it is not built."""
    import pandas as pd

    settings = settings or get_settings()
    path = Layout(settings.data_root).features_file(zone, day)
    if not path.exists():
        raise MissingInputError(
            f"features of zone {zone} day {day.isoformat()} are missing ({path}); "
            f"run python -m tasks.features --delivery-date {day.isoformat()} --zone {zone} first"
        )
    return pd.read_parquet(path)


# --- one row per delivery day for the models ---------------------------------

DAY_COLUMNS = (*(f"weekday_{i}" for i in range(7)), "is_holiday", "season_sin", "season_cos")


def slot_values(frame: pd.DataFrame, columns: Sequence[str], slots: int) -> np.ndarray:
    """``[slots, len(columns)]`` values of a day on the fixed grid (DST rules above)."""
    grouped = frame.groupby("slot")[list(columns)].mean()
    return grouped.reindex(range(slots)).ffill().bfill().to_numpy(dtype=float)


def day_vector(frame: pd.DataFrame, columns: Sequence[str], slots: int) -> np.ndarray:
    """One day's model input: slot-major flattened ``columns`` plus day-level calendar."""
    import numpy as np

    first = frame.iloc[0]
    weekday = np.zeros(7)
    weekday[int(first["weekday"])] = 1.0
    angle = 2 * np.pi * (int(first["month"]) - 1) / 12
    calendar = np.concatenate([weekday, [float(first["is_holiday"]), np.sin(angle), np.cos(angle)]])
    return np.concatenate([slot_values(frame, columns, slots).ravel(), calendar])


def design_names(columns: Sequence[str], slots: int) -> list[str]:
    """Names of the entries of :func:`day_vector` (for logging and LEAR coefficients)."""
    return [f"{c}@{s}" for s in range(slots) for c in columns] + list(DAY_COLUMNS)


def slot_index(frame: pd.DataFrame) -> np.ndarray:
    """For each row of a day, the slot whose forecast it gets."""
    return frame["slot"].to_numpy(dtype=int)


def target_slots(
    source: pd.DataFrame,
    day: date,
    tz: str,
    mtu_minutes: int,
    *,
    column: str = "price_eur_mwh",
    dataset: str = "day_ahead_prices",
) -> np.ndarray:
    """One day of a processed dataset's ``column`` on the slot grid (a training target).

    Day-ahead prices for the price models, actual load for the load model.
    """
    import numpy as np
    import pandas as pd

    starts = pd.DatetimeIndex(mtu_starts_utc(day, tz, mtu_minutes))
    local = starts.tz_convert(tz)
    wall = np.asarray(local.hour * 60 + local.minute)
    frame = pd.DataFrame({"slot": wall // mtu_minutes})
    frame["value"] = _by_time(source, column, starts, mtu_minutes)
    if frame["value"].isna().any():
        raise MissingInputError(f"{dataset} of day {day.isoformat()} do not cover the whole day")
    return slot_values(frame, ["value"], n_slots(mtu_minutes))[:, 0]


# --- CLI ---------------------------------------------------------------------


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    zone = args.zone or settings.zones[0]
    day = day_arg(args)
    if args.backfill_from:
        built, skipped = backfill(zone, args.backfill_from, day, settings, overwrite=args.overwrite)
        path = Layout(settings.data_root).features_file(zone, day)
        if not path.exists():
            reason = skipped.get(day.isoformat(), "not built")
            raise MissingInputError(f"features of zone {zone} day {day.isoformat()}: {reason}")
        import pandas as pd

        rows = len(pd.read_parquet(path))
        return {"path": str(path), "rows": rows, "built": len(built), "skipped": skipped}
    path = build_features(zone, day, settings)
    import pandas as pd

    return {"path": str(path), "rows": len(pd.read_parquet(path)), "built": 1, "skipped": {}}


def parser() -> argparse.ArgumentParser:
    from tasks.timeutil import parse_day

    p = base_parser("Build the feature rows of one delivery day (no target, no look-ahead).")
    p.add_argument(
        "--backfill-from", type=parse_day, default=None, help="Also build every day from DAY to D (history)."
    )
    p.add_argument("--overwrite", action="store_true", help="With --backfill-from: rebuild existing days.")
    return p


if __name__ == "__main__":
    exit_stage(run_stage(main, parser()))
