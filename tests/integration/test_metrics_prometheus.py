"""Stage metrics through a real Pushgateway into a real Prometheus that evaluates the alert rules.

A real stage command (``python -m tasks.publish``) runs for a day whose publish deadline has
passed and finds no schedule: it exits 2 and pushes its metrics. Prometheus scrapes the
Pushgateway every second and evaluates monitoring/prometheus/rules.yml; the late-schedule
alert is read back from its HTTP API, then resolves once a publish of the day is pushed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tasks.config import Settings
from tasks.metrics import StageRun, push_stage_metrics
from tests.helpers.prometheus import get_json, prometheus, pushgateway

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "prometheus" / "rules.yml"
DASHBOARD = REPO / "monitoring" / "grafana" / "day_ahead_pipeline.json"
ALERT = "DapScheduleNotPublishedByDeadline"
pytestmark = pytest.mark.integration


def late_day(now: datetime) -> tuple[date, dict[str, str]]:
    """A delivery day whose publish deadline and gate closure passed under 12 h ago, and its settings.

    The rule alerts from the deadline (on D-1) until 12 h after gate closure; whatever the
    time of day the test runs, pick D and deadline/gate times that put ``now`` in that window.
    """
    local = now.astimezone(ZoneInfo("Europe/Berlin"))
    hh_mm = local.strftime("%H:%M")
    if hh_mm < "11:15":  # yesterday's late deadline and gate closure: D is today
        return local.date(), {"DAP_PUBLISH_DEADLINE_LOCAL": "23:00", "DAP_GATE_CLOSURE_LOCAL": "23:59"}
    times = ("10:30", "11:00") if hh_mm < "23:00" else ("22:00", "22:30")
    return local.date() + timedelta(days=1), {
        "DAP_PUBLISH_DEADLINE_LOCAL": times[0],
        "DAP_GATE_CLOSURE_LOCAL": times[1],
    }


def wait_for(check: Callable[[], Any], what: str, seconds: float = 90.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_late_schedule_alert_fires_from_a_real_stage_push_and_resolves_on_publish(tmp_path: Path) -> None:
    day, timing = late_day(datetime.now().astimezone())
    with (
        pushgateway(tmp_path) as gateway,
        prometheus(tmp_path, gateway.removeprefix("http://"), [RULES]) as prom,
    ):
        env = {
            **os.environ,
            **timing,
            "PYTHONPATH": str(REPO),
            "DAP_DATA_ROOT": str(tmp_path / "data"),
            "DAP_PUSHGATEWAY_URL": gateway,
        }
        out = subprocess.run(
            [sys.executable, "-m", "tasks.publish", "--delivery-date", day.isoformat()],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert out.returncode == 2, out.stderr[-2000:]  # no schedule: a PipelineError, as before
        assert "pushed 1 metric group(s)" in out.stderr

        def query(expr: str) -> list[dict[str, Any]]:
            url = f"{prom}/api/v1/query?query={urllib.parse.quote(expr)}"
            result: list[dict[str, Any]] = get_json(url)["data"]["result"]
            return result

        scraped = f'dap_stage_exit_code{{stage="publish",delivery_day="{day.isoformat()}"}}'
        try:
            exit_codes = wait_for(lambda: query(scraped), "the scraped exit code of the day")
        except AssertionError as exc:  # say what was scraped instead
            raise AssertionError(f"{exc}; scraped: {query('dap_stage_exit_code')}") from None
        assert len(exit_codes) == 1, exit_codes
        assert exit_codes[0]["metric"]["job"] == "day_ahead_pipeline"  # honor_labels keeps the push labels
        assert exit_codes[0]["value"][1] == "2"

        def alerts(state: str) -> list[dict[str, Any]]:
            found = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
            return [
                a
                for a in found
                if a["labels"]["alertname"] == ALERT
                and a["labels"]["delivery_day"] == day.isoformat()
                and a["state"] == state
            ]

        firing = wait_for(lambda: alerts("firing"), "the late-schedule alert to fire")
        assert firing[0]["labels"]["severity"] == "critical"
        assert day.isoformat() in firing[0]["annotations"]["summary"]

        # The schedule is published late after all: the alert resolves.
        settings = Settings(
            pushgateway_url=gateway,
            publish_deadline_local=timing["DAP_PUBLISH_DEADLINE_LOCAL"],
            gate_closure_local=timing["DAP_GATE_CLOSURE_LOCAL"],
        )
        published = StageRun("publish", day, None, 0.2, 0, result={"published": True, "version": "v=001"})
        assert push_stage_metrics(published, settings) == 1
        wait_for(lambda: not alerts("firing") and not alerts("pending"), "the alert to resolve")
        # Every dashboard query parses and runs on this Prometheus (Grafana's $zone: all zones).
        board = json.loads(DASHBOARD.read_text())
        for panel in board["panels"]:
            for t in panel["targets"]:
                expr = t["expr"].replace("$zone", ".*")
                assert (
                    get_json(f"{prom}/api/v1/query?query={urllib.parse.quote(expr)}")["status"] == "success"
                ), expr
        margin = query('dap_schedule_publish_margin_seconds{stage="publish"}')
        assert margin
        assert float(margin[0]["value"][1]) < 0, "published after gate closure: negative margin"
