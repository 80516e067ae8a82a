"""Train the day-ahead price models of one zone and log them to MLflow.

``python -m tasks.train --delivery-date D --zone Z [--if-due] [--config JSON]``

Window: the ``settings.train_window_days`` days ending D-1 (every target is
a published price; nothing of D is read), from the zone's first landed
prices when history is shorter. Days with a gate marker, missing
inputs or missing prices are left out and listed on the run
(:mod:`tasks.training_data`). The last ``evaluation_days`` usable days are
held out as the evaluation window; the tail of the rest is the early-stopping
validation split. The held-out days are never trained on, so a later
challenger's evaluation window (which ends later) contains no day the current
champion was fitted on either.

Models: the ensemble of :mod:`tasks.forecasting.definition` (``ensemble``
and ``search`` of models.json; the rolling backtest builds the same one): the
quantile DNN with the values of a bounded Optuna search on the fitted days,
the point members (LEAR, GBM, extra trees) named in ``ensemble.members``, and
their combination weights chosen on the validation days from out-of-sample
member forecasts, with a guard that serves the best member alone when the
combination is worse than it by more than ``combination.margin``; and the
weekly naive forecast. Each member is logged to its family's experiment with
MAE, rMAE (against the weekly naive), sMAPE, RMSE and, for quantile forecasts,
pinball loss and 80 %-interval coverage (:func:`tasks.forecasting.metrics.score`).
The registered candidate is the DNN band re-centred on the weighted members
(:mod:`tasks.forecasting.price_ensemble`); its run in the DNN family's
experiment carries the ensemble's figures, each member's (``dnn_*``,
``lear_*``, ``gbm_*``, ``forest_*``), the definition, the search's trials and
the chosen weights (:func:`log_procedure`).

Load: a quantile DNN of the zone's actual load on the same features
(:mod:`tasks.forecasting.load_model`), trained on days whose actuals are
complete at gate closure (≤ D-2), scored against the TSO forecast on the same
evaluation window and logged to the load family's experiment. It travels
inside the registered price model; the forecast uses its median as the volume
forecast only where it beat the TSO forecast on that window (docs/models.md).

:func:`train` is a sequence of named steps: :func:`load_training_set`,
:func:`fit_models` (:func:`search_price_dnn`, :func:`fit_price_dnn`, :func:`fit_load`,
:func:`fit_point_members`, :func:`choose_weights`, :func:`assemble_candidate`),
:func:`score_against_naive`, the runs (:func:`log_naive_run`,
:func:`log_member_runs`, :func:`log_load_run`, :func:`log_candidate_run`) and
:func:`record_tfdv_statistics`.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, MissingInputError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient

    from tasks.forecasting.definition import (
        BandCalibration,
        CombinationChoice,
        EnsembleDefinition,
        SearchResult,
    )
    from tasks.forecasting.load_model import LoadFit
    from tasks.forecasting.served_model import DayAheadPriceModel, Design
    from tasks.training_data import WindowData

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    """A zone's training window as model matrices, split into train, validation and evaluation days."""

    zone: str
    day: date  # the delivery day D the models are trained for
    first: date
    last: date
    window: WindowData
    design: Design
    x_all: np.ndarray  # Design.matrix rows of every usable day
    x_own: np.ndarray  # the same without the neighbour columns (the DNNs' view)
    n_fit: int  # train + validation days; the evaluation days follow
    n_val: int
    data_seconds: float

    @property
    def n_eval(self) -> int:
        return len(self.window.days) - self.n_fit

    @property
    def train(self) -> slice:
        return slice(0, self.n_fit - self.n_val)

    @property
    def validation(self) -> slice:
        return slice(self.n_fit - self.n_val, self.n_fit)

    @property
    def evaluation(self) -> slice:
        return slice(self.n_fit, None)


@dataclass
class Fitted:
    """The fitted models of a run and the candidate assembled from them."""

    dnn: Any
    dnn_seconds: float
    load: LoadFit | None
    members: dict[str, Any]  # the definition's point members
    member_seconds: dict[str, float]
    candidate: DayAheadPriceModel
    definition: EnsembleDefinition
    search: SearchResult
    combination: CombinationChoice
    band: BandCalibration


