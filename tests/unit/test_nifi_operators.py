"""NiFi operators and sensor against replayed NiFi 2.x REST responses.

No NiFi server can run on these machines. These tests start a tiny local HTTP
server that answers the endpoints nipyapi 1.8.1 calls with the JSON bodies in
tests/fixtures/nifi/ (NiFi 2.x response shapes; see the README there), so the
real nipyapi client code (URL building, (de)serialisation, status handling)
runs end to end. They do not prove compatibility with a live NiFi.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowRescheduleException, AirflowSensorTimeout

from tasks.errors import NiFiError
from tasks.nifi import (
    NiFiFlowCompleteSensor,
    NiFiHook,
    NiFiRunFlowOperator,
    NiFiStopFlowOperator,
    expected_inbox_files,
    missing_expected_files,
)
from tasks.nifi.operators import DEFAULT_FLOW

if TYPE_CHECKING:
    from tasks.config import Settings

pytestmark = pytest.mark.unit

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "nifi"
ROOT = "3a1b5d2e-0190-1000-8f4c-6c2f1a0b9e11"
PG = "7c9e2f41-0191-1000-b7a2-1f0d6e3c4a55"
CTX = "5d3e8a17-0192-1000-a4c1-8e2b7f0c6d21"  # the parameter context bound to PG
UPDATE = "0f5c2b9e-0193-1000-9d3a-7b1e4c8a2f60"
RUN_DAY = date(2026, 3, 29)  # a 23-hour day: nothing in NiFi cares, the file names do


class Replay:
    """Routes ``(METHOD, path)`` to a queue of ``(status, fixture)``; the last answer repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.requests: list[tuple[str, str, bytes]] = []
        self.auth: list[str | None] = []  # Authorization header of each request

    def on(self, method: str, path: str, *answers: tuple[int, str]) -> None:
        self.routes[(method, "/nifi-api" + path)] = list(answers)

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        self.requests.append((method, path, body))
        queue = self.routes.get((method, path.split("?", maxsplit=1)[0]))
        if not queue:
            return 404, b'{"message": "Unable to find the specified resource."}'
        status, name = queue[0] if len(queue) == 1 else queue.pop(0)
        return status, (FIX / name).read_bytes() if name else b""

    def calls(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.split("?")[0] == "/nifi-api" + path)


