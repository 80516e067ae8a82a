"""MLflow registry plumbing of the forecasting stages: names, stores, champions.

Names (experiments per model family, the registered model per zone, common
tags) and training configuration come from ``mlruns_config/models.json``.
Tracking and registry URIs come from the settings: a local SQLite store by
default, a tracking server when ``DAP_MLFLOW_TRACKING_URI`` says so. The
registered model itself (the pyfunc, its feature design and the files of its
model directory) is :mod:`tasks.forecasting.served_model`; :func:`load_price_model`
loads it back from a ``models:/`` or ``runs:/`` URI.

A stage that needs the tracking server runs its MLflow work inside
:func:`tracking_server`: it first checks that an ``http(s)`` server answers, and
turns a connection failure (at the start or mid-stage) into
:class:`~tasks.errors.ServiceUnavailable`, a one-line error the task retries.
A missing champion or run stays a :class:`~tasks.errors.ModelNotFoundError`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.config import PROJECT_ROOT, Settings
from tasks.errors import (
    ConfigError,
    IncompatibleModelError,
    ModelNotFoundError,
    PipelineError,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import date

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from tenacity import RetryCallState

    from tasks.forecasting.served_model import DayAheadPriceModel

CONFIG_FILE = PROJECT_ROOT / "mlruns_config" / "models.json"
CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"  # the logged pyfunc's name on its run
WINDOW_ARTIFACT = "window.json"  # the training window's days and splits, on the run
DEFINITION_ARTIFACT = "ensemble_definition.json"  # members, search and combination rule (definition.py)
SEARCH_ARTIFACT = "dnn_search.json"  # the DNN search's trials and chosen values, on the candidate run
COMBINATION_ARTIFACT = "combination.json"  # the served weights and their validation figures

#: The reachability check: tries, and seconds each request may take (connect and read).
CHECK_ATTEMPTS = 4
CHECK_TIMEOUT_S = 5.0
#: Bounds on the MLflow client's own HTTP retries, whose defaults (7 retries with
#: backoff factor 2, 120 s timeout) keep a stage waiting ~4 min on a dead server.
#: Set only where the environment does not set them already.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_UNAVAILABLE_STATUS = (502, 503, 504)

log = logging.getLogger(__name__)


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

    bound_mlflow_http_retries()
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
    except MlflowException as exc:
        if connection_failure(exc):
            raise unavailable(settings, exc) from exc
        return None


def latest_training(
    settings: Settings, zone: str, day: date, config: dict[str, Any]
) -> tuple[date, str] | None:
    """The newest delivery day on or before ``day`` that a version of the zone's model was
    trained for (champion or not), with that version."""
    import datetime as dt

    from mlflow.exceptions import MlflowException

    name = model_name(zone, config)
    try:
        versions = client(settings).search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        if connection_failure(exc):
            raise unavailable(settings, exc) from exc
        raise
    newest: tuple[date, str] | None = None
    for v in versions:
        tag = (v.tags or {}).get("delivery_date")
        if not tag:
            continue
        trained = dt.date.fromisoformat(tag)
        if trained <= day and (newest is None or trained > newest[0]):
            newest = (trained, str(v.version))
    return newest


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


def bound_mlflow_http_retries() -> None:
    """Make the MLflow client give up on a dead server in seconds (env vars set by the operator win)."""
    for key, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _http_servers(settings: Settings) -> dict[str, str]:
    """The http(s) servers behind the settings' URIs, by role; SQLite and file stores need none."""
    servers = {"tracking": settings.tracking_uri, "registry": settings.registry_uri}
    seen: dict[str, str] = {}
    for role, uri in servers.items():
        if uri.startswith(("http://", "https://")) and uri not in seen.values():
            seen[role] = uri.rstrip("/")
    return seen


def server_label(settings: Settings, exc: BaseException | None = None) -> str:
    """``MLflow tracking server <uri>`` (or the registry server the failure ``exc`` names)."""
    servers = _http_servers(settings) or {"tracking": settings.tracking_uri}
    text = " ".join(str(e) for e in _chain(exc)) if exc is not None else ""
    role, uri = next(((r, u) for r, u in servers.items() if u in text), next(iter(servers.items())))
    return f"MLflow {role} server {uri}"


