"""Probabilistic day-ahead DNN: one forward pass gives every slot and quantile of the delivery day.

Architecture: raw features → ``Normalization`` (adapted on the training
days, so the saved model takes raw inputs) → dense ReLU layers with dropout →
``slots × quantiles`` outputs in a transformed price space → non-crossing
quantiles (a base plus cumulative softplus increments) → the inverse of the
per-slot ``asinh((y - median) / MAD)`` target transform. The transform is
monotone, so quantiles stay ordered and the pinball loss trained in the
transformed space (robust to price spikes) yields quantiles of the price.

Reproducible: ``keras.utils.set_random_seed`` and TensorFlow op determinism.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.forecasting.lear import AsinhScaler

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"
META_FILE = "dnn.json"
NETWORKS_FILE = "networks.json"  # a DNNEnsemble's directory: one sub-directory per network

_REGISTERED: dict[str, Any] = {}


def _import_tf() -> None:
    """Import TensorFlow once, muting google.api_core's Python-3.11 end-of-life FutureWarning.

    The notice is about the interpreter we are pinned to (TFDV 1.16 needs 3.11), not our code,
    and pytest turns warnings into errors.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import tensorflow as tf  # noqa: F401


def _custom_objects() -> dict[str, Any]:
    """Define (once) and return the serialisable custom layers and losses."""
    if _REGISTERED:
        return _REGISTERED
    _import_tf()
    _REGISTERED.update(_layers())
    _REGISTERED.update(_losses())
    return _REGISTERED


def _layers() -> dict[str, Any]:
    """The network's custom layers, registered with Keras under the package ``dap``."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="dap")
    class MonotoneQuantiles(keras.layers.Layer):
        """[batch, s·q] → [batch, s, q], sorted along q: base + cumulative softplus increments."""

        def __init__(self, slots: int, n_quantiles: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.slots = slots
            self.n_quantiles = n_quantiles

        def call(self, inputs: Any) -> Any:
            x = ops.reshape(inputs, (-1, self.slots, self.n_quantiles))
            if self.n_quantiles == 1:
                return x
            base = x[:, :, :1]
            steps = ops.cumsum(ops.softplus(x[:, :, 1:]), axis=-1)
            return ops.concatenate([base, base + steps], axis=-1)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "slots": self.slots, "n_quantiles": self.n_quantiles}

    @keras.saving.register_keras_serializable(package="dap")
    class Asinh(keras.layers.Layer):
        """Element-wise asinh: squashes the standardised price-spike tails of the inputs."""

        def call(self, inputs: Any) -> Any:
            return ops.arcsinh(inputs)

    @keras.saving.register_keras_serializable(package="dap")
    class InverseAsinh(keras.layers.Layer):
        """z [batch, s, q] → price = median_s + MAD_s · sinh(z); monotone, so order is kept."""

        def __init__(self, center: Sequence[float], scale: Sequence[float], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.center = [float(c) for c in center]
            self.scale = [float(s) for s in scale]

        def call(self, inputs: Any) -> Any:
            c = ops.reshape(ops.convert_to_tensor(self.center, dtype=inputs.dtype), (1, -1, 1))
            s = ops.reshape(ops.convert_to_tensor(self.scale, dtype=inputs.dtype), (1, -1, 1))
            return c + s * ops.sinh(inputs)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "center": self.center, "scale": self.scale}

    return {"MonotoneQuantiles": MonotoneQuantiles, "Asinh": Asinh, "InverseAsinh": InverseAsinh}


def _losses() -> dict[str, Any]:
    """The training losses, registered with Keras under the package ``dap``."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="dap")
    class PinballLoss(keras.losses.Loss):
        """Mean pinball loss over slots and quantiles; y_true [b, s], y_pred [b, s, q]."""

        def __init__(self, quantiles: Sequence[float] = (0.5,), name: str = "pinball", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.quantiles = [float(q) for q in quantiles]

        def call(self, y_true: Any, y_pred: Any) -> Any:
            q = ops.reshape(ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype), (1, 1, -1))
            diff = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred
            return ops.mean(ops.maximum(q * diff, (q - 1.0) * diff), axis=(1, 2))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "quantiles": self.quantiles}

    @keras.saving.register_keras_serializable(package="dap")
    class ShapeLoss(keras.losses.Loss):
        """MAE of the median's intraday profile (each day minus its mean), in units of ``scale``.

        Storage dispatch depends on the order of the hours within a day, not on the
        level: this term spends the network's capacity on the shape. y_true [b, s]
        (prices), y_pred [b, s, q] (prices).
        """

        def __init__(
            self, median_index: int = 0, scale: float = 1.0, name: str = "shape", **kwargs: Any
        ) -> None:
            super().__init__(name=name, **kwargs)
            self.median_index = int(median_index)
            self.scale = float(scale)

        def call(self, y_true: Any, y_pred: Any) -> Any:
            p50 = y_pred[:, :, self.median_index]
            y = ops.cast(y_true, p50.dtype)
            err = (p50 - ops.mean(p50, axis=1, keepdims=True)) - (y - ops.mean(y, axis=1, keepdims=True))
            return ops.mean(ops.abs(err), axis=1) / self.scale

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "median_index": self.median_index, "scale": self.scale}

    return {"PinballLoss": PinballLoss, "ShapeLoss": ShapeLoss}


