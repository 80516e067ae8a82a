"""Schedule gate: one zone's rows of a candidate version and its bid curves.

The physics (energy balance, state-of-charge continuity, limits) is
recomputed here from the portfolio, independently of the optimiser, as
residual columns; the GX suites ``schedule`` and ``bids`` then check them, so
each failure is a named expectation in Data Docs with the offending rows.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.errors import MissingInputError
from tasks.quality import gate, prepare
from tasks.quality.gx_runner import CheckOutcome, SuiteOutcome
from tasks.quality.specs import SeverityPolicy, resolve_suite
from tasks.storage import Layout
from tasks.timeutil import mtu_count

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import Settings, StorageAsset
    from tasks.quality.gx_runner import GxRunner

TOLERANCE_MW = 1e-3
TOLERANCE_MWH = 1e-3
SCHEDULE_VALUES = (
    "position_mw",
    "charge_mw",
    "discharge_mw",
    "soc_mwh",
    "price_expected",
    "expected_cost_eur",
)


def newest_version_dir(layout: Layout, day: date) -> Path:
    """The candidate: the highest ``v=NNN`` the schedule stage wrote for ``day``."""
    from tasks.schedule import existing_versions, version_name

    day_dir = layout.schedule_dir(day)
    versions = existing_versions(day_dir)
    if not versions:
        raise MissingInputError(
            f"no schedule version for {day.isoformat()} under {day_dir}; "
            f"run python -m tasks.schedule --delivery-date {day.isoformat()} first"
        )
    return day_dir / version_name(versions[-1])


def portfolio_row_name(zone: str) -> str:
    return f"portfolio-{zone}"


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats, or all-NaN when it is missing (the columns check reports that)."""
    import numpy as np
    import pandas as pd

    if column in frame:
        return frame[column].astype(float)
    return pd.Series(np.nan, index=frame.index, dtype=float)


def prepare_schedule(
    frame: pd.DataFrame, storage: tuple[StorageAsset, ...], zone: str, mtu_minutes: int
) -> pd.DataFrame:
    """Add the residual columns the ``schedule`` suite checks.

    ``_balance_residual_mw``: position minus what it must be; ``_soc_residual_mwh``:
    state of charge minus the previous one plus the MTU's net charge (storage rows),
    or minus the sum of the assets (portfolio row); ``_soc_margin_mwh``: distance to
    the nearer SoC limit; ``_power_margin_mw``: rating minus the larger leg (-1 for a
    negative leg); ``_both_legs_mw``: the smaller of charge and discharge (storage rows;
    an asset cannot do both in one MTU); ``_quantiles_ordered``: p10 <= p50 <= p90.
    """
    import numpy as np
    import pandas as pd

    out = frame.reset_index(drop=True).copy()
    h = mtu_minutes / 60.0
    assets = {a.name: a for a in storage}
    position, charge, discharge = _num(out, "position_mw"), _num(out, "charge_mw"), _num(out, "discharge_mw")
    soc = _num(out, "soc_mwh")
    asset_col = out["asset"].astype(str) if "asset" in out else pd.Series("", index=out.index)
    is_portfolio = asset_col == portfolio_row_name(zone)
    net_storage = charge - discharge
    inflexible = _num(out, "retail_load_mw") - _num(out, "renewables_mw")
    expected = net_storage + inflexible.where(is_portfolio, 0.0)
    out["_balance_residual_mw"] = position - expected
    soc_residual = pd.Series(np.nan, index=out.index, dtype=float)
    power_margin = pd.Series(np.nan, index=out.index, dtype=float)
    both_legs = pd.Series(np.nan, index=out.index, dtype=float)
    if "delivery_start_utc" in out:
        start = out["delivery_start_utc"]
        for name, asset in assets.items():
            idx = out.index[asset_col == name]
            if len(idx) == 0:
                continue
            idx = start.loc[idx].sort_values().index
            leg = math.sqrt(asset.round_trip_efficiency)
            prev = soc.loc[idx].shift(1).fillna(asset.soc_start_frac * asset.energy_mwh)
            flow = (leg * charge.loc[idx] - discharge.loc[idx] / leg) * h
            soc_residual.loc[idx] = soc.loc[idx] - prev - flow
            legs_ok = (charge.loc[idx] >= -TOLERANCE_MW) & (discharge.loc[idx] >= -TOLERANCE_MW)
            margin = asset.power_mw - pd.concat([charge.loc[idx], discharge.loc[idx]], axis=1).max(axis=1)
            power_margin.loc[idx] = margin.where(legs_ok, -1.0)
            both_legs.loc[idx] = np.minimum(charge.loc[idx], discharge.loc[idx])
        stored = asset_col.isin(list(assets))
        total_by_time = soc[stored].groupby(start[stored]).sum()
        rows = out.index[is_portfolio]
        soc_residual.loc[rows] = soc.loc[rows] - start.loc[rows].map(total_by_time).fillna(0.0)
    out["_soc_residual_mwh"] = soc_residual
    out["_power_margin_mw"] = power_margin
    out["_both_legs_mw"] = both_legs
    out["_soc_margin_mwh"] = np.minimum(soc - _num(out, "soc_min_mwh"), _num(out, "soc_max_mwh") - soc)
    qcols = sorted(c for c in out.columns if str(c).startswith("price_q") and str(c)[7:].isdigit())
    ordered = pd.Series(True, index=out.index)
    for lower, upper in itertools.pairwise(qcols):
        ordered &= _num(out, lower) <= _num(out, upper) + 1e-9
    out["_quantiles_ordered"] = ordered
    if "delivery_start_utc" in out:
        out["timestamp_utc"] = out["delivery_start_utc"]
    return out


