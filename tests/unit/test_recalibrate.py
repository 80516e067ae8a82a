"""Daily re-calibration: LEAR re-fitted with its weekly penalties, and research.recalibrate's contract."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from research.ensemble_backtest import Plan, PlanError, read_substitute
from research.markets import read_hourly
from research.recalibrate import forecasts_csv, lear_daily, recent_days
from tasks.forecasting import design
from tasks.forecasting.definition import EnsembleDefinition, from_config
from tasks.forecasting.lear import LEAR
from tasks.registry import load_config

pytestmark = pytest.mark.unit

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "epf"


@pytest.fixture(scope="module")
def de() -> design.DayData:
    return read_hourly(FIX / "DE_excerpt.csv")


def _plan(data: design.DayData) -> Plan:
    n = data.n_days
    return Plan(
        test_days=7,
        retrain_every=7,
        window_days=42,
        periods=1,
        validation_fraction=0.15,
        first=n - 14,
        start=n - 7,
        stop=n,
    )


def _lear_only(window: int) -> EnsembleDefinition:
    config = load_config(None)
    config["ensemble"] = {**config["ensemble"], "members": ["dnn", "lear"]}
    config["lear"] = {**config["lear"], "calibration_window_days": [window]}
    return from_config(config)


def test_refit_on_the_same_window_reproduces_the_fit(de: design.DayData) -> None:
    days = np.arange(design.MAX_LAG, design.MAX_LAG + 56)
    x, y = design.build_design(de, days), design.targets(de, days)
    model = LEAR(calibration_window_days=56).fit(x, y)
    before = model.predict(x[-5:])
    alphas = np.array(model.alphas_)
    model.refit(x, y)
    np.testing.assert_allclose(model.predict(x[-5:]), before, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(np.array(model.alphas_), alphas)


def test_refit_follows_the_newer_window_with_the_same_penalties(de: design.DayData) -> None:
    old = np.arange(design.MAX_LAG, design.MAX_LAG + 56)
    new = old + 7
    x_old, y_old = design.build_design(de, old), design.targets(de, old)
    x_new, y_new = design.build_design(de, new), design.targets(de, new)
    refitted = LEAR(calibration_window_days=56).fit(x_old, y_old)
    alphas = np.array(refitted.alphas_)
    refitted.refit(x_new, y_new)
    # The same penalties on the new window from scratch: what the warm start must converge to.
    fresh = LEAR(calibration_window_days=56).fit(x_new, y_new)
    fresh.alphas_ = alphas
    fresh.coef_ = np.zeros_like(fresh.coef_)
    fresh.refit(x_new, y_new)
    np.testing.assert_array_equal(np.array(refitted.alphas_), alphas)
    np.testing.assert_allclose(refitted.predict(x_new[-3:]), fresh.predict(x_new[-3:]), rtol=1e-3, atol=0.05)
    stale = LEAR(calibration_window_days=56).fit(x_old, y_old)
    assert not np.allclose(refitted.predict(x_new[-3:]), stale.predict(x_new[-3:]))


def test_refit_before_fit_is_refused() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        LEAR().refit(np.zeros((3, 2)), np.zeros((3, 1)))


def test_recent_days_end_the_day_before() -> None:
    got = recent_days(100, 30)
    assert got[0] == 70
    assert got[-1] == 99
    assert recent_days(design.MAX_LAG + 3, 30)[0] == design.MAX_LAG


def test_lear_daily_reads_nothing_from_the_forecast_day_on(de: design.DayData) -> None:
    plan, defn = _plan(de), _lear_only(28)
    base = lear_daily(de, defn, plan)
    assert np.isfinite(base).all()
    assert base.shape == (14, 24)
    day = plan.first + 9  # mid-block: its forecast comes from a daily re-fit, not the weekly fit
    later = replace(de, prices=de.prices.copy(), exog=de.exog.copy())
    later.prices[day:] += 500.0
    later.exog[:, day + 1 :] *= 3.0  # D's own forecasts of load and generation are inputs of D
    moved = lear_daily(later, defn, plan)
    i = day - plan.first
    np.testing.assert_allclose(moved[: i + 1], base[: i + 1])
    assert not np.allclose(moved[i + 1 :], base[i + 1 :])


def test_daily_refit_is_not_the_weekly_forecast(de: design.DayData) -> None:
    plan, defn = _plan(de), _lear_only(28)
    daily = lear_daily(de, defn, plan)
    t = plan.first
    days = plan.train_days(t)
    weekly = LEAR(calibration_window_days=28).fit(design.build_design(de, days), design.targets(de, days))
    block = np.arange(t, t + 7)
    same_first = weekly.predict(design.build_design(de, block[:1]))
    np.testing.assert_allclose(daily[0], same_first[0])  # the origin's day: the weekly fit itself
    assert not np.allclose(daily[1:7], weekly.predict(design.build_design(de, block[1:])))


def test_written_file_is_what_substitute_reads(tmp_path: Path, de: design.DayData) -> None:
    plan = _plan(de)
    point = design.targets(de, np.arange(plan.first, plan.stop)) + 2.5
    out = tmp_path / "lear.csv"
    out.write_text(forecasts_csv(de, plan, "lear", point))
    np.testing.assert_allclose(read_substitute(out, "lear", de, plan), point, atol=1e-4)


def test_lear_daily_needs_a_lear_member(de: design.DayData) -> None:
    config = load_config(None)
    config["ensemble"] = {**config["ensemble"], "members": ["dnn", "gbm"]}
    with pytest.raises(PlanError, match="no lear member"):
        lear_daily(de, from_config(config), _plan(de))
