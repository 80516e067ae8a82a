# Airflow image for the official Apache Airflow Helm chart (charts/airflow-values.yaml):
# Airflow, the Kubernetes provider and the DAGs with their light dependencies, installed
# from the repo's lock (requirements.lock, as constraints) so the workers run the versions
# the tests run. Stages run in the task image (docker/Dockerfile), not here.
# Layout of the official apache/airflow image as far as the chart relies on it:
# AIRFLOW_HOME=/opt/airflow with dags/ and logs/, user `airflow` uid 50000 in group 0
# (files group-writable, so any uid in group 0 works), commands on PATH from
# /home/airflow/.local/bin, dumb-init as PID 1 and an entry point that runs
# `bash -c ...`, `airflow ...` or bare Airflow sub-commands.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
USER root
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle PIP_CERT=/run/secrets/ca_bundle; fi \
    && python3.11 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check uv==0.13.9
WORKDIR /build
COPY requirements.lock overrides.txt docker/airflow-image.txt ./
ENV UV_COMPILE_BYTECODE=1 VIRTUAL_ENV=/home/airflow/.local UV_PYTHON_DOWNLOADS=never
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export SSL_CERT_FILE=/run/secrets/ca_bundle; fi \
    && /opt/uv/bin/uv venv --python python3.11 /home/airflow/.local \
    && /opt/uv/bin/uv pip install --no-cache -r airflow-image.txt -c requirements.lock --override overrides.txt

FROM ${BASE_IMAGE}
USER root
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dumb-init \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow
# PYTHONPATH: `tasks` and the DAGs' own package `dap_common` import in every process,
# not only where Airflow puts the DAGs folder on sys.path.
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_UID=50000 \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    PATH=/home/airflow/.local/bin:$PATH \
    VIRTUAL_ENV=/home/airflow/.local \
    PYTHONPATH=/opt/dap:/opt/airflow/dags \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build --chown=50000:0 /home/airflow/.local /home/airflow/.local
# The DAGs' light imports: tasks.config, tasks.runner, tasks.timeutil, tasks.nifi (the
# stage modules are copied too but never imported on the Airflow side).
COPY --chown=50000:0 tasks/ /opt/dap/tasks/
COPY --chown=50000:0 dags/ /opt/airflow/dags/
# The flow definition NiFiRunFlowOperator deploys when the process group is missing.
COPY --chown=50000:0 nifi/day_ahead_ingest.json /opt/dap/nifi/day_ahead_ingest.json
COPY docker/airflow-entrypoint.sh /entrypoint
RUN mkdir -p /opt/airflow/logs \
    && chown -R 50000:0 /opt/airflow /home/airflow \
    && chmod -R g+rwX /opt/airflow /home/airflow \
    && /home/airflow/.local/bin/python -m compileall -q /opt/dap/tasks /opt/airflow/dags
WORKDIR /opt/airflow
USER 50000
EXPOSE 8080
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