@dataclass
class Scores:
    """Figures of every model on the evaluation days."""

    quantiles: np.ndarray  # the candidate's forecast [n_eval, slots, q]
    candidate: dict[str, float]
    dnn: dict[str, float]
    members: dict[str, dict[str, float]]
    naive: dict[str, float]


def load_training_set(zone: str, day: date, settings: Settings, config: dict[str, Any]) -> TrainingSet:
    """Step: the usable days of D's window, the model design and the day split."""
    from tasks.training_data import choose_design, history_start, load_window, training_window

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
    data_seconds = time.perf_counter() - t0
    design = choose_design(window.frames[:-n_eval], settings, settings.neighbours_of(zone))
    # Days without an optional input (weather) that the design uses get the training mean.
    x_all = design.matrix(window.frames)
    n_fit = len(window.days) - n_eval
    n_val = max(1, round(float(config["validation_fraction"]) * n_fit))
    return TrainingSet(
        zone, day, first, last, window, design, x_all, design.own(x_all), n_fit, n_val, data_seconds
    )


def search_price_dnn(data: TrainingSet, defn: EnsembleDefinition) -> SearchResult:
    """Step: the definition's bounded DNN search on the fitted days (the last ``search.validation_days`` validate)."""
    from tasks.forecasting.definition import search_dnn

    n_val = min(defn.search.validation_days, data.n_fit // 2)
    x, y = data.x_own[: data.n_fit], data.window.y[: data.n_fit]
    result = search_dnn(defn, data.design.quantiles, (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:]))
    if result.trials:
        log.info(
            "zone %s DNN search: %d trials, best %s (pinball %.3f)",
            data.zone,
            len(result.trials),
            result.best,
            result.best_loss,
        )
    return result


def fit_price_dnn(data: TrainingSet, defn: EnsembleDefinition, search: SearchResult) -> tuple[Any, float]:
    """Step: the quantile price DNN (searched values) on the zone's own inputs, early-stopped on the validation days."""
    from tasks.forecasting.definition import dnn_params
    from tasks.forecasting.dnn import make_dnn

    t0 = time.perf_counter()
    dnn = make_dnn(data.design.quantiles, seed=defn.seed, **dnn_params(defn, search.best))
    y = data.window.y
    dnn.fit(data.x_own[data.train], y[data.train], data.x_own[data.validation], y[data.validation])
    return dnn, time.perf_counter() - t0


def fit_load(data: TrainingSet, config: dict[str, Any]) -> LoadFit | None:
    """Step: the load model (None when models.json disables it)."""
    if not dict(config.get("load_dnn", {})).get("enabled", True):
        return None
    from tasks.forecasting.load_model import fit_load_model

    load_fit = fit_load_model(
        data.window, data.x_own, data.day, n_fit=data.n_fit, quantiles=data.design.quantiles, config=config
    )
    log.info("zone %s load model: %s", data.zone, load_fit.reason)
    return load_fit


def fit_point_members(
    data: TrainingSet, defn: EnsembleDefinition, settings: Settings
) -> tuple[dict[str, Any], dict[str, float], dict[str, np.ndarray]]:
    """Step: each point member of the definition, its fit time and its validation forecast.

    Each member is fitted on the train days and forecasts the validation days
    (out of sample: what the combination is chosen on), then re-fitted on the
    train and validation days for serving.
    """
    import numpy as np

    from tasks.forecasting.definition import design_point_member

    fitted: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    validation: dict[str, np.ndarray] = {}
    per_hour = 60 // settings.mtu_minutes
    x, y = data.x_all, data.window.y
    for spec in defn.point_members:
        t0 = time.perf_counter()
        early = design_point_member(spec, data.design, per_hour, defn.seed).fit(x[data.train], y[data.train])
        validation[spec.name] = np.asarray(early.predict(x[data.validation]))
        fitted[spec.name] = design_point_member(spec, data.design, per_hour, defn.seed).fit(
            x[: data.n_fit], y[: data.n_fit]
        )
        seconds[spec.name] = time.perf_counter() - t0
    return fitted, seconds, validation


