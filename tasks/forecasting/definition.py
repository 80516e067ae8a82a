"""The price ensemble's one definition: members, their configuration, the search and the combination.

The daily training stage (:mod:`tasks.train`), the rolling backtest
(``python -m research.backtest``) and the production replay
(``benchmarks/production_replay.py``, which runs ``tasks.train``) all build the
ensemble from :func:`from_config` of ``mlruns_config/models.json``: the same
members with the same parameters, the same bounded hyperparameter search and
the same combination rule. Only the inputs differ: production members read the
feature rows of :class:`tasks.forecasting.served_model.Design`
(:func:`design_point_member`), the backtest's the epftoolbox lag design of
:mod:`tasks.forecasting.design` (:func:`lag_point_member`).

Procedure (docs/models.md, "How the ensemble is chosen"), the same on every market:

1. **Search** (:func:`search_dnn`): a bounded Optuna search (``search.trials``
   trials, TPE sampler with a fixed seed) of the quantile DNN's learning rate,
   dropout, L2 penalty and width, each fitted on the training days and scored
   by pinball loss on the validation days that follow them. Training runs it on
   the training window; the backtest once, on the window before its first
   forecast origin. Nothing after the origin is read.
2. **Combination** (:func:`choose_combination`): convex weights of the members'
   point forecasts on a grid (``combination.weight_step``) minimising MAE on a
   validation window of out-of-sample member forecasts before the origin; with
   ``level_and_shape``, one set for each day's level (the mean over its slots) and
   one for its intraday shape (the deviations from it). Each set is then shrunk
   toward the members' median: ``median_share`` of the part comes from the
   members' median, the rest from the weighted mean (the weights carry the share
   as the key ``"median"``). Weights fitted on four weeks are noisy; the median
   needs no estimate and is robust to one member's bad day.
3. **Guard**: when the chosen combination's validation MAE exceeds the best
   single member's by more than ``combination.margin`` (relative), the fitted
   weights without the median are tried, then the best member is served alone.
4. **Band** (:func:`calibrate_band`, ``combination.band_calibration``): the DNN's
   quantiles, re-centred on the combined point, are widened or narrowed around
   it by one factor so that the outer band (q10–q90: 80 %) covers its nominal
   share of the validation window's prices (split-conformal: the
   ``ceil((n+1)·0.8)``-th smallest ratio of each price's distance from the centre
   to the band's half-width on its side). The DNN's learned width is not
   calibrated off the markets it was tuned on; this makes the band's coverage a
   property of the procedure, not of the market.
5. **Daily step** (:class:`DailyStep`, ``ensemble.daily``): the members are fitted
   every ``train_every_days``; before each forecast day D between two fits, the
   DNN is fine-tuned on the ``dnn_recent_days`` days that end D-1 (chained: one
   step for every day since its fit) and each LEAR window is re-fitted on the
   window that ends D-1 with the penalties its fit chose. Only days before D are
   read. The forecast stage does it before it predicts (:mod:`tasks.forecasting.daily_step`),
   the backtest's member step before each day it forecasts. In production the
   trees are also re-fitted once on the window that ends the day before the
   model's fit day (``held_out_refit``): training held its last
   ``evaluation_days`` out of every fit, the backtest's fits hold nothing out.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.errors import ConfigError

if TYPE_CHECKING:
    from tasks.forecasting.served_model import Design

POINT_MEMBERS = ("lear", "gbm", "forest")
MEMBERS = ("dnn", *POINT_MEMBERS)
RULES = ("validation_weights", "mean")
#: The weights' key of the members' median (step 2's shrinkage), beside the member names.
MEDIAN = "median"
#: Search space keys and how each is drawn: (low, high, kind); kind "log", "float" or "int".
SEARCHABLE = {"learning_rate", "dropout", "l2", "width"}


@dataclass(frozen=True)
class MemberSpec:
    """One member: its name and the parameters of its models.json block (as JSON, hashable)."""

    name: str
    params_json: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(json.loads(self.params_json))

    @property
    def windows(self) -> tuple[int | None, ...]:
        """The calibration windows (days; None: the whole training window) whose fits are averaged."""
        value = self.params.get("calibration_window_days")
        if isinstance(value, list):
            return tuple(None if w is None else int(w) for w in value) or (None,)
        return (None if value is None else int(value),)


@dataclass(frozen=True)
class Combination:
    """How member point forecasts are combined, and the guard against a worse combination."""

    rule: str = "validation_weights"
    validation_days: int = 28
    weight_step: float = 0.1
    margin: float = 0.01  # relative: the combination may be at most 1 % worse than the best member
    band_calibration: bool = True  # step 4: scale the band to its nominal coverage on the validation days
    median_share: float = 0.5  # step 2: the share of the served point given to the members' median
    level_and_shape: bool = True  # step 2 on the daily level and on the intraday shape, each with its weights


@dataclass(frozen=True)
class DailyStep:
    """Step 5: re-calibration before each forecast day, between the members' fits.

    ``dnn_recent_days`` 0, ``lear_refit`` and ``held_out_refit`` false: the members
    forecast as fitted.
    """

    dnn_recent_days: int = 0  # days ending D-1 the DNN's daily fine-tune reads (0: no fine-tune)
    dnn_epochs: int = 3
    dnn_learning_rate: float = 1e-4
    lear_refit: bool = False  # re-fit each LEAR window on the window ending D-1 with its fitted penalties
    # Production only: the members without a daily re-fit (the trees) re-fitted once on the
    # window that ends the day before the model's fit day, with the days training held out for
    # evaluation. The backtest's fits already end there.
    held_out_refit: bool = False

    @property
    def dnn(self) -> bool:
        return self.dnn_recent_days > 0

    @property
    def active(self) -> bool:
        return self.dnn or self.lear_refit or self.held_out_refit

    def applies_to(self, member: str) -> bool:
        """Whether ``member`` is brought up to D-1 before every day (the DNN and LEAR only; not the trees)."""
        return self.dnn if member == "dnn" else self.lear_refit and member == "lear"

    def refits_held_out(self, member: str) -> bool:
        """Whether the forecast stage re-fits the point ``member`` on its fit's window with the held-out days."""
        return self.held_out_refit and member != "dnn" and not self.applies_to(member)


