"""``combine --substitute``: a member's points replaced by a column of a forecasts file."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from research.ensemble_backtest import (
    Plan,
    PlanError,
    parse_substitution,
    read_substitute,
    substitute_member,
)
from research.markets import read_hourly
from tasks.errors import MissingInputError
from tasks.forecasting import design

pytestmark = pytest.mark.unit

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "epf"


def test_parse_keeps_spaces_and_colons_of_the_path() -> None:
    assert parse_substitution("dnn=pub/F_BE.csv:DNN Ensemble") == (
        "dnn",
        Path("pub/F_BE.csv"),
        "DNN Ensemble",
    )
    assert parse_substitution("lear=C:/x.csv:LEAR Ensemble") == ("lear", Path("C:/x.csv"), "LEAR Ensemble")
    for bad in ("dnn", "dnn=file.csv", "=file.csv:x", "dnn=:x"):
        with pytest.raises(PlanError, match="MEMBER=FILE:COLUMN"):
            parse_substitution(bad)


def test_point_member_is_replaced_only_on_complete_days() -> None:
    own = np.arange(3 * 24, dtype=float).reshape(3, 24)
    point = np.full((3, 24), 100.0)
    point[1, 5] = np.nan  # day 1 incomplete: keeps the member's own
    point[2] = np.nan  # day 2 not in the file
    out = substitute_member({"lear": own}, "lear", point)
    np.testing.assert_array_equal(out[0], 100.0)
    np.testing.assert_array_equal(out[1:], own[1:])
    np.testing.assert_array_equal(own, np.arange(3 * 24, dtype=float).reshape(3, 24))  # input untouched


def test_dnn_band_keeps_its_offsets_around_the_new_median() -> None:
    own = np.stack([np.full((2, 24), 10.0), np.full((2, 24), 20.0), np.full((2, 24), 35.0)], axis=-1)
    point = np.full((2, 24), 50.0)
    out = substitute_member({"dnn": own}, "dnn", point)
    np.testing.assert_array_equal(out[0, 0], [40.0, 50.0, 65.0])


def test_unknown_member_is_refused() -> None:
    with pytest.raises(PlanError, match="'forest'"):
        substitute_member({"lear": np.zeros((1, 24))}, "forest", np.zeros((1, 24)))


@dataclass(frozen=True)
class Case:
    """The DE excerpt's last 14 days as a plan, their prices and day names."""

    data: design.DayData
    plan: Plan
    prices: np.ndarray
    days: list[str]


@pytest.fixture(scope="module")
def case() -> Case:
    data = read_hourly(FIX / "DE_excerpt.csv")
    first, stop = len(data.dates) - 14, len(data.dates)
    plan = Plan(
        test_days=7,
        retrain_every=7,
        window_days=56,
        periods=1,
        validation_fraction=0.15,
        first=first,
        start=first + 7,
        stop=stop,
    )
    prices = design.targets(data, np.arange(first, stop))
    return Case(data, plan, prices, [str(d) for d in data.dates[first:stop]])


def _write(path: Path, days: list[str], actual: np.ndarray, values: np.ndarray) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "hour", "actual", "other"])
        for d, day in enumerate(days):
            for h in range(24):
                w.writerow([day, h, actual[d, h], values[d, h]])
    return path


def test_read_substitute_aligns_the_file_to_the_plan_days(tmp_path: Path, case: Case) -> None:
    # The file covers the last 10 of the 14 days, in reverse order.
    back = case.prices[4:][::-1]
    path = _write(tmp_path / "forecasts.csv", case.days[4:][::-1], back, back + 1.0)
    got = read_substitute(path, "other", case.data, case.plan)
    assert np.isnan(got[:4]).all()
    np.testing.assert_allclose(got[4:], case.prices[4:] + 1.0)


def test_read_substitute_refuses_a_file_of_other_prices(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path / "forecasts.csv", case.days, case.prices + 5.0, case.prices)
    with pytest.raises(MissingInputError, match="differs from the dataset"):
        read_substitute(path, "other", case.data, case.plan)


def test_read_substitute_refuses_a_file_without_the_backtest_days(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path / "forecasts.csv", ["1999-01-01"], np.zeros((1, 24)), np.zeros((1, 24)))
    with pytest.raises(PlanError, match="no day of the backtest"):
        read_substitute(path, "other", case.data, case.plan)
