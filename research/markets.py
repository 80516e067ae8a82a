"""Which market an epftoolbox-layout file holds, and which published figures belong to it.

Shared by ``research.backtest`` and ``research.backtest_trading`` so both name a
file's market, time zone and holiday calendar the same way:

- the market is ``--market NAME`` or the file's stem (``DE.csv`` -> ``DE``),
  never guessed from column names or dates;
- ``--timezone`` defaults to the known benchmark market's zone (none otherwise:
  the file's local clock is used as it is);
- ``--last-day`` ends the file early: the test period ends that day and the
  later rows are ignored, so an earlier period is backtested from the same file;
- ``--holidays`` is a country code of the ``holidays`` package, ``auto`` (the
  country of a benchmark market that is one country: DE, BE, FR) or ``none``. A
  market name that is no country (``NP`` is Nord Pool, but Nepal to the
  package; ``PJM``) is refused as a holiday code: name the country;
- published epftoolbox figures are shown only for a benchmark market whose
  test period is the published one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.errors import DatasetError, PipelineError

if TYPE_CHECKING:
    from tasks.forecasting.design import DayData


class MarketError(PipelineError):
    """The market options cannot describe this file (unknown zone, holiday code or layout)."""


@dataclass(frozen=True)
class BenchmarkMarket:
    """An epftoolbox benchmark market (Lago et al. 2021, Applied Energy 293): its test period and calendar."""

    timezone: str
    country: str | None  # the holidays package's code, None for a multi-country market
    first_test_day: str
    last_test_day: str


BENCHMARK_MARKETS: dict[str, BenchmarkMarket] = {
    "DE": BenchmarkMarket("Europe/Berlin", "DE", "2016-01-04", "2017-12-31"),
    "BE": BenchmarkMarket("Europe/Brussels", "BE", "2015-01-04", "2016-12-31"),
    "FR": BenchmarkMarket("Europe/Paris", "FR", "2015-01-04", "2016-12-31"),
    "NP": BenchmarkMarket("Europe/Oslo", None, "2016-12-27", "2018-12-24"),  # Nord Pool system price
    "PJM": BenchmarkMarket("America/New_York", None, "2016-12-27", "2018-12-24"),
}

# Published rMAE etc. of the epftoolbox ensembles (Lago et al. 2021, test period above). Only the
# markets whose figures this repository has checked are listed.
PUBLISHED_FORECASTS: dict[str, dict[str, dict[str, float]]] = {
    "DE": {
        "LEAR ens. (published)": {"mae": 3.61, "rmae": 0.395, "smape": 14.74, "rmse": 6.51},
        "DNN ens. (published)": {"mae": 3.41, "rmae": 0.374, "smape": 14.08, "rmse": 5.93},
    },
    "BE": {
        "LEAR ens. (published)": {"mae": 6.14, "rmae": 0.604, "smape": 14.55, "rmse": 15.97},
        "DNN ens. (published)": {"mae": 5.82, "rmae": 0.573, "smape": 13.33, "rmse": 16.13},
    },
}


@dataclass(frozen=True)
class Market:
    """A file's market as the options resolve it."""

    name: str
    timezone: str | None
    holidays: str | None  # country code of the holidays package, None: no holiday flags
    holiday_name: str | None = None  # the package's name of that country (printed, so a wrong one shows)
    last_day: str | None = None  # --last-day: the file is read up to this day (ISO date), None: to its end

    def to_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"market": self.name, "timezone": self.timezone, "holidays": self.holidays}
        if self.last_day is not None:
            info["data_until"] = self.last_day  # --last-day (summaries have their own "last_day")
        return info


def market_name(dataset: Path, market: str | None = None) -> str:
    """``market`` as given, else the file's stem, upper-cased."""
    name = (market or dataset.stem).strip()
    if not name:
        raise MarketError(f"--market: empty name for {dataset}")
    return name.upper()


def _check_timezone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MarketError(f"--timezone {name!r} is not an IANA time zone (e.g. Europe/Berlin)") from exc
    return name