@contextmanager
def _serve(replay: Replay, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A local NiFi stand-in answering from ``replay``; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            replay.auth.append(self.headers.get("Authorization"))
            status, payload = replay.answer(self.command, self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815 - http.server's handler names

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _standard_routes(replay: Replay) -> None:
    replay.on("GET", "/flow/about", (200, "about.json"))
    replay.on("GET", "/flow/process-groups/root", (200, "flow_root.json"))
    replay.on("GET", f"/flow/process-groups/{PG}", (200, "flow_pg.json"))
    replay.on("GET", "/process-groups/root", (200, "pg_root.json"))
    replay.on("GET", f"/parameter-contexts/{CTX}", (200, "parameter_context.json"))
    replay.on("POST", f"/parameter-contexts/{CTX}/update-requests", (200, "parameter_context_update.json"))
    replay.on(
        "GET", f"/parameter-contexts/{CTX}/update-requests/{UPDATE}", (200, "parameter_context_update.json")
    )
    replay.on(
        "DELETE",
        f"/parameter-contexts/{CTX}/update-requests/{UPDATE}",
        (200, "parameter_context_update.json"),
    )


@pytest.fixture
def nifi(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Replay]:
    replay = Replay()
    _standard_routes(replay)
    with _serve(replay) as port:
        conn = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "schema": "http",
            "extra": {"retries": 2, "backoff_s": 0.01},
        }
        monkeypatch.setenv("AIRFLOW_CONN_NIFI_DEFAULT", json.dumps(conn))
        yield replay


def _write_expected(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True, exist_ok=True)
    for name, _source, _day in expected_inbox_files(settings.zones, RUN_DAY):
        (settings.inbox / name).write_bytes(b"<landed by NiFi PutFile/>")


def test_run_wait_stop_success(nifi: Replay, settings: Settings) -> None:
    group = f"/process-groups/{PG}"
    nifi.on("GET", group, (200, "pg_stopped.json"))
    nifi.on("PUT", f"/flow/process-groups/{PG}", (200, "schedule_running.json"))
    started = NiFiRunFlowOperator(task_id="start", delivery_date=RUN_DAY.isoformat()).execute({})
    assert started["process_group_id"] == PG
    assert started["deployed"] is False
    assert started["delivery_date"] == RUN_DAY.isoformat()
    assert [json.loads(b) for m, p, b in nifi.requests if m == "PUT"] == [{"id": PG, "state": "RUNNING"}]
    # The run's day and zones reached the flow's parameter context before the flow started.
    methods = [(m, p.split("?")[0]) for m, p, _ in nifi.requests]
    update = methods.index(("POST", f"/nifi-api/parameter-contexts/{CTX}/update-requests"))
    assert update < methods.index(("PUT", f"/nifi-api/flow/process-groups/{PG}"))
    assert nifi.calls("DELETE", f"/parameter-contexts/{CTX}/update-requests/{UPDATE}") == 1
    sent = _parameters_sent(nifi)
    assert sent["delivery.day"] == RUN_DAY.isoformat()
    assert {r["zone"] for r in json.loads(sent["entsoe.requests"])} == {"DE_LU"}
    assert json.loads(sent["weather.requests"]) == [{"zone": "DE_LU"}]
    assert sent["market.timezone"] == "Europe/Berlin"
    assert "entsoe.security.token" not in sent, "secrets are set in NiFi, never by the operator"

    sensor = NiFiFlowCompleteSensor(task_id="wait", process_group_id=PG, delivery_date=RUN_DAY.isoformat())
    assert sensor.mode == "reschedule"
    nifi.on("GET", group, (200, "pg_running_busy.json"))
    _write_expected(settings)
    assert not sensor.poke({}).is_done  # files there, but 3 flow files queued and 2 threads active
    nifi.on("GET", group, (200, "pg_running_drained.json"))
    (settings.inbox / f"entsoe_A69_DE_LU_{RUN_DAY}_A01.xml").unlink()
    assert not sensor.poke({}).is_done  # drained, but the wind/solar forecast has not landed
    _write_expected(settings)
    done = sensor.poke({})
    assert done.is_done
    counts = done.xcom_value
    assert counts is not None
    assert counts["flow_files_in"] == 6
    assert counts["missing_files"] == []

    nifi.on("PUT", f"/flow/process-groups/{PG}", (200, "schedule_stopped.json"))
    nifi.on("GET", group, (200, "pg_stopped_after_run.json"))
    stopped = NiFiStopFlowOperator(task_id="stop", process_group_id=PG).execute({})
    assert stopped["stopped"] is True
    assert stopped["flow_files_in"] == 6
    assert stopped["flow_files_queued"] == 0
    assert stopped["running_components"] == 0
    assert [json.loads(b)["state"] for m, p, b in nifi.requests if m == "PUT"] == ["RUNNING", "STOPPED"]


def test_deploys_flow_definition_when_group_missing(nifi: Replay) -> None:
    nifi.on("GET", "/flow/process-groups/root", (200, "flow_root_empty.json"))
    nifi.on("POST", f"/process-groups/{ROOT}/process-groups/upload", (201, "upload_created.json"))
    nifi.on("GET", f"/process-groups/{PG}", (200, "pg_stopped.json"))
    nifi.on("PUT", f"/flow/process-groups/{PG}", (200, "schedule_running.json"))

    result = NiFiRunFlowOperator(task_id="start", delivery_date=RUN_DAY.isoformat()).execute({})

    assert result["deployed"] is True
    upload = next(b for m, p, b in nifi.requests if m == "POST")
    # The multipart body carries our versioned flow definition and its group name.
    assert b'"name": "day-ahead-ingest"' in upload or b'"name":"day-ahead-ingest"' in upload
    assert DEFAULT_FLOW.read_bytes()[:200] in upload
    assert b"groupName" in upload


def _parameters_sent(nifi: Replay) -> dict[str, str]:
    body = next(b for m, p, b in nifi.requests if m == "POST" and "/parameter-contexts/" in p)
    update = json.loads(body)
    assert update["id"] == CTX
    assert update["revision"]["version"] == 7  # the context's current revision, as NiFi requires
    return {e["parameter"]["name"]: e["parameter"]["value"] for e in update["component"]["parameters"]}


def test_each_run_sets_its_own_day_and_zones(nifi: Replay, settings: Settings) -> None:
    """A backfill or manual run asks NiFi for its delivery day and zones, not NiFi's tomorrow."""
    nifi.on("GET", f"/process-groups/{PG}", (200, "pg_stopped.json"))
    nifi.on("PUT", f"/flow/process-groups/{PG}", (200, "schedule_running.json"))
    NiFiRunFlowOperator(task_id="start", delivery_date="2025-10-26", zones=["BE", "DE_LU"]).execute({})
    sent = _parameters_sent(nifi)
    assert sent["delivery.day"] == "2025-10-26"
    requests = json.loads(sent["entsoe.requests"])
    assert {(r["zone"], r["documentType"], r["processType"]) for r in requests} == {
        (zone, doc, process)
        for zone in ("BE", "DE_LU")
        for doc, process in (("A44", ""), ("A65", "A01"), ("A65", "A16"), ("A69", "A01"))
    }
    be_prices = next(r for r in requests if r["zone"] == "BE" and r["documentType"] == "A44")
    assert be_prices["inDomain"] == be_prices["outDomain"] == "10YBE----------2"
    assert json.loads(sent["weather.requests"]) == [{"zone": "BE"}, {"zone": "DE_LU"}]


def test_a_flow_without_the_run_parameters_is_refused_before_it_starts(nifi: Replay, tmp_path: Path) -> None:
    old = json.loads((FIX / "parameter_context.json").read_text())
    old["component"]["parameters"] = [
        p for p in old["component"]["parameters"] if p["parameter"]["name"] != "delivery.day"
    ]
    (tmp_path / "old_context.json").write_text(json.dumps(old))
    nifi.on("GET", f"/parameter-contexts/{CTX}", (200, str(tmp_path / "old_context.json")))
    nifi.on("GET", f"/process-groups/{PG}", (200, "pg_stopped.json"))
    with pytest.raises(NiFiError, match=r"lacks delivery.day; re-import nifi/day_ahead_ingest.json"):
        NiFiRunFlowOperator(task_id="start", delivery_date=RUN_DAY.isoformat()).execute({})
    assert nifi.calls("PUT", f"/flow/process-groups/{PG}") == 0


def test_flow_not_found_without_deploy(nifi: Replay) -> None:
    nifi.on("GET", "/flow/process-groups/root", (200, "flow_root_empty.json"))
    with pytest.raises(NiFiError, match="'day-ahead-ingest' not found"):
        NiFiRunFlowOperator(
            task_id="start", delivery_date=RUN_DAY.isoformat(), deploy_if_missing=False
        ).execute({})
    assert nifi.calls("PUT", f"/flow/process-groups/{PG}") == 0


def test_sensor_times_out_when_files_never_land(nifi: Replay) -> None:
    nifi.on("GET", f"/process-groups/{PG}", (200, "pg_running_drained.json"))
    sensor = NiFiFlowCompleteSensor(
        task_id="wait",
        process_group_id=PG,
        delivery_date=RUN_DAY.isoformat(),
        mode="poke",
        poke_interval=0.05,
        timeout=0.3,
    )
    with pytest.raises(
        AirflowSensorTimeout, match=r"0 flow files queued.*still missing: entsoe_A44_DE_LU_2026-03-28"
    ):
        sensor.execute({})
    assert nifi.calls("GET", f"/process-groups/{PG}") >= 2


def test_sensor_reschedules_instead_of_sleeping(nifi: Replay) -> None:
    nifi.on("GET", f"/process-groups/{PG}", (200, "pg_running_busy.json"))

    class TI:
        def get_first_reschedule_date(self, context: object) -> None:
            return None

    sensor = NiFiFlowCompleteSensor(task_id="wait", process_group_id=PG, delivery_date=RUN_DAY.isoformat())
    with pytest.raises(AirflowRescheduleException):
        sensor.execute({"ti": TI()})


def test_unreachable_nifi_is_retried_then_a_clear_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"retries": 2, "backoff_s": 0.01},
    }
    monkeypatch.setenv("AIRFLOW_CONN_NIFI_DEFAULT", json.dumps(conn))
    sleeps: list[float] = []
    monkeypatch.setattr("tasks.nifi.hook.time.sleep", sleeps.append)
    with pytest.raises(NiFiError, match=r"unreachable.*after 3 attempts.*'nifi_default'"):
        NiFiRunFlowOperator(task_id="start", delivery_date=RUN_DAY.isoformat()).execute({})
    assert sleeps == [0.01, 0.02]  # exponential backoff between the 3 attempts


