"""What-if re-optimisation of the rest of a delivery day (pure: no I/O).

The desk sends revised prices (one vector or price scenarios with weights), a
measured state of charge or a changed asset limit for MTUs ``from_mtu..n-1`` of
a published day; the storage dispatch of those MTUs is re-optimised with the
schedule's own LP (:func:`tasks.optimise.optimise_zone`, same options as the
version: CVaR weight, timing shift) from the state of charge the published
schedule (or the request) gives at ``from_mtu``, with the cycle budget the
earlier MTUs left. The inflexible volume (retail load minus own renewables)
stays the published one. The answer carries the new dispatch and positions and
the change in expected margin against keeping the published dispatch at the
same revised prices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import InfeasibleScheduleError
from tasks.optimise import Storage, ZoneSchedule, optimise_zone
from tasks.schedule import price_columns, quantile_weights
from tasks.serve.store import ApiError

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import StorageAsset


class AssetChange(BaseModel):
    """A changed limit of one storage asset for the rest of the day (MW, MWh)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    power_mw: float | None = Field(default=None, ge=0, description="Charge and discharge power limit.")
    soc_min_mwh: float | None = Field(default=None, ge=0, description="Lowest state of charge.")
    soc_max_mwh: float | None = Field(default=None, ge=0, description="Highest state of charge.")
    soc_end_mwh: float | None = Field(
        default=None, ge=0, description="State of charge at the end of the day."
    )
    max_cycles_per_day: float | None = Field(
        default=None, ge=0, description="Cycle limit of the whole day (discharge already scheduled counts)."
    )


class WhatIfRequest(BaseModel):
    """Revised prices, state of charge or asset limits for MTUs ``from_mtu`` to the end of the day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str = Field(description="Bidding zone, e.g. DE_LU.")
    version: str = Field(default="latest", description="Schedule version to start from: latest or v=NNN.")
    from_mtu: int = Field(
        default=0, ge=0, description="First MTU (0-based) to re-optimise; earlier ones stay."
    )
    prices: list[float] | None = Field(
        default=None, description="Revised price per MTU from from_mtu to the end of the day, EUR/MWh."
    )
    scenarios: list[list[float]] | None = Field(
        default=None, description="Price scenarios [S][MTUs from from_mtu], instead of prices."
    )
    weights: list[float] | None = Field(
        default=None, description="Probabilities of the scenarios (default equal)."
    )
    soc_mwh: dict[str, float] = Field(
        default_factory=dict, description="Measured state of charge per asset at the start of from_mtu, MWh."
    )
    assets: dict[str, AssetChange] = Field(default_factory=dict, description="Changed limits per asset.")


@dataclasses.dataclass(frozen=True)
class WhatIfInputs:
    """What goes into the LP: exactly the arguments of ``optimise_zone``."""

    scenarios: np.ndarray  # [S, rest]
    weights: list[float]
    inflexible_mw: np.ndarray  # [rest]
    assets: list[Storage]
    mtu_minutes: int
    cvar_weight: float
    timing_shift: float


def zone_rows(schedule: pd.DataFrame, zone: str) -> pd.DataFrame:
    """The rows of one zone (portfolio and storage), ordered by asset and MTU; ApiError 404.

    The API caches this per version and zone, so a what-if filters the small frame only.
    """
    rows = schedule[schedule["zone"] == zone]
    if rows.empty:
        zones = sorted(schedule["zone"].unique())
        raise ApiError(404, f"zone {zone!r} is not in this schedule (zones: {zones})")
    return rows.sort_values(["asset", "mtu_index"]).reset_index(drop=True)


def _portfolio_rows(schedule: pd.DataFrame, zone: str) -> pd.DataFrame:
    rows = schedule[(schedule["zone"] == zone) & (schedule["asset_type"] == "portfolio")]
    if rows.empty:
        zones = sorted(schedule["zone"].unique())
        raise ApiError(404, f"zone {zone!r} is not in this schedule (zones: {zones})")
    return rows.sort_values("mtu_index").reset_index(drop=True)


def _day_label(day: date, n: int, mtu_minutes: int) -> str:
    hours = n * mtu_minutes / 60
    kind = {23.0: "a 23-hour day", 25.0: "a 25-hour day"}.get(hours, "a 24-hour day")
    return f"{day} ({kind}: {n} MTUs of {mtu_minutes} min)"


def _price_matrix(
    req: WhatIfRequest, port: pd.DataFrame, day: date, quantiles: Sequence[float], max_scenarios: int
) -> tuple[np.ndarray, list[float]]:
    """Scenarios [S, rest] and weights: the request's, or the published forecast quantiles."""
    n, mtu = len(port), int(port["resolution_minutes"].iloc[0])
    rest = n - req.from_mtu
    where = f"MTUs {req.from_mtu}..{n - 1} of {_day_label(day, n, mtu)}"
    if req.prices is not None and req.scenarios is not None:
        raise ApiError(422, "send either prices or scenarios, not both")
    if req.prices is not None:
        if len(req.prices) != rest:
            raise ApiError(422, f"expected {rest} prices for {where}, got {len(req.prices)}")
        return np.atleast_2d(np.asarray(req.prices, dtype=float)), [1.0]
    if req.scenarios is not None:
        if not req.scenarios or len(req.scenarios) > max_scenarios:
            raise ApiError(422, f"send 1..{max_scenarios} price scenarios, got {len(req.scenarios)}")
        bad = [i for i, s in enumerate(req.scenarios) if len(s) != rest]
        if bad:
            raise ApiError(
                422,
                f"expected {rest} prices per scenario for {where}; scenario {bad[0]} has {len(req.scenarios[bad[0]])}",
            )
        s = len(req.scenarios)
        weights = req.weights if req.weights is not None else [1.0 / s] * s
        if len(weights) != s or any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
            raise ApiError(422, f"weights must be {s} non-negative probabilities summing to 1, got {weights}")
        return np.asarray(req.scenarios, dtype=float), [float(w) for w in weights]
    if req.weights is not None:
        raise ApiError(422, "weights need scenarios")
    cols = price_columns(quantiles)
    prices = port[cols].to_numpy(dtype=float)[req.from_mtu :].T
    return prices, [float(w) for w in quantile_weights(quantiles)]


