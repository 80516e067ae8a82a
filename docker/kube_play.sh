#!/usr/bin/env bash
# Run the pod the kubernetes runner renders for one stage with `podman kube play`, unchanged
# but for the image (the locally built task image) and the data volume (a host directory),
# then show that it ran hardened and read its XCom result the way Airflow does.
#
#   DATA_ROOT=/abs/host/dir docker/kube_play.sh STAGE [--extra ARG ...] -- --delivery-date D [--zone Z]
#
# IMAGE (default localhost/day-ahead-tasks:<chart appVersion>). The data PVC of the pod spec
# (settings k8s_data_pvc) becomes a podman volume bound to DATA_ROOT; the required Secret
# (settings k8s_secret_name) is created empty. Needs podman, runc and catatonit (the pause
# process of `kube play`). Podman does not apply fsGroup to a bound host
# directory, so DATA_ROOT is handed to the pod's uid/gid first, as fsGroup would on a cluster.
# Prints the stage output, the pod's security facts, /airflow/xcom/return.json and the time
# from `kube play` to the stage's exit; the manifest is kept in var/images/pod-STAGE.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATA_ROOT:?set DATA_ROOT to the host directory mounted as the data root}"
TAG=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/day-ahead/Chart.yaml)}
IMAGE=${IMAGE:-localhost/day-ahead-tasks:$TAG}
PY=${PY:-.venv/bin/python}
[[ -z ${CONTAINERS_CONF:-} ]] && export CONTAINERS_CONF=$PWD/docker/containers.conf
stage=$1
mkdir -p var/images
manifest=var/images/pod-$stage.yaml

DAP_RUNNER=kubernetes DAP_K8S_IMAGE=$IMAGE PYTHONPATH=. "$PY" tools/stage_pod.py "$@" 2>/dev/null >"$manifest"
read -r pod volume secret uid gid < <("$PY" - "$manifest" <<'PY'
import sys, yaml
pod = yaml.safe_load(open(sys.argv[1]))
spec, base = pod["spec"], pod["spec"]["containers"][0]
claim = next(v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v)
secret = base["envFrom"][0]["secretRef"]["name"]
ctx = spec["securityContext"]
print(pod["metadata"]["name"], claim, secret, ctx["runAsUser"], ctx["fsGroup"])
PY
)
chown -R "$uid:$gid" "$DATA_ROOT"
podman volume rm -f "$volume" >/dev/null 2>&1 || true
podman volume create --opt type=none --opt o=bind --opt device="$DATA_ROOT" "$volume" >/dev/null
podman secret rm "$secret" >/dev/null 2>&1 || true
# The required Secret, in the form podman 4.3 reads for envFrom (a JSON object of base64
# values); the stages run here need no credentials, its one key shows it reached the stage.
printf '{"KUBE_PLAY_SECRET": "%s"}' "$(printf present | base64)" | podman secret create "$secret" - >/dev/null

trap 'podman kube down "$manifest" >/dev/null 2>&1 || true' EXIT
start=$(date +%s.%N)
podman kube play "$manifest" >/dev/null
code=$(podman wait "$pod-base")
seconds=$(echo "$(date +%s.%N) $start" | awk '{printf "%.1f", $1 - $2}')
echo "== stage output ($pod-base)"
podman logs "$pod-base" 2>&1 | tail -15
echo "== security facts"
podman inspect "$pod-base" --format 'user={{.Config.User}} readonly_rootfs={{.HostConfig.ReadonlyRootfs}} cap_drop={{.HostConfig.CapDrop}} cap_add={{.HostConfig.CapAdd}} security_opt={{.HostConfig.SecurityOpt}}'
sidecar=$pod-airflow-xcom-sidecar
podman exec "$sidecar" id
podman exec "$pod-base" printenv KUBE_PLAY_SECRET 2>/dev/null || podman inspect "$pod-base" --format '{{range .Config.Env}}{{println .}}{{end}}' | grep '^KUBE_PLAY_SECRET='
podman exec "$sidecar" sh -c 'touch /opt/dap/probe 2>&1; touch /airflow/xcom/probe && echo "/airflow/xcom (emptyDir) writable"' || true
echo "== /airflow/xcom/return.json (read from the sidecar, as Airflow does)"
podman exec "$sidecar" cat /airflow/xcom/return.json
echo
printf '== %s: exit %s, %s s from kube play to the stage exit (image %s)\n' "$stage" "$code" "$seconds" "$IMAGE"
[[ $code == 0 ]]
