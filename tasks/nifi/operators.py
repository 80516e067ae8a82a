"""Run the NiFi ingestion flow from Airflow: start it, wait until it is done, stop it.

``NiFiRunFlowOperator`` locates the process group ``Settings.nifi_process_group``
(or deploys it from ``nifi/day_ahead_ingest.json``), sets the run's delivery day,
zones and market time zone on its parameter context (tasks.nifi.run_parameters),
then starts it.
``NiFiFlowCompleteSensor`` succeeds when the group's queues are drained, no
thread is active and every file the run of D needs is in the inbox (or already
landed); it runs in ``reschedule`` mode so it holds no worker slot while it
waits, and fails after ``timeout`` with the missing files named.
``NiFiStopFlowOperator`` stops the group and reports its counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, PokeReturnValue

from tasks.inbox_sensor import ExplainedTimeoutSensor, missing_run_files
from tasks.nifi.hook import NiFiHook
from tasks.nifi.run_parameters import run_parameters
from tasks.timeutil import parse_day

log = logging.getLogger(__name__)

DEFAULT_FLOW = Path(__file__).resolve().parents[2] / "nifi" / "day_ahead_ingest.json"


def _settings() -> Any:
    from tasks.config import get_settings

    return get_settings()


class NiFiRunFlowOperator(BaseOperator):
    """Locate or deploy the ingestion process group, give it the run's day and zones, start it."""

    template_fields: Sequence[str] = ("process_group", "delivery_date")

    def __init__(
        self,
        *,
        delivery_date: str,
        zones: Sequence[str] | None = None,
        process_group: str | None = None,
        flow_definition: str | Path | None = DEFAULT_FLOW,
        deploy_if_missing: bool = True,
        nifi_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.delivery_date = delivery_date
        self.zones = tuple(zones) if zones else None
        self.process_group = process_group
        self.flow_definition = str(flow_definition) if flow_definition else None
        self.deploy_if_missing = deploy_if_missing
        self.nifi_conn_id = nifi_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        settings = _settings()
        hook = NiFiHook(self.nifi_conn_id or settings.nifi_conn_id)
        name = self.process_group or settings.nifi_process_group
        flow = Path(self.flow_definition) if (self.flow_definition and self.deploy_if_missing) else None
        day = parse_day(self.delivery_date)
        zones = self.zones or settings.zones
        entity, deployed = hook.ensure_process_group(name, flow)
        # The flow asks for the files of this run's day and zones, never NiFi's own clock.
        context = hook.set_parameters(entity.id, run_parameters(day, zones, settings.market_timezone))
        hook.schedule(entity.id, True)
        status = hook.status(entity.id)
        log.info(
            "NiFi process group %s (%s) started for delivery day %s, zones %s (parameter context %s)%s",
            name,
            entity.id,
            day,
            ",".join(zones),
            context,
            " after deploying it" if deployed else "",
        )
        return {
            "process_group_id": entity.id,
            "name": name,
            "deployed": deployed,
            "delivery_date": day.isoformat(),
            "zones": list(zones),
            **status.as_dict(),
        }


class NiFiFlowCompleteSensor(ExplainedTimeoutSensor):
    """Wait until the flow's queues are drained and the run's expected files have landed."""

    template_fields: Sequence[str] = ("process_group_id", "delivery_date")

    def __init__(
        self,
        *,
        process_group_id: str,
        delivery_date: str,
        zones: Sequence[str] | None = None,
        nifi_conn_id: str | None = None,
        check_inbox: bool = True,
        poke_interval: float = 30,
        timeout: float | timedelta = timedelta(minutes=30),
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.process_group_id = process_group_id
        self.delivery_date = delivery_date
        self.zones = tuple(zones) if zones else None
        self.nifi_conn_id = nifi_conn_id
        # False where the worker cannot see the data volume (kubernetes runner): queues only.
        self.check_inbox = check_inbox

    def timeout_message(self, exc: Exception, last_poke: Any) -> str:
        status, missing = last_poke  # the flow's status and the missing files of the last poke
        return (
            f"{exc} NiFi {status.name or self.process_group_id}: {status.flow_files_queued} flow files "
            f"queued, {status.active_threads} active threads; still missing: {', '.join(missing) or 'none'}"
        )

    def poke(self, context: Any) -> PokeReturnValue:  # noqa: ARG002 - Airflow's signature
        settings = _settings()
        hook = NiFiHook(self.nifi_conn_id or settings.nifi_conn_id)
        status = hook.status(self.process_group_id)
        missing = (
            missing_run_files(self.zones or settings.zones, self.delivery_date) if self.check_inbox else []
        )
        log.info(
            "NiFi %s: %d flow files queued, %d active threads, %d in / %d out; %d expected file(s) missing%s",
            status.name or self.process_group_id,
            status.flow_files_queued,
            status.active_threads,
            status.flow_files_in,
            status.flow_files_out,
            len(missing),
            f" (e.g. {missing[0]})" if missing else "",
        )
        self._last_poke = (status, missing)
        done = status.drained and not missing
        # On success the sensor's XCom carries the flow's counts for the run's record.
        return PokeReturnValue(
            is_done=done, xcom_value={**status.as_dict(), "missing_files": missing} if done else None
        )


class NiFiStopFlowOperator(BaseOperator):
    """Stop the process group and report what it moved and whether anything is left queued."""

    template_fields: Sequence[str] = ("process_group_id",)

    def __init__(self, *, process_group_id: str, nifi_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.process_group_id = process_group_id
        self.nifi_conn_id = nifi_conn_id

    def execute(self, context: Any) -> dict[str, Any]:  # noqa: ARG002 - Airflow's signature
        settings = _settings()
        hook = NiFiHook(self.nifi_conn_id or settings.nifi_conn_id)
        stopped = hook.schedule(self.process_group_id, False)
        status = hook.status(self.process_group_id)
        if status.flow_files_queued:
            log.warning(
                "NiFi %s stopped with %d flow files still queued",
                self.process_group_id,
                status.flow_files_queued,
            )
        return {"stopped": stopped, **status.as_dict()}
