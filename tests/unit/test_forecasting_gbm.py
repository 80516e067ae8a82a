"""Tree members (GBM, extra-trees): slot unfolding of the lag design, fit/predict, windows, no look-ahead."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tasks.forecasting import design
from tasks.forecasting.gbm import (
    GBM,
    AsinhTarget,
    ExtraTrees,
    ResidualLoad,
    SlotTreeModel,
    residual_loads_of,
    slot_rows,
)
from tasks.forecasting.metrics import mae
from tasks.forecasting.naive import weekly_naive

pytestmark = pytest.mark.unit

TREE_MODELS = pytest.mark.parametrize("model_cls", [GBM, ExtraTrees], ids=["gbm", "forest"])


def fit_and_test_days(de: design.DayData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Design and targets of 85 fitting days of the excerpt, then the design of the 14 days after them."""
    train, test = np.arange(7, 92), np.arange(92, 106)
    return design.build_design(de, train), design.targets(de, train), design.build_design(de, test), test


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


@pytest.mark.slow
@TREE_MODELS
def test_trees_beat_weekly_naive_on_the_excerpt(de: design.DayData, model_cls: type[SlotTreeModel]) -> None:
    train, test = np.arange(7, 92), np.arange(92, 120)
    model = model_cls(calibration_window_days=None).fit(
        design.build_design(de, train), design.targets(de, train)
    )
    pred = model.predict(design.build_design(de, test))
    assert pred.shape == (28, 24)
    assert mae(de.prices[test], pred) < 0.8 * mae(de.prices[test], weekly_naive(de.prices)[test])
    again = model_cls(calibration_window_days=None).fit(
        design.build_design(de, train), design.targets(de, train)
    )
    np.testing.assert_array_equal(again.predict(design.build_design(de, test)), pred)


@pytest.mark.slow
@TREE_MODELS
def test_tree_window_uses_only_the_last_days(de: design.DayData, model_cls: type[SlotTreeModel]) -> None:
    train = np.arange(7, 100)
    x, y = design.build_design(de, train), design.targets(de, train).copy()
    y[:-56] += 1e3  # rows outside the window must not matter
    model = model_cls(calibration_window_days=56).fit(x, y)
    assert np.abs(model.predict(x[-10:]) - de.prices[train[-10:]]).max() < 100


@pytest.mark.slow
@TREE_MODELS
def test_trees_no_look_ahead(de: design.DayData, model_cls: type[SlotTreeModel]) -> None:
    origin = 100
    train = np.arange(7, origin)

    def forecast(data: design.DayData) -> np.ndarray:
        model = model_cls(calibration_window_days=None).fit(
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


@TREE_MODELS
def test_tree_predict_before_fit_is_an_error(model_cls: type[SlotTreeModel]) -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        model_cls().predict(np.zeros((1, 247)))


def test_forest_leaves_hold_the_same_hours_at_15_minutes() -> None:
    """15-minute rows grow trees as deep as hourly ones: the leaf size counts slots per hour."""
    model = ExtraTrees(min_samples_leaf_per_hour=5)
    assert model._estimator(24).min_samples_leaf == 5  # type: ignore[attr-defined]
    assert model._estimator(96).min_samples_leaf == 20  # type: ignore[attr-defined]


def test_forest_grows_15_minute_trees_on_a_sample_of_the_rows(de: design.DayData) -> None:
    """``subhourly_max_samples``: each 15-minute tree draws that share of the rows; hourly fits draw every row."""
    sampled = ExtraTrees(min_samples_leaf_per_hour=5, subhourly_max_samples=0.5)
    hourly, plain_hourly = sampled._estimator(24), ExtraTrees(min_samples_leaf_per_hour=5)._estimator(24)
    assert hourly.get_params() == plain_hourly.get_params()  # type: ignore[attr-defined]
    quarter_hourly = sampled._estimator(96)
    settings = (quarter_hourly.bootstrap, quarter_hourly.max_samples, quarter_hourly.min_samples_leaf)  # type: ignore[attr-defined]
    assert settings == (True, 0.5, 20)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="subhourly_max_samples"):
            ExtraTrees(subhourly_max_samples=bad)
    # Fitted on 15-minute days (each hour's values held for its four quarters): every tree drew half the rows.
    quarters = dataclasses.replace(
        de, prices=np.repeat(de.prices, 4, axis=1), exog=np.repeat(de.exog, 4, axis=2)
    )
    days = np.arange(7, 40)
    x, y = design.build_design(quarters, days), design.targets(quarters, days)
    model = ExtraTrees(
        calibration_window_days=None, n_estimators=6, subhourly_max_samples=0.5, intraday_profile=True
    ).fit(x, y)
    drawn = model.profile_model_.estimators_samples_  # type: ignore[union-attr]
    assert [len(rows) for rows in drawn] == [len(days) * 96 // 2] * 6
    assert np.isfinite(model.predict(x)).all()


def test_forest_level_trees_size_only_the_level_fit_of_a_profile_forest(de: design.DayData) -> None:
    """The level fit only gives the daily mean when the profile fit gives the shape; alone it needs every tree."""
    x, y, x_test, _ = fit_and_test_days(de)
    profiled = ExtraTrees(
        calibration_window_days=None, n_estimators=12, level_estimators=4, intraday_profile=True
    )
    profiled.fit(x, y)
    assert len(profiled.model_.estimators_) == 4  # type: ignore[attr-defined]
    assert len(profiled.profile_model_.estimators_) == 12  # type: ignore[union-attr]
    assert np.isfinite(profiled.predict(x_test)).all()
    single = ExtraTrees(calibration_window_days=None, n_estimators=12, level_estimators=4).fit(x, y)
    assert len(single.model_.estimators_) == 12  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="level_estimators"):
        ExtraTrees(level_estimators=0)