class QuantileDNN:
    """Keras day-ahead quantile network; ``fit(X[n, f], Y[n, s])``, ``predict(X) -> [n, s, q]``."""

    def __init__(
        self,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        *,
        hidden: Sequence[int] = (256, 128),
        seed: int = 0,
        epochs: int = 300,
        patience: int = 20,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        dropout: float = 0.3,
        l2: float = 1e-4,
        val_fraction: float = 0.2,
        input_asinh: bool = True,
        shape_weight: float = 0.0,
        verbose: int = 0,
    ) -> None:
        qs = [float(q) for q in quantiles]
        if not qs or qs != sorted(qs) or len(set(qs)) != len(qs) or not all(0 < q < 1 for q in qs):
            raise ValueError(f"quantiles must be strictly increasing values in (0, 1), got {quantiles}")
        self.quantiles = tuple(qs)
        self.hidden = tuple(int(h) for h in hidden)
        self.seed = seed
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.l2 = l2
        self.val_fraction = val_fraction
        self.input_asinh = input_asinh
        self.shape_weight = float(shape_weight)  # > 0 adds ShapeLoss on the median (price space)
        self.verbose = verbose
        self.keras_model: keras.Model | None = None
        self.history_: dict[str, list[float]] = {}

    # -- training ---------------------------------------------------------------------------------
    def _build(self, x: np.ndarray, y: np.ndarray) -> tuple[keras.Model, keras.Model]:
        _import_tf()
        import keras

        objs = _custom_objects()
        n_q = len(self.quantiles)
        slots = y.shape[1]
        ys = AsinhScaler().fit(y)
        inputs = keras.Input(shape=(x.shape[1],), name="features")
        norm = keras.layers.Normalization(name="normalise")
        norm.adapt(x.astype("float32"))
        h = norm(inputs)
        if self.input_asinh:
            h = objs["Asinh"](name="asinh")(h)
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        for i, units in enumerate(self.hidden):
            h = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, name=f"dense_{i}")(h)
            if self.dropout:
                h = keras.layers.Dropout(self.dropout, seed=self.seed + i, name=f"dropout_{i}")(h)
        raw = keras.layers.Dense(slots * n_q, name="head")(h)
        z = objs["MonotoneQuantiles"](slots, n_q, name="quantiles_z")(raw)
        core = keras.Model(inputs, z, name="dnn_core")
        center, scale = ys.params()
        price = objs["InverseAsinh"](center.tolist(), scale.tolist(), name="price")(z)
        full = keras.Model(inputs, price, name="dap_quantile_dnn")
        self._ys = ys
        return core, full

    def fit(
        self,
        X: np.ndarray,  # noqa: N803 - X/Y as in the model literature
        Y: np.ndarray,  # noqa: N803
        X_val: np.ndarray | None = None,  # noqa: N803
        Y_val: np.ndarray | None = None,  # noqa: N803
    ) -> QuantileDNN:
        """Train with early stopping; without ``X_val`` a seeded random ``val_fraction`` of days is held out.

        Early stopping watches the validation loss (pinball plus the L2 penalty) and
        keeps the weights of its best epoch; without validation days every epoch runs.
        """
        _import_tf()
        import keras
        import tensorflow as tf

        x = np.asarray(X, dtype="float32")
        y = np.asarray(Y, dtype="float32")
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(f"X [n, f] and Y [n, s] with the same n expected, got {x.shape}, {y.shape}")
        keras.utils.set_random_seed(self.seed)
        tf.config.experimental.enable_op_determinism()
        rng = np.random.default_rng(self.seed)
        if X_val is None or Y_val is None:
            n_val = max(1, round(self.val_fraction * x.shape[0])) if x.shape[0] > 4 else 0
            perm = rng.permutation(x.shape[0])
            val_idx, tr_idx = perm[:n_val], perm[n_val:]
            x_tr, y_tr = x[tr_idx], y[tr_idx]
            val = (x[val_idx], y[val_idx]) if n_val else None
        else:
            x_tr, y_tr = x, y
            val = (np.asarray(X_val, dtype="float32"), np.asarray(Y_val, dtype="float32"))
        core, full = self._build(x_tr, y_tr)
        self.keras_model, self._core = full, core
        trainer = self._trainer_for(core, self.learning_rate)
        train = trainer.arrays(x_tr, y_tr)
        held = trainer.arrays(*val) if val is not None else None
        history: dict[str, list[float]] = {}
        best, best_weights, waited = np.inf, None, 0
        for _ in range(self.epochs):
            for key, value in trainer.epoch(train, rng.permutation(len(x_tr))).items():
                history.setdefault(key, []).append(value)
            if held is None:
                continue
            loss = trainer.loss(held)
            history.setdefault("val_loss", []).append(loss)
            if loss < best:
                best, best_weights, waited = loss, core.get_weights(), 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_weights is not None:
            core.set_weights(best_weights)
        self.history_ = history
        return self

    def fine_tune(
        self,
        X: np.ndarray,  # noqa: N803
        Y: np.ndarray,  # noqa: N803
        *,
        epochs: int = 3,
        learning_rate: float = 1e-4,
    ) -> QuantileDNN:
        """Continue training on recent days (few epochs, small steps), keeping the input and target scaling.

        The daily step between full fits (``ensemble.daily`` of models.json): it
        follows the market's newest days, including those early stopping held out,
        while the normalisation and the target transform stay the full fit's. Works
        on a network fitted in this process and on one read by :meth:`load`; each
        call starts from a fresh Adam (zero moments and step count).
        """
        _import_tf()
        import keras
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # a loaded network: the forecast stage's re-runs agree
        core = self._training_core()
        x = np.asarray(X, dtype="float32")
        y = np.asarray(Y, dtype="float32")
        keras.utils.set_random_seed(self.seed + x.shape[0])
        rng = np.random.default_rng(self.seed + x.shape[0])
        trainer = self._trainer_for(core, learning_rate)
        trainer.restart(learning_rate)
        rows = trainer.arrays(x, y)
        for _ in range(epochs):
            trainer.epoch(rows, rng.permutation(x.shape[0]))
        return self

    def _trainer_for(self, core: keras.Model, learning_rate: float) -> _Trainer:
        """The network's compiled epoch, traced once and re-used by the fit and every fine-tune."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None or trainer.core is not core:
            price = self.keras_model.get_layer("price") if self.keras_model is not None else None
            trainer = _Trainer(
                core,
                self.quantiles,
                self._ys,
                batch_size=self.batch_size,
                learning_rate=learning_rate,
                price=price,
                shape_weight=self.shape_weight,
            )
            self._trainer = trainer
        return trainer

    def _training_core(self) -> keras.Model:
        """The network without its price layer (what the pinball loss trains) and the target scaler.

        A loaded network gets both from its layers: ``quantiles_z``'s output and the
        ``price`` layer's centre and scale, which are the scaler's.
        """
        core = getattr(self, "_core", None)
        if core is not None:
            return core
        if self.keras_model is None:
            raise RuntimeError("QuantileDNN.fine_tune called before fit or load")
        import keras

        full = self.keras_model
        core = keras.Model(full.inputs, full.get_layer("quantiles_z").output, name="dnn_core")
        price = full.get_layer("price")
        ys = AsinhScaler()
        ys.center_, ys.scale_ = np.asarray(price.center, dtype=float), np.asarray(price.scale, dtype=float)
        self._core, self._ys = core, ys
        return core

    # -- inference and persistence ----------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Quantile forecasts ``[n, s, q]`` in EUR/MWh, non-decreasing along ``q``."""
        if self.keras_model is None:
            raise RuntimeError("QuantileDNN.predict called before fit or load")
        x = np.asarray(X, dtype="float32")
        out = self.keras_model(x, training=False)
        return np.asarray(out, dtype=float)

    def save(self, directory: Path | str) -> Path:
        """Write ``model.keras`` (raw features in, prices out) and ``dnn.json`` (hyper-parameters)."""
        from tasks.storage import write_json_atomic

        if self.keras_model is None:
            raise RuntimeError("nothing to save: fit the model first")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{MODEL_FILE}.tmp.keras"
        self.keras_model.save(tmp)
        tmp.replace(d / MODEL_FILE)
        write_json_atomic(d / META_FILE, self.params())
        return d

    def params(self) -> dict[str, Any]:
        return {
            "quantiles": list(self.quantiles),
            "hidden": list(self.hidden),
            "seed": self.seed,
            "epochs": self.epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "dropout": self.dropout,
            "l2": self.l2,
            "val_fraction": self.val_fraction,
            "input_asinh": self.input_asinh,
            "shape_weight": self.shape_weight,
        }

    @classmethod
    def load(cls, directory: Path | str) -> QuantileDNN:
        _import_tf()
        import keras

        d = Path(directory)
        meta = json.loads((d / META_FILE).read_text())
        obj = cls(**meta)
        obj.keras_model = keras.models.load_model(
            d / MODEL_FILE, custom_objects=_custom_objects(), compile=False
        )
        return obj


