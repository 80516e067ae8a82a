"""Production price ensemble: GBM on the production design layout, LEAR on it, quantile re-centring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.forecasting.gbm import (
    GBM,
    ColumnLayout,
    ExtraTrees,
    SlotTreeModel,
    column_slot_rows,
    residual_loads_of,
)
from tasks.forecasting.metrics import mae
from tasks.forecasting.price_ensemble import DesignLEAR, coarsen, combine_quantiles, recentre

pytestmark = pytest.mark.unit

COLUMNS = (
    "price_lag1",
    "price_lag2",
    "price_lag7",
    "load_mw",
    "load_mw_lag1",
    "load_mw_lag7",
    "temperature_c",
)


def production_rows(n_days: int, slots: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Wide rows in the layout of ``Design.matrix`` and targets driven by the load's shape."""
    rng = np.random.default_rng(seed)
    t = np.arange(slots) / slots
    level = rng.normal(0, 5_000, (n_days + 7, 1))  # day-to-day swings a weekly naive cannot follow
    shape = 10_000 * np.sin(2 * np.pi * (t - 0.3))[None, :]
    load = 50_000 + level + shape + rng.normal(0, 300, (n_days + 7, slots))
    price = 40 + 0.004 * (load - 50_000) + rng.normal(0, 2, (n_days + 7, slots))
    temp = rng.normal(10, 5, (n_days + 7, slots))
    rows, targets = [], []
    for d in range(7, n_days + 7):
        grid = np.stack(
            [price[d - 1], price[d - 2], price[d - 7], load[d], load[d - 1], load[d - 7], temp[d]], axis=1
        )
        weekday = np.zeros(7)
        weekday[d % 7] = 1.0
        day = np.concatenate([weekday, [float(d % 11 == 0), np.sin(d / 58), np.cos(d / 58)]])
        rows.append(np.concatenate([grid.ravel(), day]))
        targets.append(price[d])
    return np.array(rows), np.array(targets)


def test_column_slot_rows_read_the_production_layout() -> None:
    x, _ = production_rows(3, 24)
    layout = ColumnLayout(COLUMNS, 24)
    rows, level = column_slot_rows(x, layout)
    # slot, weekday, 3 day flags, 3 price lags, D-1 min/max/last, D-7 mean, level,
    # load: today + 2 lags + mean, deviation, change from D-1, 2 neighbours, max, min (10),
    # temperature: today + mean, deviation, 2 neighbours, max, min (7; no lag, no change).
    assert rows.shape == (3 * 24, 2 + 3 + 3 + 3 + 2 + 10 + 7)
    grid = x[:, : 24 * len(COLUMNS)].reshape(3, 24, len(COLUMNS))
    d, s = 1, 17
    r, lvl = rows[d * 24 + s], grid[d, :, 0].mean()
    assert level[d * 24 + s] == pytest.approx(lvl)
    assert (r[0], r[1]) == (s, x[d, 24 * len(COLUMNS) : 24 * len(COLUMNS) + 7].argmax())
    np.testing.assert_allclose(r[2:5], x[d, -3:])  # is_holiday, season sin/cos
    np.testing.assert_allclose(r[5:8], grid[d, s, :3] - lvl)  # D-1, D-2, D-7 relative to D-1's mean
    load_at = 5 + 3 + 3 + 2
    np.testing.assert_allclose(r[load_at : load_at + 3], grid[d, s, 3:6])  # load of D, D-1, D-7
    assert r[load_at + 5] == pytest.approx(grid[d, :, 3].mean() - grid[d, :, 4].mean())  # change from D-1
    with pytest.raises(ValueError, match="day columns"):
        column_slot_rows(x[:, :-1], layout)
    with pytest.raises(ValueError, match="price_lag"):
        ColumnLayout(("load_mw",), 24)


