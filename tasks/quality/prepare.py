"""Derived columns the suites check, and the run parameters of each suite.

GX's built-in expectations look at one column at a time; the checks that
need context (timestamp on the day's DST-aware grid, gap to the next
interval, energy balance, monotone bids) are computed here as plain columns
so they stay real GX expectations that show up in Data Docs.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from tasks.timeutil import day_bounds_utc, mtu_count

if TYPE_CHECKING:
    import pandas as pd

#: Derived columns added by :func:`prepare_timeseries` (dropped from row samples).
DERIVED = ("_key", "_tz", "_offset_minutes", "_grid_remainder", "_gap_minutes")


def _timezone_name(series: pd.Series) -> str:
    import pandas as pd

    if not pd.api.types.is_datetime64_any_dtype(series):
        return "not-a-datetime"
    tz = getattr(series.dt, "tz", None)
    return "naive" if tz is None else str(tz)


def observed_resolution(frame: pd.DataFrame, default: int) -> int:
    """The day's resolution: the most common ``resolution_minutes`` (default if absent)."""
    if "resolution_minutes" not in frame or frame["resolution_minutes"].dropna().empty:
        return default
    return int(frame["resolution_minutes"].dropna().mode().iloc[0])


def prepare_timeseries(
    frame: pd.DataFrame,
    day: date,
    tz: str,
    *,
    resolution: int,
    group_by: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Copy of ``frame`` (index reset) with the derived timestamp columns.

    ``_offset_minutes``: minutes from the local day's start (UTC-exact, so a
    25-hour day runs to 1500). ``_gap_minutes``: minutes to the next interval
    of the same key (null on the last one). Never raises on bad input: a
    wrong dtype shows up as failed expectations instead.
    """
    import numpy as np
    import pandas as pd

    out = frame.reset_index(drop=True).copy()
    keys = [c for c in ("timestamp_utc", *group_by) if c in out]
    out["_key"] = out[keys].astype(str).agg("|".join, axis=1) if keys else out.index.astype(str)
    if "timestamp_utc" not in out:
        out["_tz"] = "missing"
        for col in DERIVED[2:]:
            out[col] = np.nan
        return out
    ts = out["timestamp_utc"]
    tz_name = _timezone_name(ts)
    out["_tz"] = tz_name
    if tz_name == "not-a-datetime":
        for col in DERIVED[2:]:
            out[col] = np.nan
        return out
    if getattr(ts.dt, "tz", None) is None:
        ts = ts.dt.tz_localize("UTC")  # still flagged by _tz; offsets stay meaningful
    start, _ = day_bounds_utc(day, tz)
    offset = (ts - pd.Timestamp(start)).dt.total_seconds() / 60.0
    out["_offset_minutes"] = offset
    out["_grid_remainder"] = np.mod(offset, resolution)
    keys = [c for c in group_by if c in out]
    order = out.assign(_ts=ts).sort_values([*keys, "_ts"])
    nxt = order.groupby(keys, dropna=False)["_ts"].shift(-1) if keys else order["_ts"].shift(-1)
    out["_gap_minutes"] = ((nxt - order["_ts"]).dt.total_seconds() / 60.0).reindex(out.index)
    return out


def timeseries_params(
    frame: pd.DataFrame,
    day: date,
    tz: str,
    *,
    resolution: int,
    key_columns: tuple[str, ...],
    value_columns: tuple[str, ...],
) -> dict[str, Any]:
    """Run parameters of the shared time-series checks for one data day."""
    extra_keys = [k for k in key_columns if k != "timestamp_utc"]
    n_keys = 1
    if extra_keys and all(k in frame for k in extra_keys) and len(frame):
        n_keys = max(1, int(frame[extra_keys].drop_duplicates().shape[0]))
    n_mtu = mtu_count(day, tz, resolution)
    return {
        "expected_rows": n_mtu * n_keys,
        "expected_mtus": n_mtu,
        "resolution": resolution,
        "last_offset_minutes": (n_mtu - 1) * resolution,
        "key_columns": list(key_columns),
        "value_columns": list(value_columns),
        "required_columns": ["timestamp_utc", "resolution_minutes", *extra_keys, *value_columns],
    }


def grid_mismatch(
    frame: pd.DataFrame,
    day: date,
    tz: str,
    resolution: int,
    *,
    key_columns: tuple[str, ...] = ("timestamp_utc",),
    limit: int = 5,
) -> dict[str, list[str]]:
    """Which MTU starts of the day are missing or unexpected (for failure messages)."""
    import pandas as pd

    from tasks.timeutil import mtu_starts_utc

    if "timestamp_utc" not in frame or not pd.api.types.is_datetime64_any_dtype(frame["timestamp_utc"]):
        return {}
    ts = frame["timestamp_utc"]
    if getattr(ts.dt, "tz", None) is None:
        ts = ts.dt.tz_localize("UTC")
    want = pd.DatetimeIndex(mtu_starts_utc(day, tz, resolution))
    have = pd.DatetimeIndex(ts.drop_duplicates())
    missing = want.difference(have)
    extra = have.difference(want)
    keys = [k for k in key_columns if k in frame]
    dup = ts[frame.duplicated(subset=keys or None)].drop_duplicates()
    return {
        "missing": [t.isoformat() for t in missing[:limit]],
        "unexpected": [t.isoformat() for t in extra[:limit]],
        "duplicated": [t.isoformat() for t in dup.iloc[:limit]],
        "counts": [f"expected {len(want)} MTUs, found {ts.nunique()} distinct in {len(ts)} rows"],
    }
