"""One ensemble definition: training and the backtest build the same members; the combination procedure."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from research import ensemble_backtest as eb
from tasks.errors import ConfigError
from tasks.forecasting import definition
from tasks.forecasting.definition import Combination, WindowMean, choose_combination, from_config
from tasks.forecasting.gbm import GBM, ColumnLayout, ExtraTrees
from tasks.forecasting.lear import LEAR
from tasks.forecasting.price_ensemble import ColumnSubset, DesignLEAR, combine_quantiles
from tasks.forecasting.served_model import Design
from tasks.registry import load_config

pytestmark = pytest.mark.unit


def _design(neighbours: bool) -> Design:
    from tasks.features import neighbour_columns

    own = ["price_lag1", "price_lag7", "load_mw", "wind_mw"]
    nb = list(neighbour_columns(["DE_LU"])) if neighbours else []
    return Design(
        columns=own + nb,
        slots=24,
        quantiles=[0.1, 0.5, 0.9],
        fill={},
        price_floor=-500.0,
        price_cap=4000.0,
        neighbour_columns=nb,
    )


def _configuration(model: Any) -> Any:
    """What a member was configured with, whatever wraps it and whichever inputs it reads."""
    if isinstance(model, ColumnSubset):
        return _configuration(model.model)
    if isinstance(model, WindowMean):
        return [_configuration(m) for m in model.models]
    if isinstance(model, DesignLEAR):
        return _configuration(LEAR(**model.params))
    if isinstance(model, LEAR):
        return ("LEAR", model.calibration_window_days, model.max_iter, model.penalty)
    skip = {"layout", "exog_names", "params", "slots_", "model_", "profile_model_"}
    return (type(model).__name__, {k: v for k, v in vars(model).items() if k not in skip})


def test_training_and_backtest_build_the_same_ensemble_from_one_definition() -> None:
    from tasks.train import assemble_candidate, point_models

    config = load_config()
    defn = from_config(config)
    assert set(defn.names) >= {"lear", "dnn"}
    design = _design(neighbours=True)
    # Training: the members tasks.train fits (fit_point_members builds them the same way).
    trained = {s.name: definition.design_point_member(s, design, 4, defn.seed) for s in defn.point_members}
    # Backtest: what each member task of research.ensemble_backtest fits.
    backtest = {
        s.name: definition.lag_point_member(s, ("Load", "Wind"), defn.seed) for s in defn.point_members
    }
    assert list(trained) == list(backtest) == [n for n in defn.names if n != "dnn"]
    for name, member in trained.items():
        assert _configuration(member) == _configuration(backtest[name]), name
    # LEAR's windows are the configured ones in both.
    assert [m[1] for m in _configuration(trained["lear"])] == list(defn.point_members[0].windows)
    # The backtest's tasks cover exactly the definition's members; the registered model serves them.
    plan = eb.Plan(28, 7, 1092, 2, 0.15, first=100, start=128, stop=156)
    assert {m for m, _ in eb.tasks_of(defn, plan)} == {"dnn", *defn.names}
    data = SimpleNamespace(design=design, day=date(2026, 11, 28))
    choice = definition.CombinationChoice({n: 1 / len(defn.names) for n in defn.names}, {}, False, "")
    band = definition.BandCalibration(1.25, 0.8, 0.7, 0.8, 672, "conformal")
    candidate = assemble_candidate(
        data, defn, object(), load_fit=None, fitted=trained, choice=choice, band=band
    )  # type: ignore[arg-type]
    assert sorted(candidate.member_names) == sorted(defn.names)
    assert candidate.band_scale == 1.25  # the served model scales its band as the backtest does
    # ...and carries the daily step the backtest's member step applies, from the day it was trained for.
    assert candidate.daily == vars(defn.daily)
    assert defn.daily.active
    assert candidate.fitted_for == "2026-11-28"
    # point_models (the training stage's builder for every configured block) agrees too.
    built = point_models(config, design, 4, defn.seed)
    assert {n: _configuration(built[n]) for n in trained} == {
        n: _configuration(m) for n, m in trained.items()
    }


def test_definition_rejects_unknown_members_rules_and_search_keys() -> None:
    config = load_config()
    with pytest.raises(ConfigError, match="unknown"):
        from_config({**config, "ensemble": {"members": ["lear", "svm"]}})
    with pytest.raises(ConfigError, match="rule"):
        from_config({**config, "ensemble": {"members": ["lear"], "combination": {"rule": "best"}}})
    with pytest.raises(ConfigError, match="median_share"):
        from_config({**config, "ensemble": {"members": ["lear"], "combination": {"median_share": 1.5}}})
    with pytest.raises(ConfigError, match="searchable"):
        from_config({**config, "search": {"trials": 1, "space": {"epochs": [1, 2]}}})
    for networks in (0, 2.5, True):
        with pytest.raises(ConfigError, match="networks"):
            from_config({**config, "dnn": {**config["dnn"], "networks": networks}})
    assert from_config({**config, "dnn": {**config["dnn"], "networks": 3}}).dnn.params["networks"] == 3
    alone = from_config({**config, "ensemble": {"members": ["dnn"]}})
    assert alone.point_members == ()
    assert alone.dnn_in_point


def test_searched_width_scales_the_layers() -> None:
    defn = from_config({**load_config(), "dnn": {"hidden": [128, 64], "dropout": 0.1}})
    assert definition.dnn_params(defn, {"width": 256, "dropout": 0.2})["hidden"] == [256, 128]
    assert definition.dnn_params(defn, {"dropout": 0.2})["dropout"] == 0.2
    assert definition.dnn_params(defn)["hidden"] == [128, 64]


def test_weights_favour_the_better_member_and_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(50, 10, size=(28, 24))
    members = {"good": y + rng.normal(0, 1, y.shape), "fair": y + rng.normal(0, 3, y.shape)}
    choice = choose_combination(members, y, Combination())
    assert sum(choice.weights.values()) == pytest.approx(1.0)
    assert choice.weights["good"] > choice.weights["fair"]
    assert not choice.fallback
    assert choice.validation_mae["combination"] <= min(
        choice.validation_mae["good"], choice.validation_mae["fair"]
    )


def test_guard_serves_the_best_member_when_the_combination_is_worse() -> None:
    y = np.zeros((14, 24))
    members = {"exact": y.copy(), "off": y + 10.0}
    equal = choose_combination(members, y, Combination(rule="mean", margin=0.01))
    assert equal.fallback
    assert equal.weights == {"exact": 1.0, "off": 0.0}
    assert "exact alone" in equal.reason
    # Within the margin the combination stays.
    close = {"a": y + 1.0, "b": y + 1.005}
    assert not choose_combination(close, y, Combination(rule="mean", margin=0.01)).fallback


def test_fitted_weights_shrink_toward_the_members_median() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(50, 10, size=(28, 24))
    members = {n: y + rng.normal(0, s, y.shape) for n, s in (("a", 1.0), ("b", 2.0), ("c", 3.0))}
    fitted = choose_combination(members, y, Combination(median_share=0.0, level_and_shape=False))
    shrunk = choose_combination(members, y, Combination(median_share=0.5, level_and_shape=False))
    assert fitted.shape_weights is None
    assert definition.MEDIAN not in fitted.weights
    assert shrunk.weights[definition.MEDIAN] == 0.5
    assert {n: 2 * shrunk.weights[n] for n in members} == pytest.approx(fitted.weights)
    assert sum(shrunk.weights.values()) == pytest.approx(1.0)
    assert "0.5 median" in shrunk.reason
    # The served point: half the members' median, half their fitted weighted mean.
    point = definition.combine_points(members, shrunk.weights)
    weighted = sum(fitted.weights[n] * members[n] for n in members)
    median = np.median(np.stack(list(members.values())), axis=0)
    np.testing.assert_allclose(point, 0.5 * median + 0.5 * weighted)
    assert shrunk.validation_mae["combination"] == pytest.approx(float(np.abs(point - y).mean()))


def test_level_and_shape_each_take_the_member_that_gets_them_right() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(50, 10, size=(28, 24))
    level, _ = definition.level_and_shape(y)
    members = {
        "flat": np.repeat(level, 24, axis=1),  # each day's level exact, no shape
        "shifted": y + 20.0,  # the shape exact, the level 20 off
        "noisy": y + rng.normal(0, 8, y.shape),
    }
    choice = choose_combination(members, y, Combination(median_share=0.0))
    assert choice.weights == {"flat": 1.0, "shifted": 0.0, "noisy": 0.0}
    assert choice.shape_weights == {"flat": 0.0, "shifted": 1.0, "noisy": 0.0}
    np.testing.assert_allclose(definition.combine_points(members, choice.weights, choice.shape_weights), y)
    assert choice.validation_mae["combination"] == pytest.approx(0.0, abs=1e-9)
    # One set of weights for the whole point cannot do that.
    whole = choose_combination(members, y, Combination(median_share=0.0, level_and_shape=False))
    assert whole.shape_weights is None
    assert whole.validation_mae["combination"] > 1.0
    # Shrunk: half of each part from the members' median of that part.
    shrunk = choose_combination(members, y, Combination(median_share=0.5))
    assert shrunk.shape_weights is not None
    assert shrunk.shape_weights[definition.MEDIAN] == shrunk.weights[definition.MEDIAN] == 0.5
    parts = {n: definition.level_and_shape(p) for n, p in members.items()}
    median_level = np.median(np.stack([lv for lv, _ in parts.values()]), axis=0)
    median_shape = np.median(np.stack([sh for _, sh in parts.values()]), axis=0)
    np.testing.assert_allclose(
        definition.combine_points(members, shrunk.weights, shrunk.shape_weights),
        (0.5 * median_level + 0.5 * parts["flat"][0]) + (0.5 * median_shape + 0.5 * parts["shifted"][1]),
    )


def test_the_median_share_ignores_one_members_bad_day() -> None:
    y = np.zeros((3, 24))
    bad = y.copy()
    bad[1] = 1000.0  # one member's bad day
    point = definition.combine_points({"a": y + 1.0, "b": y - 1.0, "c": bad}, {"a": 0.0, "median": 1.0})
    np.testing.assert_allclose(point[0], 0.0)
    np.testing.assert_allclose(point[1], 1.0)  # the middle of (1, -1, 1000): the outlier is not averaged in


def test_guard_serves_the_fitted_weights_when_the_shrunk_ones_fail_it() -> None:
    y = np.zeros((14, 24))
    members = {"exact": y.copy(), "off": y + 10.0, "far": y + 12.0}
    choice = choose_combination(members, y, Combination(median_share=0.5, margin=0.01))
    # Shrunk: 0.5 x exact + 0.5 x median (10) is 5 off; the fitted weights (exact alone) pass.
    assert not choice.fallback
    assert choice.weights == {"exact": 1.0, "off": 0.0, "far": 0.0}
    assert "median" not in choice.reason
    assert choice.validation_mae["combination"] == 0.0


def test_days_with_a_missing_member_forecast_are_left_out() -> None:
    y = np.zeros((10, 24))
    a, b = y + 1.0, y + 2.0
    a[:5] = np.nan  # a member without forecasts on those days
    choice = choose_combination({"a": a, "b": b}, y, Combination())
    assert choice.weights["a"] == 1.0
    assert "5 validation days" in choice.reason
    empty = choose_combination({"a": np.full_like(y, np.nan)}, y, Combination())
    assert empty.weights == {"a": 1.0}


def test_weighted_band_is_recentred_on_the_weighted_point() -> None:
    q = np.stack([np.full((2, 24), v) for v in (8.0, 10.0, 12.0)], axis=-1)
    lear = np.full((2, 24), 20.0)
    out = combine_quantiles(q, {"lear": lear}, 1, weights={"dnn": 0.25, "lear": 0.75})
    np.testing.assert_allclose(out[..., 1], 17.5)
    np.testing.assert_allclose(out[..., 2] - out[..., 0], 4.0)  # the DNN's width kept
    np.testing.assert_allclose(combine_quantiles(q, {"lear": lear}, 1)[..., 1], 15.0)  # no weights: equal


def _plan(**kw: int) -> eb.Plan:
    base = {"test_days": 28, "retrain_every": 7, "window_days": 60, "periods": 3, "first": 95, "start": 100}
    base.update(kw)
    return eb.Plan(base["test_days"], base["retrain_every"], base["window_days"], base["periods"], 0.15,
                   first=base["first"], start=base["start"], stop=128)  # fmt: skip


def test_plan_origins_cover_every_forecast_day_once_and_align_on_the_test_period() -> None:
    plan = _plan()
    days = [d for t, t_end in plan.origins() for d in range(t, t_end)]
    assert days == list(range(95, 128))
    assert [t for t, _ in plan.origins() if t >= 100] == [100, 107, 114, 121]
    assert [d for k in range(3) for t, e in plan.period(k) for d in range(t, e)] == days


def _hourly_days(plan: eb.Plan, prices: np.ndarray) -> Any:
    """The backtest's day data for ``plan``: hourly ``prices``, no exogenous series."""
    return SimpleNamespace(
        dates=np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + plan.stop),
        prices=prices, slots=24, n_days=plan.stop, exog=np.zeros((0, plan.stop, 24)), holidays=None,
    )  # fmt: skip


