"""Pure parts of the quality gates: suite specs, severities, derived columns, gate marker."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import StorageAsset
from tasks.datasets import SDAC_PRICE_CAP_EUR_MWH, SDAC_PRICE_FLOOR_EUR_MWH
from tasks.errors import ConfigError
from tasks.quality import gate, prepare, schedule_checks
from tasks.quality.gx_runner import CheckOutcome, SuiteOutcome
from tasks.quality.specs import SeverityPolicy, resolve_suite, suite_names, zone_limits
from tasks.storage import Layout
from tasks.timeutil import mtu_starts_utc

pytestmark = pytest.mark.unit

TZ = "Europe/Berlin"


def frame_for(day: date, mtu: int = 15, column: str = "price_eur_mwh") -> pd.DataFrame:
    ts = pd.DatetimeIndex(mtu_starts_utc(day, TZ, mtu))
    return pd.DataFrame({"timestamp_utc": ts, "resolution_minutes": mtu, column: np.linspace(1, 2, len(ts))})


def params_for(frame: pd.DataFrame, day: date, mtu: int, values: tuple[str, ...]) -> dict[str, object]:
    return {
        **prepare.timeseries_params(
            frame, day, TZ, resolution=mtu, key_columns=("timestamp_utc",), value_columns=values
        ),
        **zone_limits("DE_LU"),
        "price_floor_eur_mwh": SDAC_PRICE_FLOOR_EUR_MWH,
        "price_cap_eur_mwh": SDAC_PRICE_CAP_EUR_MWH,
        "mtu_minutes": 15,
        "assets": ["a"],
        "n_assets": 1,
        "tolerance_mw": 1e-3,
        "neg_tolerance_mw": -1e-3,
        "tolerance_mwh": 1e-3,
        "neg_tolerance_mwh": -1e-3,
        "n_slots_minus_one": 95,
        "last_mtu_index": 95,
        "price_columns": ["price_lag1"],
        "load_columns": ["load_mw"],
        "wind_columns": ["wind_mw"],
        "solar_columns": ["solar_mw"],
        "weather_columns": ["temperature_c"],
    }


def test_committed_tfdv_schema_bounds_prices_at_the_sdac_limits() -> None:
    """The schema file is generated (tfdv_checks --write-schema); its price domains must track the constants."""
    from tasks.quality.tfdv_checks import SCHEMA_PATH

    blocks = re.findall(
        r'name: "(price_[^"]+)"\s+type: FLOAT\s+float_domain \{\s+min: (\S+)\s+max: (\S+)',
        SCHEMA_PATH.read_text(),
    )
    assert blocks, "no price feature with a float domain in the schema"
    for name, low, high in blocks:
        assert (float(low), float(high)) == (SDAC_PRICE_FLOOR_EUR_MWH, SDAC_PRICE_CAP_EUR_MWH), name


def test_gx_suites_take_price_limits_from_settings() -> None:
    """No GX suite hard-codes the exchange limits: every price-range check reads the settings' floor and cap."""
    from tasks.quality.specs import EXPECTATIONS_DIR

    checks = [
        expectation
        for path in sorted((EXPECTATIONS_DIR / "suites").glob("*.json"))
        for expectation in json.loads(path.read_text())["expectations"]
        if expectation["name"].endswith(("within_exchange_limits", "within_sdac_limits"))
    ]
    assert len(checks) >= 4
    for check in checks:
        bounds = (check["kwargs"]["min_value"], check["kwargs"]["max_value"])
        assert bounds == ("$price_floor_eur_mwh", "$price_cap_eur_mwh"), check["name"]


def test_every_suite_resolves_with_unique_names() -> None:
    day = date(2026, 6, 10)
    frame = frame_for(day)
    names = suite_names()
    assert {"day_ahead_prices", "load_forecast", "features", "schedule", "bids"} <= set(names)
    for name in names:
        suite = resolve_suite(name, params_for(frame, day, 15, ("price_eur_mwh",)))
        assert suite.expectations, name
        assert len(set(suite.names())) == len(suite.names())
        assert all(e.name.startswith(f"{name}.") for e in suite.expectations), name
        assert all(e.gx_class_name.startswith("Expect") for e in suite.expectations)


@pytest.mark.parametrize(
    ("day", "mtu", "rows"),
    [
        (date(2026, 3, 29), 15, 92),
        (date(2026, 10, 25), 15, 100),
        (date(2026, 10, 25), 60, 25),
        (date(2026, 6, 1), 60, 24),
    ],
)
def test_expected_rows_follow_dst(day: date, mtu: int, rows: int) -> None:
    frame = frame_for(day, mtu)
    suite = resolve_suite("day_ahead_prices", params_for(frame, day, mtu, ("price_eur_mwh",)))
    count = next(e for e in suite.expectations if e.name == "day_ahead_prices.row_count_per_mtu")
    assert count.kwargs == {"value": rows}
    contiguous = next(e for e in suite.expectations if e.name == "day_ahead_prices.timestamps_contiguous")
    assert contiguous.kwargs["value_set"] == [mtu]


