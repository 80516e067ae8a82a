"""Faults against the real stack: S3 (SeaweedFS), PostgreSQL and the MLflow server.

Each stage runs as a real process (``python -m tasks.<stage>``) with its data root
on the S3 server (``DAP_DATA_URL``) and a local mirror of its own, as a pod would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from datetime import date, timedelta
from pathlib import Path

import boto3
import pytest

from devtools.stack import MlflowServer, SeaweedS3
from tasks.config import get_settings
from tasks.errors import SERVICE_UNAVAILABLE_EXIT, ServiceUnavailable
from tasks.objectstore import INDEX_FILE, ObjectStore, push_order
from tests.integration.test_schedule import PORTFOLIO, write_forecast

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 10, 25)  # the 25-hour autumn DST day


def keys(env: dict[str, str]) -> list[str]:
    bucket, _, prefix = env["DAP_DATA_URL"].removeprefix("s3://").partition("/")
    s3 = boto3.session.Session().client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"][len(prefix) + 1 :] for page in pages for o in page.get("Contents", []))


def run_stage(
    module: str, args: list[str], env: dict[str, str], mirror: Path, *, wrap: str = ""
) -> subprocess.CompletedProcess[str]:
    """``python -m tasks.<module>`` in a fresh process on its own mirror; ``wrap`` runs first (fault injection)."""
    code = f"{wrap}\nimport runpy, sys\nsys.argv = ['x', *{args!r}]\nrunpy.run_module('tasks.{module}', run_name='__main__')"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env, "DAP_DATA_ROOT": str(mirror), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def day_in_store(s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Forecasts of DAY for two zones, pushed to the store from a writer's mirror."""
    portfolio = tmp_path / "portfolio.json"
    portfolio.write_text(json.dumps(PORTFOLIO))
    env = {**s3_env, "DAP_PORTFOLIO_FILE": str(portfolio), "DAP_ZONES": "DE_LU,BE"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAP_DATA_ROOT", str(tmp_path / "writer"))
    get_settings.cache_clear()
    settings = get_settings()
    for i, zone in enumerate(settings.zones):
        write_forecast(settings, zone, DAY, seed=i)
    ObjectStore(settings.data_url, settings.data_root).push()
    get_settings.cache_clear()
    return env


def test_push_order_puts_manifests_then_pointers_last() -> None:
    batches = push_order(["schedules/day=D/LATEST", "schedules/day=D/v=001/manifest.json", "a.parquet"])
    assert batches == [["a.parquet"], ["schedules/day=D/v=001/manifest.json"], ["schedules/day=D/LATEST"]]


def test_mirrors_round_trip_and_keep_local_only_files_local(s3_env: dict[str, str], tmp_path: Path) -> None:
    a, b = (
        ObjectStore(s3_env["DAP_DATA_URL"], tmp_path / "a"),
        ObjectStore(s3_env["DAP_DATA_URL"], tmp_path / "b"),
    )
    (a.root / "processed" / "x").mkdir(parents=True)
    (a.root / "processed" / "x" / "1.parquet").write_bytes(b"one")
    (a.root / "schedules" / "day=D" / ".staging-123").mkdir(parents=True)
    (a.root / "schedules" / "day=D" / ".staging-123" / "half.csv").write_text("half")
    (a.root / "schedules" / "day=D" / ".LATEST.abc.tmp").write_text("tmp")
    (a.root / "schedules" / "day=D" / "v=001").mkdir()
    (a.root / "schedules" / "day=D" / "v=001" / "manifest.json").write_text("{}")
    (a.root / "schedules" / "day=D" / "latest").symlink_to("v=001")
    (a.root / "schedules" / "day=D.lock").write_text("")
    assert a.push() == {"uploaded": 2, "deleted": 0}
    assert keys(s3_env) == ["processed/x/1.parquet", "schedules/day=D/v=001/manifest.json"]
    assert b.pull()["downloaded"] == 2
    assert (b.root / "processed" / "x" / "1.parquet").read_bytes() == b"one"
    assert b.pull()["downloaded"] == 0, "an unchanged mirror downloads nothing"
    (b.root / "processed" / "x" / "1.parquet").unlink()  # e.g. an inbox file moved away
    (b.root / "processed" / "x" / "2.parquet").write_bytes(b"two")
    assert b.push() == {"uploaded": 1, "deleted": 1}
    assert a.pull() == {"downloaded": 1, "removed": 1, "objects": 2}
    assert sorted(p.name for p in (a.root / "processed" / "x").iterdir()) == ["2.parquet"]
    assert (a.root / INDEX_FILE).exists()


def test_unreachable_store_is_a_retryable_fault_naming_the_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools.stack import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = ObjectStore("s3://dap-data/p", tmp_path)
    with pytest.raises(ServiceUnavailable, match=endpoint):
        store.pull()


KILL_ON_UPLOAD = """
import os, signal, threading
import tasks.objectstore as o
_upload, _done, _lock = o.ObjectStore._upload, [0], threading.Lock()
def cut(self, rel, obj):
    entry = _upload(self, rel, obj)
    with _lock:
        _done[0] += 1
        if _done[0] >= int(os.environ["KILL_AFTER_UPLOADS"]):
            os.kill(os.getpid(), signal.SIGKILL)
    return entry
o.ObjectStore._upload = cut
"""


def test_stage_killed_mid_upload_leaves_no_partial_schedule_and_the_retry_finishes(
    day_in_store: dict[str, str], tmp_path: Path
) -> None:
    """The pod is killed after uploading two files of a schedule version: the store has no
    manifest for it (no reader takes it for a version); the retry, on a fresh mirror, removes
    the cut-off version, writes v=001 whole, and leaves no litter in the store."""
    env, args = day_in_store, ["--delivery-date", DAY.isoformat(), "--no-mlflow"]
    killed = run_stage(
        "schedule", args, {**env, "KILL_AFTER_UPLOADS": "2"}, tmp_path / "pod1", wrap=KILL_ON_UPLOAD
    )
    assert killed.returncode == -signal.SIGKILL
    cut = [k for k in keys(env) if k.startswith("schedules/")]
    # Some or all of the data files (uploads run in parallel, so those in flight at the kill may
    # still land), but never the manifest or the LATEST pointer: no reader takes it for a version.
    assert len(cut) >= 2, cut
    assert not [k for k in cut if k.endswith(("manifest.json", "LATEST"))], cut

    retry = run_stage("schedule", args, env, tmp_path / "pod2")
    assert retry.returncode == 0, retry.stderr[-2000:]
    stored = [k for k in keys(env) if k.startswith("schedules/")]
    versions = {k.split("/")[2] for k in stored}
    assert versions == {"v=001"}, stored
    assert f"schedules/day={DAY.isoformat()}/v=001/manifest.json" in stored
    assert set(cut) < set(stored), "the cut-off upload held a file the whole version does not"
    assert not [k for k in stored if ".staging-" in k or k.endswith(".tmp")]
    manifest = json.loads(
        (tmp_path / "pod2" / "schedules" / f"day={DAY.isoformat()}" / "v=001" / "manifest.json").read_text()
    )
    assert manifest["rows"]["schedule"] == (3 + 2) * 100  # 100 MTUs; DE_LU portfolio + 2 batteries, BE + 1


def test_same_day_twice_at_once_gives_one_consistent_version(
    day_in_store: dict[str, str], tmp_path: Path
) -> None:
    """Two pods schedule the same day concurrently (a manual run beside a retry): the schedule is
    deterministic in its inputs and run time, so both write identical files under v=001 and the
    store holds one version, not two."""
    env, args = day_in_store, ["--delivery-date", DAY.isoformat(), "--no-mlflow"]
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(run_stage("schedule", args, env, tmp_path / f"pod{i}"))
        )
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-1500:] for r in results]
    stored = [k for k in keys(env) if k.startswith("schedules/")]
    assert {k.split("/")[2] for k in stored} == {"v=001"}
    digests = {
        json.loads(
            (
                tmp_path / f"pod{i}" / "schedules" / f"day={DAY.isoformat()}" / "v=001" / "manifest.json"
            ).read_text()
        )["content_sha256"]
        for i in range(2)
    }
    assert len(digests) == 1
    rerun = run_stage("schedule", args, env, tmp_path / "pod3")  # a later re-run reuses it
    assert rerun.returncode == 0
    assert {k.split("/")[2] for k in keys(env) if k.startswith("schedules/")} == {"v=001"}


