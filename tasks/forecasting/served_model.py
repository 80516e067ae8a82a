"""The registered price model: a pyfunc ensemble and the feature design it reads.

The registered model is a pyfunc (:class:`DayAheadPriceModel`) wrapping the
Keras network, the point members of the ensemble (LEAR, GBM:
:mod:`tasks.forecasting.price_ensemble`) and the feature-to-slot mapping of
:mod:`tasks.features` (:class:`Design`): its ``predict`` takes a delivery
day's feature rows and returns the price quantiles per row. Serving therefore
cannot drift from training (the same code flattens the day), and DST days map
back to their 92/100 rows inside the model. The plain Keras model is logged
inside it (``artifacts/model/dnn/model.keras``) for anyone who wants raw
tensors; the members are in ``members.joblib`` and named in ``ensemble.json``.

MLflow pickles the pyfunc class by reference to this module's path: a model
logged under another module path has to be re-trained to load. Importing this
module imports mlflow, numpy and pandas; callers import it inside functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from tasks.errors import MissingInputError, ModelNotFoundError

DESIGN_FILE = "design.json"
LOAD_DIR = "load_dnn"  # the load network inside the model directory (absent in price-only models)
LOAD_META_FILE = "load.json"
ENSEMBLE_FILE = "ensemble.json"  # the point members and how they combine (absent: the DNN alone)
MEMBERS_FILE = "members.joblib"
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    "tensorflow-cpu==2.16.2",
    f"scikit-learn=={version('scikit-learn')}",  # the members are pickled: the same version loads them
    "pandas",
    "numpy",
]


@dataclass
class Design:
    """How a day's feature rows become one model input row (stored with the model)."""

    columns: list[str]
    slots: int
    quantiles: list[float]
    fill: dict[str, float]  # training means for optional inputs (weather) missing at serving time
    price_floor: float
    price_cap: float
    # Columns from coupled zones (among ``columns``): only members configured with
    # ``neighbour_series`` read them; the DNNs never do (models saved before: none).
    neighbour_columns: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def own_index(self) -> np.ndarray:
        """Positions, in a :meth:`matrix` row, of the zone's own columns and the day columns."""
        from tasks.features import DAY_COLUMNS

        n_col = len(self.columns)
        own = [self.columns.index(c) for c in self.own_columns]
        grid = [s * n_col + j for s in range(self.slots) for j in own]
        return np.array([*grid, *range(self.slots * n_col, self.slots * n_col + len(DAY_COLUMNS))], dtype=int)

    @property
    def own_columns(self) -> list[str]:
        return [c for c in self.columns if c not in self.neighbour_columns]

    def own(self, x: np.ndarray) -> np.ndarray:
        """Rows of :meth:`matrix` without the neighbour columns (the DNNs' and own-input members' view).

        C-ordered like :meth:`matrix` (a column selection is Fortran-ordered): numpy's
        reductions sum in memory order, and the DNN's input scaling must come out
        bit-identical to the same zone's model without neighbours.
        """
        return np.ascontiguousarray(x[:, self.own_index]) if self.neighbour_columns else x

    def matrix(self, frames: list[pd.DataFrame]) -> np.ndarray:
        """``X[n_days, f]`` from feature frames (same code at training and serving)."""
        from tasks.features import day_vector

        rows = []
        for frame in frames:
            missing = [c for c in self.columns if c not in frame]
            if missing:
                raise MissingInputError(
                    f"the feature rows lack columns the model was trained with: {missing}; rebuild the "
                    "features with the zones and neighbour_zones of training (python -m tasks.features)"
                )
            f = frame.copy()
            for column, value in self.fill.items():
                if column in f:
                    f[column] = f[column].fillna(value)
            rows.append(day_vector(f, self.columns, self.slots))
        x = np.vstack(rows)
        if not np.isfinite(x).all():
            raise ValueError("feature rows contain NaN after filling optional inputs")
        return x


@dataclass(frozen=True)
class PriceForecast:
    """A forecast and the parts it was combined from, for scoring each part without predicting twice."""

    quantiles: np.ndarray  # [n_days, slots, q], clipped to the price limits: what the model serves
    dnn: np.ndarray  # the DNN's own quantiles, unclipped
    members: dict[str, np.ndarray]  # each point member's [n_days, slots], unclipped