def unavailable(settings: Settings, exc: BaseException) -> ServiceUnavailable:
    """The one-line retryable error for a failure ``exc`` of reaching the MLflow server."""
    why = connection_failure(exc) or "no answer"
    return ServiceUnavailable(
        f"{server_label(settings, exc)} is unreachable ({why}); the task will be retried"
    )


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def connection_failure(exc: BaseException) -> str | None:
    """Why ``exc`` means the server could not be reached (e.g. ``connection refused``), else None.

    Knows requests' connection errors and timeouts, urllib3's "too many 503 error
    responses", the socket errors under them, a 5xx answer to the check and MLflow
    exceptions for HTTP 502/503/504 (MLflow wraps the others in an MlflowException
    raised while handling them).
    """
    for err in _chain(exc):
        reason = _reason(err)
        if reason:
            return reason
    return None


def _reason(err: BaseException) -> str | None:
    import requests
    from mlflow.exceptions import MlflowException

    text = str(err)
    if isinstance(err, requests.exceptions.RetryError):
        status = re.search(r"too many (\d{3}) error responses", text)
        return f"HTTP {status.group(1)}" if status else "too many error responses"
    if isinstance(err, requests.exceptions.Timeout | TimeoutError):
        return "timed out"
    if isinstance(err, requests.exceptions.ConnectionError | ConnectionError):
        return _connection_reason(text)
    if isinstance(err, _Unhealthy):
        return f"HTTP {err.status}"
    if isinstance(err, MlflowException) and err.get_http_status_code() in _UNAVAILABLE_STATUS:
        return f"HTTP {err.get_http_status_code()}"
    return None


def _connection_reason(text: str) -> str:
    if "refused" in text:
        return "connection refused"
    if "resolution" in text or "not known" in text:
        return "host name not resolved"
    return "connection failed"


class _Unhealthy(Exception):
    """The server answered the reachability check with a 5xx status."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url} answered HTTP {status}")
        self.status = status


def check_tracking_server(settings: Settings) -> None:
    """Raise ServiceUnavailable unless each http(s) MLflow server answers ``GET <uri>/health``.

    Tries :data:`CHECK_ATTEMPTS` times with exponential backoff (about 7 s in all on
    a dead server). Any answer below 500 counts as reachable: a proxy's 401 or a
    missing ``/health`` surfaces later as MLflow's own error.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    for role, uri in _http_servers(settings).items():
        retrying = Retrying(
            stop=stop_after_attempt(CHECK_ATTEMPTS),
            wait=wait_exponential(multiplier=1, max=4),
            retry=retry_if_exception(lambda e: connection_failure(e) is not None),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            retrying(_probe, f"{uri}/health", role)
        except Exception as exc:
            if connection_failure(exc) is None:
                raise
            raise unavailable(settings, exc) from exc


def _probe(url: str, role: str) -> None:
    """One ``GET`` of the health endpoint; a 5xx answer counts as down."""
    import requests

    log.debug("checking the MLflow %s server: GET %s", role, url)
    response = requests.get(url, timeout=CHECK_TIMEOUT_S)
    if response.status_code >= 500:
        raise _Unhealthy(url, response.status_code)


def _log_retry(state: RetryCallState) -> None:
    url, role = state.args
    error = state.outcome.exception() if state.outcome else None
    why = connection_failure(error) if error else "no answer"
    log.warning(
        "MLflow %s server %s not answering (%s, try %d of %d)",
        role,
        url,
        why,
        state.attempt_number,
        CHECK_ATTEMPTS,
    )


@contextmanager
def tracking_server(settings: Settings) -> Iterator[None]:
    """Check the MLflow server answers, then run the block; its connection failures become ServiceUnavailable."""
    bound_mlflow_http_retries()
    check_tracking_server(settings)
    try:
        yield
    except (PipelineError, ServiceUnavailable):
        raise
    except Exception as exc:
        if connection_failure(exc) is None:
            raise
        raise unavailable(settings, exc) from exc


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
