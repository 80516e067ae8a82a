"""epftoolbox-layout data as day matrices, and the lag design of the LEAR/DNN models.

An epftoolbox CSV has one row per delivery slot (local market time): a
timestamp column (its header may be empty), the price, then any number of
exogenous day-ahead forecasts (load, wind+solar, ...). Every day has the same
number of rows (the benchmark files keep 24 rows on DST days).

Features of delivery day ``D`` (all known at gate closure on ``D-1``): prices
of ``D-1, D-2, D-3, D-7`` (all slots), each exogenous forecast of
``D, D-1, D-7`` (all slots) and seven weekday dummies. Row ``i`` of the design
uses prices up to day ``i-1`` and exogenous forecasts up to day ``i`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tasks import features
from tasks.errors import DatasetError
from tasks.timeutil import public_holidays

if TYPE_CHECKING:
    import pandas as pd

PRICE_LAGS: tuple[int, ...] = (1, 2, 3, 7)
EXOG_LAGS: tuple[int, ...] = (0, 1, 7)
# Public-holiday flags of D and of the days whose prices are lags (a holiday's profile is a
# Sunday's: misranked hours on holidays and the days after them cost storage the most).
HOLIDAY_LAGS: tuple[int, ...] = (0, *PRICE_LAGS)
MAX_LAG = 7

__all__ = [
    "DatasetError",
    "DayData",
    "build_design",
    "from_frame",
    "load_csv",
    "n_features",
    "targets",
    "with_holidays",
    "with_neighbour",
]


@dataclass(frozen=True)
class DayData:
    """A market's history as day matrices: ``prices[d, s]`` and ``exog[k, d, s]``."""

    dates: np.ndarray  # datetime64[D], consecutive days
    prices: np.ndarray  # [n_days, slots]
    exog: np.ndarray  # [n_exog, n_days, slots]
    price_name: str
    exog_names: tuple[str, ...]
    holidays: np.ndarray | None = None  # [n_days] bool: public holiday of the market's country
    holiday_country: str | None = None

    @property
    def n_days(self) -> int:
        return int(self.prices.shape[0])

    @property
    def slots(self) -> int:
        return int(self.prices.shape[1])

    def day_index(self, day: date) -> int:
        idx = int((np.datetime64(day, "D") - self.dates[0]).astype(int))
        if not 0 <= idx < self.n_days:
            raise DatasetError(f"{day} is outside the data ({self.dates[0]} … {self.dates[-1]})")
        return idx


def from_frame(frame: pd.DataFrame) -> DayData:
    """Day matrices from a frame whose first column is the slot timestamp (epftoolbox layout)."""
    import pandas as pd

    if frame.shape[1] < 2:
        raise DatasetError("expected columns: timestamp, price[, exogenous forecasts...]")
    ts = pd.to_datetime(frame.iloc[:, 0], errors="coerce")
    if ts.isna().any():
        bad = frame.iloc[int(np.flatnonzero(ts.isna().to_numpy())[0]), 0]
        raise DatasetError(f"unparseable timestamp {bad!r} in the first column")
    values = frame.iloc[:, 1:].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise DatasetError(
            f"missing or non-numeric value in column {frame.columns[col + 1]!r} at {ts.iloc[row]}; "
            "fill it before backtesting (e.g. from the neighbouring slots): every day needs all its rows"
        )
    days = ts.dt.normalize()
    counts = days.value_counts(sort=False)
    slots = int(counts.iloc[0])
    if (counts != slots).any():
        odd = counts[counts != slots]
        raise DatasetError(
            f"every day needs the same number of rows ({slots}); "
            f"{str(odd.index[0])[:10]} has {int(odd.iloc[0])} (resample DST days to {slots} rows)"
        )
    unique_days = days.drop_duplicates().to_numpy().astype("datetime64[D]")
    if (np.diff(unique_days).astype(int) != 1).any():
        gap = int(np.flatnonzero(np.diff(unique_days).astype(int) != 1)[0])
        raise DatasetError(
            f"days are not consecutive after {unique_days[gap]}: fill the missing days' rows "
            "(the models read each day's lags by position)"
        )
    order = np.argsort(ts.to_numpy(), kind="stable")
    values = values[order]
    n_days = unique_days.size
    mats = values.reshape(n_days, slots, values.shape[1])
    return DayData(
        dates=unique_days,
        prices=np.ascontiguousarray(mats[:, :, 0]),
        exog=np.ascontiguousarray(np.moveaxis(mats[:, :, 1:], 2, 0)),
        price_name=str(frame.columns[1]).strip(),
        exog_names=tuple(str(c).strip() for c in frame.columns[2:]),
    )


