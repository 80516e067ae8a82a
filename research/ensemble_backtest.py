"""Rolling backtest of the served ensemble, as separate tasks: search, one task per member and period, combine.

The ensemble is :func:`tasks.forecasting.definition.from_config` of
``mlruns_config/models.json``: the members, their parameters, the DNN search
and the combination rule that ``tasks.train`` registers. Steps:

1. ``search``: the definition's DNN search, once, on the training window that
   ends the day before the first forecast day (nothing later is read).
2. ``member``: for one member and one period (a run of consecutive origins),
   re-fit every ``retrain_every`` days on the ``window_days`` days before the
   origin and forecast the days to the next origin. Forecasting starts
   ``combination.validation_days`` before the test period, so that every test
   origin has a validation window of out-of-sample member forecasts.
3. ``combine``: at each test origin, the definition's combination (weights on the
   validation window before the origin, with the guard) of the members' points,
   and the DNN band re-centred on it (:func:`tasks.forecasting.price_ensemble.combine_quantiles`,
   the served model's code), scaled to its nominal coverage on the same validation window
   (:func:`tasks.forecasting.definition.calibrate_band`).

Run locally (``research.backtest``'s default: a process pool of ``--jobs``
workers) or as the Airflow DAG ``day_ahead_backtest``; both call the CLI here:

``python -m research.ensemble_backtest plan|search|member|combine --dataset CSV --work DIR [...]``

``plan`` writes ``DIR/plan.json`` and returns the member tasks' arguments;
``search`` writes ``DIR/search.json``; ``member --member M --period K`` writes
``DIR/members/M_K.npy``; ``combine`` scores the ensemble and writes
``metrics.json`` and ``forecasts.csv`` (to ``--out``, default ``DIR``) as
``research.backtest --out`` does.

``combine --substitute MEMBER=FILE:COLUMN`` (repeatable) is a research question,
not the served model: what the served combination would make of a better (or
another) member. The member's point forecasts are replaced, on the days the file
covers, by a column of a forecasts file (``research.backtest``'s
``forecasts.csv`` or an epftoolbox published file, as ``research.backtest_trading``
reads them); other days keep the member's own. For ``dnn`` the band keeps its
offsets around the new median. The result records the substitutions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.cli import run_stage
from tasks.errors import PipelineError

if TYPE_CHECKING:
    from research.markets import Market
    from tasks.forecasting.definition import CombinationChoice, EnsembleDefinition
    from tasks.forecasting.design import DayData

log = logging.getLogger("research.ensemble_backtest")

QUANTILES = (0.1, 0.5, 0.9)


class PlanError(PipelineError):
    """The backtest cannot be planned with these options on this dataset."""


def _settings_default(name: str) -> int:
    """A Settings field's default (the deployment's value when no DAP_ variable overrides it)."""
    from tasks.config import Settings

    return int(Settings.model_fields[name].default)


@dataclass(frozen=True)
class Plan:
    """Where the test period lies, how often members re-fit, and how origins split into periods."""

    test_days: int
    retrain_every: int
    window_days: int
    periods: int
    validation_fraction: float
    first: int  # first forecast day (index): the validation window before the test period
    start: int  # first test day
    stop: int  # one past the last day

    def origins(self) -> list[tuple[int, int]]:
        """Blocks ``[t, t_end)`` of days forecast by the models fitted at ``t``; test blocks align on ``start``."""
        before = list(
            range(self.start - self.retrain_every, self.first - self.retrain_every, -self.retrain_every)
        )[::-1]
        starts = [max(self.first, t) for t in before] + list(range(self.start, self.stop, self.retrain_every))
        ends = [*starts[1:], self.stop]
        return list(zip(starts, ends, strict=True))

    def period(self, k: int) -> list[tuple[int, int]]:
        """The origins of period ``k`` (contiguous, as even as the count allows)."""
        blocks = self.origins()
        bounds = np.linspace(0, len(blocks), self.periods + 1).round().astype(int)
        return blocks[bounds[k] : bounds[k + 1]]

    def train_days(self, t: int) -> np.ndarray:
        from tasks.forecasting.design import MAX_LAG

        return np.arange(max(MAX_LAG, t - self.window_days), t)


def make_plan(
    data: DayData,
    defn: EnsembleDefinition,
    *,
    test_days: int,
    retrain_every: int | None = None,
    window_days: int | None = None,
    periods: int = 1,
    validation_fraction: float = 0.15,
) -> Plan:
    """The plan of a backtest of ``test_days`` at the end of ``data``; defaults: the deployment's settings."""
    from tasks.forecasting.design import MAX_LAG

    every = retrain_every or _settings_default("train_every_days")
    window = window_days or _settings_default("train_window_days")
    if test_days <= 7:
        raise PlanError(
            "--test-days must exceed 7: rMAE compares against the weekly naive forecast, "
            "which epftoolbox defines from the second test week on"
        )
    if every < 1 or periods < 1:
        raise PlanError("--retrain-every and --periods must be >= 1")
    start = data.n_days - test_days
    first = start - defn.combination.validation_days
    need = MAX_LAG + 28 + defn.search.validation_days
    if first < need:
        raise PlanError(
            f"{data.n_days} days in the file leave too little history before a {test_days}-day test period "
            f"and its {defn.combination.validation_days}-day validation window (need {need} days before them)"
        )
    plan = Plan(test_days, every, window, periods, validation_fraction, first, start, data.n_days)
    if periods > len(plan.origins()):
        raise PlanError(f"--periods {periods}: only {len(plan.origins())} origins to split")
    return plan


