"""Stage ``tasks.schedule``: optimise the day-ahead position of every zone, write a new version.

``python -m tasks.schedule --delivery-date D [--zone Z] [--run-ts ISO] [--cvar-weight X]``
reads ``forecasts/zone=Z/<D>.parquet`` (+ ``.json`` sidecar) for each zone and
the portfolio, solves one LP per zone (tasks.optimise), derives the bid curves
(tasks.bids) and writes ``schedules/day=D/v=NNN/`` — schedule and bids as
Parquet and CSV, ``manifest.json`` and ``summary.png`` — through a temporary
directory that is renamed into place, so a version is either complete or
absent. It does not move the ``latest`` pointer: ``tasks.publish`` does that
after the schedule gate passed. If the newest version already has the same
content (same inputs, same schedule), no new version is written and that one
is returned (``reused: true``); retries therefore do not pile up versions.
See docs/output-contract.md for the output contract.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from tasks.bids import curve_points, storage_steps
from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import MAX_TIMING_SHIFT, Portfolio, Settings, get_settings
from tasks.datasets import SDAC_PRICE_CAP_EUR_MWH, SDAC_PRICE_FLOOR_EUR_MWH
from tasks.errors import ConfigError, MissingInputError
from tasks.optimise import Storage, ZoneSchedule, optimise_zone
from tasks.storage import Layout, day_lock, fsync_path, remove_leftovers, sha256_bytes, sha256_file
from tasks.summary_plot import SummaryInfo
from tasks.timeutil import mtu_starts_utc

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("tasks.schedule")

# 1.1: inputs[zone].sources (raw revisions); 1.2: options.timing_shift; 1.3: sources[].zone
SCHEMA_VERSION = "1.4.0"
#: The summaries for schedulers (tasks.summary_plot): derived from the rest, not part of the content digest.
SUMMARY_FILES = ("summary.png", "summary.html")
SCHEDULE_FILES = ("schedule.parquet", "schedule.csv", "bids.parquet", "bids.csv", *SUMMARY_FILES)
VERSION_RE = re.compile(r"^v=(\d{3,})$")
MLFLOW_EXPERIMENT = "day_ahead_schedules"


def quantile_weights(quantiles: Sequence[float]) -> np.ndarray:
    """Probability each quantile stands for: the interval between midpoints to its neighbours.

    For P10/P50/P90 this is Swanson's rule 0.3/0.4/0.3 — the usual estimate of the mean.
    """
    q = np.asarray(sorted(quantiles), dtype=float)
    edges = np.concatenate([[0.0], (q[1:] + q[:-1]) / 2, [1.0]])
    return np.diff(edges)


def price_columns(quantiles: Sequence[float]) -> list[str]:
    return [f"price_q{round(100 * q)}" for q in sorted(quantiles)]


def default_run_ts(day: date, settings: Settings) -> datetime:
    """Gate closure of D-1 in UTC: the deterministic "created" time when none is passed."""
    hh, mm = (int(v) for v in settings.gate_closure_local.split(":"))
    local = datetime.combine(day - timedelta(days=1), time(hh, mm), tzinfo=ZoneInfo(settings.market_timezone))
    return local.astimezone(UTC)


def parse_run_ts(value: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--run-ts must be an ISO timestamp with offset, got {value!r}"
        ) from exc
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"--run-ts needs a UTC offset (e.g. 2026-03-28T10:00:00Z), got {value!r}"
        )
    return ts.astimezone(UTC)


def check_forecast(
    frame: pd.DataFrame, day: date, zone: str, *, tz: str, mtu_minutes: int, quantiles: Sequence[float]
) -> None:
    """The forecast covers exactly the MTU grid of D with finite, ordered quantiles."""
    import pandas as pd

    needed = [
        "timestamp_utc",
        "resolution_minutes",
        *price_columns(quantiles),
        "load_mw",
        "wind_mw",
        "solar_mw",
    ]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise MissingInputError(f"forecast of {zone} for {day} lacks columns {missing}; rerun tasks.forecast")
    grid = pd.DatetimeIndex(mtu_starts_utc(day, tz, mtu_minutes))
    got = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_utc"], utc=True))
    if len(got) != len(grid) or not (got == grid).all():
        raise MissingInputError(
            f"forecast of {zone} for {day} has {len(got)} rows but the {mtu_minutes}-minute grid of the "
            f"delivery day has {len(grid)} (first {grid[0]}); rerun tasks.forecast with DAP_MTU_MINUTES={mtu_minutes}"
        )
    if set(frame["resolution_minutes"].astype(int)) != {mtu_minutes}:
        raise MissingInputError(f"forecast of {zone} for {day} is not at {mtu_minutes}-minute resolution")
    values = frame[needed[2:]].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        bad = frame.loc[~np.isfinite(values).all(axis=1), "timestamp_utc"].head(3).tolist()
        raise MissingInputError(f"forecast of {zone} for {day} has NaN/inf values, e.g. at {bad}")
    q = frame[price_columns(quantiles)].to_numpy(dtype=float)
    if (np.diff(q, axis=1) < -1e-6).any():
        raise MissingInputError(f"forecast of {zone} for {day} has crossing price quantiles")


def inflexible_volume(forecast: pd.DataFrame, portfolio: Portfolio) -> tuple[np.ndarray, np.ndarray]:
    """Retail load and own renewables of a zone's portfolio (MW per MTU)."""
    load = np.zeros(len(forecast))
    for r in portfolio.retail_loads:
        load = load + r.share_of_system_load * forecast["load_mw"].to_numpy(dtype=float)
    ren = np.zeros(len(forecast))
    for plant in portfolio.renewables:
        ren = ren + plant.share_of_zone * forecast[f"{plant.technology}_mw"].to_numpy(dtype=float)
    return load, ren


