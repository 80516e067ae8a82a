"""Storage dispatch of many independent days at once, and its settlement: for backtests.

The daily schedule solves one day with every asset and the inflexible volume
(``tasks.optimise.optimise_zone``); a backtest solves one battery over hundreds
of days. One block-diagonal HiGHS LP over all days is far cheaper than one
solve per day (700 days in about 0.3-0.7 s).
"""

from __future__ import annotations

import numpy as np

from tasks.errors import InfeasibleScheduleError
from tasks.optimise import SIMULTANEOUS_TOL_MW, Storage, optimise_zone, precheck, timing_robust_prices


def arbitrage_profit(
    charge_mw: np.ndarray, discharge_mw: np.ndarray, prices: np.ndarray, mtu_minutes: int
) -> float:
    """Money a storage schedule earns when settled at ``prices`` (EUR)."""
    h = mtu_minutes / 60.0
    net = np.atleast_2d(discharge_mw).sum(axis=0) - np.atleast_2d(charge_mw).sum(axis=0)
    return float(np.asarray(prices, dtype=float) @ net * h)


def dispatch_days(
    prices: np.ndarray, asset: Storage, mtu_minutes: int, timing_shift_probability: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Charge and discharge [days, T] of one storage asset, each day optimised on its own prices.

    The same LP as :func:`optimise_zone` with one asset and no inflexible volume,
    for many independent days at once (one block-diagonal LP: backtests solve
    thousands of days, and one HiGHS call is far cheaper than one per day).
    Every day starts at ``soc_start_mwh`` and ends at ``soc_end_mwh``; each day
    decides on its :func:`timing_robust_prices` when ``timing_shift_probability`` > 0.
    A day whose optimum charges and discharges in the same MTU (negative prices)
    is solved again by :func:`optimise_zone`, which keeps one leg per MTU.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    p = np.atleast_2d(np.asarray(prices, dtype=float))
    if not np.isfinite(p).all():
        raise ValueError("prices must be finite (a forecast has NaN rows)")
    p = timing_robust_prices(p, mtu_minutes, timing_shift_probability)
    n_d, n_t = p.shape
    h = mtu_minutes / 60.0
    precheck([asset], n_t * h)
    if asset.max_cycles is not None:
        raise ValueError("dispatch_days has no cycle limit; use optimise_zone per day")
    # Variables day by day: charge [T], discharge [T], soc [T].
    block = 3 * n_t
    base = (np.arange(n_d) * block)[:, None]
    t = np.arange(n_t)[None, :]
    c_idx, d_idx, s_idx = base + t, base + n_t + t, base + 2 * n_t + t
    cost = np.zeros(n_d * block)
    cost[c_idx.ravel()] = (p * h).ravel()
    cost[d_idx.ravel()] = (-p * h + asset.degradation_eur_per_mwh * h).ravel()
    lb = np.zeros(n_d * block)
    ub = np.full(n_d * block, asset.power_mw)
    lb[s_idx.ravel()] = asset.soc_min_mwh
    ub[s_idx.ravel()] = asset.soc_max_mwh
    lb[s_idx[:, -1]] = ub[s_idx[:, -1]] = asset.soc_end_mwh
    rows = (np.arange(n_d) * n_t)[:, None] + t
    r_all = [rows, rows, rows, rows[:, 1:]]
    c_all = [s_idx, c_idx, d_idx, s_idx[:, :-1]]
    v_all = [
        np.ones_like(rows, dtype=float),
        np.full(rows.shape, -asset.eta_charge * h),
        np.full(rows.shape, h / asset.eta_discharge),
        -np.ones((n_d, n_t - 1)),
    ]
    a_eq = coo_matrix(
        (
            np.concatenate([v.ravel() for v in v_all]),
            (np.concatenate([r.ravel() for r in r_all]), np.concatenate([c.ravel() for c in c_all])),
        ),
        shape=(n_d * n_t, n_d * block),
    ).tocsr()
    b_eq = np.zeros(n_d * n_t)
    b_eq[rows[:, 0]] = asset.soc_start_mwh
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=np.column_stack([lb, ub]), method="highs")
    if res.status != 0:
        raise InfeasibleScheduleError(f"HiGHS did not solve the multi-day dispatch LP: {res.message}")
    x = res.x.reshape(n_d, 3, n_t)
    charge = np.clip(np.where(x[:, 0] < 1e-7, 0.0, x[:, 0]), 0, None)
    discharge = np.clip(np.where(x[:, 1] < 1e-7, 0.0, x[:, 1]), 0, None)
    both = ((charge > SIMULTANEOUS_TOL_MW) & (discharge > SIMULTANEOUS_TOL_MW)).any(axis=1)
    for day in np.flatnonzero(both):
        one = optimise_zone(p[day], np.zeros(n_t), [asset], mtu_minutes)
        charge[day], discharge[day] = one.charge_mw[0], one.discharge_mw[0]
    return charge, discharge
