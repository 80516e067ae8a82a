"""Market options shared by the forecasting and trading backtests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from research import backtest, backtest_trading
from research.markets import (
    MarketError,
    percent,
    published_for,
    published_period,
    read_hourly,
    resolve_holidays,
    resolve_market,
)

pytestmark = pytest.mark.unit

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "epf"


def test_market_is_the_option_or_the_file_stem_never_the_columns(tmp_path: Path) -> None:
    # A file with BE's columns and last day is still the market its name says.
    other = tmp_path / "NL.csv"
    shutil.copy(FIX / "BE_excerpt.csv", other)
    assert resolve_market(other, None, None, "none").name == "NL"
    assert resolve_market(other, "be", None, "none").name == "BE"
    assert resolve_market(other, "be", None, "none").timezone == "Europe/Brussels"
    assert resolve_market(other, None, "Europe/Amsterdam", "none").timezone == "Europe/Amsterdam"
    assert resolve_market(other, None, None, "none").timezone is None
    with pytest.raises(MarketError, match="IANA"):
        resolve_market(other, None, "Mars/Olympus", "none")


def test_holiday_codes_are_countries_not_market_names() -> None:
    assert resolve_holidays("none", "NP") == (None, None)
    code, name = resolve_holidays("auto", "BE")
    assert code == "BE"
    assert name == "Belgium"
    assert resolve_holidays("no", "NP")[0] == "NO"  # Nord Pool with Norway's calendar, named explicitly
    with pytest.raises(MarketError, match="not a country"):
        resolve_holidays("NP", "NP")  # Nepal to the holidays package
    with pytest.raises(MarketError, match="not one country"):
        resolve_holidays("auto", "NP")
    with pytest.raises(MarketError, match="not one country"):
        resolve_holidays("auto", "NL")
    with pytest.raises(MarketError, match="not a country code"):
        resolve_holidays("XX", "DE")


def test_published_figures_belong_to_one_market_and_period() -> None:
    assert published_for("DE", "2016-01-04", "2017-12-31")
    assert published_for("DE", "2016-01-05", "2017-12-31") == {}  # another period
    assert published_for("BE", "2016-01-04", "2017-12-31") == {}  # DE's period, BE's name
    assert published_for("NL", "2015-01-04", "2016-12-31") == {}
    assert published_period("DE", "2016-01-11", "2017-12-31")  # the trading protocol skips a week
    assert not published_period("DE", "2016-01-11", "2017-12-30")


def test_ratios_are_rounded_once() -> None:
    assert percent(0.80747) == "80.7"
    summary = {
        "market": "DE",
        "model": "m",
        "strategy": "point",
        "first_day": "2017-01-01",
        "last_day": "2017-01-31",
        "days": 31,
        "days_missing_forecast": 0,
        "realised_profit_eur": 807.47,
        "perfect_foresight_profit_eur": 1000.0,
        "capture_ratio": 0.80747,
        "target": None,
        "published_reference": {},
    }
    assert "80.7 %" in backtest_trading.format_report(summary)


def test_wrong_columns_are_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "XY.csv"
    bad.write_text("Date,Price\n2020-01-01 00:00:00,abc\n")
    with pytest.raises(MarketError, match="epftoolbox layout"):
        read_hourly(bad)
    quarter = tmp_path / "QH.csv"
    rows = [
        f"2020-01-0{d} {h:02d}:{m:02d}:00,1.0" for d in (1, 2) for h in range(24) for m in (0, 15, 30, 45)
    ]
    quarter.write_text("Date,Price\n" + "\n".join(rows) + "\n")
    with pytest.raises(MarketError, match="24"):
        read_hourly(quarter)
    assert backtest.cli(["--dataset", str(bad), "--models", "naive"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "epftoolbox layout" in err[0]
    assert backtest_trading.main(["--dataset", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "epftoolbox layout" in err[0]
    assert backtest_trading.main(["--dataset", str(FIX / "DE_excerpt.csv"), "--holidays", "auto"]) == 2
    assert "DE_EXCERPT" in capsys.readouterr().err


def test_last_day_backtests_an_earlier_period_of_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = read_hourly(FIX / "DE_excerpt.csv")
    early = read_hourly(FIX / "DE_excerpt.csv", "2017-11-30")
    assert str(early.dates[-1]) == "2017-11-30"
    assert early.n_days == full.n_days - 31
    assert (early.prices == full.prices[: early.n_days]).all()
    assert (early.exog == full.exog[:, : early.n_days]).all()
    market = resolve_market(FIX / "DE_excerpt.csv", "DE", None, "none", " 2017-11-30")
    assert market.last_day == "2017-11-30"
    assert market.to_json()["data_until"] == "2017-11-30"
    with pytest.raises(MarketError, match="not a date"):
        resolve_market(FIX / "DE_excerpt.csv", None, None, "none", "30.11.2017")
    with pytest.raises(MarketError, match="outside the file"):
        read_hourly(FIX / "DE_excerpt.csv", "2018-01-01")

    # Both backtests end their test period on that day, and say so in one line when it is wrong.
    args = ["--dataset", str(FIX / "DE_excerpt.csv"), "--last-day", "2017-11-30"]
    out = tmp_path / "bt"
    assert backtest.cli([*args, "--models", "naive", "--test-days", "21", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_end"] == "2017-11-30"
    assert metrics["data_until"] == "2017-11-30"
    capsys.readouterr()
    summary = backtest_trading.backtest(
        FIX / "DE_excerpt.csv", test_days=21, skip_days=7, bootstrap=0, last_day="2017-11-30"
    )
    assert summary["last_day"] == "2017-11-30"
    assert summary["days"] == 14
    assert backtest_trading.main([*args[:2], "--last-day", "2019-01-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "outside the file" in err[0]


def test_a_step_refuses_data_other_than_its_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from research import ensemble_backtest

    work = tmp_path / "work"
    config = tmp_path / "short.json"  # validation windows that fit the 120-day excerpt
    combination = {"rule": "validation_weights", "validation_days": 7, "weight_step": 0.5, "margin": 0.01}
    ensemble = {"members": ["lear", "dnn", "gbm"], "combination": combination}
    config.write_text(json.dumps({"ensemble": ensemble, "search": {"trials": 0, "validation_days": 14}}))
    base = ["--dataset", str(FIX / "DE_excerpt.csv"), "--work", str(work), "--test-days", "14"]
    base += ["--config", str(config)]
    assert ensemble_backtest.cli(["plan", *base, "--last-day", "2017-12-24", "--window-days", "56"]) == 0
    assert json.loads((work / "plan.json").read_text())["data_days"] == ["2017-09-03", "2017-12-24"]
    capsys.readouterr()
    # The plan's day indices belong to the file up to 2017-12-24: a step that read all of it would
    # forecast other days than the plan's, so it stops before doing anything.
    assert ensemble_backtest.cli(["search", *base]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--last-day" in err[-1]
    assert "2017-12-31" in err[-1]
    assert not (work / "search.json").exists()
