"""An unreachable MLflow server is a retryable one-line error, never "no champion".

Real HTTP throughout: a closed port (connection refused), a tiny ``http.server``
answering 503, one whose ``/health`` is fine but whose API answers 503 (a
failure after the check), and a real ``mlflow server``. The stage CLIs run as
subprocesses, exactly as the local runner starts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devtools.stack import free_port
from tasks.errors import PIPELINE_ERROR_EXIT, SERVICE_UNAVAILABLE_EXIT, ServiceUnavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-06-10"
#: A dead server must fail fast: the check takes ~7 s, imports a few more.
BOUND_S = 60.0


@dataclass(frozen=True)
class StageRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("ERROR ")]


def run_stage(stage: str, *args: str, uri: str, tmp_path: Path) -> StageRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAP_", "MLFLOW_"))}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        DAP_DATA_ROOT=str(tmp_path / "data"),
        DAP_MLFLOW_TRACKING_URI=uri,
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    argv = [sys.executable, "-m", f"tasks.{stage}", "--delivery-date", DAY, "--zone", "DE_LU", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, check=False, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    return StageRun(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)


def assert_retryable(run: StageRun, uri: str, reason: str) -> None:
    """Exit 75 (retried, not 0 or 2), one ERROR line naming the server, no traceback, fast."""
    assert run.returncode == SERVICE_UNAVAILABLE_EXIT, run.stderr
    assert run.returncode not in (0, PIPELINE_ERROR_EXIT)
    assert run.error_lines == [
        f"ERROR ServiceUnavailable: MLflow tracking server {uri} is unreachable ({reason}); "
        "the task will be retried"
    ], run.stderr
    assert "Traceback" not in run.stderr
    assert "DAP_RESULT" not in run.stdout
    assert run.seconds < BOUND_S, f"took {run.seconds:.1f} s"


class _Handler(BaseHTTPRequestHandler):
    """Answers 503 to everything, or (``healthy``) 200 on /health and 503 elsewhere."""

    healthy = False
    hits: list[str]

    def _answer(self) -> None:
        self.hits.append(self.path)
        ok = self.healthy and self.path == "/health"
        body = b"OK" if ok else b"Service Unavailable"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``hits`` instead."""


@dataclass
class FakeServer:
    uri: str
    hits: list[str]


def _serve(healthy: bool) -> Iterator[FakeServer]:
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"healthy": healthy, "hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeServer(f"http://127.0.0.1:{server.server_address[1]}", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def down_503() -> Iterator[FakeServer]:
    yield from _serve(healthy=False)


@pytest.fixture
def api_503() -> Iterator[FakeServer]:
    yield from _serve(healthy=True)


@pytest.mark.parametrize(
    "stage",
    [("forecast",), ("evaluate", "--run-id", "0123abcd"), ("register", "--run-id", "0123abcd")],
    ids=lambda s: s[0],
)
def test_closed_port_is_retryable_and_names_the_server(stage: tuple[str, ...], tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    assert_retryable(run_stage(*stage, uri=uri, tmp_path=tmp_path), uri, "connection refused")


def test_train_if_due_does_not_train_when_the_registry_is_down(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    run = run_stage("train", "--if-due", uri=uri, tmp_path=tmp_path)
    assert_retryable(run, uri, "connection refused")
    # Training would read the window's features first (and take minutes): nothing was touched.
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.parquet"))


def test_server_answering_503_is_retryable(down_503: FakeServer, tmp_path: Path) -> None:
    from tasks.registry import CHECK_ATTEMPTS

    run = run_stage("forecast", uri=down_503.uri, tmp_path=tmp_path)
    assert_retryable(run, down_503.uri, "HTTP 503")
    assert down_503.hits == ["/health"] * CHECK_ATTEMPTS


def test_failure_after_the_check_is_retryable_and_bounded(api_503: FakeServer, tmp_path: Path) -> None:
    """/health answers, the registry API does not: MLflow's own retries are bounded (3 tries, not 8)."""
    run = run_stage("forecast", uri=api_503.uri, tmp_path=tmp_path)
    assert_retryable(run, api_503.uri, "HTTP 503")
    api_calls = [hit for hit in api_503.hits if hit.startswith("/api/")]
    assert len(api_calls) == 3, api_503.hits


def test_mlflow_exceptions_of_a_dead_server_are_mapped(
    api_503: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In process: real MlflowClient errors (refused, 503) become ServiceUnavailable; others pass through."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tasks.config import get_settings
    from tasks.registry import connection_failure, tracking_server

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    refused = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MlflowException) as raised:
        MlflowClient(tracking_uri=refused).get_run("0123abcd")
    assert connection_failure(raised.value) == "connection refused"

    monkeypatch.setenv("DAP_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", api_503.uri)
    get_settings.cache_clear()
    settings = get_settings()
    unreachable = f"MLflow tracking server {api_503.uri} is unreachable \\(HTTP 503\\)"
    with pytest.raises(ServiceUnavailable, match=unreachable), tracking_server(settings):
        MlflowClient(tracking_uri=api_503.uri).get_run("0123abcd")
    with pytest.raises(ValueError, match="not a connection problem"), tracking_server(settings):
        raise ValueError("not a connection problem")
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a free port (answers /health after ~25 s)."""
    import requests

    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (root / "server.log").read_text()
            try:
                if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"mlflow server did not answer /health in 120 s: {(root / 'server.log').read_text()}")
        yield uri
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (("forecast",), "ModelNotFoundError: no champion of day_ahead_price_DE_LU in {uri}"),
        (("evaluate", "--run-id", "0123abcd"), "ModelNotFoundError: run 0123abcd is not in {uri}"),
    ],
    ids=["forecast", "evaluate"],
)
def test_a_real_server_still_reports_what_is_missing(
    stage: tuple[str, ...], message: str, mlflow_server: str, tmp_path: Path
) -> None:
    """The check passes against a real server; a champion or run that is really missing keeps exit 2."""
    run = run_stage(*stage, uri=mlflow_server, tmp_path=tmp_path)
    assert run.returncode == PIPELINE_ERROR_EXIT, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].startswith("ERROR " + message.format(uri=mlflow_server)), run.stderr
    assert "Traceback" not in run.stderr