def test_missing_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"suite parameter \$\w+ has no value"):
        resolve_suite("day_ahead_prices", {"value_columns": ["price_eur_mwh"]})


def test_severity_exact_pattern_default_and_override() -> None:
    policy = SeverityPolicy()
    assert policy("day_ahead_prices.price_not_constant") == "warn"
    assert policy("weather_forecast.ghi_w_m2.plausible") == "fail"
    assert policy("meter_readings.file_present") == "warn"
    assert policy("load_forecast.load_mw.non_negative") == "fail"
    relaxed = SeverityPolicy({"load_forecast.*": "warn"})
    assert relaxed("load_forecast.load_mw.non_negative") == "warn"
    with pytest.raises(ConfigError, match="fail' or 'warn"):
        SeverityPolicy({"x": "ignore"})  # type: ignore[dict-item]


def test_unknown_zone_limits_say_where_to_add_them() -> None:
    with pytest.raises(ConfigError, match=r"limits\.json"):
        zone_limits("XX")


def test_derived_columns_flag_gap_duplicate_and_naive_time() -> None:
    day = date(2026, 10, 25)
    good = prepare.prepare_timeseries(frame_for(day), day, TZ, resolution=15)
    assert set(good["_gap_minutes"].dropna()) == {15.0}
    assert good["_offset_minutes"].max() == 99 * 15  # 25-hour day
    assert set(good["_tz"]) == {"UTC"}
    bad = frame_for(day).drop(index=[10, 11, 12, 13])
    bad = pd.concat([bad, bad.iloc[[0]]])
    prepared = prepare.prepare_timeseries(bad, day, TZ, resolution=15)
    assert sorted(prepared["_gap_minutes"].dropna().unique()) == [0.0, 15.0, 75.0]
    assert prepared["_key"].duplicated().sum() == 1
    naive = frame_for(day).assign(timestamp_utc=lambda f: f["timestamp_utc"].dt.tz_localize(None))
    assert set(prepare.prepare_timeseries(naive, day, TZ, resolution=15)["_tz"]) == {"naive"}
    mismatch = prepare.grid_mismatch(bad, day, TZ, 15)
    assert len(mismatch["missing"]) == 4
    assert len(mismatch["duplicated"]) == 1


def _storage() -> StorageAsset:
    return StorageAsset(
        name="bess", zone="DE_LU", power_mw=10, energy_mwh=20, round_trip_efficiency=0.81,
        soc_min_frac=0.1, soc_max_frac=0.9, soc_start_frac=0.5,
    )  # fmt: skip


def _schedule(day: date) -> pd.DataFrame:
    ts = pd.DatetimeIndex(mtu_starts_utc(day, TZ, 60))
    n = len(ts)
    charge = np.where(np.arange(n) < 4, 2.0, 0.0)
    discharge = np.where((np.arange(n) >= 10) & (np.arange(n) < 13), 3.0, 0.0)
    soc = 10 + np.cumsum(0.9 * charge - discharge / 0.9)
    common = {
        "delivery_start_utc": ts,
        "resolution_minutes": 60,
        "price_q10": 1.0,
        "price_q50": 2.0,
        "price_q90": 3.0,
    }
    storage = pd.DataFrame(
        {**common, "asset": "bess", "position_mw": charge - discharge, "charge_mw": charge,
         "discharge_mw": discharge, "soc_mwh": soc, "soc_min_mwh": 2.0, "soc_max_mwh": 18.0,
         "retail_load_mw": 0.0, "renewables_mw": 0.0}
    )  # fmt: skip
    portfolio = storage.assign(
        asset="portfolio-DE_LU", retail_load_mw=100.0, renewables_mw=30.0,
        position_mw=70.0 + charge - discharge,
    )  # fmt: skip
    return pd.concat([portfolio, storage], ignore_index=True)


def test_schedule_residuals_are_zero_for_a_consistent_schedule() -> None:
    out = schedule_checks.prepare_schedule(_schedule(date(2026, 6, 1)), (_storage(),), "DE_LU", 60)
    assert out["_balance_residual_mw"].abs().max() < 1e-9
    assert out["_soc_residual_mwh"].abs().max() < 1e-9
    assert out["_soc_margin_mwh"].min() > 0
    assert out.loc[out["asset"] == "bess", "_power_margin_mw"].min() == 7.0
    assert out["_quantiles_ordered"].all()


