#!/usr/bin/env bash
# Build a local base image with Debian's python3.11 where no registry is reachable:
# debootstrap (minbase) bookworm from the Debian mirror, then `podman import` /
# `docker import` the root filesystem. docker/build.sh --local-base uses it.
#
#   docker/make_base.sh [IMAGE]        (default localhost/dap-base:bookworm; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-localhost/dap-base:bookworm}
ENGINE=${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3.11-venv: `python3.11 -m venv` (ensurepip) in the build stage; tzdata: zoneinfo.
# Installed with apt inside the new root: debootstrap --include fails to configure
# python3.11-venv in the minbase first stage.
PACKAGES=(python3.11 python3.11-venv ca-certificates tzdata)
[[ $ENGINE == podman && -z ${CONTAINERS_CONF:-} ]] && export CONTAINERS_CONF=$PWD/docker/containers.conf
command -v debootstrap >/dev/null 2>&1 || { echo "make_base: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "make_base: debootstrap needs root" >&2; exit 1; }
rootfs=$(mktemp -d var/dap-base-rootfs.XXXXXX 2>/dev/null || { mkdir -p var && mktemp -d var/dap-base-rootfs.XXXXXX; })
# debootstrap mounts proc and sys inside the new root: unmount before removing it.
trap 'umount -R "$rootfs/proc" "$rootfs/sys" 2>/dev/null; rm -rf --one-file-system "$rootfs"' EXIT
start=$(date +%s)
log=var/dap-base-debootstrap.log
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$log" 2>&1 \
    || { tail -20 "$log" "$rootfs/debootstrap/debootstrap.log" >&2; exit 1; }
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    bash -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} && apt-get clean" \
    >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# An imported image has no PATH ("executable file not found"): set it, as the official images do.
tar -C "$rootfs" -c . | "$ENGINE" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "make_base: $IMAGE ($(( $(date +%s) - start )) s, python $("$ENGINE" run --rm "$IMAGE" python3.11 -c 'import platform; print(platform.python_version())'))"
