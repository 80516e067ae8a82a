"""Stage metrics, pushed to a Prometheus Pushgateway when one is configured.

Every stage run by :func:`tasks.cli.run_stage` ends with :func:`push_stage_metrics`:
the generic figures (duration, exit code, when it finished, the delivery day's
publish deadline and gate closure) and the stage's own figures, read from its
result (ingest: files landed and quarantined by reason; validate: the gate;
train: training time; forecast: model age and the champion's hold-out error;
schedule: expected margin, energy bought and sold; publish: when the schedule
went out; realise: realised value and forecast quality).

Grouping key: ``job`` (``DAP_METRICS_JOB``), ``stage``, ``zone`` (``all`` for
day-level stages) and ``delivery_day``. Day-level stages push their per-zone
figures in the group of each zone. With ``DAP_PUSHGATEWAY_URL`` empty nothing is
pushed; an unreachable or slow gateway (cut off after ``DAP_PUSHGATEWAY_TIMEOUT_S``)
costs a warning, never the stage's result or exit code.

Metrics describe when things happened, so this module reads the wall clock
(``*_timestamp_seconds``); no stage output depends on it. :data:`METRICS` is the
one list of what the pipeline exports (the dashboard and alert-rule tests check
their queries against it). Docs: docs/operations.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from tasks.config import Settings

log = logging.getLogger("tasks.metrics")

#: Zone label of day-level stages' own figures (schedule, publish).
ALL_ZONES = "all"


@dataclass(frozen=True)
class MetricDef:
    """One exported gauge: name, help text and labels beyond the grouping key."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


METRICS: tuple[MetricDef, ...] = (
    # Every stage.
    MetricDef("dap_stage_duration_seconds", "Wall time of the stage command."),
    MetricDef("dap_stage_exit_code", "Exit code of the stage (0 ok, 2 pipeline error, 75 server down)."),
    MetricDef("dap_stage_success", "1 if the stage succeeded, else 0."),
    MetricDef("dap_stage_finished_timestamp_seconds", "When the stage finished (Unix time)."),
    MetricDef(
        "dap_schedule_deadline_timestamp_seconds", "Publish deadline of the delivery day (D-1, Unix time)."
    ),
    MetricDef(
        "dap_gate_closure_timestamp_seconds", "Day-ahead gate closure of the delivery day (Unix time)."
    ),
    # ingest
    MetricDef("dap_ingest_files_landed", "Source files landed in raw/."),
    MetricDef("dap_ingest_files_quarantined", "Source files quarantined, by reason.", ("reason",)),
    MetricDef("dap_ingest_processed_files", "Processed Parquet files written or confirmed."),
    MetricDef("dap_ingest_errors", "Ingest errors (the stage fails when > 0)."),
    # validate
    MetricDef("dap_gate_passed", "1 if the quality gate passed, 0 if it failed.", ("dataset",)),
    MetricDef("dap_gate_warnings", "Checks of the gate that only warned.", ("dataset",)),
    # train / forecast
    MetricDef("dap_training_duration_seconds", "Wall time of a training that ran (not when not due)."),
    MetricDef("dap_training_ran", "1 if a model was trained, 0 if training was not due."),
    MetricDef("dap_model_version", "Registry version of the champion that made the forecast."),
    MetricDef("dap_model_age_days", "Days from the champion's training day to the delivery day."),
    MetricDef("dap_champion_holdout_mae_eur_mwh", "Hold-out MAE of the champion that made the forecast."),
    # schedule / publish
    MetricDef("dap_schedule_expected_margin_eur", "Expected storage margin of the schedule."),
    MetricDef("dap_schedule_expected_cost_eur", "Expected cost of the zone's day-ahead position."),
    MetricDef("dap_schedule_energy_bought_mwh", "Energy the schedule buys."),
    MetricDef("dap_schedule_energy_sold_mwh", "Energy the schedule sells."),
    MetricDef("dap_schedule_storage_cycles", "Storage cycles of the schedule."),
    MetricDef("dap_schedule_published_timestamp_seconds", "When the schedule of the day was published."),
    MetricDef("dap_schedule_publish_margin_seconds", "Gate closure minus publish time (negative: too late)."),
    # realise
    MetricDef("dap_realised_profit_eur", "Storage profit of the published schedule at the actual prices."),
    MetricDef("dap_realised_perfect_foresight_profit_eur", "Storage profit on the actual prices (same LP)."),
    MetricDef("dap_realised_capture_ratio", "Realised / perfect-foresight profit."),
    MetricDef("dap_realised_expected_margin_eur", "The schedule's expected margin (at the forecast)."),
    MetricDef(
        "dap_realised_forecast_mae_eur_mwh", "MAE of the median price forecast against the actual prices."
    ),
    MetricDef("dap_realised_interval_coverage_ratio", "Share of actual prices inside the forecast P10-P90."),
    MetricDef("dap_realised_capture_ratio_recent_mean", "Mean capture of the recent realised days before D."),
    MetricDef(
        "dap_realised_forecast_mae_recent_mean_eur_mwh", "Mean forecast MAE of the recent realised days."
    ),
)
BY_NAME: dict[str, MetricDef] = {m.name: m for m in METRICS}


