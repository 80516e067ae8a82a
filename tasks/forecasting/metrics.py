"""Point and probabilistic accuracy measures, computed as epftoolbox does.

All functions take arrays of any (matching) shape and ignore positions where
the actual value or any compared forecast is NaN, so a weekly-naive benchmark
whose first week is undefined can be used directly (epftoolbox drops that
first week from both the model's and the naive MAE in ``rMAE``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _valid(*arrays: np.ndarray) -> np.ndarray:
    mask = np.ones(np.shape(arrays[0]), dtype=bool)
    for a in arrays:
        mask &= np.isfinite(a)
    return mask


def _pair(y: np.ndarray, yhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    yhat = np.asarray(yhat, dtype=float)
    if y.shape != yhat.shape:
        raise ValueError(f"shape mismatch: actual {y.shape} vs forecast {yhat.shape}")
    m = _valid(y, yhat)
    if not m.any():
        raise ValueError("no finite (actual, forecast) pairs to score")
    return y[m], yhat[m]


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error."""
    a, b = _pair(y, yhat)
    return float(np.mean(np.abs(a - b)))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Root mean squared error."""
    a, b = _pair(y, yhat)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent: mean(|y - ŷ| / ((|y| + |ŷ|) / 2)) · 100.

    epftoolbox returns the fraction; the paper (and our reports) print percent.
    Pairs where both values are 0 contribute 0 rather than NaN.
    """
    a, b = _pair(y, yhat)
    denom = (np.abs(a) + np.abs(b)) / 2.0
    ratio = np.divide(np.abs(a - b), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100.0 * np.mean(ratio))


def rmae(y: np.ndarray, yhat: np.ndarray, y_naive: np.ndarray) -> float:
    """MAE(y, ŷ) / MAE(y, naive) over the positions where all three are defined."""
    y = np.asarray(y, dtype=float)
    yhat = np.asarray(yhat, dtype=float)
    y_naive = np.asarray(y_naive, dtype=float)
    if not (y.shape == yhat.shape == y_naive.shape):
        raise ValueError(f"shape mismatch: {y.shape}, {yhat.shape}, {y_naive.shape}")
    m = _valid(y, yhat, y_naive)
    if not m.any():
        raise ValueError("no positions where actual, forecast and naive forecast are all finite")
    denom = float(np.mean(np.abs(y[m] - y_naive[m])))
    if denom == 0.0:
        raise ValueError("the naive forecast is perfect on this period; rMAE is undefined")
    return float(np.mean(np.abs(y[m] - yhat[m]))) / denom


def pinball_loss(y: np.ndarray, q_pred: np.ndarray, quantiles: Sequence[float]) -> float:
    """Mean pinball (quantile) loss; ``q_pred`` has one more trailing axis than ``y`` (one per quantile)."""
    y = np.asarray(y, dtype=float)
    q_pred = np.asarray(q_pred, dtype=float)
    qs = np.asarray(quantiles, dtype=float)
    if q_pred.shape != (*y.shape, qs.size):
        raise ValueError(f"q_pred shape {q_pred.shape} must be {(*y.shape, qs.size)}")
    diff = y[..., None] - q_pred
    loss = np.maximum(qs * diff, (qs - 1.0) * diff)
    m = np.isfinite(loss)
    if not m.any():
        raise ValueError("no finite values to score")
    return float(np.mean(loss[m]))


def interval_coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actual values inside [lower, upper] (e.g. the q10–q90 band; nominal 0.8)."""
    y = np.asarray(y, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    m = _valid(y, lower, upper)
    if not m.any():
        raise ValueError("no finite values to score")
    return float(np.mean((y[m] >= lower[m]) & (y[m] <= upper[m])))


def point_metrics(y: np.ndarray, yhat: np.ndarray, y_naive: np.ndarray) -> dict[str, float]:
    """MAE, rMAE, sMAPE (%) and RMSE of one forecast, as the epftoolbox paper reports them.

    MAE, sMAPE and RMSE use the whole period; rMAE only the positions where the
    naive forecast is defined (epftoolbox drops the first test week there).
    """
    return {
        "mae": mae(y, yhat),
        "rmae": rmae(y, yhat, y_naive),
        "smape": smape(y, yhat),
        "rmse": rmse(y, yhat),
    }


def median_index(quantiles: Sequence[float]) -> int:
    """Index of the quantile closest to 0.5 (the point forecast of a quantile model)."""
    return min(range(len(quantiles)), key=lambda i: abs(float(quantiles[i]) - 0.5))


def score(
    y: np.ndarray, q_pred: np.ndarray, naive: np.ndarray, quantiles: Sequence[float]
) -> dict[str, float]:
    """All figures of a quantile forecast ``[n, slots, q]`` against actuals ``[n, slots]``.

    The point figures (:func:`point_metrics`) of its median, the pinball loss and
    the coverage of the band between the first and the last quantile.
    """
    median = q_pred[..., median_index(quantiles)]
    out = point_metrics(y, median, naive)
    out["pinball"] = pinball_loss(y, q_pred, quantiles)
    out["coverage_80"] = interval_coverage(y, q_pred[..., 0], q_pred[..., -1])
    return out


def score_point(y: np.ndarray, pred: np.ndarray, naive: np.ndarray) -> dict[str, float]:
    """The figures of a point forecast ``[n, slots]`` (:func:`point_metrics`)."""
    return point_metrics(y, pred, naive)
