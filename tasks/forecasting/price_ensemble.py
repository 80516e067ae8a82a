"""The production price ensemble: point members beside the quantile DNN.

The registered price model (``tasks.forecasting.served_model.DayAheadPriceModel``) forecasts
quantiles with the DNN. With point members (LEAR, GBM) its point forecast is
the weighted mean of the members (and of the DNN median, when the DNN is
one of them; weights chosen on validation days by
:mod:`tasks.forecasting.definition`), and every DNN quantile is shifted by the
same amount, so the band keeps the DNN's width and order around the
ensemble's centre; the band is then scaled to its nominal coverage on the
validation days (``band_scale``). The rolling backtest combines its members the same way.

Members read the production design rows (``Design.matrix``): LEAR on
hourly-averaged slot blocks (:func:`coarsen`) of the informative columns, the
GBM unfolded per slot (:class:`tasks.forecasting.gbm.ColumnLayout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def coarsen(x: np.ndarray, *, n_columns: int, slots: int, factor: int) -> np.ndarray:
    """Average the slot blocks of a design matrix over ``factor`` consecutive slots.

    LEAR's inputs at hourly resolution (its 96 per-slot LASSO models still
    predict every quarter-hour): 4x fewer features keep the fit within the
    daily time budget on a year of 15-minute history.
    """
    if factor <= 1:
        return x
    n = x.shape[0]
    blocks = x[:, : slots * n_columns].reshape(n, slots // factor, factor, n_columns).mean(axis=2)
    return np.concatenate([blocks.reshape(n, -1), x[:, slots * n_columns :]], axis=1)


def informative_columns(x: np.ndarray) -> np.ndarray:
    """Indices of non-constant, non-duplicate columns (LARS breaks on exact duplicates)."""
    varying = np.flatnonzero(x.std(axis=0) > 0)
    _, first = np.unique(np.round(x[:, varying], 9), axis=1, return_index=True)
    return np.sort(varying[first])


@dataclass
class DesignLEAR:
    """LEAR on production design rows: hourly inputs (``factor`` slots averaged), informative columns."""

    n_columns: int
    slots: int
    factor: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    keep: np.ndarray | None = None
    model: Any = None

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        return coarsen(
            np.asarray(x, dtype=float), n_columns=self.n_columns, slots=self.slots, factor=self.factor
        )

    def fit(self, X: np.ndarray, Y: np.ndarray) -> DesignLEAR:  # noqa: N803
        from tasks.forecasting.lear import LEAR

        x = self._inputs(X)
        self.keep = informative_columns(x)
        self.model = LEAR(**self.params).fit(x[:, self.keep], Y)
        return self

    def refit(self, X: np.ndarray, Y: np.ndarray) -> DesignLEAR:  # noqa: N803
        """Re-fit on newer rows with the fitted penalties and the same input columns (:meth:`LEAR.refit`)."""
        if self.model is None or self.keep is None:
            raise RuntimeError("DesignLEAR.refit called before fit")
        self.model.refit(self._inputs(X)[:, self.keep], Y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if self.model is None or self.keep is None:
            raise RuntimeError("DesignLEAR.predict called before fit")
        return np.asarray(self.model.predict(self._inputs(X)[:, self.keep]))


@dataclass
class ColumnSubset:
    """A point member that reads only some entries of the design rows (``index`` into ``X``'s columns).

    Members configured without ``neighbour_series`` see the zone's own inputs only
    (docs/models.md, "Neighbouring zones"); the others read the whole row.
    """

    model: Any
    index: np.ndarray

    def fit(self, X: np.ndarray, Y: np.ndarray) -> ColumnSubset:  # noqa: N803 - X/Y as the members
        self.model.fit(self._columns(X), Y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.asarray(self.model.predict(self._columns(X)))

    def refit(self, X: np.ndarray, Y: np.ndarray) -> ColumnSubset:  # noqa: N803
        self.model.refit(self._columns(X), Y)
        return self

    def _columns(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        # C order, as the full rows: the member's fit is then bit-identical to one on the zone's own design.
        return np.ascontiguousarray(X[:, self.index])


def recentre(quantiles: np.ndarray, point: np.ndarray, median_index: int) -> np.ndarray:
    """Shift every quantile ``[n, s, q]`` by ``point − median`` so the median becomes ``point``."""
    shift = np.asarray(point, dtype=float) - quantiles[..., median_index]
    return quantiles + shift[..., None]


def combine_quantiles(
    dnn_quantiles: np.ndarray,
    members: Mapping[str, np.ndarray],
    median_index: int,
    *,
    dnn_in_point: bool = True,
    weights: Mapping[str, float] | None = None,
    band_scale: float = 1.0,
    shape_weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """DNN quantiles ``[n, s, q]`` re-centred on the combined point forecast of the members' ``[n, s]``.

    The DNN median joins the combination (as ``"dnn"``) when ``dnn_in_point``;
    otherwise the DNN only gives the band's shape. ``weights`` by member name
    (:func:`tasks.forecasting.definition.choose_combination`); None: equal
    weights; ``shape_weights``, when given, combine the intraday shapes and ``weights``
    the daily levels (:func:`tasks.forecasting.definition.combine_points`). No members:
    the DNN's quantiles as they are. Then every quantile's
    distance from the centre is multiplied by ``band_scale``
    (:func:`tasks.forecasting.definition.calibrate_band`).
    """
    from tasks.forecasting.definition import combine_points, scale_band

    if members:
        points = {**({"dnn": dnn_quantiles[..., median_index]} if dnn_in_point else {}), **members}
        w = dict(weights) if weights else dict.fromkeys(points, 1.0)
        centred = recentre(dnn_quantiles, combine_points(points, w, shape_weights), median_index)
    else:
        centred = dnn_quantiles
    return scale_band(centred, median_index, band_scale)