def test_combination_at_an_origin_reads_only_days_before_it() -> None:
    """A member perfect after the origin but poor before it must not be preferred: no look-ahead."""
    plan = _plan(periods=1, first=93, start=100)  # a 7-day validation window
    defn = from_config(
        {**load_config(), "ensemble": {"members": ["dnn", "lear"], "combination": {"validation_days": 7}}}
    )
    n = plan.stop - plan.first
    prices = np.random.default_rng(1).normal(50, 10, (plan.stop, 24))
    data = _hourly_days(plan, prices)
    actual = prices[plan.first :]
    lear = actual + 5.0
    lear[plan.start - plan.first :] = actual[plan.start - plan.first :]  # perfect in the test period only
    dnn = np.stack([actual - 2, actual + 1.0, actual + 4], axis=-1)  # the median 1 off everywhere
    combined = eb.combine(data, defn, plan, {"dnn": dnn, "lear": lear})  # type: ignore[arg-type]
    first = combined.weights[0]
    assert first["origin"] == str(data.dates[plan.start])
    assert first["weights"]["dnn"] > first["weights"]["lear"]
    assert combined.points["ensemble"].shape == (plan.stop - plan.start, 24)
    assert len(combined.weights) == 4
    assert n == dnn.shape[0]


def test_the_definition_is_recorded_as_json() -> None:
    defn = from_config(load_config())
    doc = json.loads(json.dumps(defn.describe()))
    assert doc["members"] == list(defn.names)
    assert doc["combination"]["margin"] == defn.combination.margin
    assert doc["search"]["trials"] == defn.search.trials