@pytest.mark.parametrize("target_transform", ["none", "asinh"])
def test_forest_forecast_does_not_depend_on_the_fit_threads(
    de: design.DayData, target_transform: str
) -> None:
    """Two fit threads give the same bytes as one: re-running a day must not change its schedule."""
    x, y, x_test, _ = fit_and_test_days(de)

    def forecast(n_jobs: int) -> np.ndarray:
        model = ExtraTrees(
            calibration_window_days=None, n_estimators=40, n_jobs=n_jobs, target_transform=target_transform
        ).fit(x, y)
        return model.predict(x_test)

    serial = forecast(1)
    for _ in range(3):  # a parallel predict sums in thread-finish order: repeat to give it a chance to differ
        np.testing.assert_array_equal(forecast(2), serial)


def test_residual_load_is_load_minus_renewables_where_the_file_has_both(de: design.DayData) -> None:
    parts = residual_loads_of(de.exog_names)  # "Ampirion Load Forecast", "PV+Wind Forecast"
    assert parts == (ResidualLoad(load=0, renewables=(1,)),)
    assert residual_loads_of(("Generation forecast", "System load forecast")) == ()  # BE: no renewables
    assert residual_loads_of(("load_mw", "wind_mw", "solar_mw", "wind_speed_ms", "ghi_w_m2")) == (
        ResidualLoad(0, (1, 2)),
    )  # wind speed and irradiance are weather, not infeed
    # A neighbour's series (design.with_neighbour) pair among themselves, never with the market's own load.
    be_with_de = (
        "Generation forecast",
        "System load forecast",
        "DE: Ampirion Load Forecast",
        "DE: PV+Wind Forecast",
    )
    assert residual_loads_of(be_with_de) == (ResidualLoad(load=2, renewables=(3,)),)
    # One per market, the own market's first wherever its columns are (production's BE with DE_LU).
    assert residual_loads_of(("NL: load", "NL: wind", "load_mw", "wind_mw")) == (
        ResidualLoad(2, (3,)),
        ResidualLoad(0, (1,)),
    )
    assert residual_loads_of(("System load forecast", "DE: PV+Wind Forecast")) == ()
    days = [30, 31]
    wide = design.build_design(de, days)
    plain, _ = slot_rows(wide, de.slots)
    rows, _ = slot_rows(wide, de.slots, parts)
    extra = rows.shape[1] - plain.shape[1]
    assert extra == 10  # today, D-1, D-7, mean, deviation, change from D-1, 2 neighbours, max, min
    np.testing.assert_array_equal(rows[:, : plain.shape[1]], plain)
    d, h = 1, 17
    net = de.exog[0, 31] - de.exog[1, 31]
    r = rows[d * 24 + h, plain.shape[1] :]
    assert r[0] == pytest.approx(net[h])
    assert r[1] == pytest.approx(de.exog[0, 30, h] - de.exog[1, 30, h])
    assert r[2] == pytest.approx(de.exog[0, 24, h] - de.exog[1, 24, h])
    assert r[3] == pytest.approx(net.mean())
    assert r[-2:] == pytest.approx([net.max(), net.min()])


@pytest.mark.slow
@TREE_MODELS
def test_trees_read_the_residual_load_only_when_asked(
    de: design.DayData, model_cls: type[SlotTreeModel]
) -> None:
    train = np.arange(7, 60)
    x, y = design.build_design(de, train), design.targets(de, train)
    with_net = model_cls(calibration_window_days=None, residual_load=True, exog_names=de.exog_names).fit(x, y)
    plain = model_cls(calibration_window_days=None).fit(x, y)
    assert with_net.model_.n_features_in_ == plain.model_.n_features_in_ + 10  # type: ignore[attr-defined]
    # A model pickled before the option existed has neither attribute: it reads the plain rows.
    del plain.__dict__["residual_load"], plain.__dict__["exog_names"]
    assert plain.predict(x[-3:]).shape == (3, 24)


