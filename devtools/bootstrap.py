"""Land a range of history through the embedded ingestion path.

``python -m devtools.bootstrap --first-day A --last-day B [--zone Z ...]``

For a first deployment (or the demo) the models need history to train on. This
stage asks the configured embedded source (simulator or replay) for every file
the sources published over [A, B], lands them exactly as the daily ingest does
(immutable raw, provenance, quarantine, processed Parquet) and builds the
feature tables of those days. Days whose processed prices already exist are not
asked for again, so re-running is cheap and idempotent.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date, timedelta
from typing import Any

from devtools.settings import SimulatorSettings
from tasks.cli import emit_result, setup_logging
from tasks.config import Settings, get_settings
from tasks.datasets import PRICES
from tasks.errors import ConfigError, PipelineError
from tasks.objectstore import mirrored
from tasks.storage import Layout
from tasks.timeutil import days, parse_day

log = logging.getLogger(__name__)


def missing_days(settings: Settings, zone: str, first: date, last: date) -> list[date]:
    layout = Layout(settings.data_root)
    return [d for d in days(first, last) if not layout.processed_file(PRICES.name, zone, d).exists()]


def _progress(label: str) -> Any:
    state = {"last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - state["last"] > 2:
            state["last"] = now
            print(f"  {label}: {done}/{total}", flush=True)

    return report


def bootstrap(settings: Settings, first: date, last: date, zones: tuple[str, ...]) -> dict[str, Any]:
    from tasks.features import backfill
    from tasks.ingest import ingest_inbox

    if first > last:
        raise ConfigError(f"--first-day {first} is after --last-day {last}")
    inbox = settings.inbox
    published = 0
    for zone in zones:
        todo = missing_days(settings, zone, first, last)
        if not todo:
            print(f"  {zone}: history {first}..{last} already landed", flush=True)
            continue
        lo, hi = todo[0], todo[-1]
        if settings.source == "simulator":
            # Two extra days so actuals (published with a two-day lag) cover the range too.
            hi = min(todo[-1] + timedelta(days=2), last + timedelta(days=2))
            from devtools.simulator import publish_history

            files = publish_history(
                settings, lo, hi, inbox, zones=[zone], progress=_progress(f"{zone} simulate")
            )
        elif settings.source == "replay":
            from devtools.simulator.replay import replay_history

            # Replay has no actuals to extend the range for: a CSV's last day can be the range's last.
            csv = SimulatorSettings().replay_csv_for(zone)
            files = replay_history(settings, csv, lo, hi, inbox, zones=[zone])
        else:
            files = []
        published += len(files)
    report = ingest_inbox(settings, run_day=None, history=True, progress=_progress("ingest"))
    report.raise_for_errors()
    features: dict[str, int] = {}
    for zone in zones:
        # Lags reach back a week: the first week of history has no complete feature rows.
        built, skipped = backfill(zone, first + timedelta(days=7), last, settings)
        features[zone] = len(built)
        print(f"  {zone}: feature tables for {len(built)} days ({len(skipped)} skipped)", flush=True)
        for day, reason in list(skipped.items())[:5]:
            log.warning("features of %s %s skipped: %s", zone, day, reason)
    summary = {
        "landed": len(report.landed),
        "quarantined": len(report.quarantined),
        "warnings": len(report.warnings),
    }
    return {
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "zones": list(zones),
        "published_files": published,
        "ingest": summary,
        "feature_days": features,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first-day", type=parse_day, required=True)
    parser.add_argument("--last-day", type=parse_day, required=True)
    parser.add_argument("--zone", action="append", default=None, help="Default: all configured zones.")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    settings = get_settings()
    zones = tuple(args.zone) if args.zone else settings.zones
    try:
        with mirrored(settings):  # DAP_DATA_URL: the history lands on the object store
            result = bootstrap(settings, args.first_day, args.last_day, zones)
    except PipelineError as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    emit_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
