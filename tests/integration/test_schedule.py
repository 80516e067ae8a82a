"""tasks.schedule and tasks.publish end to end on real files: DST days, contract, versions, crashes, MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from devtools.sample_schedules import write_forecast as sample_forecast
from tasks.bids import check_curve, cleared_volume
from tasks.config import Settings, get_settings
from tasks.errors import (
    ConfigError,
    GateClosedError,
    InfeasibleScheduleError,
    MissingInputError,
    PointerError,
    ValidationFailed,
)
from tasks.publish import current_pointer, publish, schema_errors
from tasks.quality.gate import record_schedule_validation
from tasks.schedule import run_schedule
from tasks.storage import Layout, write_json_atomic
from tasks.timeutil import mtu_starts_utc

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

PORTFOLIO: dict[str, Any] = {
    "retail_loads": [{"zone": "DE_LU", "share_of_system_load": 0.02}, {"zone": "BE", "share_of_system_load": 0.05}],
    "renewables": [
        {"name": "de-wind", "zone": "DE_LU", "technology": "wind", "share_of_zone": 0.01},
        {"name": "de-solar", "zone": "DE_LU", "technology": "solar", "share_of_zone": 0.01},
        {"name": "be-wind", "zone": "BE", "technology": "wind", "share_of_zone": 0.03},
    ],
    "storage": [
        {"name": "de-bess-1", "zone": "DE_LU", "power_mw": 10, "energy_mwh": 20, "round_trip_efficiency": 0.9,
         "soc_min_frac": 0.05, "soc_max_frac": 0.95, "max_cycles_per_day": 2, "degradation_eur_per_mwh": 2.0},
        {"name": "de-bess-2", "zone": "DE_LU", "power_mw": 4, "energy_mwh": 16, "round_trip_efficiency": 0.85,
         "soc_start_frac": 0.2, "soc_end_frac": 0.6},
        {"name": "be-bess-1", "zone": "BE", "power_mw": 10, "energy_mwh": 20, "round_trip_efficiency": 0.9},
    ],
}  # fmt: skip
N_STORAGE = {"DE_LU": 2, "BE": 1}


@pytest.fixture
def env(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(PORTFOLIO))
    monkeypatch.setenv("DAP_PORTFOLIO_FILE", str(path))
    monkeypatch.setenv("DAP_ZONES", "DE_LU,BE")
    get_settings.cache_clear()
    return get_settings()


def write_forecast(settings: Settings, zone: str, day: date, seed: int = 0) -> Path:
    return sample_forecast(settings, zone, day, seed=seed, model_version="4", run_id="0123abcd")


def check_contract(result: dict, settings: Settings, day: date) -> None:
    vdir = Path(result["version_dir"])
    n = len(mtu_starts_utc(day, settings.market_timezone, settings.mtu_minutes))
    sched = pd.read_parquet(vdir / "schedule.parquet")
    assert len(sched) == result["rows"] == sum(n * (1 + N_STORAGE[z]) for z in settings.zones)
    for (zone, asset), rows in sched.groupby(["zone", "asset"]):
        assert len(rows) == n, (zone, asset)
        assert rows["mtu_index"].tolist() == list(range(n))
    # Energy balance and asset limits on every row.
    bal = sched["retail_load_mw"] - sched["renewables_mw"] + sched["charge_mw"] - sched["discharge_mw"]
    assert np.allclose(sched["position_mw"], bal, atol=1e-6)
    assert (sched["soc_mwh"] >= sched["soc_min_mwh"] - 1e-6).all()
    assert (sched["soc_mwh"] <= sched["soc_max_mwh"] + 1e-6).all()
    for a in PORTFOLIO["storage"]:
        rows = sched[sched["asset"] == a["name"]]
        h = settings.mtu_minutes / 60
        assert (rows[["charge_mw", "discharge_mw"]] <= a["power_mw"] + 1e-6).all().all()
        assert rows["soc_mwh"].iloc[-1] == pytest.approx(
            a.get("soc_end_frac", 0.5) * a["energy_mwh"], abs=1e-5
        )
        leg = a["round_trip_efficiency"] ** 0.5
        soc = np.concatenate([[a.get("soc_start_frac", 0.5) * a["energy_mwh"]], rows["soc_mwh"].to_numpy()])
        step = leg * h * rows["charge_mw"].to_numpy() - h / leg * rows["discharge_mw"].to_numpy()
        assert np.allclose(np.diff(soc), step, atol=1e-5)
    port = sched[sched["asset_type"] == "portfolio"]
    for zone, rows in port.groupby("zone"):
        storage = sched[(sched["zone"] == zone) & (sched["asset_type"] == "storage")]
        assert np.allclose(
            rows["charge_mw"].to_numpy(), storage.groupby("mtu_index")["charge_mw"].sum().to_numpy()
        )
    # Local times carry offsets, so the repeated hour of a 25-hour day stays distinguishable.
    assert sched["delivery_start_local"].is_unique is False  # repeated per asset...
    assert port.groupby("zone")["delivery_start_local"].nunique().eq(n).all()  # ...but unique per MTU
    # CSV rows satisfy the JSON Schema.
    csv = pd.read_csv(vdir / "schedule.csv")
    errs = [
        e for r in csv.to_dict("records")[:: max(1, len(csv) // 40)] for e in schema_errors(r, "schedule.v1")
    ]
    assert errs == []
    bids = pd.read_csv(vdir / "bids.csv")
    errs = [
        e for r in bids.to_dict("records")[:: max(1, len(bids) // 40)] for e in schema_errors(r, "bids.v1")
    ]
    assert errs == []
    # Bid curves: one per zone and MTU, legal, and at the expected price they ask the scheduled position.
    assert bids.groupby("zone")["mtu_index"].nunique().eq(n).all()
    for (zone, t), pts in bids.groupby(["zone", "mtu_index"]):
        curve = list(zip(pts["price_eur_mwh"], pts["volume_mw"], strict=True))
        check_curve(curve)
        row = port[(port["zone"] == zone) & (port["mtu_index"] == t)].iloc[0]
        got = cleared_volume(curve, round(row["price_expected"], 1))
        assert got == pytest.approx(row["position_mw"], abs=0.05 * (2 + N_STORAGE[zone]))
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert schema_errors(manifest, "manifest.v1") == []
    assert manifest["inputs"]["DE_LU"]["run_id"] == "0123abcd"


def gate_passed(settings: Settings, day: date, version: str | None = None) -> None:
    """Record what ``tasks.validate --dataset schedule`` records on a pass (the gate itself: test_validate_schedule)."""
    layout = Layout(settings.data_root)
    day_dir = layout.schedule_dir(day)
    name = version or max(p.name for p in day_dir.glob("v=*"))
    for zone in settings.zones:
        record_schedule_validation(layout, zone, day, day_dir / name, passed=True)


@pytest.mark.parametrize(
    ("day", "mtu"),
    [(date(2026, 3, 29), 15), (date(2026, 10, 25), 15), (date(2026, 3, 29), 60), (date(2026, 10, 25), 60)],
)
def test_dst_days_end_to_end(env: Settings, monkeypatch: pytest.MonkeyPatch, day: date, mtu: int) -> None:
    monkeypatch.setenv("DAP_MTU_MINUTES", str(mtu))
    get_settings.cache_clear()
    settings = get_settings()
    for i, zone in enumerate(settings.zones):
        write_forecast(settings, zone, day, seed=i)
    result = run_schedule(day, settings, log_mlflow=False)
    check_contract(result, settings, day)
    assert result["zones"]["DE_LU"]["expected_margin_eur"] > 0
    gate_passed(settings, day)
    published = publish(day, settings)
    assert published["version"] == "v=001"
    link = Layout(settings.data_root).schedule_dir(day) / "latest"
    assert (link / "manifest.json").exists()


def test_versions_reuse_and_publish_pointer(env: Settings) -> None:
    day = date(2026, 6, 2)
    for zone in env.zones:
        write_forecast(env, zone, day)
    first = run_schedule(day, env, log_mlflow=False)
    again = run_schedule(day, env, log_mlflow=False)
    assert again["reused"] is True
    assert again["version_dir"] == first["version_dir"]
    manifest = json.loads(Path(first["manifest"]).read_text())
    # Created time comes from the run (gate closure of D-1 by default), never the wall clock.
    assert manifest["created_utc"] == "2026-06-01T10:00:00Z"
    gate_passed(env, day)
    publish(day, env)
    # New inputs: a new version; the old one and the pointer stay until publish moves it.
    write_forecast(env, "DE_LU", day, seed=9)
    second = run_schedule(day, env, log_mlflow=False, run_ts=datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    assert second["version"] == "v=002"
    assert Path(first["manifest"]).exists()
    day_dir = Layout(env.data_root).schedule_dir(day)
    assert current_pointer(day_dir) == "v=001"
    gate_passed(env, day)
    assert publish(day, env)["previous"] == "v=001"
    assert current_pointer(day_dir) == "v=002"
    assert (day_dir / "latest").resolve().name == "v=002"
    assert (day_dir / "LATEST").stat().st_mode & 0o777 == 0o644  # readable by schedulers' tools
    # Publishing an older version on purpose (roll back) works too.
    assert publish(day, env, "v=001")["version"] == "v=001"


def test_crash_between_write_and_rename_keeps_previous_version(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = date(2026, 6, 3)
    for zone in env.zones:
        write_forecast(env, zone, day)
    first = run_schedule(day, env, log_mlflow=False)
    gate_passed(env, day)
    publish(day, env)
    day_dir = Layout(env.data_root).schedule_dir(day)
    before = {p.name: p.read_bytes() for p in Path(first["version_dir"]).iterdir()}
    write_forecast(env, "BE", day, seed=5)

    def crash(self: Path, target: Path) -> Path:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(Path, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        run_schedule(day, env, log_mlflow=False)
    monkeypatch.undo()
    assert sorted(p.name for p in day_dir.iterdir()) == ["LATEST", "latest", "v=001"]
    assert {p.name: p.read_bytes() for p in Path(first["version_dir"]).iterdir()} == before
    assert current_pointer(day_dir) == "v=001"

    # A crash while moving the pointer leaves the old pointer in place.
    second = run_schedule(day, env, log_mlflow=False)
    assert second["version"] == "v=002"
    gate_passed(env, day)

    def crash_replace(self: Path, target: Path) -> Path:
        raise OSError("simulated crash before pointer rename")

    monkeypatch.setattr(Path, "replace", crash_replace)
    with pytest.raises(OSError, match="pointer rename"):
        publish(day, env)
    monkeypatch.undo()
    assert current_pointer(day_dir) == "v=001"
    assert (day_dir / "latest").resolve().name == "v=001"
    assert not [p for p in day_dir.iterdir() if p.name.startswith(".")]


def test_pointer_stays_consistent_after_a_kill_between_latest_and_link_and_a_corrupt_latest(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = date(2026, 6, 6)
    for zone in env.zones:
        write_forecast(env, zone, day)
    run_schedule(day, env, log_mlflow=False)
    gate_passed(env, day)
    publish(day, env)
    write_forecast(env, "BE", day, seed=3)
    assert run_schedule(day, env, log_mlflow=False)["version"] == "v=002"
    gate_passed(env, day)
    day_dir = Layout(env.data_root).schedule_dir(day)

    def killed(link: Path, target_name: str) -> None:
        raise OSError("killed after LATEST was renamed, before the link was")

    monkeypatch.setattr("tasks.publish._replace_symlink", killed)
    with pytest.raises(OSError, match="killed after LATEST"):
        publish(day, env)
    monkeypatch.undo()
    assert (day_dir / "latest").readlink().name == "v=001"  # one step behind LATEST
    # Readers take LATEST, the authoritative pointer, and the link is repaired from it.
    assert current_pointer(day_dir) == "v=002"
    assert (day_dir / "latest").readlink().name == "v=002"
    # So does the next publish (e.g. a roll back) when the link lags.
    (day_dir / "latest").unlink()
    (day_dir / "latest").symlink_to("v=001")
    assert publish(day, env, "v=002")["previous"] == "v=002"
    assert (day_dir / "latest").readlink().name == "v=002"

    # An empty or corrupt LATEST: readers get one clear error, publish rewrites it.
    for corrupt in ("", "{not json", '{"version": "v=042"}'):
        (day_dir / "LATEST").write_text(corrupt)
        with pytest.raises(PointerError, match=r"python -m tasks\.publish --delivery-date 2026-06-06"):
            current_pointer(day_dir)
        result = publish(day, env)
        assert result["version"] == "v=002"
        assert result["previous"] == "v=002"  # taken from the link
        assert current_pointer(day_dir) == "v=002"
        assert json.loads((day_dir / "LATEST").read_text())["version"] == "v=002"


def test_atomic_writes_fsync_the_file_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    target = tmp_path / "day" / "LATEST"
    write_json_atomic(target, {"version": "v=001"})
    assert [Path(p).parent for p in synced] == [target.parent, tmp_path]
    assert Path(synced[0]).name.startswith(".LATEST.")  # the temp file, before its rename
    assert synced[1] == str(target.parent)  # the directory, after it


def test_leftovers_of_killed_runs_are_removed_by_the_next_schedule_and_publish(env: Settings) -> None:
    day = date(2026, 6, 7)
    for zone in env.zones:
        write_forecast(env, zone, day)
    day_dir = Layout(env.data_root).schedule_dir(day)

    def leave_leftovers() -> None:
        staging = day_dir / ".staging-4242-deadbeef"
        staging.mkdir(parents=True)
        (staging / "schedule.csv").write_text("half")
        (day_dir / ".LATEST.abc123.tmp").write_text('{"vers')
        (day_dir / ".latest.4242.tmp").symlink_to("v=001", target_is_directory=True)

    leave_leftovers()
    run_schedule(day, env, log_mlflow=False)
    assert sorted(p.name for p in day_dir.iterdir()) == ["v=001"]
    leave_leftovers()
    run_schedule(day, env, log_mlflow=False)  # reuses v=001, and still cleans up
    assert sorted(p.name for p in day_dir.iterdir()) == ["v=001"]
    leave_leftovers()
    gate_passed(env, day)
    publish(day, env)
    assert sorted(p.name for p in day_dir.iterdir()) == ["LATEST", "latest", "v=001"]


def test_publish_refuses_closed_gate_and_tampered_files(env: Settings) -> None:
    day = date(2026, 6, 4)
    for zone in env.zones:
        write_forecast(env, zone, day)
    result = run_schedule(day, env, log_mlflow=False)
    layout = Layout(env.data_root)
    gate = layout.gate_file("BE", day)
    gate.parent.mkdir(parents=True)
    gate.write_text("{}")
    with pytest.raises(GateClosedError, match=r"failed its gate for \['BE'\]"):
        publish(day, env)
    gate.unlink()
    csv = Path(result["schedule_csv"])
    csv.write_text(csv.read_text().replace("DE_LU", "DE_XX", 1))
    with pytest.raises(ValidationFailed, match="does not match its manifest checksum"):
        publish(day, env)
    with pytest.raises(MissingInputError, match="not found"):
        publish(day, env, "v=009")
    assert current_pointer(layout.schedule_dir(day)) is None


def test_missing_or_wrong_forecast_is_reported(env: Settings) -> None:
    day = date(2026, 6, 5)
    with pytest.raises(MissingInputError, match=r"run tasks\.forecast first"):
        run_schedule(day, env, log_mlflow=False)
    path = write_forecast(env, "DE_LU", day)
    write_forecast(env, "BE", day)
    frame = pd.read_parquet(path)
    frame.iloc[:-4].to_parquet(path, index=False)
    with pytest.raises(MissingInputError, match="has 92 rows but the 15-minute grid"):
        run_schedule(day, env, log_mlflow=False)


def test_infeasible_portfolio_fails_naming_the_constraint(env: Settings, tmp_path: Path) -> None:
    day = date(2026, 3, 29)
    for zone in env.zones:
        write_forecast(env, zone, day)
    bad = json.loads(json.dumps(PORTFOLIO))
    bad["storage"][0].update(power_mw=0.5, soc_start_frac=0.05, soc_end_frac=0.95)
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(
        InfeasibleScheduleError, match="de-bess-1: end state of charge 95% unreachable from start 5%"
    ):
        run_schedule(day, env.model_copy(update={"portfolio_file": tmp_path / "bad.json"}), log_mlflow=False)
    # The CLI exits 2 with the same message.
    proc = _schedule_cli(env, day, tmp_path / "bad.json")
    assert proc.returncode == 2
    assert "over 23 h" in proc.stderr


def test_portfolio_with_a_mistyped_zone_is_refused_not_scheduled_without_its_load(
    env: Settings, tmp_path: Path
) -> None:
    day = date(2026, 6, 10)
    for zone in env.zones:
        write_forecast(env, zone, day)
    typo = json.loads(json.dumps(PORTFOLIO))
    typo["retail_loads"][0]["zone"] = "DE-LU"  # the DE_LU schedule would buy no retail load at all
    (tmp_path / "typo.json").write_text(json.dumps(typo))
    with pytest.raises(
        ConfigError, match=r"retail_loads\[0\]\.zone: unknown bidding zone 'DE-LU'; known: DE_LU"
    ):
        run_schedule(day, env.model_copy(update={"portfolio_file": tmp_path / "typo.json"}), log_mlflow=False)
    proc = _schedule_cli(env, day, tmp_path / "typo.json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "ERROR ConfigError: portfolio " in proc.stderr
    assert "DE-LU" in proc.stderr
    assert not Layout(env.data_root).schedule_dir(day).exists()


def test_portfolio_with_nothing_in_a_scheduled_zone_is_refused(env: Settings, tmp_path: Path) -> None:
    day = date(2026, 6, 10)
    for zone in env.zones:
        write_forecast(env, zone, day)
    de_only = {key: [e for e in entries if e["zone"] == "DE_LU"] for key, entries in PORTFOLIO.items()}
    (tmp_path / "de_only.json").write_text(json.dumps(de_only))
    with pytest.raises(ConfigError, match=r"no retail load, renewables or storage in zone\(s\) \['BE'\]"):
        run_schedule(
            day, env.model_copy(update={"portfolio_file": tmp_path / "de_only.json"}), log_mlflow=False
        )
    assert not Layout(env.data_root).schedule_dir(day).exists()


def _schedule_cli(settings: Settings, day: date, portfolio: Path) -> subprocess.CompletedProcess[str]:
    """``python -m tasks.schedule`` for ``day`` with ``portfolio``, as the DAG runs it (no MLflow)."""
    return subprocess.run(
        [sys.executable, "-m", "tasks.schedule", "--delivery-date", day.isoformat(), "--no-mlflow"],
        cwd=REPO,
        env={**_env_vars(settings), "DAP_PORTFOLIO_FILE": str(portfolio)},
        capture_output=True,
        text=True,
        check=False,
    )


def _env_vars(settings: Settings) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DAP_DATA_ROOT": str(settings.data_root),
        "DAP_ZONES": ",".join(settings.zones),
    }


def test_cli_logs_summary_to_mlflow_and_survives_mlflow_failure(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    day = date(2026, 6, 6)
    for zone in env.zones:
        write_forecast(env, zone, day)
    result = run_schedule(day, env)
    run = mlflow.MlflowClient(env.tracking_uri).get_run(result["mlflow_run_id"])
    assert run.data.metrics["DE_LU.expected_margin_eur"] == pytest.approx(
        result["zones"]["DE_LU"]["expected_margin_eur"]
    )
    assert {a.path for a in mlflow.MlflowClient(env.tracking_uri).list_artifacts(run.info.run_id)} >= {
        "summary.png",
        "summary.html",
    }
    # MLflow down: the schedule is still written, the result says what failed.
    write_forecast(env, "BE", day, seed=3)
    broken = env.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9/"})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    out = run_schedule(day, broken)
    assert out["version"] == "v=002"
    assert "mlflow_error" in out
    assert Path(out["schedule"]).exists()


def test_timing_shift_is_a_recorded_option(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    day = date(2026, 6, 3)
    for zone in env.zones:
        write_forecast(env, zone, day)
    default = run_schedule(day, env, log_mlflow=False)
    manifest = json.loads(Path(default["manifest"]).read_text())
    assert manifest["options"]["timing_shift"] == env.dispatch_timing_shift
    assert manifest["schema_version"] == "1.4.0"
    # Timing-robust decisions give another version (different options), never a silent reuse.
    robust = run_schedule(day, env, log_mlflow=False, timing_shift=0.25)
    assert robust["reused"] is False
    assert json.loads(Path(robust["manifest"]).read_text())["options"]["timing_shift"] == 0.25
    monkeypatch.setenv("DAP_DISPATCH_TIMING_SHIFT", "0.7")
    get_settings.cache_clear()
    with pytest.raises(
        ConfigError, match=r"DAP_DISPATCH_TIMING_SHIFT: Input should be less than or equal to 0\.5"
    ):
        get_settings()
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="timing-shift"):
        run_schedule(day, env, log_mlflow=False, timing_shift=0.6)
