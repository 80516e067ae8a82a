"""Wait for an external upstream to drop the run's files into the inbox (``DAP_SOURCE=inbox``).

``ExplainedTimeoutSensor`` is the base it shares with the NiFi sensor: a timeout names what
the last poke still found. ``InboxLandedSensor`` succeeds when every file the run of D needs
(:func:`tasks.nifi.expected.missing_expected_files`: in the inbox, claimed by an
ingest, or already landed) is there. It runs in ``reschedule`` mode, so it holds
no worker slot while it waits, and after ``timeout`` it fails with the missing
files named; ingest and forecasting are then skipped as upstream-failed and the
fallback stage (trigger rule ``all_done``) publishes a flagged fallback schedule
(docs/runbook.md). The worker must see the inbox (the local runner, or a volume
shared with the upstream).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

log = logging.getLogger(__name__)


def missing_run_files(zones: Sequence[str], delivery_date: str) -> list[str]:
    """The inbox files the run of ``delivery_date`` still waits for (``missing_expected_files``)."""
    from tasks.config import get_settings
    from tasks.nifi.expected import missing_expected_files
    from tasks.timeutil import parse_day

    settings = get_settings()
    return missing_expected_files(settings.inbox, settings.data_root, tuple(zones), parse_day(delivery_date))


class ExplainedTimeoutSensor(BaseSensorOperator):
    """A sensor whose timeout says what its last poke still found (``timeout_message``).

    ``poke`` stores what it saw in ``self._last_poke``; without a poke the timeout is
    raised as Airflow made it.
    """

    _last_poke: Any = None

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSensorTimeout

        self._last_poke = None
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            if self._last_poke is None:
                raise
            raise AirflowSensorTimeout(self.timeout_message(exc, self._last_poke)) from exc

    def timeout_message(self, exc: Exception, last_poke: Any) -> str:
        raise NotImplementedError


class InboxLandedSensor(ExplainedTimeoutSensor):
    """Wait until the run's expected inbox files are present; fail naming the missing ones."""

    template_fields: Sequence[str] = ("delivery_date",)

    def __init__(
        self,
        *,
        delivery_date: str,
        zones: Sequence[str],
        poke_interval: float = 60,
        timeout: float | timedelta = timedelta(minutes=45),
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.delivery_date = delivery_date
        self.zones = tuple(zones)

    def timeout_message(self, exc: Exception, last_poke: Any) -> str:  # noqa: ARG002 - the base's signature
        missing: list[str] = last_poke
        return (
            f"the sources of {self.delivery_date} did not land within {self.timeout:.0f} s: "
            f"{len(missing)} file(s) missing from the inbox, e.g. {', '.join(missing[:3])}; "
            "the fallback schedule applies. Once the files are in, clear wait_inbox to re-run the day"
        )

    def poke(self, context: Any) -> PokeReturnValue:  # noqa: ARG002 - Airflow's signature
        missing = missing_run_files(self.zones, self.delivery_date)
        self._last_poke = missing
        log.info(
            "inbox: %d expected file(s) missing%s",
            len(missing),
            f" (e.g. {missing[0]})" if missing else "",
        )
        return PokeReturnValue(
            is_done=not missing, xcom_value={"missing_files": missing} if not missing else None
        )
