#!/usr/bin/env bash
# Entry point of the Airflow image, the part of the official image's /entrypoint that the
# official Helm chart relies on: it passes `bash -c "exec airflow scheduler"`,
# `airflow db check-migrations ...` or bare Airflow sub-commands as the container args.
set -euo pipefail
if [[ $# -eq 0 ]]; then
    exec airflow --help
fi
case "$1" in
    bash | sh | python | python3 | airflow | /*) exec "$@" ;;
    *) exec airflow "$@" ;;
esac
