"""The inbox sensor of ``DAP_SOURCE=inbox`` (tasks.inbox_sensor): waits for the run's files, names what is late."""

from __future__ import annotations

import threading
from datetime import date
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowRescheduleException, AirflowSensorTimeout

from tasks.inbox_sensor import InboxLandedSensor
from tasks.nifi import expected_inbox_files

if TYPE_CHECKING:
    from tasks.config import Settings

pytestmark = pytest.mark.unit

RUN_DAY = date(2026, 10, 25)


def sensor(settings: Settings, timeout: float = 0.3) -> InboxLandedSensor:
    return InboxLandedSensor(
        task_id="wait_inbox",
        delivery_date=RUN_DAY.isoformat(),
        zones=settings.zones,
        mode="poke",
        poke_interval=0.05,
        timeout=timeout,
    )


def test_times_out_naming_the_missing_files_and_the_fallback(settings: Settings) -> None:
    first = expected_inbox_files(settings.zones, RUN_DAY)[0][0]
    with pytest.raises(
        AirflowSensorTimeout, match=rf"did not land.*e\.g\. {first}.*fallback schedule applies"
    ):
        sensor(settings).execute({})


def test_succeeds_once_the_late_files_arrive(settings: Settings) -> None:
    """The files land while the sensor waits (an upstream that is late, not absent)."""
    settings.inbox.mkdir(parents=True, exist_ok=True)

    def land() -> None:
        for name, _source, _day in expected_inbox_files(settings.zones, RUN_DAY):
            (settings.inbox / name).write_bytes(b"<late/>")

    timer = threading.Timer(0.2, land)
    timer.start()
    try:
        result = sensor(settings, timeout=10).execute({})
    finally:
        timer.join()
    assert result == {"missing_files": []}


def test_reschedules_instead_of_sleeping(settings: Settings) -> None:
    class TI:
        def get_first_reschedule_date(self, context: object) -> None:
            return None

    waiting = InboxLandedSensor(task_id="wait_inbox", delivery_date=RUN_DAY.isoformat(), zones=settings.zones)
    with pytest.raises(AirflowRescheduleException):
        waiting.execute({"ti": TI()})
