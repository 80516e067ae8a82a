"""``make airflow-ui``: ``airflow standalone`` on the demo's project-local Airflow home.

Uses the very environment ``make demo`` uses (``devtools.demo.airflow_env``: SQLite
metadata DB under ``<data_root>/../airflow``, our ``dags/`` folder, parallelism 4), so
the UI shows the runs the demo made. Two things ``airflow standalone`` needs that a
fresh clone lacks:

- it starts its components by the bare name ``airflow``, so the virtualenv's ``bin``
  goes first on ``PATH`` (otherwise it waits forever for components that never start);
- the metadata DB is migrated first (``airflow db migrate``, idempotent).

``AIRFLOW__API__PORT`` moves the UI/API (default 8080); the execution API URL the
tasks call then follows it unless ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` is set.
The process ``exec``s into ``airflow standalone``: stop it with Ctrl-C, or stop its
whole process group (standalone leaves its components running on SIGTERM).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devtools.demo import airflow_env
from tasks.config import get_settings


def standalone_env(base: dict[str, str]) -> dict[str, str]:
    """The environment of ``airflow standalone``: ``base`` plus the demo's Airflow settings."""
    env = {**base, **airflow_env(get_settings())}
    # Not resolved: .venv/bin/python is a symlink to the base interpreter, whose bin has no airflow.
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, *[p for p in base.get("PATH", "").split(os.pathsep) if p]])
    port = env.get("AIRFLOW__API__PORT")
    if port and not env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    return env


def main() -> None:
    env = standalone_env(dict(os.environ))
    airflow = str(Path(sys.executable).parent / "airflow")
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    print(f"airflow-ui: AIRFLOW_HOME={env['AIRFLOW_HOME']}; migrating the metadata DB", flush=True)
    subprocess.run(
        [airflow, "db", "migrate"], env={**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}, check=True
    )
    port = env.get("AIRFLOW__API__PORT", "8080")
    print(f"airflow-ui: starting airflow standalone on http://localhost:{port}", flush=True)
    os.execve(airflow, [airflow, "standalone"], env)  # noqa: S606  # our own argv, no shell


if __name__ == "__main__":
    main()
