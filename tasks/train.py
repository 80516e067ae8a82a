"""Train the day-ahead price models of one zone and log them to MLflow.

``python -m tasks.train --delivery-date D --zone Z [--if-due] [--config JSON]``

Window: the ``settings.train_window_days`` days ending D-1 (every target is
a published price; nothing of D is read), from the zone's first landed
prices when history is shorter. Days with a gate marker, missing
inputs or missing prices are left out and listed on the run. The last
``evaluation_days`` usable days are held out as the evaluation window; the
tail of the rest is the early-stopping validation split. The held-out days
are never trained on, so a later challenger's evaluation window (which ends
later) contains no day the current champion was fitted on either.

Models: the quantile DNN and the point members configured in models.json
(LEAR, a GBM of gradient-boosted trees, an extra-trees forest), each fitted on
the same days, and the weekly naive forecast; each is logged to its family's
experiment with MAE, rMAE (against the weekly naive), sMAPE, RMSE and, for
quantile forecasts, pinball loss and 80 %-interval coverage. The registered
candidate is the ensemble of the configured members (``ensemble.members``):
DNN quantiles re-centred on the mean of the DNN median and the point members
(:mod:`tasks.forecasting.price_ensemble`); its run in the DNN family's
experiment carries the ensemble's figures and each member's (``dnn_*``,
``lear_*``, ``gbm_*``, ``forest_*``). With no members it is the DNN alone.

Load: a quantile DNN of the zone's actual load on the same features (so it
post-processes the TSO's day-ahead load forecast with calendar, weather and
lags), trained on days whose actuals are complete at gate closure (≤ D-2),
scored against the TSO forecast on the same evaluation window and logged to the
load family's experiment. It travels inside the registered price model; the
forecast uses its median as the volume forecast only where it beat the TSO
forecast on that window (docs/models.md).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.cli import base_parser, day_arg, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, MissingInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import pandas as pd

    from tasks.registry import Design

log = logging.getLogger(__name__)


@dataclass
class WindowData:
    """Usable days of a training window as model matrices."""

    days: list[date]
    frames: list[pd.DataFrame]
    y: np.ndarray  # [n_days, slots]
    naive: np.ndarray  # [n_days, slots] weekly naive (price of D-7 at the same clock position)
    skipped: dict[str, str]
    load: np.ndarray  # [n_days, slots] actual load (NaN rows: no complete actuals for the day)
    load_tso: np.ndarray  # [n_days, slots] TSO day-ahead load forecast (the load baseline)


def load_window(
    zone: str, first: date, last: date, settings: Settings, *, build_missing: bool = True
) -> WindowData:
    """Feature frames, targets and naive forecasts of the usable days in ``first..last``."""
    import numpy as np

    from tasks.features import Inputs, backfill, n_slots, read_features, slot_values, target_slots
    from tasks.storage import Layout
    from tasks.timeutil import days as day_range

    layout = Layout(settings.data_root)
    skipped: dict[str, str] = {}
    if build_missing:
        _, skipped = backfill(zone, first, last, settings)
    inputs = Inputs(layout, zone)
    slots = n_slots(settings.mtu_minutes)
    kept: list[date] = []
    frames, ys, naive, loads, tso = [], [], [], [], []
    for day in day_range(first, last):
        key = day.isoformat()
        if key in skipped:
            continue
        if layout.gate_file(zone, day).exists():
            skipped[key] = "GateClosedError: day failed a gate"
            continue
        try:
            frame = read_features(zone, day, settings)
            prices = inputs.get("day_ahead_prices", day)
            assert prices is not None
            y = target_slots(prices, day, settings.market_timezone, settings.mtu_minutes)
        except MissingInputError as exc:
            skipped[key] = f"MissingInputError: {exc}"
            continue
        kept.append(day)
        frames.append(frame)
        ys.append(y)
        naive.append(slot_values(frame, ["price_lag7"], slots)[:, 0])
        tso.append(slot_values(frame, ["load_mw"], slots)[:, 0])
        actual = inputs.get("load_actual", day, required=False)
        try:
            if actual is None:
                raise MissingInputError("no actual load")
            loads.append(
                target_slots(
                    actual,
                    day,
                    settings.market_timezone,
                    settings.mtu_minutes,
                    column="load_mw",
                    dataset="load_actual",
                )
            )
        except MissingInputError:
            loads.append(np.full(slots, np.nan))
    return WindowData(
        days=kept,
        frames=frames,
        y=np.array(ys).reshape(len(kept), slots),
        naive=np.array(naive).reshape(len(kept), slots),
        skipped=dict(sorted(skipped.items())),
        load=np.array(loads).reshape(len(kept), slots),
        load_tso=np.array(tso).reshape(len(kept), slots),
    )


def choose_design(frames: list[pd.DataFrame], settings: Settings, neighbours: Sequence[str] = ()) -> Design:
    """Model inputs: every slot column that is present on the training days.

    Weather joins the design when at least 95 % of training days carry it; a
    day without it at serving time gets the training mean (logged in design).
    The ``neighbours``' forecasts (built into every feature file of the window,
    :func:`tasks.features.backfill`) follow the zone's own columns.
    """
    import pandas as pd

    from tasks.features import SLOT_COLUMNS, WEATHER_COLUMNS, n_slots, neighbour_columns
    from tasks.registry import Design

    stacked = pd.concat(frames, ignore_index=True)
    columns, fill = [], {}
    for column in SLOT_COLUMNS:
        if column in WEATHER_COLUMNS:
            present = sum(bool(f[column].notna().all()) for f in frames) / len(frames)
            if present < 0.95:
                continue
            fill[column] = float(stacked[column].mean())
        columns.append(column)
    from_neighbours = list(neighbour_columns(neighbours))
    return Design(
        columns=columns + from_neighbours,
        neighbour_columns=from_neighbours,
        slots=n_slots(settings.mtu_minutes),
        quantiles=[float(q) for q in settings.quantiles],
        fill=fill,
        price_floor=settings.price_floor_eur_mwh,
        price_cap=settings.price_cap_eur_mwh,
    )


def score(y: np.ndarray, q_pred: np.ndarray, naive: np.ndarray, quantiles: list[float]) -> dict[str, float]:
    """All figures of a quantile forecast ``[n, slots, q]`` against actuals ``[n, slots]``."""
    from tasks.forecasting import metrics

    median = q_pred[..., metrics.median_index(quantiles)]
    out = metrics.point_metrics(y, median, naive)
    out["pinball"] = metrics.pinball_loss(y, q_pred, quantiles)
    out["coverage_80"] = metrics.interval_coverage(y, q_pred[..., 0], q_pred[..., -1])
    return out


def score_point(y: np.ndarray, pred: np.ndarray, naive: np.ndarray) -> dict[str, float]:
    from tasks.forecasting import metrics

    return metrics.point_metrics(y, pred, naive)


def load_split(
    days: list[date], has_actual: list[bool], delivery_day: date, n_fit: int, validation_fraction: float
) -> tuple[list[int], list[int], list[int]]:
    """Train, validation and evaluation day indices of the load model.

    Only days with complete actuals that are at least two days before D: at
    gate closure on D-1 the actual load of D-1 is not complete yet, so a model
    trained on it could not be re-trained the same way in production. The
    evaluation days are the price model's evaluation window (indices ≥ ``n_fit``)
    so both models are judged on the same days.
    """
    last_known = delivery_day - timedelta(days=2)
    usable = [i for i, (d, ok) in enumerate(zip(days, has_actual, strict=True)) if ok and d <= last_known]
    fit = [i for i in usable if i < n_fit]
    evaluation = [i for i in usable if i >= n_fit]
    n_val = max(1, round(validation_fraction * len(fit))) if len(fit) > 1 else 0
    return fit[: len(fit) - n_val], fit[len(fit) - n_val :], evaluation


@dataclass
class LoadFit:
    """The load model of a training run (``dnn`` None when there was too little history)."""

    dnn: Any
    scores: dict[str, float]  # load DNN median and quantiles on the evaluation days
    tso_scores: dict[str, float]  # the TSO day-ahead forecast on the same days
    use_model: bool  # the model's median beat the TSO forecast (MAE) on the evaluation days
    train_days: list[str]
    evaluation_days: list[str]
    reason: str
    seconds: float = 0.0

    def meta(self) -> dict[str, Any]:
        return {
            "use_model": self.use_model,
            "eval_mae": self.scores.get("mae"),
            "tso_eval_mae": self.tso_scores.get("mae"),
            "evaluation_days": self.evaluation_days,
            "reason": self.reason,
        }


def fit_load_model(
    window: WindowData,
    x_all: np.ndarray,
    delivery_day: date,
    *,
    n_fit: int,
    quantiles: list[float],
    config: dict[str, Any],
) -> LoadFit:
    """Fit the load quantile DNN and score it against the TSO forecast (see module docstring)."""
    import numpy as np

    from tasks.forecasting.dnn import QuantileDNN

    t0 = time.perf_counter()
    params = {k: v for k, v in dict(config.get("load_dnn", {})).items() if k != "enabled"}
    has_actual = [bool(np.isfinite(row).all()) for row in window.load]
    tr, va, ev = load_split(
        window.days, has_actual, delivery_day, n_fit, float(config["validation_fraction"])
    )
    names = [window.days[i].isoformat() for i in ev]
    need = int(config["min_training_days"])
    if len(tr) < need or not va or not ev:
        reason = (
            f"too little load history: {len(tr)} training days with complete actuals ≤ D-2 "
            f"(need {need}), {len(ev)} evaluation days; the TSO forecast is the volume forecast"
        )
        return LoadFit(None, {}, {}, False, [], names, reason)
    dnn = QuantileDNN(quantiles=quantiles, seed=int(config["seed"]), **params)
    dnn.fit(x_all[tr], window.load[tr], x_all[va], window.load[va])
    q_eval = np.maximum.accumulate(np.clip(dnn.predict(x_all[ev]), 0.0, None), axis=-1)
    y_eval, tso_eval = window.load[ev], window.load_tso[ev]
    scores = score(y_eval, q_eval, tso_eval, quantiles)
    tso_scores = score_point(y_eval, tso_eval, tso_eval)
    use_model = scores["mae"] < tso_scores["mae"]
    reason = (
        f"load DNN MAE {scores['mae']:.1f} MW vs TSO forecast {tso_scores['mae']:.1f} MW on "
        f"{len(ev)} evaluation days: volume forecast = {'load DNN median' if use_model else 'TSO forecast'}"
    )
    return LoadFit(
        dnn,
        scores,
        tso_scores,
        use_model,
        [window.days[i].isoformat() for i in tr + va],
        names,
        reason,
        time.perf_counter() - t0,
    )


def training_window(day: date, window_days: int, start: date | None) -> tuple[date, date]:
    """First and last day of D's training window: ``window_days`` ending D-1, not before ``start``.

    A young deployment trains on what it has: days before its first landed
    prices are not listed as skipped days.
    """
    first, last = day - timedelta(days=window_days), day - timedelta(days=1)
    if start is not None and first < start <= last:
        first = start
    return first, last


def history_start(zone: str, settings: Settings) -> date | None:
    """The first day with landed day-ahead prices for ``zone`` (None: none landed)."""
    from tasks.datasets import PRICES
    from tasks.storage import Layout

    folder = Layout(settings.data_root).processed_dir(PRICES.name, zone)
    days = []
    for path in folder.glob("*.parquet"):
        try:
            days.append(date.fromisoformat(path.stem))
        except ValueError:
            continue  # not a day partition (e.g. a temp file)
    return min(days) if days else None


def point_models(config: dict[str, Any], design: Design, per_hour: int, seed: int) -> dict[str, Any]:
    """Unfitted point members configured in models.json, keyed by name (``fit(X, Y)``/``predict(X)``).

    A member (``lear``, ``gbm``, ``forest``) is fitted and logged to experiment
    ``price_<name>`` when models.json has a block for it, whether or not
    ``ensemble.members`` names it. ``per_hour`` slots are averaged into LEAR's
    hourly inputs when ``lear.hourly_inputs``. A member reads the neighbouring
    zones' columns of ``design`` only with ``"neighbour_series": true`` (the
    trees, where the backtest measured a gain); the others get a
    :class:`~tasks.forecasting.price_ensemble.ColumnSubset` of the zone's own.
    """
    from tasks.forecasting.gbm import GBM, ColumnLayout, ExtraTrees
    from tasks.forecasting.price_ensemble import ColumnSubset, DesignLEAR

    models: dict[str, Any] = {}
    for name in ("lear", "gbm", "forest"):
        if name not in config:
            continue
        member_config = dict(config[name])
        all_columns = bool(member_config.pop("neighbour_series", False)) or not design.neighbour_columns
        columns = tuple(design.columns if all_columns else design.own_columns)
        if name == "lear":
            factor = per_hour if member_config.pop("hourly_inputs", True) else 1
            model: Any = DesignLEAR(len(columns), design.slots, factor, member_config)
        else:
            tree = GBM if name == "gbm" else ExtraTrees
            model = tree(layout=ColumnLayout(columns, design.slots), seed=seed, **member_config)
        models[name] = model if all_columns else ColumnSubset(model, design.own_index)
    return models


def _ensemble_members(config: dict[str, Any], fitted: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The fitted point members ``ensemble.members`` names (in that order) and whether the DNN is one."""
    names = list(dict(config.get("ensemble", {})).get("members", ["dnn"]))
    unknown = [n for n in names if n != "dnn" and n not in fitted]
    if unknown or not names:
        raise ConfigError(
            f"ensemble.members {names}: name one or more of {['dnn', *fitted]} (unknown: {unknown})"
        )
    return {n: fitted[n] for n in names if n != "dnn"}, "dnn" in names


