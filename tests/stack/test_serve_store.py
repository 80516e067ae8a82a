"""The schedule API over an object-store data root (DAP_DATA_URL) on the real S3 server."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from devtools.sample_schedules import publish_day
from devtools.stack import SeaweedS3, free_port
from tasks.config import Settings
from tasks.objectstore import ObjectStore
from tests.helpers.serve import ApiDidNotStart, start_api
from tests.stack.test_faults import keys

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 28)
TOKEN = "store-token"


def test_api_serves_the_store_and_follows_a_new_publish_without_writing(
    s3_env: dict[str, str], tmp_path: Path
) -> None:
    """A writer publishes v=001 to the store; the API (its own mirror) serves it byte for byte,
    picks up v=002 once it is published, and leaves the store as the writer left it."""
    writer = Settings(data_root=tmp_path / "writer", zones=("DE_LU",))
    store = ObjectStore(s3_env["DAP_DATA_URL"], writer.data_root)
    publish_day(writer, DAY, seed=1)
    store.push()
    api = start_api(
        tmp_path / "api-mirror",
        port := free_port(),
        {"DAP_API_TOKENS": TOKEN, "DAP_ZONES": "DE_LU", "DAP_API_SYNC_SECONDS": "1"},
    )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    try:
        csv = client.get(f"/v1/days/{DAY}/schedule", headers={"Accept": "text/csv"})
        assert csv.status_code == 200, csv.text
        published = writer.data_root / "schedules" / f"day={DAY}" / "v=001" / "schedule.csv"
        assert csv.content == published.read_bytes()
        ready = client.get("/ready").json()
        assert ready["status"] == "ready", ready
        assert ready["store"] == s3_env["DAP_DATA_URL"], ready

        publish_day(writer, DAY, seed=3)  # v=002 replaces v=001 as the published version
        store.push()
        in_store = keys(s3_env)
        deadline = time.monotonic() + 60
        version = None
        while time.monotonic() < deadline:
            version = client.get(f"/v1/days/{DAY}/schedule", params={"zone": "DE_LU"}).json()["version"]
            if version == "v=002":
                break
            time.sleep(0.5)
        assert version == "v=002"
        assert keys(s3_env) == in_store, "the API wrote to the store"
        metrics = client.get("/metrics").text
        assert "dap_api_store_sync_timestamp_seconds" in metrics
    finally:
        client.close()
        api.terminate()
        api.wait(timeout=20)


def test_api_does_not_start_on_a_store_it_cannot_reach(
    s3: SeaweedS3, s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    with pytest.raises(ApiDidNotStart, match=rf"ServiceUnavailable.*{dead.removeprefix('http://')}"):
        start_api(tmp_path / "mirror", free_port(), {"DAP_API_TOKENS": TOKEN}, timeout=120)
