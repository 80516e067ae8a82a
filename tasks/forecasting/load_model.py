"""The load model: a quantile DNN of the zone's actual load, judged against the TSO forecast.

It reads the price model's own-zone features (so it post-processes the TSO's
day-ahead load forecast with calendar, weather and lags), learns from days
whose actuals are complete at gate closure (≤ D-2,
:func:`tasks.training_data.load_split`) and is scored against the TSO forecast
on the price model's evaluation window. The forecast uses its median as the
volume forecast only where it beat the TSO forecast there (``LoadFit.use_model``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.forecasting.metrics import score, score_point
from tasks.training_data import load_split

if TYPE_CHECKING:
    from datetime import date

    import numpy as np

    from tasks.training_data import WindowData


@dataclass
class LoadFit:
    """The load model of a training run (``dnn`` None when there was too little history)."""

    dnn: Any
    scores: dict[str, float]  # load DNN median and quantiles on the evaluation days
    tso_scores: dict[str, float]  # the TSO day-ahead forecast on the same days
    use_model: bool  # the model's median beat the TSO forecast (MAE) on the evaluation days
    train_days: list[str]
    evaluation_days: list[str]
    reason: str
    seconds: float = 0.0

    def meta(self) -> dict[str, Any]:
        return {
            "use_model": self.use_model,
            "eval_mae": self.scores.get("mae"),
            "tso_eval_mae": self.tso_scores.get("mae"),
            "evaluation_days": self.evaluation_days,
            "reason": self.reason,
        }


def fit_load_model(
    window: WindowData,
    x_all: np.ndarray,
    delivery_day: date,
    *,
    n_fit: int,
    quantiles: list[float],
    config: dict[str, Any],
) -> LoadFit:
    """Fit the load quantile DNN and score it against the TSO forecast (see the module docstring)."""
    import numpy as np

    from tasks.forecasting.dnn import QuantileDNN

    t0 = time.perf_counter()
    params = {k: v for k, v in dict(config.get("load_dnn", {})).items() if k != "enabled"}
    has_actual = [bool(np.isfinite(row).all()) for row in window.load]
    tr, va, ev = load_split(
        window.days, has_actual, delivery_day, n_fit, float(config["validation_fraction"])
    )
    names = [window.days[i].isoformat() for i in ev]
    need = int(config["min_training_days"])
    if len(tr) < need or not va or not ev:
        reason = (
            f"too little load history: {len(tr)} training days with complete actuals ≤ D-2 "
            f"(need {need}), {len(ev)} evaluation days; the TSO forecast is the volume forecast"
        )
        return LoadFit(None, {}, {}, False, [], names, reason)
    dnn = QuantileDNN(quantiles=quantiles, seed=int(config["seed"]), **params)
    dnn.fit(x_all[tr], window.load[tr], x_all[va], window.load[va])
    q_eval = np.maximum.accumulate(np.clip(dnn.predict(x_all[ev]), 0.0, None), axis=-1)
    y_eval, tso_eval = window.load[ev], window.load_tso[ev]
    scores = score(y_eval, q_eval, tso_eval, quantiles)
    tso_scores = score_point(y_eval, tso_eval, tso_eval)
    use_model = scores["mae"] < tso_scores["mae"]
    reason = (
        f"load DNN MAE {scores['mae']:.1f} MW vs TSO forecast {tso_scores['mae']:.1f} MW on "
        f"{len(ev)} evaluation days: volume forecast = {'load DNN median' if use_model else 'TSO forecast'}"
    )
    return LoadFit(
        dnn,
        scores,
        tso_scores,
        use_model,
        [window.days[i].isoformat() for i in tr + va],
        names,
        reason,
        time.perf_counter() - t0,
    )