# -- steps ------------------------------------------------------------------------------------------


def run_search(data: DayData, defn: EnsembleDefinition, plan: Plan) -> dict[str, Any]:
    """Step 1: the definition's DNN search on the window before the first forecast day."""
    from tasks.forecasting import design
    from tasks.forecasting.definition import search_dnn

    days = plan.train_days(plan.first)
    n_val = min(defn.search.validation_days, len(days) // 2)
    x, y = design.build_design(data, days), design.targets(data, days)
    result = search_dnn(defn, QUANTILES, (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:]))
    return result.to_json()


def run_member(
    data: DayData, defn: EnsembleDefinition, plan: Plan, *, member: str, period: int, tuned: Mapping[str, Any]
) -> np.ndarray:
    """Step 2: one member's forecasts for the origins of one period; NaN on the other days.

    ``[n_forecast_days, slots]`` for point members, ``[n, slots, q]`` for the DNN
    (its quantiles), indexed from ``plan.first``.
    """
    from threadpoolctl import threadpool_limits

    from tasks.forecasting import design
    from tasks.forecasting.definition import lag_point_member

    specs = {m.name: m for m in defn.point_members}
    if member != "dnn" and member not in specs:
        raise PlanError(f"member {member!r} is not in the definition ({', '.join(('dnn', *specs))})")
    shape: tuple[int, ...] = (plan.stop - plan.first, data.slots)
    out = np.full((*shape, len(QUANTILES)) if member == "dnn" else shape, np.nan)
    daily = defn.daily.applies_to(member)
    t0 = time.perf_counter()
    for t, t_end in plan.period(period):
        days = plan.train_days(t)
        x, y = design.build_design(data, days), design.targets(data, days)
        # Small matrices: multi-threaded BLAS only adds overhead on a busy box.
        with threadpool_limits(limits=1, user_api="blas"):
            if member == "dnn":
                model: Any = fit_dnn(defn, plan, x, y, tuned)
            else:
                model = lag_point_member(specs[member], data.exog_names, defn.seed).fit(x, y)
            if not daily:
                block = np.arange(t, t_end)
                out[block - plan.first] = model.predict(design.build_design(data, block))
                continue
            for day in range(t, t_end):
                daily_step(data, defn, plan, member, model, fitted_at=t, day=day)
                out[day - plan.first] = model.predict(design.build_design(data, np.array([day])))[0]
    log.info(
        "%s period %d: %d origins in %.0f s",
        member,
        period,
        len(plan.period(period)),
        time.perf_counter() - t0,
    )
    return out


def recent_days(day: int, recent: int) -> np.ndarray:
    """The ``recent`` days before ``day`` (fewer at the start of the history): what D's daily step may read."""
    from tasks.forecasting.design import MAX_LAG

    return np.arange(max(MAX_LAG, day - recent), day)


