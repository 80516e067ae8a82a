#!/usr/bin/env bash
# Debian packages the tests and the local stack run for real: PostgreSQL (Airflow and MLflow
# metadata), Prometheus, Pushgateway and Alertmanager (promtool, amtool). Idempotent: installs
# only what is missing. Without apt-get or root it prints what is missing and the tests that
# need those binaries skip and say why.
set -euo pipefail
PACKAGES=(postgresql prometheus prometheus-pushgateway prometheus-alertmanager)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [[ $(id -u) -ne 0 ]]; then
    echo "system_packages: missing ${missing[*]} (needs apt-get as root); their tests will skip" >&2
    exit 0
fi
echo ">> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || echo "system_packages: apt-get update failed; trying the cached lists" >&2
# --no-install-recommends and policy-rc.d: install the binaries, start no system services.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || echo "system_packages: apt-get install ${missing[*]} failed; their tests will skip" >&2
