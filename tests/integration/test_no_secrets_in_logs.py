"""A stage's log never shows the MLflow credentials it uses.

Real HTTP on 127.0.0.1: a tiny server whose ``/health`` answers and whose API
answers 503, recording the ``Authorization`` header it receives. The forecast
stage runs as a subprocess with debug logging (``-v``) and the password in
``MLFLOW_TRACKING_PASSWORD``, as the Secret ``day-ahead-secrets`` gives it to a
pod: the server must see the credentials (so they were in play), the stage's
stdout and stderr must not.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.errors import SERVICE_UNAVAILABLE_EXIT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Handler(BaseHTTPRequestHandler):
    auth: list[str]

    def _answer(self) -> None:
        if self.path.startswith("/api/"):
            self.auth.append(self.headers.get("Authorization", ""))
        ok = self.path == "/health"
        body = b"OK" if ok else b"Service Unavailable"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's method names

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``auth``."""


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    auth: list[str] = []
    handler = type("Handler", (_Handler,), {"auth": auth})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", auth
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_forecast_debug_log_holds_no_mlflow_password(server: tuple[str, list[str]], tmp_path: Path) -> None:
    uri, auth = server
    password = f"canary-{uuid.uuid4()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAP_", "MLFLOW_"))}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        DAP_DATA_ROOT=str(tmp_path / "data"),
        DAP_MLFLOW_TRACKING_URI=uri,
        MLFLOW_TRACKING_USERNAME="day-ahead",
        MLFLOW_TRACKING_PASSWORD=password,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    argv = [sys.executable, "-m", "tasks.forecast", "--delivery-date", "2026-06-10", "--zone", "DE_LU", "-v"]
    proc = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == SERVICE_UNAVAILABLE_EXIT, output
    basic = base64.b64encode(f"day-ahead:{password}".encode()).decode()
    assert auth, "the stage reached the MLflow API"
    assert auth[0] == f"Basic {basic}", "the stage used the credentials from the environment"
    assert "DEBUG" in output, "debug logging was on"
    assert password not in output
    assert basic not in output
