"""End to end: the main job (bootstrap + the daily DAG with dag.test()) for one delivery day.

Runs exactly what ``make demo`` runs (``python -m devtools.demo``) on a throwaway data root,
for the autumn DST day (25 hours, 100 quarter-hours) with a short training window so it
fits CI, then re-runs the same day and checks that nothing changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-10-25"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _demo(data_root: Path, day: str = DAY, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DAP_DATA_ROOT": str(data_root),
        "DAP_ZONES": "DE_LU,BE",
        "DAP_TRAIN_WINDOW_DAYS": "84",
        **extra_env,
    }
    for key in ("DAP_MLFLOW_TRACKING_URI", "DAP_MLFLOW_ARTIFACT_ROOT"):
        env.pop(key, None)  # the demo's own project-local store under the data root's parent
    return subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--delivery-date", day, "--history-days", "100"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )


def _latest(data_root: Path) -> Path:
    day_dir = data_root / "schedules" / f"day={DAY}"
    pointer = json.loads((day_dir / "LATEST").read_text())
    return day_dir / pointer["version"]


def test_daily_run_publishes_a_valid_schedule_and_is_repeatable(tmp_path: Path) -> None:
    import pandas as pd

    data_root = tmp_path / "data"
    first = _demo(data_root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    assert "Schedule for delivery day 2026-10-25" in first.stdout
    version = _latest(data_root)
    assert str(version) in first.stdout  # the main job prints the schedule's path

    schedule = pd.read_parquet(version / "schedule.parquet")
    # One row per quarter-hour of the 25-hour day and asset (portfolio row + storage per zone).
    for (_zone, _asset), rows in schedule.groupby(["zone", "asset"]):
        assert len(rows) == 100
        assert rows["mtu_index"].tolist() == list(range(100))
    assert set(schedule["zone"]) == {"DE_LU", "BE"}
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["delivery_date"] == DAY
    # Input data revisions: every processed file behind each zone's forecast, down to the raw revision.
    for zone in ("DE_LU", "BE"):
        sources = manifest["inputs"][zone]["sources"]
        datasets = {s["dataset"] for s in sources}
        assert {"day_ahead_prices", "load_forecast", "renewables_forecast"} <= datasets, datasets
        assert all(s["raw_file"].endswith((".xml", ".json")) and s["revision"] >= 1 for s in sources), sources
        assert {s["day"] for s in sources if s["dataset"] == "load_forecast"} >= {DAY}
    # BE's models read DE_LU's forecasts (the default neighbour_zones): its lineage names them.
    from_neighbour = {(s["dataset"], s["day"]) for s in manifest["inputs"]["BE"]["sources"] if s.get("zone")}
    assert {("load_forecast", DAY), ("renewables_forecast", DAY)} <= from_neighbour
    assert {s.get("zone") for s in manifest["inputs"]["BE"]["sources"]} == {None, "DE_LU"}
    assert not any(s.get("zone") for s in manifest["inputs"]["DE_LU"]["sources"])
    assert (version / "bids.parquet").exists()
    assert not (data_root / "gates" / "zone=DE_LU" / f"{DAY}.json").exists()

    # Models were registered and the champion served the forecast.
    forecasts = sorted((data_root / "forecasts").glob(f"zone=*/{DAY}.json"))
    assert len(forecasts) == 2
    for sidecar in forecasts:
        meta = json.loads(sidecar.read_text())
        assert meta.get("model_version")

    # Re-running the same day gives the same content.
    before = {p.name: p.read_bytes() for p in version.iterdir() if p.suffix in {".parquet", ".csv"}}
    second = _demo(data_root)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-5000:]
    again = _latest(data_root)
    after = {p.name: p.read_bytes() for p in again.iterdir() if p.suffix in {".parquet", ".csv"}}
    assert after == before

    # A bad day: BE's load forecast for the next day is 4x its real size (well-formed XML, so it
    # lands); the input gate stops the run, nothing is published, the previous day is untouched.
    bad_day = "2026-10-26"
    latest_before = (data_root / "schedules" / f"day={DAY}" / "LATEST").read_bytes()
    bad = _demo(data_root, bad_day, DAP_SIMULATOR_FAULTS=json.dumps({f"BE:{bad_day}": "load_above_capacity"}))
    assert bad.returncode != 0, bad.stdout[-3000:]
    assert "DAG run failed" in bad.stderr
    marker = json.loads((data_root / "gates" / "zone=BE" / f"{bad_day}.json").read_text())
    failed = [e["name"] for e in marker["datasets"]["inputs"]["failed_expectations"]]
    assert "load_forecast.load_mw.below_capacity" in failed, failed
    assert not (data_root / "gates" / "zone=DE_LU" / f"{bad_day}.json").exists()
    assert not (data_root / "schedules" / f"day={bad_day}" / "LATEST").exists()
    assert not list((data_root / "schedules" / f"day={bad_day}").glob("v=*/schedule.parquet"))
    assert not (data_root / "forecasts" / "zone=BE" / f"{bad_day}.parquet").exists()
    assert (data_root / "schedules" / f"day={DAY}" / "LATEST").read_bytes() == latest_before
    untouched = {p.name: p.read_bytes() for p in again.iterdir() if p.suffix in {".parquet", ".csv"}}
    assert untouched == before
