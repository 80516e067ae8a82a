"""Tree models on the lag design (boosted GBM, extra-trees), one model for every slot of the day.

A day's wide design row is unfolded into one row per delivery slot: the slot
and weekday (categorical), day flags (holidays, season), the slot's own lagged
prices and exogenous forecasts, and day-level context (D-1's mean, min, max and
last price, the exogenous forecasts' daily mean, range and change from D-1,
their neighbouring slots). Prices enter relative to D-1's mean and the target
is the price minus that level: trees cannot extrapolate a level they have not
seen, but they can learn a shape relative to it.

Where the exogenous series include a load forecast and renewable-infeed
forecasts, the residual load (load minus wind and solar) is added as one more
series: the merit order prices residual load, and an axis-aligned tree can only
approximate a difference of two columns with many splits (research/RESULTS.md). A linear model (LEAR) or a dense network
gets the difference for free, so only the trees need it.

Two wide layouts are read: the epftoolbox lag design of the backtests
(:func:`tasks.forecasting.design.build_design`, :func:`slot_rows`) and the
named-column rows of the production models (``tasks.forecasting.served_model.Design``,
:class:`ColumnLayout`, :func:`column_slot_rows`).

Why trees: they rank the hours of a day differently from the linear
LEAR and the DNN (fitted on squared error, they estimate the mean the
storage dispatch needs), which makes the ensemble's intraday order — what a
battery earns on — more accurate (research/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from tasks import features
from tasks.forecasting import design
from tasks.forecasting.lear import AsinhScaler

N_PRICE_BLOCKS = len(design.PRICE_LAGS)
N_EXOG_BLOCKS = len(design.EXOG_LAGS)
N_DAY_COLUMNS = 10  # tasks.features.DAY_COLUMNS: 7 weekday dummies, is_holiday, season sin/cos


@dataclass(frozen=True)
class Exogenous:
    """One exogenous series of a block of days: D's values, D-1's (if known) and other lags, ``[n, slots]``."""

    today: np.ndarray
    d1: np.ndarray | None
    lags: tuple[np.ndarray, ...]  # every lag incl. D-1, in the order they become columns


#: Name fragments (lower case) of renewable-infeed forecasts; a series named with "load" is the load.
RENEWABLE_KEYWORDS = ("wind", "solar", "pv", "renewable")
#: ...unless the name also says it is weather, not infeed (production's ``wind_speed_ms``).
WEATHER_KEYWORDS = ("speed", "temperature", "irradiance", "ghi")


@dataclass(frozen=True)
class ResidualLoad:
    """Positions, among the exogenous series, of the load forecast and the renewable forecasts it is net of."""

    load: int
    renewables: tuple[int, ...]

    def of(self, exog: Sequence[Exogenous]) -> Exogenous:
        """The residual-load series of ``exog``: today, D-1 and the lags every part has.

        The layouts here give every series the same lags in the same order, so lags pair by position.
        """

        def net(parts: Sequence[np.ndarray]) -> np.ndarray:
            return parts[0] - np.sum(parts[1:], axis=0)

        series = [exog[self.load], *(exog[k] for k in self.renewables)]
        d1s = [x.d1 for x in series]
        n_lags = min(len(x.lags) for x in series)
        return Exogenous(
            today=net([x.today for x in series]),
            d1=None if any(d is None for d in d1s) else net(d1s),  # type: ignore[arg-type]
            lags=tuple(net([x.lags[k] for x in series]) for k in range(n_lags)),
        )


def residual_loads_of(names: Sequence[str]) -> tuple[ResidualLoad, ...]:
    """Which of the series ``names`` form residual loads: one per market with a load and a renewable forecast.

    DE's epftoolbox file ("Ampirion Load Forecast", "PV+Wind Forecast") and the
    production features (``load_mw``, ``wind_mw``, ``solar_mw``) have one; BE's
    (French generation and load forecasts) has none: total generation is not
    renewable infeed. A load is netted only with renewables of its own market:
    a neighbour's series (``"DE: PV+Wind Forecast"``, production's ``"DE_LU: wind_mw"``)
    pair among themselves. The market's own residual load comes first.
    """
    groups: dict[str, list[int]] = {}
    for k, n in enumerate(names):
        groups.setdefault(features.neighbour_of(n) or "", []).append(k)
    found = []
    for market in sorted(groups, key=bool):  # the own market ("") first
        lower = {k: names[k].lower() for k in groups[market]}
        renewables = tuple(
            k
            for k, n in lower.items()
            if any(w in n for w in RENEWABLE_KEYWORDS) and not any(w in n for w in WEATHER_KEYWORDS)
        )
        loads = [k for k, n in lower.items() if "load" in n and k not in renewables]
        if loads and renewables:
            found.append(ResidualLoad(loads[0], renewables))
    return tuple(found)


def _unfold(
    prices: np.ndarray, exog: Sequence[Exogenous], weekday: np.ndarray, day_flags: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot rows from lagged prices ``[n, k, slots]`` (D-1 first, the longest lag last).

    Columns 0 and 1 are the slot and the weekday (categorical); the level is D-1's mean.
    """
    n, _, slots = prices.shape
    day = np.repeat(np.arange(n), slots)
    slot = np.tile(np.arange(slots), n)
    level = prices[:, 0].mean(axis=1)
    lvl = level[day]
    cols: list[np.ndarray] = [slot.astype(float), weekday[day].astype(float)]
    cols.extend(day_flags[day, k] for k in range(day_flags.shape[1]))
    cols.extend(prices[day, k, slot] - lvl for k in range(prices.shape[1]))
    d1 = prices[:, 0]
    cols.extend([d1.min(axis=1)[day] - lvl, d1.max(axis=1)[day] - lvl, d1[day, -1] - lvl])
    cols.extend([prices[:, -1].mean(axis=1)[day] - lvl, lvl])
    before, after = np.clip(slot - 1, 0, slots - 1), np.clip(slot + 1, 0, slots - 1)
    for series in exog:
        today = series.today
        mean_today = today.mean(axis=1)[day]
        cols.append(today[day, slot])
        cols.extend(lag[day, slot] for lag in series.lags)
        cols.extend([mean_today, today[day, slot] - mean_today])
        if series.d1 is not None:
            cols.append(mean_today - series.d1.mean(axis=1)[day])
        cols.extend([today[day, before], today[day, after], today.max(axis=1)[day], today.min(axis=1)[day]])
    return np.column_stack(cols), lvl


