"""Day-ahead schedule of one bidding zone as a linear program (HiGHS).

Given price scenarios (the forecast quantiles, or one point forecast) and the
inflexible volume (retail load minus own renewables), choose per market time
unit the charge and discharge of every storage asset so that the expected
cost of the zone's day-ahead position is minimal, optionally plus a CVaR term
that penalises the bad price scenarios. The net position follows from the
energy balance::

    position_mw[t] (buy > 0) = load[t] - renewables[t] + sum_a charge[a,t] - sum_a discharge[a,t]

State of charge is the energy at the END of each MTU; energy = power x MTU hours.

An asset either charges or discharges in an MTU, never both: on negative prices
the LP would otherwise do both at once to burn energy through its losses, a
dispatch no asset can follow. The LP is solved first; only when its optimum
has an MTU with both legs above ``SIMULTANEOUS_TOL_MW`` (negative-price days)
is it solved again with the idle leg of those MTUs closed (``_one_leg_per_mtu``),
which keeps it an LP: the duals stay the water values the bids use, and the
day stays within its solve-time target. (A mixed-integer program with one
binary per asset and MTU finds the exact optimum but took seconds on a flat
negative-price block, far over the target.)
Pure numpy/scipy: no I/O, no settings, so it is unit-testable and benchmarkable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.config import MAX_TIMING_SHIFT
from tasks.errors import InfeasibleScheduleError

if TYPE_CHECKING:
    from tasks.config import StorageAsset

# Weights of Swanson's rule: the mean of a distribution from its P10/P50/P90.
SWANSON_WEIGHTS = (0.3, 0.4, 0.3)
_TOL = 1e-6
#: Above this both legs of one asset in one MTU count as simultaneous (the schedule gate's tolerance).
SIMULTANEOUS_TOL_MW = 1e-6


@dataclass(frozen=True)
class Storage:
    """A storage asset in the units the LP uses (MW, MWh, per-leg efficiency)."""

    name: str
    power_mw: float
    energy_mwh: float
    eta_charge: float
    eta_discharge: float
    soc_min_mwh: float
    soc_max_mwh: float
    soc_start_mwh: float
    soc_end_mwh: float
    max_cycles: float | None = None
    degradation_eur_per_mwh: float = 0.0

    @classmethod
    def from_asset(cls, asset: StorageAsset) -> Storage:
        """Split the round-trip efficiency evenly: each leg is its square root."""
        leg = math.sqrt(asset.round_trip_efficiency)
        e = asset.energy_mwh
        return cls(
            name=asset.name,
            power_mw=asset.power_mw,
            energy_mwh=e,
            eta_charge=leg,
            eta_discharge=leg,
            soc_min_mwh=asset.soc_min_frac * e,
            soc_max_mwh=asset.soc_max_frac * e,
            soc_start_mwh=asset.soc_start_frac * e,
            soc_end_mwh=asset.soc_end_frac * e,
            max_cycles=asset.max_cycles_per_day,
            degradation_eur_per_mwh=asset.degradation_eur_per_mwh,
        )


@dataclass(frozen=True)
class ZoneSchedule:
    """The optimal schedule of one zone and day. Arrays are [assets, T] or [T]."""

    charge_mw: np.ndarray
    discharge_mw: np.ndarray
    soc_mwh: np.ndarray
    position_mw: np.ndarray
    water_value: np.ndarray  # EUR per MWh stored at the end of each MTU (LP dual)
    expected_price: np.ndarray
    expected_cost_eur: float  # of the whole zone position, incl. degradation
    storage_margin_eur: float  # what storage earns against the inflexible position
    objective: float


def expected_prices(scenarios: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Probability-weighted mean price per MTU."""
    w = np.asarray(weights, dtype=float)
    return np.asarray(w @ np.atleast_2d(scenarios), dtype=float)