def _neighbour_change(input_columns: str, neighbours: Sequence[str]) -> str:
    """Why a champion's neighbour inputs no longer match ``neighbour_zones`` ('' when they do).

    A champion reading a neighbour that is no longer configured cannot forecast
    (its columns are not built any more), and a newly configured one should be
    used from the next run, not a week later.
    """
    from tasks.features import neighbour_columns, neighbour_of

    trained = {c: zone for c in input_columns.split(",") if (zone := neighbour_of(c))}
    if sorted(trained) == sorted(neighbour_columns(neighbours)):
        return ""
    before = sorted(set(trained.values())) or ["none"]
    return (
        f"was trained with the forecasts of neighbour zones {before}, "
        f"neighbour_zones now gives {list(neighbours) or ['none']}"
    )


def is_due(settings: Settings, zone: str, day: date, config: dict[str, Any]) -> tuple[bool, str]:
    """Whether a new model is needed: no champion, or one trained ≥ train_every_days before D."""
    from tasks.registry import champion_version, client

    version = champion_version(settings, zone, config)
    if version is None:
        return True, "no champion yet"
    run = client(settings).get_run(str(version.run_id))
    changed = _neighbour_change(run.data.params.get("input_columns", ""), settings.neighbours_of(zone))
    if changed:
        return True, f"champion v{version.version} {changed}"
    trained_for = run.data.tags.get("delivery_date")
    if not trained_for:
        return True, f"champion v{version.version} has no delivery_date tag"
    age = (day - date.fromisoformat(trained_for)).days
    if 0 <= age < settings.train_every_days:
        return (
            False,
            f"champion v{version.version} trained for {trained_for} ({age} d < {settings.train_every_days} d)",
        )
    return True, f"champion v{version.version} trained for {trained_for} ({age} d old)"


