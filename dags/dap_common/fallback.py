"""The DAG's last task: a published fallback schedule turns the run red.

A fallback schedule (tasks.fallback) is published so that the desk has a
flagged schedule rather than nothing; the run must still not look healthy, so
operators and the failure notifier hear of it. Light: airflow.sdk only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException


def fallback_message(results: Iterable[dict[str, Any]] | dict[str, Any] | None) -> str | None:
    """The alert line when a published result carries a fallback, else None (pure)."""
    # A mapped task's output arrives as a lazy sequence, not a list.
    items = [results] if isinstance(results, dict) else list(results or [])
    flagged = [r for r in items if isinstance(r, dict) and r.get("fallback")]
    if not flagged:
        return None
    info = flagged[0]["fallback"]
    return (
        f"published a FALLBACK schedule ({flagged[0].get('version')}, source {info.get('source')}): "
        f"{info.get('reason')}. The desk sees the flag in the manifest, the schedule files and the "
        "summary; see docs/runbook.md 'Fallback schedules' to restore the regular forecast and re-run."
    )


def flag_fallback(published: Any) -> Any:
    """A task failing without retry when the published schedule is a fallback."""

    @task(task_id="flag_fallback", retries=0)
    def check(results: Any) -> str:
        message = fallback_message(results)
        if message:
            raise AirflowFailException(message)
        return "regular schedule published"

    return check(published)