def definitions_registry() -> CollectorRegistry:
    """Every exported metric registered once in a fresh registry (what the dashboard may query)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    for m in METRICS:
        Gauge(m.name, m.help, labelnames=m.labels, registry=registry)
    return registry


def exported_metric_names() -> set[str]:
    """Names of the metrics the pipeline exports, read from :func:`definitions_registry`."""
    return {metric.name for metric in definitions_registry().collect()}


@dataclass
class Group:
    """Samples of one push group (one zone of one stage and day)."""

    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    def set(self, name: str, value: float | int | None, **labels: str) -> None:
        if value is None or not math.isfinite(float(value)):
            return
        spec = BY_NAME[name]  # KeyError: a metric that is not in METRICS
        if set(labels) != set(spec.labels):
            raise ValueError(f"{name} takes labels {spec.labels}, got {sorted(labels)}")
        self.samples.setdefault(name, []).append((labels, float(value)))

    def registry(self) -> CollectorRegistry:
        from prometheus_client import CollectorRegistry, Gauge

        registry = CollectorRegistry()
        for name, samples in self.samples.items():
            spec = BY_NAME[name]
            gauge = Gauge(name, spec.help, labelnames=spec.labels, registry=registry)
            for labels, value in samples:
                (gauge.labels(**labels) if spec.labels else gauge).set(value)
        return registry


@dataclass
class StageRun:
    """What :func:`tasks.cli.run_stage` knows about a finished stage."""

    stage: str
    day: date
    zone: str | None
    duration_s: float
    exit_code: int
    result: Mapping[str, Any] | None = None
    error: BaseException | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    finished: float = field(default_factory=time.time)


def local_moment_utc(day: date, hh_mm: str, tz: str) -> datetime:
    """``hh_mm`` market time on ``day`` as a UTC datetime."""
    hh, mm = (int(v) for v in hh_mm.split(":"))
    return datetime.combine(day, dtime(hh, mm), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def collect(run: StageRun, settings: Settings) -> dict[str, Group]:
    """Push groups (by zone label) of a finished stage: generic figures plus the stage's own."""
    groups: dict[str, Group] = {}
    own = run.zone or ALL_ZONES

    def group(zone: str) -> Group:
        return groups.setdefault(zone, Group())

    generic = group(own)
    generic.set("dap_stage_duration_seconds", run.duration_s)
    generic.set("dap_stage_exit_code", run.exit_code)
    generic.set("dap_stage_success", 1 if run.exit_code == 0 else 0)
    generic.set("dap_stage_finished_timestamp_seconds", run.finished)
    before = effective_day(run) - timedelta(days=1)
    tz = settings.market_timezone
    deadline = local_moment_utc(before, settings.publish_deadline_local, tz).timestamp()
    gate_closure = local_moment_utc(before, settings.gate_closure_local, tz).timestamp()
    generic.set("dap_schedule_deadline_timestamp_seconds", deadline)
    generic.set("dap_gate_closure_timestamp_seconds", gate_closure)
    extractor = STAGE_METRICS.get(run.stage)
    if extractor is not None:
        extractor(run, group, gate_closure)
    return groups


def _ingest(run: StageRun, group: Callable[[str], Group], _gc: float) -> None:
    result = run.result
    if result is None:
        return
    g = group(run.zone or ALL_ZONES)
    g.set("dap_ingest_files_landed", len(result.get("landed", [])))
    g.set("dap_ingest_processed_files", len(result.get("processed", [])))
    g.set("dap_ingest_errors", len(result.get("errors", [])))
    reasons: dict[str, int] = {}
    for item in result.get("quarantined", []):
        reason = str(item.get("reason") or "unknown")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items()):
        g.set("dap_ingest_files_quarantined", count, reason=reason)


def _validate(run: StageRun, group: Callable[[str], Group], _gc: float) -> None:
    from tasks.errors import ValidationFailed

    g = group(run.zone or ALL_ZONES)
    if run.result is not None:
        dataset = str(run.result.get("dataset") or run.args.get("dataset") or "unknown")
        g.set("dap_gate_passed", 1, dataset=dataset)
        g.set("dap_gate_warnings", len(run.result.get("warnings", [])), dataset=dataset)
    elif isinstance(run.error, ValidationFailed):
        dataset = run.error.dataset or str(run.args.get("dataset") or "unknown")
        g.set("dap_gate_passed", 0, dataset=dataset)


def _train(run: StageRun, group: Callable[[str], Group], _gc: float) -> None:
    if run.result is None:
        return
    g = group(run.zone or ALL_ZONES)
    ran = not run.result.get("skipped", False)
    g.set("dap_training_ran", 1 if ran else 0)
    if ran:
        g.set("dap_training_duration_seconds", run.duration_s)