def daily_step(
    data: DayData, defn: EnsembleDefinition, plan: Plan, member: str, model: Any, *, fitted_at: int, day: int
) -> None:
    """Step 5 before forecasting ``day`` with a member fitted at ``fitted_at``, reading only days before ``day``.

    The DNN is fine-tuned on the ``dnn_recent_days`` days ending ``day - 1`` (one
    step each day, chained from the fit, as the forecast stage replays it); LEAR's
    windows are re-fitted on the plan's window ending ``day - 1`` (its fit already
    ends there on ``fitted_at``).
    """
    from tasks.forecasting import design
    from tasks.forecasting.daily_step import tune_dnn

    if member == "dnn":
        rec = recent_days(day, defn.daily.dnn_recent_days)
        tune_dnn(model, design.build_design(data, rec), design.targets(data, rec), defn.daily)
    elif day > fitted_at:
        days = plan.train_days(day)
        model.refit(design.build_design(data, days), design.targets(data, days))


def fit_dnn(
    defn: EnsembleDefinition, plan: Plan, x: np.ndarray, y: np.ndarray, tuned: Mapping[str, Any]
) -> Any:
    """The DNN member fitted on one origin's window ``x, y``, early-stopped on its last ``validation_fraction``."""
    from tasks.forecasting.definition import dnn_params
    from tasks.forecasting.dnn import make_dnn

    n_val = max(1, round(plan.validation_fraction * len(x)))
    model = make_dnn(QUANTILES, seed=defn.seed, **dnn_params(defn, tuned))
    return model.fit(x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:])


@dataclass
class Combined:
    """The combine step's output: members' and ensemble's test forecasts, the band, the weights per origin."""

    points: dict[str, np.ndarray]  # member -> [test_days, slots]; "ensemble" too
    quantiles: np.ndarray  # the served band [test_days, slots, q]
    dnn_quantiles: np.ndarray
    weights: list[dict[str, Any]]  # per test origin: day, weights, validation MAEs, fallback


def served_band(
    defn: EnsembleDefinition,
    forecasts: Mapping[str, np.ndarray],
    days: slice,
    choice: CombinationChoice,
    scale: float,
) -> np.ndarray:
    """The band served on ``days`` (rows of the plan's forecasts): the DNN's quantiles re-centred and scaled."""
    from tasks.forecasting.price_ensemble import combine_quantiles

    members = {n: forecasts[n][days] for n in defn.names if n != "dnn"}
    return np.asarray(
        combine_quantiles(
            forecasts["dnn"][days],
            members,
            QUANTILES.index(0.5),
            dnn_in_point=defn.dnn_in_point,
            weights=choice.weights,
            band_scale=scale,
            shape_weights=choice.shape_weights,
        )
    )


def combine(
    data: DayData, defn: EnsembleDefinition, plan: Plan, forecasts: Mapping[str, np.ndarray]
) -> Combined:
    """Step 3: at each test origin, weights from the validation window before it; the band re-centred."""
    from tasks.forecasting import design
    from tasks.forecasting.definition import calibrate_band, choose_combination

    actual = design.targets(data, np.arange(plan.first, plan.stop))
    median = QUANTILES.index(0.5)
    dnn_q = forecasts["dnn"]
    points = {name: (dnn_q[..., median] if name == "dnn" else forecasts[name]) for name in defn.names}
    band = np.full_like(dnn_q, np.nan)
    rows: list[dict[str, Any]] = []
    for t, t_end in plan.origins():
        if t < plan.start:
            continue
        v0, v1 = t - defn.combination.validation_days - plan.first, t - plan.first
        choice = choose_combination({n: p[v0:v1] for n, p in points.items()}, actual[v0:v1], defn.combination)
        validation = served_band(defn, forecasts, slice(v0, v1), choice, 1.0)
        calibration = calibrate_band(validation, actual[v0:v1], QUANTILES, defn.combination)
        block = slice(t - plan.first, t_end - plan.first)
        band[block] = served_band(defn, forecasts, block, choice, calibration.scale)
        rows.append({"origin": str(data.dates[t]), **choice.to_json(), "band": calibration.to_json()})
    test = slice(plan.start - plan.first, None)
    out = {n: p[test] for n, p in points.items()}
    out["ensemble"] = band[test][..., median]
    return Combined(out, band[test], dnn_q[test], rows)


# -- files of the steps (the DAG's tasks share a work directory) -----------------------------------


def member_path(work: Path, member: str, period: int) -> Path:
    return work / "members" / f"{member}_{period}.npy"