def prepare_bids(frame: pd.DataFrame, floor: float, cap: float) -> pd.DataFrame:
    """Add ``_price_step``/``_volume_step`` (to the next point of the same curve), ``_points_in_curve``, ``_spans_price_range``."""
    import numpy as np

    out = frame.reset_index(drop=True).copy()
    if not {"mtu_index", "price_eur_mwh", "volume_mw"} <= set(out.columns):
        for col in ("_price_step", "_volume_step", "_points_in_curve"):
            out[col] = np.nan
        out["_spans_price_range"] = False
        return out
    order = out.sort_values(["mtu_index", "point"] if "point" in out else ["mtu_index"])
    grouped = order.groupby("mtu_index")
    out["_price_step"] = (grouped["price_eur_mwh"].shift(-1) - order["price_eur_mwh"]).reindex(out.index)
    out["_volume_step"] = (grouped["volume_mw"].shift(-1) - order["volume_mw"]).reindex(out.index)
    out["_points_in_curve"] = out.groupby("mtu_index")["mtu_index"].transform("size")
    lo = out.groupby("mtu_index")["price_eur_mwh"].transform("min")
    hi = out.groupby("mtu_index")["price_eur_mwh"].transform("max")
    out["_spans_price_range"] = (np.abs(lo - floor) < 0.05) & (np.abs(hi - cap) < 0.05)
    return out


def validate(
    zone: str, day: date, settings: Settings, runner: GxRunner, *, schedule_dir: Path | None = None
) -> gate.GateResult:
    """Run the ``schedule`` and ``bids`` suites on ``zone``'s part of a version directory."""
    import pandas as pd

    layout = Layout(settings.data_root)
    policy = SeverityPolicy(dict(settings.quality_severity))
    version_dir = schedule_dir or newest_version_dir(layout, day)
    result = gate.GateResult("schedule", zone, day)
    tz = settings.market_timezone
    portfolio = settings.load_portfolio().for_zone(zone)
    assets = [portfolio_row_name(zone), *(a.name for a in portfolio.storage)]
    limits: dict[str, Any] = {
        "price_floor_eur_mwh": settings.price_floor_eur_mwh,
        "price_cap_eur_mwh": settings.price_cap_eur_mwh,
        "tolerance_mw": TOLERANCE_MW,
        "neg_tolerance_mw": -TOLERANCE_MW,
        "tolerance_mwh": TOLERANCE_MWH,
        "neg_tolerance_mwh": -TOLERANCE_MWH,
        "assets": assets,
        "n_assets": len(assets),
    }
    for name in ("schedule", "bids"):
        path = version_dir / f"{name}.parquet"
        if not path.exists():
            check = CheckOutcome(
                name=f"{name}.file_present",
                expectation_type="file_present",
                severity=policy(f"{name}.file_present"),
                success=False,
                error=f"no {path}",
            )
            result.suites.append(SuiteOutcome(suite=name, data_day=day.isoformat(), checks=[check]))
            continue
        frame = pd.read_parquet(path)
        if "zone" in frame:
            frame = frame[frame["zone"] == zone]
        resolution = prepare.observed_resolution(frame, settings.mtu_minutes)
        n_mtu = mtu_count(day, tz, resolution)
        if name == "schedule":
            prepared = prepare_schedule(frame, portfolio.storage, zone, resolution)
            params = {
                **prepare.timeseries_params(
                    prepared,
                    day,
                    tz,
                    resolution=resolution,
                    key_columns=("timestamp_utc", "asset"),
                    value_columns=SCHEDULE_VALUES,
                ),
                **limits,
            }
            params["expected_rows"] = n_mtu * len(assets)
            params["required_columns"] = [
                "delivery_start_utc",
                "delivery_end_utc",
                "delivery_start_local",
                "resolution_minutes",
                "asset",
                *SCHEDULE_VALUES,
                "soc_min_mwh",
                "soc_max_mwh",
            ]
            prepared = prepare.prepare_timeseries(
                prepared, day, tz, resolution=resolution, group_by=("asset",)
            )
        else:
            prepared = prepare_bids(frame, settings.price_floor_eur_mwh, settings.price_cap_eur_mwh)
            params = {**limits, "expected_mtus": n_mtu, "last_mtu_index": n_mtu - 1}
        spec = resolve_suite(name, params, policy.rules)
        outcome = runner.run(spec, prepared, run_key=f"{name}.{zone}", data_day=day.isoformat())
        outcome.result_path = str(version_dir)
        result.suites.append(outcome)
    manifest = version_dir / "manifest.json"
    if manifest.exists():
        try:
            json.loads(manifest.read_text())
        except json.JSONDecodeError:
            bad = CheckOutcome(
                name="schedule.manifest_readable",
                expectation_type="manifest",
                severity=policy("schedule.manifest_readable"),
                success=False,
                error=f"{manifest} is not valid JSON",
            )
            result.suites.append(SuiteOutcome(suite="manifest", data_day=day.isoformat(), checks=[bad]))
    return result
