"""One frozen, typed settings object shared by DAGs and tasks.

Every field can be overridden with an environment variable prefixed ``DAP_``
(e.g. ``DAP_MTU_MINUTES=60``, ``DAP_ZONES='["DE_LU","BE"]'``). The Helm chart
maps its values 1:1 onto these variables. This module must stay light: DAG
files import it at parse time.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from tasks.datasets import SDAC_PRICE_CAP_EUR_MWH, SDAC_PRICE_FLOOR_EUR_MWH
from tasks.errors import ConfigError
from tasks.redact import has_password, redact
from tasks.sources.zones import ZONES

# Off by default: the served ensemble's hourly profile needs no blurring (research/RESULTS.md).
# Shared by the schedule stage and the trading backtest.
DISPATCH_TIMING_SHIFT = 0.0
MAX_TIMING_SHIFT = 0.5  # a probability each way: both ways together at most 1

# Coupled markets: BE's price models also read Germany's load and wind/solar forecasts
# (docs/adr/0004-neighbour-zones.md).
DEFAULT_NEIGHBOUR_ZONES: dict[str, tuple[str, ...]] = {"BE": ("DE_LU",)}

#: When the daily DAG fires on D-1, market time (its cron schedule and deadline derive from it).
DAG_START_LOCAL = "10:15"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTFOLIO = PROJECT_ROOT / "config" / "portfolio.json"


def _known_zone(zone: str) -> str:
    if zone not in ZONES:
        raise ValueError(f"unknown bidding zone {zone!r}; known: {', '.join(ZONES)}")
    return zone


KnownZone = Annotated[str, AfterValidator(_known_zone)]


class StorageAsset(BaseModel):
    """A battery or other storage asset that trades in the day-ahead market."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    zone: KnownZone
    power_mw: float = Field(gt=0, description="Max charge and discharge power.")
    energy_mwh: float = Field(gt=0, description="Usable energy capacity.")
    round_trip_efficiency: float = Field(gt=0, le=1)
    soc_min_frac: float = Field(default=0.0, ge=0, le=1)
    soc_max_frac: float = Field(default=1.0, ge=0, le=1)
    soc_start_frac: float = Field(default=0.5, ge=0, le=1)
    soc_end_frac: float = Field(default=0.5, ge=0, le=1)
    max_cycles_per_day: float | None = Field(default=None, gt=0)
    degradation_eur_per_mwh: float = Field(default=0.0, ge=0, description="Cost per MWh discharged.")


class RetailLoad(BaseModel):
    """The utility's customers: a share of the zone's system load."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zone: KnownZone
    share_of_system_load: float = Field(gt=0, le=1)


class RenewablePlant(BaseModel):
    """Own wind or solar generation: a share of the zone's forecast infeed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    zone: KnownZone
    technology: Literal["wind", "solar"]
    share_of_zone: float = Field(gt=0, le=1)


