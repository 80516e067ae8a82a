"""Schedule gate on versions written by tasks.schedule; a failed gate blocks publishing.

Bad schedules are made by editing a real version the way a bug would (and, for
the publish test, re-signing the manifest), so only the gate stands between
them and the ``latest`` pointer.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from tasks.errors import GateClosedError, ValidationFailed
from tasks.publish import current_pointer, publish
from tasks.quality.gx_runner import GxRunner
from tasks.schedule import run_schedule
from tasks.storage import Layout, sha256_file
from tasks.timeutil import mtu_starts_utc
from tasks.validate import run_gate

if TYPE_CHECKING:
    from tasks.config import Settings

pytestmark = pytest.mark.integration

ZONE = "DE_LU"
DAY = date(2026, 10, 25)  # 25-hour day: 100 MTUs
BESS = "de-bess-1"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> GxRunner:
    return GxRunner(tmp_path_factory.mktemp("gx"))


def write_forecast(settings: Settings, day: date, seed: int = 0) -> None:
    starts = mtu_starts_utc(day, settings.market_timezone, settings.mtu_minutes)
    n = len(starts)
    rng = np.random.default_rng(seed)
    x = np.arange(n) / n
    p50 = 60 + 35 * np.sin(4 * np.pi * x) + rng.normal(0, 5, n)
    frame = pd.DataFrame(
        {
            "timestamp_utc": pd.DatetimeIndex(starts),
            "resolution_minutes": settings.mtu_minutes,
            "price_q10": p50 - 12,
            "price_q50": p50,
            "price_q90": p50 + 18,
            "load_mw": 50_000 + 8_000 * np.sin(2 * np.pi * x),
            "wind_mw": rng.uniform(2_000, 20_000, n),
            "solar_mw": np.clip(25_000 * np.sin(2 * np.pi * (x - 0.25)), 0, None),
        }
    )
    path = Layout(settings.data_root).forecast_file(ZONE, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    path.with_suffix(".json").write_text(json.dumps({"model_name": "p", "model_version": "1", "run_id": "r"}))


@pytest.fixture
def version(settings: Settings) -> Path:
    write_forecast(settings, DAY)
    return Path(run_schedule(DAY, settings, log_mlflow=False)["version_dir"])


def tampered(version: Path, tmp_path: Path, name: str, edit: object) -> Path:
    """A copy of the version dir with ``edit(frame)`` applied to ``name``.parquet."""
    target = tmp_path / "candidate" / version.name
    shutil.copytree(version, target)
    frame = pd.read_parquet(target / f"{name}.parquet")
    edited = edit(frame)  # type: ignore[operator]
    frame = frame if edited is None else edited
    frame.to_parquet(target / f"{name}.parquet", index=False)
    return target


def failed(settings: Settings, runner: GxRunner, schedule_dir: Path) -> set[str]:
    with pytest.raises(ValidationFailed) as err:
        run_gate("schedule", ZONE, DAY, settings, schedule_dir=schedule_dir, runner=runner)
    marker = json.loads(Layout(settings.data_root).gate_file(ZONE, DAY).read_text())
    names = {f["name"] for f in marker["datasets"]["schedule"]["failed_expectations"]}
    assert all(n in str(err.value) for n in names)
    return names


def test_schedule_from_the_optimiser_passes(settings: Settings, runner: GxRunner, version: Path) -> None:
    result = run_gate("schedule", ZONE, DAY, settings, runner=runner)  # default: newest version
    assert result["passed"] is True
    assert result["warnings"] == []
    assert set(result["data_days"]) == {"schedule", "bids"}


def test_broken_energy_balance(settings: Settings, runner: GxRunner, version: Path, tmp_path: Path) -> None:
    def edit(frame: pd.DataFrame) -> None:
        rows = np.flatnonzero(frame["asset"] == f"portfolio-{ZONE}")
        frame["position_mw"] += np.where(np.arange(len(frame)) == rows[7], 5.0, 0.0)

    assert failed(settings, runner, tampered(version, tmp_path, "schedule", edit)) == {
        "schedule.energy_balance"
    }


def test_state_of_charge_beyond_limits(
    settings: Settings, runner: GxRunner, version: Path, tmp_path: Path
) -> None:
    """SoC above the asset's maximum (and, since nothing charged it, a jump the flows do not explain)."""

    def edit(frame: pd.DataFrame) -> None:
        rows = frame.index[frame["asset"] == BESS][40:]
        frame.loc[rows, "soc_mwh"] = frame.loc[rows, "soc_max_mwh"] + 1.0

    assert failed(settings, runner, tampered(version, tmp_path, "schedule", edit)) == {
        "schedule.storage_soc_within_limits",
        "schedule.storage_soc_continuity",
    }


