"""Real-shaped feature frames for the TFDV schema, tests and benchmarks.

Vectorised so six years of hourly rows take well under a second. Shapes
follow tasks/features.py (same columns, DST-correct MTU grid, local calendar);
levels follow DE_LU (load 40–75 GW, wind 0–55 GW, solar 0–60 GW, prices
with daily/weekly shape and occasional negative hours).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from tasks.timeutil import mtu_starts_utc

if TYPE_CHECKING:
    import pandas as pd


def feature_frame(
    first: date, n_days: int, *, tz: str = "Europe/Berlin", mtu_minutes: int = 60, seed: int = 0
) -> pd.DataFrame:
    """Feature rows of ``n_days`` consecutive delivery days starting at ``first``."""
    import numpy as np
    import pandas as pd

    from tasks import features as ft

    rng = np.random.default_rng(seed)
    starts: list[object] = []
    for i in range(n_days):
        starts.extend(mtu_starts_utc(first + timedelta(days=i), tz, mtu_minutes))
    ts = pd.DatetimeIndex(starts)
    local = ts.tz_convert(tz)
    hour = np.asarray(local.hour)
    minute = np.asarray(local.minute)
    weekday = np.asarray(local.weekday)
    month = np.asarray(local.month)
    doy = np.asarray(local.dayofyear)
    n = len(ts)
    hod = hour + minute / 60.0
    season = np.cos(2 * np.pi * (doy - 15) / 365.25)  # 1 in mid-January
    daily = np.sin(np.pi * np.clip(hod - 6, 0, 12) / 12)
    weekend = (weekday >= 5).astype(float)
    load = 52000 + 9000 * season + 12000 * daily - 7000 * weekend + rng.normal(0, 1500, n)
    # Wind: slowly varying weather regimes (AR(1) over hours), higher in winter.
    regime = np.zeros(n)
    noise = rng.normal(0, 1, n)
    for k in range(1, n):  # AR(1): a loop is clearer than lfilter and fast enough here
        regime[k] = 0.97 * regime[k - 1] + 0.25 * noise[k]
    wind = np.clip(15000 + 6000 * season + 9000 * regime, 300, 60000)
    solar_peak = 35000 - 20000 * season
    solar = np.clip(solar_peak * np.sin(np.pi * np.clip(hod - 5, 0, 15) / 15) ** 2, 0, None)
    solar *= np.clip(rng.normal(0.8, 0.15, n), 0.1, 1.0)
    residual = load - wind - solar
    price = 20 + 0.0028 * residual + 25 * daily + rng.normal(0, 8, n)
    temperature = 10 - 9 * season + 6 * daily + rng.normal(0, 2, n)
    wind_speed = np.clip(4 + 2.2 * regime + rng.normal(0, 0.8, n), 0, None)
    ghi = np.clip(solar / max(float(solar_peak.max()), 1.0) * 900, 0, None)
    slots_per_day = 24 * 60 // mtu_minutes
    out = pd.DataFrame(
        {
            "timestamp_utc": ts,
            "resolution_minutes": np.full(n, mtu_minutes, dtype="int64"),
            "slot": ((hour * 60 + minute) // mtu_minutes).astype("int64"),
            "hour": hour.astype("int64"),
            "minute": minute.astype("int64"),
            "weekday": weekday.astype("int64"),
            "month": month.astype("int64"),
            "is_holiday": np.zeros(n, dtype="int64"),
        }
    )
    for lag in ft.PRICE_LAGS:
        out[f"price_lag{lag}"] = np.roll(price, lag * slots_per_day)
    out["load_mw"] = load
    out["wind_mw"] = wind
    out["solar_mw"] = solar
    for lag in ft.EXO_LAGS:
        out[f"load_mw_lag{lag}"] = np.roll(load, lag * slots_per_day)
        out[f"wind_mw_lag{lag}"] = np.roll(wind, lag * slots_per_day)
        out[f"solar_mw_lag{lag}"] = np.roll(solar, lag * slots_per_day)
    out["temperature_c"] = temperature
    out["wind_speed_ms"] = wind_speed
    out["ghi_w_m2"] = ghi
    return out[list(ft.FEATURE_COLUMNS)]
