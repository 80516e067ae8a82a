"""Time the embedded ingest of one year of 15-minute data, all sources, one zone.

    PYTHONPATH=. .venv/bin/python benchmarks/ingest_benchmark.py [--days 365] [--zone DE_LU] [--mtu 15]

Writes the year's source files with the simulator (timed separately: that is
the sources' cost, not ingest's), then times ``tasks.ingest.ingest_inbox`` in
history mode over them, then times a second pass over the same files (the
idempotent re-ingest). Target: ingest <= 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--first-day", default="2025-01-01")
    parser.add_argument("--zone", default="DE_LU")
    parser.add_argument("--mtu", type=int, default=15, choices=(15, 60))
    parser.add_argument("--workers", type=int, default=None, help="ingest processes (default: one per CPU)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        os.environ["DAP_DATA_ROOT"] = str(Path(tmp) / "data")
        os.environ["DAP_MTU_MINUTES"] = str(args.mtu)
        os.environ["DAP_ZONES"] = args.zone
        from devtools.simulator import publish_history
        from tasks.config import get_settings
        from tasks.ingest import ingest_inbox

        settings = get_settings()
        first = date.fromisoformat(args.first_day)
        last = first + timedelta(days=args.days - 1)

        t0 = time.perf_counter()
        files = publish_history(settings, first, last, settings.inbox, [args.zone])
        t_publish = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        print(
            f"simulator: wrote {len(files)} files ({size_mb:.1f} MB) for {args.days} days in {t_publish:.1f} s"
        )

        load = os.getloadavg()[0]
        c0 = _cpu()
        t0 = time.perf_counter()
        report = ingest_inbox(settings, run_day=None, history=True, workers=args.workers)
        t_ingest = time.perf_counter() - t0
        cpu = _cpu() - c0
        print(
            f"ingest:    {len(report.landed)} landed, {len(report.quarantined)} quarantined, "
            f"{len(set(report.processed))} processed files in {t_ingest:.1f} s wall "
            f"({len(files) / t_ingest:.0f} files/s), {cpu:.1f} s CPU (all processes); "
            f"load average before: {load:.1f} on {os.cpu_count()} cores"
        )
        if report.quarantined:
            print("  quarantined e.g.:", report.quarantined[0])

        publish_history(settings, first, last, settings.inbox, [args.zone])  # the same bytes again
        t0 = time.perf_counter()
        again = ingest_inbox(settings, run_day=None, history=True, workers=args.workers)
        t_again = time.perf_counter() - t0
        new = sum(1 for x in again.landed if x["new"])
        print(f"re-ingest: {len(again.landed)} files, {new} new revisions, in {t_again:.1f} s")
        print(
            f"target: ingest <= 30 s on 2 cores -> {'met' if t_ingest <= 30 else 'NOT met'} ({t_ingest:.1f} s)"
        )


if __name__ == "__main__":
    main()
