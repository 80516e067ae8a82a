"""The three NiFi tasks of a DAG run, ready to chain before ingest (``ingest_mode=nifi``).

Parse-time cheap: builds operators only (no connection, no nipyapi import).
Usage in a DAG (``dags/dap_common.upstream.py``)::

    start, wait, stop = nifi_ingest_tasks(settings, "{{ ti.xcom_pull(task_ids='plan_day')[0][1] }}")
    chain(plan, start, wait, stop, ingest)

``stop`` runs whatever happened to ``wait`` (trigger rule ``all_done``) so a
timed-out run does not leave the flow running; ingest still needs ``wait`` to
have succeeded when it is chained after both (``[wait, stop] >> ingest``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tasks.nifi.operators import NiFiFlowCompleteSensor, NiFiRunFlowOperator, NiFiStopFlowOperator

if TYPE_CHECKING:
    from tasks.config import Settings


def nifi_ingest_tasks(
    settings: Settings,
    delivery_date: str,
    *,
    timeout: timedelta = timedelta(minutes=45),
    poke_interval: float = 60,
    check_inbox: bool = True,
) -> tuple[Any, Any, Any]:
    """``(start, wait, stop)`` operators for one DAG; ``delivery_date`` may be a template."""
    start = NiFiRunFlowOperator(
        task_id="nifi_start",
        delivery_date=delivery_date,
        zones=settings.zones,
        process_group=settings.nifi_process_group,
        nifi_conn_id=settings.nifi_conn_id,
        retries=settings.retries,
    )
    pg_id = "{{ ti.xcom_pull(task_ids='nifi_start')['process_group_id'] }}"
    wait = NiFiFlowCompleteSensor(
        task_id="nifi_wait",
        process_group_id=pg_id,
        delivery_date=delivery_date,
        zones=settings.zones,
        nifi_conn_id=settings.nifi_conn_id,
        poke_interval=poke_interval,
        timeout=timeout,
        mode="reschedule",
        check_inbox=check_inbox,
    )
    stop = NiFiStopFlowOperator(
        task_id="nifi_stop",
        process_group_id=pg_id,
        nifi_conn_id=settings.nifi_conn_id,
        trigger_rule="all_done",
    )
    start >> wait >> stop
    return start, wait, stop