def timing_robust_prices(prices: np.ndarray, mtu_minutes: int, shift_probability: float) -> np.ndarray:
    """Expected price per MTU if the forecast profile may be one hour early or late.

    With probability ``shift_probability`` each way, the realised profile is the
    forecast moved by one hour (the first/last MTU repeats at the day's edges).
    Storage earns on *which* MTUs are cheapest and dearest, and a forecast's
    extremes are often right in size but an hour off: deciding on this blurred
    profile prefers charge/discharge blocks that stay good if the timing is off
    (docs/output-contract.md, "The optimiser"). ``prices`` is [T] or [S, T].
    """
    if not 0.0 <= shift_probability <= MAX_TIMING_SHIFT:
        raise ValueError(f"shift_probability must lie in [0, {MAX_TIMING_SHIFT}], got {shift_probability}")
    p = np.asarray(prices, dtype=float)
    if shift_probability == 0.0:
        return p.copy()
    k = max(1, round(60 / mtu_minutes))
    flat = np.atleast_2d(p)
    padded = np.pad(flat, ((0, 0), (k, k)), mode="edge")
    n_t = flat.shape[1]
    earlier, later = padded[:, :n_t], padded[:, 2 * k : 2 * k + n_t]
    out = (1.0 - 2.0 * shift_probability) * flat + shift_probability * (earlier + later)
    return out.reshape(p.shape)


def _fmt_pct(mwh: float, energy: float) -> str:
    return f"{100 * mwh / energy:.0f}%"


def precheck(assets: Sequence[Storage], hours: float) -> None:
    """Catch the infeasibilities one can name before the LP: each says which constraint."""
    for a in assets:
        where = f"{a.name}:"
        if a.soc_min_mwh - a.soc_max_mwh > _TOL:
            raise InfeasibleScheduleError(
                f"{where} state-of-charge bounds are empty: min {_fmt_pct(a.soc_min_mwh, a.energy_mwh)} "
                f"> max {_fmt_pct(a.soc_max_mwh, a.energy_mwh)}; fix soc_min_frac/soc_max_frac in the portfolio"
            )
        for label, value in (("start", a.soc_start_mwh), ("end", a.soc_end_mwh)):
            if value < a.soc_min_mwh - _TOL or value > a.soc_max_mwh + _TOL:
                raise InfeasibleScheduleError(
                    f"{where} {label} state of charge {_fmt_pct(value, a.energy_mwh)} lies outside its bounds "
                    f"{_fmt_pct(a.soc_min_mwh, a.energy_mwh)}..{_fmt_pct(a.soc_max_mwh, a.energy_mwh)}"
                )
        up = a.power_mw * hours * a.eta_charge
        down = a.power_mw * hours / a.eta_discharge
        delta = a.soc_end_mwh - a.soc_start_mwh
        if delta > up + _TOL or -delta > down + _TOL:
            raise InfeasibleScheduleError(
                f"{where} end state of charge {_fmt_pct(a.soc_end_mwh, a.energy_mwh)} unreachable from start "
                f"{_fmt_pct(a.soc_start_mwh, a.energy_mwh)} with {a.power_mw:g} MW over {hours:g} h "
                f"(at most {up:.1f} MWh up or {down:.1f} MWh down); lower soc_end_frac or raise power_mw"
            )
        if a.max_cycles is not None and delta < 0:
            need = -delta * a.eta_discharge
            allowed = a.max_cycles * a.energy_mwh
            if need > allowed + _TOL:
                raise InfeasibleScheduleError(
                    f"{where} cycle limit {a.max_cycles:g}/day allows {allowed:.1f} MWh discharged but reaching "
                    f"end state of charge {_fmt_pct(a.soc_end_mwh, a.energy_mwh)} needs {need:.1f} MWh"
                )


