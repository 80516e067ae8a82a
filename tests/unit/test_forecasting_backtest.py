"""The backtest CLI on the real DE excerpt (LEAR and naive only; the DNN path is an integration test)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from research import backtest
from tasks.forecasting import design

pytestmark = pytest.mark.unit

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "epf"


def test_origins_cover_the_test_period_once() -> None:
    blocks = backtest._origins(10, 25, 7)
    assert blocks == [(10, 17), (17, 24), (24, 25)]


@pytest.mark.slow
def test_cli_writes_metrics_and_forecasts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bt"
    args = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14", "--retrain-every", "7"]
    args += ["--lear-windows", "28,56", "--models", "naive,lear", "--out", str(out)]
    assert backtest.cli(args) == 0
    printed = capsys.readouterr().out
    # The excerpt ends like the benchmark's DE file, but its market is its name and its period is not DE's.
    assert "(published)" not in printed
    assert "DAP_RESULT " in printed
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["test_start"] == "2017-12-18"
    assert summary["test_end"] == "2017-12-31"
    assert summary["market"] == "DE_EXCERPT"
    assert summary["published"] == {}
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


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    args = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14", "--retrain-every", "7"]
    assert backtest.cli([*args, "--models", "naive,lear", *extra, "--out", str(out)]) == 0
    return out


def _with_dnn_member(run: Path, out: Path, seed: int) -> Path:
    """A copy of a LEAR run posing as a one-seed DNN run (q-columns = lear_56 ± 1)."""
    out.mkdir()
    meta = json.loads((run / "metrics.json").read_text())
    meta["config"].update(seed=seed, dnn_seeds=1)
    (out / "metrics.json").write_text(json.dumps(meta))
    with (run / "forecasts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (out / "forecasts.csv").open("w") as fh:
        writer = csv.DictWriter(fh, [*rows[0], "q10", "q50", "q90"])
        writer.writeheader()
        for r in rows:
            v = float(r["lear_56"])
            writer.writerow({**r, "q10": v - 1, "q50": v, "q90": v + 1})
    return out


@pytest.mark.slow
def test_merge_equals_one_run_with_the_same_members(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weekly = _run(tmp_path, "weekly", "--lear-windows", "28,56")
    daily = _run(tmp_path, "daily", "--lear-windows", "28,56", "--retrain-every", "1")
    whole = _run(tmp_path, "whole", "--lear-windows", "28,56", "--short-retrain-every", "1")
    merged = tmp_path / "merged"
    base = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14"]
    assert backtest.cli([*base, "--merge", f"{weekly},{daily}", "--out", str(merged)]) == 0
    got = json.loads((merged / "metrics.json").read_text())
    want = json.loads((whole / "metrics.json").read_text())
    assert got["merged_from"] == [str(weekly), str(daily)]
    for name in ("lear", "lear_28", "lear_56"):  # the later (daily) run's windows replace the weekly ones
        assert got["metrics"][name]["rmae"] == pytest.approx(want["metrics"][name]["rmae"], abs=1e-6)
    assert got["metrics"]["lear_28"]["rmae"] != pytest.approx(
        json.loads((weekly / "metrics.json").read_text())["metrics"]["lear_28"]["rmae"], abs=1e-9
    )

    dnn = _with_dnn_member(weekly, tmp_path / "dnn0", seed=0)
    both = tmp_path / "both"
    assert backtest.cli([*base, "--merge", f"{weekly},{dnn}", "--out", str(both)]) == 0
    m = json.loads((both / "metrics.json").read_text())["metrics"]
    assert m["dnn"]["rmae"] == pytest.approx(m["lear_56"]["rmae"], abs=1e-6)
    assert set(m) >= {"lear", "dnn", "ensemble", "dnn_quantiles"}
    capsys.readouterr()
    assert backtest.cli([*base, "--merge", f"{dnn},{dnn}"]) == 2
    assert "seeds [0] appear in two runs" in capsys.readouterr().err
    assert backtest.cli([*base, "--merge", str(both)]) == 2
    assert "itself a merge" in capsys.readouterr().err


def test_holiday_flags_of_the_day_and_its_price_lags() -> None:
    de = design.load_csv(FIX / "DE_excerpt.csv")
    flagged = design.with_holidays(de, "DE")
    assert flagged.holiday_country == "DE"
    assert flagged.holidays is not None
    christmas = flagged.day_index(np.datetime64("2017-12-25").item())
    assert flagged.holidays[christmas]
    assert flagged.holidays[christmas + 1]  # Boxing day
    assert not flagged.holidays[christmas - 2]  # 23 December is a working Saturday
    idx = np.array([christmas, christmas + 1, christmas + 3])
    plain, x = design.build_design(de, idx), design.build_design(flagged, idx)
    assert x.shape[1] == plain.shape[1] + len(design.HOLIDAY_LAGS) == design.n_features(24, 2, holidays=True)
    assert np.array_equal(x[:, : plain.shape[1]], plain)  # the epftoolbox columns are unchanged
    # Flags of D, D-1, D-2, D-3, D-7: 25 Dec is a holiday after none; 27 Dec follows two.
    assert x[:, plain.shape[1] :].tolist() == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0]]
    with pytest.raises(design.DatasetError, match="no public-holiday calendar"):
        design.with_holidays(de, "XX")


def _neighbour_csv(path: Path, first_day: str, days: int) -> Path:
    """DE excerpt's rows re-dated to start on ``first_day``: a stand-in neighbour for the BE excerpt."""
    rows = (FIX / "DE_excerpt.csv").read_text().splitlines()
    start = np.datetime64(first_day, "s")
    hours = start + np.arange(24 * days) * np.timedelta64(3600, "s")
    stamps = np.datetime_as_string(hours).astype(object)  # "2016-11-05T00:00:00"
    body = [f"{t.replace('T', ' ')},{r.split(',', 1)[1]}" for t, r in zip(stamps, rows[1:], strict=False)]
    path.write_text("\n".join([rows[0], *body]) + "\n")
    return path