@pytest.mark.slow
@pytest.mark.parametrize("model_cls", [GBM, ExtraTrees], ids=["gbm", "forest"])
@pytest.mark.parametrize("slots", [24, 96])
def test_trees_on_the_production_layout_learn_the_shape(slots: int, model_cls: type[SlotTreeModel]) -> None:
    x, y = production_rows(120, slots)
    model = model_cls(calibration_window_days=None, layout=ColumnLayout(COLUMNS, slots)).fit(x[:100], y[:100])
    pred = model.predict(x[100:])
    assert pred.shape == (20, slots)
    naive = x[100:, : slots * len(COLUMNS)].reshape(20, slots, len(COLUMNS))[:, :, 2]  # D-7
    assert mae(y[100:], pred) < 0.6 * mae(y[100:], naive)
    with pytest.raises(ValueError, match="slots"):
        model_cls(layout=ColumnLayout(COLUMNS, 48)).fit(x[:100], y[:100])


@pytest.mark.slow
def test_design_lear_uses_hourly_inputs_and_learns_the_relation() -> None:
    x, y = production_rows(120, 96)
    hourly = coarsen(x, n_columns=len(COLUMNS), slots=96, factor=4)
    assert hourly.shape[1] == 24 * len(COLUMNS) + 10
    np.testing.assert_allclose(hourly[:, 0], x[:, [0, 7, 14, 21]].mean(axis=1))  # price_lag1 of slots 0-3
    with pytest.raises(RuntimeError, match="before fit"):
        DesignLEAR(len(COLUMNS), 96, 4).predict(x)
    lear = DesignLEAR(len(COLUMNS), 96, 4, {"max_iter": 500}).fit(x[:100], y[:100])
    naive = x[100:, : 96 * len(COLUMNS)].reshape(20, 96, len(COLUMNS))[:, :, 2]
    assert mae(y[100:], lear.predict(x[100:])) < 0.6 * mae(y[100:], naive)


def test_quantiles_are_recentred_on_the_ensemble_mean() -> None:
    rng = np.random.default_rng(1)
    median = rng.normal(50, 10, (3, 24))
    q = np.stack([median - 5, median, median + 8], axis=-1)
    lear, gbm = median + 3.0, median - 6.0
    out = combine_quantiles(q, {"lear": lear, "gbm": gbm}, median_index=1)
    np.testing.assert_allclose(out[..., 1], (median + lear + gbm) / 3)
    np.testing.assert_allclose(np.diff(out, axis=-1), np.diff(q, axis=-1))  # the band keeps its width
    np.testing.assert_array_equal(combine_quantiles(q, {}, median_index=1), q)
    without_dnn = combine_quantiles(q, {"lear": lear, "gbm": gbm}, median_index=1, dnn_in_point=False)
    np.testing.assert_allclose(without_dnn[..., 1], (lear + gbm) / 2)  # the DNN gives only the band
    np.testing.assert_allclose(np.diff(without_dnn, axis=-1), np.diff(q, axis=-1))
    np.testing.assert_allclose(recentre(q, median + 1, 1), q + 1)


def test_ensemble_members_from_the_config() -> None:
    from tasks.errors import ConfigError
    from tasks.forecasting.definition import from_config

    blocks = {"lear": {}, "gbm": {}}
    both = from_config({**blocks, "ensemble": {"members": ["dnn", "lear", "gbm"]}})
    assert both.names == ("dnn", "lear", "gbm")
    assert both.dnn_in_point
    points = from_config({**blocks, "ensemble": {"members": ["gbm", "lear"]}})
    assert [m.name for m in points.point_members] == ["gbm", "lear"]
    assert not points.dnn_in_point
    assert from_config(blocks).names == ("dnn",)  # no ensemble section: the DNN alone
    with pytest.raises(ConfigError, match="unknown or without a block: \\['svm'\\]"):
        from_config({**blocks, "ensemble": {"members": ["dnn", "svm"]}})
    with pytest.raises(ConfigError, match="forest"):
        from_config({**blocks, "ensemble": {"members": ["forest"]}})  # no forest block
    with pytest.raises(ConfigError, match="at most once"):
        from_config({**blocks, "ensemble": {"members": []}})