@pytest.mark.slow
def test_search_is_bounded_and_reproducible() -> None:
    config = {
        **load_config(),
        "dnn": {"hidden": [8], "epochs": 2, "patience": 1},
        "search": {"trials": 2, "epochs": 2, "patience": 1, "space": {"learning_rate": [1e-3, 1e-2, "log"]}},
    }
    defn = from_config(config)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)), rng.normal(50, 5, size=(40, 24))
    first = definition.search_dnn(defn, (0.1, 0.5, 0.9), (x[:30], y[:30]), (x[30:], y[30:]))
    again = definition.search_dnn(defn, (0.1, 0.5, 0.9), (x[:30], y[:30]), (x[30:], y[30:]))
    assert len(first.trials) == 2
    assert set(first.best) == {"learning_rate"}
    assert first.best == again.best
    off = definition.search_dnn(from_config({**config, "search": {"trials": 0}}), (0.5,), (x, y), (x, y))
    assert off.best == {}
    assert off.trials == []


@pytest.mark.parametrize("cls", [GBM, ExtraTrees])
def test_tree_members_read_the_layout_in_training_and_the_lags_in_the_backtest(cls: type) -> None:
    name = "gbm" if cls is GBM else "forest"
    spec = definition.MemberSpec(name, json.dumps({"calibration_window_days": None}))
    trained = definition.design_point_member(spec, _design(neighbours=False), 1, 0)
    assert isinstance(trained, cls)
    assert trained.layout == ColumnLayout(tuple(_design(False).columns), 24)
    tested = definition.lag_point_member(spec, ("Load",), 0)
    assert isinstance(tested, cls)
    assert tested.layout is None
    assert tested.exog_names == ("Load",)