def test_neighbour_series_join_by_day_on_the_common_days(tmp_path: Path) -> None:
    be = design.load_csv(FIX / "BE_excerpt.csv")  # 2016-11-02 ... 2016-12-31
    de = design.load_csv(_neighbour_csv(tmp_path / "nb.csv", "2016-11-05", 60))  # 2016-11-05 ... 2017-01-03
    joined = design.with_neighbour(be, de, "DE")
    assert str(joined.dates[0]) == "2016-11-05"
    assert joined.dates[-1] == be.dates[-1]  # the market's last day (and so its test period) is kept
    assert joined.exog_names == (*be.exog_names, "DE: Ampirion Load Forecast", "DE: PV+Wind Forecast")
    day = np.datetime64("2016-12-24").item()
    i, j = joined.day_index(day), de.day_index(day)
    assert np.array_equal(joined.exog[2:, i], de.exog[:, j])  # the neighbour's values of the same day
    assert np.array_equal(joined.exog[:2, i], be.exog[:, be.day_index(day)])
    assert np.array_equal(joined.prices[i], be.prices[be.day_index(day)])
    x = design.build_design(joined, [joined.day_index(np.datetime64("2016-12-31").item())])
    assert x.shape[1] == design.n_features(24, 4)
    short = design.load_csv(_neighbour_csv(tmp_path / "short.csv", "2016-11-05", 40))  # ends 2016-12-14
    with pytest.raises(design.DatasetError, match="must reach the market's last day 2016-12-31"):
        design.with_neighbour(be, short, "DE")
    with pytest.raises(design.DatasetError, match="before the holiday flags"):
        design.with_neighbour(design.with_holidays(be, "BE"), de, "DE")


