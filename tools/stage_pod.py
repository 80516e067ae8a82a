"""Print the Pod manifest the kubernetes runner creates for one stage (YAML on stdout).

    python tools/stage_pod.py STAGE [--extra ARG ...] -- --delivery-date D [--zone Z]

The same ``pod_kwargs`` and ``StagePodOperator`` the DAG uses build the pod request
offline (``dry_run``, no cluster); settings come from the environment (``DAP_*``), e.g.
``DAP_K8S_IMAGE=localhost/day-ahead-tasks:0.1.0``. ``docker/kube_play.sh`` runs the
result with ``podman kube play``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def render(stage: str, extra: tuple[str, ...], arguments: list[str]) -> dict:
    sys.path.insert(0, str(REPO / "dags"))
    from dap_common.pod_operator import StagePodOperator
    from dap_common.stages import pod_kwargs
    from kubernetes.client import ApiClient

    from tasks.config import get_settings

    op = StagePodOperator(task_id=stage, arguments=arguments, **pod_kwargs(get_settings(), stage, extra))
    pod: dict = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))
    return pod


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, arguments = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", help="stage module under tasks/, e.g. features")
    parser.add_argument("--extra", action="append", default=[], help="argument fixed in the command")
    args = parser.parse_args(own)
    with contextlib.redirect_stdout(sys.stderr):  # Airflow logs the pod it builds; stdout is the YAML
        pod = render(args.stage, tuple(args.extra), arguments)
    yaml.safe_dump(pod, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
