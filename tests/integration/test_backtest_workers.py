"""The backtest's pool workers end with their parent instead of computing on as orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"),
]

REPO = Path(__file__).resolve().parents[2]

PARENT = """
import multiprocessing, os, sys, time
from research.ensemble_backtest import end_with_parent

def worker(parent, pid_file, armed):
    if armed:
        end_with_parent(parent)
    open(pid_file, "w").write(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    ctx.Process(target=worker, args=(os.getpid(), sys.argv[1], sys.argv[2] == "1")).start()
    time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers signal 0; its state in /proc says it is gone
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def orphan_after_parent_killed(tmp_path: Path, armed: bool, wait_s: float) -> tuple[int, bool]:
    pid_file = tmp_path / f"worker-{armed}.pid"
    script = tmp_path / "parent.py"  # a file: spawned workers re-import the parent's __main__
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), str(pid_file), "1" if armed else "0"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.1)
    worker = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + wait_s
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return worker, alive(worker)


def test_a_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    worker, still_running = orphan_after_parent_killed(tmp_path, armed=True, wait_s=10)
    assert not still_running, f"worker {worker} outlived its killed parent"


def test_without_it_the_orphan_keeps_running(tmp_path: Path) -> None:
    """The control: the same worker without ``end_with_parent`` outlives its parent."""
    worker, still_running = orphan_after_parent_killed(tmp_path, armed=False, wait_s=2)
    try:
        assert still_running
    finally:
        if still_running:
            os.kill(worker, signal.SIGKILL)
