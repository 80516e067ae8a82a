"""Start ``python -m tasks.serve`` on 127.0.0.1 over a data root, for the API tests and the load benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


class ApiDidNotStart(RuntimeError):
    """The API exited or did not answer /health in time; the message holds its output's tail."""


def start_api(root: Path, port: int, env: dict[str, str], timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """The API process once ``/health`` answers 200; ``env`` adds e.g. ``DAP_API_TOKENS``."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "DAP_DATA_ROOT": str(root), **env}
    cmd = [
        sys.executable,
        "-m",
        "tasks.serve",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=full_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise ApiDidNotStart(f"the API did not start within {timeout:.0f} s: {out[-2000:]}")
        time.sleep(0.2)