@pytest.mark.slow
@TREE_MODELS
def test_intraday_profile_keeps_the_level_and_takes_the_shape_from_the_second_fit(
    de: design.DayData, model_cls: type[SlotTreeModel]
) -> None:
    x, y, x_test, test = fit_and_test_days(de)
    plain = model_cls(calibration_window_days=None).fit(x, y)
    profiled = model_cls(calibration_window_days=None, intraday_profile=True).fit(x, y)
    assert plain.profile_model_ is None
    base, pred = plain.predict(x_test), profiled.predict(x_test)
    # The first fit is the plain member's, so the daily level is the plain member's ...
    np.testing.assert_allclose(pred.mean(axis=1), base.mean(axis=1), rtol=0, atol=1e-9)
    # ... and the shape is the profile fit's own prediction, re-centred on zero.
    rows, _ = slot_rows(x_test, 24)
    shape = profiled.profile_model_.predict(rows).reshape(-1, 24)  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        pred - pred.mean(axis=1, keepdims=True), shape - shape.mean(axis=1, keepdims=True)
    )
    assert np.abs(pred - base).max() > 0.1  # a different shape from the plain member's
    assert mae(de.prices[test], pred) < 0.8 * mae(de.prices[test], weekly_naive(de.prices)[test])
    again = model_cls(calibration_window_days=None, intraday_profile=True).fit(x, y)
    np.testing.assert_array_equal(again.predict(x_test), pred)
    # A member pickled before the option existed lacks both attributes and predicts as before.
    del plain.__dict__["intraday_profile"], plain.__dict__["profile_model_"]
    np.testing.assert_array_equal(plain.predict(x_test), base)


def test_asinh_target_inverts_exactly_and_scales_by_the_median_absolute_deviation() -> None:
    from sklearn.neighbors import KNeighborsRegressor

    rows = np.arange(9, dtype=float)[:, None]
    target = np.array([-40.0, 10, 20, 30, 35, 40, 50, 60, 900])  # a negative price and a scarcity spike
    model = AsinhTarget(KNeighborsRegressor(n_neighbors=1)).fit(rows, target)
    assert model.scaler_.params() == (
        [35.0],
        [15.0],
    )  # median of |target - 35|: 75, 25, 15, 5, 0, 5, 15, 25, 865
    np.testing.assert_allclose(model.predict(rows), target)  # a memorising regressor gives the target back
    constant = AsinhTarget(KNeighborsRegressor(n_neighbors=1)).fit(rows, np.full(9, 42.0))
    np.testing.assert_array_equal(constant.scaler_.params()[1], [1.0])
    np.testing.assert_allclose(constant.predict(rows), 42.0)


def test_asinh_target_keeps_rare_spikes_from_pulling_the_ordinary_rows() -> None:
    """Squared error on raw prices lets a few spikes move the fit of the rows around them; asinh does not."""
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(2000, 1))
    clean = 40 + 20 * x[:, 0]
    spikes = rng.random(2000) < 0.01
    y = clean + np.where(spikes, 800.0, 0.0) + rng.normal(0, 2, 2000)
    raw = DecisionTreeRegressor(max_leaf_nodes=8, random_state=0).fit(x, y)
    robust = AsinhTarget(DecisionTreeRegressor(max_leaf_nodes=8, random_state=0)).fit(x, y)
    ordinary = ~spikes
    err_raw = np.abs(raw.predict(x[ordinary]) - clean[ordinary]).mean()
    err_robust = np.abs(robust.predict(x[ordinary]) - clean[ordinary]).mean()
    assert err_robust < 0.5 * err_raw


@pytest.mark.slow
@TREE_MODELS
def test_asinh_target_transform_is_deterministic_and_old_members_keep_the_raw_fit(
    de: design.DayData, model_cls: type[SlotTreeModel]
) -> None:
    x, y, x_test, test = fit_and_test_days(de)
    raw = model_cls(calibration_window_days=None, intraday_profile=True).fit(x, y)
    asinh = model_cls(calibration_window_days=None, intraday_profile=True, target_transform="asinh").fit(x, y)
    assert isinstance(asinh.model_, AsinhTarget)
    assert isinstance(asinh.profile_model_, AsinhTarget)
    pred = asinh.predict(x_test)
    assert np.abs(pred - raw.predict(x_test)).max() > 0.1
    assert mae(de.prices[test], pred) < 0.8 * mae(de.prices[test], weekly_naive(de.prices)[test])
    again = model_cls(calibration_window_days=None, intraday_profile=True, target_transform="asinh").fit(x, y)
    np.testing.assert_array_equal(again.predict(x_test), pred)
    # A member pickled before the option existed lacks the attribute and predicts on the raw fit.
    base = raw.predict(x_test)
    del raw.__dict__["target_transform"]
    np.testing.assert_array_equal(raw.predict(x_test), base)
    with pytest.raises(ValueError, match="target_transform"):
        model_cls(calibration_window_days=None, target_transform="log")  # type: ignore[arg-type]