def test_schedule_residuals_catch_broken_physics() -> None:
    bad = _schedule(date(2026, 6, 1))
    bad["position_mw"] += np.where(bad.index == 3, 2.0, 0.0)  # portfolio balance
    bad.loc[bad["asset"] == "bess", "soc_mwh"] += np.r_[np.zeros(20), [12.0] * 4]  # SoC jump above max
    bad.loc[bad.index[-1], "charge_mw"] = 12.0  # above rating
    bad.loc[0, "price_q10"] = 5.0  # crossed quantiles
    out = schedule_checks.prepare_schedule(bad, (_storage(),), "DE_LU", 60)
    assert out.loc[3, "_balance_residual_mw"] == pytest.approx(2.0)
    assert (out["_soc_residual_mwh"].abs() > 1e-3).any()
    assert out["_soc_margin_mwh"].min() < 0
    assert out["_power_margin_mw"].min() < 0
    assert not out.loc[0, "_quantiles_ordered"]


def test_bid_steps_detect_non_monotone_curves() -> None:
    bids = pd.DataFrame(
        {"mtu_index": [0, 0, 0, 1, 1, 1], "point": [0, 1, 2, 0, 1, 2],
         "price_eur_mwh": [-500.0, 50.0, 4000.0, -500.0, 60.0, 4000.0],
         "volume_mw": [10.0, 5.0, 0.0, 10.0, 12.0, 0.0]}
    )  # fmt: skip
    out = schedule_checks.prepare_bids(bids, -500.0, 4000.0)
    assert out.loc[3, "_volume_step"] == 2.0  # curve 1 buys more at a higher price: flagged (> 0)
    assert (out.loc[[0, 1, 4], "_volume_step"] < 0).all()
    assert out.loc[[2, 5], "_volume_step"].isna().all()  # last point of each curve
    assert out["_spans_price_range"].all()
    assert set(out["_points_in_curve"]) == {3}


def _result(day: date, *, failed: bool) -> gate.GateResult:
    check = CheckOutcome(
        name="day_ahead_prices.price_within_sdac_limits", expectation_type="expect_column_values_to_be_between",
        severity="fail", success=not failed, unexpected_count=1 if failed else 0,
        sample=[{"timestamp_utc": "2026-06-09T10:00:00+00:00", "price_eur_mwh": 5000.0}] if failed else [],
    )  # fmt: skip
    suite = SuiteOutcome(
        suite="day_ahead_prices", data_day=(day - timedelta(days=1)).isoformat(), checks=[check]
    )
    return gate.GateResult("inputs", "DE_LU", day, [suite])


def test_gate_marker_written_on_failure_and_cleared_on_pass(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    day = date(2026, 6, 10)
    report = tmp_path / "r.json"
    rerun = gate.rerun_hint("inputs", "DE_LU", day, {"day_ahead_prices": "2026-06-09"})
    path = gate.update_gate(layout, _result(day, failed=True), report=report, data_docs="", rerun=rerun)
    assert path == layout.gate_file("DE_LU", day)
    marker = json.loads(path.read_text())
    assert marker["datasets"]["inputs"]["failed_expectations"][0]["name"] == (
        "day_ahead_prices.price_within_sdac_limits"
    )
    assert any(
        "tasks.ingest --delivery-date 2026-06-10" in step for step in marker["datasets"]["inputs"]["rerun"]
    )
    # Another dataset's failure is kept when inputs pass again.
    other = gate.GateResult("features", "DE_LU", day, _result(day, failed=True).suites)
    gate.update_gate(layout, other, report=report, data_docs="", rerun=rerun)
    assert gate.update_gate(layout, _result(day, failed=False), report=report, data_docs="", rerun=rerun)
    assert gate.gated_datasets(layout, "DE_LU", day) == ["features"]
    gate.update_gate(
        layout, gate.GateResult("features", "DE_LU", day, _result(day, failed=False).suites),
        report=report, data_docs="", rerun=rerun,
    )  # fmt: skip
    assert not path.exists()


def test_failure_message_names_dataset_day_check_sample_and_fix(tmp_path: Path) -> None:
    day = date(2026, 6, 10)
    rerun = gate.rerun_hint("inputs", "DE_LU", day, {"day_ahead_prices": "2026-06-09"})
    text = gate.failure_message(
        _result(day, failed=True), tmp_path / "r.json", "file:///docs/index.html", rerun
    )
    assert "'inputs'" in text
    assert "2026-06-10" in text
    assert "day_ahead_prices.price_within_sdac_limits" in text
    assert "5000.0" in text
    assert "file:///docs/index.html" in text
    assert "airflow dags trigger day_ahead_daily" in text