def test_transient_503_is_retried_and_succeeds(nifi: Replay) -> None:
    nifi.on("GET", f"/process-groups/{PG}", (503, ""), (200, "pg_running_drained.json"))
    status = NiFiHook().status(PG)
    assert status.drained
    assert nifi.calls("GET", f"/process-groups/{PG}") == 2


def test_conflict_is_not_retried(nifi: Replay) -> None:
    nifi.on("GET", f"/process-groups/{PG}", (200, "pg_stopped.json"))
    nifi.on("PUT", f"/flow/process-groups/{PG}", (409, "conflict_409.json"))
    with pytest.raises(NiFiError, match="not the most up-to-date revision"):
        NiFiHook().schedule(PG, True)
    assert nifi.calls("PUT", f"/flow/process-groups/{PG}") == 1


def test_expected_files_count_when_already_landed(settings: Settings) -> None:
    names = [n for n, _, _ in expected_inbox_files(["DE_LU"], RUN_DAY)]
    assert names == [
        "entsoe_A44_DE_LU_2026-03-28.xml",
        "entsoe_A65_DE_LU_2026-03-29_A01.xml",
        "entsoe_A69_DE_LU_2026-03-29_A01.xml",
    ]
    assert missing_expected_files(settings.inbox, settings.data_root, ["DE_LU"], RUN_DAY) == names
    raw = settings.data_root / "raw" / "entsoe_A44" / "zone=DE_LU" / "day=2026-03-28"
    raw.mkdir(parents=True)
    (raw / "entsoe_A44_DE_LU_2026-03-28.r001.xml").write_bytes(b"x")
    assert missing_expected_files(settings.inbox, settings.data_root, ["DE_LU"], RUN_DAY) == names[1:]


