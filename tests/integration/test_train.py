"""Train → evaluate → register → forecast for two zones on a throwaway MLflow store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_features import write_history

if TYPE_CHECKING:
    from tasks.config import Settings

# TFDV/Beam pull in google.cloud clients that warn about Python 3.11's end of life on import.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning:google")

D = date(2026, 10, 26)  # D-1 is the 25-hour autumn day
ZONES = ("DE_LU", "BE")
QCOLS = ["price_q10", "price_q50", "price_q90"]
LCOLS = ["load_q10", "load_q50", "load_q90"]


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch, data_root: Path, tmp_path: Path) -> tuple[Settings, Path]:
    """Two zones, hourly MTUs, a 50-day window and a few epochs: the real code paths, small."""
    from tasks.config import get_settings

    monkeypatch.setenv("DAP_ZONES", ",".join(ZONES))
    monkeypatch.setenv("DAP_MTU_MINUTES", "60")
    monkeypatch.setenv("DAP_TRAIN_WINDOW_DAYS", "50")
    get_settings.cache_clear()
    config = tmp_path / "models.json"
    config.write_text(
        json.dumps(
            {
                "evaluation_days": 10,
                "min_training_days": 25,
                "dnn": {"hidden": [32], "epochs": 12, "patience": 4},
                "load_dnn": {"hidden": [16], "epochs": 30, "patience": 5},
                "lear": {"max_iter": 500},
                "tfdv_statistics": False,
                # The trees as the registered members (forest: the neighbour-series checks below), a small search.
                "ensemble": {"members": ["lear", "gbm", "forest"], "combination": {"validation_days": 7}},
                "search": {"trials": 2, "epochs": 2, "patience": 1, "validation_days": 7},
            }
        )
    )
    settings = get_settings()
    for zone in ZONES:
        write_history(settings.data_root, zone, D - timedelta(days=60), D + timedelta(days=1))
    return settings, config


def _check_dnn_in_point_round_trip(model: Any, frames: list[pd.DataFrame], tmp_path: Path) -> None:
    """A model saved with the DNN among the point members reloads with its median in the mean."""
    from types import SimpleNamespace

    from tasks.forecasting.served_model import ENSEMBLE_FILE, DayAheadPriceModel

    # The registered model's weights (level and shape, each with its median share); the DNN's: 0.
    with_dnn = DayAheadPriceModel().attach(
        model.design,
        model.dnn,
        members=model.members,
        dnn_in_point=True,
        band_scale=1.5,
        weights=model.weights,
        shape_weights=model.shape_weights,
    )
    with_dnn.save(tmp_path)
    assert json.loads((tmp_path / ENSEMBLE_FILE).read_text())["members"] == ["dnn", *model.members]
    reloaded = DayAheadPriceModel()
    reloaded.load_context(SimpleNamespace(artifacts={"model_dir": str(tmp_path)}))
    assert reloaded.dnn_in_point
    assert (reloaded.weights, reloaded.shape_weights) == (model.weights, model.shape_weights)
    x = model.design.matrix(frames)
    _assert_median_is_mean_of(reloaded, frames, [model.dnn_quantiles(x)[..., 1], *_member_points(model, x)])
    # The calibrated band: each quantile 1.5 times the DNN's distance from the centre.
    dnn_width = model.dnn_quantiles(x)[..., 2] - model.dnn_quantiles(x)[..., 0]
    served = reloaded.forecast_days(frames)
    np.testing.assert_allclose(served[..., 2] - served[..., 0], 1.5 * dnn_width, rtol=1e-5, atol=1e-6)
    # A DNN-alone model keeps its scale too (no members file).
    alone = DayAheadPriceModel().attach(model.design, model.dnn, band_scale=0.8)
    alone.save(tmp_path / "alone")
    again = DayAheadPriceModel()
    again.load_context(SimpleNamespace(artifacts={"model_dir": str(tmp_path / "alone")}))
    assert again.members == {}
    assert again.band_scale == 0.8


def _member_points(model: Any, x: np.ndarray) -> list[np.ndarray]:
    return [member.predict(x) for member in model.members.values()]


def _assert_median_is_mean_of(model: Any, frames: list[pd.DataFrame], points: list[np.ndarray]) -> None:
    """The served median is the weighted mean of ``points`` (the model's weights, or equal), clipped.

    The weight of ``"median"`` goes to the element-wise median of all ``points``.
    """
    names = model.member_names
    stack = np.stack(points)

    def weighted(parts: np.ndarray, weights: dict[str, float]) -> np.ndarray:
        w = np.array([weights.get(n, 0.0) for n in names])
        share = weights.get("median", 0.0)
        return (np.tensordot(w, parts, axes=1) + share * np.median(parts, axis=0)) / (w.sum() + share)

    level_weights = model.weights or dict.fromkeys(names, 1.0)
    shape_weights = getattr(model, "shape_weights", None)
    if shape_weights is None:
        expected = weighted(stack, level_weights)
    else:  # each day's level (mean over its slots) and the deviations from it, each with its weights
        levels = stack.mean(axis=-1, keepdims=True)
        expected = weighted(levels, level_weights) + weighted(stack - levels, shape_weights)
    expected = np.clip(expected, model.design.price_floor, model.design.price_cap)
    np.testing.assert_allclose(model.forecast_days(frames)[..., 1], expected, rtol=1e-6)


def _check_neighbour_inputs(model: Any, frame: pd.DataFrame, params: dict[str, str]) -> None:
    """BE's model: the trees read DE_LU's forecasts, LEAR and the DNN only BE's own inputs."""
    from tasks.features import neighbour_columns
    from tasks.forecasting.price_ensemble import ColumnSubset

    design = model.design
    assert params["neighbour_zones"] == "DE_LU"
    assert design.neighbour_columns == list(neighbour_columns(["DE_LU"]))
    assert design.columns[-9:] == design.neighbour_columns
    assert isinstance(model.members["lear"], ColumnSubset)
    assert not isinstance(model.members["gbm"], ColumnSubset)
    assert "DE_LU: load_mw" in model.members["forest"].layout.series
    # Moving Germany's load forecast moves the trees' forecast and nothing else.
    moved = frame.copy()
    moved["DE_LU: load_mw"] = moved["DE_LU: load_mw"] * 1.5 + 20000
    x, x_moved = design.matrix([frame]), design.matrix([moved])
    # (The extra-trees split on random columns; the GBM may ignore a series the simulated BE price lacks.)
    assert not np.allclose(model.members["forest"].predict(x), model.members["forest"].predict(x_moved))
    for unmoved in (model.members["lear"].predict, model.dnn_quantiles):
        np.testing.assert_array_equal(unmoved(x), unmoved(x_moved))


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_two_zones(small: tuple[Settings, Path], tmp_path: Path) -> None:
    import mlflow

    from tasks.evaluate import evaluate
    from tasks.features import build_features
    from tasks.forecast import forecast
    from tasks.register import register
    from tasks.registry import client, load_price_model
    from tasks.storage import Layout, write_parquet_atomic
    from tasks.train import train

    settings, config = small
    mc = client(settings)
    layout = Layout(settings.data_root)
    with_tfdv = config.with_name("models_tfdv.json")
    with_tfdv.write_text(json.dumps({**json.loads(config.read_text()), "tfdv_statistics": True}))
    for zone in ZONES:
        # TFDV training statistics (Beam) once, for the first zone: they cost ~15 s.
        trained = train(zone, D, settings, config_path=with_tfdv if zone == "DE_LU" else config)
        assert trained["skipped"] is False
        run = mc.get_run(trained["run_id"])
        for key in ("mae", "rmae", "smape", "rmse", "pinball", "coverage_80", "lear_mae", "naive_mae"):
            assert np.isfinite(run.data.metrics[key]), key
        # The registered candidate is the ensemble; each member is scored on the same days.
        assert run.data.tags["model_kind"] == "ensemble"
        assert run.data.params["ensemble_members"] == "lear,gbm,forest"  # the DNN gives the band only
        for key in ("dnn_mae", "dnn_pinball", "gbm_mae", "gbm_rmae", "forest_mae", "forest_fit_seconds"):
            assert np.isfinite(run.data.metrics[key]), key
        assert trained["members"] == ["lear", "gbm", "forest"]
        # The procedure is on the run: definition, the search's trials, the weights and the guard.
        assert sum(trained["weights"].values()) == pytest.approx(1.0)
        assert {f"weight_{m}" for m in ("lear", "gbm", "forest")} <= set(run.data.metrics)
        assert run.data.params["search_trials"] == "2"
        assert run.data.tags["combination_fallback"] in ("true", "false")
        combination = mlflow.artifacts.load_dict(f"runs:/{trained['run_id']}/combination.json")
        # The intraday shape has its own weights, unless the guard served one member alone.
        assert (trained["shape_weights"] is None) == combination["fallback"]
        assert combination["shape_weights"] == trained["shape_weights"]
        if trained["shape_weights"] is not None:
            assert sum(trained["shape_weights"].values()) == pytest.approx(1.0)
            assert {f"shape_weight_{m}" for m in ("lear", "gbm", "forest")} <= set(run.data.metrics)
        assert combination["band"]["points"] > 0
        assert "validation prices" in combination["band"]["reason"]
        search = mlflow.artifacts.load_dict(f"runs:/{trained['run_id']}/dnn_search.json")
        assert len(search["trials"]) == 2
        assert search["best"]
        for member in ("lear", "gbm", "forest"):  # each point member has its own run
            member_run = mc.get_run(run.data.tags[f"{member}_run_id"])
            assert mc.get_experiment(member_run.info.experiment_id).name == f"day-ahead-price-{member}"
            assert member_run.data.metrics["mae"] == run.data.metrics[f"{member}_mae"]
        forest_params = mc.get_run(run.data.tags["forest_run_id"]).data.params
        assert forest_params["forest_n_estimators"] == "200"
        assert forest_params["forest_level_estimators"] == "50"  # the level fit of a profile forest
        # The load model: its own run in the load family's experiment, scored against the TSO.
        load_run = mc.get_run(run.data.tags["load_run_id"])
        assert mc.get_experiment(load_run.info.experiment_id).name == "day-ahead-load-dnn"
        for key in ("mae", "rmae", "pinball", "coverage_80", "tso_mae"):
            assert np.isfinite(load_run.data.metrics[key]), key
        assert run.data.metrics["load_mae"] == load_run.data.metrics["mae"]
        load_window = mlflow.artifacts.load_dict(f"runs:/{load_run.info.run_id}/load_window.json")
        assert max(load_window["train_days"]) <= (D - timedelta(days=2)).isoformat(), (
            "actual load of D-1 is incomplete at gate closure"
        )
        assert load_window["evaluation_days"][-1] == (D - timedelta(days=2)).isoformat()
        assert run.data.params["window_last"] == (D - timedelta(days=1)).isoformat()
        assert run.data.params["n_evaluation_days"] == "10"
        assert run.inputs is not None
        assert run.inputs.dataset_inputs, "the training window is logged as a dataset"
        artifacts = {a.path for a in mc.list_artifacts(trained["run_id"])}
        assert {"forecast_vs_actual.png", "error_by_hour.png", "window.json"} <= artifacts
        if zone == "DE_LU":
            assert "tfdv" in artifacts
            assert (layout.root / "reports" / "tfdv" / "zone=DE_LU" / "training_stats.pb").is_file()
        window = mlflow.artifacts.load_dict(f"runs:/{trained['run_id']}/window.json")
        assert window["evaluation_days"][-1] == (D - timedelta(days=1)).isoformat()
        assert not set(window["evaluation_days"]) & set(window["train_days"])
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=trained["model_uri"]))
        assert (local / "artifacts" / "price_model" / "dnn" / "model.keras").is_file(), (
            "raw Keras model inside"
        )
        assert (local / "artifacts" / "price_model" / "load_dnn" / "model.keras").is_file()
        ensemble_doc = json.loads((local / "artifacts" / "price_model" / "ensemble.json").read_text())
        assert ensemble_doc["members"] == ["lear", "gbm", "forest"]
        # Reloaded, the median is the mean of the point members; the band is the DNN's, re-centred on it.
        reloaded = load_price_model(trained["model_uri"])
        assert set(reloaded.members) == {"lear", "gbm", "forest"}
        last = [pd.read_parquet(layout.features_file(zone, D - timedelta(days=1)))]
        assert reloaded.design is not None
        x = reloaded.design.matrix(last)
        dnn_q = reloaded.dnn_quantiles(x)
        if zone == "BE":
            _check_neighbour_inputs(reloaded, last[0], run.data.params)
        _assert_median_is_mean_of(reloaded, last, _member_points(reloaded, x))
        assert (reloaded.design.price_floor, reloaded.design.price_cap) == (
            settings.price_floor_eur_mwh,
            settings.price_cap_eur_mwh,
        )
        got = reloaded.forecast_days(last)
        # The band: the DNN's, re-centred, its distances from the centre times the calibrated scale.
        scale = ensemble_doc["band_scale"]
        assert scale == pytest.approx(run.data.metrics["band_scale"])
        np.testing.assert_allclose(
            np.diff(got, axis=-1), scale * np.diff(dnn_q, axis=-1), rtol=1e-5, atol=1e-4
        )
        if zone == ZONES[0]:  # a model saved with the DNN among its members: its median joins the mean
            _check_dnn_in_point_round_trip(reloaded, last, tmp_path / "dnn_in_point")
        # Signature and input example: a day's feature rows in, price and load quantiles out.
        info = mlflow.models.get_model_info(trained["model_uri"])
        assert info.signature is not None
        assert {"slot", "price_lag1", "load_mw"} <= set(info.signature.inputs.input_names())
        assert set(info.signature.outputs.input_names()) == {*QCOLS, *LCOLS}
        assert info.saved_input_example_info is not None
        example = mlflow.models.Model.load(trained["model_uri"]).load_input_example(str(local))
        assert example is not None
        assert len(example) == 25  # the last training day, D-1, is the 25-hour autumn day

        # The model reloaded from MLflow scores the evaluation window exactly as the trained one did.
        evaluated = evaluate(zone, D, trained["run_id"], settings, config_path=config)
        assert evaluated["challenger_mae"] == pytest.approx(run.data.metrics["mae"], rel=1e-6)
        assert evaluated["champion_mae"] is None

        registered = register(zone, D, trained["run_id"], settings, config_path=config)
        assert (registered["model_name"], registered["version"], registered["promoted"]) == (
            f"day_ahead_price_{zone}",
            1,
            True,
        )

        for day, rows in ((D, 24), (D - timedelta(days=1), 25)):
            build_features(zone, day, settings)
            result = forecast(zone, day, settings, config_path=config)
            assert result["model_version"] == 1
            out = pd.read_parquet(result["path"])
            assert len(out) == rows
            assert list(out.columns) == [
                "timestamp_utc",
                "resolution_minutes",
                *QCOLS,
                "load_mw",
                "wind_mw",
                "solar_mw",
                "load_tso_mw",
                *LCOLS,
            ]
            q = out[QCOLS].to_numpy()
            assert (np.diff(q, axis=1) >= 0).all(), "quantiles must not cross"
            assert (q >= settings.price_floor_eur_mwh).all()
            assert (q <= settings.price_cap_eur_mwh).all()
            loads = out[LCOLS].to_numpy()
            assert (np.diff(loads, axis=1) >= 0).all(), "load quantiles must not cross"
            assert (loads >= 0).all()
            sidecar = json.loads(Path(result["path"]).with_suffix(".json").read_text())
            used = "load_q50" if sidecar["load_source"] == "load_dnn" else "load_tso_mw"
            assert sidecar["load_source"] == (
                "load_dnn" if load_run.data.tags["volume_forecast"] == "load_dnn" else "tso"
            )
            assert run.data.tags["volume_forecast"] == load_run.data.tags["volume_forecast"]
            np.testing.assert_array_equal(out["load_mw"], out[used])
            assert sidecar["run_id"] == trained["run_id"]
            assert sidecar["model_name"] == f"day_ahead_price_{zone}"
            # The daily step (ensemble.daily): the DNN's chain from the day it was trained for
            # (none for D-1, before it), LEAR re-fitted on the window that ends D-1.
            step = sidecar["daily_step"]
            assert step["fitted_for"] == D.isoformat()
            assert step["dnn_fine_tuned_for"] == ([D.isoformat()] if day == D else [])
            assert step["lear_refit_days"][1] == (day - timedelta(days=1)).isoformat()
            # The trees re-fitted once with the days training held out: their window ends D-1 too.
            assert step["held_out_refit"]["members"] == ["gbm", "forest"]
            assert step["held_out_refit"]["days"][1] == (min(day, D) - timedelta(days=1)).isoformat()

    # No look-ahead end to end: D's (and later) prices and later forecasts do not move D's forecast.
    zone = "DE_LU"
    before = pd.read_parquet(layout.forecast_file(zone, D))
    for dataset, day, column in (
        ("day_ahead_prices", D, "price_eur_mwh"),
        ("day_ahead_prices", D + timedelta(days=1), "price_eur_mwh"),
        ("load_forecast", D + timedelta(days=1), "load_mw"),
        ("load_actual", D - timedelta(days=1), "load_mw"),
    ):
        path = layout.processed_file(dataset, zone, day)
        frame = pd.read_parquet(path)
        frame[column] = frame[column] * 5 + 100
        write_parquet_atomic(path, frame)
    build_features(zone, D, settings)
    forecast(zone, D, settings, config_path=config)
    pd.testing.assert_frame_equal(before, pd.read_parquet(layout.forecast_file(zone, D)))

    # Same features in, same forecast out after a reload from the registry and the same daily step;
    # the registered model alone forecasts differently.
    from tasks.forecast import bring_up_to_date

    model = load_price_model(f"models:/day_ahead_price_{zone}@champion")
    features = pd.read_parquet(layout.features_file(zone, D))
    registered = model.forecast_days([features])[0][features["slot"].to_numpy()]
    assert not np.allclose(registered, before[QCOLS].to_numpy(), rtol=1e-6)
    bring_up_to_date(model, zone, D, settings)
    again = model.forecast_days([features])[0][features["slot"].to_numpy()]
    np.testing.assert_allclose(again, before[QCOLS].to_numpy(), rtol=1e-6)
    # The production replay's day-by-day forecast (benchmarks/production_replay.py) is the served one.
    from benchmarks.production_replay import served_forecasts

    replayed = served_forecasts(
        load_price_model(f"models:/day_ahead_price_{zone}@champion"), zone, D, [D], settings
    )
    np.testing.assert_allclose(
        replayed.quantiles[0][features["slot"].to_numpy()], before[QCOLS].to_numpy(), rtol=1e-6
    )

    # Not due a day later (train_every_days = 7): the champion is reused.
    skipped = train(zone, D + timedelta(days=1), settings, config_path=config, if_due=True)
    assert skipped["skipped"] is True
    assert skipped["run_id"] is None
    assert skipped["model_uri"] == f"models:/day_ahead_price_{zone}@champion"
    # BE's champion reads DE_LU's forecasts: dropping the neighbour makes training due at once.
    from tasks.registry import load_config
    from tasks.train import is_due

    models = load_config(config)
    assert is_due(settings, "BE", D + timedelta(days=1), models)[0] is False
    due, reason = is_due(
        settings.model_copy(update={"neighbour_zones": {}}), "BE", D + timedelta(days=1), models
    )
    assert due
    assert "neighbour zones ['DE_LU'], neighbour_zones now gives ['none']" in reason

    # A second model for the same day is compared with the champion on its own evaluation window;
    # same data and seed give the same network (reproducible training), so the figures tie.
    second = train(zone, D, settings, config_path=config, if_due=False)
    evaluated = evaluate(zone, D, second["run_id"], settings, config_path=config)
    assert evaluated["champion_version"] == 1
    assert evaluated["champion_mae"] is not None
    run = mc.get_run(second["run_id"])
    assert run.data.tags["eval_champion_version"] == "1"
    assert evaluated["challenger_mae"] == pytest.approx(evaluated["champion_mae"], rel=1e-6)
    registered = register(zone, D, second["run_id"], settings, config_path=config)
    expected = evaluated["challenger_mae"] <= evaluated["champion_mae"] * (1 - settings.promotion_margin)
    assert registered["promoted"] is expected
    assert registered["version"] == 2