def test_forecast_with_the_mlflow_server_down_is_retryable_and_names_it(
    mlflow_server: MlflowServer, s3: SeaweedS3, day_in_store: dict[str, str], tmp_path: Path
) -> None:
    """The real tracking server (PostgreSQL + S3 artifacts) answers, then is stopped: forecasting
    exits 75 (Airflow retries) naming the server, not 'no champion'; nothing reaches the store."""
    env = {**day_in_store, "DAP_MLFLOW_TRACKING_URI": mlflow_server.url}
    before = keys(env)
    stopped = MlflowServer(mlflow_server.root, mlflow_server.port, mlflow_server.backend_uri, s3.env())
    mlflow_server.down()
    try:
        out = run_stage(
            "forecast", ["--delivery-date", DAY.isoformat(), "--zone", "DE_LU"], env, tmp_path / "pod"
        )
    finally:
        stopped.up(timeout=300)
        mlflow_server.proc = stopped.proc
    assert out.returncode == SERVICE_UNAVAILABLE_EXIT, out.stderr[-1500:]
    assert mlflow_server.url.removeprefix("http://") in out.stderr
    assert "champion" not in out.stderr.splitlines()[-1]
    assert "Traceback" not in out.stderr
    assert keys(env) == before


STOP_SERVER_AFTER_FIRST_RUN = """
import os, pathlib, time, requests
import mlflow
_start, _runs = mlflow.start_run, [0]
def server_gone_while_logging(*args, **kwargs):
    # Training has fitted and logged its first run (the naive baseline); the test stops the server.
    _runs[0] += 1
    if _runs[0] == 2:
        pathlib.Path(os.environ["FIT_DONE_FLAG"]).write_text("logging")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                requests.get(os.environ["DAP_MLFLOW_TRACKING_URI"] + "/health", timeout=1)
            except requests.ConnectionError:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the test did not stop the MLflow server")
    return _start(*args, **kwargs)
mlflow.start_run = server_gone_while_logging
"""


