"""Trading backtest: how much of the perfect-foresight battery profit the forecasts capture.

``python -m research.backtest_trading --dataset DE.csv [--forecasts forecasts.csv --model ensemble]``

Protocol (the issue's, so figures compare with the published ones): a 10 MW /
20 MWh battery, 90 % round trip (each leg sqrt(0.9)), state of charge 50 % at
the start and end of every delivery day, bounds 0–100 %, one hourly schedule
per day from the forecast (the same LP as tasks.optimise), settled at the
actual price. The perfect-foresight profit is the same LP on the actual
prices. Period: the epftoolbox test period (last 728 days of the file)
without its first week. Capture = sum realised / sum perfect-foresight.
``--timing-shift`` (default: the schedule stage's ``dispatch_timing_shift``)
makes the battery decide on timing-robust prices as the pipeline does
(tasks.optimise.timing_robust_prices); 0 schedules on the forecast as it is.

Forecasts: the built-in weekly naive (price of D-7, from the dataset itself),
or a column of the forecasting backtest's ``forecasts.csv`` (``date``,
``hour``, ``actual``, one column per model, optional ``q10``/``q50``/``q90``),
or of the epftoolbox benchmark's published forecast files (``--model "DNN
Ensemble"`` reproduces the published capture). ``--model a+b`` schedules on the
equal-weight mean of columns, taken from whichever of the (repeatable)
``--forecasts`` files has each: what a member would add to the ensemble, or
how a forecast of another source would do in its place, before building it.
With quantiles, ``--strategy expected`` schedules on Swanson's mean and
``--strategy cvar`` adds a CVaR term over the three quantile paths.

``--strategy adaptive`` is decision-focused: a set of candidate forecasts
("experts": convex combinations of ``--members`` on a weight grid, each with
its intraday shape stretched by a factor from ``--scales``) is scored by the
money each would have made on the last ``--lookback`` days, and day D is
scheduled on the best one. Only days up to D-1 are scored (their prices are
known before D's gate closure), so there is no look-ahead.

The market is ``--market`` or the file's stem, with ``--timezone`` and
``--holidays`` as in ``research.backtest`` (:mod:`research.markets`); the
published captures are printed only for their market and test period. Ratios
are kept unrounded in the result and rounded once when printed.

Every run also reports capture by calendar month, and a moving-block bootstrap
interval of the capture (``--bootstrap`` resamples of ``--block-days`` blocks of
days; 0 turns it off). ``--baseline MODEL`` schedules a second forecast (point
strategy, the same files) on the same days and reports the paired difference
with its interval. On BE's test period the capture of one forecast has a
bootstrap sd of about 2 pp, the difference between two forecasts on the same
days about 0.5 pp (research/RESULTS.md): a change needs the paired
interval to be told from noise.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from research.dispatch import arbitrage_profit, dispatch_days
from tasks.cli import emit_result, setup_logging
from tasks.config import DISPATCH_TIMING_SHIFT, MAX_TIMING_SHIFT
from tasks.errors import MissingInputError, PipelineError
from tasks.optimise import Storage, optimise_zone

if TYPE_CHECKING:
    import pandas as pd

    from research.markets import Market

TEST_DAYS = 728
SKIP_DAYS = 7
# Capture of the published epftoolbox forecasts under this protocol (one leg per MTU), and the
# targets. Measured with this command on the repository's forecast files
# (``--forecasts Forecasts_<market>_DNN_LEAR_ensembles.csv --model "DNN Ensemble"``; their
# ``Real price`` equals the dataset's price at every test hour): research/RESULTS.md.
REFERENCE = {
    "DE": {"naive": 0.7125, "lear": 0.8755, "dnn": 0.8917, "target": 0.90},
    "BE": {"naive": 0.5452, "lear": 0.6909, "dnn": 0.7240, "target": 0.75},
}


def protocol_battery() -> Storage:
    leg = math.sqrt(0.9)
    return Storage(
        name="protocol-bess",
        power_mw=10.0,
        energy_mwh=20.0,
        eta_charge=leg,
        eta_discharge=leg,
        soc_min_mwh=0.0,
        soc_max_mwh=20.0,
        soc_start_mwh=10.0,
        soc_end_mwh=10.0,
    )


def load_day_matrix(dataset: Path, last_day: str | None = None) -> tuple[list[str], np.ndarray]:
    """Days (YYYY-MM-DD) and the [days, 24] price matrix of an epftoolbox-layout CSV.

    The first column is the local hour stamp (DE's header is empty, BE's is
    'Date'); the second is the price. The files keep 24 rows per day.
    """
    from research.markets import read_hourly

    # The forecasting backtest's reader: the same layout checks and errors.
    data = read_hourly(dataset, last_day)
    return [str(d) for d in data.dates], data.prices


def evaluation_period(days: Sequence[str], test_days: int = TEST_DAYS, skip_days: int = SKIP_DAYS) -> slice:
    """The epftoolbox test period (last ``test_days``) without its first ``skip_days``."""
    n = len(days)
    if n < test_days:
        raise MissingInputError(f"dataset has {n} days, fewer than the {test_days}-day test period")
    return slice(n - test_days + skip_days, n)


def _forecast_frame(path: Path) -> pd.DataFrame:
    """A forecasts file as rows with ``date``, ``hour`` and one column per forecast.

    Two layouts: ``forecasts.csv`` of research.backtest (``date``, ``hour``,
    ``actual``, one column per model), and the epftoolbox benchmark's published
    forecasts (``Forecasts_<market>_DNN_LEAR_ensembles.csv``: an hourly local
    time stamp first, then ``Real price``, ``DNN Ensemble``, ``LEAR Ensemble``
    ...), whose ``Real price`` becomes ``actual`` so it is checked against the
    dataset like ours.
    """
    import pandas as pd

    if not path.exists():
        raise MissingInputError(
            f"forecasts file {path} not found; run research.backtest first or omit --forecasts"
        )
    frame = pd.read_csv(path)
    if {"date", "hour"} <= set(frame.columns):
        frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
        return frame
    try:
        stamps = pd.to_datetime(frame.iloc[:, 0], format="%Y-%m-%d %H:%M:%S")
    except (ValueError, TypeError):
        raise MissingInputError(
            f"{path} is neither a forecasts.csv of research.backtest (date, hour, one column per model) "
            f"nor an epftoolbox forecast file (hourly time stamps first); has {list(frame.columns)}"
        ) from None
    frame = frame.iloc[:, 1:].rename(columns={"Real price": "actual"})
    frame.insert(0, "hour", stamps.dt.hour.to_numpy())
    frame.insert(0, "date", stamps.dt.strftime("%Y-%m-%d").to_numpy())
    return frame


def load_forecasts(path: Path, days: Sequence[str], column: str) -> dict[str, np.ndarray]:
    """Columns of a forecasts file as [days, 24] matrices aligned to ``days`` (NaN where missing)."""
    return forecast_columns(path, _forecast_frame(path), days, column)


def forecast_columns(
    path: Path, frame: pd.DataFrame, days: Sequence[str], column: str
) -> dict[str, np.ndarray]:
    """``column`` and, where present, ``q10``/``q50``/``q90``/``actual`` of a read forecasts file, as [days, 24]."""
    if column not in frame.columns:
        raise MissingInputError(f"{path} lacks column {column!r}; has {list(frame.columns)}")
    wanted = [c for c in (column, "q10", "q50", "q90", "actual") if c in frame.columns]
    return {col: _day_matrix(frame, days, col) for col in wanted}


def _day_matrix(frame: pd.DataFrame, days: Sequence[str], column: str) -> np.ndarray:
    """One column of a forecasts frame as [days, 24] (NaN where missing)."""
    import pandas as pd

    wide = frame.pivot_table(index="date", columns="hour", values=column, aggfunc="first")
    wide = wide.reindex(index=pd.Index(days, name="date"), columns=range(24))
    return np.asarray(wide.to_numpy(dtype=float))


def blend_members(model: str) -> list[str]:
    """The columns a ``--model`` names: one column, or ``a+b+c`` for their equal-weight mean."""
    names = [n.strip() for n in model.split("+")]
    if any(not n for n in names):
        raise MissingInputError(f"--model {model!r} has an empty member; write e.g. lear+gbm")
    if len(set(names)) != len(names):
        raise MissingInputError(f"--model {model!r} names a column twice; weights are equal by design")
    return names


def read_forecast_files(paths: Sequence[Path]) -> list[tuple[Path, pd.DataFrame]]:
    """Each forecasts file with its frame (:func:`_forecast_frame`), read once, in the order given."""
    return [(path, _forecast_frame(path)) for path in paths]


def blend_of(frames: Sequence[tuple[Path, pd.DataFrame]], days: Sequence[str], model: str) -> np.ndarray:
    """The point forecast ``model`` names ([days, 24]) from one or more forecasts files.

    A blend ``a+b`` averages its columns with equal weight (NaN where any is
    missing), each taken from the one file that has it, so a forecast of
    another source (e.g. the published epftoolbox DNN) can stand in for a member
    before it is built.
    """
    parts = []
    for name in blend_members(model):
        holders = [(path, frame) for path, frame in frames if name in frame.columns]
        if not holders:
            raise MissingInputError(
                f"no forecasts file has column {name!r}: "
                + "; ".join(
                    f"{p} has {[c for c in f.columns if c not in ('date', 'hour')]}" for p, f in frames
                )
            )
        if len(holders) > 1:
            raise MissingInputError(
                f"column {name!r} is in several forecasts files ({', '.join(str(p) for p, _ in holders)}); "
                "give it once (e.g. drop a file)"
            )
        parts.append(_day_matrix(holders[0][1], days, name))
    return np.asarray(np.mean(parts, axis=0))


def check_actuals(
    frames: Sequence[tuple[Path, pd.DataFrame]], days: Sequence[str], prices: np.ndarray
) -> None:
    """Refuse a forecasts file whose ``actual`` prices on ``days`` are not the dataset's ``prices``.

    Such a file belongs to another market or period; days the file lacks are not compared.
    """
    for path, frame in frames:
        if "actual" not in frame.columns:
            continue
        actual = _day_matrix(frame, days, "actual")
        diff = np.nanmax(np.abs(actual - prices)) if np.isfinite(actual).any() else 0.0
        if diff > 0.01:
            raise MissingInputError(
                f"'actual' in {path} differs from the dataset by up to {diff:.2f} EUR/MWh"
            )


@dataclass
class DayResult:
    day: str
    realised: float
    perfect: float


def run_days(
    days: Sequence[str],
    actual: np.ndarray,
    scenarios: np.ndarray,
    *,
    weights: Sequence[float] | None = None,
    cvar_weight: float = 0.0,
    timing_shift: float = 0.0,
) -> list[DayResult]:
    """Schedule each day on its forecast scenarios [S, days, 24], settle at ``actual`` [days, 24]."""
    battery = [protocol_battery()]
    zeros = np.zeros(actual.shape[1])
    out = []
    for i, day in enumerate(days):
        plan = optimise_zone(
            scenarios[:, i, :],
            zeros,
            battery,
            60,
            weights=weights,
            cvar_weight=cvar_weight,
            timing_shift_probability=timing_shift,
        )
        best = optimise_zone(actual[i], zeros, battery, 60)
        out.append(
            DayResult(
                day,
                arbitrage_profit(plan.charge_mw, plan.discharge_mw, actual[i], 60),
                arbitrage_profit(best.charge_mw, best.discharge_mw, actual[i], 60),
            )
        )
    return out


def capture_by_month(results: Sequence[DayResult]) -> list[dict[str, Any]]:
    """Realised and perfect-foresight profit and their ratio per calendar month (``YYYY-MM``)."""
    months: dict[str, list[float]] = {}
    for r in results:
        acc = months.setdefault(r.day[:7], [0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += r.realised
        acc[2] += r.perfect
    return [
        {
            "month": month,
            "days": int(n),
            "realised_profit_eur": round(realised, 2),
            "perfect_foresight_profit_eur": round(perfect, 2),
            "capture_ratio": realised / perfect if perfect else None,
        }
        for month, (n, realised, perfect) in sorted(months.items())
    ]


def block_bootstrap(
    realised: np.ndarray,
    perfect: np.ndarray,
    *,
    baseline_realised: np.ndarray | None = None,
    resamples: int = 2000,
    block_days: int = 7,
    seed: int = 0,
) -> dict[str, Any]:
    """Moving-block bootstrap of the capture ratio (and of its paired difference to a baseline).

    Days are drawn in runs of ``block_days`` consecutive days, which keeps the
    week's correlation of profits (a windy week, a spike week) inside a
    resample. A baseline is resampled on the same days, so its difference
    carries only what differs between the two forecasts. Intervals are the
    2.5 and 97.5 % percentiles; figures are in capture percentage points.
    """
    realised, perfect = np.asarray(realised, dtype=float), np.asarray(perfect, dtype=float)
    n = len(realised)
    if n == 0 or len(perfect) != n:
        raise ValueError(f"realised and perfect need the same, non-zero length, got {n} and {len(perfect)}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if perfect.sum() <= 0:
        raise ValueError("no perfect-foresight profit in the period: the capture ratio is undefined")
    block = max(1, min(block_days, n))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(resamples, math.ceil(n / block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    base = perfect[idx].sum(axis=1)
    capture = 100 * realised[idx].sum(axis=1) / base

    def stats(x: np.ndarray) -> dict[str, Any]:
        lo, hi = np.percentile(x, [2.5, 97.5])
        return {
            "interval_95_pp": [float(lo), float(hi)],  # unrounded: the report rounds once
            "sd_pp": float(x.std()),
        }

    out: dict[str, Any] = {
        "resamples": resamples,
        "block_days": block,
        "seed": seed,
        "capture": stats(capture),
    }
    if baseline_realised is not None:
        baseline_realised = np.asarray(baseline_realised, dtype=float)
        if len(baseline_realised) != n:
            raise ValueError(f"baseline has {len(baseline_realised)} days, the forecast {n}")
        diff = capture - 100 * baseline_realised[idx].sum(axis=1) / base
        out["difference"] = {
            "pp": float(100 * (realised.sum() - baseline_realised.sum()) / perfect.sum()),
            **stats(diff),
        }
    return out


def residual_scenarios(point: np.ndarray, actual: np.ndarray, lag: int) -> np.ndarray:
    """Scenarios [lag, days, 24]: day i's forecast plus each of the ``lag`` previous days' error profiles.

    ``point`` and ``actual`` start ``lag`` days before the first scheduled day.
    The errors of D-1 and earlier are known before D's gate closure (their
    prices were published on the day before them). The expected-cost LP on
    these scenarios is the bias-corrected forecast; with a CVaR weight it
    also avoids trades that went wrong recently.
    """
    err = actual - point
    n = point.shape[0] - lag
    return np.stack([point[lag:] + err[lag - k : lag - k + n] for k in range(1, lag + 1)])


def expert_forecasts(
    members: dict[str, np.ndarray], weight_step: float, scales: Sequence[float]
) -> tuple[list[str], np.ndarray]:
    """Candidate forecasts [E, days, 24]: member mixes on a simplex grid, each shape-scaled.

    A scale ``k`` keeps each day's mean price and multiplies the deviations from
    it: ``mean + k * (p - mean)``. Point forecasts that minimise absolute error
    are smoother than prices; ``k > 1`` undoes that where it pays, ``k < 1``
    trades less on a noisy shape. The equal-weight mix with ``k = 1`` is first.
    """
    names = list(members)
    steps = round(1.0 / weight_step)
    if steps < 1 or abs(steps * weight_step - 1.0) > 1e-9:
        raise ValueError(f"weight step must divide 1, got {weight_step}")
    grids = [g for g in itertools.product(range(steps + 1), repeat=len(names)) if sum(g) == steps]
    equal = tuple(steps / len(names) for _ in names)
    grids.sort(key=lambda g: sum(abs(a - b) for a, b in zip(g, equal, strict=True)))
    ordered_scales = sorted(scales, key=lambda k: abs(k - 1.0))
    labels: list[str] = []
    out: list[np.ndarray] = []
    stack = np.stack([members[n] for n in names])
    for g in grids:
        w = np.asarray(g, dtype=float) / steps
        mix = np.tensordot(w, stack, axes=1)
        mean = mix.mean(axis=1, keepdims=True)
        for k in ordered_scales:
            out.append(mean + k * (mix - mean))
            labels.append(",".join(f"{n}={x:.2f}" for n, x in zip(names, w, strict=True)) + f",k={k:g}")
    return labels, np.stack(out)


def follow_the_leader(profit: np.ndarray, lookback: int, min_history: int, default: int = 0) -> np.ndarray:
    """Index of the expert to use each day: best summed profit over the previous ``lookback`` days.

    ``profit`` is [E, days] (NaN where a day had no forecast). Day i sees days
    ``i - lookback .. i - 1`` only. With fewer than ``min_history`` scored days,
    or when the default expert ties with the best, the default is kept.
    """
    n_e, n_d = profit.shape
    finite = np.isfinite(profit).all(axis=0)
    filled = np.where(finite[None, :], profit, 0.0)
    cum = np.concatenate([np.zeros((n_e, 1)), np.cumsum(filled, axis=1)], axis=1)
    cnt = np.concatenate([[0], np.cumsum(finite)])
    chosen = np.full(n_d, default, dtype=int)
    for i in range(n_d):
        lo = max(0, i - lookback)
        if cnt[i] - cnt[lo] < min_history:
            continue
        score = cum[:, i] - cum[:, lo]
        best = int(np.argmax(score))
        if score[default] < score[best] - 1e-9:
            chosen[i] = best
    return chosen


def expert_profits(actual: np.ndarray, experts: np.ndarray, timing_shift: float = 0.0) -> np.ndarray:
    """Realised profit [E, days] of scheduling each day on each expert (NaN without a forecast)."""
    battery = protocol_battery()
    n_e, n_d, _ = experts.shape
    out = np.full((n_e, n_d), np.nan)
    for e in range(n_e):
        ok = np.isfinite(experts[e]).all(axis=1) & np.isfinite(actual).all(axis=1)
        if ok.any():
            charge, discharge = dispatch_days(experts[e, ok], battery, 60, timing_shift)
            out[e, ok] = ((discharge - charge) * actual[ok]).sum(axis=1)
    return out


def capture_diagnostics(
    actual: np.ndarray, forecast: np.ndarray, timing_shift: float = 0.0
) -> dict[str, float]:
    """Where the lost profit comes from: the capture when one part of the forecast is the truth.

    ``forecast_ranks_actual_values``: the forecast's order of the hours, filled with
    the day's actual prices (sorted) — what a perfect spread and level with our
    ranking would earn; ``actual_ranks_forecast_values``: the true order filled
    with our forecast values; ``actual_shape_forecast_level``: the actual prices
    shifted to our daily mean. Each settles at ``actual`` [days, T] with the
    protocol battery (deciding with ``timing_shift`` as the run did; the perfect
    foresight decides on the actual prices as they are); 1.0 = perfect foresight.
    """
    battery = protocol_battery()

    def capture(plan_prices: np.ndarray) -> float:
        charge, discharge = dispatch_days(plan_prices, battery, 60, timing_shift)
        return float(((discharge - charge) * actual).sum() / perfect)

    best_c, best_d = dispatch_days(actual, battery, 60)
    perfect = float(((best_d - best_c) * actual).sum())
    f_rank = np.argsort(np.argsort(forecast, axis=1, kind="stable"), axis=1, kind="stable")
    a_rank = np.argsort(np.argsort(actual, axis=1, kind="stable"), axis=1, kind="stable")
    return {
        "forecast": capture(forecast),
        "forecast_ranks_actual_values": capture(np.take_along_axis(np.sort(actual, axis=1), f_rank, 1)),
        "actual_ranks_forecast_values": capture(np.take_along_axis(np.sort(forecast, axis=1), a_rank, 1)),
        "actual_shape_forecast_level": capture(
            actual - actual.mean(axis=1, keepdims=True) + forecast.mean(axis=1, keepdims=True)
        ),
    }


def backtest(
    dataset: Path,
    *,
    forecasts: Path | Sequence[Path] | None = None,
    model: str = "naive",
    strategy: str = "point",
    cvar_weight: float = 1.0,
    out_dir: Path | None = None,
    test_days: int = TEST_DAYS,
    skip_days: int = SKIP_DAYS,
    residual_days: int = 7,
    members: Sequence[str] | None = None,
    weight_step: float = 0.25,
    scales: Sequence[float] = (1.0,),
    lookback: int = 56,
    min_history: int = 7,
    timing_shift: float = DISPATCH_TIMING_SHIFT,
    baseline: str | None = None,
    bootstrap: int = 2000,
    block_days: int = 7,
    seed: int = 0,
    market: str | None = None,
    timezone: str | None = None,
    holidays: str = "none",
    last_day: str | None = None,
) -> dict[str, Any]:
    from research.markets import resolve_market

    resolved = resolve_market(dataset, market, timezone, holidays, last_day)
    if not 0.0 <= timing_shift <= MAX_TIMING_SHIFT:
        raise MissingInputError(f"--timing-shift must lie in [0, {MAX_TIMING_SHIFT}], got {timing_shift}")

    days, prices = load_day_matrix(dataset, resolved.last_day)
    period = evaluation_period(days, test_days, skip_days)
    paths = [] if forecasts is None else [forecasts] if isinstance(forecasts, Path) else list(forecasts)
    # Each file is read once, and its actual prices checked once on every day it has, for all strategies.
    frames = read_forecast_files(paths)
    check_actuals(frames, days, prices)
    start = period.start or 0
    extra: dict[str, Any] = {}
    if strategy == "adaptive":
        if not frames:
            raise MissingInputError("--strategy adaptive needs --forecasts (the experts mix its columns)")
        names = list(members) if members else [model]
        model = "+".join(names)  # what is mixed, not the --model default
        results, covered, extra = _adaptive_days(
            days,
            prices,
            start,
            frames,
            names=names,
            weight_step=weight_step,
            scales=scales,
            lookback=lookback,
            min_history=min_history,
            timing_shift=timing_shift,
        )
    else:
        results, covered, point = _scheduled_days(
            days,
            prices,
            period,
            frames,
            model=model,
            strategy=strategy,
            cvar_weight=cvar_weight,
            residual_days=residual_days,
            timing_shift=timing_shift,
        )
        if strategy == "point":
            extra["diagnostics"] = capture_diagnostics(prices[period][covered], point[covered], timing_shift)
    extra["timing_shift"] = timing_shift
    extra["by_month"] = capture_by_month(results)
    baseline_realised = None
    if baseline is not None:
        extra["baseline"], baseline_realised = _baseline_on(
            baseline,
            results,
            days=days,
            prices=prices,
            period=period,
            frames=frames,
            timing_shift=timing_shift,
        )
    perfect = np.array([r.perfect for r in results])
    if bootstrap > 0 and perfect.sum() > 0:
        extra["bootstrap"] = block_bootstrap(
            np.array([r.realised for r in results]),
            perfect,
            baseline_realised=baseline_realised,
            resamples=bootstrap,
            block_days=block_days,
            seed=seed,
        )
    extra["test_days"] = test_days
    return _summary(
        resolved,
        model=model,
        strategy=strategy,
        results=results,
        covered=covered,
        cvar_weight=cvar_weight,
        residual_days=residual_days,
        out_dir=out_dir,
        extra=extra,
    )


def _baseline_on(
    baseline: str,
    results: Sequence[DayResult],
    *,
    days: Sequence[str],
    prices: np.ndarray,
    period: slice,
    frames: Sequence[tuple[Path, pd.DataFrame]],
    timing_shift: float,
) -> tuple[dict[str, Any], np.ndarray]:
    """The baseline forecast scheduled (point strategy) on the days of ``results``: its summary and daily profit."""
    base_results, _, _ = _scheduled_days(
        days,
        prices,
        period,
        frames,
        model=baseline,
        strategy="point",
        cvar_weight=0.0,
        residual_days=0,
        timing_shift=timing_shift,
    )
    by_day = {r.day: r.realised for r in base_results}
    missing = [r.day for r in results if r.day not in by_day]
    if missing:
        raise MissingInputError(
            f"baseline {baseline!r} has no full forecast on {len(missing)} of the scheduled days "
            f"(first {missing[0]}); compare forecasts that cover the same days"
        )
    realised = np.array([by_day[r.day] for r in results])
    perfect = sum(r.perfect for r in results)
    summary = {
        "model": baseline,
        "realised_profit_eur": round(float(realised.sum()), 2),
        "capture_ratio": float(realised.sum()) / perfect if perfect else None,
    }
    return summary, realised


def _scheduled_days(
    days: Sequence[str],
    prices: np.ndarray,
    period: slice,
    frames: Sequence[tuple[Path, pd.DataFrame]],
    *,
    model: str,
    strategy: str,
    cvar_weight: float,
    residual_days: int,
    timing_shift: float = 0.0,
) -> tuple[list[DayResult], np.ndarray, np.ndarray]:
    """Schedule each evaluation day on its forecast (point, quantile or residual scenarios).

    ``frames``: the forecasts files as read (:func:`read_forecast_files`), their
    actual prices already checked; none means the built-in naive. Returns the day results, which evaluation days had a full forecast, and the
    point forecast [evaluation days, 24].
    """
    eval_days = days[period]
    actual = prices[period]
    start = period.start or 0
    if strategy == "residual" and not 1 <= residual_days <= start:
        raise MissingInputError(f"--residual-days must be 1..{start}, got {residual_days}")
    lag = residual_days if strategy == "residual" else 0
    weights: list[float] | None = None
    if not frames:
        if model != "naive":
            raise MissingInputError(f"model {model!r} needs --forecasts; only 'naive' is built in")
        if strategy not in ("point", "residual"):
            raise MissingInputError(
                "the built-in weekly naive has no quantiles; use --strategy point or residual"
            )
        point = prices[start - lag - 7 : len(days) - 7]
        scen = point[None, lag:, :]
    elif strategy in ("point", "residual"):
        point = blend_of(frames, days[start - lag :], model)
        scen = point[None, lag:, :]
    else:
        if len(frames) != 1 or len(blend_members(model)) != 1:
            raise MissingInputError(
                f"--strategy {strategy} schedules on one file's q10/q50/q90: give one --forecasts and one --model"
            )
        path, frame = frames[0]
        cols = forecast_columns(path, frame, days[start:], model)
        if not all(q in cols for q in ("q10", "q50", "q90")):
            raise MissingInputError(f"--strategy {strategy} needs q10/q50/q90 columns in {path}")
        point = cols[model]
        scen = np.stack([cols["q10"], cols["q50"], cols["q90"]])
        weights = [0.3, 0.4, 0.3]
    if strategy == "residual":
        scen = residual_scenarios(point, prices[start - lag :], lag)
    covered = np.isfinite(scen).all(axis=(0, 2))
    if not covered.any():
        raise MissingInputError(
            f"no day of the test period {eval_days[0]}..{eval_days[-1]} has a full forecast"
        )
    idx = np.flatnonzero(covered)
    results = run_days(
        [eval_days[i] for i in idx],
        actual[idx],
        scen[:, idx, :],
        weights=weights,
        cvar_weight=cvar_weight if strategy in ("cvar", "residual") else 0.0,
        timing_shift=timing_shift,
    )
    return results, covered, point[lag:]


def _adaptive_days(
    days: Sequence[str],
    prices: np.ndarray,
    start: int,
    frames: Sequence[tuple[Path, pd.DataFrame]],
    *,
    names: Sequence[str],
    weight_step: float,
    scales: Sequence[float],
    lookback: int,
    min_history: int,
    timing_shift: float = 0.0,
) -> tuple[list[DayResult], np.ndarray, dict[str, Any]]:
    """Schedule each evaluation day on the expert that earned most on the days before it."""
    if lookback < 1 or min_history < 1:
        raise MissingInputError("--lookback and --min-history must be at least 1 day")
    first = max(0, start - lookback)
    span = days[first:]
    cols = {name: blend_of(frames, span, name) for name in names}
    labels, experts = expert_forecasts(cols, weight_step, scales)
    profit = expert_profits(prices[first:], experts, timing_shift)
    chosen = follow_the_leader(profit, lookback, min_history)
    off = start - first
    covered = np.isfinite(profit[0, off:])
    scored = off + np.flatnonzero(covered)
    perfect = expert_profits(prices[first:][scored], prices[first:][scored][None])[0]
    results = [
        DayResult(span[day], float(profit[chosen[day], day]), float(best))
        for day, best in zip(scored, perfect, strict=True)
    ]
    picks = np.bincount(chosen[off:][covered], minlength=len(labels))
    top = np.argsort(-picks)[:5]
    eval_profit = np.nansum(profit[:, off:], axis=1)
    extra = {
        "members": list(names),
        "experts": len(labels),
        "lookback_days": lookback,
        "scales": list(scales),
        "weight_step": weight_step,
        "default_expert": labels[0],
        "default_expert_capture_basis_eur": round(float(eval_profit[0]), 2),
        "best_fixed_expert_in_hindsight": labels[int(np.argmax(eval_profit))],
        "best_fixed_expert_profit_eur": round(float(eval_profit.max()), 2),
        "most_chosen": {labels[e]: int(picks[e]) for e in top if picks[e]},
    }
    return results, covered, extra


def _summary(
    market: Market,
    *,
    model: str,
    strategy: str,
    results: list[DayResult],
    covered: np.ndarray,
    cvar_weight: float,
    residual_days: int,
    out_dir: Path | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    import pandas as pd

    if not results:
        raise MissingInputError("no day of the test period has a full forecast")
    realised = sum(r.realised for r in results)
    perfect = sum(r.perfect for r in results)
    from research.markets import published_period

    # The published captures belong to one market and period: shown only for them.
    published = extra.get("test_days") == TEST_DAYS and published_period(
        market.name, results[0].day, results[-1].day
    )
    ref = REFERENCE.get(market.name, {})
    summary: dict[str, Any] = {
        **market.to_json(),
        "model": model,
        "strategy": strategy,
        "cvar_weight": cvar_weight if strategy in ("cvar", "residual") else 0.0,
        "residual_days": residual_days if strategy == "residual" else None,
        "first_day": results[0].day,
        "last_day": results[-1].day,
        "days": len(results),
        "days_missing_forecast": int((~covered).sum()),
        "realised_profit_eur": round(realised, 2),
        "perfect_foresight_profit_eur": round(perfect, 2),
        "capture_ratio": realised / perfect if perfect else None,
        "target": ref.get("target"),
        "published_reference": {k: v for k, v in ref.items() if k != "target"} if published else {},
        **extra,
    }
    if extra.get("best_fixed_expert_profit_eur") is not None and perfect:
        summary["default_expert_capture"] = extra["default_expert_capture_basis_eur"] / perfect
        summary["best_fixed_expert_capture_in_hindsight"] = extra["best_fixed_expert_profit_eur"] / perfect
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        daily = pd.DataFrame([r.__dict__ for r in results])
        path = out_dir / f"trading_{market.name}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}_{strategy}.csv"
        daily.to_csv(path, index=False)
        summary["daily_csv"] = str(path)
    return summary


def format_report(s: dict[str, Any], *, by_month: bool = False) -> str:
    ref = s["published_reference"]
    lines = [
        f"Trading backtest {s['market']} ({s['model']}, {s['strategy']}): {s['first_day']} .. {s['last_day']}, "
        f"{s['days']} days ({s['days_missing_forecast']} without forecast skipped)",
        f"  realised profit          {s['realised_profit_eur']:>14,.0f} EUR",
        f"  perfect-foresight profit {s['perfect_foresight_profit_eur']:>14,.0f} EUR",
        f"  capture ratio            {100 * s['capture_ratio']:>13.1f} %"
        + (f"   (target >= {100 * s['target']:.0f} %)" if s.get("target") else ""),
    ]
    boot = s.get("bootstrap")
    if boot:
        lo, hi = boot["capture"]["interval_95_pp"]
        lines.append(
            f"  95 % interval            {lo:>6.1f} .. {hi:.1f} %   "
            f"({boot['block_days']}-day block bootstrap, {boot['resamples']} resamples: which days the period holds)"
        )
    base = s.get("baseline")
    if base:
        line = f"  baseline {base['model']}: capture {100 * base['capture_ratio']:.1f} %"
        if boot and "difference" in boot:
            diff = boot["difference"]
            lo, hi = diff["interval_95_pp"]
            line += f", difference {diff['pp']:+.2f} pp (paired 95 % interval {lo:+.2f} .. {hi:+.2f} pp)"
        lines.append(line)
    hindsight = s.get("best_fixed_expert_capture_in_hindsight")
    if hindsight is not None:
        lines.append(
            f"  best fixed mix in hindsight      {100 * hindsight:.1f} %   ({s['best_fixed_expert_in_hindsight']}; "
            "chosen on these days among the grid's fixed mixes: a bound, not a strategy)"
        )
    shift = s.get("timing_shift", 0.0)
    lines.append(
        f"  storage decides on timing-robust prices, p = {shift:g} each way for +/-1 h (--timing-shift)"
        if shift
        else "  storage decides on the forecast as it is (--timing-shift 0)"
    )
    if ref:
        lines.append(
            "  published forecasts, this protocol: "
            + ", ".join(f"{k} {100 * v:.1f} %" for k, v in ref.items())
        )
    diag = s.get("diagnostics")
    if diag:
        lines.append(
            "  capture if part of the forecast were true: "
            f"actual ranking {100 * diag['actual_ranks_forecast_values']:.1f} %, "
            f"actual spreads (our ranking) {100 * diag['forecast_ranks_actual_values']:.1f} %, "
            f"actual shape (our level) {100 * diag['actual_shape_forecast_level']:.1f} %"
        )
    if by_month:
        lines.append("  month     days  perfect-foresight EUR  capture")
        lines.extend(
            f"  {m['month']}  {m['days']:>4}  {m['perfect_foresight_profit_eur']:>21,.0f}  "
            + (f"{100 * m['capture_ratio']:>6.1f} %" if m["capture_ratio"] is not None else "     -")
            for m in s.get("by_month", [])
        )
    return "\n".join(lines)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in _names(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from research.ensemble_backtest import add_market_options

    parser.add_argument(
        "--dataset", required=True, type=Path, help="Hourly epftoolbox-layout CSV (e.g. DE.csv)."
    )
    add_market_options(parser)
    parser.add_argument(
        "--forecasts",
        type=Path,
        action="append",
        default=None,
        help="forecasts.csv of research.backtest, or an epftoolbox published forecast file "
        "(Forecasts_<market>_DNN_LEAR_ensembles.csv); repeat to blend columns of several files.",
    )
    parser.add_argument(
        "--model",
        default="naive",
        help="Forecast column to schedule on (default: built-in naive); 'a+b+c' schedules on the "
        "equal-weight mean of those columns, each from the one --forecasts file that has it.",
    )
    parser.add_argument(
        "--strategy",
        choices=("point", "expected", "cvar", "residual", "adaptive"),
        default="point",
        help="point: the model column; expected/cvar: the q10/q50/q90 columns; "
        "residual: the model plus its recent error profiles as scenarios (with --cvar-weight); "
        "adaptive: each day the member mix and shape scale that earned most over --lookback days.",
    )
    parser.add_argument(
        "--members", type=_names, default=None, help="adaptive: forecast columns to mix (default: --model)."
    )
    parser.add_argument("--weight-step", type=float, default=0.25, help="adaptive: mixing weight grid step.")
    parser.add_argument(
        "--scales", type=_floats, default=(1.0,), help="adaptive: intraday shape scales, e.g. 1,1.1,1.25."
    )
    parser.add_argument("--lookback", type=int, default=56, help="adaptive: days each expert is scored on.")
    parser.add_argument(
        "--min-history", type=int, default=7, help="adaptive: scored days needed before leaving the default."
    )
    parser.add_argument("--cvar-weight", type=float, default=1.0, help="CVaR90 weight (cvar, residual).")
    parser.add_argument(
        "--residual-days", type=int, default=7, help="Error profiles used by --strategy residual."
    )
    parser.add_argument(
        "--test-days", type=int, default=TEST_DAYS, help="Length of the test period (protocol: 728)."
    )
    parser.add_argument(
        "--timing-shift",
        type=float,
        default=DISPATCH_TIMING_SHIFT,
        help="Probability each way that the forecast profile is an hour off, for the decision "
        f"(default {DISPATCH_TIMING_SHIFT}, as the schedule stage; 0 = decide on the forecast as it is).",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="A second forecast (column or a+b blend of the same files, point strategy) scheduled on the "
        "same days; prints the paired capture difference and its bootstrap interval.",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=2000, help="Block-bootstrap resamples for the intervals (0: off)."
    )
    parser.add_argument("--block-days", type=int, default=7, help="Bootstrap block length in days.")
    parser.add_argument(
        "--seed", type=int, default=0, help="Bootstrap seed (the same seed, the same interval)."
    )
    parser.add_argument("--by-month", action="store_true", help="Print capture per calendar month.")
    parser.add_argument("--out", type=Path, default=None, help="Directory for the per-day CSV.")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        summary = backtest(
            args.dataset,
            forecasts=args.forecasts,
            model=args.model,
            strategy=args.strategy,
            cvar_weight=args.cvar_weight,
            out_dir=args.out,
            test_days=args.test_days,
            residual_days=args.residual_days,
            members=args.members,
            weight_step=args.weight_step,
            scales=args.scales,
            lookback=args.lookback,
            min_history=args.min_history,
            timing_shift=args.timing_shift,
            baseline=args.baseline,
            bootstrap=args.bootstrap,
            block_days=args.block_days,
            seed=args.seed,
            market=args.market,
            timezone=args.timezone,
            holidays=args.holidays,
            last_day=args.last_day,
        )
    except PipelineError as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2
    print(format_report(summary, by_month=args.by_month), flush=True)
    emit_result(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
