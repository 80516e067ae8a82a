"""The backtest CLI on the real DE excerpt (LEAR and naive only; the DNN path is an integration test)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tasks import backtest
from tasks.forecasting import design

pytestmark = pytest.mark.unit

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "epf"


def test_origins_cover_the_test_period_once() -> None:
    blocks = backtest._origins(10, 25, 7)
    assert blocks == [(10, 17), (17, 24), (24, 25)]


def test_identify_market_by_columns_and_last_day() -> None:
    de = design.load_csv(FIX / "DE_excerpt.csv")
    assert backtest.identify_market(de) == "DE"
    assert backtest.identify_market(design.load_csv(FIX / "BE_excerpt.csv")) == "BE"
    other = design.DayData(
        de.dates - np.timedelta64(1, "D"), de.prices, de.exog, de.price_name, de.exog_names
    )
    assert backtest.identify_market(other) is None


def test_cli_writes_metrics_and_forecasts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bt"
    args = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14", "--retrain-every", "7"]
    args += ["--lear-windows", "28,56", "--models", "naive,lear", "--out", str(out)]
    assert backtest.cli(args) == 0
    printed = capsys.readouterr().out
    assert "LEAR ens. (published)" in printed  # the excerpt ends like the benchmark's DE file
    assert "DAP_RESULT " in printed
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["test_start"] == "2017-12-18"
    assert summary["test_end"] == "2017-12-31"
    assert summary["market"] == "DE"
    m = summary["metrics"]
    assert set(m) == {"naive", "lear", "lear_28", "lear_56"}
    for name in m:
        assert set(m[name]) == {"mae", "rmae", "smape", "rmse"}
    assert m["naive"]["rmae"] == pytest.approx(1.0)
    assert m["lear"]["rmae"] < 1.0
    with (out / "forecasts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 14 * 24
    assert list(rows[0])[:3] == ["date", "hour", "actual"]
    assert "q50" not in rows[0]
    assert rows[0]["date"] == "2017-12-18"
    assert [r["hour"] for r in rows[:24]] == [str(h) for h in range(24)]
    assert rows[0]["naive"] == ""  # epftoolbox's weekly naive is undefined in the first test week
    assert float(rows[-1]["actual"]) == pytest.approx(design.load_csv(FIX / "DE_excerpt.csv").prices[-1, -1])


def test_cli_explains_an_impossible_test_period(capsys: pytest.CaptureFixture[str]) -> None:
    rc = backtest.cli(["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "100", "--models", "naive"])
    assert rc == 2
    assert "too little history" in capsys.readouterr().err


def test_a_test_period_of_one_week_or_less_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc = backtest.cli(["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "7", "--models", "naive"])
    assert rc == 2
    assert "must exceed 7" in capsys.readouterr().err


def test_unknown_model_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc = backtest.cli(["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "9", "--models", "arima"])
    assert rc == 2
    assert "unknown models" in capsys.readouterr().err
