"""Trading backtest: protocol, alignment and the capture ratio on cases with a known answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.backtest_trading import (
    TEST_DAYS,
    DayResult,
    backtest,
    block_bootstrap,
    capture_by_month,
    capture_diagnostics,
    evaluation_period,
    expert_forecasts,
    follow_the_leader,
    format_report,
    load_day_matrix,
    main,
    residual_scenarios,
)
from tasks.errors import MissingInputError

pytestmark = pytest.mark.unit

SHORT = 60  # a short test period keeps these tests fast; the protocol default is 728
EPF = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "epf"


def _write_dataset(path: Path, prices: np.ndarray, first: str = "2015-01-05") -> Path:
    stamps = pd.date_range(first, periods=prices.size, freq="h")
    frame = pd.DataFrame({"": stamps.strftime("%Y-%m-%d %H:%M:%S"), "Price": prices.ravel(), "Load": 1.0})
    frame.to_csv(path, index=False)
    return path


def _forecast_frame(
    days: list[str], matrix: np.ndarray, columns: Callable[[np.ndarray], dict[str, np.ndarray]]
) -> pd.DataFrame:
    """forecasts.csv rows of the last SHORT days: date, hour, actual and ``columns(actual of the day)``."""
    rows = []
    for d in range(len(days) - SHORT, len(days)):
        cols = columns(matrix[d])
        rows.extend(
            {"date": days[d], "hour": h, "actual": matrix[d, h], **{k: v[h] for k, v in cols.items()}}
            for h in range(24)
        )
    return pd.DataFrame(rows)


def _weekly_prices(n_days: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(24)
    shape = 50 + 25 * np.sin((hours - 8) / 24 * 2 * np.pi)
    week = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.6])
    p = np.array([shape * week[d % 7] for d in range(n_days)])
    return p + rng.normal(0, noise, p.shape)


def test_evaluation_period_is_the_test_period_without_its_first_week() -> None:
    days = [f"d{i}" for i in range(800)]
    period = evaluation_period(days)
    assert period.start == 800 - TEST_DAYS + 7
    assert period.stop == 800
    with pytest.raises(MissingInputError, match="fewer than"):
        evaluation_period(days[:700])


def test_naive_on_a_weekly_periodic_market_captures_everything(tmp_path: Path) -> None:
    data = _write_dataset(tmp_path / "DE.csv", _weekly_prices(SHORT + 10, noise=0.0))
    s = backtest(data, test_days=SHORT, timing_shift=0.0)
    assert s["days"] == SHORT - 7
    assert s["capture_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert s["target"] == 0.90
    assert "target >= 90 %" in format_report(s)


@pytest.mark.slow
def test_noise_lowers_capture_and_forecast_file_alignment(tmp_path: Path) -> None:
    prices = _weekly_prices(SHORT + 10, noise=8.0, seed=2)
    data = _write_dataset(tmp_path / "BE.csv", prices)
    naive = backtest(data, test_days=SHORT)
    assert 0.0 < naive["capture_ratio"] < 0.99
    assert naive["realised_profit_eur"] < naive["perfect_foresight_profit_eur"]
    days, matrix = load_day_matrix(data)
    assert np.allclose(matrix, prices)
    # A forecasts.csv whose 'oracle' column is the actual price captures 100 %; 'noisy' less.
    rng = np.random.default_rng(5)
    fc = _forecast_frame(days, matrix, lambda a: {"oracle": a, "noisy": a + rng.normal(0, 15, a.size)})
    fc["q10"] = fc["noisy"] - 10
    fc["q50"] = fc["noisy"]
    fc["q90"] = fc["noisy"] + 10
    fc_path = tmp_path / "forecasts.csv"
    fc.drop(index=range(48)).to_csv(fc_path, index=False)  # the first two days have no forecast
    oracle = backtest(
        data, forecasts=fc_path, model="oracle", out_dir=tmp_path / "out", test_days=SHORT, timing_shift=0.0
    )
    assert oracle["capture_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert oracle["days_missing_forecast"] == 0  # missing days are inside the skipped first week
    assert Path(oracle["daily_csv"]).exists()
    noisy = backtest(data, forecasts=fc_path, model="noisy", test_days=SHORT)
    assert noisy["capture_ratio"] < 0.99
    expected = backtest(data, forecasts=fc_path, model="noisy", strategy="expected", test_days=SHORT)
    assert expected["capture_ratio"] == pytest.approx(noisy["capture_ratio"], abs=1e-3)
    # A forecasts file from another dataset is refused, not silently settled.
    fc.assign(actual=fc["actual"] + 5).to_csv(tmp_path / "wrong.csv", index=False)
    with pytest.raises(MissingInputError, match="differs"):
        backtest(data, forecasts=tmp_path / "wrong.csv", model="oracle", test_days=SHORT)


def test_cli_prints_capture_beside_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_dataset(tmp_path / "DE.csv", _weekly_prices(SHORT + 10, noise=3.0))
    assert main(["--dataset", str(data), "--test-days", str(SHORT)]) == 0
    out = capsys.readouterr().out
    assert "capture ratio" in out
    assert "(target >= 90 %)" in out
    assert main(["--dataset", str(data), "--model", "lear", "--test-days", str(SHORT)]) == 2


@pytest.mark.slow
@pytest.mark.skipif(not (EPF / "DE.csv").exists(), reason="needs ../shared/data/epf (not in a fresh clone)")
def test_weekly_naive_reproduces_the_published_de_capture() -> None:
    # The weekly naive under the full protocol (721 days, deciding as published): 71.25 % with one
    # leg per MTU (70.3 % with the earlier LP, which burned energy through the losses on negative prices).
    s = backtest(EPF / "DE.csv", timing_shift=0.0)
    assert s["first_day"] == "2016-01-11"
    assert s["capture_ratio"] == pytest.approx(0.7125, abs=0.0005)


def test_residual_scenarios_use_only_earlier_errors() -> None:
    point = np.zeros((10, 24))
    actual = np.arange(10, dtype=float)[:, None] * np.ones((1, 24))  # error of day j is j
    scen = residual_scenarios(point, actual, lag=3)
    assert scen.shape == (3, 7, 24)
    # Day 3 (the first scheduled) sees the errors of days 2, 1, 0; never its own.
    assert scen[:, 0, 0].tolist() == [2.0, 1.0, 0.0]
    assert scen[:, -1, 0].tolist() == [8.0, 7.0, 6.0]


def test_residual_strategy_runs_on_the_builtin_naive(tmp_path: Path) -> None:
    data = _write_dataset(tmp_path / "DE.csv", _weekly_prices(SHORT + 10, noise=0.0))
    s = backtest(
        data, strategy="residual", residual_days=5, cvar_weight=0.0, test_days=SHORT, timing_shift=0.0
    )
    assert s["capture_ratio"] == pytest.approx(1.0, abs=1e-6)  # zero errors: nothing to correct
    with pytest.raises(MissingInputError, match="residual-days"):
        backtest(data, strategy="residual", residual_days=30, test_days=SHORT)


def test_experts_start_with_the_equal_mix_and_scales_keep_the_daily_mean() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(40, 10, (5, 24)), rng.normal(40, 10, (5, 24))
    labels, experts = expert_forecasts({"a": a, "b": b}, 0.25, [1.0, 1.5])
    assert len(labels) == 5 * 2  # weights 0, .25, .5, .75, 1 for 'a'; two scales
    assert labels[0] == "a=0.50,b=0.50,k=1"
    assert np.allclose(experts[0], (a + b) / 2)
    stretched = experts[labels.index("a=1.00,b=0.00,k=1.5")]
    assert np.allclose(stretched.mean(axis=1), a.mean(axis=1))
    assert np.allclose(
        stretched - stretched.mean(axis=1, keepdims=True), 1.5 * (a - a.mean(axis=1, keepdims=True))
    )
    with pytest.raises(ValueError, match="divide 1"):
        expert_forecasts({"a": a}, 0.3, [1.0])


def test_follow_the_leader_uses_only_earlier_days() -> None:
    rng = np.random.default_rng(1)
    profit = rng.normal(100, 30, (4, 40))
    profit[2, :] += 20  # expert 2 is better on average
    profit[:, 5] = np.nan  # a day without forecast is not scored
    chosen = follow_the_leader(profit, lookback=10, min_history=7)
    assert (chosen[:8] == 0).all()  # fewer than 7 scored days before day 8: keep the default
    assert (chosen[20:] == 2).mean() > 0.5
    for day in (10, 25, 39):
        future = profit.copy()
        future[:, day:] = rng.normal(0, 500, future[:, day:].shape)
        assert follow_the_leader(future, lookback=10, min_history=7)[day] == chosen[day]
    # Ties keep the default.
    assert (follow_the_leader(np.ones((3, 20)), lookback=5, min_history=1) == 0).all()


@pytest.mark.slow
def test_adaptive_prefers_the_member_that_earns(tmp_path: Path) -> None:
    prices = _weekly_prices(SHORT + 10, noise=8.0, seed=3)
    data = _write_dataset(tmp_path / "DE.csv", prices)
    days, matrix = load_day_matrix(data)
    rng = np.random.default_rng(7)

    def good_and_bad(a: np.ndarray) -> dict[str, np.ndarray]:
        noise = rng.normal(0, (2, 25), (a.size, 2))  # drawn hour by hour: good, then bad
        return {"good": a + noise[:, 0], "bad": a + noise[:, 1]}

    fc_path = tmp_path / "forecasts.csv"
    _forecast_frame(days, matrix, good_and_bad).to_csv(fc_path, index=False)
    common = {"forecasts": fc_path, "test_days": SHORT}
    good = backtest(data, model="good", **common)
    bad = backtest(data, model="bad", **common)
    mixed = backtest(data, model="good", strategy="point", **common)
    adaptive = backtest(
        data,
        model="ens",
        strategy="adaptive",
        members=["good", "bad"],
        scales=[1.0],
        lookback=14,
        min_history=3,
        **common,
    )
    assert adaptive["days"] == good["days"] == mixed["days"]
    assert adaptive["experts"] == 5
    assert adaptive["default_expert"] == "good=0.50,bad=0.50,k=1"
    assert bad["capture_ratio"] < adaptive["capture_ratio"] <= good["capture_ratio"] + 1e-9
    assert adaptive["capture_ratio"] > adaptive["default_expert_capture"]
    assert next(iter(adaptive["most_chosen"])).startswith("good=1.00")
    # "good" alone is one of the fixed mixes, so the best in hindsight captures at least as much.
    assert adaptive["best_fixed_expert_capture_in_hindsight"] >= good["capture_ratio"] - 1e-9
    assert adaptive["model"] == "good+bad"
    assert "best fixed mix in hindsight" in format_report(adaptive)
    with pytest.raises(MissingInputError, match="needs --forecasts"):
        backtest(data, strategy="adaptive", test_days=SHORT)


def test_capture_diagnostics_separate_ranking_from_spread_and_level() -> None:
    actual = _weekly_prices(30, noise=8.0, seed=3)
    # Same order of the hours, wrong spread and level: only the ranking matters to the battery.
    squeezed = 0.5 * actual + 20.0
    diag = capture_diagnostics(actual, squeezed)
    assert diag["forecast_ranks_actual_values"] == pytest.approx(1.0)
    assert diag["actual_shape_forecast_level"] == pytest.approx(1.0, abs=1e-3)
    # A forecast that swaps the morning and evening: the ranking is wrong, true spreads do not help.
    swapped = np.roll(actual, 12, axis=1)
    diag = capture_diagnostics(actual, swapped)
    assert diag["forecast_ranks_actual_values"] < 0.5
    assert diag["forecast"] < 0.5
    assert diag["actual_ranks_forecast_values"] > 0.9
    # The report line of the point strategy carries them.
    report = format_report({**_summary_stub(), "diagnostics": diag})
    assert "actual ranking" in report


def test_timing_robust_decisions_pay_when_the_forecast_is_an_hour_off(tmp_path: Path) -> None:
    # The forecast has the right profile but, on each day, shifted an hour early or late at random.
    prices = _weekly_prices(SHORT + 10, noise=4.0, seed=6)
    data = _write_dataset(tmp_path / "DE.csv", prices)
    days, matrix = load_day_matrix(data)
    rng = np.random.default_rng(11)
    fc_path = tmp_path / "forecasts.csv"
    _forecast_frame(days, matrix, lambda a: {"late": np.roll(a, int(rng.choice([-1, 1])))}).to_csv(
        fc_path, index=False
    )
    as_is = backtest(data, forecasts=fc_path, model="late", test_days=SHORT, timing_shift=0.0)
    robust = backtest(data, forecasts=fc_path, model="late", test_days=SHORT, timing_shift=0.25)
    assert robust["capture_ratio"] > as_is["capture_ratio"] + 0.01
    assert robust["perfect_foresight_profit_eur"] == as_is["perfect_foresight_profit_eur"]
    assert robust["timing_shift"] == 0.25
    assert "p = 0.25 each way" in format_report(robust)
    assert "as it is" in format_report(as_is)
    with pytest.raises(MissingInputError, match="timing-shift"):
        backtest(data, test_days=SHORT, timing_shift=0.7)


def _summary_stub() -> dict[str, object]:
    return {
        "market": "DE",
        "model": "m",
        "strategy": "point",
        "first_day": "2016-01-11",
        "last_day": "2016-02-09",
        "days": 30,
        "days_missing_forecast": 0,
        "realised_profit_eur": 1.0,
        "perfect_foresight_profit_eur": 2.0,
        "capture_ratio": 0.5,
        "target": 0.9,
        "published_reference": {},
    }


def _write_published(
    path: Path, days: list[str], matrix: np.ndarray, column: str, values: np.ndarray
) -> Path:
    """A forecast file in the epftoolbox benchmark's published layout for the last SHORT days."""
    first = len(days) - SHORT
    stamps = pd.date_range(days[first], periods=SHORT * 24, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame({"Real price": matrix[first:].ravel(), column: values[first:].ravel()}, index=stamps)
    frame.to_csv(path)  # the time stamp column has an empty header, as in the published files
    return path


@pytest.mark.slow
def test_published_layout_and_blends_across_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_dataset(tmp_path / "BE.csv", _weekly_prices(SHORT + 10, noise=8.0, seed=3))
    days, matrix = load_day_matrix(data)
    error = np.random.default_rng(7).normal(0, 15, matrix.shape)
    # Our file's member is off by +error, the published one by -error: each alone loses, their mean is exact.
    ours = tmp_path / "forecasts.csv"
    _forecast_frame(days, matrix, lambda a: {"gbm": a}).assign(
        gbm=lambda f: f["gbm"] + error[-SHORT:].ravel()
    ).to_csv(ours, index=False)
    published = _write_published(tmp_path / "pub.csv", days, matrix, "DNN Ensemble", matrix - error)

    alone = backtest(data, forecasts=published, model="DNN Ensemble", test_days=SHORT, timing_shift=0.0)
    assert alone["capture_ratio"] < 0.99  # the published layout is read, its 'Real price' checked
    assert (
        backtest(data, forecasts=ours, model="gbm", test_days=SHORT, timing_shift=0.0)["capture_ratio"] < 0.99
    )
    blend = backtest(
        data,
        forecasts=[ours, published],
        model="gbm+DNN Ensemble",
        out_dir=tmp_path / "o",
        test_days=SHORT,
        timing_shift=0.0,
    )
    assert blend["capture_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert Path(blend["daily_csv"]).name == "trading_BE_gbm_DNN_Ensemble_point.csv"
    adaptive = backtest(
        data,
        forecasts=[ours, published],
        strategy="adaptive",
        members=["gbm", "DNN Ensemble"],
        test_days=SHORT,
        timing_shift=0.0,
    )
    assert adaptive["days"] > 0

    with pytest.raises(MissingInputError, match="no forecasts file has column 'lear'"):
        backtest(data, forecasts=[ours, published], model="gbm+lear", test_days=SHORT, timing_shift=0.0)
    with pytest.raises(MissingInputError, match="in several forecasts files"):
        backtest(data, forecasts=[ours, ours], model="gbm", test_days=SHORT, timing_shift=0.0)
    with pytest.raises(MissingInputError, match="empty member"):
        backtest(data, forecasts=[ours], model="gbm++", test_days=SHORT, timing_shift=0.0)
    with pytest.raises(MissingInputError, match="one --forecasts and one --model"):
        backtest(
            data,
            forecasts=[ours, published],
            model="gbm",
            strategy="expected",
            test_days=SHORT,
            timing_shift=0.0,
        )
    wrong = _write_published(tmp_path / "wrong.csv", days, matrix + 5, "DNN Ensemble", matrix)
    with pytest.raises(MissingInputError, match="differs"):
        backtest(data, forecasts=[ours, wrong], model="gbm+DNN Ensemble", test_days=SHORT, timing_shift=0.0)
    (tmp_path / "odd.csv").write_text("when,price\nyesterday,1\n")
    with pytest.raises(MissingInputError, match=r"neither a forecasts\.csv"):
        backtest(data, forecasts=tmp_path / "odd.csv", model="price", test_days=SHORT, timing_shift=0.0)

    argv = ["--dataset", str(data), "--test-days", str(SHORT), "--timing-shift", "0"]
    argv += ["--forecasts", str(ours), "--forecasts", str(published), "--model", "gbm+DNN Ensemble"]
    assert main(argv) == 0
    assert "capture ratio                    100.0 %" in capsys.readouterr().out


def test_capture_by_month_sums_each_calendar_month() -> None:
    results = [
        DayResult("2015-01-30", 10.0, 20.0),
        DayResult("2015-01-31", 5.0, 20.0),
        DayResult("2015-02-01", -2.0, 8.0),
        DayResult("2015-03-01", 0.0, 0.0),  # a flat day: no perfect-foresight profit, no ratio
    ]
    months = capture_by_month(results)
    assert [m["month"] for m in months] == ["2015-01", "2015-02", "2015-03"]
    assert months[0] == {
        "month": "2015-01",
        "days": 2,
        "realised_profit_eur": 15.0,
        "perfect_foresight_profit_eur": 40.0,
        "capture_ratio": 0.375,
    }
    assert months[1]["capture_ratio"] == -0.25
    assert months[2]["capture_ratio"] is None


def test_block_bootstrap_intervals_and_paired_difference() -> None:
    rng = np.random.default_rng(1)
    perfect = rng.uniform(100, 1000, 200)
    # Every day captures exactly 60 %: whichever days are drawn, the ratio is 60 %.
    flat = block_bootstrap(0.6 * perfect, perfect, resamples=300)
    assert flat["capture"]["interval_95_pp"] == pytest.approx([60.0, 60.0])
    # Days that differ spread the ratio; a baseline 10 pp worse on every day differs by exactly 10 pp.
    realised = perfect * rng.uniform(0.2, 1.0, 200)
    out = block_bootstrap(realised, perfect, baseline_realised=realised - 0.1 * perfect, resamples=500)
    point = 100 * realised.sum() / perfect.sum()
    lo, hi = out["capture"]["interval_95_pp"]
    assert lo < point < hi
    assert hi - lo > 1.0
    assert out["difference"]["pp"] == pytest.approx(10.0)
    assert out["difference"]["interval_95_pp"] == pytest.approx([10.0, 10.0])
    # A noisy baseline: the paired interval holds its point difference and is narrower than the capture's.
    noisy = block_bootstrap(
        realised, perfect, baseline_realised=realised - perfect * rng.normal(0.02, 0.05, 200), resamples=500
    )
    dlo, dhi = noisy["difference"]["interval_95_pp"]
    assert dlo < noisy["difference"]["pp"] < dhi
    assert dhi - dlo < hi - lo
    # The same seed gives the same interval; blocks longer than the period shrink to it.
    assert block_bootstrap(realised, perfect, resamples=200, seed=4) == block_bootstrap(
        realised, perfect, resamples=200, seed=4
    )
    assert block_bootstrap(realised[:5], perfect[:5], resamples=10, block_days=7)["block_days"] == 5
    with pytest.raises(ValueError, match="same"):
        block_bootstrap(realised, perfect[:-1])
    with pytest.raises(ValueError, match="baseline"):
        block_bootstrap(realised, perfect, baseline_realised=realised[:-1])
    with pytest.raises(ValueError, match="undefined"):
        block_bootstrap(np.zeros(5), np.zeros(5))


@pytest.mark.slow
def test_cli_baseline_by_month_and_interval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_dataset(tmp_path / "DE.csv", _weekly_prices(SHORT + 10, noise=8.0, seed=2))
    days, matrix = load_day_matrix(data)
    fc_path = tmp_path / "forecasts.csv"
    _forecast_frame(days, matrix, lambda a: {"oracle": a, "naive": a + 20 * np.sin(np.arange(24))}).to_csv(
        fc_path, index=False
    )
    argv = [
        "--dataset",
        str(data),
        "--forecasts",
        str(fc_path),
        "--test-days",
        str(SHORT),
        "--timing-shift",
        "0",
    ]
    assert main([*argv, "--model", "oracle", "--baseline", "naive", "--by-month"]) == 0
    out = capsys.readouterr().out
    assert "capture ratio                    100.0 %" in out
    assert "100.0 .. 100.0 %   (7-day block bootstrap" in out
    s = backtest(data, forecasts=fc_path, model="oracle", baseline="naive", test_days=SHORT, timing_shift=0.0)
    base = s["baseline"]["capture_ratio"]
    assert base < 0.99
    assert f"baseline naive: capture {100 * base:.1f} %" in out
    assert s["bootstrap"]["difference"]["pp"] == pytest.approx(100 * (1 - base), abs=0.01)
    assert f"{s['by_month'][0]['month']}  " in out
    assert sum(m["days"] for m in s["by_month"]) == s["days"]
    # A baseline that misses scheduled days is refused, not compared on fewer days.
    partial = tmp_path / "partial.csv"
    frame = pd.read_csv(fc_path)
    frame.loc[frame["date"] == days[-1], "naive"] = np.nan
    frame.to_csv(partial, index=False)
    with pytest.raises(MissingInputError, match="baseline 'naive' has no full forecast on 1 of"):
        backtest(data, forecasts=partial, model="oracle", baseline="naive", test_days=SHORT)
    # --bootstrap 0 turns the interval off.
    assert main([*argv, "--model", "oracle", "--bootstrap", "0"]) == 0
    assert "95 % interval" not in capsys.readouterr().out