@pytest.mark.integration
@pytest.mark.slow
def test_load_model_replaces_a_biased_tso_forecast(small: tuple[Settings, Path]) -> None:
    """A TSO forecast 10 % too low: the load DNN learns the bias, wins and becomes the volume forecast."""
    from tasks.features import backfill
    from tasks.forecast import forecast
    from tasks.register import register
    from tasks.registry import client
    from tasks.storage import Layout, write_parquet_atomic
    from tasks.timeutil import days
    from tasks.train import train

    settings, config = small
    zone = "BE"
    layout = Layout(settings.data_root)
    for day in days(D - timedelta(days=60), D + timedelta(days=1)):
        path = layout.processed_file("load_forecast", zone, day)
        frame = pd.read_parquet(path)
        frame["load_mw"] *= 0.9
        write_parquet_atomic(path, frame)
    backfill(zone, D - timedelta(days=60), D, settings, overwrite=True)
    trained = train(zone, D, settings, config_path=config)
    mc = client(settings)
    load_run = mc.get_run(trained["load_run_id"])
    assert load_run.data.metrics["mae"] < 0.5 * load_run.data.metrics["tso_mae"], load_run.data.metrics
    assert load_run.data.tags["volume_forecast"] == "load_dnn"
    register(zone, D, trained["run_id"], settings, config_path=config)
    result = forecast(zone, D, settings, config_path=config)
    assert result["load_source"] == "load_dnn"
    out = pd.read_parquet(result["path"])
    np.testing.assert_array_equal(out["load_mw"], out["load_q50"])
    assert (out["load_mw"] > out["load_tso_mw"]).mean() > 0.9, "the median corrects the low TSO forecast"


