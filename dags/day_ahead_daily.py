"""Daily day-ahead pipeline: from the sources to the published schedule for D.

Fires at 10:15 Europe/Berlin on D-1, well before the 12:00 CET gate closure,
and schedules delivery day D (the local day after the run fires; a manual run
may set the ``delivery_date`` param in the trigger form, or pass
``--conf '{"delivery_date": "YYYY-MM-DD"}'``). Each zone's chain runs as
mapped tasks (one process or pod per zone); the schedule covers all zones.
This file only wires: every task runs ``python -m tasks.<stage>``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, chain, dag
from dap_common.alerts import failure_notifier, publish_deadline
from dap_common.fallback import flag_fallback
from dap_common.stages import default_args, output_of, plan_tasks, run_params, stage
from dap_common.upstream import embedded_upstream, ingest_trigger

from tasks.config import DAG_START_LOCAL, get_settings

settings = get_settings()
# Airflow serialises DAG time zones only as pendulum time zones.
MARKET_TZ = pendulum.timezone(settings.market_timezone)
# 10:15 market time on D-1; the publish deadline is measured from it (dap_common.alerts).
START_CRON = "{1} {0} * * *".format(*(int(v) for v in DAG_START_LOCAL.split(":")))

#: The published schedules: consumers (e.g. the trading desk's loader) can be
#: scheduled on this asset.
SCHEDULE_ASSET = Asset(
    name="day_ahead_schedule",
    uri=f"file://{settings.data_root.resolve()}/schedules",
    group="day_ahead",
)


def _with_run_id(pair: tuple[list[str], dict[str, object]]) -> list[str]:
    """Stage args of one zone plus the training run id (``none`` if training was not due)."""
    zone_args, train_result = pair
    return [*zone_args, "--run-id", str(train_result.get("run_id") or "none")]


@dag(
    dag_id="day_ahead_daily",
    description="Ingest, validate, forecast and schedule the next delivery day before gate closure.",
    schedule=CronTriggerTimetable(START_CRON, timezone=MARKET_TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=MARKET_TZ),
    catchup=False,
    max_active_runs=1,  # training "when due" and champion promotion must see days in order
    dagrun_timeout=timedelta(minutes=90),  # still leaves time before the 12:00 gate closure
    # Alerts (docs/operations.md): e-mail when the schedule is not published by
    # DAP_PUBLISH_DEADLINE_LOCAL, and when the run fails.
    deadline=publish_deadline(settings),
    on_failure_callback=failure_notifier(settings),
    default_args=default_args(settings),
    params=run_params(),
    tags=["day-ahead", "trading", f"runner:{settings.runner}"],
    doc_md=__doc__,
)
def day_ahead_daily() -> None:
    zone_args, day_args = plan_tasks(settings)

    ingest = stage(settings, "ingest", "ingest").expand(arguments=zone_args)
    validate_inputs = stage(settings, "validate_inputs", "validate", ("--dataset", "inputs")).expand(
        arguments=zone_args
    )
    features = stage(settings, "build_features", "features").expand(arguments=zone_args)
    validate_features = stage(settings, "validate_features", "validate", ("--dataset", "features")).expand(
        arguments=zone_args
    )
    train = stage(
        settings, "train_if_due", "train", ("--if-due",), execution_timeout=timedelta(minutes=30)
    ).expand(arguments=zone_args)
    run_args = zone_args.zip(output_of(train)).map(_with_run_id)
    evaluate = stage(settings, "evaluate", "evaluate").expand(arguments=run_args)
    register = stage(settings, "register", "register").expand(arguments=run_args)
    forecast = stage(settings, "forecast", "forecast").expand(arguments=zone_args)
    # Runs whatever became of forecast: writes a flagged fallback forecast where a zone has none.
    fallback = stage(settings, "fallback_forecast", "fallback", trigger_rule="all_done").expand(
        arguments=zone_args
    )
    schedule = stage(settings, "optimise_schedule", "schedule").expand(arguments=day_args)
    validate_schedule = stage(settings, "validate_schedule", "validate", ("--dataset", "schedule")).expand(
        arguments=zone_args
    )
    publish = stage(settings, "publish_schedule", "publish", outlets=[SCHEDULE_ASSET]).expand(
        arguments=day_args
    )
    # Realised value of the earliest published day whose actual prices have landed since
    # (validate_inputs checked D-1's prices); off the critical path to the schedule.
    realise = stage(settings, "realise_value", "realise", ("--earliest-pending",)).expand(arguments=zone_args)
    validate_inputs >> realise

    nifi = ingest_trigger(settings)
    if nifi:
        _start, wait_landed, _stop = nifi
        wait_landed >> ingest  # stop runs even if waiting failed; ingest only if it succeeded
    simulated = embedded_upstream(settings, zone_args)
    upstream = (*nifi, simulated) if simulated is not None else nifi
    chain(
        [zone_args, day_args],
        *upstream,
        ingest,
        validate_inputs,
        features,
        validate_features,
        train,
        evaluate,
        register,
        forecast,
        fallback,
        schedule,
        validate_schedule,
        publish,
        flag_fallback(output_of(publish)),
    )


day_ahead_daily()
