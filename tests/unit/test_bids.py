"""Bid curves: market rules (monotone, limits, grids, 256 points) and consistency with the schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.bids import MAX_POINTS, Step, check_curve, cleared_volume, curve_points, storage_steps
from tasks.optimise import Storage, optimise_zone

pytestmark = pytest.mark.unit

LEG = math.sqrt(0.9)


def _battery(name: str, power: float = 10.0, degradation: float = 0.0) -> Storage:
    return Storage(name, power, 2 * power, LEG, LEG, 0.0, 2 * power, power, power, None, degradation)


@pytest.mark.parametrize("n", [23, 24, 25, 92, 96, 100])
def test_curves_follow_market_rules_and_reproduce_the_schedule(n: int) -> None:
    rng = np.random.default_rng(n)
    mtu = 60 if n < 30 else 15
    prices = 60 + 50 * np.sin(np.linspace(0, 4 * np.pi, n)) + rng.normal(0, 15, n)
    prices[0] = -120.0
    scen = np.stack([prices - 25, prices, prices + 30])
    base = rng.uniform(-40, 80, n)
    assets = [_battery("a"), _battery("b", 3.3, degradation=4.0)]
    res = optimise_zone(scen, base, assets, mtu, weights=(0.3, 0.4, 0.3))
    for t in range(n):
        steps = storage_steps(
            res.charge_mw[:, t],
            discharge_mw=res.discharge_mw[:, t],
            water_value=res.water_value[:, t],
            expected_price=float(res.expected_price[t]),
            eta_charge=[a.eta_charge for a in assets],
            eta_discharge=[a.eta_discharge for a in assets],
            degradation=[a.degradation_eur_per_mwh for a in assets],
        )
        pts = curve_points(float(base[t]), steps)
        check_curve(pts)
        # At the price the schedule was optimised for, the curve asks for the scheduled position.
        p = round(float(res.expected_price[t]), 1)
        assert cleared_volume(pts, p) == pytest.approx(res.position_mw[t], abs=0.051 * (1 + len(steps)))


@pytest.mark.parametrize("seed", range(40))
def test_curve_at_the_forecast_price_asks_exactly_the_scheduled_position(seed: int) -> None:
    """Random schedules, water values and expected prices (also off the 0.1 grid and at clamped limits)."""
    rng = np.random.default_rng(seed)
    n_assets = int(rng.integers(1, 6))
    for _ in range(50):
        expected = float(
            rng.choice([rng.uniform(-500, 4000), rng.uniform(-50, 200), round(rng.uniform(0, 99), 1)])
        )
        power = rng.uniform(0.1, 30, n_assets)
        mode = rng.integers(0, 3, n_assets)  # idle, charge, discharge
        charge = np.where(mode == 1, rng.uniform(0, 1, n_assets) * power, 0.0)
        discharge = np.where(mode == 2, rng.uniform(0, 1, n_assets) * power, 0.0)
        # Water values around the expected price: degenerate duals put the limit a hair either side.
        water = expected + rng.choice([-1, 1], n_assets) * rng.choice([0.0, 1e-3, 0.04, 0.06, 3.0], n_assets)
        base = float(rng.uniform(-200, 200))
        steps = storage_steps(
            charge,
            discharge_mw=discharge,
            water_value=water,
            expected_price=expected,
            eta_charge=[LEG] * n_assets,
            eta_discharge=[LEG] * n_assets,
            degradation=list(rng.choice([0.0, 2.0], n_assets)),
        )
        pts = curve_points(base, steps)
        check_curve(pts)
        position = base + float(charge.sum() - discharge.sum())
        # One rounding of the total to 0.1 MW, plus orders under 0.05 MW that are left out.
        tolerance = 0.05 + 0.05 * n_assets + 1e-9
        assert abs(cleared_volume(pts, expected) - position) <= tolerance, (expected, steps, pts)


def test_limit_orders_step_at_their_limits() -> None:
    pts = curve_points(5.0, [Step(40.04, 10.0), Step(80.0, -7.0)])
    check_curve(pts)
    assert pts[0] == (-500.0, 15.0)
    assert pts[-1] == (4000.0, -2.0)
    assert cleared_volume(pts, 40.0) == pytest.approx(15.0)
    assert cleared_volume(pts, 40.1) == pytest.approx(5.0)
    assert cleared_volume(pts, 79.9) == pytest.approx(5.0)
    assert cleared_volume(pts, 80.0) == pytest.approx(-2.0)


def test_flat_curve_for_inflexible_volume_only() -> None:
    pts = curve_points(12.34, [])
    assert pts == [(-500.0, 12.3), (4000.0, 12.3)]


def test_limits_outside_the_harmonised_range_are_clamped() -> None:
    pts = curve_points(0.0, [Step(9999.0, 4.0), Step(-900.0, -4.0)])
    check_curve(pts)
    assert all(-500.0 <= p <= 4000.0 for p, _ in pts)


def test_many_assets_stay_within_256_points() -> None:
    rng = np.random.default_rng(1)
    steps = [
        Step(float(rng.uniform(-100, 300)), float(rng.choice([-1, 1]) * rng.uniform(0.2, 5)))
        for _ in range(400)
    ]
    pts = curve_points(10.0, steps)
    check_curve(pts)
    assert len(pts) <= MAX_POINTS


@pytest.mark.parametrize(
    ("points", "match"),
    [
        ([(-500.0, 1.0), (10.0, 2.0), (4000.0, 0.0)], "non-increasing"),
        ([(-500.0, 1.0), (10.0, 1.0), (10.0, 0.0), (4000.0, 0.0)], "strictly increasing"),
        ([(-400.0, 1.0), (4000.0, 0.0)], "span"),
        ([(-500.0, 1.05), (4000.0, 0.0)], "grid"),
        ([(-500.0, 1.0)], "points"),
    ],
)
def test_check_curve_rejects_broken_curves(points: list[tuple[float, float]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_curve(points)
