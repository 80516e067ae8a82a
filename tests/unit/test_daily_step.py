"""The daily step (ensemble.daily): LEAR re-fitted with its fitted penalties, what the backtest's member step reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from research.ensemble_backtest import Plan, recent_days, run_member
from research.markets import read_hourly
from tasks.errors import ConfigError
from tasks.forecasting import design
from tasks.forecasting.definition import DailyStep, EnsembleDefinition, WindowMean, from_config
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


def _lear_only(window: int, *, refit: bool = True) -> EnsembleDefinition:
    config = load_config(None)
    config["ensemble"] = {
        **config["ensemble"],
        "members": ["dnn", "lear"],
        "daily": {**config["ensemble"]["daily"], "lear_refit": refit},
    }
    config["lear"] = {**config["lear"], "calibration_window_days": [window]}
    return from_config(config)


def lear_daily(data: design.DayData, defn: EnsembleDefinition, plan: Plan) -> np.ndarray:
    return run_member(data, defn, plan, member="lear", period=0, tuned={})


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
    plan = _plan(de)
    daily = lear_daily(de, _lear_only(28), plan)
    weekly = lear_daily(de, _lear_only(28, refit=False), plan)
    t = plan.first
    days = plan.train_days(t)
    fitted = LEAR(calibration_window_days=28).fit(design.build_design(de, days), design.targets(de, days))
    np.testing.assert_allclose(weekly[:7], fitted.predict(design.build_design(de, np.arange(t, t + 7))))
    np.testing.assert_allclose(daily[0], weekly[0])  # the origin's day: the fit itself
    assert not np.allclose(daily[1:7], weekly[1:7])


def test_window_mean_and_design_lear_refit_every_window(de: design.DayData) -> None:
    """Production's LEAR member (DesignLEAR windows averaged) re-fits each window with its own penalties."""
    from tasks.forecasting.price_ensemble import DesignLEAR

    old = np.arange(design.MAX_LAG, design.MAX_LAG + 70)
    x_old, y_old = design.build_design(de, old), design.targets(de, old)
    x_new, y_new = design.build_design(de, old + 5), design.targets(de, old + 5)
    member = WindowMean(
        [DesignLEAR(x_old.shape[1], 24, 1, {"calibration_window_days": w}) for w in (56, None)]
    ).fit(x_old, y_old)
    alphas = [np.array(m.model.alphas_) for m in member.models]
    keep = [m.keep.copy() for m in member.models]
    member.refit(x_new, y_new)
    for model, window, a, k in zip(member.models, (56, None), alphas, keep, strict=True):
        np.testing.assert_array_equal(model.model.alphas_, a)
        np.testing.assert_array_equal(model.keep, k)
        alone = LEAR(calibration_window_days=window).fit(x_old[:, k], y_old).refit(x_new[:, k], y_new)
        np.testing.assert_allclose(model.predict(x_new[-2:]), alone.predict(x_new[-2:, k]))
    with pytest.raises(RuntimeError, match="before fit"):
        DesignLEAR(3, 24).refit(x_new, y_new)


def test_daily_block_of_models_json_is_validated() -> None:
    config = load_config(None)
    daily = from_config(config).daily
    assert daily == DailyStep(182, 3, 1e-4, True, True)
    assert from_config(config).describe()["daily"]["dnn_recent_days"] == 182
    assert [daily.applies_to(m) for m in ("dnn", "lear", "gbm", "forest")] == [
        True,
        True,
        False,
        False,
    ]
    # The trees' once-only re-fit with the held-out days (production; the DNN and LEAR are stepped daily).
    assert [daily.refits_held_out(m) for m in ("dnn", "lear", "gbm", "forest")] == [
        False,
        False,
        True,
        True,
    ]
    for bad in ({"dnn_recent_days": -1}, {"dnn_epochs": 0}, {"dnn_learning_rate": 0}, {"lear": True}):
        broken = {**config, "ensemble": {**config["ensemble"], "daily": bad}}
        with pytest.raises(ConfigError, match=r"ensemble\.daily"):
            from_config(broken)
    off = from_config({**config, "ensemble": {k: v for k, v in config["ensemble"].items() if k != "daily"}})
    assert not off.daily.active