def _layout(n_features: int, slots: int) -> tuple[int, bool]:
    """(exogenous series, holiday flags present) of a wide design row of ``n_features`` columns."""
    for holidays in (False, True):
        exog_columns = n_features - design.n_features(slots, 0, holidays)
        n_exog, rest = divmod(exog_columns, slots * N_EXOG_BLOCKS)
        if exog_columns >= 0 and rest == 0:
            return n_exog, holidays
    raise ValueError(f"{n_features} columns are not a lag design of {slots} slots")


def slot_rows(
    wide: np.ndarray, slots: int, residual_loads: Sequence[ResidualLoad] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot rows ``[n·slots, f]`` of the epftoolbox lag design and each row's level (D-1's mean).

    ``residual_loads`` (positions of the design's exogenous series) add residual loads as series.
    """
    wide = np.asarray(wide, dtype=float)
    n_exog, has_holidays = _layout(wide.shape[1], slots)
    n = wide.shape[0]
    width = slots * (N_PRICE_BLOCKS + n_exog * N_EXOG_BLOCKS)
    blocks = wide[:, :width].reshape(n, -1, slots)
    tail = wide[:, width:]
    exog = []
    for k in range(n_exog):
        ex = blocks[:, N_PRICE_BLOCKS + k * N_EXOG_BLOCKS : N_PRICE_BLOCKS + (k + 1) * N_EXOG_BLOCKS]
        exog.append(Exogenous(today=ex[:, 0], d1=ex[:, 1], lags=(ex[:, 1], ex[:, 2])))
    exog.extend([parts.of(exog) for parts in residual_loads])
    flags = tail[:, 7 : 7 + len(design.HOLIDAY_LAGS)] if has_holidays else np.zeros((n, 0))
    return _unfold(blocks[:, :N_PRICE_BLOCKS], exog, tail[:, :7].argmax(axis=1), flags)


@dataclass(frozen=True)
class ColumnLayout:
    """Wide rows of the production design: slot-major named columns, then the day columns.

    ``price_lag<k>`` columns are the lagged prices; ``<name>_lag<k>`` the lags
    of series ``<name>``; other columns are series known for D itself (TSO
    forecasts, weather).
    """

    columns: tuple[str, ...]
    slots: int

    @property
    def series(self) -> tuple[str, ...]:
        """Columns of series known for D itself (not lags), in column order."""
        return tuple(c for c in self.columns if not c.startswith("price_lag") and "_lag" not in c)

    def __post_init__(self) -> None:
        if not any(c.startswith("price_lag") for c in self.columns):
            raise ValueError(f"no price_lag<k> column among {list(self.columns)}")


def _lag_of(column: str, prefix: str) -> int | None:
    tail = column.removeprefix(prefix)
    return int(tail) if tail != column and tail.isdigit() else None


def column_slot_rows(
    wide: np.ndarray, layout: ColumnLayout, residual_loads: Sequence[ResidualLoad] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot rows ``[n·slots, f]`` of production design rows and each row's level (D-1's mean).

    ``residual_loads`` (positions among ``layout.series``) add residual loads as series.
    """
    wide = np.asarray(wide, dtype=float)
    n, n_col, slots = wide.shape[0], len(layout.columns), layout.slots
    if wide.shape[1] != slots * n_col + N_DAY_COLUMNS:
        raise ValueError(
            f"{wide.shape[1]} columns are not {slots} slots × {n_col} columns + {N_DAY_COLUMNS} day columns"
        )
    grid = wide[:, : slots * n_col].reshape(n, slots, n_col)
    index = {c: i for i, c in enumerate(layout.columns)}
    price_lags = sorted((lag, c) for c in layout.columns if (lag := _lag_of(c, "price_lag")) is not None)
    prices = np.stack([grid[:, :, index[c]] for _, c in price_lags], axis=1)
    exog = []
    for column in layout.series:
        lags = sorted((lag, c) for c in layout.columns if (lag := _lag_of(c, f"{column}_lag")) is not None)
        lagged = {lag: grid[:, :, index[c]] for lag, c in lags}
        exog.append(Exogenous(today=grid[:, :, index[column]], d1=lagged.get(1), lags=tuple(lagged.values())))
    exog.extend([parts.of(exog) for parts in residual_loads])
    day = wide[:, slots * n_col :]
    return _unfold(prices, exog, day[:, :7].argmax(axis=1), day[:, 7:])


#: How a tree member's targets are transformed before the fit (``none`` or ``asinh``).
TargetTransform = Literal["none", "asinh"]
TARGET_TRANSFORMS: tuple[str, ...] = get_args(TargetTransform)


class AsinhTarget:
    """A regressor fitted on ``asinh((y - median) / MAD)`` of its target; predictions come back in price units.

    The median-asinh transform the epftoolbox LEAR and DNN use for spiky prices
    (:class:`~tasks.forecasting.lear.AsinhScaler`, here with the plain MAD as
    scale, the variant measured): a few scarcity hours at hundreds of EUR/MWh no
    longer dominate the squared error and take the splits that the ordinary
    days' hours need. The back transform of a fit in asinh space estimates
    something close to the median, not the mean (research/RESULTS.md).
    """

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor
        self.scaler_ = AsinhScaler(mad_factor=1.0)

    def fit(self, rows: np.ndarray, target: np.ndarray) -> AsinhTarget:
        column = np.asarray(target, dtype=float)[:, None]
        self.regressor.fit(rows, self.scaler_.fit(column).transform(column)[:, 0])
        return self

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.scaler_.inverse(np.asarray(self.regressor.predict(rows))[:, None])[:, 0]


class SlotTreeModel:
    """Day-ahead tree model ``fit(X[n, f], Y[n, s])`` / ``predict(X) -> [n, s]`` on wide design rows.

    Subclasses choose the scikit-learn regressor; the rows, the level and the
    window are shared. The last ``calibration_window_days`` rows are used (all
    if fewer). ``layout`` None reads the epftoolbox lag design, a
    :class:`ColumnLayout` the production design. ``residual_load`` adds load
    minus renewables as a series where the series have them: named by the
    layout, or for the lag design by ``exog_names`` (its exogenous columns).

    ``intraday_profile`` fits a second regressor of the same kind on the day's
    profile (price minus the day's own mean) and takes the forecast's shape from
    it, its daily level from the first: a battery's profit depends on the order
    of the hours, and the level changes between days, which dominate the squared
    error of the first target, no longer take the shape model's splits
    (research/RESULTS.md).

    ``target_transform="asinh"`` fits every regressor on the median-asinh
    transform of its target (:class:`AsinhTarget`).
    """

    # Class-level defaults: members pickled before these options existed lack the attributes.
    residual_load: bool = False
    exog_names: tuple[str, ...] = ()
    intraday_profile: bool = False
    profile_model_: object | None = None
    target_transform: TargetTransform = "none"

    def __init__(
        self,
        calibration_window_days: int | None,
        layout: ColumnLayout | None,
        *,
        residual_load: bool = False,
        exog_names: Sequence[str] = (),
        intraday_profile: bool = False,
        target_transform: TargetTransform = "none",
    ) -> None:
        if target_transform not in TARGET_TRANSFORMS:
            raise ValueError(f"target_transform must be one of {TARGET_TRANSFORMS}, got {target_transform!r}")
        self.calibration_window_days = calibration_window_days
        self.layout = layout
        self.residual_load = residual_load
        self.exog_names = tuple(exog_names)
        self.intraday_profile = intraday_profile
        self.target_transform = target_transform
        self.params: dict[str, object] = {}
        self.slots_: int | None = None
        self.model_: object | None = None
        self.profile_model_: object | None = None

    def _estimator(self, slots: int, *, level_only: bool = False) -> object:
        """A fresh regressor; ``level_only``: the fit only gives the daily level (the profile fit gives the shape)."""
        raise NotImplementedError

    def fit(self, X: np.ndarray, Y: np.ndarray) -> SlotTreeModel:  # noqa: N803 - X/Y as in the model literature
        X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)  # noqa: N806
        if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"X [n, f] and Y [n, s] with the same n expected, got {X.shape}, {Y.shape}")
        if self.calibration_window_days is not None:
            X, Y = X[-self.calibration_window_days :], Y[-self.calibration_window_days :]  # noqa: N806
        if self.layout is not None and self.layout.slots != Y.shape[1]:
            raise ValueError(f"targets have {Y.shape[1]} slots, the layout {self.layout.slots}")
        self.slots_ = Y.shape[1]
        rows, level = self._rows(X)
        self.model_ = self._fitted(rows, Y.reshape(-1) - level, level_only=self.intraday_profile)
        self.profile_model_ = None
        if self.intraday_profile:
            self.profile_model_ = self._fitted(rows, (Y - Y.mean(axis=1, keepdims=True)).reshape(-1))
        return self

    def _fitted(self, rows: np.ndarray, target: np.ndarray, *, level_only: bool = False) -> object:
        """A regressor fitted to ``target``, then set to predict on one thread.

        A forest fitted on several threads is the same forest (each tree's seed is
        drawn before the threads start), but its parallel ``predict`` adds the trees
        up in the order the threads finish, so the last bits of a forecast would
        differ between re-runs of a day. One thread sums them in tree order.
        """
        assert self.slots_ is not None
        regressor = self._estimator(self.slots_, level_only=level_only)
        model = AsinhTarget(regressor) if self.target_transform == "asinh" else regressor
        model.fit(rows, target)  # type: ignore[attr-defined]
        if getattr(regressor, "n_jobs", 1) not in (None, 1):
            regressor.set_params(n_jobs=1)  # type: ignore[attr-defined]
        return model

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if self.model_ is None or self.slots_ is None:
            raise RuntimeError(f"{type(self).__name__}.predict called before fit")
        rows, level = self._rows(X)
        out = np.asarray(self.model_.predict(rows) + level).reshape(-1, self.slots_)  # type: ignore[attr-defined]
        if self.profile_model_ is None:
            return out
        shape = np.asarray(self.profile_model_.predict(rows)).reshape(-1, self.slots_)  # type: ignore[attr-defined]
        return out.mean(axis=1, keepdims=True) + shape - shape.mean(axis=1, keepdims=True)

    def _rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        assert self.slots_ is not None
        if self.layout is None:
            return slot_rows(X, self.slots_, self._residual_parts())
        return column_slot_rows(X, self.layout, self._residual_parts())

    def _residual_parts(self) -> tuple[ResidualLoad, ...]:
        """Where the residual loads come from, if asked for: the layout's series or the lag design's names."""
        if not self.residual_load:
            return ()
        return residual_loads_of(self.layout.series if self.layout is not None else self.exog_names)