def resolve_holidays(choice: str, market: str) -> tuple[str | None, str | None]:
    """The country code and its name for ``--holidays`` (``CODE``, ``auto`` or ``none``) of ``market``."""
    import holidays

    text = choice.strip()
    if text.lower() == "none":
        return None, None
    bench = BENCHMARK_MARKETS.get(market)
    if text.lower() == "auto":
        if bench is None or bench.country is None:
            raise MarketError(
                f"--holidays auto: market {market} is not one country of the epftoolbox benchmark; "
                "pass its country code (e.g. --holidays NO) or --holidays none"
            )
        code = bench.country
    else:
        code = text.upper()
        if bench is not None and bench.country is None and code == market:
            raise MarketError(
                f"--holidays {code}: {code} is the market's name, not a country (to the holidays package "
                f"{code} is another country); pass the country whose calendar to use, or --holidays none"
            )
    supported = holidays.list_supported_countries()
    if code not in supported:
        raise MarketError(
            f"--holidays {code}: not a country code of the holidays package (e.g. DE, BE, NO) or 'none'"
        )
    from holidays.registry import COUNTRIES

    # The class name of the country (e.g. "Belgium", "Nepal"): printed, so a wrong calendar shows.
    names = {entry[1]: entry[0] for entry in COUNTRIES.values()}
    return code, names.get(code, code)


def _check_day(text: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError as exc:
        raise MarketError(f"--last-day {text!r} is not a date (YYYY-MM-DD, e.g. 2015-12-31)") from exc


def resolve_market(
    dataset: Path, market: str | None, timezone: str | None, holidays: str, last_day: str | None = None
) -> Market:
    """The market of ``dataset`` from the options (see the module docstring)."""
    name = market_name(dataset, market)
    bench = BENCHMARK_MARKETS.get(name)
    zone = _check_timezone(timezone) if timezone else (bench.timezone if bench else None)
    code, country = resolve_holidays(holidays, name)
    return Market(name, zone, code, country, _check_day(last_day) if last_day else None)


def until(data: DayData, last_day: str | None) -> DayData:
    """``data`` up to and including ``last_day`` (``--last-day``); all of it when None."""
    from dataclasses import replace
    from datetime import date

    if last_day is None:
        return data
    try:
        keep = data.day_index(date.fromisoformat(last_day)) + 1
    except DatasetError as exc:
        first, last = data.dates[0], data.dates[-1]
        raise MarketError(
            f"--last-day {last_day} is outside the file ({first} … {last}): pick a day in it"
        ) from exc
    return replace(
        data,
        dates=data.dates[:keep],
        prices=data.prices[:keep],
        exog=data.exog[:, :keep],
        holidays=None if data.holidays is None else data.holidays[:keep],
    )


def read_hourly(dataset: Path, last_day: str | None = None) -> DayData:
    """An hourly epftoolbox-layout CSV as day matrices (up to ``last_day``), or one clear error naming what is wrong."""
    import pandas as pd

    from tasks.forecasting import design

    if not dataset.is_file():
        raise MarketError(f"dataset {dataset} not found")
    try:
        frame = pd.read_csv(dataset)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MarketError(f"{dataset}: not a CSV file ({type(exc).__name__})") from exc
    try:
        data = design.from_frame(frame)
    except DatasetError as exc:
        raise MarketError(
            f"{dataset}: {exc}; expected the epftoolbox layout: timestamp, price, exogenous forecasts..."
        ) from exc
    if data.slots != 24:
        raise MarketError(f"{dataset}: {data.slots} rows per day; an hourly file has 24 (DST days resampled)")
    return until(data, last_day)


def published_for(market: str, first_test_day: str, last_test_day: str) -> dict[str, dict[str, float]]:
    """The published forecast figures of ``market``, only when the test period is the published one."""
    bench = BENCHMARK_MARKETS.get(market)
    if bench is None or (first_test_day, last_test_day) != (bench.first_test_day, bench.last_test_day):
        return {}
    return PUBLISHED_FORECASTS.get(market, {})


def published_period(market: str, first_day: str, last_day: str) -> bool:
    """Whether ``first_day … last_day`` is ``market``'s published test period (after any skipped days)."""
    bench = BENCHMARK_MARKETS.get(market)
    return bench is not None and last_day == bench.last_test_day and first_day >= bench.first_test_day


def percent(ratio: float) -> str:
    """A ratio as a percentage with one decimal, rounded once (0.80747 -> '80.7')."""
    return f"{100 * ratio:.1f}"