def _plots(
    days: list[date], y: np.ndarray, q_pred: np.ndarray, naive: np.ndarray, *, slots: int, median: int
) -> dict[str, Any]:
    """Forecast vs actual (last week of the evaluation window) and MAE by local hour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figures: dict[str, Any] = {}
    last = min(7, len(days))
    fig, ax = plt.subplots(figsize=(11, 4))
    x = np.arange(last * slots)
    ax.fill_between(
        x, q_pred[-last:, :, 0].ravel(), q_pred[-last:, :, -1].ravel(), alpha=0.3, label="q10–q90"
    )
    ax.plot(x, q_pred[-last:, :, median].ravel(), label="median")
    ax.plot(x, y[-last:].ravel(), color="black", linewidth=1, label="actual")
    ax.plot(x, naive[-last:].ravel(), color="grey", linestyle=":", linewidth=1, label="weekly naive")
    ax.set_title(f"Forecast vs actual, {days[-last].isoformat()} … {days[-1].isoformat()}")
    ax.set_xlabel("slot (local clock)")
    ax.set_ylabel("EUR/MWh")
    ax.legend(loc="upper left")
    figures["forecast_vs_actual.png"] = fig
    fig2, ax2 = plt.subplots(figsize=(8, 3.5))
    per_slot = np.abs(y - q_pred[..., median]).mean(axis=0)
    per_hour = per_slot.reshape(24, slots // 24).mean(axis=1)
    naive_hour = np.abs(y - naive).mean(axis=0).reshape(24, slots // 24).mean(axis=1)
    ax2.bar(np.arange(24) - 0.2, per_hour, width=0.4, label="model median")
    ax2.bar(np.arange(24) + 0.2, naive_hour, width=0.4, label="weekly naive")
    ax2.set_title("MAE by local hour (evaluation window)")
    ax2.set_xlabel("hour")
    ax2.set_ylabel("EUR/MWh")
    ax2.legend()
    figures["error_by_hour.png"] = fig2
    return figures


def train(
    zone: str,
    day: date,
    settings: Settings | None = None,
    *,
    config_path: Path | None = None,
    if_due: bool = False,
) -> dict[str, Any]:
    """Train, evaluate on the hold-out and log the models of one zone; see the module docstring."""
    import mlflow
    import numpy as np
    import pandas as pd

    from tasks.forecasting import metrics
    from tasks.forecasting.dnn import QuantileDNN
    from tasks.registry import (
        MODEL_ARTIFACT,
        PIP_REQUIREMENTS,
        WINDOW_ARTIFACT,
        DayAheadPriceModel,
        client,
        experiment_id,
        load_config,
        model_input,
        model_name,
    )

    settings = settings or get_settings()
    if zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (settings.zones = {list(settings.zones)})")
    config = load_config(config_path)
    name = model_name(zone, config)
    if if_due:
        due, reason = is_due(settings, zone, day, config)
        if not due:
            log.info("training not due for %s: %s", zone, reason)
            return {
                "run_id": None,
                "model_uri": f"models:/{name}@champion",
                "skipped": True,
                "reason": reason,
            }

    t0 = time.perf_counter()
    first, last = training_window(day, settings.train_window_days, history_start(zone, settings))
    window = load_window(zone, first, last, settings)
    n_eval = int(config["evaluation_days"])
    n_min = int(config["min_training_days"])
    if len(window.days) < n_eval + n_min:
        raise MissingInputError(
            f"zone {zone}: only {len(window.days)} usable days in {first}…{last} "
            f"(need {n_eval} evaluation + {n_min} training days); backfill the processed inputs "
            f"(python -m tasks.features --backfill-from {first} --delivery-date {last} --zone {zone})"
        )
    t_data = time.perf_counter() - t0
    design = choose_design(window.frames[:-n_eval], settings, settings.neighbours_of(zone))
    # Days without an optional input (weather) that the design uses get the training mean.
    x_all = design.matrix(window.frames)
    y_all = window.y
    n_fit = len(window.days) - n_eval
    n_val = max(1, round(float(config["validation_fraction"]) * n_fit))
    tr, va, ev = slice(0, n_fit - n_val), slice(n_fit - n_val, n_fit), slice(n_fit, None)
    seed = int(config["seed"])

    t1 = time.perf_counter()
    dnn = QuantileDNN(quantiles=design.quantiles, seed=seed, **config["dnn"])
    x_own = design.own(x_all)  # the DNNs read the zone's own inputs only (Design.neighbour_columns)
    dnn.fit(x_own[tr], y_all[tr], x_own[va], y_all[va])
    t_dnn = time.perf_counter() - t1
    load_fit = None
    if dict(config.get("load_dnn", {})).get("enabled", True):
        load_fit = fit_load_model(window, x_own, day, n_fit=n_fit, quantiles=design.quantiles, config=config)
        log.info("zone %s load model: %s", zone, load_fit.reason)
    fitted: dict[str, Any] = {}
    fit_seconds: dict[str, float] = {}
    per_hour = 60 // settings.mtu_minutes
    for member, model in point_models(config, design, per_hour, seed).items():
        t2 = time.perf_counter()
        fitted[member] = model.fit(x_all[:n_fit], y_all[:n_fit])
        fit_seconds[member] = time.perf_counter() - t2
    members, dnn_in_point = _ensemble_members(config, fitted)
    wrapped = DayAheadPriceModel().attach(
        design,
        dnn,
        load_dnn=load_fit.dnn if load_fit else None,
        load_meta=load_fit.meta() if load_fit and load_fit.dnn is not None else None,
        members=members,
        dnn_in_point=dnn_in_point,
    )
    x_eval = x_all[ev]  # the rows Design.matrix gives for the evaluation days (serving code path)
    forecast = wrapped.forecast_parts(x_eval)
    q_eval = forecast.quantiles
    floor, cap = settings.price_floor_eur_mwh, settings.price_cap_eur_mwh
    dnn_eval = np.clip(forecast.dnn, floor, cap)
    # Members outside ensemble.members are fitted and scored too; only they are predicted here.
    member_eval = {
        m: forecast.members[m] if m in forecast.members else f.predict(x_eval) for m, f in fitted.items()
    }

    y_eval, naive_eval = y_all[ev], window.naive[ev]
    model_scores = score(y_eval, q_eval, naive_eval, design.quantiles)
    dnn_scores = score(y_eval, dnn_eval, naive_eval, design.quantiles)
    member_scores = {
        member: score_point(y_eval, np.clip(point, floor, cap), naive_eval)
        for member, point in member_eval.items()
    }
    naive_scores = score_point(y_eval, naive_eval, naive_eval)
    log.info(
        "zone %s eval: model (%s) %s dnn %s %s naive %s",
        zone,
        "+".join(wrapped.member_names),
        model_scores,
        dnn_scores,
        " ".join(f"{member} {scores}" for member, scores in member_scores.items()),
        naive_scores,
    )

    splits = ["train"] * (n_fit - n_val) + ["validation"] * n_val + ["evaluation"] * n_eval
    window_doc = {
        "zone": zone,
        "delivery_date": day.isoformat(),
        "first": first.isoformat(),
        "last": last.isoformat(),
        "train_days": [d.isoformat() for d in window.days[tr]],
        "validation_days": [d.isoformat() for d in window.days[va]],
        "evaluation_days": [d.isoformat() for d in window.days[ev]],
        "skipped": window.skipped,
    }
    index = pd.DataFrame(
        {
            "delivery_date": [d.isoformat() for d in window.days],
            "split": splits,
            "mtus": [len(f) for f in window.frames],
            "price_mean": y_all.mean(axis=1),
            "price_max": y_all.max(axis=1),
        }
    )
    common_params = {
        "zone": zone,
        "delivery_date": day.isoformat(),
        "window_first": first.isoformat(),
        "window_last": last.isoformat(),
        "n_train_days": n_fit - n_val,
        "n_validation_days": n_val,
        "n_evaluation_days": n_eval,
        "n_skipped_days": len(window.skipped),
        "mtu_minutes": settings.mtu_minutes,
        "market_timezone": settings.market_timezone,
        "seed": seed,
    }
    tags = {**config.get("tags", {}), "zone": zone, "delivery_date": day.isoformat()}
    source = str(settings.data_root / "features" / f"zone={zone}")
    mc = client(settings)

    def _log_common(kind: str) -> None:
        mlflow.log_params(common_params)
        from mlflow.data.pandas_dataset import from_pandas

        dataset = from_pandas(index, source=source, name=f"{zone}_{first}_{last}")
        mlflow.log_input(dataset, context="training")
        mlflow.log_dict(window_doc, WINDOW_ARTIFACT)
        mlflow.set_tags({**tags, "model_kind": kind})

    # Baselines first: the DNN run records their run ids.
    with mlflow.start_run(
        experiment_id=experiment_id(settings, "price_naive", config), run_name=f"naive {zone} {day}"
    ) as r:
        _log_common("weekly_naive")
        mlflow.log_metrics(naive_scores)
        naive_run = r.info.run_id
    member_runs: dict[str, str] = {}
    for member, scores in member_scores.items():
        with mlflow.start_run(
            experiment_id=experiment_id(settings, f"price_{member}", config),
            run_name=f"{member} {zone} {day}",
        ) as r:
            _log_common(member)
            params = {f"{member}_{k}": v for k, v in config[member].items()}
            if member != "lear":  # LEAR is deterministic; the trees draw from the seed
                params[f"{member}_seed"] = seed
            mlflow.log_params(params)
            mlflow.log_metrics({**scores, "fit_seconds": fit_seconds[member]})
            member_runs[member] = r.info.run_id

    load_run = None
    if load_fit is not None:
        with mlflow.start_run(
            experiment_id=experiment_id(settings, "load_dnn", config), run_name=f"load {zone} {day}"
        ) as r:
            _log_common("load_quantile_dnn")
            if load_fit.dnn is not None:
                mlflow.log_params({f"load_dnn_{k}": v for k, v in load_fit.dnn.params().items()})
            mlflow.log_params(
                {
                    "load_n_train_days": len(load_fit.train_days),
                    "load_n_evaluation_days": len(load_fit.evaluation_days),
                }
            )
            mlflow.log_metrics({**load_fit.scores, "fit_seconds": load_fit.seconds})
            mlflow.log_metrics({f"tso_{k}": v for k, v in load_fit.tso_scores.items()})
            mlflow.log_dict(load_fit.meta() | {"train_days": load_fit.train_days}, "load_window.json")
            mlflow.set_tags(
                {
                    "volume_forecast": "load_dnn" if load_fit.use_model else "tso",
                    "load_decision": load_fit.reason,
                }
            )
            load_run = r.info.run_id

    t3 = time.perf_counter()
    with mlflow.start_run(
        experiment_id=experiment_id(settings, "price_dnn", config), run_name=f"dnn {zone} {day}"
    ) as r:
        run_id = r.info.run_id
        _log_common("ensemble" if members else "quantile_dnn")
        mlflow.log_params({f"dnn_{k}": v for k, v in dnn.params().items()})
        mlflow.log_params(
            {
                "n_inputs": int(x_all.shape[1]),
                "input_columns": ",".join(design.columns),
                "neighbour_zones": ",".join(settings.neighbours_of(zone)) or "none",
                "ensemble_members": ",".join(wrapped.member_names),
            }
        )
        mlflow.set_tags(
            {
                "naive_run_id": naive_run,
                **{f"{member}_run_id": run for member, run in member_runs.items()},
                "registered_model": name,
            }
        )
        # Unprefixed: the registered model (ensemble); prefixed: each member on its own.
        mlflow.log_metrics(model_scores)
        mlflow.log_metrics({f"dnn_{k}": v for k, v in dnn_scores.items()})
        for member, scores in member_scores.items():
            mlflow.log_metrics({f"{member}_{k}": v for k, v in scores.items()})
        mlflow.log_metrics({f"naive_{k}": v for k, v in naive_scores.items()})
        if load_fit is not None and load_run is not None:
            mlflow.set_tags(
                {
                    "load_run_id": load_run,
                    "load_decision": load_fit.reason,
                    "volume_forecast": "load_dnn" if load_fit.use_model else "tso",
                }
            )
            mlflow.log_metrics({f"load_{k}": v for k, v in load_fit.scores.items()})
            mlflow.log_metrics({f"load_tso_{k}": v for k, v in load_fit.tso_scores.items()})
        mlflow.log_metrics(
            {
                "epochs_run": len(dnn.history_.get("loss", [])),
                "best_val_loss": min(dnn.history_.get("val_loss", [np.nan])),
                "data_seconds": t_data,
                "dnn_fit_seconds": t_dnn,
                **{f"{member}_fit_seconds": t for member, t in fit_seconds.items()},
            }
        )
        for fname, fig in _plots(
            window.days[ev],
            y_eval,
            q_eval,
            naive_eval,
            slots=design.slots,
            median=metrics.median_index(design.quantiles),
        ).items():
            mlflow.log_figure(fig, fname)
        import matplotlib.pyplot as plt

        plt.close("all")
        example = model_input(window.frames[-1])
        output = wrapped.predict(None, example)
        from mlflow.models import infer_signature

        signature = infer_signature(example, output)
        with tempfile.TemporaryDirectory(prefix="dap-model-") as tmp:
            root = Path(tmp) / "price_model"  # stable name inside the logged model
            wrapped.save(root)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=DayAheadPriceModel(),
                artifacts={"model_dir": str(root)},
                signature=signature,
                input_example=example,
                pip_requirements=PIP_REQUIREMENTS,
            )
        mlflow.log_metric("log_model_seconds", time.perf_counter() - t3)
    mc.set_tag(run_id, "model_uri", info.model_uri)
    if config.get("tfdv_statistics", True):
        # Statistics of the fitted days (train + validation), checked against the curated
        # schema, kept for the serving-time drift checks of tasks.validate and logged on the run.
        from tasks.quality.tfdv_checks import record_training_data

        t4 = time.perf_counter()
        record_training_data(pd.concat(window.frames[:n_fit], ignore_index=True), zone, run_id, settings)
        mc.log_metric(run_id, "tfdv_seconds", time.perf_counter() - t4)
    model_uri = str(info.model_uri)
    log.info("trained %s in %.1f s: run %s", zone, time.perf_counter() - t0, run_id)
    return {
        "run_id": run_id,
        "model_uri": model_uri,
        "skipped": False,
        "members": wrapped.member_names,
        "mae": model_scores["mae"],
        "rmae": model_scores["rmae"],
        "dnn_mae": dnn_scores["mae"],
        **{f"{member}_mae": scores["mae"] for member, scores in member_scores.items()},
        "naive_mae": naive_scores["mae"],
        "load_run_id": load_run,
        "load_mae": load_fit.scores.get("mae") if load_fit else None,
        "load_tso_mae": load_fit.tso_scores.get("mae") if load_fit else None,
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    return train(
        args.zone or settings.zones[0], day_arg(args), settings, config_path=args.config, if_due=args.if_due
    )


def parser() -> argparse.ArgumentParser:
    p = base_parser(
        "Train the day-ahead models of one zone (price DNN + LEAR + GBM + extra-trees ensemble, weekly naive, load DNN) "
        "into MLflow."
    )
    p.add_argument(
        "--if-due", action="store_true", help="Skip when the champion is younger than train_every_days."
    )
    p.add_argument(
        "--config", type=Path, default=None, help="JSON overriding mlruns_config/models.json keys."
    )
    return p


if __name__ == "__main__":
    raise SystemExit(run_stage(main, parser()))