class _Recorder:
    """A stand-in DNN / LEAR member that records the rows each daily step gave it."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray, dict[str, object]]] = []

    def fine_tune(self, x: np.ndarray, y: np.ndarray, **kwargs: object) -> None:
        self.calls.append((x, y, kwargs))

    def refit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.calls.append((x, y, {}))

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.calls.append((x, y, {"fit": True}))


def test_production_step_replays_the_chain_and_reads_only_days_before_d() -> None:
    from datetime import date, timedelta

    from tasks.forecasting.daily_step import apply, chain, rows_before
    from tasks.forecasting.served_model import DayAheadPriceModel, Design

    fitted_for, day = date(2026, 3, 10), date(2026, 3, 13)
    assert chain(fitted_for, day) == [fitted_for + timedelta(days=k) for k in range(4)]
    assert chain(day, fitted_for) == []
    days = [date(2026, 1, 1) + timedelta(days=k) for k in range(80) if k != 60]  # one day missing
    assert [days[k] for k in rows_before(days, date(2026, 1, 5))] == days[:4]
    assert [days[k] for k in rows_before(days, date(2026, 1, 10), 3)] == days[6:9]
    x = np.arange(len(days), dtype=float)[:, None] * np.ones((1, 2))
    y = np.arange(len(days), dtype=float)[:, None] * np.ones((1, 24))
    design = Design(["a", "b"], 24, [0.1, 0.5, 0.9], {}, -500.0, 4000.0)
    dnn, lear, gbm = _Recorder(), _Recorder(), _Recorder()
    model = DayAheadPriceModel().attach(design, dnn, members={"lear": lear, "gbm": gbm})
    step = DailyStep(dnn_recent_days=14, dnn_epochs=2, dnn_learning_rate=1e-3, lear_refit=True)
    done = apply(model, step, days=days, x=x, y=y, fitted_for=fitted_for, day=day)
    assert done["dnn_fine_tuned_for"] == [d.isoformat() for d in chain(fitted_for, day)]
    assert len(dnn.calls) == 4
    for (xs, ys, kwargs), d in zip(dnn.calls, chain(fitted_for, day), strict=True):
        seen = [days[int(v)] for v in xs[:, 0]]
        assert max(seen) == d - timedelta(days=1)
        assert min(seen) >= d - timedelta(days=14)
        np.testing.assert_array_equal(ys[:, 0], xs[:, 0])
        assert kwargs == {"epochs": 2, "learning_rate": 1e-3}
    ((xs, _, _),) = lear.calls
    assert days[int(xs[-1, 0])] == day - timedelta(days=1)
    assert len(xs) == len(rows_before(days, day))
    assert done["lear_refit_days"][2] == len(xs)
    assert gbm.calls == []  # trees forecast as fitted
    assert "held_out_refit" not in done

    # Production: the trees re-fitted once on the window ending the eve of the fit day (which
    # holds the days training held out), the re-fits bounded by the training window's length.
    dnn, lear, gbm = _Recorder(), _Recorder(), _Recorder()
    model = DayAheadPriceModel().attach(design, dnn, members={"lear": lear, "gbm": gbm})
    step = DailyStep(dnn_recent_days=14, lear_refit=True, held_out_refit=True)
    done = apply(model, step, days=days, x=x, y=y, fitted_for=fitted_for, day=day, window_days=30)
    ((xs, _, kwargs),) = gbm.calls
    seen = [days[int(v)] for v in xs[:, 0]]
    assert kwargs == {"fit": True}
    assert (min(seen), max(seen)) == (fitted_for - timedelta(days=30), fitted_for - timedelta(days=1))
    assert done["held_out_refit"] == {
        "members": ["gbm"],
        "days": [seen[0].isoformat(), seen[-1].isoformat(), len(seen)],
    }
    ((xs, _, _),) = lear.calls
    seen = [days[int(v)] for v in xs[:, 0]]
    assert (min(seen), max(seen)) == (day - timedelta(days=30), day - timedelta(days=1))
    # A replay that already stepped through the day before: one fine-tune, no second tree fit.
    done = apply(
        model,
        step,
        days=days,
        x=x,
        y=y,
        fitted_for=fitted_for,
        day=day + timedelta(days=1),
        resume_from=day + timedelta(days=1),
    )
    assert done["dnn_fine_tuned_for"] == [(day + timedelta(days=1)).isoformat()]
    assert len(gbm.calls) == 1
    assert "held_out_refit" not in done
    # A backfill day before the fit day: the trees' window ends the eve of D, nothing later.
    gbm.calls.clear()
    apply(model, step, days=days, x=x, y=y, fitted_for=fitted_for, day=fitted_for - timedelta(days=5))
    ((xs, _, _),) = gbm.calls
    assert days[int(xs[-1, 0])] == fitted_for - timedelta(days=6)
    off = DayAheadPriceModel().attach(design, _Recorder(), members={"lear": _Recorder()})
    assert apply(off, DailyStep(), days=days, x=x, y=y, fitted_for=fitted_for, day=day) == {
        "fitted_for": fitted_for.isoformat()
    }
    assert off.dnn.calls == []
    assert off.members["lear"].calls == []
