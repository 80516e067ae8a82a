"""The schedule LP: balance, asset limits, optimality on cases with a known answer, named infeasibilities."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from research.dispatch import arbitrage_profit, dispatch_days
from tasks.config import StorageAsset
from tasks.errors import InfeasibleScheduleError
from tasks.optimise import Storage, optimise_zone, timing_robust_prices
from tasks.timeutil import mtu_count

pytestmark = pytest.mark.unit

LEG = math.sqrt(0.9)


def battery(name: str = "b1", **kw: float) -> Storage:
    base = {
        "power_mw": 10.0,
        "energy_mwh": 20.0,
        "eta_charge": LEG,
        "eta_discharge": LEG,
        "soc_min_mwh": 0.0,
        "soc_max_mwh": 20.0,
        "soc_start_mwh": 10.0,
        "soc_end_mwh": 10.0,
    }
    base.update(kw)
    return Storage(name=name, **base)


def check_physics(res, assets, inflexible, mtu_minutes):
    h = mtu_minutes / 60
    assert np.allclose(
        res.position_mw, inflexible + res.charge_mw.sum(axis=0) - res.discharge_mw.sum(axis=0), atol=1e-9
    )
    for k, a in enumerate(assets):
        c, d, s = res.charge_mw[k], res.discharge_mw[k], res.soc_mwh[k]
        assert (c >= 0).all()
        assert (c <= a.power_mw + 1e-7).all()
        assert (d >= 0).all()
        assert (d <= a.power_mw + 1e-7).all()
        assert (s >= a.soc_min_mwh - 1e-6).all()
        assert (s <= a.soc_max_mwh + 1e-6).all()
        prev = np.concatenate([[a.soc_start_mwh], s[:-1]])
        assert np.allclose(s, prev + a.eta_charge * h * c - h / a.eta_discharge * d, atol=1e-6)
        assert s[-1] == pytest.approx(a.soc_end_mwh, abs=1e-6)


@pytest.mark.parametrize(
    ("day", "mtu", "n"),
    [
        (date(2026, 3, 29), 15, 92),
        (date(2026, 10, 25), 15, 100),
        (date(2026, 3, 29), 60, 23),
        (date(2026, 10, 25), 60, 25),
        (date(2026, 6, 1), 15, 96),
    ],
)
def test_balance_and_limits_hold_on_every_mtu_including_dst_days(day: date, mtu: int, n: int) -> None:
    assert mtu_count(day, "Europe/Berlin", mtu) == n
    rng = np.random.default_rng(n)
    prices = 60 + 40 * np.sin(np.linspace(0, 4 * np.pi, n)) + rng.normal(0, 10, n)
    prices[:3] = -50.0  # negative prices: charging earns money
    inflexible = rng.uniform(-5, 30, n)
    assets = [
        battery("a"),
        battery("b", power_mw=3.0, energy_mwh=12.0, soc_max_mwh=12.0, soc_start_mwh=2.0, soc_end_mwh=6.0),
    ]
    res = optimise_zone(prices, inflexible, assets, mtu)
    check_physics(res, assets, inflexible, mtu)
    assert res.storage_margin_eur > 0


def test_two_price_levels_give_the_textbook_arbitrage() -> None:
    # 12 cheap hours then 12 dear ones: charge the empty part, discharge all, end back at 50 %.
    prices = np.array([20.0] * 12 + [100.0] * 12)
    a = battery(soc_start_mwh=0.0, soc_end_mwh=0.0)
    res = optimise_zone(prices, np.zeros(24), [a], 60)
    stored = res.soc_mwh[0].max()
    assert stored == pytest.approx(20.0, abs=1e-6)
    bought = res.charge_mw[0].sum()
    sold = res.discharge_mw[0].sum()
    assert bought == pytest.approx(20 / LEG, rel=1e-6)
    assert sold == pytest.approx(20 * LEG, rel=1e-6)
    assert res.storage_margin_eur == pytest.approx(100 * 20 * LEG - 20 * 20 / LEG, rel=1e-6)
    assert arbitrage_profit(res.charge_mw, res.discharge_mw, prices, 60) == pytest.approx(
        res.storage_margin_eur
    )


def test_spread_below_losses_is_not_traded() -> None:
    # 0.9 round trip: buying at 95 and selling at 100 loses money, so the LP stays idle.
    prices = np.array([95.0] * 12 + [100.0] * 12)
    res = optimise_zone(prices, np.zeros(24), [battery()], 60)
    assert res.charge_mw.sum() == pytest.approx(0, abs=1e-6)
    assert res.discharge_mw.sum() == pytest.approx(0, abs=1e-6)


def test_cycle_limit_and_degradation_cut_throughput() -> None:
    prices = np.tile([10.0, 10.0, 100.0, 100.0], 6)
    free = optimise_zone(prices, np.zeros(24), [battery()], 60)
    limited = optimise_zone(prices, np.zeros(24), [battery(max_cycles=1.0)], 60)
    assert free.discharge_mw.sum() > 20.0
    assert limited.discharge_mw.sum() <= 20.0 + 1e-6
    costly = optimise_zone(
        prices, np.zeros(24), [battery(degradation_eur_per_mwh=95.0)], 60
    )  # 100 - 95 < 10 / 0.9
    assert costly.discharge_mw.sum() == pytest.approx(0, abs=1e-6)


def test_scenarios_weights_and_cvar() -> None:
    rng = np.random.default_rng(3)
    p50 = 50 + 30 * np.sin(np.linspace(0, 2 * np.pi, 24))
    scen = np.stack([p50 - 20, p50, p50 + 20])
    w = (0.3, 0.4, 0.3)
    exp = optimise_zone(scen, np.zeros(24), [battery()], 60, weights=w)
    point = optimise_zone(exp.expected_price, np.zeros(24), [battery()], 60)
    assert np.allclose(exp.charge_mw, point.charge_mw, atol=1e-6)
    # Scenarios whose spread disagrees: CVaR makes the schedule trade less.
    noisy = np.stack([p50 + rng.normal(0, 40, 24), p50, p50 + rng.normal(0, 40, 24)])
    plain = optimise_zone(noisy, np.zeros(24), [battery()], 60, weights=w)
    averse = optimise_zone(noisy, np.zeros(24), [battery()], 60, weights=w, cvar_weight=5.0)
    assert averse.discharge_mw.sum() <= plain.discharge_mw.sum() + 1e-6
    assert averse.storage_margin_eur <= plain.storage_margin_eur + 1e-6
    with pytest.raises(ValueError, match="weights"):
        optimise_zone(scen, np.zeros(24), [battery()], 60, weights=(0.5, 0.5, 0.5))


def test_no_storage_is_just_the_inflexible_position() -> None:
    res = optimise_zone(np.full(24, 50.0), np.full(24, 7.0), [], 60)
    assert np.allclose(res.position_mw, 7.0)
    assert res.expected_cost_eur == pytest.approx(24 * 7 * 50)


def test_from_asset_splits_round_trip_evenly() -> None:
    asset = StorageAsset(name="x", zone="DE_LU", power_mw=10, energy_mwh=20, round_trip_efficiency=0.81)
    s = Storage.from_asset(asset)
    assert s.eta_charge == pytest.approx(0.9)
    assert s.eta_discharge == pytest.approx(0.9)
    assert s.soc_start_mwh == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("asset", "match"),
    [
        (
            battery("de-bess-1", soc_start_mwh=1.0, soc_end_mwh=19.0, power_mw=0.5),
            r"de-bess-1: end state of charge 95% unreachable from start 5% with 0.5 MW over 23 h",
        ),
        (battery("x", soc_min_mwh=15.0, soc_max_mwh=5.0), r"x: state-of-charge bounds are empty"),
        (battery("y", soc_start_mwh=25.0), r"y: start state of charge 125% lies outside its bounds"),
        (battery("z", soc_start_mwh=20.0, soc_end_mwh=0.0, max_cycles=0.5), r"z: cycle limit 0.5/day"),
    ],
)
def test_infeasible_configurations_name_the_constraint(asset: Storage, match: str) -> None:
    with pytest.raises(InfeasibleScheduleError, match=match):
        optimise_zone(np.full(23, 50.0), np.zeros(23), [asset], 60)


def test_nan_prices_are_refused() -> None:
    prices = np.full(24, 50.0)
    prices[5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        optimise_zone(prices, np.zeros(24), [battery()], 60)


def test_dispatch_days_matches_one_lp_per_day() -> None:
    rng = np.random.default_rng(4)
    prices = 40 + 20 * np.sin(np.arange(24) / 24 * 2 * np.pi) + rng.normal(0, 15, (30, 24))
    prices[::7, 3] = -60.0  # negative hours: burning energy pays
    leg = math.sqrt(0.9)
    battery = Storage("b", 10.0, 20.0, leg, leg, 0.0, 20.0, 10.0, 10.0)
    charge, discharge = dispatch_days(prices, battery, 60)
    for day in range(30):
        one = optimise_zone(prices[day], np.zeros(24), [battery], 60)
        assert arbitrage_profit(charge[day], discharge[day], prices[day], 60) == pytest.approx(
            arbitrage_profit(one.charge_mw, one.discharge_mw, prices[day], 60), abs=1e-6
        )
        soc = 10.0 + np.cumsum(leg * charge[day] - discharge[day] / leg)
        assert soc[-1] == pytest.approx(10.0, abs=1e-6)
        assert soc.min() >= -1e-6
        assert soc.max() <= 20.0 + 1e-6
    with pytest.raises(ValueError, match="finite"):
        dispatch_days(np.full((2, 24), np.nan), battery, 60)


def test_timing_robust_prices_blend_the_profile_an_hour_early_and_late() -> None:
    hourly = np.arange(24, dtype=float) ** 2
    out = timing_robust_prices(hourly, 60, 0.25)
    assert out[5] == pytest.approx(0.5 * 25 + 0.25 * (16 + 36))
    assert out[0] == pytest.approx(0.75 * 0 + 0.25 * 1)  # the edge repeats the first hour
    assert np.array_equal(timing_robust_prices(hourly, 60, 0.0), hourly)
    # 15-minute MTUs shift by four MTUs (one hour); scenarios [S, T] are blurred row by row.
    quarter = np.vstack([np.arange(96, dtype=float), np.zeros(96)])
    out = timing_robust_prices(quarter, 15, 0.1)
    assert out.shape == (2, 96)
    assert out[0, 40] == pytest.approx(0.8 * 40 + 0.1 * (36 + 44))
    assert (out[1] == 0).all()
    with pytest.raises(ValueError, match="shift_probability"):
        timing_robust_prices(hourly, 60, 0.6)


def test_timing_shift_decides_on_blurred_prices_and_reports_the_forecast_itself() -> None:
    rng = np.random.default_rng(8)
    scen = 50 + 30 * np.sin(np.arange(24) / 24 * 2 * np.pi)[None, :] + rng.normal(0, 20, (3, 24))
    scen.sort(axis=0)  # q10 <= q50 <= q90
    load = rng.uniform(5, 15, 24)
    weights = [0.3, 0.4, 0.3]
    robust = optimise_zone(scen, load, [battery()], 60, weights=weights, timing_shift_probability=0.2)
    blurred = optimise_zone(timing_robust_prices(scen, 60, 0.2), load, [battery()], 60, weights=weights)
    as_is = optimise_zone(scen, load, [battery()], 60, weights=weights)
    assert np.allclose(robust.charge_mw, blurred.charge_mw, atol=1e-6)
    assert np.allclose(robust.discharge_mw, blurred.discharge_mw, atol=1e-6)
    assert not np.allclose(robust.charge_mw, as_is.charge_mw, atol=1e-3)
    check_physics(robust, [battery()], load, 60)
    # Prices, cost and margin the schedule reports are those of the forecast, not the blurred ones.
    expected = np.asarray(weights) @ scen
    assert np.allclose(robust.expected_price, expected)
    assert robust.expected_cost_eur == pytest.approx(float(expected @ robust.position_mw))
    assert robust.storage_margin_eur <= as_is.storage_margin_eur + 1e-6  # as_is is optimal on them
    charge, discharge = dispatch_days(scen[1][None, :], battery(), 60, 0.2)
    one = optimise_zone(scen[1], np.zeros(24), [battery()], 60, timing_shift_probability=0.2)
    assert arbitrage_profit(charge[0], discharge[0], scen[1], 60) == pytest.approx(
        arbitrage_profit(one.charge_mw, one.discharge_mw, scen[1], 60), abs=1e-6
    )


@pytest.mark.parametrize("degradation", [0.0, 2.0])
def test_negative_prices_never_charge_and_discharge_in_the_same_mtu(degradation: float) -> None:
    """Burning energy through the losses pays on negative prices; no asset can follow such a dispatch."""
    rng = np.random.default_rng(7)
    n = 96
    x = np.arange(n) / n
    prices = 40 + 30 * np.sin(2 * np.pi * x) + rng.normal(0, 5, n)
    prices[30:60] = -80.0 + rng.normal(0, 5, 30)
    scenarios = np.stack([prices - 10, prices, prices + 15])
    assets = [battery(degradation_eur_per_mwh=degradation), battery("b2", power_mw=4.0, max_cycles=1.0)]
    inflexible = rng.uniform(0, 50, n)
    for cvar in (0.0, 0.5):
        res = optimise_zone(scenarios, inflexible, assets, 15, weights=[0.3, 0.4, 0.3], cvar_weight=cvar)
        check_physics(res, assets, inflexible, 15)
        assert not ((res.charge_mw > 1e-6) & (res.discharge_mw > 1e-6)).any()
        assert res.storage_margin_eur > 0
    days = np.stack([prices, prices[::-1]])
    charge, discharge = dispatch_days(days, battery(degradation_eur_per_mwh=degradation), 15)
    assert not ((charge > 1e-6) & (discharge > 1e-6)).any()
