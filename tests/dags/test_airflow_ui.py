"""Smoke check of ``make airflow-ui``: it starts on a fresh Airflow home and answers its health check.

Runs the real target (``airflow standalone`` with its scheduler, DAG processor,
triggerer and API server) on a free port and a throwaway data root, so the Airflow
home starts empty as on a fresh clone. Waits for ``/api/v2/monitor/health`` to report
the metadata DB and the scheduler healthy, then stops the whole process group
and checks that nothing of it is left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # about 30 s alone; the margin is for a busy 2-core machine
STOP_TIMEOUT_S = 30

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) in process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as resp:
            body: dict = json.load(resp)
            return body
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def _stop_group(pgid: int) -> list[int]:
    """SIGTERM the whole group, then SIGKILL what is still there; returns what needed SIGKILL."""
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.5)
    stubborn = _group_members(pgid)
    if stubborn:
        os.killpg(pgid, signal.SIGKILL)
    return stubborn


def test_make_airflow_ui_starts_and_answers_health(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        # The demo's Airflow home is <data_root>/../airflow: here a fresh, empty one.
        "DAP_DATA_ROOT": str(tmp_path / "data"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
    }
    # Not the developer's PATH: prove the target finds `airflow` without .venv/bin on it.
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(REPO))
    )
    env.pop("AIRFLOW_HOME", None)
    log = tmp_path / "airflow-ui.log"
    started = time.monotonic()
    with log.open("wb") as out:
        # -o: use the installed environment as it is (never reinstall from inside a test).
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/.installed", "airflow-ui"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the whole of it can be stopped
        )
    pgid = proc.pid
    health: dict | None = None
    try:
        while time.monotonic() - started < START_TIMEOUT_S:
            if proc.poll() is not None:
                break
            health = _health(port)
            if health and health.get("scheduler", {}).get("status") == "healthy":
                break
            time.sleep(1)
        waited = time.monotonic() - started
    finally:
        stubborn = _stop_group(pgid)
        proc.wait(timeout=STOP_TIMEOUT_S)
    tail = log.read_text(errors="replace")[-4000:]
    assert health is not None, f"no answer on port {port} after {waited:.0f} s:\n{tail}"
    assert health["metadatabase"]["status"] == "healthy", health
    assert health["scheduler"]["status"] == "healthy", f"{health}\n{tail}"
    assert (tmp_path / "airflow" / "airflow.db").exists(), "not the demo's Airflow home"
    print(f"make airflow-ui healthy after {waited:.0f} s; stubborn after SIGTERM: {stubborn}")
    assert _group_members(pgid) == [], "processes of make airflow-ui left running"