class GBM(SlotTreeModel):
    """Gradient-boosted trees: ``HistGradientBoostingRegressor`` with squared error.

    Deterministic for a given ``seed`` (it draws the early-stopping hold-out).
    """

    def __init__(
        self,
        calibration_window_days: int | None = 1092,
        *,
        max_iter: int = 400,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        seed: int = 0,
        layout: ColumnLayout | None = None,
        **member_options: Any,  # residual_load, exog_names, intraday_profile, target_transform: see SlotTreeModel
    ) -> None:
        super().__init__(calibration_window_days, layout, **member_options)
        self.params = {
            "max_iter": max_iter,
            "learning_rate": learning_rate,
            "max_leaf_nodes": max_leaf_nodes,
            "min_samples_leaf": min_samples_leaf,
            "l2_regularization": l2_regularization,
            # Stops when 10 % of the rows, held out at random, no longer improve for 10 rounds.
            "early_stopping": True,
            "random_state": seed,
        }

    def _estimator(self, slots: int, *, level_only: bool = False) -> object:  # noqa: ARG002 - same trees at any resolution, for either fit
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(loss="squared_error", categorical_features=[0, 1], **self.params)


class ExtraTrees(SlotTreeModel):
    """Extremely randomised trees (``ExtraTreesRegressor``), squared error: the ``forest`` member.

    Averaged deep trees with random split points: a different bias from the
    boosted GBM, which makes it worth a seat in the ensemble (research/RESULTS.md). ``min_samples_leaf_per_hour`` is scaled by the slots
    per hour, so 15-minute rows grow trees of the same depth (and size) as hourly
    ones. Deterministic for a given ``seed`` at any ``n_jobs``: the threads fit the
    trees, and prediction sums them on one thread (``_fitted``).

    ``level_estimators`` (None: ``n_estimators``) sizes the first fit when the
    intraday-profile fit gives the shape: the forecast then keeps only that fit's
    daily mean, an average over the day's slots that needs fewer trees, so the
    default grows fewer trees than a forest that must give the shape too.

    ``subhourly_max_samples`` (None: all rows) grows each tree of a sub-hourly
    fit (15-minute MTUs: four nearly alike rows per hour) on a bootstrap sample
    of that fraction of the rows. 0.5 cut the 15-minute forest's fit by ~65 %
    and lowered its error on the simulator (docs/models.md, "Forest cost at
    15-minute MTUs"). Hourly fits always use every row: the setting the
    backtests and the replays on real (hourly) history measured.
    """

    # Class-level defaults: members pickled before these options existed lack the attributes.
    level_estimators: int | None = None
    subhourly_max_samples: float | None = None

    def __init__(
        self,
        calibration_window_days: int | None = 1092,
        *,
        n_estimators: int = 200,
        level_estimators: int | None = None,
        min_samples_leaf_per_hour: int = 5,
        max_features: float = 0.5,
        subhourly_max_samples: float | None = None,
        n_jobs: int = 1,
        seed: int = 0,
        layout: ColumnLayout | None = None,
        **member_options: Any,  # residual_load, exog_names, intraday_profile, target_transform: see SlotTreeModel
    ) -> None:
        super().__init__(calibration_window_days, layout, **member_options)
        if level_estimators is not None and level_estimators < 1:
            raise ValueError(
                f"level_estimators must be a positive number of trees or None, got {level_estimators}"
            )
        self.level_estimators = level_estimators
        self.min_samples_leaf_per_hour = min_samples_leaf_per_hour
        if subhourly_max_samples is not None and not 0 < subhourly_max_samples <= 1:
            raise ValueError(f"subhourly_max_samples must be in (0, 1] or None, got {subhourly_max_samples}")
        self.subhourly_max_samples = subhourly_max_samples
        self.params = {
            "n_estimators": n_estimators,
            "max_features": max_features,
            "n_jobs": n_jobs,
            "random_state": seed,
        }

    def _estimator(self, slots: int, *, level_only: bool = False) -> object:
        from sklearn.ensemble import ExtraTreesRegressor

        per_hour = max(1, slots // 24)
        params = dict(self.params)
        if level_only and self.level_estimators is not None:
            params["n_estimators"] = self.level_estimators
        if self.subhourly_max_samples is not None and per_hour > 1:
            params.update(bootstrap=True, max_samples=self.subhourly_max_samples)
        return ExtraTreesRegressor(min_samples_leaf=self.min_samples_leaf_per_hour * per_hour, **params)
