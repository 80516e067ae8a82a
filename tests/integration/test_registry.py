"""Champion/challenger promotion against a throwaway SQLite MLflow store."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest

from tasks.errors import ModelNotFoundError
from tasks.register import decide, register

if TYPE_CHECKING:
    from tasks.config import Settings

DAY = date(2026, 6, 1)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("challenger", "champion", "margin", "promoted"),
    [
        (10.0, None, 0.05, True),  # no champion yet
        (9.0, 10.0, 0.05, True),  # wins by more than the margin
        (9.5, 10.0, 0.05, True),  # exactly the margin: promoted (<=)
        (9.6, 10.0, 0.05, False),  # better, but not by the margin
        (10.0, 10.0, 0.0, True),  # a tie passes without a margin
        (10.1, 10.0, 0.0, False),
    ],
)
def test_promotion_rule(challenger: float, champion: float | None, margin: float, promoted: bool) -> None:
    decision, reason = decide(challenger, champion, margin)
    assert decision is promoted
    assert reason


def _fake_training_run(
    settings: Settings, zone: str, challenger_mae: float, champion: str, champion_mae: float | None
) -> str:
    """A run shaped like tasks.train + tasks.evaluate leave it (tiny pyfunc, evaluation figures)."""
    import mlflow
    import pandas as pd
    from mlflow.pyfunc import PythonModel

    from tasks.registry import MODEL_ARTIFACT, client, experiment_id

    class Constant(PythonModel):
        def predict(self, context, model_input, params=None):  # untyped: MLflow would validate hints
            return pd.DataFrame({"price_q50": [1.0] * len(model_input)})

    client(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings, "price_dnn")) as run:
        mlflow.set_tags({"zone": zone, "delivery_date": DAY.isoformat(), "eval_champion_version": champion})
        mlflow.log_metric("eval_challenger_mae", challenger_mae)
        if champion_mae is not None:
            mlflow.log_metric("eval_champion_mae", champion_mae)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT, python_model=Constant(), pip_requirements=["pandas"]
        )
        mlflow.set_tag("model_uri", info.model_uri)
        return str(run.info.run_id)


@pytest.mark.integration
def test_challenger_wins_loses_and_first_model(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.config import get_settings
    from tasks.registry import champion_version, client

    monkeypatch.setenv("DAP_ZONES", "DE_LU,BE")
    monkeypatch.setenv("DAP_PROMOTION_MARGIN", "0.05")
    get_settings.cache_clear()
    settings = get_settings()
    name = "day_ahead_price_DE_LU"
    mc = client(settings)

    # No champion yet: the first model is promoted.
    first = _fake_training_run(settings, "DE_LU", 10.0, "none", None)
    result = register("DE_LU", DAY, first, settings)
    assert result == {**result, "model_name": name, "version": 1, "promoted": True, "skipped": False}
    assert str(mc.get_model_version_by_alias(name, "champion").version) == "1"
    assert mc.get_run(first).data.tags["promotion_decision"] == "promoted"

    # A challenger that beats the champion by more than the margin wins.
    second = _fake_training_run(settings, "DE_LU", 9.4, "1", 10.0)
    result = register("DE_LU", DAY, second, settings)
    assert (result["version"], result["promoted"]) == (2, True)
    assert str(mc.get_model_version_by_alias(name, "champion").version) == "2"
    assert str(mc.get_model_version_by_alias(name, "challenger").version) == "2"

    # One that is better but not by the margin loses: champion stays, challenger moves.
    third = _fake_training_run(settings, "DE_LU", 9.0, "2", 9.3)
    result = register("DE_LU", DAY, third, settings)
    assert (result["version"], result["promoted"]) == (3, False)
    assert str(mc.get_model_version_by_alias(name, "champion").version) == "2"
    assert str(mc.get_model_version_by_alias(name, "challenger").version) == "3"
    run = mc.get_run(third)
    assert run.data.tags["promotion_decision"] == "kept_champion"
    assert "9.0000 > 8.8350" in run.data.tags["promotion_reason"]
    assert run.data.metrics["promoted"] == 0.0
    assert run.data.metrics["promotion_margin"] == 0.05
    assert mc.get_model_version(name, "3").tags["promotion_decision"] == "kept_champion"

    # Registering the same run again reuses its version (idempotent retries).
    again = register("DE_LU", DAY, third, settings)
    assert (again["version"], again["promoted"]) == (3, False)
    assert len(mc.search_model_versions(f"name='{name}'")) == 3

    # Zones have their own models: BE has no champion, DE_LU's is v2.
    assert champion_version(settings, "BE") is None
    be = register("BE", DAY, _fake_training_run(settings, "BE", 50.0, "none", None), settings)
    assert (be["model_name"], be["version"], be["promoted"]) == ("day_ahead_price_BE", 1, True)

    # Training not due: nothing to register.
    skipped = register("DE_LU", DAY, "none", settings)
    assert skipped == {"model_name": name, "version": 2, "promoted": False, "skipped": True}


@pytest.mark.integration
def test_forecast_without_champion_says_what_to_run(settings: Settings) -> None:
    from tasks.forecast import forecast

    with pytest.raises(
        ModelNotFoundError, match=r"run python -m tasks.train --delivery-date 2026-06-01 --zone DE_LU"
    ):
        forecast("DE_LU", DAY, settings)


@pytest.mark.integration
def test_a_model_saved_by_an_older_release_says_to_retrain(settings: Settings) -> None:
    """A registered model whose pickled class lives in a module that no longer exists (the
    model code moved between releases) gives a one-line, actionable error, not a traceback."""
    import sys
    import types

    import mlflow

    from tasks.errors import IncompatibleModelError
    from tasks.registry import MODEL_ARTIFACT, client, experiment_id, load_price_model

    old = types.ModuleType("tasks._retired_model_code")
    code = "from mlflow.pyfunc import PythonModel\n\nclass Retired(PythonModel):\n    def predict(self, context, model_input, params=None):\n        return model_input\n"
    exec(compile(code, "<retired model code>", "exec"), old.__dict__)  # a module-level class, as real code
    sys.modules[old.__name__] = old  # importable while saved: pickled by reference to its module
    try:
        client(settings)
        with mlflow.start_run(experiment_id=experiment_id(settings, "price_dnn")):
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT, python_model=old.Retired(), pip_requirements=[]
            )
    finally:
        del sys.modules[old.__name__]

    with pytest.raises(
        IncompatibleModelError, match=r"older release .*re-train the zone: python -m tasks.train"
    ):
        load_price_model(info.model_uri)


@pytest.mark.integration
def test_training_is_not_due_again_the_day_after_a_challenger_lost(settings: Settings) -> None:
    """A challenger that lost was trained all the same: training is due again a full
    ``train_every_days`` after it, not every day while the old champion keeps winning."""
    from datetime import timedelta

    from tasks.registry import latest_training, load_config
    from tasks.train import is_due

    config = load_config()
    every = settings.train_every_days
    champion = register("DE_LU", DAY, _fake_training_run(settings, "DE_LU", 10.0, "none", None), settings)
    assert champion["promoted"]
    assert is_due(settings, "DE_LU", DAY + timedelta(days=every - 1), config)[0] is False
    assert is_due(settings, "DE_LU", DAY + timedelta(days=every), config)[0] is True

    lost_day = DAY + timedelta(days=every)
    lost = register("DE_LU", lost_day, _fake_training_run(settings, "DE_LU", 12.0, "1", 10.0), settings)
    assert (lost["version"], lost["promoted"]) == (2, False)
    assert latest_training(settings, "DE_LU", lost_day + timedelta(days=1), config) == (lost_day, "2")

    due, reason = is_due(settings, "DE_LU", lost_day + timedelta(days=1), config)
    assert due is False
    assert reason == (
        f"v2 trained for {lost_day.isoformat()} (1 d < {every} d) "
        f"and kept champion v1 (trained for {DAY.isoformat()})"
    )
    assert is_due(settings, "DE_LU", lost_day + timedelta(days=every), config)[0] is True
    # A re-run of a day before the lost challenger goes by what existed on that day.
    assert latest_training(settings, "DE_LU", lost_day - timedelta(days=1), config) == (DAY, "1")
    assert is_due(settings, "DE_LU", lost_day - timedelta(days=1), config)[0] is False