def write_plan(work: Path, plan: Plan, extra: Mapping[str, Any]) -> None:
    from tasks.storage import write_json_atomic

    write_json_atomic(work / "plan.json", {**asdict(plan), **extra})


def read_plan(work: Path) -> tuple[Plan, dict[str, Any]]:
    path = work / "plan.json"
    if not path.is_file():
        raise PlanError(
            f"{path} missing: run the plan step first (python -m research.ensemble_backtest plan ...)"
        )
    doc = json.loads(path.read_text())
    fields = set(Plan.__dataclass_fields__)
    return Plan(**{k: v for k, v in doc.items() if k in fields}), {
        k: v for k, v in doc.items() if k not in fields
    }


def data_days(data: DayData) -> list[str]:
    """The first and last day of ``data`` (the plan records them; every later step checks them)."""
    return [str(data.dates[0]), str(data.dates[-1])]


def check_same_data(recorded: Mapping[str, Any], data: DayData, dataset: Path) -> None:
    """Refuse a step whose data is not the plan's: the plan's day indices would point elsewhere."""
    days = data_days(data)
    planned = recorded.get("data_days")
    if planned is not None and list(planned) != days:
        raise PlanError(
            f"the plan covers {planned[0]} … {planned[1]} of {recorded.get('dataset')}, this step read "
            f"{days[0]} … {days[1]} of {dataset}: pass the plan step's --dataset and --last-day"
        )


def read_search(work: Path) -> dict[str, Any]:
    """The search step's result (``DIR/search.json``)."""
    path = work / "search.json"
    if not path.is_file():
        raise PlanError(
            f"{path} missing: run the search step first (python -m research.ensemble_backtest search ...)"
        )
    return dict(json.loads(path.read_text()))


