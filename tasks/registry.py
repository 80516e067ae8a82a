"""MLflow registry plumbing of the forecasting stages: names, stores, champions.

Names (experiments per model family, the registered model per zone, common
tags) and training configuration come from ``mlruns_config/models.json``.
Tracking and registry URIs come from the settings: a local SQLite store by
default, a tracking server when ``DAP_MLFLOW_TRACKING_URI`` says so. The
registered model itself (the pyfunc, its feature design and the files of its
model directory) is :mod:`tasks.forecasting.served_model`; :func:`load_price_model`
loads it back from a ``models:/`` or ``runs:/`` URI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.config import PROJECT_ROOT, Settings
from tasks.errors import ConfigError, IncompatibleModelError, ModelNotFoundError

if TYPE_CHECKING:
    from datetime import date

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from tasks.forecasting.served_model import DayAheadPriceModel

CONFIG_FILE = PROJECT_ROOT / "mlruns_config" / "models.json"
CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"  # the logged pyfunc's name on its run
WINDOW_ARTIFACT = "window.json"  # the training window's days and splits, on the run


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The forecasting configuration; ``path`` overrides keys of the default file."""
    config: dict[str, Any] = json.loads(CONFIG_FILE.read_text())
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"model config {path} does not exist")
        override = json.loads(Path(path).read_text())
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
    return config


def model_name(zone: str, config: dict[str, Any] | None = None) -> str:
    """Registered model of a zone, e.g. ``day_ahead_price_DE_LU``."""
    template: str = (config or load_config())["registered_model"]
    return template.format(zone=zone)


def client(settings: Settings) -> MlflowClient:
    """A client on the configured stores; also points the fluent API at them."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)


def experiment_id(settings: Settings, family: str, config: dict[str, Any] | None = None) -> str:
    """Id of the experiment of a model family, created on first use."""
    config = config or load_config()
    try:
        name = config["experiments"][family]
    except KeyError as exc:
        raise ConfigError(f"model family {family!r} has no experiment in {CONFIG_FILE}") from exc
    mc = client(settings)
    found = mc.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location: str | None = f"{settings.artifact_root.rstrip('/')}/{name}"
    if settings.tracking_uri.startswith(("http://", "https://")) and not settings.mlflow_artifact_root:
        # A tracking server stores artifacts where it is configured to (its proxied
        # mlflow-artifacts store): a local path of this worker would not exist in other pods.
        location = None
    return str(mc.create_experiment(name, artifact_location=location, tags=config.get("tags", {})))


def champion_version(
    settings: Settings, zone: str, config: dict[str, Any] | None = None
) -> ModelVersion | None:
    """The zone's champion model version, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    name = model_name(zone, config)
    mc = client(settings)
    try:
        return mc.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def require_champion(
    settings: Settings, zone: str, day: date, config: dict[str, Any] | None = None
) -> ModelVersion:
    version = champion_version(settings, zone, config)
    if version is None:
        name = model_name(zone, config)
        raise ModelNotFoundError(
            f"no champion of {name} in {settings.registry_uri}; run "
            f"python -m tasks.train --delivery-date {day.isoformat()} --zone {zone} "
            "then tasks.evaluate and tasks.register with its run id first"
        )
    return version


def load_price_model(uri: str) -> DayAheadPriceModel:
    """The wrapped model behind a ``models:/`` or ``runs:/`` URI."""
    import mlflow

    from tasks.forecasting.served_model import DayAheadPriceModel

    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("tasks."):
            raise
        raise IncompatibleModelError(
            f"{uri} was saved by an older release (its model code {exc.name} no longer exists); "
            "re-train the zone: python -m tasks.train --delivery-date D --zone Z, then tasks.evaluate and "
            "tasks.register with its run id (the new version replaces it as champion)"
        ) from exc
    model = loaded.unwrap_python_model()
    if not isinstance(model, DayAheadPriceModel):
        raise ModelNotFoundError(f"{uri} is not a day-ahead price model (got {type(model).__name__})")
    return model