def choose_weights(
    data: TrainingSet, defn: EnsembleDefinition, dnn_q: np.ndarray, validation: dict[str, np.ndarray]
) -> CombinationChoice:
    """Step: the combination's weights on the last ``combination.validation_days`` validation days, and its guard.

    ``dnn_q``: the DNN's quantiles of the validation days; ``validation``: each point member's forecast of them.
    """
    from tasks.forecasting.definition import choose_combination
    from tasks.forecasting.metrics import median_index

    tail = validation_tail(data, defn)
    points = dict(validation)
    if defn.dnn_in_point:
        points = {"dnn": dnn_q[..., median_index(data.design.quantiles)], **points}
    ordered = {name: points[name][tail] for name in defn.names}
    choice = choose_combination(ordered, data.window.y[data.validation][tail], defn.combination)
    log.info("zone %s combination: %s (%s)", data.zone, choice.weights, choice.reason)
    return choice


def validation_tail(data: TrainingSet, defn: EnsembleDefinition) -> slice:
    """The last ``combination.validation_days`` validation days: what the weights and the band are chosen on."""
    return slice(-min(defn.combination.validation_days, data.n_val), None)


def calibrate_served_band(
    data: TrainingSet,
    defn: EnsembleDefinition,
    dnn_q: np.ndarray,
    validation: dict[str, np.ndarray],
    choice: CombinationChoice,
) -> BandCalibration:
    """Step: the band's scale on the days the weights were chosen on (step 4 of the procedure)."""
    from tasks.forecasting.definition import calibrate_band
    from tasks.forecasting.metrics import median_index
    from tasks.forecasting.price_ensemble import combine_quantiles

    tail = validation_tail(data, defn)
    levels = data.design.quantiles
    members = {spec.name: validation[spec.name][tail] for spec in defn.point_members}
    band = combine_quantiles(
        dnn_q[tail],
        members,
        median_index(levels),
        dnn_in_point=defn.dnn_in_point,
        weights=choice.weights,
        shape_weights=choice.shape_weights,
    )
    calibration = calibrate_band(band, data.window.y[data.validation][tail], levels, defn.combination)
    log.info("zone %s band: %s", data.zone, calibration.reason)
    return calibration


def assemble_candidate(
    data: TrainingSet,
    defn: EnsembleDefinition,
    dnn: Any,
    *,
    load_fit: LoadFit | None,
    fitted: dict[str, Any],
    choice: CombinationChoice,
    band: BandCalibration,
) -> DayAheadPriceModel:
    """Step: the served model, the DNN band re-centred on the weighted members and scaled, with the load model."""
    from tasks.forecasting.served_model import DayAheadPriceModel

    members = {spec.name: fitted[spec.name] for spec in defn.point_members}
    return DayAheadPriceModel().attach(
        data.design,
        dnn,
        load_dnn=load_fit.dnn if load_fit else None,
        load_meta=load_fit.meta() if load_fit and load_fit.dnn is not None else None,
        members=members,
        dnn_in_point=defn.dnn_in_point,
        weights=choice.weights if members else None,
        shape_weights=choice.shape_weights if members else None,
        band_scale=band.scale,
        daily=vars(defn.daily) if defn.daily.active else None,
        fitted_for=data.day.isoformat(),
    )


def fit_models(data: TrainingSet, config: dict[str, Any], settings: Settings) -> Fitted:
    """Step: the search, the DNN, the load model, the point members, the combination and the candidate."""
    import numpy as np

    from tasks.forecasting.definition import from_config

    defn = from_config(config)
    search = search_price_dnn(data, defn)
    dnn, dnn_seconds = fit_price_dnn(data, defn, search)
    load_fit = fit_load(data, config)
    members, member_seconds, validation = fit_point_members(data, defn, settings)
    dnn_q = np.asarray(dnn.predict(data.x_own[data.validation]))  # the DNN on the validation days, once
    choice = choose_weights(data, defn, dnn_q, validation)
    band = calibrate_served_band(data, defn, dnn_q, validation, choice)
    candidate = assemble_candidate(
        data, defn, dnn, load_fit=load_fit, fitted=members, choice=choice, band=band
    )
    return Fitted(dnn, dnn_seconds, load_fit, members, member_seconds, candidate, defn, search, choice, band)


