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
    "fallback_source",
    "fallback_max_age_days",
    "data_url",
    # Stage metrics (tasks.metrics): where to push, and the deadline they report.
    "pushgateway_url",
    "pushgateway_timeout_s",
    "metrics_job",
    "publish_deadline_local",
    "gate_closure_local",
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


#: Writable paths of a stage pod besides the data root (the root filesystem is read-only):
#: emptyDir volumes, mount path -> (volume name, size limit setting or fixed size).
#: /tmp: TMPDIR (TF, Beam/TFDV statistics, MLflow artifact staging, tempfile);
#: the cache: XDG_CACHE_HOME, matplotlib (MPLCONFIGDIR) and Keras (KERAS_HOME).
POD_HOME = "/home/dap"
POD_CACHE = f"{POD_HOME}/.cache"
POD_TMP = "/tmp"  # noqa: S108 (the pod's own emptyDir volume, not a shared host directory)
CACHE_SIZE_LIMIT = "1Gi"

#: Environment that points every library's scratch files at those mounts (the task image
#: sets the same; the pod repeats it so another image cannot write elsewhere).
POD_SCRATCH_ENV = {
    "HOME": POD_HOME,
    "TMPDIR": POD_TMP,
    "XDG_CACHE_HOME": POD_CACHE,
    "MPLCONFIGDIR": f"{POD_CACHE}/matplotlib",
    "KERAS_HOME": f"{POD_CACHE}/keras",
    "PYTHONDONTWRITEBYTECODE": "1",
    # GX would post usage events from every validation; the task namespace denies that egress.
    "GX_ANALYTICS_ENABLED": "false",
}


def pod_security_context(settings: Settings) -> Any:
    """Pod-level context of the restricted Pod Security Standard (chart: day-ahead.podSecurityContext)."""
    from kubernetes.client import models as k8s

    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=settings.k8s_run_as_user,
        run_as_group=settings.k8s_run_as_group,
        fs_group=settings.k8s_fs_group,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> Any:
    """Container-level context of every container of a stage pod (chart: day-ahead.containerSecurityContext)."""
    from kubernetes.client import models as k8s

    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )


def pod_kwargs(
    settings: Settings, stage_name: str, extra: tuple[str, ...] = (), package: str = "tasks"
) -> dict[str, Any]:
    """KubernetesPodOperator arguments of a stage (all but ``task_id`` and ``arguments``).

    The pod runs hardened (restricted Pod Security Standard): non-root with the image's
    fixed UID/GID, read-only root filesystem with emptyDir volumes where stages write
    (``/tmp`` and the cache directory), no privilege escalation, no capabilities, the
    runtime's default seccomp profile; the image is pinned with an explicit pull policy
    and the credentials Secret is required.
    """
    from kubernetes.client import models as k8s

    data_mount = "/data"
    env = {
        **stage_env(settings),
        **POD_SCRATCH_ENV,
        "DAP_DATA_ROOT": data_mount,
        # MLflow lives behind a server in the cluster; pods never use a local sqlite file.
        "DAP_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri or "http://mlflow:5000",
    }
    if settings.mlflow_registry_uri:
        env["DAP_MLFLOW_REGISTRY_URI"] = settings.mlflow_registry_uri
    if settings.mlflow_artifact_root:
        env["DAP_MLFLOW_ARTIFACT_ROOT"] = settings.mlflow_artifact_root
    return {
        "name": f"dap-{stage_name.replace('_', '-')}",  # RFC 1123: no underscores
        "namespace": settings.k8s_namespace,
        "image": settings.k8s_image,
        "image_pull_policy": settings.k8s_image_pull_policy,
        "cmds": ["python", "-m", f"{package}.{stage_name}", *extra],
        "env_vars": [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(env.items())],
        # Credentials (MLflow, ENTSO-E token, S3) come from a Secret, never from the repo; it is
        # required, so a missing Secret stops the pod at creation with a clear event.
        "env_from": [
            k8s.V1EnvFromSource(
                secret_ref=k8s.V1SecretEnvSource(name=settings.k8s_secret_name, optional=False)
            )
        ],
        "volumes": [
            k8s.V1Volume(
                name="data",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=settings.k8s_data_pvc
                ),
            ),
            k8s.V1Volume(
                name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=settings.k8s_tmp_size_limit)
            ),
            k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=CACHE_SIZE_LIMIT)),
        ],
        "volume_mounts": [
            k8s.V1VolumeMount(name="data", mount_path=data_mount),
            k8s.V1VolumeMount(name="tmp", mount_path=POD_TMP),
            k8s.V1VolumeMount(name="cache", mount_path=POD_CACHE),
        ],
        "container_resources": k8s.V1ResourceRequirements(
            requests={"cpu": settings.k8s_cpu_request, "memory": settings.k8s_memory_request},
            limits={"cpu": settings.k8s_cpu_limit, "memory": settings.k8s_memory_limit},
        ),
        "security_context": pod_security_context(settings),
        "container_security_context": container_security_context(),
        "xcom_sidecar_container_security_context": container_security_context(),
        "xcom_sidecar_image": settings.k8s_xcom_sidecar_image or settings.k8s_image,
        "service_account_name": settings.k8s_service_account,
        "automount_service_account_token": False,
        "labels": {"app.kubernetes.io/part-of": "day-ahead-pipeline", "dap/stage": stage_name},
        "do_xcom_push": True,
        "get_logs": True,
        "on_finish_action": "delete_succeeded_pod",
        "startup_timeout_seconds": 300,
    }
