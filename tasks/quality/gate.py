"""Gate outcome: the report users open, the quarantine marker, the error.

A delivery day that fails a ``fail``-severity check gets a marker at
``Layout.gate_file(zone, D)`` listing, per dataset, the failed checks, where
the full report is and how to re-run the day; the features, training and
schedule stages refuse gated days. A later passing validation of the same
dataset removes its entry (and the file once no dataset is left failing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.storage import Layout, write_json_atomic

if TYPE_CHECKING:
    from tasks.quality.gx_runner import CheckOutcome, SuiteOutcome

MAX_CHECKS_IN_MESSAGE = 8
DAG_ID = "day_ahead_daily"


@dataclass
class GateResult:
    """Everything one ``tasks.validate`` run found for one dataset group."""

    dataset: str
    zone: str
    delivery_day: date
    suites: list[SuiteOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckOutcome]:
        return [c for s in self.suites for c in s.failed]

    @property
    def warnings(self) -> list[CheckOutcome]:
        return [c for s in self.suites for c in s.warnings]

    @property
    def passed(self) -> bool:
        return not self.failed


def rerun_hint(dataset: str, zone: str, day: date, data_days: dict[str, str]) -> list[str]:
    """What to fix and the commands that re-run (backfill) the day afterwards."""
    d = day.isoformat()
    fix = {
        "inputs": "fix or re-deliver the source files of "
        + ", ".join(f"{k} ({v})" for k, v in sorted(data_days.items()))
        + f", then re-ingest: python -m tasks.ingest --delivery-date {d} --zone {zone}",
        "features": "fix the inputs the failed features come from, then rebuild: "
        f"python -m tasks.features --delivery-date {d} --zone {zone}",
        "schedule": "check the forecasts and the portfolio (config/portfolio.json), then re-optimise: "
        f"python -m tasks.schedule --delivery-date {d}",
    }[dataset]
    return [
        fix,
        f"python -m tasks.validate --delivery-date {d} --zone {zone} --dataset {dataset}",
        f"re-run the whole day in Airflow: airflow dags trigger {DAG_ID} --conf "
        f'\'{{"delivery_date": "{d}"}}\' (or clear the failed task of that run)',
    ]


def _check_line(check: CheckOutcome, suite: SuiteOutcome) -> str:
    parts = [f"  - {check.name} [{check.expectation_type}] on {suite.suite} {suite.data_day}"]
    if check.error:
        parts.append(f"error: {check.error}")
    if check.unexpected_count:
        parts.append(f"{check.unexpected_count} bad rows")
    elif check.observed is not None and not isinstance(check.observed, list):
        parts.append(f"observed {check.observed}")
    for key, values in check.details.items():
        if values:
            parts.append(f"{key}: {values}")
    if check.sample:
        parts.append(f"e.g. {json.dumps(check.sample[:2], default=str)}")
    return "; ".join(parts)


def failure_message(result: GateResult, report: Path, data_docs: str, rerun: list[str]) -> str:
    """Names the dataset, the day, each failed check with sample rows, the report and the fix."""
    lines = [
        f"data quality gate '{result.dataset}' failed for zone {result.zone} delivery day "
        f"{result.delivery_day.isoformat()}: {len(result.failed)} failed check(s)"
    ]
    shown = 0
    for suite in result.suites:
        for check in suite.failed:
            if shown < MAX_CHECKS_IN_MESSAGE:
                lines.append(_check_line(check, suite))
            shown += 1
    if shown > MAX_CHECKS_IN_MESSAGE:
        lines.append(f"  ... and {shown - MAX_CHECKS_IN_MESSAGE} more (see the report)")
    lines.append(f"report: {report}")
    if data_docs:
        lines.append(f"data docs: {data_docs}")
    lines.append("the day is quarantined (no features, training or schedule); to fix and re-run:")
    lines.extend(f"  {step}" for step in rerun)
    return "\n".join(lines)


def report_file(layout: Layout, zone: str, day: date, dataset: str) -> Path:
    return layout.reports_dir("gx", day) / f"zone={zone}" / f"{dataset}.json"


def update_gate(
    layout: Layout, result: GateResult, *, report: Path, data_docs: str, rerun: list[str]
) -> Path | None:
    """Write (fail) or clear (pass) this dataset's entry in the day's gate marker."""
    path = layout.gate_file(result.zone, result.delivery_day)
    marker: dict[str, Any] = {}
    if path.exists():
        try:
            marker = json.loads(path.read_text())
        except json.JSONDecodeError:
            marker = {}
    datasets: dict[str, Any] = marker.get("datasets", {})
    if result.passed:
        datasets.pop(result.dataset, None)
        if not datasets:
            if path.exists():
                path.unlink()
            return None
    else:
        datasets[result.dataset] = {
            "failed_expectations": [
                {"name": c.name, "suite": s.suite, "data_day": s.data_day, "sample": c.sample[:3]}
                for s in result.suites
                for c in s.failed
            ],
            "report": str(report),
            "data_docs": data_docs,
            "rerun": rerun,
        }
    marker = {
        "zone": result.zone,
        "delivery_day": result.delivery_day.isoformat(),
        "datasets": datasets,
    }
    return write_json_atomic(path, marker)


def record_schedule_validation(
    layout: Layout, zone: str, day: date, version_dir: Path, *, passed: bool
) -> Path | None:
    """Record (pass) or withdraw (fail) a schedule version of ``day`` as validated for ``zone``.

    ``tasks.publish`` publishes only a version recorded here for every zone it
    covers, with the same manifest sha256. A directory that is not one of the
    day's versions (e.g. a copy under test) is not recorded.
    """
    from tasks.storage import sha256_file

    if version_dir.resolve().parent != layout.schedule_dir(day).resolve():
        return None
    path = layout.schedule_validation_file(zone, day)
    versions = validated_schedule_versions(layout, zone, day)
    manifest = version_dir / "manifest.json"
    if passed and manifest.exists():
        versions[version_dir.name] = {"manifest_sha256": sha256_file(manifest)}
    else:
        versions.pop(version_dir.name, None)
    record = {"zone": zone, "delivery_day": day.isoformat(), "versions": versions}
    return write_json_atomic(path, record)


def validated_schedule_versions(layout: Layout, zone: str, day: date) -> dict[str, Any]:
    """Version name -> ``{"manifest_sha256": ...}`` of the versions the schedule gate passed for ``zone``."""
    path = layout.schedule_validation_file(zone, day)
    try:
        versions = json.loads(path.read_text()).get("versions", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return versions if isinstance(versions, dict) else {}


def gated_datasets(layout: Layout, zone: str, day: date) -> list[str]:
    """Datasets that currently quarantine the day (empty when the day is clean)."""
    path = layout.gate_file(zone, day)
    if not path.exists():
        return []
    try:
        return sorted(json.loads(path.read_text()).get("datasets", {}) or ["unknown"])
    except json.JSONDecodeError:
        return ["unreadable-marker"]