def _check_limits(prices: np.ndarray, port: pd.DataFrame, from_mtu: int, floor: float, cap: float) -> None:
    if not np.isfinite(prices).all():
        raise ApiError(422, "prices must be finite numbers")
    for label, mask, limit in (
        ("below the exchange floor", prices < floor, floor),
        ("above the exchange cap", prices > cap, cap),
    ):
        if mask.any():
            s, t = (int(v[0]) for v in np.nonzero(mask))
            local = port["delivery_start_local"].iloc[from_mtu + t]
            raise ApiError(
                422,
                f"price {prices[s, t]:g} EUR/MWh at MTU {from_mtu + t} ({local}) lies {label} {limit:g} EUR/MWh",
            )


def _assets(
    req: WhatIfRequest, schedule: pd.DataFrame, zone: str, portfolio_assets: Sequence[StorageAsset], h: float
) -> list[Storage]:
    """The zone's storage as the LP sees it for the rest of the day, with the request's changes."""
    assets = [Storage.from_asset(a) for a in portfolio_assets if a.zone == zone]
    names = [a.name for a in assets]
    unknown = sorted(set(req.soc_mwh) - set(names)) + sorted(set(req.assets) - set(names))
    if unknown:
        raise ApiError(422, f"unknown storage asset {unknown[0]!r} in zone {zone} (assets: {names})")
    out = []
    for a in assets:
        rows = schedule[schedule["asset"] == a.name].sort_values("mtu_index")
        done = rows.iloc[: req.from_mtu]
        start = float(done["soc_mwh"].iloc[-1]) if len(done) else a.soc_start_mwh
        change = req.assets.get(a.name, AssetChange())
        cycles = a.max_cycles if change.max_cycles_per_day is None else change.max_cycles_per_day
        remaining = None
        if cycles is not None:
            discharged = float(done["discharge_mw"].sum()) * h
            remaining = max(cycles * a.energy_mwh - discharged, 0.0) / a.energy_mwh
        out.append(
            dataclasses.replace(
                a,
                power_mw=a.power_mw if change.power_mw is None else change.power_mw,
                soc_min_mwh=a.soc_min_mwh if change.soc_min_mwh is None else change.soc_min_mwh,
                soc_max_mwh=a.soc_max_mwh if change.soc_max_mwh is None else change.soc_max_mwh,
                soc_end_mwh=a.soc_end_mwh if change.soc_end_mwh is None else change.soc_end_mwh,
                soc_start_mwh=req.soc_mwh.get(a.name, start),
                max_cycles=remaining,
            )
        )
    return out