@dataclass(frozen=True)
class SearchSpec:
    """The bounded DNN hyperparameter search (``trials`` 0: the configured values as they are)."""

    trials: int = 0
    validation_days: int = 56
    epochs: int = 100
    patience: int = 10
    space_json: str = "{}"

    @property
    def space(self) -> dict[str, list[Any]]:
        return dict(json.loads(self.space_json))


@dataclass(frozen=True)
class EnsembleDefinition:
    """What every use of the price model builds: members, search, combination, seed and quantiles."""

    members: tuple[MemberSpec, ...]
    dnn: MemberSpec  # always fitted: it gives the band, and its median is a point member when listed
    combination: Combination = field(default_factory=Combination)
    search: SearchSpec = field(default_factory=SearchSpec)
    seed: int = 0
    daily: DailyStep = field(default_factory=DailyStep)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    @property
    def point_members(self) -> tuple[MemberSpec, ...]:
        return tuple(m for m in self.members if m.name != "dnn")

    @property
    def dnn_in_point(self) -> bool:
        return "dnn" in self.names

    def describe(self) -> dict[str, Any]:
        """Flat, JSON-able description (MLflow params, backtest metrics.json, the equality test)."""
        return {
            "members": list(self.names),
            "member_params": {m.name: m.params for m in (self.dnn, *self.point_members)},
            "combination": vars(self.combination),
            "search": {
                **{k: v for k, v in vars(self.search).items() if k != "space_json"},
                "space": self.search.space,
            },
            "seed": self.seed,
            "daily": vars(self.daily),
        }


