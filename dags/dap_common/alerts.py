"""Deadline and failure alerts of the daily DAG, sent by e-mail through an Airflow SMTP connection.

* **Deadline**: an Airflow 3 ``DeadlineAlert`` on the run's logical date (the
  moment the run fires, 10:15 market time on D-1) plus the interval up to
  ``DAP_PUBLISH_DEADLINE_LOCAL`` (default 11:30). When the run has not finished
  by then, the scheduler queues the callback and the triggerer awaits
  :class:`DayAheadAlert` (``AsyncCallback``): "the schedule of D is not published".
* **Failure**: the DAG's ``on_failure_callback`` is a :class:`DayAheadAlert`
  too; Airflow calls it with the context of the last failed task.

Both send through the SMTP connection ``DAP_ALERT_CONN_ID`` (default
``dap_alerts_smtp``: host, port, login, ``from_email`` in its extra) to
``DAP_ALERT_EMAIL_TO``. The message names the DAG, the delivery day, the failed
task (failure) or the missed deadline, and the runbook (``DAP_RUNBOOK_URL``).
A notifier that cannot reach its server logs the error; Airflow catches it and
the pipeline's own tasks are unaffected. docs/operations.md has the setup.

Imported at DAG parse time: airflow.sdk, the SMTP provider's notifier (light)
and the standard library only.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from tasks.config import DAG_START_LOCAL
from tasks.timeutil import delivery_day_for_run

if TYPE_CHECKING:
    from airflow.sdk.definitions.deadline import DeadlineAlert

    from tasks.config import Settings

DEADLINE = "deadline"
FAILURE = "failure"
#: Sender when neither the notifier nor the connection's extra ``from_email`` names one.
DEFAULT_FROM = "day-ahead-pipeline@localhost"


@dataclass(frozen=True)
class AlertFacts:
    """What an alert says, read from an Airflow callback context."""

    dag_id: str
    run_id: str
    delivery_day: str
    task: str | None
    reason: str | None
    deadline_utc: str | None


def _get(obj: Any, name: str) -> Any:
    """A field of a dict (the deadline callback's JSON context) or an object (a task context)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def run_delivery_day(dag_run: Any, params: Mapping[str, Any] | None, market_timezone: str) -> str:
    """The delivery day of a run, as the DAG's plan tasks fix it (param/conf, else the day after it fired)."""
    for source in (params or {}, _get(dag_run, "conf") or {}):
        if source.get("delivery_date"):
            return str(source["delivery_date"])
    moment = _moment(_get(dag_run, "logical_date")) or _moment(_get(dag_run, "run_after"))
    if moment is None:
        return "unknown"
    return delivery_day_for_run(moment, market_timezone).isoformat()


def alert_facts(context: Mapping[str, Any], market_timezone: str) -> AlertFacts:
    """Facts of a failure context (task context of the last failed task) or a deadline context (JSON)."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    task = _get(ti, "task_id")
    map_index = _get(ti, "map_index")
    if task and isinstance(map_index, int) and map_index >= 0:
        task = f"{task}[{map_index}]"
    dag = context.get("dag")
    deadline = context.get("deadline") or {}
    deadline_time = _moment(_get(deadline, "deadline_time"))
    return AlertFacts(
        dag_id=str(_get(dag_run, "dag_id") or _get(dag, "dag_id") or "unknown"),
        run_id=str(
            _get(dag_run, "run_id") or _get(dag_run, "dag_run_id") or context.get("run_id") or "unknown"
        ),
        delivery_day=run_delivery_day(dag_run, context.get("params"), market_timezone),
        task=str(task) if task else None,
        reason=str(context["reason"]) if context.get("reason") else None,
        deadline_utc=deadline_time.isoformat() if deadline_time else None,
    )


def compose(kind: str, facts: AlertFacts, *, runbook_url: str, deadline_local: str) -> tuple[str, str]:
    """Subject and plain-text body of an alert."""
    if kind == DEADLINE:
        subject = (
            f"[day-ahead] DEADLINE MISSED: schedule for {facts.delivery_day} not published by "
            f"{deadline_local} ({facts.dag_id})"
        )
        what = (
            f"The run has not published the schedule of delivery day {facts.delivery_day} by the "
            f"deadline {deadline_local} market time ({facts.deadline_utc or 'n/a'} UTC); gate closure follows."
        )
    else:
        subject = (
            f"[day-ahead] FAILED: {facts.dag_id} for {facts.delivery_day} at task {facts.task or 'unknown'}"
        )
        what = f"The run failed. Failed task: {facts.task or 'unknown'}. Reason: {facts.reason or 'see the task log'}."
    lines = [
        what,
        "",
        f"DAG:          {facts.dag_id}",
        f"Run:          {facts.run_id}",
        f"Delivery day: {facts.delivery_day}",
        f"Failed task:  {facts.task or '-'}",
        f"Runbook:      {runbook_url}",
    ]
    return subject, "\n".join(lines)


class DayAheadAlert(SmtpNotifier):
    """An SMTP notifier whose message is built from the callback context (no templates to maintain).

    ``kind`` is ``deadline`` or ``failure``. Usable synchronously (``on_failure_callback``)
    and awaited by the triggerer (``AsyncCallback`` of a deadline). Without recipients it
    logs the alert instead of sending it.
    """

    def __init__(
        self,
        *,
        kind: str,
        to: Sequence[str] = (),
        smtp_conn_id: str = "dap_alerts_smtp",
        runbook_url: str = "docs/runbook.md",
        market_timezone: str = "Europe/Berlin",
        deadline_local: str = "11:30",
        from_email: str | None = None,
        context: Any = None,
    ) -> None:
        if kind not in (DEADLINE, FAILURE):
            raise ValueError(f"kind must be {DEADLINE!r} or {FAILURE!r}, got {kind!r}")
        super().__init__(to=list(to), from_email=from_email, smtp_conn_id=smtp_conn_id, context=context)
        self.kind = kind
        self.runbook_url = runbook_url
        self.market_timezone = market_timezone
        self.deadline_local = deadline_local
        self.sent: tuple[str, str] | None = None

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render: the message is built in Python from the context (see ``_prepare``).

        Also spares ``dag.test()``, whose callback context carries a serialised DAG without
        a template environment.
        """

    def _prepare(self, context: Mapping[str, Any]) -> bool:
        facts = alert_facts(context, self.market_timezone)
        subject, body = compose(
            self.kind, facts, runbook_url=self.runbook_url, deadline_local=self.deadline_local
        )
        self.subject = subject
        self.html_content = f"<pre>{html.escape(body)}</pre>"
        self.sent = (subject, body)
        if not self.to:
            self.log.warning(
                "no alert recipients (DAP_ALERT_EMAIL_TO); alert not sent: %s\n%s", subject, body
            )
            return False
        return True

    def _sender(self, connection_from: str | None) -> None:
        if self.from_email is None:
            self.from_email = connection_from or DEFAULT_FROM

    def notify(self, context: Any) -> None:
        if not self._prepare(context):
            return
        if self.from_email is None:
            connection = self.hook.get_connection(self.smtp_conn_id)
            self._sender(connection.extra_dejson.get("from_email"))
        super().notify(context)

    async def async_notify(self, context: Any) -> None:
        if not self._prepare(context):
            return
        if self.from_email is None:
            connection = await self.hook.aget_connection(self.smtp_conn_id)
            self._sender(connection.extra_dejson.get("from_email"))
        await super().async_notify(context)


def alert_kwargs(settings: Settings) -> dict[str, Any]:
    """Notifier arguments from the settings (JSON-able: the deadline callback is serialised)."""
    return {
        "to": list(settings.alert_email_to),
        "smtp_conn_id": settings.alert_conn_id,
        "runbook_url": settings.runbook_url,
        "market_timezone": settings.market_timezone,
        "deadline_local": settings.publish_deadline_local,
    }


def failure_notifier(settings: Settings) -> DayAheadAlert:
    """The DAG's ``on_failure_callback``."""
    return DayAheadAlert(kind=FAILURE, **alert_kwargs(settings))


def deadline_interval(settings: Settings) -> timedelta:
    """From the run's start (``DAG_START_LOCAL`` on D-1) to ``publish_deadline_local`` on D-1.

    Both are wall times of the same market day, and DST switches happen at night,
    so the interval is the same every day.
    """
    day = date(2000, 1, 1)

    def at(hh_mm: str) -> datetime:
        hh, mm = (int(v) for v in hh_mm.split(":"))
        return datetime.combine(day, datetime.min.time().replace(hour=hh, minute=mm))

    return at(settings.publish_deadline_local) - at(DAG_START_LOCAL)


def publish_deadline(settings: Settings) -> DeadlineAlert:
    """The DAG's deadline: schedule of D published by ``publish_deadline_local`` on D-1."""
    # Where airflow.sdk re-exports them from (its lazy exports are invisible to mypy).
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=deadline_interval(settings),
        callback=AsyncCallback(DayAheadAlert, kwargs={"kind": DEADLINE, **alert_kwargs(settings)}),
        name="schedule_published_before_gate_closure",
    )
