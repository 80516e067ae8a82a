"""The Keras quantile DNN: ordered quantiles, reproducibility, save/load, and the backtest CLI with it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tasks.forecasting import design
from tasks.forecasting.metrics import mae
from tasks.forecasting.naive import weekly_naive

pytestmark = pytest.mark.integration

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "epf"
QS = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def fitted(de: design.DayData):  # type: ignore[no-untyped-def]
    from tasks.forecasting.dnn import QuantileDNN

    train = np.arange(7, 106)
    return QuantileDNN(quantiles=QS, hidden=(32,), seed=3, epochs=60, patience=8).fit(
        design.build_design(de, train), design.targets(de, train)
    )


def test_predicts_every_slot_and_quantile_and_learns(fitted, de: design.DayData) -> None:  # type: ignore[no-untyped-def]
    test = np.arange(106, 120)
    q = fitted.predict(design.build_design(de, test))
    assert q.shape == (14, 24, 3)
    assert np.isfinite(q).all()
    y = de.prices[test]
    assert mae(y, q[:, :, 1]) < mae(y, weekly_naive(de.prices)[test])
    assert 0 < len(fitted.history_["loss"]) <= 60
    assert "val_loss" in fitted.history_


def test_quantiles_never_cross_even_far_outside_the_training_data(fitted, de: design.DayData) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = design.build_design(de, np.arange(7, 120))
    wild = x[rng.integers(0, len(x), 200)] * rng.uniform(-5, 5, size=(200, x.shape[1]))
    q = fitted.predict(np.concatenate([x, wild]))
    assert (np.diff(q, axis=2) >= 0).all()


def test_save_and_load_give_identical_predictions(fitted, de: design.DayData, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tasks.forecasting.dnn import QuantileDNN

    x = design.build_design(de, np.arange(100, 120))
    fitted.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "dnn.json").read_text())["quantiles"] == list(QS)
    loaded = QuantileDNN.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x), fitted.predict(x))
    assert loaded.quantiles == QS
    # the Keras model alone takes raw features (normalisation is its first layer)
    assert fitted.keras_model.layers[1].name == "normalise"
    np.testing.assert_allclose(
        np.asarray(loaded.keras_model.predict(x, verbose=0)), fitted.predict(x), rtol=1e-6
    )


def test_same_seed_same_model(de: design.DayData) -> None:
    from tasks.forecasting.dnn import QuantileDNN

    train = np.arange(7, 60)
    x, y = design.build_design(de, train), design.targets(de, train)
    a = QuantileDNN(hidden=(16,), seed=5, epochs=5).fit(x, y).predict(x[:3])
    b = QuantileDNN(hidden=(16,), seed=5, epochs=5).fit(x, y).predict(x[:3])
    np.testing.assert_array_equal(a, b)


def test_an_epoch_in_one_graph_call_is_the_plain_batch_loop(de: design.DayData) -> None:
    """The compiled epoch only removes Python overhead: the same batches in the same order, one
    eager Adam step each (the last batch shorter), give the same weights."""
    import keras
    import tensorflow as tf

    from tasks.forecasting.dnn import QuantileDNN, _custom_objects

    train = np.arange(7, 100)
    x, y = design.build_design(de, train), design.targets(de, train)
    compiled, eager = (
        QuantileDNN(quantiles=QS, hidden=(16,), seed=5, epochs=1, dropout=0.0, l2=1e-3, batch_size=8).fit(
            x, y
        )
        for _ in range(2)
    )
    compiled.keras_model.set_weights(eager.keras_model.get_weights())
    order = np.random.default_rng(0).permutation(len(x))
    trainer = compiled._trainer_for(compiled._core, 1e-3)
    trainer.restart(1e-3)
    trainer.epoch(trainer.arrays(x.astype("float32"), y.astype("float32")), order)

    core, pinball = eager._core, _custom_objects()["PinballLoss"](QS)
    optimizer = keras.optimizers.Adam(1e-3)
    z = eager._ys.transform(y).astype("float32")
    batches = [order[i : i + 8] for i in range(0, len(order), 8)]
    assert len(batches[-1]) < 8
    for rows in batches:
        with tf.GradientTape() as tape:
            loss = pinball(z[rows], core(x[rows].astype("float32"), training=True)) + tf.add_n(core.losses)
        optimizer.apply_gradients(
            zip(tape.gradient(loss, core.trainable_variables), core.trainable_variables, strict=True)
        )
    for got, want in zip(compiled.keras_model.get_weights(), eager.keras_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_early_stopping_keeps_the_best_epoch(de: design.DayData) -> None:
    from tasks.forecasting.dnn import QuantileDNN

    train, held = np.arange(7, 80), np.arange(80, 100)
    x, y = design.build_design(de, train), design.targets(de, train)
    xv, yv = design.build_design(de, held), design.targets(de, held)
    model = QuantileDNN(quantiles=QS, hidden=(16,), seed=2, epochs=200, patience=4, learning_rate=3e-2)
    model.fit(x, y, xv, yv)
    losses = model.history_["val_loss"]
    best = int(np.argmin(losses))
    assert len(losses) == best + 1 + 4 < 200  # stopped four epochs after the best
    assert len(model.history_["loss"]) == len(losses)
    trainer = model._trainer
    assert trainer.loss(trainer.arrays(xv.astype("float32"), yv.astype("float32"))) == pytest.approx(
        losses[best], rel=1e-5
    )


def test_invalid_quantiles_are_rejected() -> None:
    from tasks.forecasting.dnn import QuantileDNN

    with pytest.raises(ValueError, match="increasing"):
        QuantileDNN(quantiles=(0.5, 0.1))


def test_backtest_cli_with_dnn_writes_quantile_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from research.backtest import cli

    out = tmp_path / "bt"
    rc = cli(
        [
            "--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "8", "--retrain-every", "8",
            "--lear-windows", "28,56", "--dnn-hidden", "16", "--dnn-epochs", "10",
            "--models", "naive,lear,dnn,ensemble", "--out", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"naive", "lear", "dnn", "ensemble", "dnn_quantiles"} <= set(metrics["metrics"])
    assert 0.0 <= metrics["metrics"]["dnn_quantiles"]["coverage_q10_q90"] <= 1.0
    with (out / "forecasts.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 * 24
    assert {"q10", "q50", "q90", "dnn", "ensemble"} <= set(rows[0])
    assert all(float(r["q10"]) <= float(r["q50"]) <= float(r["q90"]) for r in rows)
    assert "DNN pinball" in capsys.readouterr().out


def test_fine_tune_moves_the_model_keeps_quantiles_ordered_and_is_repeatable(de: design.DayData) -> None:
    from tasks.forecasting.dnn import QuantileDNN

    train, recent, test = np.arange(7, 90), np.arange(60, 100), np.arange(100, 110)

    def tuned() -> np.ndarray:
        model = QuantileDNN(quantiles=QS, hidden=(16,), seed=1, epochs=10, patience=3).fit(
            design.build_design(de, train), design.targets(de, train)
        )
        before = model.predict(design.build_design(de, test))
        model.fine_tune(design.build_design(de, recent), design.targets(de, recent), epochs=2)
        after = model.predict(design.build_design(de, test))
        assert not np.allclose(before, after)
        assert (np.diff(after, axis=2) >= 0).all()
        return after

    np.testing.assert_array_equal(tuned(), tuned())
    with pytest.raises(RuntimeError, match="fit"):
        QuantileDNN(quantiles=QS).fine_tune(design.build_design(de, recent), design.targets(de, recent))


def test_fine_tune_of_a_loaded_network_matches_the_fitted_one(de: design.DayData, tmp_path: Path) -> None:
    """The forecast stage fine-tunes the registered network read from disk; the backtest the one it fitted."""
    from tasks.forecasting.dnn import QuantileDNN

    train, recent, test = np.arange(7, 90), np.arange(60, 100), np.arange(100, 110)
    x_recent, y_recent = design.build_design(de, recent), design.targets(de, recent)
    fitted = QuantileDNN(quantiles=QS, hidden=(16,), seed=1, epochs=10, patience=3, dropout=0.0).fit(
        design.build_design(de, train), design.targets(de, train)
    )
    fitted.save(tmp_path / "dnn")
    loaded = QuantileDNN.load(tmp_path / "dnn")
    x_test = design.build_design(de, test)
    np.testing.assert_allclose(loaded.predict(x_test), fitted.predict(x_test), rtol=0, atol=1e-9)
    for model in (fitted, loaded):
        model.fine_tune(x_recent, y_recent, epochs=2)
    after = loaded.predict(x_test)
    assert not np.allclose(after, QuantileDNN.load(tmp_path / "dnn").predict(x_test))
    np.testing.assert_allclose(after, fitted.predict(x_test), rtol=0, atol=1e-3)


def test_repeated_fine_tunes_start_from_a_fresh_optimiser(de: design.DayData, tmp_path: Path) -> None:
    """The daily chain re-uses the compiled step; each fine-tune still starts with a new Adam's state."""
    from tasks.forecasting.dnn import QuantileDNN

    train, test = np.arange(7, 90), np.arange(110, 115)
    QuantileDNN(quantiles=QS, hidden=(16,), seed=1, epochs=5, patience=3).fit(
        design.build_design(de, train), design.targets(de, train)
    ).save(tmp_path / "dnn")
    reused, recompiled = QuantileDNN.load(tmp_path / "dnn"), QuantileDNN.load(tmp_path / "dnn")
    for day in (100, 101, 102):
        recent = np.arange(day - 40, day)
        x, y = design.build_design(de, recent), design.targets(de, recent)
        reused.fine_tune(x, y, epochs=2)
        recompiled._trainer = None  # trace a new epoch and optimiser every time
        recompiled.fine_tune(x, y, epochs=2)
    x_test = design.build_design(de, test)
    np.testing.assert_array_equal(reused.predict(x_test), recompiled.predict(x_test))