def score_against_naive(data: TrainingSet, fitted: Fitted, settings: Settings) -> Scores:
    """Step: the candidate, the DNN alone, each point member and the weekly naive on the evaluation days.

    The candidate predicts the rows :meth:`Design.matrix` gives for those days
    (the serving code path); members outside ``ensemble.members`` are predicted here.
    """
    import numpy as np

    from tasks.forecasting.metrics import score, score_point

    x_eval = data.x_all[data.evaluation]
    forecast = fitted.candidate.forecast_parts(x_eval)
    floor, cap = settings.price_floor_eur_mwh, settings.price_cap_eur_mwh
    member_eval = {
        m: forecast.members[m] if m in forecast.members else f.predict(x_eval)
        for m, f in fitted.members.items()
    }
    y_eval, naive_eval = data.window.y[data.evaluation], data.window.naive[data.evaluation]
    quantiles = data.design.quantiles
    scores = Scores(
        quantiles=forecast.quantiles,
        candidate=score(y_eval, forecast.quantiles, naive_eval, quantiles),
        dnn=score(y_eval, np.clip(forecast.dnn, floor, cap), naive_eval, quantiles),
        members={
            member: score_point(y_eval, np.clip(point, floor, cap), naive_eval)
            for member, point in member_eval.items()
        },
        naive=score_point(y_eval, naive_eval, naive_eval),
    )
    log.info(
        "zone %s eval: model (%s) %s dnn %s %s naive %s",
        data.zone,
        "+".join(fitted.candidate.member_names),
        scores.candidate,
        scores.dnn,
        " ".join(f"{member} {member_scores}" for member, member_scores in scores.members.items()),
        scores.naive,
    )
    return scores


