#!/usr/bin/env bash
# Build the task image (docker/Dockerfile) and the Airflow image (docker/airflow.Dockerfile)
# with Podman or Docker, then print each image's size and build time.
#
#   docker/build.sh [--local-base] [--only tasks|airflow]
#
# Environment:
#   ENGINE      podman | docker (default: podman if installed, else docker)
#   BASE_IMAGE  base of both images (default python:3.11-slim-bookworm; --local-base:
#               localhost/dap-base:bookworm made by docker/make_base.sh, no registry needed)
#   TAG         image tag (default: the chart's appVersion, charts/day-ahead/Chart.yaml)
#   CA_BUNDLE   CA bundle for the way to PyPI, a build secret never stored in a layer
#               (default /etc/ssl/certs/ca-certificates.crt where it exists)
# Figures go to stdout and var/images/figures.txt; build logs to var/images/build-*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
TAG=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/day-ahead/Chart.yaml)}
LOCAL_BASE=localhost/dap-base:bookworm
only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --local-base) BASE_IMAGE=$LOCAL_BASE ;;
        --only) only=$2; shift ;;
        *) echo "usage: $0 [--local-base] [--only tasks|airflow]" >&2; exit 64 ;;
    esac
    shift
done
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ $ENGINE == podman && -z ${CONTAINERS_CONF:-} ]] && export CONTAINERS_CONF=$PWD/docker/containers.conf
[[ $ENGINE == docker ]] && export DOCKER_BUILDKIT=1
mkdir -p var/images

if [[ $BASE_IMAGE == "$LOCAL_BASE" ]] && ! "$ENGINE" image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    docker/make_base.sh "$LOCAL_BASE"
fi
secret=()
[[ -s $CA_BUNDLE ]] && secret=(--secret "id=ca_bundle,src=$CA_BUNDLE")

figures=var/images/figures.txt
build() {  # name dockerfile
    local name=$1 file=$2 image="day-ahead-$1:$TAG" start seconds size
    [[ -n $only && $only != "$name" ]] && return 0
    echo ">> $ENGINE build $image (base $BASE_IMAGE, log var/images/build-$name.log)"
    start=$(date +%s)
    if ! "$ENGINE" build -f "$file" --build-arg "BASE_IMAGE=$BASE_IMAGE" "${secret[@]}" -t "$image" . \
        >"var/images/build-$name.log" 2>&1; then
        tail -30 "var/images/build-$name.log" >&2
        echo "build: $image failed (full log var/images/build-$name.log)" >&2
        exit 1
    fi
    seconds=$(($(date +%s) - start))
    size=$("$ENGINE" image inspect --format '{{.Size}}' "$image")
    printf '%-32s %7d MB %6d s  %s\n' "$image" $((size / 1000000)) "$seconds" \
        "$ENGINE, base $BASE_IMAGE, $(date -u +%Y-%m-%d), $(nproc) cores" | tee -a "$figures"
}
build tasks docker/Dockerfile
build airflow docker/airflow.Dockerfile