@pytest.mark.integration
def test_gated_days_are_left_out_of_training_and_refused_by_forecast(small: tuple[Settings, Path]) -> None:
    """A day that failed a gate is neither a training day nor forecast (issue: quarantine)."""
    from tasks.errors import GateClosedError
    from tasks.forecast import forecast
    from tasks.storage import Layout, write_json_atomic
    from tasks.training_data import load_window

    settings, config = small
    zone = "DE_LU"
    layout = Layout(settings.data_root)
    gated = D - timedelta(days=20)
    first, last = D - timedelta(days=settings.train_window_days), D - timedelta(days=1)
    before = load_window(zone, first, last, settings)
    assert gated in before.days
    write_json_atomic(layout.gate_file(zone, gated), {"zone": zone, "delivery_date": gated.isoformat()})
    after = load_window(zone, first, last, settings)
    assert gated not in after.days
    assert after.skipped[gated.isoformat()].startswith("GateClosedError")
    assert len(after.days) == len(before.days) - 1

    write_json_atomic(layout.gate_file(zone, D), {"zone": zone, "delivery_date": D.isoformat()})
    with pytest.raises(GateClosedError, match="failed a gate"):
        forecast(zone, D, settings, config_path=config)
    assert not layout.forecast_file(zone, D).exists()


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``mlflow server`` (SQLite backend, proxied artifact store) on a free local port."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    artifacts = tmp_path / "server-artifacts"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "mlflow server did not start: " + (tmp_path / "server.log").read_text()[-2000:]
                )
            time.sleep(1)
        yield url, artifacts
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.integration
@pytest.mark.slow
def test_train_register_forecast_against_a_tracking_server(
    small: tuple[Settings, Path], tracking_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same stages with ``DAP_MLFLOW_TRACKING_URI`` pointing at a tracking server."""
    from mlflow import MlflowClient

    from tasks.config import get_settings
    from tasks.evaluate import evaluate
    from tasks.features import build_features
    from tasks.forecast import forecast
    from tasks.register import register
    from tasks.train import train

    url, artifacts = tracking_server
    _, config = small
    monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", url)
    monkeypatch.delenv("DAP_MLFLOW_ARTIFACT_ROOT")
    get_settings.cache_clear()
    settings = get_settings()
    zone = "BE"
    trained = train(zone, D, settings, config_path=config)
    evaluate(zone, D, trained["run_id"], settings, config_path=config)
    registered = register(zone, D, trained["run_id"], settings, config_path=config)
    assert registered["promoted"] is True
    build_features(zone, D, settings)
    result = forecast(zone, D, settings, config_path=config)
    assert result["run_id"] == trained["run_id"]

    server = MlflowClient(tracking_uri=url, registry_uri=url)
    assert (
        server.get_model_version_by_alias(f"day_ahead_price_{zone}", "champion").run_id == trained["run_id"]
    )
    experiment = server.get_experiment_by_name("day-ahead-price-dnn")
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location
    # The model went through the server into its artifact store, not into a local path of the worker.
    assert list(artifacts.rglob("model.keras")), "no model artifact on the server side"


@pytest.mark.integration
def test_training_window_starts_at_the_first_landed_day(small: tuple[Settings, Path]) -> None:
    from tasks.training_data import history_start, training_window

    settings, _ = small
    start = history_start("DE_LU", settings)
    assert start == D - timedelta(days=60)
    assert history_start("NL", settings) is None
    # Window longer than the history: from the first landed day; shorter: the window.
    assert training_window(D, 1092, start) == (start, D - timedelta(days=1))
    assert training_window(D, 50, start) == (D - timedelta(days=50), D - timedelta(days=1))
    assert training_window(D, 1092, None) == (D - timedelta(days=1092), D - timedelta(days=1))
    assert training_window(D, 30, D) == (D - timedelta(days=30), D - timedelta(days=1))  # no prices before D
