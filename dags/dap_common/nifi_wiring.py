"""NiFi tasks in front of ingestion when ``ingest_mode == "nifi"``.

start flow -> wait until drained and the run's files are in the inbox -> stop flow
(always, even when waiting failed, so a stuck flow does not keep fetching). In the
default embedded mode this adds nothing: tasks.ingest fills the inbox from the
simulator or replay source itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import TriggerRule

if TYPE_CHECKING:
    from tasks.config import Settings

# The delivery day fixed by the plan_day task (its first and only argument list).
DELIVERY_DATE = "{{ ti.xcom_pull(task_ids='plan_day')[0][1] }}"
PROCESS_GROUP_ID = "{{ ti.xcom_pull(task_ids='nifi_start_flow')['process_group_id'] }}"


def ingest_trigger(settings: Settings) -> tuple[Any, ...]:
    """``(start, wait, stop)`` in nifi mode, else ``()``; ingest must also depend on ``wait``."""
    if settings.ingest_mode != "nifi":
        return ()
    from tasks.nifi.operators import NiFiFlowCompleteSensor, NiFiRunFlowOperator, NiFiStopFlowOperator

    start = NiFiRunFlowOperator(
        task_id="nifi_start_flow",
        process_group=settings.nifi_process_group,
        nifi_conn_id=settings.nifi_conn_id,
    )
    wait = NiFiFlowCompleteSensor(
        task_id="nifi_wait_landed",
        process_group_id=PROCESS_GROUP_ID,
        delivery_date=DELIVERY_DATE,
        zones=settings.zones,
        nifi_conn_id=settings.nifi_conn_id,
    )
    stop = NiFiStopFlowOperator(
        task_id="nifi_stop_flow",
        process_group_id=PROCESS_GROUP_ID,
        nifi_conn_id=settings.nifi_conn_id,
        trigger_rule=TriggerRule.ALL_DONE,
    )
    return start, wait, stop