def point_models(config: dict[str, Any], design: Design, per_hour: int, seed: int) -> dict[str, Any]:
    """Unfitted point members of every ``lear``/``gbm``/``forest`` block in ``config``, keyed by name.

    Built by :func:`tasks.forecasting.definition.design_point_member`, as the
    training stage builds the definition's members.
    """
    from tasks.forecasting.definition import POINT_MEMBERS, MemberSpec, design_point_member

    return {
        name: design_point_member(
            MemberSpec(name, json.dumps(config[name], sort_keys=True)), design, per_hour, seed
        )
        for name in POINT_MEMBERS
        if name in config
    }


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
    from tasks.registry import champion_version, client, latest_training

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
    every = settings.train_every_days
    age = (day - date.fromisoformat(trained_for)).days
    if 0 <= age < every:
        return False, f"champion v{version.version} trained for {trained_for} ({age} d < {every} d)"
    # A challenger that lost to the champion was still trained: without this, a champion that
    # keeps winning would have the zone re-trained every day instead of every `every` days.
    latest = latest_training(settings, zone, day, config)
    if latest is not None and latest[1] != str(version.version):
        newest, newest_version = latest
        newest_age = (day - newest).days
        if newest_age < every:
            return False, (
                f"v{newest_version} trained for {newest.isoformat()} ({newest_age} d < {every} d) "
                f"and kept champion v{version.version} (trained for {trained_for})"
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


@dataclass
class RunContext:
    """What every run of a training logs: the window's params, days and dataset, and the common tags."""

    data: TrainingSet
    settings: Settings
    config: dict[str, Any]
    name: str  # the zone's registered model
    client: MlflowClient

    @contextmanager
    def start(self, family: str, label: str, kind: str) -> Iterator[Any]:
        """An active run named ``<label> <zone> <day>`` in ``family``'s experiment, common items logged."""
        import mlflow

        from tasks.registry import experiment_id

        data = self.data
        with mlflow.start_run(
            experiment_id=experiment_id(self.settings, family, self.config),
            run_name=f"{label} {data.zone} {data.day}",
        ) as run:
            self._log_common(kind)
            yield run

    def _log_common(self, kind: str) -> None:
        import mlflow
        from mlflow.data.pandas_dataset import from_pandas

        from tasks.registry import WINDOW_ARTIFACT

        data = self.data
        mlflow.log_params(self._common_params())
        source = str(self.settings.data_root / "features" / f"zone={data.zone}")
        dataset = from_pandas(self._day_index(), source=source, name=f"{data.zone}_{data.first}_{data.last}")
        mlflow.log_input(dataset, context="training")
        mlflow.log_dict(self._window_doc(), WINDOW_ARTIFACT)
        tags = {**self.config.get("tags", {}), "zone": data.zone, "delivery_date": data.day.isoformat()}
        mlflow.set_tags({**tags, "model_kind": kind})

    def _common_params(self) -> dict[str, Any]:
        data = self.data
        return {
            "zone": data.zone,
            "delivery_date": data.day.isoformat(),
            "window_first": data.first.isoformat(),
            "window_last": data.last.isoformat(),
            "n_train_days": data.n_fit - data.n_val,
            "n_validation_days": data.n_val,
            "n_evaluation_days": data.n_eval,
            "n_skipped_days": len(data.window.skipped),
            "mtu_minutes": self.settings.mtu_minutes,
            "market_timezone": self.settings.market_timezone,
            "seed": int(self.config["seed"]),
        }

    def _window_doc(self) -> dict[str, Any]:
        data, days = self.data, self.data.window.days
        return {
            "zone": data.zone,
            "delivery_date": data.day.isoformat(),
            "first": data.first.isoformat(),
            "last": data.last.isoformat(),
            "train_days": [d.isoformat() for d in days[data.train]],
            "validation_days": [d.isoformat() for d in days[data.validation]],
            "evaluation_days": [d.isoformat() for d in days[data.evaluation]],
            "skipped": data.window.skipped,
        }

    def _day_index(self) -> pd.DataFrame:
        """One row per usable day: its split, MTU count and price level (the logged dataset)."""
        import pandas as pd

        data, window = self.data, self.data.window
        splits = ["train"] * (data.n_fit - data.n_val) + ["validation"] * data.n_val
        return pd.DataFrame(
            {
                "delivery_date": [d.isoformat() for d in window.days],
                "split": splits + ["evaluation"] * data.n_eval,
                "mtus": [len(f) for f in window.frames],
                "price_mean": window.y.mean(axis=1),
                "price_max": window.y.max(axis=1),
            }
        )


def run_context(data: TrainingSet, settings: Settings, config: dict[str, Any], name: str) -> RunContext:
    from tasks.registry import client

    return RunContext(data, settings, config, name, client(settings))


def log_naive_run(ctx: RunContext, scores: Scores) -> str:
    """Step: the weekly naive's run; returns its id."""
    import mlflow

    with ctx.start("price_naive", "naive", "weekly_naive") as run:
        mlflow.log_metrics(scores.naive)
        return str(run.info.run_id)


def log_member_runs(ctx: RunContext, scores: Scores, fit_seconds: dict[str, float]) -> dict[str, str]:
    """Step: one run per point member in its family's experiment; returns their ids by member."""
    import mlflow

    runs: dict[str, str] = {}
    for member, member_scores in scores.members.items():
        with ctx.start(f"price_{member}", member, member) as run:
            params = {f"{member}_{k}": v for k, v in ctx.config[member].items()}
            if member != "lear":  # LEAR is deterministic; the trees draw from the seed
                params[f"{member}_seed"] = int(ctx.config["seed"])
            mlflow.log_params(params)
            mlflow.log_metrics({**member_scores, "fit_seconds": fit_seconds[member]})
            runs[member] = run.info.run_id
    return runs


def log_load_run(ctx: RunContext, load_fit: LoadFit | None) -> str | None:
    """Step: the load model's run, scored against the TSO forecast; returns its id (None: no load model)."""
    if load_fit is None:
        return None
    import mlflow

    with ctx.start("load_dnn", "load", "load_quantile_dnn") as run:
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
        return str(run.info.run_id)


def log_candidate_run(
    ctx: RunContext,
    fitted: Fitted,
    scores: Scores,
    *,
    naive_run: str,
    member_runs: dict[str, str],
    load_run: str | None,
) -> tuple[str, str]:
    """Step: the candidate's run in the DNN family's experiment (figures of every model, plots, the pyfunc).

    Returns the run id and the logged model's URI (also tagged ``model_uri`` on the run).
    """
    import mlflow

    t0 = time.perf_counter()
    kind = "ensemble" if fitted.candidate.members else "quantile_dnn"
    with ctx.start("price_dnn", "dnn", kind) as run:
        run_id = str(run.info.run_id)
        _log_candidate_inputs(ctx, fitted, naive_run, member_runs)
        log_procedure(fitted)
        _log_candidate_metrics(ctx.data, fitted, scores, load_run)
        _log_plots(ctx.data, scores)
        model_uri = _log_pyfunc(ctx.data, fitted.candidate)
        mlflow.log_metric("log_model_seconds", time.perf_counter() - t0)
    ctx.client.set_tag(run_id, "model_uri", model_uri)
    return run_id, model_uri


def log_procedure(fitted: Fitted) -> None:
    """The definition, the DNN search (trials, chosen values) and the combination (weights, guard) on the active run."""
    import mlflow

    from tasks.registry import COMBINATION_ARTIFACT, DEFINITION_ARTIFACT, SEARCH_ARTIFACT

    defn, search, choice = fitted.definition, fitted.search, fitted.combination
    mlflow.log_dict(defn.describe(), DEFINITION_ARTIFACT)
    mlflow.log_dict(search.to_json(), SEARCH_ARTIFACT)
    mlflow.log_dict({**choice.to_json(), "band": fitted.band.to_json()}, COMBINATION_ARTIFACT)
    mlflow.log_params(
        {
            "combination_rule": defn.combination.rule,
            "combination_margin": defn.combination.margin,
            "combination_validation_days": defn.combination.validation_days,
            "search_trials": len(search.trials),
            **{f"search_best_{k}": v for k, v in search.best.items()},
        }
    )
    mlflow.log_metrics(
        {
            **{f"weight_{name}": w for name, w in choice.weights.items()},
            **{f"shape_weight_{name}": w for name, w in (choice.shape_weights or {}).items()},
            **{f"validation_mae_{name}": v for name, v in choice.validation_mae.items()},
            "search_seconds": search.seconds,
            "band_scale": fitted.band.scale,
            **(
                {"band_validation_coverage": fitted.band.coverage_after} if fitted.band.coverage_after else {}
            ),
        }
    )
    mlflow.set_tag("combination_fallback", str(choice.fallback).lower())


def _log_candidate_inputs(
    ctx: RunContext, fitted: Fitted, naive_run: str, member_runs: dict[str, str]
) -> None:
    """The DNN's params, the inputs and members of the candidate, and the baselines' run ids."""
    import mlflow

    data = ctx.data
    mlflow.log_params({f"dnn_{k}": v for k, v in fitted.dnn.params().items()})
    mlflow.log_params(
        {
            "n_inputs": int(data.x_all.shape[1]),
            "input_columns": ",".join(data.design.columns),
            "neighbour_zones": ",".join(ctx.settings.neighbours_of(data.zone)) or "none",
            "ensemble_members": ",".join(fitted.candidate.member_names),
        }
    )
    mlflow.set_tags(
        {
            "naive_run_id": naive_run,
            **{f"{member}_run_id": run for member, run in member_runs.items()},
            "registered_model": ctx.name,
        }
    )


def _log_candidate_metrics(data: TrainingSet, fitted: Fitted, scores: Scores, load_run: str | None) -> None:
    """Unprefixed: the registered model (ensemble); prefixed: each member on its own; then timings."""
    import mlflow
    import numpy as np

    mlflow.log_metrics(scores.candidate)
    mlflow.log_metrics({f"dnn_{k}": v for k, v in scores.dnn.items()})
    for member, member_scores in scores.members.items():
        mlflow.log_metrics({f"{member}_{k}": v for k, v in member_scores.items()})
    mlflow.log_metrics({f"naive_{k}": v for k, v in scores.naive.items()})
    load_fit = fitted.load
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
    history = fitted.dnn.history_
    mlflow.log_metrics(
        {
            "epochs_run": len(history.get("loss", [])),
            "best_val_loss": min(history.get("val_loss", [np.nan])),
            "data_seconds": data.data_seconds,
            "dnn_fit_seconds": fitted.dnn_seconds,
            **{f"{member}_fit_seconds": t for member, t in fitted.member_seconds.items()},
        }
    )


def _log_plots(data: TrainingSet, scores: Scores) -> None:
    import mlflow

    from tasks.forecasting.metrics import median_index

    ev, window = data.evaluation, data.window
    figures = _plots(
        window.days[ev],
        window.y[ev],
        scores.quantiles,
        window.naive[ev],
        slots=data.design.slots,
        median=median_index(data.design.quantiles),
    )
    for fname, fig in figures.items():
        mlflow.log_figure(fig, fname)
    import matplotlib.pyplot as plt

    plt.close("all")


def _log_pyfunc(data: TrainingSet, candidate: DayAheadPriceModel) -> str:
    """Log the candidate as a pyfunc with its signature and input example (the last window day); its URI."""
    import mlflow
    from mlflow.models import infer_signature

    from tasks.forecasting.served_model import PIP_REQUIREMENTS, DayAheadPriceModel, model_input
    from tasks.registry import MODEL_ARTIFACT

    example = model_input(data.window.frames[-1])
    signature = infer_signature(example, candidate.predict(None, example))
    with tempfile.TemporaryDirectory(prefix="dap-model-") as tmp:
        root = Path(tmp) / "price_model"  # stable name inside the logged model
        candidate.save(root)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=DayAheadPriceModel(),
            artifacts={"model_dir": str(root)},
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
        )
    return str(info.model_uri)