class DayAheadPriceModel(PythonModel):
    """Pyfunc: a day's feature rows in, quantile prices (and loads) per row out.

    With point members the DNN quantiles are re-centred on the weighted mean of the
    members (the DNN median among them when ``dnn_in_point``:
    :func:`tasks.forecasting.price_ensemble.combine_quantiles`); models saved
    without ``ensemble.json`` forecast with the DNN alone.
    Prices are clipped to the SDAC limits. A model trained with a load network
    also returns ``load_qNN`` (MW, non-negative) and carries ``load_meta``
    (whether its median beat the TSO forecast on the evaluation window).
    """

    def __init__(self) -> None:
        self.design: Design | None = None
        self.dnn: Any = None
        self.load_dnn: Any = None
        self.load_meta: dict[str, Any] | None = None
        self.members: dict[str, Any] = {}  # name -> point model, predict(X[n, f]) -> [n, slots]
        self.dnn_in_point = True  # the DNN median is one of the point members
        self.weights: dict[str, float] | None = None  # by member (None: equal weights)
        self.shape_weights: dict[str, float] | None = None  # of the intraday shape (None: ``weights``)
        self.band_scale = 1.0  # the band's half-widths times this (definition.calibrate_band)
        # ensemble.daily of the definition (step 5, applied by the forecast stage) and the
        # delivery day the model was trained for; None: forecast as fitted.
        self.daily: dict[str, Any] | None = None
        self.fitted_for: str | None = None

    def load_context(self, context: Any) -> None:
        from tasks.forecasting.dnn import QuantileDNN, load_dnn

        root = Path(context.artifacts["model_dir"])
        self.design = Design(**json.loads((root / DESIGN_FILE).read_text()))
        self.dnn = load_dnn(root / "dnn")
        if (root / LOAD_META_FILE).is_file():
            self.load_meta = json.loads((root / LOAD_META_FILE).read_text())
            self.load_dnn = QuantileDNN.load(root / LOAD_DIR)
        if (root / ENSEMBLE_FILE).is_file():
            import joblib

            doc = json.loads((root / ENSEMBLE_FILE).read_text())
            names = doc["members"]
            if any(name != "dnn" for name in names):
                stored = joblib.load(root / MEMBERS_FILE)
                self.members = {name: stored[name] for name in names if name != "dnn"}
            self.dnn_in_point = "dnn" in names
            self.weights = doc.get("weights")  # models saved before weights: equal weights
            self.shape_weights = doc.get("shape_weights")  # saved before the level/shape split: None
            self.band_scale = float(doc.get("band_scale", 1.0))  # saved before the band's calibration: 1
            self.daily = doc.get("daily")  # saved before the daily step: None
            self.fitted_for = doc.get("fitted_for")

    def attach(
        self,
        design: Design,
        dnn: Any,
        *,
        load_dnn: Any = None,
        load_meta: dict[str, Any] | None = None,
        members: dict[str, Any] | None = None,
        dnn_in_point: bool = True,
        weights: dict[str, float] | None = None,
        band_scale: float = 1.0,
        shape_weights: dict[str, float] | None = None,
        daily: dict[str, Any] | None = None,
        fitted_for: str | None = None,
    ) -> DayAheadPriceModel:
        """Use in-process (training) without a round trip through MLflow."""
        self.design, self.dnn = design, dnn
        self.load_dnn, self.load_meta = load_dnn, load_meta
        self.members = dict(members or {})
        self.dnn_in_point = dnn_in_point
        self.weights = dict(weights) if weights else None
        self.shape_weights = dict(shape_weights) if shape_weights else None
        self.band_scale = float(band_scale)
        self.daily = dict(daily) if daily else None
        self.fitted_for = fitted_for
        return self

    def save(self, root: Path) -> None:
        """Write the model directory that :meth:`load_context` reads (``artifacts['model_dir']``)."""
        assert self.design is not None, "attach the models first"
        assert self.dnn is not None, "attach the models first"
        root.mkdir(parents=True, exist_ok=True)
        self.dnn.save(root / "dnn")
        (root / DESIGN_FILE).write_text(json.dumps(self.design.to_json(), indent=2))
        if self.load_dnn is not None:
            self.load_dnn.save(root / LOAD_DIR)
            (root / LOAD_META_FILE).write_text(json.dumps(self.load_meta, indent=2))
        if self.members:
            import joblib

            # Compressed: an extra-trees forest is ~110 MiB raw, ~38 MiB at level 3 (1092 hourly days).
            joblib.dump(self.members, root / MEMBERS_FILE, compress=3)
        if self.members or self.band_scale != 1.0 or self.daily:
            doc = {
                "members": self.member_names,
                "weights": self.weights,
                "shape_weights": self.shape_weights,
                "band_scale": self.band_scale,
                "daily": self.daily,
                "fitted_for": self.fitted_for,
                "point": "weighted mean of the members' point forecasts (the DNN's: its median); "
                "with shape_weights, weights combine each day's level (the mean over its slots) "
                "and shape_weights the deviations from it; the weight of 'median' goes to the "
                "element-wise median over all members; weights null: equal",
                "quantiles": "DNN quantiles shifted by (point - DNN median), then each one's distance "
                "from the point times band_scale",
            }
            (root / ENSEMBLE_FILE).write_text(json.dumps(doc, indent=2))

    @property
    def member_names(self) -> list[str]:
        """The models whose point forecasts are averaged (the DNN always gives the band)."""
        return [*(["dnn"] if self.dnn_in_point or not self.members else []), *self.members]

    @property
    def load_columns(self) -> list[str]:
        assert self.design is not None
        if self.load_dnn is None:
            return []
        return [f"load_q{round(100 * q)}" for q in self.design.quantiles]

    def forecast_load_days(self, frames: list[pd.DataFrame]) -> np.ndarray:
        """``[n_days, slots, q]`` load quantiles (MW) on the slot grid, non-negative and ordered."""
        assert self.design is not None, "load the model first"
        if self.load_dnn is None:
            raise ModelNotFoundError("this model was trained without a load network")
        pred = np.clip(self.load_dnn.predict(self.design.own(self.design.matrix(frames))), 0.0, None)
        return np.maximum.accumulate(pred, axis=-1)

    @property
    def quantile_columns(self) -> list[str]:
        assert self.design is not None
        return [f"price_q{round(100 * q)}" for q in self.design.quantiles]

    def forecast_days(self, frames: list[pd.DataFrame]) -> np.ndarray:
        """``[n_days, slots, q]`` quantile prices on the slot grid, clipped to the price limits."""
        assert self.design is not None, "load the model first"
        assert self.dnn is not None, "load the model first"
        return self.forecast_matrix(self.design.matrix(frames))

    def dnn_quantiles(self, x: np.ndarray) -> np.ndarray:
        """The DNN's own quantiles ``[n_days, slots, q]`` (unclipped) from design rows; it reads the zone's own columns."""
        assert self.design is not None, "load the model first"
        return np.asarray(self.dnn.predict(self.design.own(x)))

    def forecast_matrix(self, x: np.ndarray) -> np.ndarray:
        """:meth:`forecast_days` from design rows ``X[n_days, f]`` (``Design.matrix``)."""
        return self.forecast_parts(x).quantiles

    def forecast_parts(self, x: np.ndarray) -> PriceForecast:
        """:meth:`forecast_matrix` with the DNN's quantiles and each member's point it combined."""
        assert self.design is not None, "load the model first"
        assert self.dnn is not None, "load the model first"
        from tasks.forecasting.metrics import median_index
        from tasks.forecasting.price_ensemble import combine_quantiles

        dnn = self.dnn_quantiles(x)
        members = {name: np.asarray(member.predict(x)) for name, member in self.members.items()}
        pred = combine_quantiles(
            dnn,
            members,
            median_index(self.design.quantiles),
            dnn_in_point=self.dnn_in_point,
            weights=getattr(self, "weights", None),  # pickled before weights existed: equal
            band_scale=getattr(self, "band_scale", 1.0),  # pickled before the band's calibration
            shape_weights=getattr(self, "shape_weights", None),  # pickled before the level/shape split
        )
        return PriceForecast(np.clip(pred, self.design.price_floor, self.design.price_cap), dnn, members)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """One delivery day's feature rows (one per MTU) → one row of quantiles per MTU."""
        del context, params
        frame = pd.DataFrame(model_input).reset_index(drop=True)
        slots = frame["slot"].to_numpy(dtype=int)
        out = pd.DataFrame(self.forecast_days([frame])[0][slots], columns=self.quantile_columns)
        if self.load_dnn is not None:
            load = self.forecast_load_days([frame])[0][slots]
            out[self.load_columns] = load
        return out


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of a feature frame the pyfunc signature declares (no timestamps)."""
    return frame.drop(columns=["timestamp_utc"])
