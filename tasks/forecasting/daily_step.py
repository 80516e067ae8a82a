"""Step 5 of the ensemble's procedure in production: the registered model brought up to D-1 before it forecasts D.

Training registers a model every ``train_every_days``; between two fits the forecast
stage (:mod:`tasks.forecast`) applies ``ensemble.daily`` of models.json (stored in the
model as :attr:`DayAheadPriceModel.daily`) before it predicts delivery day D:

- the DNN is fine-tuned on the ``dnn_recent_days`` days that end d-1, once for every
  day d from the day the model was trained for through D (:func:`chain`). The step is
  replayed from the registered weights each run, so a day's forecast depends only on
  the champion and the landed history: re-running D gives the same forecast;
- each LEAR window is re-fitted on the window that ends D-1 with the penalties its
  fit chose (:meth:`tasks.forecasting.lear.LEAR.refit`);
- with ``held_out_refit``, the other point members (the trees) are re-fitted once on
  the window that ends the day before the model's fit day. Training holds its last
  ``evaluation_days`` out of every fit, so that a challenger is scored on days neither
  model saw; the backtest's fits hold nothing out and end there already.

The rolling backtest does the same before each day it forecasts
(:func:`research.ensemble_backtest.daily_step`). Pure functions on design rows; the
forecast stage reads the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tasks.forecasting.definition import DailyStep
    from tasks.forecasting.served_model import DayAheadPriceModel


def chain(fitted_for: date, day: date) -> list[date]:
    """The days whose fine-tune the DNN replays before forecasting ``day``: ``fitted_for`` … ``day``.

    Empty when ``day`` comes before the day the model was trained for (a backfill
    forecast with a newer champion: nothing between them to catch up on).
    """
    return [fitted_for + timedelta(days=k) for k in range((day - fitted_for).days + 1)]


def rows_before(days: Sequence[date], until: date, recent: int | None = None) -> np.ndarray:
    """Positions of ``days`` before ``until``, only the last ``recent`` calendar days of them when given."""
    first = date.min if recent is None else until - timedelta(days=recent)
    return np.array([k for k, d in enumerate(days) if first <= d < until], dtype=int)


def tune_dnn(dnn: Any, x: np.ndarray, y: np.ndarray, step: DailyStep) -> None:
    """One day's fine-tune of the DNN on the rows ``x, y`` of its recent days, with the step's settings."""
    dnn.fine_tune(x, y, epochs=step.dnn_epochs, learning_rate=step.dnn_learning_rate)


def refit_held_out(
    model: DayAheadPriceModel,
    step: DailyStep,
    *,
    days: Sequence[date],
    x: np.ndarray,
    y: np.ndarray,
    until: date,
    window_days: int | None,
) -> dict[str, Any] | None:
    """The trees re-fitted on the ``window_days`` days before ``until`` (the model's fit day); None: nothing to do."""
    names = [name for name in model.members if step.refits_held_out(name)]
    rows = rows_before(days, until, window_days)
    if not names or not len(rows):
        return None
    for name in names:
        model.members[name].fit(x[rows], y[rows])
    return {"members": names, "days": [days[rows[0]].isoformat(), days[rows[-1]].isoformat(), len(rows)]}


def apply(
    model: DayAheadPriceModel,
    step: DailyStep,
    *,
    days: Sequence[date],
    x: np.ndarray,
    y: np.ndarray,
    fitted_for: date,
    day: date,
    window_days: int | None = None,
    resume_from: date | None = None,
) -> dict[str, Any]:
    """Bring ``model`` (in place) up to ``day - 1`` from the history ``days`` (``Design.matrix`` rows ``x``, prices ``y``).

    Reads only rows of days before ``day``, and of the ``window_days`` before it
    (None: all) for the re-fits. ``resume_from``: the model already went through
    the step up to that day's eve (a replay forecasting day after day), so the
    chain starts there and the trees' once-only re-fit is skipped. Returns what
    was done, for the forecast's sidecar.
    """
    assert model.design is not None, "load the model first"
    done: dict[str, Any] = {"fitted_for": fitted_for.isoformat()}
    if resume_from is None:
        refit = refit_held_out(
            model, step, days=days, x=x, y=y, until=min(fitted_for, day), window_days=window_days
        )
        if refit is not None:
            done["held_out_refit"] = refit
    if step.applies_to("dnn"):
        tuned = []
        for d in chain(resume_from or fitted_for, day):
            rows = rows_before(days, d, step.dnn_recent_days)
            if len(rows) == 0:
                continue
            tune_dnn(model.dnn, model.design.own(x[rows]), y[rows], step)
            tuned.append(d.isoformat())
        done["dnn_fine_tuned_for"] = tuned
        done["dnn_recent_days"] = step.dnn_recent_days
    if step.applies_to("lear") and "lear" in model.members:
        rows = rows_before(days, day, window_days)
        if len(rows):
            model.members["lear"].refit(x[rows], y[rows])
            done["lear_refit_days"] = [days[rows[0]].isoformat(), days[rows[-1]].isoformat(), len(rows)]
    return done