def record_tfdv_statistics(ctx: RunContext, run_id: str) -> None:
    """Step: TFDV statistics of the fitted days (train + validation), checked against the curated schema.

    Kept for the serving-time drift checks of tasks.validate and logged on the run.
    """
    import pandas as pd

    from tasks.quality.tfdv_checks import record_training_data

    t0 = time.perf_counter()
    data = ctx.data
    fitted_days = pd.concat(data.window.frames[: data.n_fit], ignore_index=True)
    record_training_data(fitted_days, data.zone, run_id, ctx.settings)
    ctx.client.log_metric(run_id, "tfdv_seconds", time.perf_counter() - t0)


def train(
    zone: str,
    day: date,
    settings: Settings | None = None,
    *,
    config_path: Path | None = None,
    if_due: bool = False,
) -> dict[str, Any]:
    """Train, evaluate on the hold-out and log the models of one zone; see the module docstring.

    The tracking server is checked before anything else: ``--if-due`` cannot tell
    whether training is due without the registry, and a model trained for minutes
    could not be logged.
    """
    from tasks.registry import load_config, tracking_server

    settings = settings or get_settings()
    if zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (settings.zones = {list(settings.zones)})")
    config = load_config(config_path)
    with tracking_server(settings):
        return _train(zone, day, settings, config, if_due=if_due)