def save_array(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def assemble(plan: Plan, names: Sequence[str], work: Path) -> dict[str, np.ndarray]:
    """Each member's forecasts over all periods, from the member steps' files."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        parts = []
        for k in range(plan.periods):
            path = member_path(work, name, k)
            if not path.is_file():
                raise PlanError(f"{path} missing: the member step {name} period {k} has not run")
            parts.append(np.load(path))
        merged = parts[0].copy()
        for part in parts[1:]:
            fill = np.isfinite(part)
            merged[fill] = part[fill]
        out[name] = merged
    return out


def parse_substitution(text: str) -> tuple[str, Path, str]:
    """``MEMBER=FILE:COLUMN`` → (member, file, column); the column may contain spaces."""
    member, sep, rest = text.partition("=")
    path, sep2, column = rest.rpartition(":")
    if not (sep and sep2 and member and path and column):
        raise PlanError(
            f'--substitute {text!r}: write MEMBER=FILE:COLUMN, e.g. "dnn=Forecasts_BE.csv:DNN Ensemble"'
        )
    return member, Path(path), column


def substitute_member(forecasts: Mapping[str, np.ndarray], member: str, point: np.ndarray) -> np.ndarray:
    """``member``'s forecasts with their point replaced by ``point`` [days, slots] where it is finite.

    A day the substitute lacks any slot of keeps the member's own forecast. The DNN's
    [days, slots, q] band is shifted so that its median is the substitute (its offsets kept).
    """
    if member not in forecasts:
        raise PlanError(f"--substitute names {member!r}; the members are {sorted(forecasts)}")
    own = forecasts[member]
    days = np.isfinite(point).all(axis=1)
    out = own.copy()
    if own.ndim == 3:
        median = QUANTILES.index(0.5)
        kept = own[days]
        out[days] = point[days][..., None] + (kept - kept[..., median : median + 1])
    else:
        out[days] = point[days]
    return out


def read_substitute(path: Path, column: str, data: DayData, plan: Plan) -> np.ndarray:
    """``column`` of a forecasts file on the plan's days [days, 24]; its actual prices must be the dataset's."""
    from research.backtest_trading import check_actuals, forecast_columns, read_forecast_files
    from tasks.forecasting import design

    if data.slots != 24:
        raise PlanError(
            f"--substitute reads hourly forecast files; this dataset has {data.slots} slots a day"
        )
    days = [str(d) for d in data.dates[plan.first : plan.stop]]
    frames = read_forecast_files([path])
    check_actuals(frames, days, design.targets(data, np.arange(plan.first, plan.stop)))
    point = forecast_columns(path, frames[0][1], days, column)[column]
    if not np.isfinite(point).any():
        raise PlanError(f"{path} has no day of the backtest ({days[0]} … {days[-1]}) in column {column!r}")
    return point


# -- one process per task ------------------------------------------------------------------------


def _member_task(
    args: tuple[DayData, EnsembleDefinition, Plan, str, int, dict[str, Any]],
) -> tuple[str, int, np.ndarray, float]:
    data, defn, plan, member, period, tuned = args
    t0 = time.perf_counter()
    return (
        member,
        period,
        run_member(data, defn, plan, member=member, period=period, tuned=tuned),
        time.perf_counter() - t0,
    )


def _one_thread_worker(parent: int) -> None:
    """Pool workers run one thread each: ``jobs`` processes already fill the cores.

    OpenMP (the GBM), BLAS and TensorFlow read these before their first use; spinning
    OpenMP threads on an oversubscribed box cost far more than they give. A worker also
    ends with its parent: a backtest killed with SIGTERM or SIGKILL would otherwise leave
    its workers computing for up to an hour.
    """
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = "1"
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    end_with_parent(parent)


def end_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when ``parent`` exits (Linux; elsewhere a no-op)."""
    import ctypes
    import ctypes.util
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent was already gone before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def tasks_of(defn: EnsembleDefinition, plan: Plan) -> list[tuple[str, int]]:
    """The member tasks: every member (the DNN always: it gives the band) in every period, slowest first."""
    names = ["dnn", *(m.name for m in defn.point_members)]
    return [(name, k) for name in names for k in range(plan.periods)]


def run_local(
    data: DayData, defn: EnsembleDefinition, plan: Plan, tuned: Mapping[str, Any], jobs: int
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every member task in a process pool of ``jobs`` workers (1: in this process); forecasts and seconds."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    todo = [(data, defn, plan, member, period, dict(tuned)) for member, period in tasks_of(defn, plan)]
    parts: dict[str, dict[int, np.ndarray]] = {}
    seconds: dict[str, float] = {}

    def keep(result: tuple[str, int, np.ndarray, float]) -> None:
        member, period, array, secs = result
        parts.setdefault(member, {})[period] = array
        seconds[member] = seconds.get(member, 0.0) + secs

    if jobs <= 1:
        for item in todo:
            keep(_member_task(item))
    else:
        # spawn: TensorFlow and BLAS thread pools do not survive a fork.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_one_thread_worker, initargs=(os.getpid(),)
        ) as pool:
            for result in pool.map(_member_task, todo):
                keep(result)
    forecasts = {}
    for member, by_period in parts.items():
        merged = by_period[0].copy()
        for part in list(by_period.values())[1:]:
            fill = np.isfinite(part)
            merged[fill] = part[fill]
        forecasts[member] = merged
    return forecasts, seconds


def default_jobs() -> int:
    return os.cpu_count() or 1


# -- CLI (the DAG's tasks) -----------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> tuple[DayData, EnsembleDefinition, Market, float]:
    """The dataset (with the market's holiday flags), the definition, the market and the validation
    fraction, from the shared options."""
    from research.markets import read_hourly, resolve_market
    from tasks.forecasting import design
    from tasks.forecasting.definition import from_config
    from tasks.registry import load_config

    market = resolve_market(args.dataset, args.market, args.timezone, args.holidays, args.last_day)
    data = read_hourly(args.dataset, market.last_day)
    if market.holidays is not None:
        data = design.with_holidays(data, market.holidays)
    config = load_config(args.config)
    return data, from_config(config), market, float(config["validation_fraction"])


def main(args: argparse.Namespace) -> dict[str, Any]:
    data, defn, market, validation_fraction = prepare(args)
    work: Path = args.work
    if args.step == "plan":
        plan = make_plan(
            data,
            defn,
            test_days=args.test_days,
            retrain_every=args.retrain_every,
            window_days=args.window_days,
            periods=args.periods,
            validation_fraction=validation_fraction,
        )
        recorded = {"dataset": str(args.dataset), "definition": defn.describe(), "data_days": data_days(data)}
        write_plan(work, plan, {**recorded, **market.to_json(), "validation_fraction": validation_fraction})
        tasks = [["--member", m, "--period", str(k)] for m, k in tasks_of(defn, plan)]
        return {"plan": str(work / "plan.json"), "tasks": tasks}
    plan, recorded = read_plan(work)
    check_same_data(recorded, data, args.dataset)
    if args.step == "search":
        from tasks.storage import write_json_atomic

        result = run_search(data, defn, plan)
        write_json_atomic(work / "search.json", result)
        return {"search": str(work / "search.json"), "best": result["best"]}
    if args.step == "member":
        tuned = read_search(work)["best"] if args.member == "dnn" else {}
        t0 = time.perf_counter()
        path = member_path(work, args.member, args.period)
        save_array(path, run_member(data, defn, plan, member=args.member, period=args.period, tuned=tuned))
        return {
            "member": args.member,
            "period": args.period,
            "path": str(path),
            "seconds": time.perf_counter() - t0,
        }
    return combine_step(args, data, defn, plan, market)


def combine_step(
    args: argparse.Namespace, data: DayData, defn: EnsembleDefinition, plan: Plan, market: Market
) -> dict[str, Any]:
    """The final task: the member files combined, scored and written as research.backtest writes them."""
    from research.backtest import report, served_result

    t0, cpu0 = time.perf_counter(), time.process_time()
    forecasts = assemble(plan, ["dnn", *(m.name for m in defn.point_members)], args.work)
    substituted: dict[str, str] = {}
    for text in args.substitute:
        member, path, column = parse_substitution(text)
        forecasts[member] = substitute_member(forecasts, member, read_substitute(path, column, data, plan))
        substituted[member] = f"{path}:{column}"
        log.warning("%s replaced by %s:%s: these figures are not the served model's", member, path, column)
    search = read_search(args.work)
    res, extra = served_result(data, defn, plan, forecasts=forecasts, search=search, seconds={})
    if substituted:
        extra = {**extra, "substituted": substituted}
    out = argparse.Namespace(dataset=args.dataset, out=args.out or args.work)
    return report(out, market, res, QUANTILES, extra, t0=t0, cpu0=cpu0)


def add_market_options(p: argparse.ArgumentParser) -> None:
    """--market, --timezone, --holidays, --last-day (research.markets), shared with the backtests."""
    p.add_argument(
        "--market", default=None, help="Market name (default: the file's stem, e.g. DE for DE.csv)."
    )
    p.add_argument(
        "--timezone",
        default=None,
        help="IANA time zone of the file's clock (default: the benchmark market's).",
    )
    p.add_argument(
        "--holidays",
        default="none",
        help="Holiday flags as features: a country code of the holidays package (e.g. DE, NO), 'auto' "
        "(the country of the epftoolbox DE, BE or FR market) or 'none' (default).",
    )
    p.add_argument(
        "--last-day",
        default=None,
        metavar="YYYY-MM-DD",
        help="Read the file up to this day: the test period ends on it and later rows are ignored "
        "(default: the file's last day).",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("step", choices=("plan", "search", "member", "combine"))
    p.add_argument("--dataset", type=Path, required=True, help="Hourly epftoolbox-layout CSV.")
    p.add_argument("--work", type=Path, required=True, help="Work directory the steps share.")
    add_market_options(p)
    p.add_argument(
        "--config", type=Path, default=None, help="JSON overriding mlruns_config/models.json keys."
    )
    p.add_argument("--test-days", type=int, default=728)
    p.add_argument("--retrain-every", type=int, default=None, help="Default: settings train_every_days.")
    p.add_argument("--window-days", type=int, default=None, help="Default: settings train_window_days.")
    p.add_argument("--periods", type=int, default=1, help="Periods the origins split into (one task each).")
    p.add_argument(
        "--out", type=Path, default=None, help="combine: metrics.json and forecasts.csv (default: --work)."
    )
    p.add_argument("--member", default=None)
    p.add_argument("--period", type=int, default=0)
    p.add_argument(
        "--substitute",
        action="append",
        default=[],
        metavar="MEMBER=FILE:COLUMN",
        help="combine: replace a member's point forecasts by a column of a forecasts file (research "
        "question, not the served model; repeatable).",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def cli(argv: Sequence[str] | None = None) -> int:
    return run_stage(main, build_parser(), argv)


if __name__ == "__main__":
    from tasks.cli import exit_stage

    exit_stage(cli())