def build_zone(
    day: date,
    zone: str,
    forecast: pd.DataFrame,
    portfolio: Portfolio,
    *,
    tz: str,
    mtu_minutes: int,
    quantiles: Sequence[float],
    cvar_weight: float = 0.0,
    timing_shift: float = 0.0,
    price_floor: float = SDAC_PRICE_FLOOR_EUR_MWH,
    price_cap: float = SDAC_PRICE_CAP_EUR_MWH,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Schedule rows, bid points and key figures of one zone (pure: no I/O)."""
    check_forecast(forecast, day, zone, tz=tz, mtu_minutes=mtu_minutes, quantiles=quantiles)
    forecast = forecast.reset_index(drop=True)
    pcols = price_columns(quantiles)
    load, ren = inflexible_volume(forecast, portfolio)
    assets = [Storage.from_asset(a) for a in portfolio.storage]
    result: ZoneSchedule = optimise_zone(
        forecast[pcols].to_numpy(dtype=float).T,
        load - ren,
        assets,
        mtu_minutes,
        weights=[float(w) for w in quantile_weights(quantiles)],
        cvar_weight=cvar_weight,
        timing_shift_probability=timing_shift,
    )
    common = _delivery_columns(day, zone, forecast, tz=tz, mtu_minutes=mtu_minutes)
    prices = {c: forecast[c].to_numpy(dtype=float) for c in pcols}
    h = mtu_minutes / 60.0
    schedule = _schedule_rows(zone, common, prices, result, assets, load=load, ren=ren, h=h)
    bids = _bid_rows(common, result, assets, load - ren, price_floor=price_floor, price_cap=price_cap)
    return schedule, bids, _zone_figures(result, assets, h)


def _delivery_columns(
    day: date, zone: str, forecast: pd.DataFrame, *, tz: str, mtu_minutes: int
) -> dict[str, Any]:
    """The columns every schedule and bid row of one zone starts with, one value per MTU."""
    import pandas as pd

    starts = pd.DatetimeIndex(pd.to_datetime(forecast["timestamp_utc"], utc=True))
    ends = starts + pd.Timedelta(minutes=mtu_minutes)
    local = ZoneInfo(tz)
    return {
        "delivery_date": day.isoformat(),
        "zone": zone,
        "mtu_index": np.arange(len(forecast)),
        "resolution_minutes": mtu_minutes,
        "delivery_start_utc": starts,
        "delivery_end_utc": ends,
        "delivery_start_local": [ts.to_pydatetime().astimezone(local).isoformat() for ts in starts],
        "delivery_end_local": [ts.to_pydatetime().astimezone(local).isoformat() for ts in ends],
    }


def _schedule_rows(
    zone: str,
    common: dict[str, Any],
    prices: dict[str, np.ndarray],
    result: ZoneSchedule,
    assets: Sequence[Storage],
    *,
    load: np.ndarray,
    ren: np.ndarray,
    h: float,
) -> pd.DataFrame:
    """One block of MTU rows for the zone's portfolio, then one per storage asset."""
    import pandas as pd

    p_exp = result.expected_price
    degr = np.array([a.degradation_eur_per_mwh for a in assets]).reshape(-1, 1)
    deg_cost = (degr * result.discharge_mw * h).sum(axis=0) if assets else np.zeros(load.size)
    blocks: list[tuple[dict[str, Any], np.ndarray]] = [
        (
            {
                "asset": f"portfolio-{zone}",
                "asset_type": "portfolio",
                "position_mw": result.position_mw,
                "retail_load_mw": load,
                "renewables_mw": ren,
                "charge_mw": result.charge_mw.sum(axis=0),
                "discharge_mw": result.discharge_mw.sum(axis=0),
                "soc_mwh": result.soc_mwh.sum(axis=0),
                "soc_min_mwh": sum(a.soc_min_mwh for a in assets),
                "soc_max_mwh": sum(a.soc_max_mwh for a in assets),
            },
            p_exp * h * result.position_mw + deg_cost,
        )
    ]
    for k, a in enumerate(assets):
        c, d = result.charge_mw[k], result.discharge_mw[k]
        row = {
            "asset": a.name,
            "asset_type": "storage",
            "position_mw": c - d,
            "retail_load_mw": 0.0,
            "renewables_mw": 0.0,
            "charge_mw": c,
            "discharge_mw": d,
            "soc_mwh": result.soc_mwh[k],
            "soc_min_mwh": a.soc_min_mwh,
            "soc_max_mwh": a.soc_max_mwh,
        }
        blocks.append((row, p_exp * h * (c - d) + a.degradation_eur_per_mwh * h * d))
    return pd.concat(
        [
            pd.DataFrame({**common, **row, **prices, "price_expected": p_exp, "expected_cost_eur": cost})
            for row, cost in blocks
        ],
        ignore_index=True,
    )


def _bid_rows(
    common: dict[str, Any],
    result: ZoneSchedule,
    assets: Sequence[Storage],
    inflexible_mw: np.ndarray,
    *,
    price_floor: float,
    price_cap: float,
) -> pd.DataFrame:
    """The bid curve points of every MTU: the inflexible volume plus the assets' limit orders."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for t in range(inflexible_mw.size):
        steps = storage_steps(
            result.charge_mw[:, t],
            discharge_mw=result.discharge_mw[:, t],
            water_value=result.water_value[:, t],
            expected_price=float(result.expected_price[t]),
            eta_charge=[a.eta_charge for a in assets],
            eta_discharge=[a.eta_discharge for a in assets],
            degradation=[a.degradation_eur_per_mwh for a in assets],
        )
        mtu = {
            "delivery_date": common["delivery_date"],
            "zone": common["zone"],
            "mtu_index": t,
            "resolution_minutes": common["resolution_minutes"],
            "delivery_start_utc": common["delivery_start_utc"][t],
            "delivery_end_utc": common["delivery_end_utc"][t],
        }
        pts = curve_points(float(inflexible_mw[t]), steps, price_floor, price_cap)
        rows += [{**mtu, "point": i, "price_eur_mwh": p, "volume_mw": v} for i, (p, v) in enumerate(pts)]
    return pd.DataFrame(rows)


def _zone_figures(result: ZoneSchedule, assets: Sequence[Storage], h: float) -> dict[str, float]:
    """Key figures of one zone's schedule: margin, cost, energy bought and sold, storage cycles."""
    bought = float(np.clip(result.position_mw, 0, None).sum() * h)
    sold = float(np.clip(-result.position_mw, 0, None).sum() * h)
    throughput = float(result.discharge_mw.sum() * h)
    capacity = sum(a.energy_mwh for a in assets)
    return {
        "expected_margin_eur": round(result.storage_margin_eur, 2),
        "expected_cost_eur": round(result.expected_cost_eur, 2),
        "energy_bought_mwh": round(bought, 3),
        "energy_sold_mwh": round(sold, 3),
        "storage_cycles": round(throughput / capacity, 4) if capacity else 0.0,
    }


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("delivery_start_utc", "delivery_end_utc"):
        out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def existing_versions(day_dir: Path) -> list[int]:
    if not day_dir.is_dir():
        return []
    found = [VERSION_RE.match(p.name) for p in day_dir.iterdir() if p.is_dir()]
    return sorted(int(m.group(1)) for m in found if m)


def version_name(n: int) -> str:
    return f"v={n:03d}"


def content_digest(file_sums: dict[str, str], inputs: dict[str, Any], options: dict[str, Any]) -> str:
    """What makes two versions equal: the data files, their inputs and the optimiser options."""
    data = {k: v for k, v in file_sums.items() if k not in SUMMARY_FILES}
    text = json.dumps({"files": data, "inputs": inputs, "options": options}, sort_keys=True)
    return sha256_bytes(text.encode())


def commit_version(day_dir: Path, staging: Path) -> Path:
    """Rename a complete staging directory to the next free ``v=NNN``; atomic per version.

    The files and the staging directory are fsynced before the rename, the day directory after it.
    """
    for path in [*sorted(staging.iterdir()), staging]:
        fsync_path(path)
    while True:
        n = (existing_versions(day_dir) or [0])[-1] + 1
        target = day_dir / version_name(n)
        try:
            staging.rename(target)  # fails if a concurrent run took this number
        except OSError:
            if target.exists() and staging.exists():
                continue
            raise
        fsync_path(day_dir)
        return target


def log_to_mlflow(
    settings: Settings, day: date, version_dir: Path, figures: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """Log the summary and key figures; failures are reported, never raised (within seconds)."""
    try:
        import mlflow

        from tasks.registry import bound_mlflow_http_retries

        bound_mlflow_http_retries()
        mlflow.set_tracking_uri(settings.tracking_uri)
        if mlflow.get_experiment_by_name(MLFLOW_EXPERIMENT) is None:
            mlflow.create_experiment(
                MLFLOW_EXPERIMENT,
                artifact_location=settings.artifact_root.rstrip("/") + "/" + MLFLOW_EXPERIMENT,
            )
        mlflow.set_experiment(MLFLOW_EXPERIMENT)
        with mlflow.start_run(run_name=f"schedule-{day.isoformat()}-{version_dir.name}") as run:
            mlflow.set_tags({"delivery_date": day.isoformat(), "version": version_dir.name})
            for zone, figs in figures.items():
                mlflow.log_metrics({f"{zone}.{k}": float(v) for k, v in figs.items()})
            for name in SUMMARY_FILES:
                mlflow.log_artifact(str(version_dir / name))
            mlflow.log_artifact(str(version_dir / "manifest.json"))
            return {"mlflow_run_id": run.info.run_id}
    except Exception as exc:  # MLflow must not block the schedule; the result reports it
        log.warning("MLflow logging failed: %s", exc)
        return {"mlflow_error": f"{type(exc).__name__}: {exc}"}


def run_schedule(
    day: date,
    settings: Settings,
    *,
    zones: Sequence[str] | None = None,
    run_ts: datetime | None = None,
    cvar_weight: float = 0.0,
    timing_shift: float | None = None,
    log_mlflow: bool = True,
) -> dict[str, Any]:
    """Build, write and (if new) log one schedule version of day D; returns the stage result."""
    import pandas as pd

    layout = Layout(settings.data_root)
    zones = list(zones or settings.zones)
    portfolio = _portfolio(settings, zones)
    shift = _timing_shift(settings, timing_shift)
    schedules, bids, figures, inputs = [], [], {}, {}
    for zone in zones:
        frame, inputs[zone] = _read_forecast(layout, settings, zone, day)
        sched, bid, figures[zone] = build_zone(
            day,
            zone,
            frame,
            portfolio.for_zone(zone),
            tz=settings.market_timezone,
            mtu_minutes=settings.mtu_minutes,
            quantiles=settings.quantiles,
            cvar_weight=cvar_weight,
            timing_shift=shift,
            price_floor=settings.price_floor_eur_mwh,
            price_cap=settings.price_cap_eur_mwh,
        )
        sched["fallback"] = bool(inputs[zone]["fallback"])
        schedules.append(sched)
        bids.append(bid)
    schedule = pd.concat(schedules, ignore_index=True)
    bid_frame = pd.concat(bids, ignore_index=True)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "delivery_date": day.isoformat(),
        "created_utc": (run_ts or default_run_ts(day, settings)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "market_timezone": settings.market_timezone,
        "zones": zones,
        "inputs": inputs,
        "options": _options(settings, cvar_weight, shift),
        "solver": "HiGHS via scipy.optimize.linprog",
        "figures": figures,
        "fallback": fallback_summary(inputs),
    }
    version_dir, reused = write_version(
        layout.schedule_dir(day),
        day,
        schedule,
        bid_frame,
        manifest,
        gate_closure_utc=default_run_ts(day, settings),
    )
    result = _result(version_dir, schedule, figures, reused=reused)
    result["fallback"] = manifest["fallback"]
    if log_mlflow and not reused:
        result.update(log_to_mlflow(settings, day, version_dir, figures))
    return result


def fallback_summary(inputs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest's ``fallback``: None for a regular schedule, else its source and reason per zone."""
    zones = {zone: record["fallback"] for zone, record in inputs.items() if record.get("fallback")}
    if not zones:
        return None
    sources = sorted({info["source"] for info in zones.values()})
    return {
        "source": sources[0] if len(sources) == 1 else "mixed",
        "reason": "; ".join(f"{zone}: {info['reason']}" for zone, info in zones.items()),
        "zones": zones,
    }


def _portfolio(settings: Settings, zones: Sequence[str]) -> Portfolio:
    """The validated portfolio (zones known, ConfigError otherwise), with something in every zone run."""
    portfolio = settings.load_portfolio()
    empty = [zone for zone in zones if portfolio.for_zone(zone) == Portfolio()]
    if empty:
        raise ConfigError(
            f"portfolio {settings.portfolio_file} has no retail load, renewables or storage in zone(s) "
            f"{empty} (DAP_ZONES={list(settings.zones)}): the schedule would buy nothing there; add the "
            "zone's entries to the portfolio or remove the zone from DAP_ZONES"
        )
    in_portfolio = {r.zone for r in portfolio.retail_loads} | {r.zone for r in portfolio.renewables}
    elsewhere = sorted(in_portfolio.union(s.zone for s in portfolio.storage) - set(zones))
    if elsewhere:
        log.info("portfolio has entries in zones not scheduled in this run: %s", elsewhere)
    return portfolio


def _timing_shift(settings: Settings, timing_shift: float | None) -> float:
    shift = settings.dispatch_timing_shift if timing_shift is None else timing_shift
    if not 0.0 <= shift <= MAX_TIMING_SHIFT:
        raise ConfigError(
            f"--timing-shift must lie in [0, {MAX_TIMING_SHIFT}] (a probability each way), got {shift}"
        )
    return shift


def _read_forecast(
    layout: Layout, settings: Settings, zone: str, day: date
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A zone's forecast of D and what the manifest records of it (files, model, sources)."""
    import pandas as pd

    path = layout.forecast_file(zone, day)
    sidecar = path.with_suffix(".json")
    if not path.exists():
        raise MissingInputError(f"no forecast for {zone} on {day} at {path}; run tasks.forecast first")
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    if not meta:
        raise MissingInputError(
            f"forecast sidecar {sidecar} is missing; the model version cannot be recorded"
        )
    frame = pd.read_parquet(path)
    record = {
        "forecast_path": str(path.relative_to(settings.data_root)),
        "forecast_sha256": sha256_file(path),
        "sidecar_sha256": sha256_file(sidecar),
        "model_name": meta.get("model_name"),
        "model_version": meta.get("model_version"),
        "run_id": meta.get("run_id"),
        "sources": meta.get("inputs", []),
        "fallback": meta.get("fallback"),
    }
    return frame, record


def _options(settings: Settings, cvar_weight: float, shift: float) -> dict[str, Any]:
    """The optimiser's options as the manifest records them (part of the content digest)."""
    return {
        "cvar_weight": cvar_weight,
        "timing_shift": shift,
        "mtu_minutes": settings.mtu_minutes,
        "quantiles": list(settings.quantiles),
        "portfolio_sha256": sha256_file(Path(settings.portfolio_file)),
        "price_floor": settings.price_floor_eur_mwh,
        "price_cap": settings.price_cap_eur_mwh,
    }


def write_version(
    day_dir: Path,
    day: date,
    schedule: pd.DataFrame,
    bids: pd.DataFrame,
    manifest: dict[str, Any],
    *,
    gate_closure_utc: datetime,
) -> tuple[Path, bool]:
    """Write the files through a staging directory; reuse the newest version if its content is the same.

    ``manifest`` holds everything but the files, rows and digest, which are added here.
    Returns the version directory and whether it was reused. Holds the day's lock,
    under which the staging directories of killed runs are removed first.
    """
    day_dir.mkdir(parents=True, exist_ok=True)
    with day_lock(Layout(day_dir.parent.parent).schedule_lock(day)):
        removed = remove_leftovers(day_dir)
        if removed:
            log.warning("removed leftovers of killed runs in %s: %s", day_dir, removed)
        return _write_version_locked(day_dir, schedule, bids, manifest, gate_closure_utc)


def _write_version_locked(
    day_dir: Path,
    schedule: pd.DataFrame,
    bids: pd.DataFrame,
    manifest: dict[str, Any],
    gate_closure_utc: datetime,
) -> tuple[Path, bool]:
    staging = day_dir / f".staging-{os.getpid()}-{sha256_bytes(os.urandom(8))[:8]}"
    staging.mkdir()
    try:
        sums = _write_files(staging, schedule, bids, SummaryInfo.from_manifest(manifest, gate_closure_utc))
        digest = content_digest(sums, manifest["inputs"], manifest["options"])
        same = _same_content_version(day_dir, digest)
        if same is not None:
            log.info("content equals %s; no new version", same.name)
            return same, True
        full = {
            **manifest,
            "files": {
                name: {"sha256": sums[name], "bytes": (staging / name).stat().st_size}
                for name in SCHEDULE_FILES
            },
            "rows": {"schedule": len(schedule), "bids": len(bids)},
            "content_sha256": digest,
        }
        (staging / "manifest.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
        return commit_version(day_dir, staging), False
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _write_files(
    folder: Path, schedule: pd.DataFrame, bids: pd.DataFrame, info: SummaryInfo
) -> dict[str, str]:
    """Schedule and bids as Parquet and CSV plus the summaries (PNG, HTML); returns each file's sha256."""
    from tasks.summary_plot import render_html, render_summary

    schedule.to_parquet(folder / "schedule.parquet", index=False)
    _csv_frame(schedule).to_csv(folder / "schedule.csv", index=False, float_format="%.6f")
    bids.to_parquet(folder / "bids.parquet", index=False)
    _csv_frame(bids).to_csv(folder / "bids.csv", index=False, float_format="%.1f")
    render_summary(schedule, folder / "summary.png", info)
    render_html(schedule, folder / "summary.html", info, folder / "summary.png")
    return {name: sha256_file(folder / name) for name in SCHEDULE_FILES}


def _same_content_version(day_dir: Path, digest: str) -> Path | None:
    """The newest version if its manifest has this content digest."""
    versions = existing_versions(day_dir)
    if not versions:
        return None
    newest = day_dir / version_name(versions[-1])
    try:
        prev = json.loads((newest / "manifest.json").read_text())
    except (OSError, ValueError):
        prev = {}
    return newest if prev.get("content_sha256") == digest else None


def _result(
    version_dir: Path, schedule: pd.DataFrame, figures: dict[str, dict[str, float]], *, reused: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version_dir": str(version_dir),
        "version": version_dir.name,
        "reused": reused,
        "schedule": str(version_dir / "schedule.parquet"),
        "schedule_csv": str(version_dir / "schedule.csv"),
        "bids": str(version_dir / "bids.parquet"),
        "bids_csv": str(version_dir / "bids.csv"),
        "manifest": str(version_dir / "manifest.json"),
        "summary_png": str(version_dir / "summary.png"),
        "rows": len(schedule),
        "zones": figures,
        "margin_eur": round(sum(f["expected_margin_eur"] for f in figures.values()), 2),
    }
    return out


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    zones = [args.zone] if args.zone else None
    if args.zone and args.zone not in settings.zones:
        raise ConfigError(f"zone {args.zone!r} is not configured; DAP_ZONES={list(settings.zones)}")
    return run_schedule(
        day_arg(args),
        settings,
        zones=zones,
        run_ts=args.run_ts,
        cvar_weight=args.cvar_weight,
        timing_shift=args.timing_shift,
        log_mlflow=not args.no_mlflow,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser("Optimise the day-ahead schedule and bids of a delivery day (all zones by default).")
    parser.add_argument(
        "--run-ts",
        type=parse_run_ts,
        default=None,
        help="Run time recorded as the manifest's created time (ISO, with offset); default: gate closure on D-1.",
    )
    parser.add_argument(
        "--cvar-weight",
        type=float,
        default=0.0,
        help="Weight of CVaR90 of cost over the price quantile scenarios (0: expected cost only).",
    )
    parser.add_argument(
        "--timing-shift",
        type=float,
        default=None,
        help="Probability each way that the price profile is an hour off, for the storage decision "
        "(default: DAP_DISPATCH_TIMING_SHIFT; 0 = decide on the forecast as it is).",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="Do not log the summary to MLflow.")
    return parser


if __name__ == "__main__":
    exit_stage(run_stage(main, build_parser()))
