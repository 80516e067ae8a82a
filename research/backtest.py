"""Rolling-origin backtest of the day-ahead price models on an hourly epftoolbox-layout CSV.

``python -m research.backtest --dataset DE.csv [--market DE] [--holidays none] [--jobs N] [--out DIR]``

Default: the served ensemble, exactly as ``tasks.train`` registers it
(:mod:`tasks.forecasting.definition` of ``mlruns_config/models.json``: members,
their parameters, the DNN search on the window before the first forecast day,
the combination chosen on a rolling validation window before each origin),
re-trained every ``train_every_days`` on ``train_window_days`` days as the
daily pipeline does; members and periods run as separate processes
(:mod:`research.ensemble_backtest`, ``--jobs``). ``--models a,b,...`` runs the
experiment members instead (their own options below; not what is served).

Each test day is forecast from data up to the day before (prices up to D-1,
exogenous day-ahead forecasts up to D). Scores are computed as epftoolbox does
(rMAE against the weekly naive forecast over the same test period, without its
first week) and printed next to the published epftoolbox figures only when the
market (``--market``, default the file's stem) is a benchmark market and the
test period is its published one (:mod:`research.markets`).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.cli import run_stage
from tasks.errors import PipelineError
from tasks.forecasting import design
from tasks.forecasting.ensemble import combine
from tasks.forecasting.metrics import interval_coverage, pinball_loss, point_metrics
from tasks.forecasting.naive import weekly_naive

if TYPE_CHECKING:
    from research.ensemble_backtest import Plan
    from research.markets import Market
    from tasks.forecasting.definition import EnsembleDefinition


class BacktestError(PipelineError):
    """A forecast backtest cannot run with these options on this dataset."""


log = logging.getLogger("research.backtest")

MODELS = ("naive", "lear", "dnn", "gbm", "forest", "ensemble")
# The default run stays within 30 min on 2 cores; GBM members run as a shard (research/RESULTS.md).
DEFAULT_MODELS = ("naive", "lear", "dnn", "ensemble")
ENSEMBLE_MEMBERS = ("lear", "dnn", "gbm", "forest")
SHORT_WINDOW_DAYS = 365  # LEAR windows below this re-train on the short cadence


@dataclass
class BacktestConfig:
    test_days: int = 728
    retrain_every: int = 7
    short_retrain_every: int | None = None
    dnn_retrain_every: int | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    lear_windows: tuple[int, ...] = (56, 84, 1092, 1456)
    lear_penalty: str = "published"
    dnn_train_days: int = 1456
    dnn_seeds: int = 1
    dnn_hidden: tuple[int, ...] = (256, 128)
    dnn_epochs: int = 300
    dnn_patience: int = 20
    dnn_shape_weight: float = 0.0
    dnn_finetune_every: int | None = None
    dnn_finetune_days: int = 91
    dnn_finetune_epochs: int = 3
    gbm_windows: tuple[int, ...] = (728, 1092, 1456)
    forest_windows: tuple[int, ...] = (728, 1092, 1456)
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    ensemble_how: str = "mean"
    seed: int = 0
    holidays: str | None = None  # country whose public holidays are features (None: no flags)
    neighbour: str | None = None  # "NAME=PATH": a coupled market's file whose forecasts are more series
    residual_load: bool = True  # tree members add load minus renewables where the file has both
    intraday_profile: bool = True  # tree members take their shape from a second fit on the daily profile
    gbm_target: str = "asinh"  # the GBM fits the median-asinh transform of its targets ("none": raw prices)
    forest_target: str = "none"  # same for the extra-trees forest (asinh measured worse on DE)


@dataclass
class BacktestResult:
    dates: np.ndarray
    actual: np.ndarray  # [n_test, slots]
    forecasts: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [n_test, slots]
    quantiles: np.ndarray | None = None  # [n_test, slots, q] of the DNN
    seconds: dict[str, float] = field(default_factory=dict)
    served_quantiles: np.ndarray | None = None  # the served band (the DNN's re-centred on the ensemble)


def _origins(start: int, stop: int, every: int) -> list[tuple[int, int]]:
    """Blocks [t, t+every) of test days that share one trained model."""
    return [(t, min(t + every, stop)) for t in range(start, stop, every)]


def run_backtest(data: design.DayData, cfg: BacktestConfig) -> BacktestResult:
    """Replay the test period with a rolling origin; pure computation (no file I/O)."""
    unknown = set(cfg.models) - set(MODELS)
    if unknown:
        raise BacktestError(f"unknown models {sorted(unknown)}; choose from {', '.join(MODELS)}")
    if cfg.test_days <= 7:
        raise BacktestError(
            "--test-days must exceed 7: rMAE compares against the weekly naive forecast, "
            "which epftoolbox defines from the second test week on"
        )
    if cfg.retrain_every < 1:
        raise BacktestError("--retrain-every must be >= 1")
    start = data.n_days - cfg.test_days
    min_history = design.MAX_LAG + 28
    if cfg.test_days < 1 or start < min_history:
        raise BacktestError(
            f"{data.n_days} days in the file leave too little history before a {cfg.test_days}-day test "
            f"period (need at least {min_history} days before it)"
        )
    stop = data.n_days
    test_idx = np.arange(start, stop)
    res = BacktestResult(dates=data.dates[test_idx], actual=design.targets(data, test_idx))
    models = set(cfg.models)
    if "ensemble" in models and not models & set(ENSEMBLE_MEMBERS):
        models |= set(ENSEMBLE_MEMBERS)  # the ensemble alone: of every member

    # epftoolbox builds the naive forecast from the test series only: its first week is undefined.
    res.forecasts["naive"] = weekly_naive(res.actual)

    if "lear" in models:
        from tasks.forecasting.lear import LEAR

        def lear_every(window: int) -> int:
            if window < SHORT_WINDOW_DAYS and cfg.short_retrain_every is not None:
                return cfg.short_retrain_every
            return cfg.retrain_every

        _window_family(
            res,
            "lear",
            cfg.lear_windows,
            lambda w: _rolling(
                data,
                start,
                stop,
                every=lear_every(w),
                window=w,
                label=f"LEAR {w}",
                fit=lambda x, y: LEAR(calibration_window_days=w, penalty=cfg.lear_penalty).fit(x, y),
            ),
        )

    if "dnn" in models:
        t0 = time.perf_counter()
        every = cfg.dnn_retrain_every or cfg.retrain_every
        qs = [
            _rolling_dnn(data, start, stop, every=every, cfg=cfg, seed=cfg.seed + k)
            for k in range(max(1, cfg.dnn_seeds))
        ]
        q = combine(qs, "mean")  # the mean of sorted quantile vectors stays sorted
        res.quantiles = q
        res.forecasts["dnn"] = q[:, :, cfg.quantiles.index(0.5)] if 0.5 in cfg.quantiles else q.mean(axis=2)
        res.seconds["dnn"] = time.perf_counter() - t0

    if models & {"gbm", "forest"}:
        from tasks.forecasting.gbm import GBM, ExtraTrees

        trees = {
            "gbm": (GBM, cfg.gbm_windows, "GBM", cfg.gbm_target),
            "forest": (ExtraTrees, cfg.forest_windows, "extra-trees", cfg.forest_target),
        }
        for name, (model_cls, windows, label, target) in trees.items():
            if name in models:
                _window_family(
                    res,
                    name,
                    windows,
                    _rolling_trees(
                        data, start, stop, cfg, model_cls=model_cls, label=label, target_transform=target
                    ),
                )

    if "ensemble" in models:
        res.forecasts["ensemble"] = ensemble_of(res.forecasts, cfg.ensemble_how)
    for name in ENSEMBLE_MEMBERS:
        if name not in cfg.models:
            res.forecasts.pop(name, None)
    return res


def ensemble_of(forecasts: dict[str, np.ndarray], how: str) -> np.ndarray:
    """The ensemble: LEAR, DNN, GBM and extra-trees forecasts combined with equal weight (those present)."""
    return combine([forecasts[name] for name in ENSEMBLE_MEMBERS if name in forecasts], how)


def _window_family(
    res: BacktestResult, name: str, windows: Sequence[int], forecast: Callable[[int], np.ndarray]
) -> None:
    """``<name>_<W>`` for each training window and ``<name>`` = their mean, timed as ``name``."""
    t0 = time.perf_counter()
    members = []
    for window in windows:
        members.append(forecast(window))
        res.forecasts[f"{name}_{window}"] = members[-1]
    res.forecasts[name] = combine(members, "mean")
    res.seconds[name] = time.perf_counter() - t0


def _rolling_trees(
    data: design.DayData,
    start: int,
    stop: int,
    cfg: BacktestConfig,
    *,
    model_cls: type[Any],
    label: str,
    target_transform: str,
) -> Callable[[int], np.ndarray]:
    """``window -> forecasts`` of a tree model (GBM, extra-trees) re-fitted every ``retrain_every`` days."""

    def forecast(window: int) -> np.ndarray:
        return _rolling(
            data,
            start,
            stop,
            every=cfg.retrain_every,
            window=window,
            label=f"{label} {window}",
            fit=lambda x, y: model_cls(
                calibration_window_days=window,
                seed=cfg.seed,
                residual_load=cfg.residual_load,
                intraday_profile=cfg.intraday_profile,
                target_transform=target_transform,
                exog_names=data.exog_names,
            ).fit(x, y),
        )

    return forecast


def _rolling(
    data: design.DayData,
    start: int,
    stop: int,
    *,
    every: int,
    window: int,
    label: str,
    fit: Callable[[np.ndarray, np.ndarray], Any],
) -> np.ndarray:
    """Point forecasts of a model re-fitted (``fit(X, Y)`` returns it) every ``every`` days."""
    from threadpoolctl import threadpool_limits

    out = np.full((stop - start, data.slots), np.nan)
    t_label = time.perf_counter()
    for k, (t, t_end) in enumerate(_origins(start, stop, every)):
        train = np.arange(max(design.MAX_LAG, t - window), t)
        # Small matrices: multi-threaded BLAS only adds overhead (10x slower on a busy 2-core box).
        with threadpool_limits(limits=1, user_api="blas"):
            model = fit(design.build_design(data, train), design.targets(data, train))
        block = np.arange(t, t_end)
        out[block - start] = model.predict(design.build_design(data, block))
        if k % max(1, 56 // every) == 0:
            log.info(
                "%s: origin %s (%d/%d days) %.0f s",
                label,
                data.dates[t],
                t - start,
                stop - start,
                time.perf_counter() - t_label,
            )
    return out


def _rolling_dnn(
    data: design.DayData, start: int, stop: int, *, every: int, cfg: BacktestConfig, seed: int
) -> np.ndarray:
    from tasks.forecasting.dnn import QuantileDNN

    out = np.full((stop - start, data.slots, len(cfg.quantiles)), np.nan)
    t_label = time.perf_counter()
    for t, t_end in _origins(start, stop, every):
        train = np.arange(max(design.MAX_LAG, t - cfg.dnn_train_days), t)
        model = QuantileDNN(
            quantiles=cfg.quantiles,
            hidden=cfg.dnn_hidden,
            seed=seed,
            epochs=cfg.dnn_epochs,
            patience=cfg.dnn_patience,
            shape_weight=cfg.dnn_shape_weight,
        ).fit(design.build_design(data, train), design.targets(data, train))
        # Between full re-trainings, optionally fine-tune on the most recent days.
        for u, u_end in _origins(t, t_end, cfg.dnn_finetune_every or (t_end - t)):
            if u > t:
                recent = np.arange(max(design.MAX_LAG, u - cfg.dnn_finetune_days), u)
                model.fine_tune(
                    design.build_design(data, recent),
                    design.targets(data, recent),
                    epochs=cfg.dnn_finetune_epochs,
                )
            block = np.arange(u, u_end)
            out[block - start] = model.predict(design.build_design(data, block))
        log.info(
            "DNN seed %d: origin %s (%d/%d days, %d epochs) %.0f s",
            seed,
            data.dates[t],
            t - start,
            stop - start,
            len(model.history_.get("loss", [])),
            time.perf_counter() - t_label,
        )
    return out


def _read_run(run: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """metrics.json and the forecasts.csv columns (as [n_test, slots] matrices) of one earlier run."""
    import json

    import pandas as pd

    meta_path, fc_path = run / "metrics.json", run / "forecasts.csv"
    if not meta_path.is_file() or not fc_path.is_file():
        raise BacktestError(
            f"--merge: {run} lacks metrics.json or forecasts.csv (the --out of a backtest run)"
        )
    meta = json.loads(meta_path.read_text())
    frame = pd.read_csv(fc_path)
    days = list(dict.fromkeys(frame["date"].astype(str)))
    slots = len(frame) // len(days)
    skip = {"date", "hour", "minute"}
    cols = {
        c: frame[c].to_numpy(dtype=float).reshape(len(days), slots) for c in frame.columns if c not in skip
    }
    return meta, cols, days


def merge_runs(data: design.DayData, runs: Sequence[Path], cfg: BacktestConfig) -> BacktestResult:
    """Rebuild the LEAR/DNN/GBM/forest/ensemble forecasts from shards run as separate processes.

    A run on a 2-core box is bound by single-threaded LEAR fits and by DNN fits that
    use both cores poorly, so members (DNN seeds, LEAR windows on another cadence) can
    run side by side and be merged here. LEAR members are the ``lear_<days>`` columns
    (a later run overrides an earlier one's window), GBM and extra-trees members the
    ``gbm_<days>`` and ``forest_<days>`` columns; each DNN member is a run's
    q-columns, weighted by its ``dnn_seeds`` so the result equals ``--dnn-seeds`` in
    one process up to the CSV's 4-decimal rounding. Seeds must not overlap.
    """
    start = data.n_days - cfg.test_days
    dates = [str(d) for d in data.dates[start:]]
    res = BacktestResult(dates=data.dates[start:], actual=design.targets(data, np.arange(start, data.n_days)))
    res.forecasts["naive"] = weekly_naive(res.actual)
    # Members with one column per training window (the DNN's are its seeds' quantiles).
    windowed: dict[str, dict[str, np.ndarray]] = {name: {} for name in ENSEMBLE_MEMBERS if name != "dnn"}
    dnn_q: list[np.ndarray] = []
    dnn_w: list[float] = []
    seeds: set[int] = set()
    qnames = [f"q{round(100 * q)}" for q in cfg.quantiles]
    for run in runs:
        meta, cols, days = _read_run(run)
        if meta.get("merged_from"):
            raise BacktestError(f"--merge: {run} is itself a merge; list the runs it was merged from")
        if days != dates:
            raise BacktestError(f"--merge: {run} covers {days[0]} … {days[-1]}, not {dates[0]} … {dates[-1]}")
        if not np.allclose(cols["actual"], res.actual, atol=1e-3, equal_nan=True):
            raise BacktestError(f"--merge: {run} was run on another dataset than {meta.get('dataset')}")
        for family, family_cols in windowed.items():
            family_cols.update({name: fc for name, fc in cols.items() if name.startswith(f"{family}_")})
        for name in (*ENSEMBLE_MEMBERS, "wall", "cpu"):
            key = name if name in ENSEMBLE_MEMBERS else f"shards_{name}"
            res.seconds[key] = res.seconds.get(key, 0.0) + float(meta["seconds"].get(name, 0.0))
        if all(q in cols for q in qnames):
            conf = meta["config"]
            members = set(range(conf["seed"], conf["seed"] + max(1, conf["dnn_seeds"])))
            if seeds & members:
                raise BacktestError(f"--merge: DNN seeds {sorted(seeds & members)} appear in two runs")
            seeds |= members
            dnn_q.append(np.stack([cols[q] for q in qnames], axis=2))
            dnn_w.append(float(len(members)))
    for family, family_cols in windowed.items():
        if family_cols:
            for name in sorted(family_cols, key=lambda n: int(n.split("_")[1])):
                res.forecasts[name] = family_cols[name]
            res.forecasts[family] = combine(list(family_cols.values()), "mean")
    if dnn_q:
        res.quantiles = combine(dnn_q, "mean", weights=dnn_w)
        q = res.quantiles
        res.forecasts["dnn"] = q[:, :, cfg.quantiles.index(0.5)] if 0.5 in cfg.quantiles else q.mean(axis=2)
    if sum(name in res.forecasts for name in ENSEMBLE_MEMBERS) >= 2:
        res.forecasts["ensemble"] = ensemble_of(res.forecasts, cfg.ensemble_how)
    return res


def score(res: BacktestResult, quantiles: Sequence[float]) -> dict[str, Any]:
    """epftoolbox point metrics per model, plus pinball loss and q10–q90 coverage of the DNN."""
    naive = res.forecasts["naive"]
    out: dict[str, Any] = {name: point_metrics(res.actual, fc, naive) for name, fc in res.forecasts.items()}
    if res.quantiles is not None:
        qs = list(quantiles)
        prob: dict[str, float] = {"pinball": pinball_loss(res.actual, res.quantiles, qs)}
        if 0.1 in qs and 0.9 in qs:
            prob["coverage_q10_q90"] = interval_coverage(
                res.actual, res.quantiles[:, :, qs.index(0.1)], res.quantiles[:, :, qs.index(0.9)]
            )
        out["dnn_quantiles"] = prob
    if res.served_quantiles is not None:
        qs = list(quantiles)
        out["served_quantiles"] = {
            "pinball": pinball_loss(res.actual, res.served_quantiles, qs),
            "coverage_q10_q90": interval_coverage(
                res.actual,
                res.served_quantiles[:, :, qs.index(0.1)],
                res.served_quantiles[:, :, qs.index(0.9)],
            ),
        }
    return out


def forecasts_csv(res: BacktestResult, quantiles: Sequence[float]) -> str:
    """``date,hour,actual,<model>...,q10,q50,q90`` — one row per test slot.

    The q-columns are the served band when there is one (the default run), else the DNN's.
    """
    slots = res.actual.shape[1]
    names = list(res.forecasts)
    band = res.served_quantiles if res.served_quantiles is not None else res.quantiles
    qnames = [f"q{round(100 * q)}" for q in quantiles] if band is not None else []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["date", "hour"] + (["minute"] if slots != 24 else []) + ["actual", *names, *qnames]
    writer.writerow(header)
    for d, day in enumerate(res.dates):
        for s in range(slots):
            minutes = s * 1440 // slots
            row: list[Any] = [str(day), minutes // 60]
            if slots != 24:
                row.append(minutes % 60)
            row.append(_fmt(res.actual[d, s]))
            row.extend(_fmt(res.forecasts[n][d, s]) for n in names)
            if band is not None:
                row.extend(_fmt(v) for v in band[d, s])
            writer.writerow(row)
    return buf.getvalue()


def _fmt(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.4f}"


def format_table(metrics: dict[str, Any], market: str, published: dict[str, dict[str, float]]) -> str:
    lines = [f"{'model':<24}{'MAE':>8}{'rMAE':>8}{'sMAPE%':>9}{'RMSE':>8}"]
    for name, m in metrics.items():
        if name.endswith("_quantiles"):
            continue
        lines.append(f"{name:<24}{m['mae']:>8.3f}{m['rmae']:>8.3f}{m['smape']:>9.2f}{m['rmse']:>8.3f}")
    if published:
        lines.append(f"-- epftoolbox {market}, the same test period")
        for name, m in published.items():
            lines.append(f"{name:<24}{m['mae']:>8.2f}{m['rmae']:>8.3f}{m['smape']:>9.2f}{m['rmse']:>8.2f}")
    for key, label in (("dnn_quantiles", "DNN"), ("served_quantiles", "served band")):
        if key in metrics:
            q = metrics[key]
            cov = q.get("coverage_q10_q90")
            lines.append(
                f"{label} pinball {q['pinball']:.3f}"
                + (f", q10–q90 coverage {cov:.3f} (nominal 0.80)" if cov is not None else "")
            )
    return "\n".join(lines)


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument(
        "--dataset", type=Path, required=True, help="epftoolbox-layout CSV (timestamp, price, exogenous...)."
    )
    p.add_argument(
        "--test-days", type=int, default=728, help="Length of the test period at the end of the file."
    )
    from research.ensemble_backtest import add_market_options, default_jobs

    add_market_options(p)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON overriding mlruns_config/models.json keys (default run).",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help="Worker processes of the default run's member tasks (default: the CPU count).",
    )
    p.add_argument(
        "--periods",
        type=int,
        default=None,
        help="Periods the test origins split into, one task per member and period (default: --jobs).",
    )
    p.add_argument(
        "--window-days",
        type=int,
        default=None,
        help="Default run: training window in days (default: the pipeline's train_window_days).",
    )
    p.add_argument(
        "--retrain-every",
        type=int,
        default=None,
        help="Re-train every N days (default: the pipeline's train_every_days, 7; "
        "with --models: long LEAR windows, DNN).",
    )
    p.add_argument(
        "--short-retrain-every",
        type=int,
        default=None,
        help=f"Cadence of LEAR windows < {SHORT_WINDOW_DAYS} days (default: --retrain-every).",
    )
    p.add_argument(
        "--dnn-retrain-every",
        type=int,
        default=28,
        help="Cadence of the DNN's full re-training (default 28: keeps a DE backtest under 30 min on 2 cores).",
    )
    p.add_argument(
        "--models",
        type=_csv_list,
        default=None,
        help="Experiment instead of the served ensemble: a comma list of naive,lear,dnn,gbm,forest,ensemble "
        f"(e.g. {','.join(DEFAULT_MODELS)}), with the member options below. The ensemble averages the members "
        "listed (all of them when it is listed alone).",
    )
    p.add_argument(
        "--lear-windows",
        type=lambda s: tuple(int(x) for x in _csv_list(s)),
        default=(56, 84, 1092, 1456),
        help="LEAR calibration windows in days; the LEAR forecast is their mean.",
    )
    p.add_argument(
        "--dnn-finetune-every",
        type=int,
        default=None,
        help="Between full DNN re-trainings, fine-tune every N days on the last --dnn-finetune-days days.",
    )
    p.add_argument("--dnn-finetune-days", type=int, default=91, help="Recent days a fine-tuning step sees.")
    p.add_argument("--dnn-finetune-epochs", type=int, default=3, help="Epochs of each fine-tuning step.")
    p.add_argument(
        "--lear-penalty",
        choices=("published", "plain"),
        default="published",
        help="How LassoLarsIC picks each LEAR penalty: 'published' as scikit-learn < 1.1 did "
        "(normalised inputs, the epftoolbox figures), 'plain' on the scaled inputs (stronger penalty).",
    )
    p.add_argument("--dnn-train-days", type=int, default=1456, help="DNN training window in days.")
    p.add_argument(
        "--gbm-windows",
        type=lambda s: tuple(int(x) for x in _csv_list(s)),
        default=(728, 1092, 1456),
        help="GBM training windows in days (each re-trained every --retrain-every); the GBM forecast is their mean.",
    )
    p.add_argument(
        "--forest-windows",
        type=lambda s: tuple(int(x) for x in _csv_list(s)),
        default=(728, 1092, 1456),
        help="Extra-trees training windows in days (re-trained every --retrain-every); 'forest' is their mean.",
    )
    p.add_argument("--dnn-seeds", type=int, default=1, help="DNN members (seeds) averaged.")
    p.add_argument("--dnn-hidden", type=lambda s: tuple(int(x) for x in _csv_list(s)), default=(256, 128))
    p.add_argument("--dnn-epochs", type=int, default=300)
    p.add_argument("--dnn-patience", type=int, default=20)
    p.add_argument(
        "--dnn-shape-weight",
        type=float,
        default=0.0,
        help="Weight of a loss on the median's intraday profile (what storage dispatch uses); 0 = off.",
    )
    p.add_argument(
        "--ensemble-how",
        choices=("mean", "median"),
        default="mean",
        help="How the ensemble combines the LEAR, DNN, GBM and extra-trees forecasts.",
    )
    p.add_argument(
        "--residual-load",
        choices=("auto", "none"),
        default="auto",
        help="Tree members (gbm, forest): add load minus renewables as a series where the file has a load "
        "and a wind/solar forecast (DE; BE has none); 'none' reproduces the figures before 2026-11-30.",
    )
    p.add_argument(
        "--intraday-profile",
        choices=("on", "off"),
        default="on",
        help="Tree members (gbm, forest): take the forecast's shape from a second fit on the daily profile "
        "(price minus the day's mean), its level from the first; 'off' fits level and shape in one model. "
        "Doubles the trees' fit time.",
    )
    p.add_argument(
        "--gbm-target",
        choices=("asinh", "none"),
        default="asinh",
        help="GBM member: fit the median-asinh transform of its targets, so that scarcity spikes do not take "
        "the boosting's splits; 'none' fits the raw prices.",
    )
    p.add_argument(
        "--forest-target",
        choices=("asinh", "none"),
        default="none",
        help="Extra-trees member: the same choice (default raw prices: asinh cost DE capture).",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--neighbour",
        default=None,
        metavar="NAME=PATH",
        help="A coupled market's epftoolbox-layout file (e.g. DE=../shared/data/epf/DE.csv for BE): its "
        "exogenous day-ahead forecasts join every model's inputs as 'NAME: series'. Only the days both files "
        "cover are kept (training windows start no earlier); the file must reach the market's last day.",
    )
    p.add_argument(
        "--merge",
        type=lambda s: tuple(Path(x) for x in _csv_list(s)),
        default=(),
        help="Comma list of earlier --out dirs: merge their LEAR windows and DNN seeds instead of training.",
    )
    p.add_argument("--out", type=Path, default=None, help="Write metrics.json and forecasts.csv here.")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(args: argparse.Namespace) -> dict[str, Any]:
    from research.markets import read_hourly, resolve_market

    t0, cpu0 = time.perf_counter(), time.process_time()
    market = resolve_market(args.dataset, args.market, args.timezone, args.holidays, args.last_day)
    data = read_hourly(args.dataset, market.last_day)
    if args.neighbour:
        name, sep, path = args.neighbour.partition("=")
        if not sep or not name or not path:
            raise BacktestError(f"--neighbour expects NAME=PATH (e.g. DE=DE.csv), got {args.neighbour!r}")
        data = design.with_neighbour(data, read_hourly(Path(path)), name)
    if market.holidays is not None:
        data = design.with_holidays(data, market.holidays)
    if args.models is None and not args.merge:
        res, extra = run_served(data, args)
        quantiles: Sequence[float] = QUANTILES_SERVED
    else:
        cfg = experiment_config(args, market.holidays)  # --models, or the shards' members (--merge)
        res = merge_runs(data, args.merge, cfg) if args.merge else run_backtest(data, cfg)
        extra = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}}
        extra["merged_from"] = [str(r) for r in args.merge]
        quantiles = cfg.quantiles
    return report(args, market, res, quantiles, extra, t0=t0, cpu0=cpu0)


QUANTILES_SERVED = (0.1, 0.5, 0.9)


def run_served(data: design.DayData, args: argparse.Namespace) -> tuple[BacktestResult, dict[str, Any]]:
    """The served ensemble (research.ensemble_backtest): plan, search, member tasks in a pool, combine."""
    from research import ensemble_backtest as eb
    from tasks.forecasting.definition import from_config
    from tasks.registry import load_config

    config = load_config(args.config)
    defn = from_config(config)
    jobs = max(1, int(args.jobs))
    plan = eb.make_plan(
        data,
        defn,
        test_days=args.test_days,
        retrain_every=args.retrain_every,
        window_days=args.window_days,
        periods=args.periods or jobs,
        validation_fraction=float(config["validation_fraction"]),
    )
    t_search = time.perf_counter()
    search = eb.run_search(data, defn, plan)
    log.info(
        "DNN search: %s in %.0f s", search["best"] or "configured values", time.perf_counter() - t_search
    )
    forecasts, seconds = eb.run_local(data, defn, plan, search["best"], jobs)
    return served_result(
        data, defn, plan, forecasts=forecasts, search=search, seconds={**seconds, "jobs": jobs}
    )


def served_result(
    data: design.DayData,
    defn: EnsembleDefinition,
    plan: Plan,
    *,
    forecasts: dict[str, np.ndarray],
    search: dict[str, Any],
    seconds: dict[str, float],
) -> tuple[BacktestResult, dict[str, Any]]:
    """The combine step's result as a backtest result, and what metrics.json records of the procedure."""
    from research import ensemble_backtest as eb

    combined = eb.combine(data, defn, plan, forecasts)
    test_idx = np.arange(plan.start, plan.stop)
    res = BacktestResult(dates=data.dates[test_idx], actual=design.targets(data, test_idx))
    res.forecasts["naive"] = weekly_naive(res.actual)
    res.forecasts.update(combined.points)
    res.quantiles = combined.dnn_quantiles
    res.served_quantiles = combined.quantiles
    res.seconds = {**seconds, "search": float(search["seconds"])}
    extra = {
        "definition": defn.describe(),
        "plan": dict(vars(plan)),
        "search": search,
        "weights": combined.weights,
        "fallback_origins": sum(1 for w in combined.weights if w["fallback"]),
    }
    return res, extra


def experiment_config(args: argparse.Namespace, holidays: str | None) -> BacktestConfig:
    """The experiment members' options (``--models``)."""
    return BacktestConfig(
        test_days=args.test_days,
        retrain_every=args.retrain_every or 7,
        short_retrain_every=args.short_retrain_every,
        dnn_retrain_every=args.dnn_retrain_every,
        models=tuple(args.models or DEFAULT_MODELS),
        lear_windows=tuple(args.lear_windows),
        lear_penalty=args.lear_penalty,
        dnn_finetune_every=args.dnn_finetune_every,
        dnn_finetune_days=args.dnn_finetune_days,
        dnn_finetune_epochs=args.dnn_finetune_epochs,
        gbm_windows=tuple(args.gbm_windows),
        forest_windows=tuple(args.forest_windows),
        dnn_train_days=args.dnn_train_days,
        dnn_seeds=args.dnn_seeds,
        dnn_hidden=tuple(args.dnn_hidden),
        dnn_epochs=args.dnn_epochs,
        dnn_patience=args.dnn_patience,
        dnn_shape_weight=args.dnn_shape_weight,
        ensemble_how=args.ensemble_how,
        seed=args.seed,
        holidays=holidays,
        neighbour=args.neighbour,
        residual_load=args.residual_load == "auto",
        intraday_profile=args.intraday_profile == "on",
        gbm_target=args.gbm_target,
        forest_target=args.forest_target,
    )


def report(
    args: argparse.Namespace,
    market: Market,
    res: BacktestResult,
    quantiles: Sequence[float],
    extra: dict[str, Any],
    *,
    t0: float,
    cpu0: float,
) -> dict[str, Any]:
    """Score, print, and write metrics.json and forecasts.csv (``--out``); the stage's result."""
    from research.markets import published_for
    from tasks.storage import write_bytes_atomic, write_json_atomic

    metrics = score(res, quantiles)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    first, last = str(res.dates[0]), str(res.dates[-1])
    published = published_for(market.name, first, last)
    summary: dict[str, Any] = {
        "dataset": str(args.dataset),
        **market.to_json(),
        "holiday_calendar": market.holiday_name,
        "test_start": first,
        "test_end": last,
        "test_days": len(res.dates),
        "slots": int(res.actual.shape[1]),
        **extra,
        "metrics": metrics,
        "published": published,
        # CPU of this process; the member tasks' own seconds are under their names.
        "seconds": {**res.seconds, "wall": wall, "cpu": cpu},
    }
    print(format_table(metrics, market.name, published))
    print(
        f"market {market.name} (holidays: {market.holiday_name or 'none'}), "
        f"test period {first} … {last} ({len(res.dates)} days), wall time {wall:.0f} s, CPU time {cpu:.0f} s"
    )
    result: dict[str, Any] = {
        "test_start": first,
        "test_end": last,
        "wall_s": round(wall, 1),
        "metrics": {k: v for k, v in metrics.items() if not k.endswith("_quantiles")},
    }
    if args.out is not None:
        write_json_atomic(args.out / "metrics.json", summary)
        write_bytes_atomic(args.out / "forecasts.csv", forecasts_csv(res, quantiles).encode())
        result["metrics_path"] = str(args.out / "metrics.json")
        result["forecasts_path"] = str(args.out / "forecasts.csv")
    return result


def cli(argv: Sequence[str] | None = None) -> int:
    return run_stage(main, build_parser(), argv)


if __name__ == "__main__":
    from tasks.cli import exit_stage

    exit_stage(cli())
