"""Replay source: serve an hourly epftoolbox-layout CSV day by day as inbox files.

The CSV (e.g. the epftoolbox DE.csv / BE.csv) has a datetime first column, the
day-ahead price second, and two exogenous day-ahead forecasts after it.
Mapping to the source files (docs/sources.md):

* price                       -> ``entsoe_A44_<zone>_<day>.xml`` (PT60M, curveType A01)
* the exogenous column whose header mentions "load"
                              -> ``entsoe_A65_<zone>_<day>_A01.xml`` (load forecast)
* the other exogenous column  -> ``entsoe_A69_<zone>_<day>_A01.xml``: the whole
  series as psrType B19 (so ``wind_mw`` carries it) and a zero B16 series, i.e. a
  generic generation forecast in the renewables slot. The CSV cannot be split
  into wind and solar; residual load (load - wind - solar) stays right.
  If no header mentions "load", the first exogenous column is the load forecast.

DST: the files keep 24 rows per local day, labelled 00:00..23:00 local clock
time. Each UTC hour of the market day takes the row of its local clock hour:
on the 23-hour spring day the row labelled 02:00 (a filler; that hour does not
exist) is dropped, on the 25-hour autumn day the 02:00 row serves both 02:00
CEST and 02:00 CET. Replayed documents are hourly; run with DAP_MTU_MINUTES=60.
There are no actual load, weather or meter files in replay mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from devtools.simulator.publish import inbox_name, render
from tasks.errors import ConfigError, MissingInputError
from tasks.storage import write_bytes_atomic
from tasks.timeutil import days, mtu_starts_utc

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import Settings

Progress = Callable[[int, int], None]
REPLAY_KINDS = ("A44", "A65_A01", "A69")


@lru_cache(maxsize=4)
def _load_csv(path: str, mtime: float) -> tuple[pd.DataFrame, str, str]:
    """The CSV indexed by local (date, hour), with the names of the load and other exogenous columns."""
    import pandas as pd

    del mtime  # part of the cache key only: a changed file is read again
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read replay CSV {path}: {exc}") from None
    if raw.shape[1] < 4:
        raise ConfigError(
            f"replay CSV {path} needs 4 columns (datetime, price, 2 forecasts), has {raw.shape[1]}"
        )
    cols = [str(c) for c in raw.columns]
    raw.columns = cols
    stamp = pd.to_datetime(raw[cols[0]], errors="coerce")
    if stamp.isna().any():
        raise ConfigError(f"replay CSV {path}: first column has values that are not datetimes")
    exo = cols[2:4]
    loads = [c for c in exo if "load" in c.lower()]
    load_col = loads[0] if len(loads) == 1 else exo[0]
    other_col = exo[1] if load_col == exo[0] else exo[0]
    frame = pd.DataFrame(
        {
            "day": stamp.dt.date,
            "hour": stamp.dt.hour,
            "price": pd.to_numeric(raw[cols[1]], errors="coerce"),
            "load": pd.to_numeric(raw[load_col], errors="coerce"),
            "other": pd.to_numeric(raw[other_col], errors="coerce"),
        }
    )
    frame = frame.drop_duplicates(["day", "hour"], keep="first").set_index(["day", "hour"]).sort_index()
    return frame, load_col, other_col


def load_replay_csv(path: Path) -> tuple[pd.DataFrame, str, str]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"replay CSV {path} does not exist (DAP_REPLAY_CSV)")
    return _load_csv(str(path.resolve()), path.stat().st_mtime)


def replay_day_frames(csv_path: Path, day: date, tz: str) -> dict[str, pd.DataFrame]:
    """Processed-schema frames of one local day from the CSV (hourly, DST mapped as documented)."""
    import numpy as np
    import pandas as pd

    frame, _, _ = load_replay_csv(csv_path)
    try:
        rows = frame.loc[day]
    except KeyError:
        days_index = frame.index.get_level_values(0)
        raise MissingInputError(
            f"replay CSV {csv_path} has no rows for {day} (covers {days_index.min()}..{days_index.max()})"
        ) from None
    starts = mtu_starts_utc(day, tz, 60)
    local_hours = [s.astimezone(ZoneInfo(tz)).hour for s in starts]
    missing = sorted(set(local_hours) - set(rows.index))
    if missing:
        raise MissingInputError(f"replay CSV {csv_path}: {day} lacks local hours {missing}")
    picked = rows.loc[local_hours]
    idx = pd.DatetimeIndex(starts).tz_convert("UTC")
    res = np.full(len(idx), 60, dtype=np.int64)
    return {
        "day_ahead_prices": pd.DataFrame(
            {"timestamp_utc": idx, "resolution_minutes": res, "price_eur_mwh": picked["price"].to_numpy()}
        ),
        "load_forecast": pd.DataFrame(
            {"timestamp_utc": idx, "resolution_minutes": res, "load_mw": picked["load"].to_numpy()}
        ),
        "renewables_forecast": pd.DataFrame(
            {
                "timestamp_utc": idx,
                "resolution_minutes": res,
                "wind_mw": picked["other"].to_numpy(),
                "solar_mw": np.zeros(len(idx)),
            }
        ),
    }


def _write(
    settings: Settings,
    csv_path: Path,
    plan: Mapping[date, tuple[str, ...]],
    inbox: Path,
    *,
    zones: Iterable[str] | None,
    progress: Progress | None,
) -> list[Path]:
    from devtools.simulator.writers import write_prices_xml

    tz = settings.market_timezone
    zone_list = list(zones) if zones else list(settings.zones)
    total = len(plan) * len(zone_list)
    written: list[Path] = []
    done = 0
    for zone in zone_list:
        for day, kinds in plan.items():
            frames = replay_day_frames(csv_path, day, tz)
            for kind in kinds:
                if kind == "A44":
                    # Historic prices were published as plain A01 curves.
                    data = write_prices_xml(zone, frames["day_ahead_prices"], tz=tz, curve_type="A01")
                else:
                    data = render(kind, zone, day, frames, tz)
                written.append(write_bytes_atomic(Path(inbox) / inbox_name(kind, zone, day), data))
            done += 1
            if progress is not None:
                progress(done, total)
    return written


def replay_for_run(
    settings: Settings, csv_path: Path, delivery_day: date, inbox: Path, zones: Iterable[str] | None = None
) -> list[Path]:
    """What the replayed market had published by gate closure on D-1: prices of D-1, forecasts of D."""
    plan = {delivery_day - timedelta(days=1): ("A44",), delivery_day: ("A65_A01", "A69")}
    return _write(settings, csv_path, plan, inbox, zones=zones, progress=None)


def replay_history(  # noqa: PLR0917 - mirrors publish_history, positional as documented
    settings: Settings,
    csv_path: Path,
    first_day: date,
    last_day: date,
    inbox: Path,
    zones: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """All replayed files of every day in [first_day, last_day]."""
    if first_day > last_day:
        raise ValueError(f"first_day {first_day} is after last_day {last_day}")
    plan = dict.fromkeys(days(first_day, last_day), REPLAY_KINDS)
    return _write(settings, csv_path, plan, inbox, zones=zones, progress=progress)
