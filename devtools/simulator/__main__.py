"""Publish simulated (or replayed) source files into the inbox: the development upstream.

``python -m devtools.simulator --delivery-date D [--zone Z ...]`` writes what the
configured source (``DAP_SOURCE``) had published by gate closure for the run of
D: the step the daily DAG runs before ingest when no NiFi fills the inbox.
``--first-day 2025-11-01 --last-day 2026-11-27`` instead writes every source file
of every day of the range. ``--replay-csv PATH`` serves an epftoolbox-layout CSV
instead of simulating; ``--seed N`` changes the simulated market.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from devtools.settings import SimulatorSettings
from tasks.cli import emit_result, setup_logging
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, PipelineError
from tasks.objectstore import mirrored
from tasks.timeutil import parse_day


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first-day", type=parse_day)
    parser.add_argument("--last-day", type=parse_day)
    parser.add_argument("--delivery-date", type=parse_day, help="Publish only what the run of this day sees.")
    parser.add_argument(
        "--zone", action="append", default=None, help="Repeatable; default: configured zones."
    )
    parser.add_argument("--inbox", type=Path, default=None, help="Default: the configured inbox.")
    parser.add_argument("--seed", type=int, default=None, help="Default: DAP_SIMULATOR_SEED.")
    parser.add_argument(
        "--replay-csv", type=Path, default=None, help="Replay this CSV instead of simulating."
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    settings = get_settings()
    sim = SimulatorSettings()
    if args.seed is not None:
        sim = sim.model_copy(update={"simulator_seed": args.seed})
    inbox = args.inbox or settings.inbox
    zones = tuple(args.zone) if args.zone else settings.zones
    try:
        with mirrored(settings):  # the inbox is under the data root, on the object store too
            result = _run(settings, sim, args, inbox, zones)
    except PipelineError as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2
    emit_result(result)
    return 0


def _run(
    settings: Settings,
    sim: SimulatorSettings,
    args: argparse.Namespace,
    inbox: Path,
    zones: tuple[str, ...],
) -> dict[str, Any]:
    from devtools.simulator import fill_inbox
    from devtools.simulator.publish import publish_history
    from devtools.simulator.replay import replay_for_run, replay_history

    csv = args.replay_csv
    if args.delivery_date is not None:
        if csv:
            files = replay_for_run(settings, csv, args.delivery_date, inbox, zones)
        else:
            files = fill_inbox(settings, args.delivery_date, inbox, zones, sim=sim)
    else:
        if args.first_day is None or args.last_day is None:
            raise ConfigError("give --first-day and --last-day, or --delivery-date")
        if args.first_day > args.last_day:
            raise ConfigError(f"--first-day {args.first_day} is after --last-day {args.last_day}")
        if csv:
            files = replay_history(settings, csv, args.first_day, args.last_day, inbox, zones)
        else:
            files = publish_history(settings, args.first_day, args.last_day, inbox, zones, sim=sim)
    return {
        "inbox": str(inbox),
        "zones": list(zones),
        "seed": sim.simulator_seed,
        "source": "replay" if csv else settings.source,
        "files": len(files),
    }


if __name__ == "__main__":
    sys.exit(main())