class Portfolio(BaseModel):
    """What the utility schedules: retail load, own renewables and storage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retail_loads: tuple[RetailLoad, ...] = ()
    renewables: tuple[RenewablePlant, ...] = ()
    storage: tuple[StorageAsset, ...] = ()

    def for_zone(self, zone: str) -> Portfolio:
        """The part of the portfolio that sits in one bidding zone."""
        return Portfolio(
            retail_loads=tuple(r for r in self.retail_loads if r.zone == zone),
            renewables=tuple(r for r in self.renewables if r.zone == zone),
            storage=tuple(s for s in self.storage if s.zone == zone),
        )


class Settings(BaseSettings):
    """Pipeline settings; env vars ``DAP_<FIELD>`` override the defaults."""

    model_config = SettingsConfigDict(env_prefix="DAP_", frozen=True, extra="ignore")

    zones: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("DE_LU",), description="Bidding zones traded; train/forecast/schedule fan out over them."
    )
    # A neighbour is only read when it is one of `zones`: the run ingests and validates it.
    neighbour_zones: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_NEIGHBOUR_ZONES),
        description=(
            "Coupled zones whose load and wind/solar forecasts join a zone's features, e.g. "
            'DAP_NEIGHBOUR_ZONES=\'{"BE": ["DE_LU"]}\'; used where the neighbour is also in zones '
            "(docs/model-card.md)."
        ),
    )
    market_timezone: str = Field(default="Europe/Berlin", description="Local time zone of delivery days.")
    mtu_minutes: Literal[15, 60] = Field(default=15, description="Market time unit of the day-ahead auction.")
    gate_closure_local: str = Field(default="12:00", description="Day-ahead gate closure, local time on D-1.")
    data_root: Path = Field(default=PROJECT_ROOT / "var" / "data", description="Root of all zones of data.")
    inbox_dir: Path | None = Field(
        default=None, description="Where sources drop files; default <data_root>/inbox."
    )
    source: Literal["simulator", "replay", "inbox"] = Field(
        default="simulator",
        description=(
            "In embedded mode, what fills the inbox before ingest: the development simulator, a replay of "
            "a CSV (both run by the DAG's fill_inbox step from devtools/, settings in devtools.settings), "
            "or nothing (inbox: an external upstream fills it). NiFi mode ignores it."
        ),
    )
    ingest_mode: Literal["embedded", "nifi"] = Field(default="embedded", description="Who fills the inbox.")
    inbox_wait_minutes: int = Field(
        default=45,
        ge=1,
        le=600,
        description=(
            "source=inbox: how long the DAG's wait_inbox sensor waits for the run's files before it fails "
            "naming the missing ones (the fallback schedule then applies)."
        ),
    )
    inbox_poke_seconds: int = Field(
        default=60, ge=1, le=3600, description="source=inbox: how often wait_inbox looks (reschedule mode)."
    )
    nifi_conn_id: str = Field(default="nifi_default", description="Airflow connection of the NiFi API.")
    nifi_process_group: str = Field(default="day-ahead-ingest", description="NiFi process group to run.")
    mlflow_tracking_uri: str = Field(
        default="", description="MLflow tracking URI; empty means sqlite under <data_root>/../mlflow."
    )
    mlflow_registry_uri: str = Field(
        default="", description="MLflow registry URI; empty means the tracking URI."
    )
    mlflow_artifact_root: str = Field(
        default="", description="Artifact root for new experiments; empty: local."
    )
    runner: Literal["local", "kubernetes"] = Field(default="local", description="Where stage commands run.")
    k8s_namespace: str = Field(default="day-ahead", description="Namespace of the task pods.")
    k8s_image: str = Field(
        default="day-ahead-tasks:0.1.0",
        description="Task image built from docker/, tagged with the chart's appVersion (never :latest).",
    )
    k8s_service_account: str = Field(default="day-ahead-tasks", description="Service account of task pods.")
    k8s_cpu_request: str = "1"
    k8s_cpu_limit: str = "2"
    k8s_memory_request: str = "2Gi"
    k8s_memory_limit: str = "6Gi"
    k8s_data_pvc: str = Field(default="day-ahead-data", description="PVC mounted at data_root in task pods.")
    portfolio_file: Path = Field(default=DEFAULT_PORTFOLIO, description="JSON file describing the portfolio.")
    train_every_days: int = Field(default=7, ge=1, description="Re-train when the champion is this old.")
    # 1092 days: a one-year window over-fits the DNN on real history
    # (docs/adr/0003-training-window-1092-days.md); with less history it trains on what there is.
    train_window_days: int = Field(
        default=1092,
        ge=28,
        description="Days of history used for training (at most; from the first landed day).",
    )
    promotion_margin: float = Field(
        default=0.0, ge=0, description="Relative MAE improvement a challenger needs over the champion."
    )
    quantiles: Annotated[tuple[float, ...], NoDecode] = (0.1, 0.5, 0.9)
    price_floor_eur_mwh: float = Field(
        default=SDAC_PRICE_FLOOR_EUR_MWH, description="Harmonised SDAC minimum clearing price."
    )
    price_cap_eur_mwh: float = Field(
        default=SDAC_PRICE_CAP_EUR_MWH, description="Harmonised SDAC maximum clearing price."
    )
    dispatch_timing_shift: float = Field(
        default=DISPATCH_TIMING_SHIFT,
        ge=0,
        le=MAX_TIMING_SHIFT,
        description=(
            "Risk setting of the storage dispatch: the probability each way that the forecast's intraday "
            "profile is an hour off; storage then decides on the blurred prices "
            "(tasks.optimise.timing_robust_prices) and cycles less on a profile it cannot trust. Raise it "
            "(e.g. 0.1-0.25) when the schedule runs on a single model rather than the default ensemble, or "
            "when realised capture shows the storage trading on mistimed peaks. 0 = decide on the forecast "
            "as it is."
        ),
    )
    tfdv_beam_runner: str = Field(default="DirectRunner", description="Beam runner for TFDV statistics.")
    tfdv_beam_options: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Extra Beam pipeline options."
    )
    quality_severity: dict[str, Literal["fail", "warn"]] = Field(
        default_factory=dict,
        description="Per-expectation severity overrides (name or fnmatch pattern -> fail|warn) on top of expectations/severity.json.",
    )
    retries: int = Field(default=2, ge=0)
    retry_delay_minutes: int = Field(default=5, ge=0)
    # --- Operations: deadline alert, failure notifier, stage metrics (docs/operations.md) ---
    publish_deadline_local: str = Field(
        default="11:30",
        description=(
            "Local time on D-1 by which the schedule of D must be published; the DAG's deadline alert "
            "fires after it. Must lie between the DAG's 10:15 start and the gate closure."
        ),
    )
    alert_conn_id: str = Field(
        default="dap_alerts_smtp", description="Airflow SMTP connection of the deadline and failure alerts."
    )
    alert_email_to: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Recipients of the alerts (comma-separated); empty: alerts are logged, not sent.",
    )
    runbook_url: str = Field(
        default="docs/runbook.md",
        description="Runbook link put in every alert (a URL where operators read it).",
    )
    pushgateway_url: str = Field(
        default="", description="Prometheus Pushgateway every stage pushes its metrics to; empty: no push."
    )
    pushgateway_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="Seconds a push may take; a slower gateway is cut off (warning).",
    )
    metrics_job: str = Field(
        default="day_ahead_pipeline", description="Prometheus job label of pushed metrics."
    )

    # --- object store (tasks/objectstore.py, docs/stack.md) ---
    data_url: str = Field(
        default="",
        description=(
            "s3://bucket/prefix holding the data root; each stage then mirrors it to data_root (pull "
            "before, push after). Endpoint and keys from AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY. Empty: data_root is the data root."
        ),
    )

    # --- fallback schedule (tasks.fallback, docs/runbook.md "Fallback schedules") ---
    fallback_source: Literal["naive", "last_good_forecast", "none"] = Field(
        default="naive",
        description=(
            "When a zone has no forecast of D (champion or data unavailable), publish a flagged fallback "
            "schedule from this forecast: naive (D-1 prices, D-7 on Mon/Sat/Sun, from D's features) or "
            "last_good_forecast (the newest regular forecast of an earlier day, by clock time); the other "
            "source is tried when the first cannot be built. none: publish nothing."
        ),
    )
    fallback_max_age_days: int = Field(
        default=7, ge=1, le=28, description="Oldest regular forecast the fallback may reuse (days before D)."
    )

    # --- Deployment: hardened task pods (dags/dap_common/stages.py, charts/day-ahead, docker/) ---
    # The ids are the task image's user (docker/Dockerfile); the chart renders them from its
    # `securityContext` values into the settings ConfigMap, so chart workloads and task pods agree.
    k8s_image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        default="IfNotPresent", description="Pull policy of the task image (pinned tags: IfNotPresent)."
    )
    k8s_run_as_user: int = Field(default=10001, ge=1, description="UID of task pods (never 0).")
    k8s_run_as_group: int = Field(default=10001, ge=1, description="GID of task pods.")
    k8s_fs_group: int = Field(default=10001, ge=1, description="fsGroup owning the task pods' volumes.")
    k8s_secret_name: str = Field(
        default="day-ahead-secrets",
        description="Secret with the stage credentials (env); required: a pod without it does not start.",
    )
    k8s_xcom_sidecar_image: str = Field(
        default="",
        description=(
            "Image of the XCom sidecar that hands /airflow/xcom/return.json to Airflow; empty: the task "
            "image (it has sh and sleep and is on the node already, no pull from Docker Hub)."
        ),
    )
    k8s_tmp_size_limit: str = Field(
        default="4Gi", description="Size limit of the task pods' writable /tmp (emptyDir)."
    )

    # --- Schedule API for the desk (tasks.serve, docs/desk-api.md) ---
    api_host: str = Field(
        default="127.0.0.1", description="Address the schedule API binds to (0.0.0.0 in a pod)."
    )
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the schedule API.")
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(),
        description=(
            "Bearer tokens the schedule API accepts, comma-separated (from the Secret named by the chart's "
            "serve.tokensSecret); the API refuses to start without one."
        ),
    )
    api_cache_entries: int = Field(
        default=64,
        ge=1,
        description="Published files (per day, version, zone, format) the API keeps in memory.",
    )
    api_whatif_max_scenarios: int = Field(
        default=100, ge=1, description="Most price scenarios one what-if request may carry."
    )
    api_sync_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="With data_url: how often the schedule API pulls new schedules and forecasts from the store.",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _token_list(cls, value: object) -> object:
        # DAP_API_TOKENS=tok1,tok2 (a Secret's value); blanks are dropped.
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("zones", "quantiles", "tfdv_beam_options", "alert_email_to", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        # Env values may be JSON lists or comma-separated.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(v.strip() for v in text.split(",") if v.strip())
        return value

    @field_validator("k8s_image", "k8s_xcom_sidecar_image")
    @classmethod
    def _pinned_image(cls, value: str) -> str:
        # A moving tag runs whatever was pushed last: pods must name the release they run.
        if not value:
            return value
        last = value.rpartition("/")[2]  # after a registry host:port
        tag = last.partition(":")[2]
        if "@" not in last and tag in ("", "latest"):
            raise ValueError(
                f"{value!r} names no fixed version: give a release tag (e.g. :0.1.0) or a digest"
            )
        return value

    @field_validator("mtu_minutes", mode="before")
    @classmethod
    def _int_from_env(cls, value: object) -> object:
        # Env values arrive as strings; Literal[15, 60] only matches ints.
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("neighbour_zones")
    @classmethod
    def _no_self_neighbour(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        own = sorted(zone for zone, neighbours in value.items() if zone in neighbours)
        if own:
            raise ValueError(f"a zone cannot be its own neighbour: {own}")
        for zone, neighbours in value.items():
            for code in (zone, *neighbours):
                _known_zone(code)
        return value

    @field_validator("zones")
    @classmethod
    def _known_zones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one bidding zone is needed")
        for zone in value:
            _known_zone(zone)
        if len(set(value)) != len(value):
            raise ValueError(f"a zone is listed twice: {list(value)}")
        return value

    @field_validator("mlflow_tracking_uri", "mlflow_registry_uri", "mlflow_artifact_root")
    @classmethod
    def _no_password_in_uri(cls, value: str) -> str:
        # Settings travel in the ConfigMap, the pod spec's env and Airflow's rendered fields:
        # a password in a URI would be readable there. MLflow reads its credentials from env.
        if has_password(value):
            raise ValueError(
                "the URI carries a password; keep it without one and give the credentials as "
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN "
                "(a database URI: PGPASSWORD) from the Secret day-ahead-secrets (docs/security.md)"
            )
        return value

    @field_validator("data_url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        # Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the Secret), never the URL.
        if value and (not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,62}(/[^@\s]*)?", value)):
            raise ValueError(
                "expected s3://bucket[/prefix] with no credentials in it (keys come from "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the endpoint from AWS_ENDPOINT_URL)"
            )
        return value

    @field_validator("market_timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    @field_validator("gate_closure_local", "publish_deadline_local")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a local time HH:MM (e.g. 12:00)")
        return value.strip()

    @field_validator("quantiles")
    @classmethod
    def _usable_quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        # Forecast columns are price_q<percent>; the median is the point forecast (train, evaluate).
        if any(not 0 < q < 1 for q in value):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {list(value)}")
        if any(b <= a for a, b in pairwise(value)):
            raise ValueError(f"quantiles must be strictly increasing, got {list(value)}")
        if 0.5 not in value:
            raise ValueError(f"quantiles must contain the median 0.5, got {list(value)}")
        if any(abs(100 * q - round(100 * q)) > 1e-9 for q in value):
            raise ValueError(f"quantiles must be whole percentages (columns price_qNN), got {list(value)}")
        return value

    @model_validator(mode="after")
    def _price_limits(self) -> Settings:
        if not self.price_floor_eur_mwh < self.price_cap_eur_mwh:
            raise ValueError(
                f"price_floor_eur_mwh {self.price_floor_eur_mwh} must be below price_cap_eur_mwh "
                f"{self.price_cap_eur_mwh} (DAP_PRICE_FLOOR_EUR_MWH < DAP_PRICE_CAP_EUR_MWH)"
            )
        return self

    @model_validator(mode="after")
    def _deadline_before_gate(self) -> Settings:
        if not DAG_START_LOCAL < self.publish_deadline_local <= self.gate_closure_local:
            raise ValueError(
                f"publish_deadline_local {self.publish_deadline_local} must lie after the DAG's start "
                f"{DAG_START_LOCAL} and not after gate_closure_local {self.gate_closure_local} "
                "(DAP_PUBLISH_DEADLINE_LOCAL)"
            )
        return self

    def neighbours_of(self, zone: str) -> tuple[str, ...]:
        """The configured neighbours of ``zone`` that the pipeline ingests (in ``zones``), in order."""
        return tuple(n for n in self.neighbour_zones.get(zone, ()) if n in self.zones)

    @property
    def inbox(self) -> Path:
        return self.inbox_dir or self.data_root / "inbox"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_root.parent / 'mlflow' / 'mlflow.db').resolve()}"

    @property
    def registry_uri(self) -> str:
        return self.mlflow_registry_uri or self.tracking_uri

    @property
    def artifact_root(self) -> str:
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        return (self.data_root.parent / "mlflow" / "artifacts").resolve().as_uri()

    def load_portfolio(self) -> Portfolio:
        """The portfolio file, validated; ConfigError (one line: file, entry, fix) when it cannot work."""
        path = Path(self.portfolio_file)
        fix = f"fix {path} (DAP_PORTFOLIO_FILE) and re-run"
        try:
            raw = json.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"portfolio {path} cannot be read ({exc.strerror or exc}); {fix}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"portfolio {path} is not valid JSON ({exc}); {fix}") from None
        try:
            return Portfolio.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"portfolio {path}: {_portfolio_problems(exc, raw)}; {fix}") from None


def _entry_name(raw: Any, loc: tuple[int | str, ...]) -> str:
    """``storage[1] 'be-bess-1'``: where a validation error sits in the portfolio file."""
    parts: list[str] = []
    node = raw
    for key in loc:
        parts.append(f"[{key}]" if isinstance(key, int) else (f".{key}" if parts else str(key)))
        node = _child(node, key)
        if isinstance(node, dict) and isinstance(node.get("name"), str):
            parts.append(f" {node['name']!r}")
    return "".join(parts)


def _child(node: Any, key: int | str) -> Any:
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    if isinstance(node, dict):
        return node.get(key)
    return None


def _portfolio_problems(exc: ValidationError, raw: Any) -> str:
    return "; ".join(f"{_entry_name(raw, tuple(err['loc']))}: {_clean(err['msg'])}" for err in exc.errors())


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ").replace("\n", " ")


def env_var(field: str) -> str:
    """The environment variable of a settings field."""
    return f"DAP_{field.upper()}"


def settings_error(exc: ValidationError | SettingsError) -> ConfigError:
    """One line naming each bad environment variable, its value and what it must be."""
    if isinstance(exc, SettingsError):
        match = re.search(r'field "([^"]+)"', str(exc))
        var = env_var(match[1]) if match else "a DAP_* variable"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        return ConfigError(
            f"settings: {var} cannot be parsed as JSON{cause}; fix the environment variable and re-run"
        )
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        message = _clean(err["msg"])
        value = err.get("input")
        shown = f" (got {value!r})" if field and isinstance(value, (str, int, float)) else ""
        if str(value) in message:
            shown = ""
        problems.append(f"{env_var(field)}: {message}{shown}" if field else message)
    # The bad value is echoed to help the fix: never a password it may hold.
    return ConfigError(
        redact(f"settings: {'; '.join(problems)}; fix the environment variable(s) (Helm values) and re-run")
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process; ConfigError when they cannot work."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise settings_error(exc) from None
