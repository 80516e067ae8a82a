"""Accuracy measures against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.forecasting.ensemble import combine
from tasks.forecasting.metrics import (
    interval_coverage,
    mae,
    pinball_loss,
    point_metrics,
    rmae,
    rmse,
    smape,
)
from tasks.forecasting.naive import weekly_naive

pytestmark = pytest.mark.unit

Y = np.array([10.0, 20.0, 30.0, 40.0])
YHAT = np.array([12.0, 18.0, 33.0, 40.0])


def test_mae_rmse_smape_by_hand() -> None:
    assert mae(Y, YHAT) == pytest.approx((2 + 2 + 3 + 0) / 4)
    assert rmse(Y, YHAT) == pytest.approx(np.sqrt((4 + 4 + 9 + 0) / 4))
    # |e| / ((|y|+|ŷ|)/2): 2/11, 2/19, 3/31.5, 0
    assert smape(Y, YHAT) == pytest.approx(100 * (2 / 11 + 2 / 19 + 3 / 31.5 + 0) / 4)


def test_smape_both_zero_counts_as_perfect() -> None:
    assert smape(np.array([0.0, 10.0]), np.array([0.0, 10.0])) == 0.0


def test_rmae_divides_by_naive_mae_where_naive_is_defined() -> None:
    naive = np.array([np.nan, 25.0, 20.0, 44.0])  # undefined first value is skipped in both MAEs
    expected = ((2 + 3 + 0) / 3) / ((5 + 10 + 4) / 3)
    assert rmae(Y, YHAT, naive) == pytest.approx(expected)


def test_rmae_of_the_naive_itself_is_one_and_perfect_naive_is_an_error() -> None:
    naive = np.array([11.0, 22.0, 27.0, 41.0])
    assert rmae(Y, naive, naive) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="undefined"):
        rmae(Y, YHAT, Y)


def test_point_metrics_use_whole_period_except_rmae() -> None:
    naive = np.array([np.nan, 25.0, 20.0, 44.0])
    m = point_metrics(Y, YHAT, naive)
    assert m["mae"] == pytest.approx(7 / 4)
    assert m["rmae"] == pytest.approx(rmae(Y, YHAT, naive))
    assert set(m) == {"mae", "rmae", "smape", "rmse"}


def test_pinball_loss_by_hand() -> None:
    y = np.array([10.0, 20.0])
    q = np.array([[8.0, 10.0, 13.0], [21.0, 22.0, 25.0]])
    qs = (0.1, 0.5, 0.9)
    # y - q: [2, 0, -3], [-1, -2, -5]; loss = max(q·d, (q-1)·d)
    losses = [0.1 * 2, 0.0, 0.1 * 3, 0.9 * 1, 0.5 * 2, 0.1 * 5]
    assert pinball_loss(y, q, qs) == pytest.approx(np.mean(losses))
    with pytest.raises(ValueError, match="shape"):
        pinball_loss(y, q[:, :2], qs)


def test_interval_coverage_counts_bounds_inclusive() -> None:
    assert interval_coverage(Y, Y - 1, Y + 1) == 1.0
    assert interval_coverage(Y, np.array([10.0, 21, 0, 0]), np.array([11.0, 22, 29, 40])) == 0.5


def test_shape_mismatch_and_all_nan_are_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        mae(Y, YHAT[:3])
    with pytest.raises(ValueError, match="finite"):
        mae(np.array([np.nan]), np.array([1.0]))


def test_weekly_naive_shifts_by_seven_days() -> None:
    prices = np.arange(10 * 24, dtype=float).reshape(10, 24)
    out = weekly_naive(prices)
    assert np.isnan(out[:7]).all()
    np.testing.assert_array_equal(out[7:], prices[:3])
    with pytest.raises(ValueError, match="matrix"):
        weekly_naive(prices.ravel())


def test_combine_mean_median_weights() -> None:
    a, b, c = np.zeros(3), np.ones(3), np.full(3, 5.0)
    np.testing.assert_allclose(combine([a, b, c]), np.full(3, 2.0))
    np.testing.assert_allclose(combine([a, b, c], "median"), np.ones(3))
    np.testing.assert_allclose(combine([a, c], weights=[3, 1]), np.full(3, 1.25))
    with pytest.raises(ValueError, match="unknown"):
        combine([a], "max")


def test_median_index_is_the_quantile_closest_to_one_half() -> None:
    from tasks.forecasting.metrics import median_index

    assert median_index([0.1, 0.5, 0.9]) == 1
    assert median_index((0.05, 0.25, 0.45, 0.75)) == 2
    assert median_index([0.5]) == 0


def test_score_a_quantile_forecast_by_its_median_band_and_pinball() -> None:
    """``score``: point figures of the median, pinball of all quantiles, coverage of the outer band."""
    from tasks.forecasting.metrics import score, score_point

    y = Y.reshape(1, 4)
    naive = np.array([[11.0, 22.0, 27.0, 44.0]])
    q = np.stack([YHAT - 5.0, YHAT, YHAT + 1.0], axis=-1).reshape(1, 4, 3)
    quantiles = [0.1, 0.5, 0.9]
    got = score(y, q, naive, quantiles)
    assert set(got) == {"mae", "rmae", "smape", "rmse", "pinball", "coverage_80"}
    for key, value in point_metrics(y, YHAT.reshape(1, 4), naive).items():
        assert got[key] == pytest.approx(value)
    assert got["pinball"] == pytest.approx(pinball_loss(y, q, quantiles))
    # Inside [ŷ - 5, ŷ + 1]: 10 in [7, 13], 20 not in [13, 19], 30 in [28, 34], 40 in [35, 41].
    assert got["coverage_80"] == pytest.approx(0.75)
    assert score_point(y, YHAT.reshape(1, 4), naive) == point_metrics(y, YHAT.reshape(1, 4), naive)