def make_dnn(quantiles: Sequence[float], *, seed: int, **params: Any) -> QuantileDNN | DNNEnsemble:
    """The configured price DNN: ``networks`` (default 1) networks of the same hyper-parameters."""
    networks = int(params.pop("networks", 1))
    if networks == 1:
        return QuantileDNN(quantiles, seed=seed, **params)
    return DNNEnsemble(quantiles, seed=seed, networks=networks, **params)


def load_dnn(directory: Path | str) -> QuantileDNN | DNNEnsemble:
    """What :meth:`QuantileDNN.save` or :meth:`DNNEnsemble.save` wrote to ``directory``."""
    if (Path(directory) / NETWORKS_FILE).is_file():
        return DNNEnsemble.load(directory)
    return QuantileDNN.load(directory)


class DNNEnsemble:
    """``networks`` quantile DNNs of one configuration with seeds ``seed, seed + 1, …``; quantiles averaged.

    A deep ensemble: networks that differ only in their initial weights, dropout
    masks and batch order make different errors, and the mean of their
    quantiles (each non-decreasing, so the mean is too) is more accurate and less
    dependent on one seed than any one of them. The epftoolbox DNN ensemble
    averages four networks. Same interface as :class:`QuantileDNN`: the daily
    step fine-tunes every network.
    """

    def __init__(
        self, quantiles: Sequence[float] = (0.1, 0.5, 0.9), *, seed: int = 0, networks: int = 2, **params: Any
    ) -> None:
        if networks < 1:
            raise ValueError(f"networks must be >= 1, got {networks}")
        self._hold(seed, [QuantileDNN(quantiles, seed=seed + i, **params) for i in range(networks)])

    def _hold(self, seed: int, nets: list[QuantileDNN]) -> None:
        self.seed = seed
        self.nets = nets
        self.quantiles = nets[0].quantiles
        self.history_: dict[str, list[float]] = {}

    def fit(
        self,
        X: np.ndarray,  # noqa: N803
        Y: np.ndarray,  # noqa: N803
        X_val: np.ndarray | None = None,  # noqa: N803
        Y_val: np.ndarray | None = None,  # noqa: N803
    ) -> DNNEnsemble:
        """Each network as :meth:`QuantileDNN.fit`; ``history_`` is the first network's, ``histories_`` all."""
        for net in self.nets:
            net.fit(X, Y, X_val, Y_val)
        self.histories_ = [net.history_ for net in self.nets]
        self.history_ = self.nets[0].history_
        return self

    def fine_tune(self, X: np.ndarray, Y: np.ndarray, **options: Any) -> DNNEnsemble:  # noqa: N803
        """Each network's :meth:`QuantileDNN.fine_tune` with the same ``options``."""
        for net in self.nets:
            net.fine_tune(X, Y, **options)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """The networks' mean quantile forecasts ``[n, s, q]`` in EUR/MWh, non-decreasing along ``q``."""
        return np.mean([net.predict(X) for net in self.nets], axis=0)

    def save(self, directory: Path | str) -> Path:
        """One sub-directory per network, then ``networks.json`` (written last: its presence marks a whole set)."""
        from tasks.storage import write_json_atomic

        d = Path(directory)
        for i, net in enumerate(self.nets):
            net.save(d / f"net_{i}")
        write_json_atomic(d / NETWORKS_FILE, {"networks": len(self.nets), "seed": self.seed})
        return d

    def params(self) -> dict[str, Any]:
        return {**self.nets[0].params(), "seed": self.seed, "networks": len(self.nets)}

    @classmethod
    def load(cls, directory: Path | str) -> DNNEnsemble:
        d = Path(directory)
        meta = json.loads((d / NETWORKS_FILE).read_text())
        obj = cls.__new__(cls)
        obj._hold(int(meta["seed"]), [QuantileDNN.load(d / f"net_{i}") for i in range(int(meta["networks"]))])
        return obj


