"""GBM member: slot unfolding of the lag design, fit/predict, windows and no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.forecasting import design
from tasks.forecasting.gbm import GBM, slot_rows
from tasks.forecasting.metrics import mae
from tasks.forecasting.naive import weekly_naive

pytestmark = pytest.mark.unit


def test_slot_rows_unfold_each_day_into_its_slots(de: design.DayData) -> None:
    days = [30, 31]
    rows, level = slot_rows(design.build_design(de, days), de.slots)
    assert rows.shape[0] == 2 * 24
    d, h = 1, 17  # row of day 31, slot 17
    r = rows[d * 24 + h]
    lvl = de.prices[30].mean()
    assert level[d * 24 + h] == pytest.approx(lvl)
    assert r[0] == h
    assert r[1] == (np.datetime64(str(de.dates[31]), "D").astype(int) - 4) % 7  # weekday, Monday = 0
    assert r[2] == pytest.approx(de.prices[30, h] - lvl)  # D-1, same slot, relative to D-1's mean
    assert r[5] == pytest.approx(de.prices[24, h] - lvl)  # D-7
    assert r[6] == pytest.approx(de.prices[30].min() - lvl)
    assert r[11] == pytest.approx(de.exog[0, 31, h])  # the day's own load forecast
    with_holidays = design.with_holidays(de, "DE")
    rows_h, _ = slot_rows(design.build_design(with_holidays, days), de.slots)
    assert rows_h.shape[1] == rows.shape[1] + len(design.HOLIDAY_LAGS)
    with pytest.raises(ValueError, match="not a lag design"):
        slot_rows(np.zeros((2, 100)), 24)


def test_gbm_beats_weekly_naive_on_the_excerpt(de: design.DayData) -> None:
    train, test = np.arange(7, 92), np.arange(92, 120)
    model = GBM(calibration_window_days=None).fit(design.build_design(de, train), design.targets(de, train))
    pred = model.predict(design.build_design(de, test))
    assert pred.shape == (28, 24)
    assert mae(de.prices[test], pred) < 0.8 * mae(de.prices[test], weekly_naive(de.prices)[test])
    again = GBM(calibration_window_days=None).fit(design.build_design(de, train), design.targets(de, train))
    np.testing.assert_array_equal(again.predict(design.build_design(de, test)), pred)


def test_gbm_window_uses_only_the_last_days(de: design.DayData) -> None:
    train = np.arange(7, 100)
    x, y = design.build_design(de, train), design.targets(de, train).copy()
    y[:-56] += 1e3  # rows outside the window must not matter
    model = GBM(calibration_window_days=56).fit(x, y)
    assert np.abs(model.predict(x[-10:]) - de.prices[train[-10:]]).max() < 100


def test_gbm_no_look_ahead(de: design.DayData) -> None:
    origin = 100
    train = np.arange(7, origin)

    def forecast(data: design.DayData) -> np.ndarray:
        model = GBM(calibration_window_days=None).fit(
            design.build_design(data, train), design.targets(data, train)
        )
        return model.predict(design.build_design(data, [origin]))

    base = forecast(de)
    prices, exog = de.prices.copy(), de.exog.copy()
    prices[origin:] *= 10.0
    exog[:, origin + 1 :] += 1e4
    np.testing.assert_array_equal(
        forecast(design.DayData(de.dates, prices, exog, de.price_name, de.exog_names)), base
    )


def test_gbm_predict_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        GBM().predict(np.zeros((1, 247)))
