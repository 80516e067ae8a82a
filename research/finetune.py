"""Daily fine-tuning of a trained quantile DNN on recent days, between full re-trainings.

Used by the rolling backtest (``--dnn-finetune-days``); the daily pipeline
re-trains on its schedule instead and does not fine-tune.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tasks.forecasting.dnn import _custom_objects, _import_tf

if TYPE_CHECKING:
    from tasks.forecasting.dnn import QuantileDNN


def fine_tune(
    model: QuantileDNN,
    X: np.ndarray,  # noqa: N803
    Y: np.ndarray,  # noqa: N803
    *,
    epochs: int = 3,
    learning_rate: float = 1e-4,
) -> QuantileDNN:
    """Continue training on recent days (few epochs, small steps), keeping input and target scaling.

    A cheap way to follow a market between full re-trainings: the normalisation
    and the target transform stay those of the full fit.
    """
    _import_tf()
    import keras

    core = getattr(model, "_core", None)
    if core is None:
        raise RuntimeError("fine_tune needs a model trained by fit() in this process")
    x = np.asarray(X, dtype="float32")
    z = model._ys.transform(np.asarray(Y, dtype="float32")).astype("float32")
    keras.utils.set_random_seed(model.seed + x.shape[0])
    core.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=_custom_objects()["PinballLoss"](model.quantiles),
    )
    core.fit(x, z, epochs=epochs, batch_size=model.batch_size, shuffle=True, verbose=model.verbose)
    return model
