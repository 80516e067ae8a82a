"""NiFi tasks in front of ingestion when ``ingest_mode == "nifi"``.

start flow -> wait until drained and the run's files are in the inbox -> stop flow
(always, even when waiting failed, so a stuck flow does not keep fetching). In the
default embedded mode this adds nothing: tasks.ingest fills the inbox from the
simulator or replay source itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.config import Settings

# The delivery day fixed by the plan_day task (its first and only argument list).
DELIVERY_DATE = "{{ ti.xcom_pull(task_ids='plan_day')[0][1] }}"


def ingest_trigger(settings: Settings) -> tuple[Any, ...]:
    """``(start, wait, stop)`` in nifi mode, else ``()``; ingest must also depend on ``wait``."""
    if settings.ingest_mode != "nifi":
        return ()
    from tasks.nifi.wiring import nifi_ingest_tasks

    return nifi_ingest_tasks(settings, DELIVERY_DATE)
