"""The training window of a zone: which days, and their model matrices.

Window: the ``settings.train_window_days`` days ending D-1 (every target is a
published price; nothing of D is read), from the zone's first landed prices
when history is shorter (:func:`training_window`, :func:`history_start`).
Days with a gate marker, missing inputs or missing prices are left out and
listed (:func:`load_window`). :func:`choose_design` picks the model inputs
from the training days; :func:`load_split` the days the load model may learn
from (actuals complete at gate closure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from tasks.errors import MissingInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import pandas as pd

    from tasks.config import Settings
    from tasks.forecasting.served_model import Design


def training_window(day: date, window_days: int, start: date | None) -> tuple[date, date]:
    """First and last day of D's training window: ``window_days`` ending D-1, not before ``start``.

    A young deployment trains on what it has: days before its first landed
    prices are not listed as skipped days.
    """
    first, last = day - timedelta(days=window_days), day - timedelta(days=1)
    if start is not None and first < start <= last:
        first = start
    return first, last


def history_start(zone: str, settings: Settings) -> date | None:
    """The first day with landed day-ahead prices for ``zone`` (None: none landed)."""
    from tasks.datasets import PRICES
    from tasks.storage import Layout

    folder = Layout(settings.data_root).processed_dir(PRICES.name, zone)
    days = []
    for path in folder.glob("*.parquet"):
        try:
            days.append(date.fromisoformat(path.stem))
        except ValueError:
            continue  # not a day partition (e.g. a temp file)
    return min(days) if days else None


@dataclass
class WindowData:
    """Usable days of a training window as model matrices."""

    days: list[date]
    frames: list[pd.DataFrame]
    y: np.ndarray  # [n_days, slots]
    naive: np.ndarray  # [n_days, slots] weekly naive (price of D-7 at the same clock position)
    skipped: dict[str, str]
    load: np.ndarray  # [n_days, slots] actual load (NaN rows: no complete actuals for the day)
    load_tso: np.ndarray  # [n_days, slots] TSO day-ahead load forecast (the load baseline)


def load_window(
    zone: str, first: date, last: date, settings: Settings, *, build_missing: bool = True
) -> WindowData:
    """Feature frames, targets and naive forecasts of the usable days in ``first..last``."""
    import numpy as np

    from tasks.features import Inputs, backfill, n_slots, read_features, slot_values, target_slots
    from tasks.storage import Layout
    from tasks.timeutil import days as day_range

    layout = Layout(settings.data_root)
    skipped: dict[str, str] = {}
    if build_missing:
        _, skipped = backfill(zone, first, last, settings)
    inputs = Inputs(layout, zone)
    slots = n_slots(settings.mtu_minutes)
    kept: list[date] = []
    frames, ys, naive, loads, tso = [], [], [], [], []
    for day in day_range(first, last):
        key = day.isoformat()
        if key in skipped:
            continue
        if layout.gate_file(zone, day).exists():
            skipped[key] = "GateClosedError: day failed a gate"
            continue
        try:
            frame = read_features(zone, day, settings)
            prices = inputs.get("day_ahead_prices", day)
            assert prices is not None
            y = target_slots(prices, day, settings.market_timezone, settings.mtu_minutes)
        except MissingInputError as exc:
            skipped[key] = f"MissingInputError: {exc}"
            continue
        kept.append(day)
        frames.append(frame)
        ys.append(y)
        naive.append(slot_values(frame, ["price_lag7"], slots)[:, 0])
        tso.append(slot_values(frame, ["load_mw"], slots)[:, 0])
        actual = inputs.get("load_actual", day, required=False)
        try:
            if actual is None:
                raise MissingInputError("no actual load")
            loads.append(
                target_slots(
                    actual,
                    day,
                    settings.market_timezone,
                    settings.mtu_minutes,
                    column="load_mw",
                    dataset="load_actual",
                )
            )
        except MissingInputError:
            loads.append(np.full(slots, np.nan))
    return WindowData(
        days=kept,
        frames=frames,
        y=np.array(ys).reshape(len(kept), slots),
        naive=np.array(naive).reshape(len(kept), slots),
        skipped=dict(sorted(skipped.items())),
        load=np.array(loads).reshape(len(kept), slots),
        load_tso=np.array(tso).reshape(len(kept), slots),
    )


def choose_design(frames: list[pd.DataFrame], settings: Settings, neighbours: Sequence[str] = ()) -> Design:
    """Model inputs: every slot column that is present on the training days.

    Weather joins the design when at least 95 % of training days carry it; a
    day without it at serving time gets the training mean (logged in design).
    The ``neighbours``' forecasts (built into every feature file of the window,
    :func:`tasks.features.backfill`) follow the zone's own columns.
    """
    import pandas as pd

    from tasks.features import SLOT_COLUMNS, WEATHER_COLUMNS, n_slots, neighbour_columns
    from tasks.forecasting.served_model import Design

    stacked = pd.concat(frames, ignore_index=True)
    columns, fill = [], {}
    for column in SLOT_COLUMNS:
        if column in WEATHER_COLUMNS:
            present = sum(bool(f[column].notna().all()) for f in frames) / len(frames)
            if present < 0.95:
                continue
            fill[column] = float(stacked[column].mean())
        columns.append(column)
    from_neighbours = list(neighbour_columns(neighbours))
    return Design(
        columns=columns + from_neighbours,
        neighbour_columns=from_neighbours,
        slots=n_slots(settings.mtu_minutes),
        quantiles=[float(q) for q in settings.quantiles],
        fill=fill,
        price_floor=settings.price_floor_eur_mwh,
        price_cap=settings.price_cap_eur_mwh,
    )


def load_split(
    days: list[date], has_actual: list[bool], delivery_day: date, n_fit: int, validation_fraction: float
) -> tuple[list[int], list[int], list[int]]:
    """Train, validation and evaluation day indices of the load model.

    Only days with complete actuals that are at least two days before D: at
    gate closure on D-1 the actual load of D-1 is not complete yet, so a model
    trained on it could not be re-trained the same way in production. The
    evaluation days are the price model's evaluation window (indices ≥ ``n_fit``)
    so both models are judged on the same days.
    """
    last_known = delivery_day - timedelta(days=2)
    usable = [i for i, (d, ok) in enumerate(zip(days, has_actual, strict=True)) if ok and d <= last_known]
    fit = [i for i in usable if i < n_fit]
    evaluation = [i for i in usable if i >= n_fit]
    n_val = max(1, round(validation_fraction * len(fit))) if len(fit) > 1 else 0
    return fit[: len(fit) - n_val], fit[len(fit) - n_val :], evaluation