def load_csv(path: Path) -> DayData:
    """Read an epftoolbox-layout CSV (e.g. ``DE.csv``, ``BE.csv``) into day matrices."""
    import pandas as pd

    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    frame = pd.read_csv(path, skipinitialspace=True)
    return from_frame(frame)


def with_holidays(data: DayData, country: str) -> DayData:
    """The same data with public-holiday flags of ``country`` (ISO code for the `holidays` package)."""
    years = range(int(str(data.dates[0])[:4]), int(str(data.dates[-1])[:4]) + 1)
    calendar = public_holidays(country, years)
    if calendar is None:
        raise DatasetError(f"no public-holiday calendar for country {country!r} in the holidays package")
    flags = np.array([d.item() in calendar for d in data.dates], dtype=bool)
    return replace(data, holidays=flags, holiday_country=country)


def with_neighbour(data: DayData, other: DayData, name: str) -> DayData:
    """``data`` with another market's exogenous day-ahead forecasts as more series, named ``"NAME: series"``.

    Coupled markets price each other's load and renewable infeed: BE's hourly shape
    follows German wind and solar. Only the days both files cover are kept, so
    the history starts at the later first day; ``other`` must reach ``data``'s
    last day, so that a backtest's test period (the last days) stays the same.
    Apply before :func:`with_holidays`.
    """
    if data.holidays is not None:
        raise DatasetError("add the neighbouring market's series before the holiday flags")
    if other.slots != data.slots:
        raise DatasetError(
            f"{name} has {other.slots} slots per day, the market {data.slots}; resample one of them"
        )
    first, last = max(data.dates[0], other.dates[0]), data.dates[-1]
    if other.dates[-1] < last or other.dates[0] > last:
        raise DatasetError(
            f"{name}'s data ({other.dates[0]} … {other.dates[-1]}) must reach the market's last day {last}"
        )
    i0, j0 = data.day_index(first.item()), other.day_index(first.item())
    j1 = other.day_index(last.item()) + 1
    if j1 - j0 < MAX_LAG + 1:
        raise DatasetError(f"{name}'s data and the market's share fewer than {MAX_LAG + 1} days")
    return replace(
        data,
        dates=data.dates[i0:],
        prices=data.prices[i0:],
        exog=np.concatenate([data.exog[:, i0:], other.exog[:, j0:j1]], axis=0),
        # Named as the production features name a neighbour's series ("DE: PV+Wind Forecast").
        exog_names=data.exog_names + tuple(features.neighbour_column(name, n) for n in other.exog_names),
    )


def n_features(slots: int, n_exog: int, holidays: bool = False) -> int:
    return slots * (len(PRICE_LAGS) + n_exog * len(EXOG_LAGS)) + 7 + (len(HOLIDAY_LAGS) if holidays else 0)


def build_design(data: DayData, day_indices: np.ndarray | list[int]) -> np.ndarray:
    """Feature rows ``X[len(day_indices), f]`` for the given target day indices (each ≥ 7).

    Row for day ``i``: prices ``i-1, i-2, i-3, i-7``; exogenous ``i, i-1, i-7``;
    weekday dummies of day ``i`` (Monday first); with holiday flags
    (:func:`with_holidays`), whether ``i, i-1, i-2, i-3, i-7`` are public
    holidays (the calendar is known in advance). Nothing after ``i-1`` of the
    price series and nothing after ``i`` of the exogenous series is read.
    """
    idx = np.asarray(day_indices, dtype=int)
    if idx.size and (idx.min() < MAX_LAG or idx.max() >= data.n_days):
        raise DatasetError(f"target days must have {MAX_LAG} days of history and lie inside the data")
    blocks = [data.prices[idx - lag] for lag in PRICE_LAGS]
    for k in range(data.exog.shape[0]):
        blocks.extend(data.exog[k][idx - lag] for lag in EXOG_LAGS)
    weekday = (data.dates[idx].astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    dummies = np.zeros((idx.size, 7))
    dummies[np.arange(idx.size), weekday] = 1.0
    blocks.append(dummies)
    if data.holidays is not None:
        blocks.append(np.stack([data.holidays[idx - lag] for lag in HOLIDAY_LAGS], axis=1).astype(float))
    return np.concatenate(blocks, axis=1)


def targets(data: DayData, day_indices: np.ndarray | list[int]) -> np.ndarray:
    return data.prices[np.asarray(day_indices, dtype=int)]
