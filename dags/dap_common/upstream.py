"""The upstream that fills the inbox before ingest: NiFi in production, the simulator in development.

``ingest_mode == "nifi"``: start flow -> wait until drained and the run's files
are in the inbox -> stop flow (always, even when waiting failed, so a stuck
flow does not keep fetching). ``ingest_mode == "embedded"`` with
``source`` simulator or replay: one ``fill_inbox`` task per zone runs
``python -m devtools.simulator`` on the worker (the development package is not
in the task image). ``source == "inbox"``: something else fills it; ``wait_inbox`` waits until the
run's files are there (``tasks.inbox_sensor``) and fails naming the missing ones after
``inbox_wait_minutes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import XComArg

    from tasks.config import Settings

# The delivery day fixed by the plan_day task (its first and only argument list).
DELIVERY_DATE = "{{ ti.xcom_pull(task_ids='plan_day')[0][1] }}"


def ingest_trigger(settings: Settings) -> tuple[Any, ...]:
    """``(start, wait, stop)`` in nifi mode, else ``()``; ingest must also depend on ``wait``."""
    if settings.ingest_mode != "nifi":
        return ()
    from tasks.nifi.wiring import nifi_ingest_tasks

    return nifi_ingest_tasks(settings, DELIVERY_DATE)


def embedded_upstream(settings: Settings, zone_args: XComArg) -> Any | None:
    """The simulator or replay step that fills the inbox per zone, the inbox sensor, or None (NiFi)."""
    if settings.ingest_mode != "embedded":
        return None
    if settings.source == "inbox":
        from datetime import timedelta

        from tasks.inbox_sensor import InboxLandedSensor

        return InboxLandedSensor(
            task_id="wait_inbox",
            delivery_date=DELIVERY_DATE,
            zones=settings.zones,
            poke_interval=settings.inbox_poke_seconds,
            timeout=timedelta(minutes=settings.inbox_wait_minutes),
        )
    from dap_common.stages import local_command

    return local_command(settings, "fill_inbox", "devtools.simulator").expand(arguments=zone_args)