def build_inputs(
    req: WhatIfRequest,
    day: date,
    schedule: pd.DataFrame,
    manifest: dict[str, Any],
    portfolio_assets: Sequence[StorageAsset],
    *,
    price_floor: float,
    price_cap: float,
    max_scenarios: int = 100,
) -> WhatIfInputs:
    """Check the request against the published day and assemble the LP's arguments; ApiError 422."""
    port = _portfolio_rows(schedule, req.zone)
    n = len(port)
    mtu = int(port["resolution_minutes"].iloc[0])
    if req.from_mtu >= n:
        raise ApiError(
            422, f"from_mtu {req.from_mtu} is past the last MTU {n - 1} of {_day_label(day, n, mtu)}"
        )
    options = manifest.get("options", {})
    quantiles = options.get("quantiles", [0.1, 0.5, 0.9])
    prices, weights = _price_matrix(req, port, day, quantiles, max_scenarios)
    _check_limits(prices, port, req.from_mtu, price_floor, price_cap)
    zone_rows = schedule[schedule["zone"] == req.zone]
    assets = _assets(req, zone_rows, req.zone, portfolio_assets, mtu / 60)
    inflexible = (port["retail_load_mw"] - port["renewables_mw"]).to_numpy(dtype=float)[req.from_mtu :]
    return WhatIfInputs(
        scenarios=prices,
        weights=weights,
        inflexible_mw=inflexible,
        assets=assets,
        mtu_minutes=mtu,
        cvar_weight=float(options.get("cvar_weight", 0.0)),
        timing_shift=float(options.get("timing_shift", 0.0)),
    )


def solve(inputs: WhatIfInputs) -> ZoneSchedule:
    """The schedule LP on the what-if inputs; ApiError 422 naming the constraint when infeasible."""
    try:
        return optimise_zone(
            inputs.scenarios,
            inputs.inflexible_mw,
            inputs.assets,
            inputs.mtu_minutes,
            weights=inputs.weights,
            cvar_weight=inputs.cvar_weight,
            timing_shift_probability=inputs.timing_shift,
        )
    except InfeasibleScheduleError as exc:
        raise ApiError(422, f"infeasible: {exc}") from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


def published_margin(
    schedule: pd.DataFrame, req: WhatIfRequest, assets: Sequence[Storage], prices: np.ndarray, h: float
) -> float:
    """What the published dispatch of MTUs from_mtu.. earns at ``prices`` (net of degradation)."""
    total = 0.0
    for a in assets:
        rows = schedule[schedule["asset"] == a.name].sort_values("mtu_index").iloc[req.from_mtu :]
        c, d = rows["charge_mw"].to_numpy(dtype=float), rows["discharge_mw"].to_numpy(dtype=float)
        total += float(-(prices @ (c - d)) * h - a.degradation_eur_per_mwh * h * d.sum())
    return total


def answer(
    req: WhatIfRequest,
    *,
    day: date,
    version: str,
    schedule: pd.DataFrame,
    inputs: WhatIfInputs,
    result: ZoneSchedule,
) -> dict[str, Any]:
    """The response body: per-MTU positions and dispatch, per-asset series, the margin figures."""
    port = _portfolio_rows(schedule, req.zone).iloc[req.from_mtu :]
    zone_rows = schedule[schedule["zone"] == req.zone]
    h = inputs.mtu_minutes / 60
    p_exp = result.expected_price
    baseline = published_margin(zone_rows, req, inputs.assets, p_exp, h)
    capacity = sum(a.energy_mwh for a in inputs.assets)
    starts = port["delivery_start_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    columns = {
        "mtu_index": port["mtu_index"].astype(int).tolist(),
        "delivery_start_utc": starts,
        "delivery_start_local": port["delivery_start_local"].astype(str).tolist(),
        "price_expected": p_exp.tolist(),
        "position_mw": result.position_mw.tolist(),
        "published_position_mw": port["position_mw"].astype(float).tolist(),
        "charge_mw": result.charge_mw.sum(axis=0).tolist(),
        "discharge_mw": result.discharge_mw.sum(axis=0).tolist(),
    }
    mtus = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    assets = [
        {
            "asset": a.name,
            "soc_start_mwh": a.soc_start_mwh,
            "charge_mw": result.charge_mw[k].tolist(),
            "discharge_mw": result.discharge_mw[k].tolist(),
            "soc_mwh": result.soc_mwh[k].tolist(),
            "water_value_eur_mwh": result.water_value[k].tolist(),
        }
        for k, a in enumerate(inputs.assets)
    ]
    bought = float(np.clip(result.position_mw, 0, None).sum() * h)
    sold = float(np.clip(-result.position_mw, 0, None).sum() * h)
    return {
        "delivery_date": day.isoformat(),
        "zone": req.zone,
        "version": version,
        "from_mtu": req.from_mtu,
        "mtu_minutes": inputs.mtu_minutes,
        "scenarios": int(inputs.scenarios.shape[0]),
        "figures": {
            "expected_margin_eur": round(result.storage_margin_eur, 2),
            "published_dispatch_margin_eur": round(baseline, 2),
            "margin_change_eur": round(result.storage_margin_eur - baseline, 2),
            "expected_cost_eur": round(result.expected_cost_eur, 2),
            "energy_bought_mwh": round(bought, 3),
            "energy_sold_mwh": round(sold, 3),
            "storage_cycles": round(float(result.discharge_mw.sum() * h) / capacity, 4) if capacity else 0.0,
        },
        "mtus": mtus,
        "assets": assets,
    }