def _train(
    zone: str, day: date, settings: Settings, config: dict[str, Any], *, if_due: bool
) -> dict[str, Any]:
    from tasks.registry import model_name

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
    data = load_training_set(zone, day, settings, config)
    fitted = fit_models(data, config, settings)
    scores = score_against_naive(data, fitted, settings)
    ctx = run_context(data, settings, config, name)
    # Baselines first: the candidate's run records their run ids.
    naive_run = log_naive_run(ctx, scores)
    member_runs = log_member_runs(ctx, scores, fitted.member_seconds)
    load_run = log_load_run(ctx, fitted.load)
    run_id, model_uri = log_candidate_run(
        ctx, fitted, scores, naive_run=naive_run, member_runs=member_runs, load_run=load_run
    )
    if config.get("tfdv_statistics", True):
        record_tfdv_statistics(ctx, run_id)
    log.info("trained %s in %.1f s: run %s", zone, time.perf_counter() - t0, run_id)
    return _summary(run_id, model_uri, fitted, scores, load_run)


def _summary(
    run_id: str, model_uri: str, fitted: Fitted, scores: Scores, load_run: str | None
) -> dict[str, Any]:
    """The stage's result: run ids, the model URI and the headline MAEs."""
    load_fit = fitted.load
    return {
        "run_id": run_id,
        "model_uri": model_uri,
        "skipped": False,
        "members": fitted.candidate.member_names,
        "weights": fitted.combination.weights,
        "shape_weights": fitted.combination.shape_weights,
        "mae": scores.candidate["mae"],
        "rmae": scores.candidate["rmae"],
        "dnn_mae": scores.dnn["mae"],
        **{f"{member}_mae": member_scores["mae"] for member, member_scores in scores.members.items()},
        "naive_mae": scores.naive["mae"],
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
    exit_stage(run_stage(main, parser()))