def optimise_zone(
    scenarios: np.ndarray,
    inflexible_mw: np.ndarray,
    assets: Sequence[Storage],
    mtu_minutes: int,
    *,
    weights: Sequence[float] | None = None,
    cvar_weight: float = 0.0,
    cvar_alpha: float = 0.9,
    timing_shift_probability: float = 0.0,
) -> ZoneSchedule:
    """Minimise E[cost] + cvar_weight * CVaR_alpha[cost] of one zone and delivery day.

    ``scenarios`` is [S, T] prices in EUR/MWh (one row for a point forecast),
    ``weights`` their probabilities (default equal), ``inflexible_mw`` the [T]
    retail load minus own renewables. The decision is the same in every
    scenario (one day-ahead position per MTU). With ``cvar_weight=0`` only the
    expected prices matter; the CVaR term makes the schedule trade less where
    the quantile band is wide. ``timing_shift_probability`` > 0 decides on
    :func:`timing_robust_prices` of the scenarios; the reported expected price,
    cost and margin stay those of the scenarios themselves.
    """
    prices, w, base = _checked_inputs(scenarios, inflexible_mw, weights)
    h = mtu_minutes / 60.0
    precheck(assets, prices.shape[1] * h)
    if not assets:
        return _no_storage(prices, w, base, h)
    # The storage decision may use timing-robust prices; what is reported stays on the scenarios.
    decision = timing_robust_prices(prices, mtu_minutes, timing_shift_probability)
    use_cvar = cvar_weight > 0 and prices.shape[0] > 1
    lp = _storage_lp(assets, w @ decision, h, n_extra=1 + prices.shape[0] if use_cvar else 0)
    if use_cvar:
        _add_cvar(lp, assets, decision, base, w=w, h=h, cvar_weight=cvar_weight, cvar_alpha=cvar_alpha)
    res = _solve(lp, assets)
    res = _one_leg_per_mtu(lp, assets, res)
    return _schedule(res, assets, base, w @ prices, h)


