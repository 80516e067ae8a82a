"""Contract tests of the kubernetes runner: the pod spec each stage would get.

No Kubernetes API server can run on these machines, so these tests render the
pod request offline (``dry_run``) and check it; they do not start a pod.
"""

from __future__ import annotations

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
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from dap_common.stages import pod_kwargs
    from kubernetes.client import ApiClient

    op = KubernetesPodOperator(
        task_id=f"t_{stage}", arguments=arguments, **pod_kwargs(settings, stage, extra)
    )
    pod = op.build_pod_request_obj(dry_run=True)
    spec: dict = ApiClient().sanitize_for_serialization(pod)
    return spec


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
    assert env["DAP_MLFLOW_TRACKING_URI"] == "http://mlflow.day-ahead:5000"
    assert not any("token" in k.lower() or "password" in k.lower() for k in env), (
        "secrets must come from a Secret"
    )
    assert base["envFrom"][0]["secretRef"]["name"] == "day-ahead-secrets"
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


def test_daily_dag_maps_pods_over_zones(k8s_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from tasks.config import get_settings

    get_settings.cache_clear()
    try:
        bag = DagBag("dags")
    finally:
        get_settings.cache_clear()
    assert bag.import_errors == {}
    dag = bag.dags["day_ahead_daily"]
    train = dag.get_task("train_if_due")
    assert (
        train.operator_class is KubernetesPodOperator
        or train.operator_class.__name__ == "KubernetesPodOperator"
    )
    assert train.partial_kwargs["cmds"] == ["python", "-m", "tasks.train", "--if-due"]
    assert "arguments" in train.expand_input.value  # one pod per zone at run time