class _Trainer:
    """One network's training loop: each epoch's batches run in one compiled graph call.

    Keras' ``fit`` spent most of this small network's time in per-epoch Python
    (data adapters, callbacks, a separate evaluation loop): about 0.1 s an epoch
    against 0.03 s here on one core. The step is the one ``fit`` takes: Adam on the
    batch's mean pinball loss (in the transformed target space) plus the L2
    penalty; the batches are consecutive slices of the given permutation, the last
    one shorter. With ``shape_weight`` > 0 the objective adds
    ``shape_weight · ShapeLoss`` on the median in price space (``price`` layer).
    """

    def __init__(
        self,
        core: keras.Model,
        quantiles: Sequence[float],
        scaler: AsinhScaler,
        *,
        batch_size: int,
        learning_rate: float,
        price: Any = None,
        shape_weight: float = 0.0,
    ) -> None:
        import keras
        import tensorflow as tf

        objs = _custom_objects()
        self.core = core
        self.scaler = scaler
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(core.trainable_variables)
        pinball = objs["PinballLoss"](quantiles)
        median = min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))
        scale = float(np.mean(scaler.params()[1]))
        shape = objs["ShapeLoss"](median, scale) if shape_weight > 0 and price is not None else None
        variables = core.trainable_variables
        optimizer = self.optimizer
        size = int(batch_size)

        def objective(x: Any, z: Any, y: Any, training: bool) -> tuple[Any, Any]:
            predicted = core(x, training=training)
            data = pinball(z, predicted)
            penalty = tf.add_n(core.losses) if core.losses else tf.constant(0.0)
            extra = shape(y, price(predicted)) if shape is not None else tf.constant(0.0)
            return data + penalty + shape_weight * extra, extra

        features, slots = int(core.inputs[0].shape[-1]), int(core.outputs[0].shape[1])
        matrix = tf.TensorSpec([None, features], tf.float32)
        rows = tf.TensorSpec([None, slots], tf.float32)

        @tf.function(input_signature=[matrix, rows, rows, tf.TensorSpec([None], tf.int32)])
        def epoch(x: Any, z: Any, y: Any, order: Any) -> tuple[Any, Any]:
            n = tf.shape(order)[0]
            batches = (n + size - 1) // size
            total, total_extra = tf.constant(0.0), tf.constant(0.0)
            for b in tf.range(batches):
                take = order[b * size : tf.minimum((b + 1) * size, n)]
                xb, zb, yb = tf.gather(x, take), tf.gather(z, take), tf.gather(y, take)
                with tf.GradientTape() as tape:
                    loss, extra = objective(xb, zb, yb, True)
                optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
                total += loss
                total_extra += extra
            count = tf.cast(batches, tf.float32)
            return total / count, total_extra / count

        @tf.function(input_signature=[matrix, rows, rows])
        def held_out(x: Any, z: Any, y: Any) -> Any:
            return objective(x, z, y, False)[0]

        self._epoch, self._loss = epoch, held_out
        self._shape = shape is not None

    def arrays(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any, Any]:
        """Rows as tensors: features, transformed targets, prices."""
        import tensorflow as tf

        z = self.scaler.transform(y).astype("float32")
        return tf.constant(x, tf.float32), tf.constant(z), tf.constant(y, tf.float32)

    def epoch(self, rows: tuple[Any, Any, Any], order: np.ndarray) -> dict[str, float]:
        """One pass over ``rows`` in the batches ``order`` gives; the epoch's mean training loss."""
        loss, extra = self._epoch(*rows, np.asarray(order, dtype="int32"))
        return {"loss": float(loss), **({"shape_loss": float(extra)} if self._shape else {})}

    def loss(self, rows: tuple[Any, Any, Any]) -> float:
        """The objective on ``rows`` without dropout (early stopping's validation loss)."""
        return float(self._loss(*rows))

    def restart(self, learning_rate: float) -> None:
        """A fresh Adam without re-tracing: zero moments and step count, the new learning rate."""
        for variable in self.optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
        self.optimizer.learning_rate = learning_rate
