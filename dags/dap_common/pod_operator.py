"""The stage pod operator of the ``kubernetes`` runner: exit code 2 fails without retry.

A stage exits :data:`tasks.runner.PIPELINE_ERROR_EXIT` (2) on a ``PipelineError``:
a failed quality gate, bad input, a missing model. Retrying cannot fix those, so
the local runner fails the task with ``AirflowFailException``; this
KubernetesPodOperator does the same when the pod's base container terminated
with that code. Any other failure keeps the provider's behaviour (an
``AirflowException``: the task retries with backoff).

It also runs the XCom sidecar hardened: from ``xcom_sidecar_image`` (the settings'
``k8s_xcom_sidecar_image``, default the task image) with the base container's pull
policy and bounded resources, instead of the provider's default ``alpine`` from
Docker Hub (the provider reads that image from the Kubernetes connection only).

The exit-code hook is ``cleanup``: the provider calls it after every pod run (sync, and
deferrable via ``trigger_reentry``), with the remote pod status read after
completion, and raises its failure or skip exception from there.

Imported only when the kubernetes runner is configured (``stages._pod_stage``):
the provider import below must not run at DAG parse time of the local runner.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.utils.xcom_sidecar import PodDefaults
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from tasks.runner import PIPELINE_ERROR_EXIT


def base_container_exit_code(remote_pod: Any, container_name: str) -> int | None:
    """Exit code of the terminated container ``container_name`` of a V1Pod, else None."""
    status = getattr(remote_pod, "status", None)
    for container in getattr(status, "container_statuses", None) or []:
        if container.name != container_name:
            continue
        terminated = container.state.terminated if container.state else None
        return int(terminated.exit_code) if terminated and terminated.exit_code is not None else None
    return None


#: The sidecar only sleeps until Airflow has read the result file; with limits it fits the
#: task namespace's ResourceQuota without relying on the LimitRange defaults.
XCOM_SIDECAR_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}


class StagePodOperator(KubernetesPodOperator):
    """KubernetesPodOperator whose pod exiting with code 2 fails the task without retry."""

    def __init__(self, *, xcom_sidecar_image: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.xcom_sidecar_image = xcom_sidecar_image

    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> Any:
        from kubernetes.client import models as k8s

        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        for container in pod.spec.containers:
            if container.name == PodDefaults.SIDECAR_CONTAINER_NAME:
                if self.xcom_sidecar_image:
                    container.image = self.xcom_sidecar_image
                container.image_pull_policy = self.image_pull_policy
                container.resources = k8s.V1ResourceRequirements(**XCOM_SIDECAR_RESOURCES)
        return pod

    def cleanup(self, pod: Any, remote_pod: Any, *args: Any, **kwargs: Any) -> None:
        # Pass every argument through: the provider's signature grows between releases.
        try:
            super().cleanup(pod, remote_pod, *args, **kwargs)
        except (AirflowFailException, AirflowSkipException):
            raise
        except AirflowException as exc:
            if base_container_exit_code(remote_pod, self.base_container_name) != PIPELINE_ERROR_EXIT:
                raise
            raise AirflowFailException(
                f"{exc}\nThe stage exited {PIPELINE_ERROR_EXIT} (a PipelineError: failed quality gate, "
                "bad input or missing model; its message is in the pod log above): "
                "retrying cannot fix it, failing without retry."
            ) from exc
