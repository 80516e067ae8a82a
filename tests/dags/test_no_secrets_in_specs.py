"""No secret in what the pipeline renders: the Helm chart and the task pods' specs.

Credentials reach a task pod only through the Secret ``day-ahead-secrets``
(``envFrom``): the worker that renders a pod spec may hold them in its environment,
but they must never be copied into the spec. The test sets every credential
variable the pipeline knows to a fresh canary, renders each stage's pod (dry run,
no API server here) and the whole serialized DAG, and asserts the canary is in
none of them; the rendered specs are also scanned with detect-secrets.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.dags.test_helm_chart import _helm, _render

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENV_SOURCE = "day-ahead-secrets"  # the Secret task pods read their credentials from


def _scanner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("secret_scan", REPO / "tools" / "secret_scan.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("secret_scan", module)
    spec.loader.exec_module(module)
    return module


def _scan_documents(docs: list[Any], tmp_path: Path, name: str) -> list[Any]:
    """detect-secrets findings in ``docs`` written as YAML (the form a reviewer reads)."""
    tool = _scanner()
    (tmp_path / name).write_text(yaml.safe_dump_all(docs, sort_keys=True))
    baseline = tool.load_baseline()
    return sorted(tool.scan([name], tmp_path, tool.scan_config(baseline)))


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every credential variable of the pipeline set to one fresh canary value."""
    value = f"canary-{uuid.uuid4()}"
    for var in (
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "ENTSOE_API_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "PGPASSWORD",
        "DAP_ENTSOE_API_TOKEN",  # not a setting: a DAP_ name alone must not get it forwarded
    ):
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "day-ahead")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "day-ahead-artifacts")
    monkeypatch.setenv("AIRFLOW_CONN_NIFI_DEFAULT", f"http://day-ahead:{value}@nifi:8443")
    return value


@pytest.mark.slow
def test_task_pod_specs_take_credentials_only_from_the_secret(
    canary: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from airflow.serialization.serialized_objects import DagSerialization
    from kubernetes.client import ApiClient

    from tasks.config import get_settings

    monkeypatch.setenv("DAP_RUNNER", "kubernetes")
    monkeypatch.setenv("DAP_INGEST_MODE", "nifi")  # the NiFi operators read the connection above
    monkeypatch.setenv("DAP_ZONES", "DE_LU,BE")
    monkeypatch.setenv("DAP_MLFLOW_TRACKING_URI", "https://day-ahead@mlflow.example:5000")
    get_settings.cache_clear()
    try:
        bag = DagBag(str(REPO / "dags"))
    finally:
        get_settings.cache_clear()
    assert bag.import_errors == {}
    dag = bag.dags["day_ahead_daily"]

    specs: dict[str, dict[str, Any]] = {}
    for task in dag.tasks:
        cls = task.operator_class if isinstance(task, MappedOperator) else type(task)
        if not (isinstance(cls, type) and issubclass(cls, KubernetesPodOperator)):
            continue
        op = task.unmap({"arguments": ["--delivery-date", "2026-06-10", "--zone", "BE"]})
        specs[task.task_id] = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))
    assert len(specs) >= 10, f"the DAG renders a pod for each stage: {sorted(specs)}"

    for task_id, spec in specs.items():
        assert canary not in json.dumps(spec), f"{task_id}: a credential was copied into the pod spec"
        base = next(c for c in spec["spec"]["containers"] if c["name"] == "base")
        # Required: a pod without the Secret does not start.
        assert {"secretRef": {"name": ENV_SOURCE, "optional": False}} in base["envFrom"], task_id
        names = {e["name"] for e in base["env"]}
        assert not names & {"MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "PGPASSWORD"}, task_id
        # The URI travels without credentials; the user name alone is no secret.
        uri = next(e["value"] for e in base["env"] if e["name"] == "DAP_MLFLOW_TRACKING_URI")
        assert uri == "https://day-ahead@mlflow.example:5000"
    assert _scan_documents(list(specs.values()), tmp_path, "pods.yaml") == []
    # What the scheduler and the UI get: the serialized DAG, every operator included (NiFi too).
    assert canary not in json.dumps(DagSerialization.to_dict(dag), default=str)


def test_the_rendered_chart_holds_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = _render()
    kinds = {kind for kind, _ in objects}
    assert "ConfigMap" in kinds
    assert "Secret" not in kinds, "the chart never creates the Secret: operators create day-ahead-secrets"
    settings = objects[("ConfigMap", "day-ahead-settings")]["data"]
    credential_words = ("PASSWORD", "TOKEN", "SECRET", "_KEY", "CREDENTIAL")
    # DAP_K8S_SECRET_NAME names the Secret; it is not a credential.
    assert not [k for k in settings if any(w in k for w in credential_words) and not k.endswith("_NAME")]
    # The Secret's *name* (DAP_K8S_SECRET_NAME: "day-ahead-secrets") reads as a keyword finding.
    secret_name = hashlib.sha1(settings["DAP_K8S_SECRET_NAME"].encode()).hexdigest()
    findings = _scan_documents(list(objects.values()), tmp_path, "chart.yaml")
    assert [f for f in findings if f.hashed_secret != secret_name] == []


def test_a_uri_password_put_in_the_chart_values_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployer who puts credentials in the values gets a one-line refusal, not a leaking pod."""
    from pydantic import ValidationError

    from tasks.config import Settings, settings_error

    password = f"canary-{uuid.uuid4()}"
    _helm()
    objects = _render(f"settings.mlflow_tracking_uri=https://day-ahead:{password}@mlflow.example:5000")
    configmap = objects[("ConfigMap", "day-ahead-settings")]["data"]
    assert password in configmap["DAP_MLFLOW_TRACKING_URI"], "the value reached the ConfigMap"
    for key, value in configmap.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    message = str(settings_error(info.value))
    assert "DAP_MLFLOW_TRACKING_URI" in message
    assert password not in message
