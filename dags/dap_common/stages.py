"""Build one Airflow task per pipeline stage, for the configured runner.

``local``: an ``@task`` that runs ``python -m tasks.<stage> ARGS`` on the
worker (tasks.runner). ``kubernetes``: a KubernetesPodOperator
(dap_common.pod_operator) running the same command in the task image, with
image, resources, service account and data volume from the settings. Either way
the task returns the stage's JSON result (XCom holds references only) and can be
mapped over zones, and a stage exiting 2 (a PipelineError: gate, bad input,
missing model) fails the task without retry; other failures retry with backoff.

This module is imported at DAG parse time: airflow.sdk, the standard library
and tasks.config/tasks.runner only. The Kubernetes provider is imported only
when the kubernetes runner is configured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, get_current_context, task

from tasks.runner import StageFailed, run_stage_command
from tasks.timeutil import delivery_day_for_run, parse_day

if TYPE_CHECKING:
    from airflow.sdk import XComArg

    from tasks.config import Settings

#: Settings forwarded to the stage process/pod as DAP_* env vars.
FORWARDED_SETTINGS = (
    "zones",
    "neighbour_zones",
    "market_timezone",
    "mtu_minutes",
    "source",
    "ingest_mode",
    "train_every_days",
    "train_window_days",
    "promotion_margin",
    "quantiles",
    "tfdv_beam_runner",
    "tfdv_beam_options",
)


def default_args(settings: Settings) -> dict[str, Any]:
    return {
        "owner": "energy-trading-data",
        "retries": settings.retries,
        "retry_delay": timedelta(minutes=settings.retry_delay_minutes),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    }


def run_params() -> dict[str, Param]:
    """The DAG's run parameters: the trigger form shows them, ``--conf`` keys override them.

    ``delivery_date`` (a date field in the form; null, the default, means the day
    after the run fires). Airflow validates it against this schema when a run is
    created, so an impossible date is refused at trigger time.
    """
    return {
        "delivery_date": Param(
            None,
            type=["string", "null"],
            format="date",
            title="Delivery day",
            description="Day to schedule (YYYY-MM-DD). Empty: the day after the run fires, in market time.",
        )
    }


def resolve_delivery_day(
    settings: Settings, requested: Mapping[str, Any], logical_date: Any, run_after: Any
) -> str:
    """Delivery day of a run: ``requested["delivery_date"]`` if set, else the day after the run fires.

    ``requested`` is the run's params (``--conf`` keys override them) or conf.
    Manual runs in Airflow 3 may have no logical date; then ``run_after`` (when
    the run was due) stands in for it. Never the wall clock.
    """
    if requested.get("delivery_date"):
        return parse_day(str(requested["delivery_date"])).isoformat()
    moment = logical_date or run_after
    return delivery_day_for_run(moment, settings.market_timezone).isoformat()


def _run_delivery_day(settings: Settings) -> str:
    context = get_current_context()
    dag_run = context["dag_run"]
    # Params carry the conf's delivery_date (Airflow merges conf into params); conf is the fallback
    # for a run whose params were not merged (core.dag_run_conf_overrides_params = False).
    requested = {**(dag_run.conf or {}), **{k: v for k, v in context["params"].items() if v is not None}}
    return resolve_delivery_day(settings, requested, context.get("logical_date"), dag_run.run_after)


def plan_tasks(settings: Settings) -> tuple[XComArg, XComArg]:
    """Two tasks fixing the run's delivery day: per-zone and day-level stage arguments.

    Airflow maps only over a task's return value, hence two tasks rather than one
    with several outputs.
    """

    @task(task_id="plan_zones", retries=0)
    def plan_zones() -> list[list[str]]:
        day = _run_delivery_day(settings)
        return [["--delivery-date", day, "--zone", zone] for zone in settings.zones]

    @task(task_id="plan_day", retries=0)
    def plan_day() -> list[list[str]]:
        # One-element list so day-level stages wire like zone stages (.expand).
        return [["--delivery-date", _run_delivery_day(settings)]]

    zones: XComArg = plan_zones()
    day: XComArg = plan_day()
    return zones, day


def output_of(task_or_arg: Any) -> XComArg:
    """The return-value XComArg of a mapped stage, whichever runner built it."""
    from airflow.sdk import XComArg

    if isinstance(task_or_arg, XComArg):
        return task_or_arg
    output: XComArg = task_or_arg.output
    return output


def stage(
    settings: Settings,
    task_id: str,
    stage_name: str,
    extra: tuple[str, ...] = (),
    package: str = "tasks",
    **task_kwargs: Any,
) -> Any:
    """An unexpanded stage task: call ``.expand(arguments=...)`` on the result.

    The returned object is a ``partial`` (mapped-operator builder) for both
    runners so DAGs wire the same way whichever runner is configured.
    ``package`` ``research`` runs a research command (``python -m research.<stage>``,
    the backtest DAG); its pods need an image that ships ``research/``.
    """
    if settings.runner == "kubernetes":
        return _pod_stage(settings, task_id, stage_name, extra, package, **task_kwargs)
    return _local_stage(settings, task_id, stage_name, extra, package, **task_kwargs)


def _local_stage(
    settings: Settings,
    task_id: str,
    stage_name: str,
    extra: tuple[str, ...],
    package: str = "tasks",
    **task_kwargs: Any,
) -> Any:
    from airflow.sdk.exceptions import AirflowFailException

    @task(task_id=task_id, **task_kwargs)
    def run_stage(arguments: list[str]) -> dict[str, Any]:
        try:
            return run_stage_command(
                stage_name, [*extra, *arguments], env=stage_env(settings), package=package
            )
        except StageFailed as exc:
            if exc.retryable:
                raise RuntimeError(str(exc)) from exc
            # A gate or bad input: retrying cannot fix it, fail now with the stage's message.
            raise AirflowFailException(str(exc)) from exc

    return run_stage.partial()


def local_command(settings: Settings, task_id: str, module: str, **task_kwargs: Any) -> Any:
    """An unexpanded task running ``python -m <package>.<module>`` on the worker, whatever the runner.

    For steps that are not pipeline stages and never run in the task image
    (the development upstream ``devtools.simulator``).
    """
    package, _, name = module.rpartition(".")
    return _local_stage(settings, task_id, name, (), package, **task_kwargs)


def stage_env(settings: Settings) -> dict[str, str]:
    """DAP_* environment of a stage process or pod (no secrets: those come from k8s secrets)."""
    env: dict[str, str] = {}
    for name in FORWARDED_SETTINGS:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        elif isinstance(value, dict):  # pydantic-settings reads dict settings as JSON
            value = json.dumps({k: v if isinstance(v, tuple) else str(v) for k, v in value.items()})
        env[f"DAP_{name.upper()}"] = str(value)
    return env


def _pod_stage(
    settings: Settings,
    task_id: str,
    stage_name: str,
    extra: tuple[str, ...],
    package: str = "tasks",
    **task_kwargs: Any,
) -> Any:
    # Imports the provider: only when the kubernetes runner is configured.
    from dap_common.pod_operator import StagePodOperator

    kwargs = pod_kwargs(settings, stage_name, extra, package)
    return StagePodOperator.partial(task_id=task_id, **kwargs, **task_kwargs)


def pod_kwargs(
    settings: Settings, stage_name: str, extra: tuple[str, ...] = (), package: str = "tasks"
) -> dict[str, Any]:
    """KubernetesPodOperator arguments of a stage (all but ``task_id`` and ``arguments``)."""
    from kubernetes.client import models as k8s

    data_mount = "/data"
    env = {
        **stage_env(settings),
        "DAP_DATA_ROOT": data_mount,
        # MLflow lives behind a server in the cluster; pods never use a local sqlite file.
        "DAP_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri or "http://mlflow:5000",
    }
    if settings.mlflow_registry_uri:
        env["DAP_MLFLOW_REGISTRY_URI"] = settings.mlflow_registry_uri
    return {
        "name": f"dap-{stage_name.replace('_', '-')}",  # RFC 1123: no underscores
        "namespace": settings.k8s_namespace,
        "image": settings.k8s_image,
        "cmds": ["python", "-m", f"{package}.{stage_name}", *extra],
        "env_vars": [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(env.items())],
        # Credentials (MLflow, ENTSO-E token, S3) come from a Secret, never from the repo.
        "env_from": [
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="day-ahead-secrets", optional=True))
        ],
        "volumes": [
            k8s.V1Volume(
                name="data",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=settings.k8s_data_pvc
                ),
            )
        ],
        "volume_mounts": [k8s.V1VolumeMount(name="data", mount_path=data_mount)],
        "container_resources": k8s.V1ResourceRequirements(
            requests={"cpu": settings.k8s_cpu_request, "memory": settings.k8s_memory_request},
            limits={"cpu": settings.k8s_cpu_limit, "memory": settings.k8s_memory_limit},
        ),
        "service_account_name": settings.k8s_service_account,
        "labels": {"app.kubernetes.io/part-of": "day-ahead-pipeline", "dap/stage": stage_name},
        "do_xcom_push": True,
        "get_logs": True,
        "on_finish_action": "delete_succeeded_pod",
        "startup_timeout_seconds": 300,
    }