@pytest.mark.slow
def test_cli_neighbour_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nb = _neighbour_csv(tmp_path / "nb.csv", "2016-11-05", 60)
    out = tmp_path / "bt"
    args = ["--dataset", str(FIX / "BE_excerpt.csv"), "--test-days", "14", "--lear-windows", "28"]
    joined = ["--models", "naive,lear,gbm", "--gbm-windows", "28", "--neighbour", f"DE={nb}"]
    assert backtest.cli([*args, *joined, "--out", str(out)]) == 0
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["config"]["neighbour"] == f"DE={nb}"
    assert meta["test_start"] == "2016-12-18"  # unchanged: the join keeps the market's last day
    assert np.isfinite(meta["metrics"]["gbm"]["mae"])
    assert np.isfinite(meta["metrics"]["lear"]["mae"])
    capsys.readouterr()
    assert backtest.cli([*args, "--models", "naive", "--neighbour", str(nb)]) == 2
    assert "NAME=PATH" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_records_the_holiday_calendar(tmp_path: Path) -> None:
    out = tmp_path / "bt"
    args = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14", "--lear-windows", "56"]
    args += ["--models", "naive,lear", "--market", "DE", "--holidays", "auto", "--out", str(out)]
    assert backtest.cli(args) == 0
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["config"]["holidays"] == "DE"
    assert np.isfinite(meta["metrics"]["lear"]["mae"])


