"""Gradient-boosted trees on the LEAR/DNN lag design, one model for every slot of the day.

The wide design row of day ``D`` (:func:`tasks.forecasting.design.build_design`)
is unfolded into one row per delivery slot: the slot and weekday (categorical),
holiday flags, the slot's own lagged prices and exogenous forecasts, and
day-level context (D-1's mean, min, max and last price, the exogenous
forecasts' daily mean, range and change from D-1, their neighbouring slots).
Prices enter relative to D-1's mean and the target is the price minus that
level: trees cannot extrapolate a level they have not seen, but they can
learn a shape relative to it.

Why a third model: it ranks the hours of a day differently from the linear
LEAR and the DNN (it is fitted on squared error, so it estimates the mean the
storage dispatch needs), which makes the ensemble's intraday order — what a
battery earns on — more accurate (docs/forecasting.md, "GBM member").
"""

from __future__ import annotations

import numpy as np

from tasks.forecasting import design

N_PRICE_BLOCKS = len(design.PRICE_LAGS)
N_EXOG_BLOCKS = len(design.EXOG_LAGS)


def _layout(n_features: int, slots: int) -> tuple[int, bool]:
    """(exogenous series, holiday flags present) of a wide design row of ``n_features`` columns."""
    for holidays in (False, True):
        exog_columns = n_features - design.n_features(slots, 0, holidays)
        n_exog, rest = divmod(exog_columns, slots * N_EXOG_BLOCKS)
        if exog_columns >= 0 and rest == 0:
            return n_exog, holidays
    raise ValueError(f"{n_features} columns are not a lag design of {slots} slots")


def slot_rows(wide: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot feature rows ``[n·slots, f]`` and each row's price level (D-1's mean) ``[n·slots]``.

    Columns 0 and 1 are the slot and the weekday (categorical).
    """
    wide = np.asarray(wide, dtype=float)
    n_exog, has_holidays = _layout(wide.shape[1], slots)
    n = wide.shape[0]
    blocks = wide[:, : slots * (N_PRICE_BLOCKS + n_exog * N_EXOG_BLOCKS)].reshape(n, -1, slots)
    tail = wide[:, slots * (N_PRICE_BLOCKS + n_exog * N_EXOG_BLOCKS) :]
    weekday = tail[:, :7].argmax(axis=1)
    day = np.repeat(np.arange(n), slots)
    slot = np.tile(np.arange(slots), n)
    prices = blocks[:, :N_PRICE_BLOCKS]  # lags 1, 2, 3, 7
    level = prices[:, 0].mean(axis=1)
    lvl = level[day]
    cols: list[np.ndarray] = [slot.astype(float), weekday[day].astype(float)]
    if has_holidays:
        cols.extend(tail[day, 7 + k] for k in range(len(design.HOLIDAY_LAGS)))
    cols.extend(prices[day, k, slot] - lvl for k in range(N_PRICE_BLOCKS))
    d1 = prices[:, 0]
    cols.extend([d1.min(axis=1)[day] - lvl, d1.max(axis=1)[day] - lvl, d1[day, -1] - lvl])
    cols.extend([prices[:, -1].mean(axis=1)[day] - lvl, lvl])
    before, after = np.clip(slot - 1, 0, slots - 1), np.clip(slot + 1, 0, slots - 1)
    for k in range(n_exog):
        ex = blocks[:, N_PRICE_BLOCKS + k * N_EXOG_BLOCKS : N_PRICE_BLOCKS + (k + 1) * N_EXOG_BLOCKS]
        today = ex[:, 0]
        mean_today = today.mean(axis=1)[day]
        cols.extend(ex[day, j, slot] for j in range(N_EXOG_BLOCKS))
        cols.extend(
            [
                mean_today,
                today[day, slot] - mean_today,
                mean_today - ex[:, 1].mean(axis=1)[day],
                today[day, before],
                today[day, after],
                today.max(axis=1)[day],
                today.min(axis=1)[day],
            ]
        )
    return np.column_stack(cols), lvl


class GBM:
    """Day-ahead model ``fit(X[n, f], Y[n, s])`` / ``predict(X) -> [n, s]`` on the wide lag design.

    scikit-learn's ``HistGradientBoostingRegressor`` with squared error; the
    last ``calibration_window_days`` rows are used (all if fewer). Deterministic
    for a given ``seed`` (it draws the early-stopping hold-out).
    """

    def __init__(
        self,
        calibration_window_days: int | None = 1092,
        *,
        max_iter: int = 400,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.calibration_window_days = calibration_window_days
        self.params = {
            "max_iter": max_iter,
            "learning_rate": learning_rate,
            "max_leaf_nodes": max_leaf_nodes,
            "min_samples_leaf": min_samples_leaf,
            "l2_regularization": l2_regularization,
            # Stops when 10 % of the rows, held out at random, no longer improve for 10 rounds.
            "early_stopping": True,
            "random_state": seed,
        }
        self.slots_: int | None = None
        self.model_: object | None = None

    def fit(self, X: np.ndarray, Y: np.ndarray) -> GBM:  # noqa: N803 - X/Y as in the model literature
        from sklearn.ensemble import HistGradientBoostingRegressor

        X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)  # noqa: N806
        if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"X [n, f] and Y [n, s] with the same n expected, got {X.shape}, {Y.shape}")
        if self.calibration_window_days is not None:
            X, Y = X[-self.calibration_window_days :], Y[-self.calibration_window_days :]  # noqa: N806
        self.slots_ = Y.shape[1]
        rows, level = slot_rows(X, self.slots_)
        model = HistGradientBoostingRegressor(
            loss="squared_error", categorical_features=[0, 1], **self.params
        )
        model.fit(rows, Y.reshape(-1) - level)
        self.model_ = model
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if self.model_ is None or self.slots_ is None:
            raise RuntimeError("GBM.predict called before fit")
        rows, level = slot_rows(np.asarray(X, dtype=float), self.slots_)
        out = self.model_.predict(rows) + level  # type: ignore[attr-defined]
        return np.asarray(out).reshape(-1, self.slots_)