def _band(
    rng: np.random.Generator, days: int, half_width: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """A band of constant half-width around a centre, and prices that scatter around the centre."""
    centre = rng.normal(50, 10, size=(days, 24))
    q = np.stack([centre - half_width, centre, centre + half_width], axis=-1)
    return q, centre + rng.normal(0, noise, size=centre.shape)


def test_a_too_narrow_band_is_widened_to_its_nominal_coverage_on_fresh_days() -> None:
    """Prices ~N(centre, 10): the 80 % band needs a half-width of 12.8; the DNN gave 6."""
    rng = np.random.default_rng(3)
    validation, y_val = _band(rng, 28, 6.0, 10.0)
    calibration = definition.calibrate_band(validation, y_val, [0.1, 0.5, 0.9], Combination())
    assert calibration.coverage_before is not None
    assert calibration.coverage_before < 0.5
    assert calibration.scale == pytest.approx(12.8 / 6.0, rel=0.1)
    assert calibration.coverage_after is not None
    assert calibration.coverage_after >= 0.8
    test, y_test = _band(rng, 200, 6.0, 10.0)
    served = definition.scale_band(test, 1, calibration.scale)
    assert 0.77 <= definition.band_coverage(served, y_test) <= 0.83
    np.testing.assert_allclose(served[..., 1], test[..., 1])  # the centre stays


def test_a_too_wide_band_is_narrowed_and_order_is_kept() -> None:
    rng = np.random.default_rng(4)
    validation, y_val = _band(rng, 28, 30.0, 10.0)
    calibration = definition.calibrate_band(validation, y_val, [0.1, 0.5, 0.9], Combination())
    assert calibration.scale < 0.6
    served = definition.scale_band(validation, 1, calibration.scale)
    assert (np.diff(served, axis=-1) >= 0).all()


def test_band_calibration_can_be_off_and_needs_enough_validation_prices() -> None:
    rng = np.random.default_rng(5)
    validation, y_val = _band(rng, 28, 6.0, 10.0)
    off = definition.calibrate_band(validation, y_val, [0.1, 0.5, 0.9], Combination(band_calibration=False))
    assert off.scale == 1.0
    assert "off" in off.reason
    few = definition.calibrate_band(validation[:1], y_val[:1], [0.1, 0.5, 0.9], Combination())
    assert few.scale == 1.0
    assert "< 48" in few.reason
    wild = definition.calibrate_band(validation, y_val * 100, [0.1, 0.5, 0.9], Combination())
    assert wild.scale == definition.BAND_SCALE_BOUNDS[1]
    assert "bounded" in wild.reason


def test_the_backtest_band_at_an_origin_is_calibrated_on_the_days_before_it() -> None:
    """The DNN band is half as wide as the prices need before the origin: the test band is widened."""
    plan = _plan(periods=1, first=72, start=100)  # a 28-day validation window
    defn = from_config({**load_config(), "ensemble": {"members": ["dnn"], "combination": {}}})
    prices = np.random.default_rng(6).normal(50, 10, (plan.stop, 24))
    data = _hourly_days(plan, prices)
    centre = np.full((plan.stop - plan.first, 24), 50.0)
    dnn = np.stack([centre - 6.4, centre, centre + 6.4], axis=-1)
    combined = eb.combine(data, defn, plan, {"dnn": dnn})  # type: ignore[arg-type]
    scales = [row["band"]["scale"] for row in combined.weights]
    assert all(1.5 < s < 2.6 for s in scales), scales
    assert 0.72 <= definition.band_coverage(combined.quantiles, prices[plan.start :]) <= 0.88
    np.testing.assert_allclose(combined.dnn_quantiles, dnn[plan.start - plan.first :])  # the DNN's own kept