def from_config(config: Mapping[str, Any]) -> EnsembleDefinition:
    """The definition in ``config`` (``mlruns_config/models.json`` with any override applied)."""
    ensemble = dict(config.get("ensemble", {}))
    names = list(ensemble.get("members", ["dnn"]))
    unknown = [n for n in names if n not in MEMBERS or (n != "dnn" and n not in config)]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(
            f"ensemble.members {names}: name each of {list(MEMBERS)} at most once, each with its block "
            f"in models.json (unknown or without a block: {unknown})"
        )
    members = tuple(MemberSpec(n, json.dumps(config.get(n, {}), sort_keys=True)) for n in names)
    dnn = MemberSpec("dnn", json.dumps(config.get("dnn", {}), sort_keys=True))
    networks = dnn.params.get("networks", 1)
    if not isinstance(networks, int) or isinstance(networks, bool) or networks < 1:
        raise ConfigError(f"dnn.networks {networks!r}: the number of networks averaged, an integer >= 1")
    comb = Combination(**dict(ensemble.get("combination", {})))
    if (
        comb.rule not in RULES
        or not 0 < comb.weight_step <= 1
        or comb.margin < 0
        or comb.validation_days < 1
        or not 0 <= comb.median_share <= 1
    ):
        raise ConfigError(
            f"ensemble.combination {vars(comb)}: rule one of {list(RULES)}, 0 < weight_step <= 1, "
            "margin >= 0, validation_days >= 1, 0 <= median_share <= 1"
        )
    search_block = {k: v for k, v in dict(config.get("search", {})).items() if not k.startswith("_")}
    space = dict(search_block.pop("space", {}))
    bad = sorted(set(space) - SEARCHABLE)
    if bad:
        raise ConfigError(f"search.space keys {bad}: searchable are {sorted(SEARCHABLE)}")
    search = SearchSpec(**search_block, space_json=json.dumps(space, sort_keys=True))
    daily = daily_step_of(ensemble.get("daily", {}))
    return EnsembleDefinition(members, dnn, comb, search, int(config.get("seed", 0)), daily)


def daily_step_of(block: Mapping[str, Any]) -> DailyStep:
    """``ensemble.daily`` of models.json, validated (step 5)."""
    known = set(DailyStep.__dataclass_fields__)
    unknown = sorted(k for k in block if k not in known and not k.startswith("_"))
    if unknown:
        raise ConfigError(f"ensemble.daily keys {unknown}: known are {sorted(known)}")
    step = DailyStep(**{k: v for k, v in block.items() if k in known})
    if step.dnn_recent_days < 0 or step.dnn_epochs < 1 or not step.dnn_learning_rate > 0:
        raise ConfigError(
            f"ensemble.daily {vars(step)}: dnn_recent_days >= 0 (0: off), dnn_epochs >= 1, dnn_learning_rate > 0"
        )
    return step


# -- members --------------------------------------------------------------------------------------