def test_column_slot_rows_add_the_residual_load_when_asked() -> None:
    columns = ("price_lag1", "load_mw", "load_mw_lag1", "wind_mw", "wind_mw_lag1", "solar_mw", "solar_mw_lag1",
               "wind_speed_ms")  # fmt: skip
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [rng.normal(size=(2, 24 * len(columns))), np.tile(np.eye(7)[0], (2, 1)), np.zeros((2, 3))], 1
    )
    layout = ColumnLayout(columns, 24)
    plain, _ = column_slot_rows(x, layout)
    rows, _ = column_slot_rows(x, layout, residual_loads_of(layout.series))
    grid = x[:, : 24 * len(columns)].reshape(2, 24, len(columns))
    net, net_d1 = grid[:, :, 1] - grid[:, :, 3] - grid[:, :, 5], grid[:, :, 2] - grid[:, :, 4] - grid[:, :, 6]
    d, s = 1, 5
    extra = rows[d * 24 + s, plain.shape[1] :]
    np.testing.assert_array_equal(rows[:, : plain.shape[1]], plain)
    # today, D-1, mean, deviation, change from D-1, 2 neighbours, max, min: the wind speed is not infeed
    assert extra.shape == (9,)
    np.testing.assert_allclose(extra[:2], [net[d, s], net_d1[d, s]])
    assert extra[4] == pytest.approx(net[d].mean() - net_d1[d].mean())
    without_renewables = ColumnLayout(("price_lag1", "load_mw"), 24)
    narrow = np.concatenate([x[:, :48], x[:, -10:]], axis=1)
    assert residual_loads_of(without_renewables.series) == ()
    assert column_slot_rows(narrow, without_renewables, residual_loads_of(without_renewables.series))[
        0
    ].shape == (column_slot_rows(narrow, without_renewables)[0].shape)


@pytest.mark.slow
def test_members_without_neighbour_series_read_the_zones_own_columns() -> None:
    from tasks.features import neighbour_columns
    from tasks.forecasting.gbm import GBM, ExtraTrees
    from tasks.forecasting.price_ensemble import ColumnSubset, DesignLEAR
    from tasks.forecasting.served_model import Design
    from tasks.train import point_models

    own = ["price_lag1", "price_lag7", "load_mw", "wind_mw"]
    nb = list(neighbour_columns(["DE_LU"]))
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(24, len(own) + len(nb))), columns=own + nb)
    frame = frame.assign(slot=range(24), weekday=2, month=5, is_holiday=0)
    common = {
        "slots": 24,
        "quantiles": [0.1, 0.5, 0.9],
        "fill": {},
        "price_floor": -500.0,
        "price_cap": 4000.0,
    }
    both = Design(columns=own + nb, neighbour_columns=nb, **common)  # type: ignore[arg-type]
    alone = Design(columns=own, **common)  # type: ignore[arg-type]
    x = both.matrix([frame])
    assert x.shape[1] == 24 * 13 + 10
    np.testing.assert_array_equal(both.own(x), alone.matrix([frame]))
    assert both.own(x).flags.c_contiguous, "a column selection is Fortran-ordered; reductions would differ"
    np.testing.assert_array_equal(alone.own(alone.matrix([frame])), alone.matrix([frame]))

    config = {"lear": {}, "gbm": {"neighbour_series": True}, "forest": {"n_estimators": 5}}
    members = point_models(config, both, per_hour=1, seed=0)
    assert isinstance(members["lear"], ColumnSubset)
    assert isinstance(members["lear"].model, DesignLEAR)
    assert isinstance(members["gbm"], GBM)
    assert members["gbm"].layout == ColumnLayout(tuple(own + nb), 24)
    assert isinstance(members["forest"], ColumnSubset)
    assert isinstance(members["forest"].model, ExtraTrees)
    assert members["forest"].model.layout == ColumnLayout(tuple(own), 24)
    # Without neighbour columns nothing is wrapped, whatever the member's setting.
    assert not any(isinstance(m, ColumnSubset) for m in point_models(config, alone, 1, 0).values())