@pytest.mark.slow
def test_tree_members_join_the_ensemble_and_merge(tmp_path: Path) -> None:
    base = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14"]
    lear = _run(tmp_path, "lear", "--lear-windows", "28")
    trees = tmp_path / "trees"
    tree_args = ["--gbm-windows", "28,56", "--forest-windows", "28"]
    assert backtest.cli([*base, "--models", "naive,gbm,forest", *tree_args, "--out", str(trees)]) == 0
    whole = tmp_path / "whole"
    args = [*base, "--models", "naive,lear,gbm,forest,ensemble", "--lear-windows", "28", *tree_args]
    assert backtest.cli([*args, "--out", str(whole)]) == 0
    with (whole / "forecasts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:  # GBM = mean of its windows; ensemble = equal-weight mean of the members present
        assert float(r["gbm"]) == pytest.approx((float(r["gbm_28"]) + float(r["gbm_56"])) / 2, abs=1e-3)
        assert float(r["forest"]) == pytest.approx(float(r["forest_28"]), abs=1e-3)
        members = float(r["lear"]) + float(r["gbm"]) + float(r["forest"])
        assert float(r["ensemble"]) == pytest.approx(members / 3, abs=1e-3)
    merged = tmp_path / "merged"
    assert backtest.cli([*base, "--merge", f"{lear},{trees}", "--out", str(merged)]) == 0
    got = json.loads((merged / "metrics.json").read_text())["metrics"]
    want = json.loads((whole / "metrics.json").read_text())["metrics"]
    for name in ("lear", "gbm", "gbm_28", "gbm_56", "forest", "forest_28", "ensemble"):
        assert got[name]["mae"] == pytest.approx(want[name]["mae"], abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("member", "flag", "choices", "recorded"),
    [
        ("forest", "--residual-load", ("auto", "none"), (True, False)),
        ("forest", "--intraday-profile", ("on", "off"), (True, False)),
        ("forest", "--forest-target", ("asinh", "none"), ("asinh", "none")),
        ("gbm", "--gbm-target", ("asinh", "none"), ("asinh", "none")),
    ],
)
def test_tree_options_change_only_the_tree_members(
    tmp_path: Path, member: str, flag: str, choices: tuple[str, str], recorded: tuple[object, object]
) -> None:
    key = flag.removeprefix("--").replace("-", "_")  # the option's name in the recorded config
    base = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14", "--models", f"naive,{member}"]
    base += [f"--{member}-windows", "28"]
    runs = []
    for choice in choices:
        out = tmp_path / choice
        assert backtest.cli([*base, flag, choice, "--out", str(out)]) == 0
        runs.append(json.loads((out / "metrics.json").read_text()))
    assert (runs[0]["config"][key], runs[1]["config"][key]) == recorded
    assert runs[0]["metrics"]["naive"] == runs[1]["metrics"]["naive"]
    assert runs[0]["metrics"][member]["mae"] != runs[1]["metrics"][member]["mae"]


TINY_DEFINITION = {
    "lear": {"calibration_window_days": [28, None]},
    "dnn": {"hidden": [8], "epochs": 3, "patience": 2},
    "gbm": {"max_iter": 10, "intraday_profile": False},
    "ensemble": {
        "members": ["lear", "dnn", "gbm"],
        "combination": {"validation_days": 7, "weight_step": 0.5},
    },
    "search": {
        "trials": 1,
        "validation_days": 14,
        "epochs": 2,
        "patience": 1,
        "space": {"dropout": [0.0, 0.2]},
    },
}


@pytest.mark.slow
def test_default_run_is_the_served_ensemble_in_a_process_pool(tmp_path: Path) -> None:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_DEFINITION))
    out = tmp_path / "bt"
    args = ["--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "14", "--window-days", "56"]
    assert backtest.cli([*args, "--config", str(config), "--jobs", "2", "--out", str(out)]) == 0
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["definition"]["members"] == ["lear", "dnn", "gbm"]
    assert meta["plan"]["retrain_every"] == 7  # the pipeline's train_every_days
    assert meta["plan"]["periods"] == 2
    assert [w["origin"] for w in meta["weights"]] == ["2017-12-18", "2017-12-25"]
    for w in meta["weights"]:
        assert sum(w["weights"].values()) == pytest.approx(1.0)
    assert len(meta["search"]["trials"]) == 1
    assert {"naive", "lear", "dnn", "gbm", "ensemble"} <= set(meta["metrics"])
    assert 0.0 <= meta["metrics"]["served_quantiles"]["coverage_q10_q90"] <= 1.0
    with (out / "forecasts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 14 * 24
    # The served band is centred on the ensemble's point.
    assert all(abs(float(r["q50"]) - float(r["ensemble"])) < 1e-3 for r in rows)


@pytest.mark.slow
def test_the_procedure_does_not_depend_on_price_level_or_units(tmp_path: Path) -> None:
    """A market with other price levels and units gets the same model, rescaled.

    Nothing in the procedure may be tuned to DE's euros and megawatts: every
    member, the search, the weights, the band and the daily step must be
    equivariant when the prices become ``a·p + b`` (another currency, a cheaper
    hydro market) and the load and renewable forecasts ``c·x`` (GW instead of
    MW). Any constant in price or load units would break it.
    """
    import pandas as pd

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_DEFINITION))
    frame = pd.read_csv(FIX / "DE_excerpt.csv")
    price, *exogenous = frame.columns[1:]
    a, b, c = 0.25, 7.0, 3.0
    moved = frame.assign(**{price: frame[price] * a + b}, **{k: frame[k] * c for k in exogenous})
    runs = {}
    for name, data in (("as_is", frame), ("moved", moved)):
        path = tmp_path / f"{name}.csv"
        data.to_csv(path, index=False)
        args = ["--dataset", str(path), "--market", "DE", "--test-days", "14", "--window-days", "56"]
        assert backtest.cli([*args, "--config", str(config), "--out", str(tmp_path / name)]) == 0
        runs[name] = pd.read_csv(tmp_path / name / "forecasts.csv")
    as_is, moved_out = runs["as_is"], runs["moved"]
    columns = ["naive", "lear", "dnn", "gbm", "ensemble", "q10", "q50", "q90"]
    assert set(columns) <= set(as_is.columns)
    spread = float(as_is["actual"].std()) * a
    for column in columns:
        expected = as_is[column] * a + b
        worst = float((moved_out[column] - expected).abs().max())
        assert worst < 1e-4 * spread, f"{column} moved by {worst:.2g} (price spread {spread:.3g})"
    metrics = {n: json.loads((tmp_path / n / "metrics.json").read_text())["metrics"] for n in runs}
    for member in ("lear", "dnn", "gbm", "ensemble"):
        assert metrics["moved"][member]["rmae"] == pytest.approx(metrics["as_is"][member]["rmae"], abs=1e-5)