@dataclass
class WindowMean:
    """A member fitted on several calibration windows (the last ``w`` rows each); its forecast is their mean.

    The epftoolbox LEAR ensemble: short windows follow recent price levels, long
    ones the seasonal structure.
    """

    models: list[Any]

    def fit(self, X: np.ndarray, Y: np.ndarray) -> WindowMean:  # noqa: N803
        for model in self.models:
            model.fit(X, Y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.mean([np.asarray(m.predict(X), dtype=float) for m in self.models], axis=0)

    def refit(self, X: np.ndarray, Y: np.ndarray) -> WindowMean:  # noqa: N803
        """Each window's model re-fitted with the choices of its fit (LEAR: its penalties)."""
        for model in self.models:
            model.refit(X, Y)
        return self


def _one_per_window(spec: MemberSpec, build: Any) -> Any:
    models = [build(window) for window in spec.windows]
    return models[0] if len(models) == 1 else WindowMean(models)


def design_point_member(spec: MemberSpec, design: Design, per_hour: int, seed: int) -> Any:
    """A point member on production design rows (``Design.matrix``), unfitted.

    A member reads the neighbouring zones' columns only with
    ``"neighbour_series": true``; LEAR averages ``per_hour`` slots into hourly
    inputs when ``hourly_inputs``.
    """
    from tasks.forecasting.gbm import GBM, ColumnLayout, ExtraTrees
    from tasks.forecasting.price_ensemble import ColumnSubset, DesignLEAR

    params = spec.params
    params.pop("calibration_window_days", None)
    all_columns = bool(params.pop("neighbour_series", False)) or not design.neighbour_columns
    columns = tuple(design.columns if all_columns else design.own_columns)
    if spec.name == "lear":
        factor = per_hour if params.pop("hourly_inputs", True) else 1

        def build(window: int | None) -> Any:
            return DesignLEAR(
                len(columns), design.slots, factor, {**params, "calibration_window_days": window}
            )
    else:
        tree = GBM if spec.name == "gbm" else ExtraTrees

        def build(window: int | None) -> Any:
            layout = ColumnLayout(columns, design.slots)
            return tree(calibration_window_days=window, layout=layout, seed=seed, **params)

    model = _one_per_window(spec, build)
    return model if all_columns else ColumnSubset(model, design.own_index)


def lag_point_member(spec: MemberSpec, exog_names: Sequence[str], seed: int) -> Any:
    """The same member on the epftoolbox lag design (:func:`tasks.forecasting.design.build_design`), unfitted.

    The lag design has no neighbour columns and hourly slots: ``neighbour_series``
    and ``hourly_inputs`` have nothing to select there.
    """
    from tasks.forecasting.gbm import GBM, ExtraTrees
    from tasks.forecasting.lear import LEAR

    params = spec.params
    for key in ("calibration_window_days", "neighbour_series", "hourly_inputs"):
        params.pop(key, None)
    if spec.name == "lear":
        return _one_per_window(spec, lambda w: LEAR(calibration_window_days=w, **params))
    tree = GBM if spec.name == "gbm" else ExtraTrees
    return _one_per_window(
        spec,
        lambda w: tree(calibration_window_days=w, layout=None, seed=seed, exog_names=exog_names, **params),
    )


def dnn_params(defn: EnsembleDefinition, tuned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The quantile DNN's keyword arguments: the configured block with the search's chosen values."""
    params = defn.dnn.params
    for key, value in dict(tuned or {}).items():
        if key == "width":  # the layers keep their configured ratios, scaled to the first's width
            first = int(params.get("hidden", [128])[0])
            params["hidden"] = [max(4, round(int(value) * h / first)) for h in params.get("hidden", [128])]
        else:
            params[key] = value
    return params


# -- search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """The chosen values and every trial (for MLflow and the backtest's search.json)."""

    best: dict[str, Any]
    best_loss: float
    trials: list[dict[str, Any]]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_loss": self.best_loss,
            "trials": self.trials,
            "seconds": self.seconds,
        }


def _suggest(trial: Any, name: str, bounds: Sequence[Any]) -> Any:
    low, high, kind = bounds[0], bounds[1], (bounds[2] if len(bounds) > 2 else "float")
    if kind == "int":
        return trial.suggest_int(name, int(low), int(high))
    return trial.suggest_float(name, float(low), float(high), log=kind == "log")


def search_dnn(
    defn: EnsembleDefinition,
    quantiles: Sequence[float],
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
) -> SearchResult:
    """Step 1 of the procedure: the bounded Optuna search of the DNN on ``train``, scored on ``validation``.

    With ``search.trials`` 0 or an empty space: the configured values, no fit.
    """
    import time

    t0 = time.perf_counter()
    space = defn.search.space
    if defn.search.trials <= 0 or not space:
        return SearchResult({}, math.nan, [], 0.0)
    import optuna

    from tasks.forecasting.dnn import QuantileDNN
    from tasks.forecasting.metrics import pinball_loss

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        tuned = {name: _suggest(trial, name, bounds) for name, bounds in sorted(space.items())}
        params = {**dnn_params(defn, tuned), "epochs": defn.search.epochs, "patience": defn.search.patience}
        params.pop("networks", None)  # each trial scores one network of the configuration
        model = QuantileDNN(quantiles=quantiles, seed=defn.seed, **params)
        model.fit(train[0], train[1], validation[0], validation[1])
        return float(pinball_loss(validation[1], model.predict(validation[0]), list(quantiles)))

    sampler = optuna.samplers.TPESampler(seed=defn.seed, n_startup_trials=min(4, defn.search.trials))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=defn.search.trials)
    trials = [{"number": t.number, "params": t.params, "loss": t.value} for t in study.trials]
    return SearchResult(dict(study.best_params), float(study.best_value), trials, time.perf_counter() - t0)


# -- combination ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CombinationChoice:
    """The weights served (by member, summing to 1) and the validation figures behind them."""

    weights: dict[str, float]  # of the daily level (of the whole point when shape_weights is None)
    validation_mae: dict[str, float]  # each member's, and "combination" (before the guard)
    fallback: bool  # the guard served the best member alone
    reason: str
    shape_weights: dict[str, float] | None = None  # of the intraday shape; None: ``weights``

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "shape_weights": self.shape_weights,
            "validation_mae": self.validation_mae,
            "fallback": self.fallback,
            "reason": self.reason,
        }


def weight_grid(n: int, step: float) -> np.ndarray:
    """Every convex weight vector of ``n`` members on a grid of ``step`` (vertices and equal weights included)."""
    k = max(1, round(1.0 / step))
    rows = [c for c in itertools.product(range(k + 1), repeat=n) if sum(c) == k]
    grid = np.asarray(rows, dtype=float) / k
    return np.vstack([grid, np.full((1, n), 1.0 / n)])


