"""Day-ahead bid curves consistent with the optimised schedule.

One price–quantity curve per zone and market time unit, volume in MW with buy
> 0 and sell < 0, as piecewise-linear points (EPEX/SDAC "linear" order):
prices strictly increasing from the SDAC floor to the cap (tasks.datasets), volumes
non-increasing, prices on a 0.1 EUR/MWh grid, volumes on a 0.1 MW grid, at
most 256 points.

The inflexible part (retail load − own renewables) is bid at every price. Each
storage asset adds a limit order at its LP water value ``w`` (the dual of its
state-of-charge balance, EUR per stored MWh): a scheduled charge is bought up
to ``eta_c · w``, a scheduled discharge is sold from ``w / eta_d + degradation``.
Those are exactly the prices at which the asset stops being worth running, so
at the forecast price the curve returns the scheduled position, and when the
auction clears far from the forecast the asset drops out instead of trading
at a loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from tasks.datasets import SDAC_PRICE_CAP_EUR_MWH, SDAC_PRICE_FLOOR_EUR_MWH

PRICE_STEP = 0.1
VOLUME_STEP = 0.1
MAX_POINTS = 256


@dataclass(frozen=True)
class Step:
    """A limit order: buy ``mw`` at prices <= ``limit`` (mw > 0) or sell at >= ``limit`` (mw < 0)."""

    limit: float
    mw: float


def _round_price(p: float) -> float:
    return round(round(p / PRICE_STEP) * PRICE_STEP, 1)


def _ceil_price(p: float) -> float:
    """``p`` rounded up to the price grid (a tiny float error below a grid price does not count)."""
    return round(math.ceil(round(p / PRICE_STEP, 6)) * PRICE_STEP, 1)


def _floor_price(p: float) -> float:
    """``p`` rounded down to the price grid."""
    return round(math.floor(round(p / PRICE_STEP, 6)) * PRICE_STEP, 1)


def _coarse(limit: float, mw: float, grid: float) -> float:
    """A limit on a coarser grid, rounded outwards (buys up, sells down) so the step keeps covering the prices it covered."""
    k = round(limit / grid, 6)
    return round((math.ceil(k) if mw > 0 else math.floor(k)) * grid, 1)


def _round_volume(v: float) -> float:
    out = round(round(v / VOLUME_STEP) * VOLUME_STEP, 1)
    return 0.0 if out == 0 else out


def _volume_at(price: float, base: float, steps: Sequence[Step]) -> float:
    vol = base
    for s in steps:
        if (s.mw > 0 and price <= s.limit) or (s.mw < 0 and price >= s.limit):
            vol += s.mw
    return vol


def curve_points(
    base_mw: float,
    steps: Sequence[Step],
    floor: float = SDAC_PRICE_FLOOR_EUR_MWH,
    cap: float = SDAC_PRICE_CAP_EUR_MWH,
) -> list[tuple[float, float]]:
    """Points (price, volume) of one MTU's curve; see the module docstring for the rules."""
    steps = [
        Step(min(max(_round_price(s.limit), floor), cap), s.mw) for s in steps if abs(s.mw) >= VOLUME_STEP / 2
    ]
    # Too many distinct limits for 256 points: merge limits onto a coarser grid.
    grid = PRICE_STEP
    while 3 * len({s.limit for s in steps}) + 2 > MAX_POINTS:  # a limit adds <= 3 prices
        grid *= 2
        steps = [Step(min(max(_coarse(s.limit, s.mw, grid), floor), cap), s.mw) for s in steps]
    prices = {floor, cap}
    for s in steps:
        if s.mw > 0:
            prices.update((s.limit, s.limit + PRICE_STEP))
        else:
            prices.update((s.limit - PRICE_STEP, s.limit))
    grid_prices = sorted({_round_price(p) for p in prices if floor <= p <= cap})
    pts = [(p, _round_volume(_volume_at(p, base_mw, steps))) for p in grid_prices]
    # Drop interior points on a flat stretch: they carry no information.
    kept = [pts[0]]
    for i in range(1, len(pts) - 1):
        if not (pts[i][1] == kept[-1][1] == pts[i + 1][1]):
            kept.append(pts[i])
    kept.append(pts[-1])
    return kept


def storage_steps(
    charge_mw: np.ndarray,
    *,
    discharge_mw: np.ndarray,
    water_value: np.ndarray,
    expected_price: float,
    eta_charge: Sequence[float],
    eta_discharge: Sequence[float],
    degradation: Sequence[float],
) -> list[Step]:
    """Limit orders of all storage assets in one MTU (arrays over assets).

    Limits are rounded to the 0.1 EUR/MWh grid first and then clamped to
    bracket the expected price on that grid (a buy limit at or above it rounded
    up, a sell limit at or below it rounded down), so the curve at that price
    reproduces the schedule whatever the LP's degenerate duals: rounding after
    clamping could move a limit past the expected price and put it on the
    0.1 EUR/MWh ramp, where only part of the order is asked.
    """
    steps: list[Step] = []
    for k in range(len(charge_mw)):
        net = float(charge_mw[k] - discharge_mw[k])
        if net > 0:
            limit = max(_round_price(eta_charge[k] * water_value[k]), _ceil_price(expected_price))
            steps.append(Step(limit, net))
        elif net < 0:
            limit = min(
                _round_price(water_value[k] / eta_discharge[k] + degradation[k]), _floor_price(expected_price)
            )
            steps.append(Step(limit, net))
    return steps


def cleared_volume(points: Sequence[tuple[float, float]], price: float) -> float:
    """Volume the curve asks for at a clearing price (linear between points)."""
    ps = np.array([p for p, _ in points])
    vs = np.array([v for _, v in points])
    return float(np.interp(price, ps, vs))


def check_curve(
    points: Sequence[tuple[float, float]],
    floor: float = SDAC_PRICE_FLOOR_EUR_MWH,
    cap: float = SDAC_PRICE_CAP_EUR_MWH,
) -> None:
    """Raise ValueError if a curve breaks the market's rules."""
    if not 2 <= len(points) <= MAX_POINTS:
        raise ValueError(f"curve has {len(points)} points; 2..{MAX_POINTS} allowed")
    ps = [p for p, _ in points]
    vs = [v for _, v in points]
    if ps[0] != floor or ps[-1] != cap:
        raise ValueError(f"curve must span {floor}..{cap}, spans {ps[0]}..{ps[-1]}")
    if any(b <= a for a, b in pairwise(ps)):
        raise ValueError("curve prices must be strictly increasing")
    if any(b > a for a, b in pairwise(vs)):
        raise ValueError("curve volumes must be non-increasing in price")
    for p, v in points:
        if abs(p * 10 - round(p * 10)) > 1e-6 or abs(v * 10 - round(v * 10)) > 1e-6:
            raise ValueError(f"point ({p}, {v}) is off the 0.1 EUR/MWh / 0.1 MW grid")