def test_charge_and_discharge_in_the_same_mtu(
    settings: Settings, runner: GxRunner, version: Path, tmp_path: Path
) -> None:
    """Both legs at once keep balance and state of charge consistent, yet no asset can follow them."""

    def edit(frame: pd.DataFrame) -> None:
        bess = frame[frame["asset"] == BESS]
        row = bess.index[(bess["charge_mw"] < 5) & (bess["discharge_mw"] < 5)][0]
        at = frame["delivery_start_utc"] == frame.loc[row, "delivery_start_utc"]
        portfolio = frame.index[at & (frame["asset"] == f"portfolio-{ZONE}")][0]
        leg = float(np.sqrt(0.9))
        burn = 2.0  # charge 2 MW more and discharge 0.9 * 2 MW more: same state of charge
        for r in (row, portfolio):
            frame.loc[r, "charge_mw"] += burn
            frame.loc[r, "discharge_mw"] += burn * leg * leg
            frame.loc[r, "position_mw"] += burn - burn * leg * leg

    assert failed(settings, runner, tampered(version, tmp_path, "schedule", edit)) == {
        "schedule.storage_one_leg_per_mtu"
    }


def test_missing_asset_row(settings: Settings, runner: GxRunner, version: Path, tmp_path: Path) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(index=frame.index[frame["asset"] == BESS][-1])

    assert failed(settings, runner, tampered(version, tmp_path, "schedule", edit)) == {
        "schedule.row_count_per_mtu",
        "schedule.storage_soc_continuity",  # the portfolio row's SoC no longer sums its assets
    }


def test_bids_not_monotone_or_beyond_exchange_limits(
    settings: Settings, runner: GxRunner, version: Path, tmp_path: Path
) -> None:
    def edit(frame: pd.DataFrame) -> None:
        # Buys more at a higher price: the first point's volume drops below the second's.
        first, second = np.flatnonzero(frame["mtu_index"] == 12)[:2]
        volume = frame["volume_mw"].to_numpy(dtype=float, copy=True)
        volume[first] = volume[second] - 50.0
        frame["volume_mw"] = volume
        last = frame.index[frame["mtu_index"] == 30][-1]
        frame.loc[last, "price_eur_mwh"] = 4500.0

    assert failed(settings, runner, tampered(version, tmp_path, "bids", edit)) == {
        "bids.volumes_monotone",
        "bids.price_within_exchange_limits",
        "bids.curve_spans_price_range",
    }


def test_failed_gate_publishes_nothing_and_keeps_previous_schedules(
    settings: Settings, runner: GxRunner, version: Path
) -> None:
    layout = Layout(settings.data_root)
    day_dir = layout.schedule_dir(DAY)
    run_gate("schedule", ZONE, DAY, settings, runner=runner)
    publish(DAY, settings)
    assert current_pointer(day_dir) == "v=001"
    before = {p.name: sha256_file(p) for p in version.iterdir()}

    # A later run of the day writes v=002 whose balance is broken; its manifest is
    # re-signed so that only the gate can stop it.
    write_forecast(settings, DAY, seed=5)
    bad = Path(run_schedule(DAY, settings, log_mlflow=False)["version_dir"])
    assert bad.name == "v=002"
    frame = pd.read_parquet(bad / "schedule.parquet")
    frame["position_mw"] += np.where(np.arange(len(frame)) == 0, 3.0, 0.0)
    frame.to_parquet(bad / "schedule.parquet", index=False)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["files"]["schedule.parquet"]["sha256"] = sha256_file(bad / "schedule.parquet")
    (bad / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ValidationFailed, match=r"schedule\.energy_balance"):
        run_gate("schedule", ZONE, DAY, settings, runner=runner)
    with pytest.raises(GateClosedError):
        publish(DAY, settings)
    assert current_pointer(day_dir) == "v=001"
    assert {p.name: sha256_file(p) for p in version.iterdir()} == before


def test_publish_only_a_version_the_gate_passed(settings: Settings, runner: GxRunner, version: Path) -> None:
    layout = Layout(settings.data_root)
    day_dir = layout.schedule_dir(DAY)
    with pytest.raises(
        ValidationFailed, match=r"v=001 of 2026-10-25 has not passed the schedule gate"
    ) as err:
        publish(DAY, settings)
    assert f"--dataset schedule --schedule-dir {version}" in str(err.value)
    run_gate("schedule", ZONE, DAY, settings, runner=runner)
    publish(DAY, settings)

    # A later run (manual, or a cleared task) writes v=002 after the gate ran: not published.
    write_forecast(settings, DAY, seed=3)
    newer = Path(run_schedule(DAY, settings, log_mlflow=False)["version_dir"])
    with pytest.raises(ValidationFailed, match=r"v=002 of 2026-10-25 has not passed") as err:
        publish(DAY, settings)
    assert f"python -m tasks.validate --delivery-date 2026-10-25 --zone {ZONE} --dataset schedule" in str(
        err.value
    )
    assert current_pointer(day_dir) == "v=001"
    assert publish(DAY, settings, "v=001")["version"] == "v=001"  # roll back to a validated one

    run_gate("schedule", ZONE, DAY, settings, schedule_dir=newer, runner=runner)
    assert publish(DAY, settings)["version"] == "v=002"
    # Changed after its validation (re-signed manifest): refused until validated again.
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["figures"] = {}
    (newer / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValidationFailed, match="has not passed the schedule gate"):
        publish(DAY, settings, "v=002")