def test_backtest_dnn_fine_tuning_between_retrainings(tmp_path: Path) -> None:
    from research.backtest import cli

    out = tmp_path / "bt"
    rc = cli(
        [
            "--dataset", str(FIX / "DE_excerpt.csv"), "--test-days", "8", "--dnn-retrain-every", "8",
            "--dnn-finetune-every", "2", "--dnn-finetune-days", "28", "--dnn-finetune-epochs", "1",
            "--dnn-hidden", "16", "--dnn-epochs", "5", "--models", "naive,dnn", "--out", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["dnn_finetune_every"] == 2
    with (out / "forecasts.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 8 * 24


def test_shape_loss_trains_a_second_head_and_round_trips(de: design.DayData, tmp_path: Path) -> None:
    """--dnn-shape-weight: the median's intraday profile gets its own loss; the saved model is unchanged in use."""
    from tasks.forecasting.dnn import QuantileDNN

    train, test = np.arange(7, 106), np.arange(106, 120)
    x, y = design.build_design(de, train), design.targets(de, train)
    model = QuantileDNN(quantiles=QS, hidden=(32,), seed=3, epochs=40, patience=8, shape_weight=1.0).fit(x, y)
    assert {"loss", "shape_loss", "val_loss"} <= set(model.history_), model.history_.keys()
    assert model.history_["shape_loss"][-1] < model.history_["shape_loss"][0]
    q = model.predict(design.build_design(de, test))
    assert (np.diff(q, axis=-1) >= 0).all()
    profile = lambda a: a - a.mean(axis=1, keepdims=True)  # noqa: E731
    actual = design.targets(de, test)
    naive = weekly_naive(de.prices)[test]
    assert mae(profile(actual), profile(q[..., 1])) < mae(profile(actual), profile(naive))
    again = QuantileDNN.load(model.save(tmp_path / "m"))
    assert again.shape_weight == 1.0
    np.testing.assert_allclose(again.predict(design.build_design(de, test)), q, rtol=1e-6)


def test_an_ensemble_of_networks_averages_its_networks_round_trips_and_fine_tunes(
    de: design.DayData, tmp_path: Path
) -> None:
    from tasks.forecasting.dnn import DNNEnsemble, QuantileDNN, load_dnn, make_dnn

    train, recent, test = np.arange(7, 90), np.arange(60, 100), np.arange(100, 110)
    x, y = design.build_design(de, train), design.targets(de, train)
    x_test = design.build_design(de, test)
    params = {"hidden": (16,), "epochs": 10, "patience": 3}
    assert isinstance(make_dnn(QS, seed=4, **params), QuantileDNN)
    bag = make_dnn(QS, seed=4, networks=3, **params).fit(x, y)
    assert isinstance(bag, DNNEnsemble)
    assert [net.seed for net in bag.nets] == [4, 5, 6]
    alone = QuantileDNN(QS, seed=5, **params).fit(x, y)
    np.testing.assert_array_equal(bag.nets[1].predict(x_test), alone.predict(x_test))  # network i is seed + i
    q = bag.predict(x_test)
    np.testing.assert_allclose(q, np.mean([net.predict(x_test) for net in bag.nets], axis=0))
    assert (np.diff(q, axis=-1) >= 0).all()
    assert bag.params()["networks"] == 3
    assert bag.params()["seed"] == 4
    loaded = load_dnn(bag.save(tmp_path / "bag"))
    assert isinstance(loaded, DNNEnsemble)
    np.testing.assert_allclose(loaded.predict(x_test), q, rtol=0, atol=1e-9)
    loaded.fine_tune(design.build_design(de, recent), design.targets(de, recent), epochs=2)
    assert not np.allclose(loaded.predict(x_test), q)
    assert isinstance(load_dnn(alone.save(tmp_path / "one")), QuantileDNN)
    with pytest.raises(ValueError, match="networks"):
        make_dnn(QS, seed=0, networks=0)


def test_the_served_model_reads_an_ensemble_of_networks(de: design.DayData, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tasks.forecasting.dnn import DNNEnsemble, make_dnn
    from tasks.forecasting.served_model import DayAheadPriceModel, Design

    train, test = np.arange(7, 60), np.arange(60, 65)
    x, y = design.build_design(de, train), design.targets(de, train)
    bag = make_dnn(QS, seed=1, networks=2, hidden=(8,), epochs=3).fit(x, y)
    model = DayAheadPriceModel().attach(Design(["a"], 24, list(QS), {}, -500.0, 4000.0), bag)
    model.save(tmp_path / "model")
    served = DayAheadPriceModel()
    served.load_context(SimpleNamespace(artifacts={"model_dir": str(tmp_path / "model")}))
    assert isinstance(served.dnn, DNNEnsemble)
    x_test = design.build_design(de, test)
    np.testing.assert_allclose(served.dnn.predict(x_test), bag.predict(x_test), rtol=0, atol=1e-9)