TRAIN_DAY = date(2026, 10, 26)


def server_answers(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/health", timeout=5).ok
    except requests.RequestException:
        return False


def stage_result(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The JSON result line ``tasks.cli.run_stage`` prints."""
    from tasks.cli import RESULT_MARKER

    line = next(x for x in proc.stdout.splitlines() if x.startswith(RESULT_MARKER))
    result: dict[str, object] = json.loads(line.removeprefix(RESULT_MARKER))
    return result


def test_mlflow_down_while_training_logs_then_the_retry_registers_one_version(
    mlflow_server: MlflowServer, s3: SeaweedS3, tmp_path: Path
) -> None:
    """The tracking server stops after training has fitted and logged its first run: the stage
    exits 75 naming the server (Airflow retries it). Once the server is back the retry trains
    and logs, and evaluate + register (twice, as after a lost response) give exactly one model
    version, of the retry's run."""
    from mlflow import MlflowClient

    from tests.unit.test_features import write_history

    root = tmp_path / "data"
    write_history(root, "DE_LU", TRAIN_DAY - timedelta(days=60), TRAIN_DAY + timedelta(days=1))
    config = tmp_path / "models.json"
    model = f"fault_{tmp_path.name}_{{zone}}".replace("-", "_")
    config.write_text(
        json.dumps(
            {
                "registered_model": model,
                "evaluation_days": 10,
                "min_training_days": 25,
                "dnn": {"hidden": [16], "epochs": 4, "patience": 2},
                "load_dnn": {"enabled": False},
                "lear": {"max_iter": 300},
                "tfdv_statistics": False,
                "ensemble": {"members": ["lear"], "combination": {"validation_days": 7}},
                "search": {"trials": 0},
            }
        )
    )
    env = {
        "DAP_MLFLOW_TRACKING_URI": mlflow_server.url,
        "DAP_ZONES": "DE_LU",
        "DAP_MTU_MINUTES": "60",
        "DAP_TRAIN_WINDOW_DAYS": "50",
        "FIT_DONE_FLAG": str(tmp_path / "fit-done"),
    }
    args = ["--delivery-date", TRAIN_DAY.isoformat(), "--zone", "DE_LU", "--config", str(config)]

    def stop_when_logging() -> None:
        flag = tmp_path / "fit-done"
        for _ in range(3000):
            if flag.exists():
                mlflow_server.down()
                return
            threading.Event().wait(0.1)

    watcher = threading.Thread(target=stop_when_logging)
    watcher.start()
    restarted = MlflowServer(mlflow_server.root, mlflow_server.port, mlflow_server.backend_uri, s3.env())
    try:
        first = run_stage("train", args, env, root, wrap=STOP_SERVER_AFTER_FIRST_RUN)
    finally:
        watcher.join()
        restarted.up(timeout=300)
        mlflow_server.proc = restarted.proc
    assert first.returncode == SERVICE_UNAVAILABLE_EXIT, first.stderr[-2000:]
    last = first.stderr.strip().splitlines()[-1]
    assert mlflow_server.url.removeprefix("http://") in last, last
    assert "Traceback" not in first.stderr

    retry = run_stage("train", args, env, root)
    assert retry.returncode == 0, retry.stderr[-2000:]
    run_id = str(stage_result(retry)["run_id"])
    with_run = [*args, "--run-id", run_id]
    assert run_stage("evaluate", with_run, env, root).returncode == 0
    for _ in range(2):  # a register retried after its answer was lost registers nothing new
        registered = run_stage("register", with_run, env, root)
        assert registered.returncode == 0, registered.stderr[-2000:]

    # The registry is read from its PostgreSQL store itself: what the stages left there is the
    # fact under test, whatever became of the server process since.
    if not server_answers(mlflow_server.url):
        log = mlflow_server.root / "logs" / f"mlflow-{mlflow_server.port}.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        warnings.warn(f"the restarted MLflow server no longer answers; its log ends:\n{tail}", stacklevel=1)
    client = MlflowClient(tracking_uri=mlflow_server.backend_uri, registry_uri=mlflow_server.backend_uri)
    versions = client.search_model_versions(f"name='{model.format(zone='DE_LU')}'")
    assert [(str(v.version), v.run_id) for v in versions] == [("1", run_id)]