def _checked_inputs(
    scenarios: np.ndarray, inflexible_mw: np.ndarray, weights: Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prices [S, T], scenario weights [S] and inflexible volume [T], or ValueError."""
    prices = np.atleast_2d(np.asarray(scenarios, dtype=float))
    n_s, n_t = prices.shape
    w = np.full(n_s, 1.0 / n_s) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n_s,) or abs(w.sum() - 1.0) > 1e-6 or (w < 0).any():
        raise ValueError(f"weights must be {n_s} non-negative probabilities summing to 1, got {w}")
    base = np.asarray(inflexible_mw, dtype=float)
    if base.shape != (n_t,):
        raise ValueError(f"inflexible_mw must have {n_t} values, got shape {base.shape}")
    if not np.isfinite(prices).all() or not np.isfinite(base).all():
        raise ValueError("prices and volumes must be finite (a forecast has NaN rows)")
    return prices, w, base


@dataclass
class _Lp:
    """The schedule LP in linprog's terms.

    Variables per asset k: charge [T], discharge [T], soc [T] at ``3 T k``; then
    ``n_extra`` more (the CVaR's eta and u[S]). One equality row per asset and MTU
    (the state-of-charge balance, whose duals are the water values).
    """

    n_t: int
    cost: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    a_eq: Any
    b_eq: np.ndarray
    ub_rows: list[Any] = field(default_factory=list)
    b_ub: list[float] = field(default_factory=list)

    def columns(self, k: int) -> tuple[int, int, int]:
        """First charge, discharge and soc column of asset ``k``."""
        c0 = 3 * self.n_t * k
        return c0, c0 + self.n_t, c0 + 2 * self.n_t


def _storage_lp(assets: Sequence[Storage], p_dec: np.ndarray, h: float, n_extra: int) -> _Lp:
    """Costs, bounds, state-of-charge balances and cycle limits of the assets at decision prices ``p_dec``."""
    from scipy.sparse import coo_matrix, csr_matrix

    n_a, n_t = len(assets), p_dec.size
    n_var = n_a * 3 * n_t + n_extra
    lp = _Lp(n_t, np.zeros(n_var), np.zeros(n_var), np.zeros(n_var), None, np.zeros(n_a * n_t))
    t_idx = np.arange(n_t)
    rows_eq, cols_eq, vals_eq = [], [], []
    for k, a in enumerate(assets):
        c0, d0, s0 = lp.columns(k)
        lp.cost[c0 : c0 + n_t] = p_dec * h
        lp.cost[d0 : d0 + n_t] = -p_dec * h + a.degradation_eur_per_mwh * h
        lp.ub[c0 : c0 + n_t] = a.power_mw
        lp.ub[d0 : d0 + n_t] = a.power_mw
        lp.lb[s0 : s0 + n_t] = a.soc_min_mwh
        lp.ub[s0 : s0 + n_t] = a.soc_max_mwh
        lp.lb[s0 + n_t - 1] = lp.ub[s0 + n_t - 1] = a.soc_end_mwh
        # soc[t] - soc[t-1] - eta_c h charge[t] + h/eta_d discharge[t] = 0 (soc[-1] = start)
        r = k * n_t + t_idx
        rows_eq += [r, r, r, r[1:]]
        cols_eq += [s0 + t_idx, c0 + t_idx, d0 + t_idx, s0 + t_idx[:-1]]
        vals_eq += [np.ones(n_t), np.full(n_t, -a.eta_charge * h), np.full(n_t, h / a.eta_discharge)]
        vals_eq.append(-np.ones(n_t - 1))
        lp.b_eq[k * n_t] = a.soc_start_mwh
        if a.max_cycles is not None:
            row = np.zeros(n_var)
            row[d0 : d0 + n_t] = h
            lp.ub_rows.append(csr_matrix(row))
            lp.b_ub.append(a.max_cycles * a.energy_mwh)
    lp.a_eq = coo_matrix(
        (np.concatenate(vals_eq), (np.concatenate(rows_eq), np.concatenate(cols_eq))),
        shape=(n_a * n_t, n_var),
    ).tocsr()
    return lp


def _add_cvar(
    lp: _Lp,
    assets: Sequence[Storage],
    decision: np.ndarray,
    base: np.ndarray,
    *,
    w: np.ndarray,
    h: float,
    cvar_weight: float,
    cvar_alpha: float,
) -> None:
    """CVaR_alpha(cost) = eta + 1/(1-alpha) sum_s w_s u_s, u_s >= cost_s - eta, u_s >= 0."""
    from scipy.sparse import csr_matrix

    n_s, n_t = decision.shape
    e0 = len(assets) * 3 * n_t
    lp.cost[e0] = cvar_weight
    lp.cost[e0 + 1 :] = cvar_weight * w / (1.0 - cvar_alpha)
    lp.lb[e0], lp.ub[e0] = -np.inf, np.inf
    lp.lb[e0 + 1 :], lp.ub[e0 + 1 :] = 0.0, np.inf
    per_s = np.zeros((n_s, lp.cost.size))
    for k, a in enumerate(assets):
        c0, d0, _ = lp.columns(k)
        per_s[:, c0 : c0 + n_t] = decision * h
        per_s[:, d0 : d0 + n_t] = -decision * h + a.degradation_eur_per_mwh * h
    per_s[:, e0] = -1.0
    per_s[np.arange(n_s), e0 + 1 + np.arange(n_s)] = -1.0
    lp.ub_rows.append(csr_matrix(per_s))
    lp.b_ub.extend(list(-(decision @ base) * h))


def _solve(lp: _Lp, assets: Sequence[Storage]) -> Any:
    """HiGHS's optimum, or InfeasibleScheduleError naming the assets."""
    from scipy.optimize import linprog
    from scipy.sparse import vstack

    res = linprog(
        lp.cost,
        A_ub=vstack(lp.ub_rows).tocsr() if lp.ub_rows else None,
        b_ub=np.asarray(lp.b_ub) if lp.ub_rows else None,
        A_eq=lp.a_eq,
        b_eq=lp.b_eq,
        bounds=np.column_stack([lp.lb, lp.ub]),
        method="highs",
    )
    if res.status == 2:
        names = ", ".join(a.name for a in assets)
        raise InfeasibleScheduleError(
            f"the schedule LP is infeasible for {names}: state-of-charge balance, bounds, end state or "
            f"cycle limit cannot all hold ({res.message})"
        )
    if res.status != 0:
        raise InfeasibleScheduleError(f"HiGHS did not solve the schedule LP: {res.message}")
    return res


def _simultaneous(x: np.ndarray, n_a: int, n_t: int) -> np.ndarray:
    """[assets, T] mask of MTUs where an asset both charges and discharges."""
    legs = np.asarray(x[: n_a * 3 * n_t], dtype=float).reshape(n_a, 3, n_t)
    return np.asarray((legs[:, 0] > SIMULTANEOUS_TOL_MW) & (legs[:, 1] > SIMULTANEOUS_TOL_MW))


def _one_leg_per_mtu(lp: _Lp, assets: Sequence[Storage], res: Any) -> Any:
    """Re-solve with the idle leg held at 0 wherever the optimum runs both legs of an asset at once.

    Each MTU with both legs keeps the leg its net stored energy points to (charge
    if ``eta_c c - d / eta_d >= 0``); the LP with those legs closed is solved
    again, until no MTU has both. The LP solution moved onto the kept leg has the
    same state of charge and no more discharge, so every re-solve is feasible;
    each round closes at least one more leg, so the loop ends. Prices above
    ``-degradation * eta / (1 - eta)`` never make both legs pay, so on most days
    this costs nothing.
    """
    n_a, n_t = len(assets), lp.n_t
    eta_c = np.array([a.eta_charge for a in assets])[:, None]
    eta_d = np.array([a.eta_discharge for a in assets])[:, None]
    ub = lp.ub.copy()
    for _ in range(n_a * n_t):
        both = _simultaneous(res.x, n_a, n_t)
        if not both.any():
            return res
        legs = np.asarray(res.x[: n_a * 3 * n_t], dtype=float).reshape(n_a, 3, n_t)
        charging = eta_c * legs[:, 0] - legs[:, 1] / eta_d >= 0
        for k in range(n_a):
            c0, d0, _ = lp.columns(k)
            ub[d0 : d0 + n_t][both[k] & charging[k]] = 0.0
            ub[c0 : c0 + n_t][both[k] & ~charging[k]] = 0.0
        res = _solve(_Lp(n_t, lp.cost, lp.lb, ub, lp.a_eq, lp.b_eq, lp.ub_rows, lp.b_ub), assets)
    return res


def _schedule(
    res: Any, assets: Sequence[Storage], base: np.ndarray, p_exp: np.ndarray, h: float
) -> ZoneSchedule:
    """The zone's schedule from the LP solution, with cost and margin at the expected prices."""
    n_a, n_t = len(assets), base.size
    per_asset = res.x[: n_a * 3 * n_t].reshape(n_a, 3, n_t)
    charge, discharge, soc = per_asset[:, 0, :], per_asset[:, 1, :], per_asset[:, 2, :].copy()
    # Clean solver noise so that bounds hold exactly on every row.
    charge = np.clip(np.where(charge < 1e-7, 0.0, charge), 0, None)
    discharge = np.clip(np.where(discharge < 1e-7, 0.0, discharge), 0, None)
    water = -np.asarray(res.eqlin.marginals, dtype=float).reshape(n_a, n_t)
    position = base + charge.sum(axis=0) - discharge.sum(axis=0)
    degr = sum(a.degradation_eur_per_mwh * h * discharge[k].sum() for k, a in enumerate(assets))
    exp_cost = float(p_exp @ position * h + degr)
    margin = float(-(p_exp @ (charge.sum(axis=0) - discharge.sum(axis=0)) * h) - degr)
    return ZoneSchedule(
        charge_mw=charge,
        discharge_mw=discharge,
        soc_mwh=soc,
        position_mw=position,
        water_value=water,
        expected_price=p_exp,
        expected_cost_eur=exp_cost,
        storage_margin_eur=margin,
        objective=float(res.fun),
    )


def _no_storage(prices: np.ndarray, w: np.ndarray, base: np.ndarray, h: float) -> ZoneSchedule:
    p_exp = w @ prices
    empty = np.zeros((0, base.size))
    return ZoneSchedule(
        charge_mw=empty,
        discharge_mw=empty,
        soc_mwh=empty,
        position_mw=base.copy(),
        water_value=empty,
        expected_price=p_exp,
        expected_cost_eur=float(p_exp @ base * h),
        storage_margin_eur=0.0,
        objective=0.0,
    )
