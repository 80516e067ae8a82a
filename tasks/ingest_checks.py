"""Content checks of parsed source documents, and the severity of each finding.

The parsers (tasks.sources) reject what is structurally wrong (empty file,
malformed XML/JSON/CSV, wrong document type, unit they cannot read) and return
everything else as delivered. These checks catch what is wrong in content:
intervals missing or duplicated, a DST day with the wrong interval count,
units that do not match the dataset, prices outside the harmonised SDAC
limits, and files that are stale for the run. Each finding has a
machine-readable ``reason``, a one-line ``message`` and a ``severity``:

* ``error`` – the file is quarantined and the ingest task fails at the end
  (after every other file is landed or quarantined);
* ``warning`` – the file is quarantined and the task continues.

The table ``REASONS`` is the single source of truth; docs/ingestion.md shows it.
Pure functions on pandas frames; pandas is imported by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from tasks import datasets as ds
from tasks.timeutil import day_bounds_utc, mtu_count, mtu_starts_utc

if TYPE_CHECKING:
    import pandas as pd

Severity = Literal["error", "warning"]

#: reason -> (severity, what it means). Parser codes (tasks.sources.ParseError) included.
REASONS: dict[str, tuple[Severity, str]] = {
    "empty_file": ("error", "the file has no bytes or no data points"),
    "malformed_xml": ("error", "XML is truncated or not well-formed"),
    "malformed_json": ("error", "JSON cannot be parsed or lacks required fields"),
    "malformed_csv": ("error", "CSV cannot be parsed or lacks required columns"),
    "malformed_document": ("error", "well-formed file whose structure misses required elements"),
    "malformed_number": ("error", "a value is not a plain decimal number (e.g. a decimal comma: 53,2)"),
    "duplicate_position": (
        "error",
        "an ENTSO-E A03 Period repeats a Point position (which value holds is ambiguous)",
    ),
    "no_data": ("error", "the document holds no time series"),
    "unsupported_curve_type": ("error", "ENTSO-E curveType other than A01/A03"),
    "unknown_format": ("error", "the file name/content matches no known source format"),
    "wrong_document_type": ("error", "document type/process type is not what the file claims"),
    "unknown_zone": ("error", "the document's area code maps to no known bidding zone"),
    "unit_mismatch": ("error", "unit differs from the dataset contract (e.g. GW for MW, EUR for EUR/MWh)"),
    "unsupported_resolution": ("error", "resolution is neither PT15M nor PT60M"),
    "unrecognised_file": ("error", "no parser for this file name"),
    "parser_crash": ("error", "the parser raised an unexpected exception (a bug): see details"),
    "duplicate_intervals": ("error", "the same interval is delivered more than once"),
    "missing_intervals": ("error", "intervals of the day are missing"),
    "unexpected_intervals": ("error", "intervals outside the day's MTU grid"),
    "dst_interval_count": ("error", "a 23/25-hour DST day with the wrong number of intervals"),
    "missing_values": ("error", "value cells are empty/NaN"),
    "price_out_of_bounds": ("error", "price outside the harmonised SDAC limits"),
    "stale": ("warning", "the data day is older than this run expects (history mode lands it)"),
    "zone_not_configured": ("warning", "the zone is not one of Settings.zones"),
}

#: For a run of delivery day D: the oldest data day that is still fresh, as D + offset
#: (the day each dataset's run reads, tasks.datasets).
FRESH_FROM_OFFSET: dict[str, int] = {spec.name: spec.day_offset for spec in ds.ALL}

#: Inputs the run for D cannot schedule without: (dataset, offset from D).
REQUIRED_FOR_RUN: tuple[tuple[str, int], ...] = tuple(
    (spec.name, spec.day_offset) for spec in ds.ALL if spec.required_for_run
)
#: Inputs the run uses when present (features fill without them): a warning when absent.
OPTIONAL_FOR_RUN: tuple[tuple[str, int], ...] = tuple(
    (spec.name, spec.day_offset) for spec in ds.ALL if not spec.required_for_run
)


@dataclass(frozen=True)
class Issue:
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return severity_of(self.reason)


def severity_of(reason: str) -> Severity:
    return REASONS.get(reason, ("error", ""))[0]


def required_inputs(run_day: date) -> list[tuple[str, date]]:
    return [(name, run_day + timedelta(days=off)) for name, off in REQUIRED_FOR_RUN]


def optional_inputs(run_day: date) -> list[tuple[str, date]]:
    return [(name, run_day + timedelta(days=off)) for name, off in OPTIONAL_FOR_RUN]


def check_stale(dataset: str, day: date, run_day: date) -> Issue | None:
    """A file is stale *for the run of D* when its day is older than the run expects."""
    offset = FRESH_FROM_OFFSET.get(dataset)
    if offset is None:
        return None
    fresh_from = run_day + timedelta(days=offset)
    if day < fresh_from:
        return Issue(
            "stale",
            f"{dataset} for {day} is stale for the run of {run_day} (expects {fresh_from} or later); "
            "land it with --history",
            {"day": day.isoformat(), "fresh_from": fresh_from.isoformat()},
        )
    return None


def local_days(frame: pd.DataFrame, tz: str) -> list[date]:
    """Distinct local market days the interval starts fall on."""
    if frame.empty:
        return []
    stamps = frame["timestamp_utc"]
    zone = ZoneInfo(tz)
    first, last = stamps.min().astimezone(zone).date(), stamps.max().astimezone(zone).date()
    if first == last:  # the usual one-day document: no per-row conversion
        return [first]
    local = stamps.dt.tz_convert(tz)
    return sorted({d.date() for d in local.dt.normalize().unique()})


@lru_cache(maxsize=4096)
def _grid_ns(day: date, tz: str, minutes: int) -> frozenset[int]:
    return frozenset(int(t.timestamp()) * 1_000_000_000 for t in mtu_starts_utc(day, tz, minutes))


def _is_dst_day(day: date, tz: str) -> bool:
    start, end = day_bounds_utc(day, tz)
    return end - start != timedelta(hours=24)


def _fmt(ns: Iterable[int], tz: str, limit: int = 3) -> list[str]:
    zone = ZoneInfo(tz)
    out = []
    for value in sorted(ns)[:limit]:
        moment = datetime.fromtimestamp(value / 1e9, tz=zone)
        out.append(moment.isoformat(timespec="minutes"))
    return out


def check_intervals(frame: pd.DataFrame, *, dataset: str, day: date, tz: str, resolution: int) -> list[Issue]:
    """Duplicates, DST counts, missing and off-grid intervals of one data day."""
    spec = ds.BY_NAME[dataset]
    extra_keys = [k for k in spec.key_columns if k != "timestamp_utc"]
    if len(extra_keys) > 1:
        raise ValueError(f"{dataset}: at most one key column besides timestamp_utc is supported")
    issues: list[Issue] = []
    expected = _grid_ns(day, tz, resolution)
    groups = frame.groupby(extra_keys[0], sort=True) if extra_keys else [("", frame)]
    for key, group in groups:
        label = f" ({', '.join(extra_keys)}={key})" if extra_keys else ""
        stamps = group["timestamp_utc"].astype("int64").to_numpy()
        unique = set(stamps.tolist())
        n_dup = len(stamps) - len(unique)
        if n_dup:
            dup_vals = group["timestamp_utc"][group["timestamp_utc"].duplicated()].astype("int64")
            issues.append(
                Issue(
                    "duplicate_intervals",
                    f"{dataset} {day}{label}: {n_dup} duplicate interval(s), e.g. {_fmt(dup_vals, tz, 1)[0]}",
                    {"count": n_dup, "examples": _fmt(dup_vals, tz)},
                )
            )
        missing = expected - unique
        extra = unique - expected
        n_expected = mtu_count(day, tz, resolution)
        if (missing or extra) and _is_dst_day(day, tz):
            hours = n_expected * resolution // 60
            issues.append(
                Issue(
                    "dst_interval_count",
                    f"{dataset} {day}{label} is a {hours}-hour day: got {len(unique)} intervals, "
                    f"expected {n_expected} at {resolution} min",
                    {"got": len(unique), "expected": n_expected, "missing": _fmt(missing, tz)},
                )
            )
        elif missing:
            issues.append(
                Issue(
                    "missing_intervals",
                    f"{dataset} {day}{label}: {len(missing)} of {n_expected} intervals missing, "
                    f"first {_fmt(missing, tz, 1)[0]}",
                    {"count": len(missing), "examples": _fmt(missing, tz)},
                )
            )
        if extra and not _is_dst_day(day, tz):
            issues.append(
                Issue(
                    "unexpected_intervals",
                    f"{dataset} {day}{label}: {len(extra)} interval(s) off the {resolution}-min grid, "
                    f"e.g. {_fmt(extra, tz, 1)[0]}",
                    {"count": len(extra), "examples": _fmt(extra, tz)},
                )
            )
    return issues


def check_document(
    frame: pd.DataFrame,
    *,
    dataset: str,
    unit: str,
    resolution: int,
    day: date,
    tz: str,
    price_floor: float,
    price_cap: float,
) -> list[Issue]:
    """All content checks of one dataset-day; an empty list means it may be processed."""
    spec = ds.BY_NAME.get(dataset)
    if spec is None:
        return [Issue("unrecognised_file", f"unknown dataset {dataset!r}")]
    issues: list[Issue] = []
    # One unit per value column, comma-joined (weather: "degC,m/s,W/m2"), or one for all.
    expected_units = {",".join(spec.units)} | ({spec.units[0]} if len(set(spec.units)) == 1 else set())
    if unit not in expected_units:
        issues.append(
            Issue(
                "unit_mismatch",
                f"{dataset} {day}: unit {unit!r}, expected {'/'.join(sorted(expected_units))}",
                {"unit": unit, "expected": sorted(expected_units)},
            )
        )
    if resolution not in (15, 60):
        issues.append(
            Issue("unsupported_resolution", f"{dataset} {day}: resolution {resolution} min (15 or 60 only)")
        )
        return issues
    if frame.empty:
        return [*issues, Issue("empty_file", f"{dataset} {day}: no data points")]
    missing_cols = [c for c in (*spec.key_columns, *spec.value_columns) if c not in frame.columns]
    if missing_cols:
        return [*issues, Issue("parser_crash", f"{dataset} {day}: parser gave no column(s) {missing_cols}")]
    issues += check_intervals(frame, dataset=dataset, day=day, tz=tz, resolution=resolution)
    values = frame[list(spec.value_columns)]
    n_nan = int(values.isna().to_numpy().sum())
    if n_nan:
        issues.append(
            Issue("missing_values", f"{dataset} {day}: {n_nan} empty value cell(s)", {"count": n_nan})
        )
    if dataset == ds.PRICES.name:
        prices = frame["price_eur_mwh"]
        bad = frame[(prices < price_floor) | (prices > price_cap)]
        if len(bad):
            worst = float(bad["price_eur_mwh"].abs().max())
            first = bad.iloc[0]
            issues.append(
                Issue(
                    "price_out_of_bounds",
                    f"{dataset} {day}: {len(bad)} price(s) outside [{price_floor:g}, {price_cap:g}] EUR/MWh, "
                    f"e.g. {float(first['price_eur_mwh']):g} at "
                    f"{_fmt([int(first['timestamp_utc'].value)], tz, 1)[0]}",
                    {"count": len(bad), "max_abs": worst},
                )
            )
    return issues
