"""Real stack components for the fault tests, started by the tests themselves.

The same classes as ``make stack`` (devtools/stack.py), on free ports under a
temporary directory: SeaweedFS's S3 server, PostgreSQL (Debian's package, which
``tools/system_packages.sh`` installs) and the MLflow server on both. A component
whose binary is missing skips its tests and says why.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.stack import Credentials, MlflowServer, Postgres, SeaweedS3, StackError, free_port, stop_group


@pytest.fixture(scope="session")
def stack_root() -> Iterator[Path]:
    # Not under pytest's tmp (0700): PostgreSQL runs as its own user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="dap-stack-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def creds(stack_root: Path) -> Credentials:
    return Credentials.load_or_create(stack_root)


@pytest.fixture(scope="session")
def s3(stack_root: Path, creds: Credentials) -> Iterator[SeaweedS3]:
    ports = {name: free_port() for name in ("s3", "weed_master", "weed_volume", "weed_filer")}
    server = SeaweedS3(stack_root, ports, creds.s3_access_key, creds.s3_secret_key)
    try:
        proc = server.up()
    except StackError as exc:
        pytest.skip(f"SeaweedFS S3 server could not start: {exc}")
    yield server
    stop_group(proc.pid)


@pytest.fixture(scope="session")
def postgres(stack_root: Path, creds: Credentials) -> Iterator[Postgres]:
    try:
        Postgres.bindir()
    except StackError as exc:
        pytest.skip(str(exc))
    if shutil.which("runuser") is None:
        pytest.skip("runuser not found (util-linux); PostgreSQL cannot be started as its own user")
    pg = Postgres(stack_root, free_port(), creds.pg_password)
    pg.up(databases=("mlflow",))
    yield pg
    pg.down()


@pytest.fixture(scope="session")
def mlflow_server(stack_root: Path, postgres: Postgres, s3: SeaweedS3) -> Iterator[MlflowServer]:
    server = MlflowServer(stack_root, free_port(), postgres.url("mlflow"), s3.env())
    server.up(timeout=300)
    yield server
    server.down()


@pytest.fixture
def s3_env(s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """This test's data root on the S3 server (its own prefix) and a local mirror."""
    env = {**s3.env(), "DAP_DATA_URL": f"s3://dap-data/{tmp_path.name}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