def _forecast(run: StageRun, group: Callable[[str], Group], _gc: float) -> None:
    result = run.result
    if result is None:
        return
    g = group(run.zone or ALL_ZONES)
    g.set("dap_model_version", result.get("model_version"))
    g.set("dap_champion_holdout_mae_eur_mwh", result.get("model_holdout_mae"))
    trained_for = result.get("model_trained_for")
    if trained_for:
        g.set("dap_model_age_days", (effective_day(run) - date.fromisoformat(str(trained_for))).days)


_SCHEDULE_FIGURES = {
    "expected_margin_eur": "dap_schedule_expected_margin_eur",
    "expected_cost_eur": "dap_schedule_expected_cost_eur",
    "energy_bought_mwh": "dap_schedule_energy_bought_mwh",
    "energy_sold_mwh": "dap_schedule_energy_sold_mwh",
    "storage_cycles": "dap_schedule_storage_cycles",
}


def _schedule(run: StageRun, group: Callable[[str], Group], _gc: float) -> None:
    if run.result is None:
        return
    for zone, figures in (run.result.get("zones") or {}).items():
        g = group(str(zone))
        for key, name in _SCHEDULE_FIGURES.items():
            g.set(name, figures.get(key))


def _publish(run: StageRun, group: Callable[[str], Group], gate_closure: float) -> None:
    if run.result is None or not run.result.get("published"):
        return
    g = group(run.zone or ALL_ZONES)
    g.set("dap_schedule_published_timestamp_seconds", run.finished)
    g.set("dap_schedule_publish_margin_seconds", gate_closure - run.finished)


_REALISED = {
    "realised_profit_eur": "dap_realised_profit_eur",
    "perfect_foresight_profit_eur": "dap_realised_perfect_foresight_profit_eur",
    "capture_ratio": "dap_realised_capture_ratio",
    "expected_margin_eur": "dap_realised_expected_margin_eur",
    "forecast_mae_eur_mwh": "dap_realised_forecast_mae_eur_mwh",
    "interval_coverage": "dap_realised_interval_coverage_ratio",
    "capture_ratio_recent_mean": "dap_realised_capture_ratio_recent_mean",
    "forecast_mae_recent_mean_eur_mwh": "dap_realised_forecast_mae_recent_mean_eur_mwh",
}


def _realise(run: StageRun, group: Callable[[str], Group], _gc: float) -> None:
    result = run.result
    if result is None or result.get("skipped"):
        return
    g = group(str(result.get("zone") or run.zone or ALL_ZONES))
    for key, name in _REALISED.items():
        g.set(name, result.get(key))


STAGE_METRICS: dict[str, Callable[[StageRun, Callable[[str], Group], float], None]] = {
    "ingest": _ingest,
    "validate": _validate,
    "train": _train,
    "forecast": _forecast,
    "schedule": _schedule,
    "publish": _publish,
    "realise": _realise,
}


def grouping_key(run: StageRun, zone: str) -> dict[str, str]:
    """Pushgateway grouping key of one group (``job`` is passed separately)."""
    return {"stage": run.stage, "zone": zone, "delivery_day": effective_day(run).isoformat()}


def push_stage_metrics(run: StageRun, settings: Settings) -> int:
    """Push the stage's groups; returns how many were pushed. Never raises: monitoring down is a warning.

    Replaces each group (PUT), so re-running a stage for a day overwrites its figures.
    ``realise`` settles an earlier day and reports under the day it settled.
    """
    url = settings.pushgateway_url.strip()
    if not url:
        return 0
    pushed = 0
    started = time.perf_counter()
    try:
        for zone, grp in collect(run, settings).items():
            if not grp.samples:
                continue
            key = grouping_key(run, zone)
            _push(url, settings, key, grp.registry())
            pushed += 1
    except Exception as exc:  # monitoring must never fail the stage
        log.warning(
            "metrics of %s for %s not pushed to %s (%s: %s); the stage result is unaffected",
            run.stage,
            run.day,
            url,
            type(exc).__name__,
            exc,
        )
        return pushed
    log.info("pushed %d metric group(s) to %s in %.2f s", pushed, url, time.perf_counter() - started)
    return pushed


def effective_day(run: StageRun) -> date:
    """The day the figures belong to: the run's day, or the day a realise run settled."""
    if run.stage == "realise" and run.result and run.result.get("delivery_date"):
        return date.fromisoformat(str(run.result["delivery_date"]))
    return run.day


def _push(url: str, settings: Settings, key: dict[str, str], registry: CollectorRegistry) -> None:
    from prometheus_client import push_to_gateway

    push_to_gateway(
        url,
        job=settings.metrics_job,
        registry=registry,
        grouping_key=key,
        timeout=settings.pushgateway_timeout_s,
    )
