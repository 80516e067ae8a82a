"""LEAR: per-slot LASSO on asinh-transformed data, as the epftoolbox benchmark computes it.

For each delivery slot a ``LassoLarsIC`` (AIC) picks the penalty, then a
plain ``Lasso`` with that penalty is refit (the published procedure). The
inputs (except 0/1 dummy columns) and targets are scaled by median and MAD
and passed through ``asinh``, which tames price spikes. The noise variance
is given as ``var(y)`` as scikit-learn < 1.1 estimated it, so windows with
fewer days than features (56/84-day windows) still work.
"""

from __future__ import annotations

import warnings

import numpy as np

MAD_TO_STD = 1.4826  # scipy's scale="normal" for the median absolute deviation


class AsinhScaler:
    """Column-wise ``asinh((x - median) / (mad_factor · MAD))``, the epftoolbox "Invariant" scaler.

    ``mad_factor`` 1.4826 (default) scales like a standard deviation, as the
    epftoolbox does; the tree members' targets use 1 (``gbm.AsinhTarget``).
    """

    mad_factor: float = MAD_TO_STD  # scalers pickled before the option existed

    def __init__(self, mad_factor: float = MAD_TO_STD) -> None:
        self.mad_factor = mad_factor
        self.center_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> AsinhScaler:
        center = np.median(x, axis=0)
        scale = np.median(np.abs(x - center), axis=0) * self.mad_factor
        fallback = np.std(x, axis=0)
        scale = np.where(scale > 0, scale, np.where(fallback > 0, fallback, 1.0))
        self.center_, self.scale_ = center, scale
        return self

    def params(self) -> tuple[np.ndarray, np.ndarray]:
        if self.center_ is None or self.scale_ is None:
            raise RuntimeError("AsinhScaler used before fit")
        return self.center_, self.scale_

    def transform(self, x: np.ndarray) -> np.ndarray:
        center, scale = self.params()
        return np.arcsinh((x - center) / scale)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        center, scale = self.params()
        return np.sinh(z) * scale + center


class LEAR:
    """Per-slot LASSO day-ahead model; ``fit(X[n, f], Y[n, s])`` uses the last ``calibration_window_days`` rows (or all, if fewer)."""

    def __init__(
        self, calibration_window_days: int | None = None, max_iter: int = 2500, penalty: str = "published"
    ) -> None:
        if penalty not in ("plain", "published"):
            raise ValueError(f"penalty must be 'plain' or 'published', got {penalty!r}")
        self.calibration_window_days = calibration_window_days
        self.max_iter = max_iter
        self.penalty = penalty
        self.coef_: np.ndarray | None = None  # [s, f] in scaled space
        self.intercept_: np.ndarray | None = None  # [s]
        self.alphas_: np.ndarray | None = None
        self._dummy: np.ndarray | None = None
        self._xs = AsinhScaler()
        self._ys = AsinhScaler()

    def _scale_x(self, x: np.ndarray) -> np.ndarray:
        assert self._dummy is not None
        out = x.astype(float, copy=True)
        out[:, ~self._dummy] = self._xs.transform(x[:, ~self._dummy])
        return out

    def _window(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """``X``, ``Y`` as float matrices, their last ``calibration_window_days`` rows."""
        X = np.asarray(X, dtype=float)  # noqa: N806
        Y = np.asarray(Y, dtype=float)  # noqa: N806
        if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"X [n, f] and Y [n, s] with the same n expected, got {X.shape}, {Y.shape}")
        if self.calibration_window_days is not None:
            return X[-self.calibration_window_days :], Y[-self.calibration_window_days :]
        return X, Y

    def _fit_scalers(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """Fit the input and target scalers on the window; the scaled inputs and targets."""
        assert self._dummy is not None
        self._xs.fit(X[:, ~self._dummy])
        self._ys.fit(Y)
        return self._scale_x(X), self._ys.transform(Y)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> LEAR:  # noqa: N803 - X/Y as in the model literature
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import Lasso, LassoLarsIC

        X, Y = self._window(X, Y)  # noqa: N806
        self._dummy = np.all((X == 0.0) | (X == 1.0), axis=0)
        xs, ys = self._fit_scalers(X, Y)
        xs_ic = xs
        if self.penalty == "published":
            # scikit-learn < 1.1's LassoLarsIC normalised the (centred) columns to unit L2
            # norm before the LARS path; the published procedure then refits Lasso with
            # that alpha on the unnormalised inputs, i.e. a weaker penalty.
            centred = xs - xs.mean(axis=0)
            norms = np.sqrt((centred**2).sum(axis=0))
            xs_ic = centred / np.where(norms > 0, norms, 1.0)
        n_slots = Y.shape[1]
        # With more days than features, coordinate descent on the Gram matrix reaches the
        # same solution (to 1e-10 on DE's 1092-day window) in a fraction of the time.
        gram = xs.shape[0] > xs.shape[1]
        coef = np.zeros((n_slots, X.shape[1]))
        intercept = np.zeros(n_slots)
        alphas = np.zeros(n_slots)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for s in range(n_slots):
                y = ys[:, s]
                var = float(np.var(y))
                if var == 0.0:
                    intercept[s] = float(y[0])
                    continue
                ic = LassoLarsIC(criterion="aic", max_iter=self.max_iter, noise_variance=var)
                alpha = float(ic.fit(xs_ic, y).alpha_)
                model = Lasso(alpha=alpha, max_iter=self.max_iter, precompute=gram).fit(xs, y)
                coef[s], intercept[s], alphas[s] = model.coef_, model.intercept_, alpha
        self.coef_, self.intercept_, self.alphas_ = coef, intercept, alphas
        return self

    def refit(self, X: np.ndarray, Y: np.ndarray) -> LEAR:  # noqa: N803
        """Re-fit on a newer window with the penalties the last :meth:`fit` chose (no LARS path).

        Daily re-calibration between weekly penalty searches: the scalers follow the
        new window and each slot's ``Lasso`` starts from its current coefficients.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import Lasso

        if self.coef_ is None or self.intercept_ is None or self.alphas_ is None or self._dummy is None:
            raise RuntimeError("LEAR.refit called before fit")
        xs, ys = self._fit_scalers(*self._window(X, Y))
        gram = xs.shape[0] > xs.shape[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)  # Lasso's note on alpha 0 (AIC chose no penalty)
            for s in range(ys.shape[1]):
                if float(np.var(ys[:, s])) == 0.0:  # a constant slot, as fit() treats it
                    self.coef_[s], self.intercept_[s] = 0.0, float(ys[0, s])
                    continue
                model = Lasso(alpha=self.alphas_[s], max_iter=self.max_iter, precompute=gram, warm_start=True)
                model.coef_ = self.coef_[s].copy()
                model.fit(xs, ys[:, s])
                self.coef_[s], self.intercept_[s] = model.coef_, model.intercept_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if self.coef_ is None or self.intercept_ is None:
            raise RuntimeError("LEAR.predict called before fit")
        z = self._scale_x(np.asarray(X, dtype=float)) @ self.coef_.T + self.intercept_
        return self._ys.inverse(z)
