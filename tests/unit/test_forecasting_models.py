"""Design matrices, loader checks, LEAR and the no-look-ahead property on the real excerpt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.forecasting import design
from tasks.forecasting.lear import LEAR, AsinhScaler
from tasks.forecasting.metrics import mae
from tasks.forecasting.naive import weekly_naive

pytestmark = pytest.mark.unit

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "epf"


def test_load_epftoolbox_layout(de: design.DayData) -> None:
    assert de.prices.shape == (120, 24)
    assert de.exog.shape == (2, 120, 24)
    assert str(de.dates[0]) == "2017-09-03"
    assert de.exog_names == ("Ampirion Load Forecast", "PV+Wind Forecast")
    assert de.prices[0, 0] == pytest.approx(32.85)  # first data row of the excerpt
    be = design.load_csv(FIX / "BE_excerpt.csv")  # "Date, Prices, ..." header with spaces
    assert be.price_name == "Prices"
    assert be.exog.shape == (2, 60, 24)


def test_design_columns_are_the_documented_lags(de: design.DayData) -> None:
    i = 30
    x = design.build_design(de, [i])[0]
    s = de.slots
    assert x.size == design.n_features(s, 2) == 24 * (4 + 6) + 7
    np.testing.assert_array_equal(x[0:s], de.prices[i - 1])
    np.testing.assert_array_equal(x[3 * s : 4 * s], de.prices[i - 7])
    np.testing.assert_array_equal(x[4 * s : 5 * s], de.exog[0, i])
    np.testing.assert_array_equal(x[9 * s : 10 * s], de.exog[1, i - 7])
    weekday = pd.Timestamp(str(de.dates[i])).dayofweek
    assert x[-7:].tolist() == [1.0 if k == weekday else 0.0 for k in range(7)]


def test_design_needs_a_week_of_history(de: design.DayData) -> None:
    with pytest.raises(design.DatasetError, match="history"):
        design.build_design(de, [6])


@pytest.mark.slow
def test_no_look_ahead_perturbing_after_the_origin_leaves_the_forecast_unchanged(de: design.DayData) -> None:
    origin = 100
    train = np.arange(7, origin)

    def forecast(data: design.DayData) -> np.ndarray:
        model = LEAR(calibration_window_days=56).fit(
            design.build_design(data, train), design.targets(data, train)
        )
        return model.predict(design.build_design(data, [origin]))

    base = forecast(de)
    prices = de.prices.copy()
    exog = de.exog.copy()
    prices[origin:] *= 10.0  # the day's own prices and everything later are unknown at gate closure
    exog[:, origin + 1 :] += 1e4  # forecasts for later days too
    perturbed = design.DayData(de.dates, prices, exog, de.price_name, de.exog_names)
    np.testing.assert_array_equal(forecast(perturbed), base)
    # ... while the exogenous forecast of the delivery day itself is an input
    exog[:, origin] += 1e4
    moved = design.DayData(de.dates, prices, exog, de.price_name, de.exog_names)
    assert not np.allclose(forecast(moved), base)


def test_lear_beats_weekly_naive_on_the_excerpt(de: design.DayData) -> None:
    test = np.arange(92, 120)
    train = np.arange(7, 92)
    model = LEAR(calibration_window_days=84).fit(design.build_design(de, train), design.targets(de, train))
    pred = model.predict(design.build_design(de, test))
    assert pred.shape == (28, 24)
    naive = weekly_naive(de.prices)[test]
    assert mae(de.prices[test], pred) < 0.7 * mae(de.prices[test], naive)
    assert model.alphas_ is not None
    assert (model.alphas_ > 0).all()


def test_lear_window_uses_only_the_last_days() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = np.stack([x[:, 0] * 3 + 1, -x[:, 1]], axis=1)
    y[:100] = 1e3  # rows outside the window must not matter
    model = LEAR(calibration_window_days=100).fit(x, y)
    pred = model.predict(x[150:])
    assert mae(y[150:], pred) < 0.1


@pytest.mark.slow
def test_published_penalty_is_weaker_than_plain(de: design.DayData) -> None:
    # scikit-learn < 1.1 chose alpha on unit-norm columns and the refit applied it to the
    # unnormalised inputs: a much smaller effective penalty, hence more active inputs.
    train = np.arange(design.MAX_LAG, design.MAX_LAG + 84)
    x, y = design.build_design(de, train), design.targets(de, train)
    published = LEAR(calibration_window_days=84).fit(x, y)
    plain = LEAR(calibration_window_days=84, penalty="plain").fit(x, y)
    assert published.penalty == "published"
    assert published.coef_ is not None
    assert plain.coef_ is not None
    assert (published.coef_ != 0).sum() > (plain.coef_ != 0).sum()
    with pytest.raises(ValueError, match="penalty"):
        LEAR(penalty="sklearn-1.5")


def test_asinh_scaler_round_trip_and_constant_column() -> None:
    x = np.array([[1.0, 5.0], [2.0, 5.0], [40.0, 5.0]])
    sc = AsinhScaler().fit(x)
    np.testing.assert_allclose(sc.inverse(sc.transform(x)), x)


def _write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "x.csv"
    path.write_text(",Price,Load\n" + "\n".join(rows) + "\n")
    return path


def _day(day: str, hours: int = 24, price: str = "1.0") -> list[str]:
    return [f"{day} {h:02d}:00:00,{price},5.0" for h in range(hours)]


def test_loader_rejects_short_days_gaps_and_missing_values(tmp_path: Path) -> None:
    with pytest.raises(design.DatasetError, match="same number of rows"):
        design.load_csv(_write(tmp_path, _day("2020-01-01") + _day("2020-01-02", 23)))
    with pytest.raises(design.DatasetError, match="consecutive"):
        design.load_csv(_write(tmp_path, _day("2020-01-01") + _day("2020-01-03")))
    with pytest.raises(design.DatasetError, match="Price"):
        design.load_csv(_write(tmp_path, _day("2020-01-01") + _day("2020-01-02", price="")))
    with pytest.raises(design.DatasetError, match="does not exist"):
        design.load_csv(tmp_path / "nope.csv")


def test_loader_accepts_quarter_hour_files(tmp_path: Path) -> None:
    rows = [f"2020-01-0{d} {m // 60:02d}:{m % 60:02d}:00,{m},1" for d in (1, 2) for m in range(0, 1440, 15)]
    data = design.load_csv(_write(tmp_path, rows))
    assert data.prices.shape == (2, 96)
    assert data.prices[1, 5] == 75.0


def test_lear_on_the_gram_matrix_equals_plain_coordinate_descent() -> None:
    """More days than features: the refit runs on the Gram matrix; same coefficients as without."""
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 40))
    y = x[:, :5] @ rng.normal(size=(5, 3)) + 0.3 * rng.normal(size=(300, 3))
    model = LEAR().fit(x, y)
    assert model.alphas_ is not None
    xs, ys = model._scale_x(x), model._ys.transform(y)
    for s in range(y.shape[1]):
        plain = Lasso(alpha=model.alphas_[s], max_iter=model.max_iter, precompute=False).fit(xs, ys[:, s])
        np.testing.assert_allclose(model.coef_[s], plain.coef_, atol=1e-6)
