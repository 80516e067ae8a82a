"""Data quality gate of one delivery day: inputs, features or schedule.

``python -m tasks.validate --delivery-date D --zone Z --dataset inputs|features|schedule
[--schedule-dir PATH]`` runs the GX suites in ``expectations/suites`` (and,
for features, TFDV schema and drift checks), writes the full result to
``reports/gx/<D>/zone=Z/<dataset>.json`` and the Data Docs site, and on a
failed ``fail``-severity check quarantines D (gate marker) and exits 2 with a
message naming the dataset, the day, each failed check with sample rows, and
how to re-run. ``inputs`` covers what a run for D reads (docs/validation.md):
prices of D-1, forecasts of D, actuals of D-2.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks import datasets as ds
from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, ValidationFailed
from tasks.quality import gate, prepare
from tasks.quality.gx_runner import CheckOutcome, SuiteOutcome
from tasks.quality.specs import SeverityPolicy, resolve_suite, zone_limits
from tasks.storage import Layout, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd

    from tasks.quality.gx_runner import GxRunner

log = logging.getLogger(__name__)

DATASETS = ("inputs", "features", "schedule")


def input_days(day: date) -> dict[str, date]:
    """Data day of each processed input that the run for ``day`` reads (tasks.datasets offsets)."""
    return {spec.name: ds.data_day(spec, day) for spec in ds.ALL}


def _missing(name: str, path: Path, data_day: date, policy: SeverityPolicy) -> SuiteOutcome:
    check_name = f"{name}.file_present"
    check = CheckOutcome(
        name=check_name,
        expectation_type="file_present",
        severity=policy(check_name),
        success=False,
        error=f"no processed file {path}",
        why="The dataset was not delivered or not ingested for this data day.",
    )
    return SuiteOutcome(suite=name, data_day=data_day.isoformat(), checks=[check])


def _timeseries_outcome(
    runner: GxRunner,
    suite: str,
    frame: pd.DataFrame,
    data_day: date,
    *,
    zone: str,
    settings: Settings,
    key_columns: tuple[str, ...],
    value_columns: tuple[str, ...],
    extra_params: dict[str, Any],
    policy: SeverityPolicy,
) -> SuiteOutcome:
    tz = settings.market_timezone
    resolution = prepare.observed_resolution(frame, settings.mtu_minutes)
    params = {
        **prepare.timeseries_params(
            frame, data_day, tz, resolution=resolution, key_columns=key_columns, value_columns=value_columns
        ),
        **extra_params,
    }
    spec = resolve_suite(suite, params, policy.rules)
    prepared = prepare.prepare_timeseries(
        frame,
        data_day,
        tz,
        resolution=resolution,
        group_by=tuple(k for k in key_columns if k != "timestamp_utc"),
    )
    outcome = runner.run(spec, prepared, run_key=f"{suite}.{zone}", data_day=data_day.isoformat())
    for check in outcome.checks:
        if not check.success and check.name.split(".")[-1] in {
            "row_count_per_mtu",
            "timestamps_unique",
            "timestamps_contiguous",
        }:
            check.details = prepare.grid_mismatch(frame, data_day, tz, resolution, key_columns=key_columns)
    return outcome


def _limits_params(zone: str, settings: Settings) -> dict[str, Any]:
    return {
        **zone_limits(zone),
        "price_floor_eur_mwh": settings.price_floor_eur_mwh,
        "price_cap_eur_mwh": settings.price_cap_eur_mwh,
        "mtu_minutes": settings.mtu_minutes,
    }


def validate_inputs(
    zone: str,
    day: date,
    settings: Settings,
    runner: GxRunner,
    *,
    read: Callable[[str, date], pd.DataFrame | None] | None = None,
) -> gate.GateResult:
    """Every processed input of the run for ``day`` against its suite."""
    import pandas as pd

    layout = Layout(settings.data_root)
    policy = SeverityPolicy(dict(settings.quality_severity))
    params = _limits_params(zone, settings)

    def read_file(name: str, data_day: date) -> pd.DataFrame | None:
        path = layout.processed_file(name, zone, data_day)
        return pd.read_parquet(path) if path.exists() else None

    reader = read or read_file
    result = gate.GateResult("inputs", zone, day)
    for name, data_day in input_days(day).items():
        spec = ds.BY_NAME[name]
        frame = reader(name, data_day)
        if frame is None:
            result.suites.append(
                _missing(name, layout.processed_file(name, zone, data_day), data_day, policy)
            )
            continue
        result.suites.append(
            _timeseries_outcome(
                runner,
                name,
                frame,
                data_day,
                zone=zone,
                settings=settings,
                key_columns=spec.key_columns,
                value_columns=spec.value_columns,
                extra_params=params,
                policy=policy,
            )
        )
    return result


def validate_features(
    zone: str,
    day: date,
    settings: Settings,
    runner: GxRunner,
    *,
    frame: pd.DataFrame | None = None,
    tfdv: bool = True,
) -> gate.GateResult:
    """The feature rows of ``day`` (GX suite) and, if training statistics exist, TFDV checks."""
    import pandas as pd

    from tasks import features as ft

    layout = Layout(settings.data_root)
    policy = SeverityPolicy(dict(settings.quality_severity))
    result = gate.GateResult("features", zone, day)
    path = layout.features_file(zone, day)
    if frame is None:
        if not path.exists():
            result.suites.append(_missing("features", path, day, policy))
            return result
        frame = pd.read_parquet(path)
    params = {
        **_limits_params(zone, settings),
        "n_slots_minus_one": ft.n_slots(settings.mtu_minutes) - 1,
        "price_columns": list(ft.PRICE_LAG_COLUMNS),
        "load_columns": ["load_mw", *(f"load_mw_lag{k}" for k in ft.EXO_LAGS)],
        "wind_columns": ["wind_mw", *(f"wind_mw_lag{k}" for k in ft.EXO_LAGS)],
        "solar_columns": ["solar_mw", *(f"solar_mw_lag{k}" for k in ft.EXO_LAGS)],
        "weather_columns": list(ft.WEATHER_COLUMNS),
        "calendar_columns": list(ft.CALENDAR_COLUMNS),
    }
    # A neighbour's columns: its own inputs gate checked their ranges; here they must be complete.
    value_columns = (
        *(c for c in ft.SLOT_COLUMNS if c not in ft.WEATHER_COLUMNS),
        *ft.neighbour_columns(settings.neighbours_of(zone)),
    )
    result.suites.append(
        _timeseries_outcome(
            runner,
            "features",
            frame,
            day,
            zone=zone,
            settings=settings,
            key_columns=("timestamp_utc",),
            value_columns=value_columns,
            extra_params=params,
            policy=policy,
        )
    )
    if tfdv:
        from tasks.quality import tfdv_checks

        try:
            tfdv_checks.import_tfdv()
        except ImportError as exc:  # e.g. a slim orchestrator image without TFDV
            name = "features.tfdv.available"
            check = CheckOutcome(
                name=name,
                expectation_type="tfdv_schema",
                severity=policy(name),
                success=False,
                error=f"tensorflow_data_validation cannot be imported ({exc}); schema and drift not checked",
            )
            result.suites.append(
                SuiteOutcome(suite="features.tfdv", data_day=day.isoformat(), checks=[check])
            )
        else:
            result.suites.append(tfdv_checks.serving_outcome(frame, zone, day, settings, policy))
    return result


def validate_schedule(
    zone: str, day: date, settings: Settings, runner: GxRunner, *, schedule_dir: Path | None = None
) -> gate.GateResult:
    """The candidate schedule version of ``day``: rows of ``zone``'s assets and their bids."""
    from tasks.quality import schedule_checks

    return schedule_checks.validate(zone, day, settings, runner, schedule_dir=schedule_dir)


