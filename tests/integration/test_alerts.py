"""Deadline and failure alerts delivered to a real SMTP server on 127.0.0.1.

The deadline callback runs through Airflow's own triggerer code path
(``CallbackTrigger.run`` with the context ``Deadline.handle_miss`` builds); the
failure notifier runs through ``dag.test()`` of a small DAG whose task fails, so
Airflow builds the callback context itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks.config import Settings
from tests.helpers.smtp_sink import SmtpSink, smtp_sink

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _connection(sink_host: str, port: int) -> str:
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": sink_host,
            "port": port,
            "extra": {
                "disable_ssl": True,
                "disable_tls": True,
                "from_email": "airflow@example.org",
                "timeout": 5,
                "retry_limit": 0,
            },
        }
    )


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    with smtp_sink() as server:
        monkeypatch.setenv("AIRFLOW_CONN_DAP_ALERTS_SMTP", _connection(server.host, server.port))
        yield server


def _deadline_context(deadline_time: datetime) -> dict[str, Any]:
    """The context Deadline.handle_miss gives a missed deadline's callback (a DAGRunResponse as JSON)."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse

    fired = "2026-03-28T09:15:00Z"  # 10:15 Berlin on D-1
    run = DAGRunResponse.model_validate(
        {
            "run_id": "scheduled__2026-03-28T09:15:00+00:00",
            "dag_id": "day_ahead_daily",
            "logical_date": fired,
            "queued_at": fired,
            "start_date": fired,
            "end_date": None,
            "duration": None,
            "data_interval_start": None,
            "data_interval_end": None,
            "run_after": fired,
            "last_scheduling_decision": None,
            "run_type": "scheduled",
            "state": "running",
            "triggered_by": "timetable",
            "triggering_user_name": None,
            "conf": {},
            "note": None,
            "dag_versions": [],
            "bundle_version": None,
            "dag_model": {"dag_display_name": "day_ahead_daily"},
            "partition_key": None,
            "partition_date": None,
        }
    )
    return {"dag_run": run.model_dump(mode="json"), "deadline": {"id": "d-1", "deadline_time": deadline_time}}


def test_missed_deadline_mails_the_operators_through_the_triggerer(sink: SmtpSink) -> None:
    from airflow.triggers.callback import CallbackTrigger
    from dap_common.alerts import publish_deadline

    settings = Settings(alert_email_to=("ops@example.org",), runbook_url="https://wiki.example.org/runbook")
    alert = publish_deadline(settings)
    assert alert.interval == timedelta(minutes=75)  # 10:15 start -> 11:30 deadline
    deadline_time = datetime(2026, 3, 28, 10, 30, tzinfo=UTC)  # 11:30 Berlin (CET)
    trigger = CallbackTrigger(
        alert.callback.path, {**alert.callback.kwargs, "context": _deadline_context(deadline_time)}
    )

    async def events() -> list[Any]:
        return [event async for event in trigger.run()]

    states = [str(event.payload["state"]) for event in asyncio.run(events())]
    assert states[-1].endswith("success"), states
    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert mail.recipients == ["ops@example.org"]
    assert mail.sender == "airflow@example.org"
    assert "DEADLINE MISSED" in str(mail.message["Subject"])
    assert "day_ahead_daily" in mail.text
    assert "Delivery day: 2026-03-29" in mail.text  # fired on the 28th: schedules the 29th
    assert "2026-03-28T10:30:00+00:00" in mail.text
    assert "https://wiki.example.org/runbook" in mail.text


PROBE_DAG = """
from airflow.sdk import dag, task
from dap_common.alerts import failure_notifier
from tasks.config import get_settings


@dag(dag_id="alert_probe", schedule=None, on_failure_callback=failure_notifier(get_settings()))
def alert_probe():
    @task(task_id="publish_schedule", retries=0)
    def publish_schedule():
        raise RuntimeError("simulated publish failure")

    publish_schedule()


alert_probe()
"""

RUN_PROBE = """
import sys
from datetime import datetime
from zoneinfo import ZoneInfo
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.dags["alert_probe"].test(logical_date=datetime(2026, 3, 28, 10, 15, tzinfo=ZoneInfo("Europe/Berlin")))
print("STATE", run.state)
"""


@pytest.mark.slow
def test_failed_run_mails_the_failed_task_day_and_runbook(sink: SmtpSink, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "alert_probe.py").write_text(PROBE_DAG)
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}:{REPO / 'dags'}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "DAP_ALERT_EMAIL_TO": "ops@example.org,desk@example.org",
        "DAP_RUNBOOK_URL": "https://wiki.example.org/runbook",
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [sys.executable, "-c", RUN_PROBE, str(dags)], env=env, capture_output=True, text=True, check=False
    )
    assert "STATE failed" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    assert sink.arrived.wait(10), out.stderr[-3000:]
    mail = sink.messages[0]
    assert sorted(mail.recipients) == ["desk@example.org", "ops@example.org"]
    assert "FAILED: alert_probe for 2026-03-29 at task publish_schedule" in str(mail.message["Subject"])
    assert "Failed task:  publish_schedule" in mail.text
    assert "Delivery day: 2026-03-29" in mail.text
    assert "https://wiki.example.org/runbook" in mail.text


@pytest.mark.unit
def test_failure_context_facts_and_no_recipients_logs_instead(capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from dap_common.alerts import FAILURE, DayAheadAlert, alert_facts

    run = SimpleNamespace(
        dag_id="day_ahead_daily",
        run_id="manual__x",
        logical_date=None,
        run_after=datetime(2026, 10, 24, 8, 15, tzinfo=UTC),
        conf={},
    )
    ti = SimpleNamespace(task_id="ingest", map_index=1)
    context = {"dag_run": run, "ti": ti, "params": {"delivery_date": "2026-10-25"}, "reason": "task_failure"}
    facts = alert_facts(context, "Europe/Berlin")
    assert (facts.delivery_day, facts.task, facts.reason) == ("2026-10-25", "ingest[1]", "task_failure")
    context["params"] = {"delivery_date": None}
    assert alert_facts(context, "Europe/Berlin").delivery_day == "2026-10-25"  # from run_after (24th) + 1
    notifier = DayAheadAlert(kind=FAILURE, to=[])
    notifier.notify(context)  # no recipients: logged, nothing sent, no connection needed
    assert notifier.sent is not None
    assert "ingest[1]" in notifier.sent[0]
    assert "alert not sent" in capsys.readouterr().out  # Airflow's notifier logs through structlog


@pytest.mark.unit
def test_deadline_setting_must_lie_between_start_and_gate_closure() -> None:
    from dap_common.alerts import deadline_interval
    from pydantic import ValidationError

    assert deadline_interval(Settings(publish_deadline_local="11:45")) == timedelta(minutes=90)
    for bad in ("12:30", "09:00", "11h30"):
        with pytest.raises(ValidationError, match=r"publish_deadline_local|HH:MM"):
            Settings(publish_deadline_local=bad)
