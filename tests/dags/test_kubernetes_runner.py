"""Contract tests of the kubernetes runner: the pod spec each stage would get, and
how a finished pod's exit code becomes the task's outcome.

No Kubernetes API server can run on these machines, so these tests render the
pod request offline (``dry_run``) and feed hand-built pod statuses to the
operator; they do not start a pod.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest

from tasks.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def k8s_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DAP_RUNNER", "kubernetes")
    monkeypatch.setenv("DAP_ZONES", "DE_LU,BE")
    monkeypatch.setenv("DAP_K8S_IMAGE", "registry.example/day-ahead-tasks:1.2.3")
    monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", "http://mlflow.day-ahead:5000")
    return Settings()


def _pod(settings: Settings, stage: str, extra: tuple[str, ...], arguments: list[str]) -> dict:
    from dap_common.pod_operator import StagePodOperator
    from dap_common.stages import pod_kwargs
    from kubernetes.client import ApiClient

    op = StagePodOperator(task_id=f"t_{stage}", arguments=arguments, **pod_kwargs(settings, stage, extra))
    pod = op.build_pod_request_obj(dry_run=True)
    spec: dict = ApiClient().sanitize_for_serialization(pod)
    return spec


@pytest.mark.slow
def test_stage_pod_runs_the_same_command(k8s_settings: Settings) -> None:
    spec = _pod(
        k8s_settings,
        "validate",
        ("--dataset", "inputs"),
        ["--delivery-date", "2026-11-29", "--zone", "BE"],
    )
    containers = {c["name"]: c for c in spec["spec"]["containers"]}
    base = containers["base"]
    assert base["image"] == "registry.example/day-ahead-tasks:1.2.3"
    assert base["command"] == ["python", "-m", "tasks.validate", "--dataset", "inputs"]
    assert base["args"] == ["--delivery-date", "2026-11-29", "--zone", "BE"]
    env = {e["name"]: e.get("value") for e in base["env"]}
    assert env["DAP_DATA_ROOT"] == "/data"
    assert env["DAP_ZONES"] == "DE_LU,BE"
    assert json.loads(env["DAP_NEIGHBOUR_ZONES"]) == {"BE": ["DE_LU"]}, "dict settings travel as JSON"
    assert env["DAP_MLFLOW_TRACKING_URI"] == "http://mlflow.day-ahead:5000"
    assert not any("token" in k.lower() or "password" in k.lower() for k in env), (
        "secrets must come from a Secret"
    )
    # The Secret is required: a pod without it fails at creation, not halfway through a stage.
    assert base["envFrom"] == [{"secretRef": {"name": "day-ahead-secrets", "optional": False}}]
    assert base["imagePullPolicy"] == "IfNotPresent"
    assert base["resources"]["limits"] == {"cpu": "2", "memory": "6Gi"}
    assert base["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    mounts = {m["name"]: m["mountPath"] for m in base["volumeMounts"]}
    assert mounts["data"] == "/data"
    volumes = {v["name"]: v for v in spec["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "day-ahead-data"
    assert spec["spec"]["serviceAccountName"] == "day-ahead-tasks"
    assert spec["metadata"]["namespace"] == "day-ahead"
    assert spec["metadata"]["labels"]["dap/stage"] == "validate"
    # do_xcom_push adds the sidecar that reads /airflow/xcom/return.json (tasks/cli.py writes it).
    assert "airflow-xcom-sidecar" in containers
    assert any(m["mountPath"] == "/airflow/xcom" for m in base["volumeMounts"])
    # Hardened: restricted Pod Security Standard, read-only root with emptyDirs where stages write.
    pod_ctx = spec["spec"]["securityContext"]
    assert pod_ctx == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for container in containers.values():
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, container["name"]
    assert spec["spec"]["automountServiceAccountToken"] is False
    assert mounts["tmp"] == "/tmp"
    assert mounts["cache"] == "/home/dap/.cache"
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "4Gi"}
    assert env["TMPDIR"] == "/tmp"
    assert env["MPLCONFIGDIR"].startswith("/home/dap/.cache/")
    assert env["KERAS_HOME"].startswith("/home/dap/.cache/")
    # The sidecar runs the task image (no Docker Hub pull), pinned, with limits for the quota.
    sidecar = containers["airflow-xcom-sidecar"]
    assert sidecar["image"] == "registry.example/day-ahead-tasks:1.2.3"
    assert sidecar["imagePullPolicy"] == "IfNotPresent"
    assert sidecar["resources"]["limits"] == {"cpu": "100m", "memory": "64Mi"}


def test_xcom_sidecar_image_is_a_setting(k8s_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAP_K8S_XCOM_SIDECAR_IMAGE", "registry.example/busybox:1.37.0")
    monkeypatch.setenv("DAP_K8S_IMAGE_PULL_POLICY", "Always")
    spec = _pod(Settings(), "publish", (), ["--delivery-date", "2026-11-29"])
    containers = {c["name"]: c for c in spec["spec"]["containers"]}
    assert containers["airflow-xcom-sidecar"]["image"] == "registry.example/busybox:1.37.0"
    assert {c["imagePullPolicy"] for c in containers.values()} == {"Always"}


@pytest.mark.parametrize(
    "image", ["day-ahead-tasks", "day-ahead-tasks:latest", "registry:5000/day-ahead-tasks"]
)
def test_a_moving_image_tag_is_refused(monkeypatch: pytest.MonkeyPatch, image: str) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("DAP_K8S_IMAGE", image)
    with pytest.raises(ValidationError, match="names no fixed version"):
        Settings()
    monkeypatch.setenv("DAP_K8S_IMAGE", "registry:5000/day-ahead-tasks@sha256:" + "0" * 64)
    assert Settings().k8s_image.endswith("0" * 64)


def test_daily_dag_maps_pods_over_zones(k8s_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.definitions._internal.expandinput import DictOfListsExpandInput
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from tasks.config import get_settings

    get_settings.cache_clear()
    try:
        bag = DagBag("dags")
    finally:
        get_settings.cache_clear()
    assert bag.import_errors == {}
    dag = bag.dags["day_ahead_daily"]
    train = dag.get_task("train_if_due")
    assert isinstance(train, MappedOperator)  # one pod per zone at run time
    # The runner's subclass (exit code 2 fails without retry), still a KubernetesPodOperator.
    assert train.operator_class.__name__ == "StagePodOperator"
    assert issubclass(train.operator_class, KubernetesPodOperator)
    assert train.partial_kwargs["cmds"] == ["python", "-m", "tasks.train", "--if-due"]
    assert isinstance(train.expand_input, DictOfListsExpandInput)  # .expand(arguments=...)
    assert "arguments" in train.expand_input.value
    # The scheduler gets the DAG serialized; the subclass must round-trip.
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("train_if_due")
    assert restored.task_type == "StagePodOperator"
    # The hardening travels with the mapped operator to the worker that builds the pod.
    assert train.partial_kwargs["xcom_sidecar_image"] == "registry.example/day-ahead-tasks:1.2.3"
    assert train.partial_kwargs["security_context"].run_as_non_root is True


def _stage_operator(settings: Settings) -> Any:
    """The validate_inputs pod operator of one zone, built through the runner switch."""
    from airflow.sdk import DAG
    from dap_common.stages import default_args, stage

    arguments = ["--delivery-date", "2026-11-29", "--zone", "BE"]
    with DAG("contract", schedule=None, default_args=default_args(settings)):
        mapped = stage(settings, "validate_inputs", "validate", ("--dataset", "inputs")).expand(
            arguments=[arguments]
        )
    return mapped.unmap({"arguments": arguments})  # what the worker runs for map index 0


def _finished_pod(exit_code: int) -> Any:
    """A remote pod as the API returns it after the base container terminated with ``exit_code``."""
    from kubernetes.client import models as k8s

    terminated = k8s.V1ContainerStateTerminated(
        exit_code=exit_code, reason="Completed" if exit_code == 0 else "Error"
    )
    sidecar_done = k8s.V1ContainerStateTerminated(exit_code=0, reason="Completed")
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="dap-validate-x1", namespace="day-ahead"),
        spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="base"), k8s.V1Container(name="airflow-xcom-sidecar")]
        ),
        status=k8s.V1PodStatus(
            phase="Succeeded" if exit_code == 0 else "Failed",
            container_statuses=[
                k8s.V1ContainerStatus(
                    name=name,
                    image="registry.example/day-ahead-tasks:1.2.3",
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=k8s.V1ContainerState(terminated=state),
                )
                for name, state in (("base", terminated), ("airflow-xcom-sidecar", sidecar_done))
            ],
        ),
    )


def _finish(op: Any, remote_pod: Any) -> None:
    """Run the provider's end-of-pod path (``post_complete_action`` -> ``cleanup``).

    Both the sync ``execute`` and the deferrable ``trigger_reentry`` end there. The
    Kubernetes API is stubbed at the provider's own seams (``pod_manager``, ``client``).
    """
    op.pod_manager = mock.MagicMock(name="pod_manager")  # cached_property: this sets the cached value
    op.pod_manager.read_pod.return_value = remote_pod
    op.client = mock.MagicMock(name="client")
    op.post_complete_action(
        pod=remote_pod, remote_pod=remote_pod, context={"ti": mock.MagicMock()}, result=None
    )


def test_gate_failure_in_a_pod_fails_the_task_without_retry(k8s_settings: Settings) -> None:
    """Contract-level test: exit code 2 of the base container -> AirflowFailException (no retry).

    No pod runs (no API server here): a finished V1Pod status is fed to the operator the
    kubernetes runner builds, as the provider would after the pod ended. Parity with the
    local runner, where a stage exiting 2 (PipelineError: failed gate, bad input, missing
    model) raises AirflowFailException too.
    """
    from airflow.sdk.exceptions import AirflowFailException

    op = _stage_operator(k8s_settings)
    assert op.retries >= 1, "the task does retry other failures"
    with pytest.raises(AirflowFailException, match="exited 2") as info:
        _finish(op, _finished_pod(2))
    assert "dap-validate-x1 returned a failure" in str(info.value)  # the provider's message is kept
    op.pod_manager.delete_pod.assert_not_called()  # failed pods stay for inspection (delete_succeeded_pod)
    op.client.patch_namespaced_pod.assert_called_once()  # the provider still labels the pod as checked


@pytest.mark.parametrize("exit_code", [1, 137])
def test_other_pod_failures_keep_the_providers_retryable_error(
    k8s_settings: Settings, exit_code: int
) -> None:
    """Contract-level test: any other non-zero exit -> the provider's AirflowException (retried)."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    op = _stage_operator(k8s_settings)
    with pytest.raises(AirflowException, match="returned a failure") as info:
        _finish(op, _finished_pod(exit_code))
    assert not isinstance(info.value, AirflowFailException)


def test_the_worker_builds_the_hardened_pod_of_a_mapped_stage(k8s_settings: Settings) -> None:
    """What the worker runs for one map index builds the same hardened pod as ``pod_kwargs``."""
    from kubernetes.client import ApiClient

    op = _stage_operator(k8s_settings)
    spec = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))
    containers = {c["name"]: c for c in spec["spec"]["containers"]}
    assert spec["spec"]["securityContext"]["runAsNonRoot"] is True
    assert containers["airflow-xcom-sidecar"]["image"] == "registry.example/day-ahead-tasks:1.2.3"
    assert containers["base"]["securityContext"]["readOnlyRootFilesystem"] is True


def test_succeeded_pod_is_cleaned_up_without_error(k8s_settings: Settings) -> None:
    """Contract-level test: exit 0 -> no exception, the pod is deleted (delete_succeeded_pod)."""
    op = _stage_operator(k8s_settings)
    _finish(op, _finished_pod(0))
    op.pod_manager.delete_pod.assert_called_once()