def fit_weights(stack: np.ndarray, actual: np.ndarray, combination: Combination) -> np.ndarray:
    """Convex weights of the members ``stack[m, days, slots]`` minimising MAE against ``actual`` (the grid)."""
    n = stack.shape[0]
    if combination.rule == "mean" or n == 1:
        return np.full(n, 1.0 / n)
    grid = weight_grid(n, combination.weight_step)
    maes = np.abs(np.tensordot(grid, stack, axes=1) - actual).mean(axis=(1, 2))
    return np.asarray(grid[int(np.argmin(maes))])


def level_and_shape(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point forecast ``[..., slots]`` as its daily level (the day's mean) and intraday shape (the rest)."""
    level = np.asarray(points, dtype=float).mean(axis=-1, keepdims=True)
    return level, points - level


def choose_combination(
    validation: Mapping[str, np.ndarray], actual: np.ndarray, combination: Combination
) -> CombinationChoice:
    """Steps 2 and 3 of the procedure: weights from the validation forecasts, then the guard.

    ``validation`` maps each member to its out-of-sample point forecasts
    ``[n_days, slots]`` of the validation days, ``actual`` their prices. Days where
    any member or the price is missing are left out; with no day left, equal weights.
    With ``level_and_shape``, the daily level and the intraday shape each get their own
    weights (fitted on the level and on the shape of the prices); each set is shrunk
    toward the members' median by ``median_share``.
    """
    names = list(validation)
    if not names:
        raise ValueError("no members to combine")
    stack = np.stack([np.asarray(validation[n], dtype=float) for n in names])
    y = np.asarray(actual, dtype=float)
    ok = np.isfinite(stack).all(axis=(0, 2)) & np.isfinite(y).all(axis=1)
    equal = {n: 1.0 / len(names) for n in names}
    if not ok.any():
        return CombinationChoice(equal, {}, False, "no validation day: equal weights")
    stack, y = stack[:, ok], y[ok]
    member_mae = {n: float(np.abs(stack[i] - y).mean()) for i, n in enumerate(names)}
    split = combination.level_and_shape and len(names) > 1
    fitted_shape: np.ndarray | None = None
    if split:
        (levels, shapes), (y_level, y_shape) = level_and_shape(stack), level_and_shape(y)
        fitted = fit_weights(levels, y_level, combination)
        fitted_shape = fit_weights(shapes, y_shape, combination)
    else:
        fitted = fit_weights(stack, y, combination)
    share = combination.median_share if len(names) > 1 else 0.0  # of two members, the median is their mean

    def shrunk(w: np.ndarray, median: float) -> dict[str, float]:
        return {n: (1.0 - median) * float(v) for n, v in zip(names, w, strict=True)} | (
            {MEDIAN: median} if median else {}
        )

    what = f"{combination.rule} of " + ("daily level and intraday shape" if split else "the point")
    # The shrunk weights first; when they fail the guard, the fitted ones.
    candidates = [
        (shrunk(fitted, m), None if fitted_shape is None else shrunk(fitted_shape, m), how)
        for m, how in ([(share, f"{what}, {share:g} median")] if share > 0 else []) + [(0.0, what)]
    ]
    members = dict(zip(names, stack, strict=True))
    best = min(member_mae, key=lambda n: member_mae[n])
    bound = member_mae[best] * (1.0 + combination.margin)
    figures: dict[str, float] = dict(member_mae)
    for weights, shape_weights, how in candidates:
        combined = float(np.abs(combine_points(members, weights, shape_weights) - y).mean())
        figures.setdefault("combination", combined)
        if combined <= bound:
            figures["combination"] = combined
            reason = f"{how} on {int(ok.sum())} validation days"
            return CombinationChoice(weights, figures, False, reason, shape_weights)
    return CombinationChoice(
        {n: float(n == best) for n in names},
        figures,
        True,
        f"combination MAE {figures['combination']:.3f} > best member {best} {member_mae[best]:.3f} "
        f"x (1 + {combination.margin:g}): {best} alone",
    )


#: Fewest validation prices the band is calibrated on (fewer: the DNN's band as it is).
MIN_BAND_POINTS = 48
#: Bounds of the band's scale factor: a degenerate validation window must not blow the band up or away.
BAND_SCALE_BOUNDS = (0.5, 3.0)


@dataclass(frozen=True)
class BandCalibration:
    """Step 4's result: the factor the band's half-widths are multiplied by, and its validation figures."""

    scale: float
    nominal: float  # the outer band's nominal coverage (q_hi - q_lo)
    coverage_before: float | None  # on the validation prices, scale 1
    coverage_after: float | None  # the same prices, the served scale
    points: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def scale_band(quantiles: np.ndarray, median_index: int, scale: float) -> np.ndarray:
    """Every quantile ``[..., q]`` moved ``scale`` times its distance from the median (order kept for scale > 0)."""
    if scale == 1.0:
        return quantiles
    centre = quantiles[..., median_index : median_index + 1]
    return centre + scale * (quantiles - centre)


def band_coverage(quantiles: np.ndarray, actual: np.ndarray) -> float:
    """Share of finite ``actual`` prices inside the outer band ``[q_first, q_last]``."""
    y = np.asarray(actual, dtype=float)
    ok = np.isfinite(y) & np.isfinite(quantiles).all(axis=-1)
    inside = (quantiles[..., 0] <= y) & (y <= quantiles[..., -1])
    return float(inside[ok].mean()) if ok.any() else float("nan")


def calibrate_band(
    quantiles: np.ndarray,
    actual: np.ndarray,
    levels: Sequence[float],
    combination: Combination,
) -> BandCalibration:
    """Step 4 of the procedure: the band's scale from the validation days (split-conformal, scaled).

    ``quantiles`` ``[n_days, slots, q]`` are the served band of the validation days at scale 1
    (the DNN's quantiles re-centred on the combined point), ``actual`` their prices. Each price
    needs the band scaled by ``r = (y - centre) / (q_last - centre)`` above the centre, by
    ``(centre - y) / (centre - q_first)`` below it, to be covered; the served scale is the
    ``ceil((n + 1) * nominal)``-th smallest ``r``, within :data:`BAND_SCALE_BOUNDS`.
    """
    q = np.asarray(quantiles, dtype=float)
    y = np.asarray(actual, dtype=float)
    nominal = float(levels[-1] - levels[0])
    median = list(levels).index(0.5)
    ok = np.isfinite(y) & np.isfinite(q).all(axis=-1)
    n = int(ok.sum())
    before = band_coverage(q, y) if n else None
    if not combination.band_calibration:
        return BandCalibration(1.0, nominal, before, before, n, "band calibration off: the DNN's band")
    if n < MIN_BAND_POINTS:
        return BandCalibration(
            1.0, nominal, before, before, n, f"{n} validation prices < {MIN_BAND_POINTS}: the DNN's band"
        )
    centre, lo, hi, yy = q[..., median][ok], q[..., 0][ok], q[..., -1][ok], y[ok]
    tiny = 1e-6
    above = yy >= centre
    ratio = np.where(
        above, (yy - centre) / np.maximum(hi - centre, tiny), (centre - yy) / np.maximum(centre - lo, tiny)
    )
    k = min(n, math.ceil((n + 1) * nominal))
    raw = float(np.partition(ratio, k - 1)[k - 1])
    low, high = BAND_SCALE_BOUNDS
    scale = float(min(max(raw, low), high))
    after = band_coverage(scale_band(q, median, scale), y)
    bounded = "" if scale == raw else f" (bounded from {raw:.3f})"
    return BandCalibration(
        scale, nominal, before, after, n, f"conformal scale {scale:.3f}{bounded} on {n} validation prices"
    )


def combine_points(
    points: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    shape_weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The served point forecast ``[..., slots]`` from the members' points (each set of weights sums to 1).

    ``shape_weights`` None: the weighted sum of the points. Otherwise ``weights``
    combine the members' daily levels and ``shape_weights`` their intraday shapes
    (:func:`level_and_shape`). The weight of the key :data:`MEDIAN` goes to the
    element-wise median of every member's level (shape, point), whatever its own weight.
    """
    arrays = {n: np.asarray(p, dtype=float) for n, p in points.items()}
    if shape_weights is None:
        return _weighted(arrays, weights)
    parts = {n: level_and_shape(p) for n, p in arrays.items()}
    level = _weighted({n: lv for n, (lv, _) in parts.items()}, weights)
    return level + _weighted({n: sh for n, (_, sh) in parts.items()}, shape_weights)


def _weighted(arrays: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    terms = {n: a for n, a in arrays.items() if weights.get(n, 0.0) > 0}
    if weights.get(MEDIAN, 0.0) > 0:
        terms[MEDIAN] = np.median(np.stack(list(arrays.values())), axis=0)
    total = sum(weights[n] for n in terms)
    return sum((weights[n] / total) * terms[n] for n in terms)  # type: ignore[return-value]