def run_gate(
    dataset: str,
    zone: str,
    day: date,
    settings: Settings | None = None,
    *,
    schedule_dir: Path | None = None,
    runner: GxRunner | None = None,
    tfdv: bool = True,
) -> dict[str, Any]:
    """Validate, write the report, update the gate marker; raise ValidationFailed on a failed check."""
    settings = settings or get_settings()
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset must be one of {DATASETS}, got {dataset!r}")
    if zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (settings.zones = {list(settings.zones)})")
    layout = Layout(settings.data_root)
    if runner is None:
        from tasks.quality.gx_runner import GxRunner

        runner = GxRunner(layout.reports_dir("gx"))
    if dataset == "inputs":
        result = validate_inputs(zone, day, settings, runner)
    elif dataset == "features":
        result = validate_features(zone, day, settings, runner, tfdv=tfdv)
    else:
        from tasks.quality.schedule_checks import newest_version_dir

        schedule_dir = schedule_dir or newest_version_dir(layout, day)
        result = validate_schedule(zone, day, settings, runner, schedule_dir=schedule_dir)
    data_days = {s.suite: s.data_day for s in result.suites}
    to_fix = {s.suite: s.data_day for s in result.suites if s.failed} or data_days
    report = gate.report_file(layout, zone, day, dataset)
    docs = runner.publish_docs()
    rerun = gate.rerun_hint(dataset, zone, day, to_fix)
    write_json_atomic(
        report,
        {
            "dataset": dataset,
            "zone": zone,
            "delivery_day": day.isoformat(),
            "passed": result.passed,
            "data_docs": docs,
            "suites": [
                {
                    "suite": s.suite,
                    "data_day": s.data_day,
                    "rows": s.rows,
                    "passed": s.passed,
                    "data_docs": s.data_docs,
                    "checks": [c.to_dict() for c in s.checks],
                }
                for s in result.suites
            ],
            "rerun": rerun,
        },
    )
    gate.update_gate(layout, result, report=report, data_docs=docs, rerun=rerun)
    if dataset == "schedule" and schedule_dir is not None:
        gate.record_schedule_validation(layout, zone, day, schedule_dir, passed=result.passed)
    for warning in result.warnings:
        log.warning("quality warning %s (zone %s, day %s): %s", warning.name, zone, day, warning.error or "")
    log.info("validation report: %s; data docs: %s", report, docs)
    if not result.passed:
        raise ValidationFailed(
            gate.failure_message(result, report, docs, rerun),
            dataset=dataset,
            delivery_day=day.isoformat(),
            report=str(report),
        )
    return {
        "passed": True,
        "dataset": dataset,
        "zone": zone,
        "report": str(report),
        "data_docs": docs,
        "failed_expectations": [],
        "warnings": sorted({c.name for c in result.warnings}),
        "data_days": data_days,
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    zone = args.zone or settings.zones[0]
    return run_gate(args.dataset, zone, day_arg(args), settings, schedule_dir=args.schedule_dir)


def parser() -> argparse.ArgumentParser:
    p = base_parser("Data quality gate of one delivery day (GX suites + TFDV); fails on bad data.")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="Which data of the day to validate.")
    p.add_argument(
        "--schedule-dir",
        type=Path,
        default=None,
        help="Schedule version directory to validate (default: the newest schedules/day=D/v=NNN).",
    )
    return p


if __name__ == "__main__":
    exit_stage(run_stage(main, parser()))