@pytest.mark.slow
def test_module_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = "import sys, tasks.nifi; print(any(m.startswith('nipyapi') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_expected_names_are_what_the_sources_publish(settings: Settings) -> None:
    from devtools.simulator import publish_for_run

    published = {p.name for p in publish_for_run(settings, RUN_DAY, settings.inbox)}
    assert {n for n, _, _ in expected_inbox_files(settings.zones, RUN_DAY)} <= published


def test_wiring_builds_start_wait_stop_in_a_dag(settings: Settings) -> None:
    from airflow.sdk import DAG

    from tasks.nifi import nifi_ingest_tasks

    with DAG(dag_id="nifi_wiring_test", schedule=None):
        start, wait, stop = nifi_ingest_tasks(settings, "{{ ti.xcom_pull(task_ids='plan_day')[0][1] }}")
    assert [t.task_id for t in (start, wait, stop)] == ["nifi_start", "nifi_wait", "nifi_stop"]
    assert wait.upstream_task_ids == {"nifi_start"}
    assert stop.upstream_task_ids == {"nifi_wait"}
    assert "nifi_start" in stop.process_group_id
    assert stop.trigger_rule == "all_done"
    assert wait.mode == "reschedule"
    assert wait.timeout == 45 * 60


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (cryptography is in the lock via Airflow)."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_https_token_login_and_ca_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An HTTPS NiFi with single-user login: the hook verifies TLS with the CA file and sends the token."""
    cert, key = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    replay = Replay()
    _standard_routes(replay)
    replay.on("POST", "/access/token", (201, "access_token.txt"))
    replay.on("GET", f"/process-groups/{PG}", (200, "pg_running_drained.json"))
    with _serve(replay, tls) as port:
        conn = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "schema": "https",
            "login": "day-ahead",
            "password": "not-a-real-secret",
            "extra": {"ca_file": str(cert), "retries": 0},
        }
        monkeypatch.setenv("AIRFLOW_CONN_NIFI_DEFAULT", json.dumps(conn))
        status = NiFiHook().status(PG)
    assert status.drained
    token = (FIX / "access_token.txt").read_text()
    login = next(b for m, p, b in replay.requests if p == "/nifi-api/access/token")
    assert b"username=day-ahead" in login
    assert replay.auth[-1] == f"Bearer {token}"


def test_a_plain_connection_after_a_token_login_sends_no_token(nifi: Replay) -> None:
    import nipyapi

    nipyapi.security.set_service_auth_token(token="left-over", service="nifi")
    nifi.on("GET", f"/process-groups/{PG}", (200, "pg_running_drained.json"))
    NiFiHook().status(PG)
    assert nifi.auth[-1] is None
