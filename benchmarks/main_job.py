"""Wall time and peak memory of the main job (the daily run for one delivery day).

    python benchmarks/main_job.py [--delivery-date 2026-11-29] [--fresh]

Runs ``python -m devtools.demo`` as a child process and samples the resident memory of the
whole process tree (the demo, the Airflow run and every stage process it starts) every
0.2 s. Targets, install excluded, 2 cores: <= 5 min and <= 4 GiB. ``--fresh``
starts from an empty data root (bootstrap of history included); without it the history
already landed is reused, which is what a production day looks like.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delivery-date", default="2026-11-29")
    parser.add_argument("--fresh", action="store_true", help="empty data root: include the history bootstrap")
    args = parser.parse_args()
    env = dict(os.environ)
    tmp = None
    if args.fresh:
        tmp = Path(tempfile.mkdtemp(prefix="dap-bench-"))
        env["DAP_DATA_ROOT"] = str(tmp / "data")
    cmd = [sys.executable, "-m", "devtools.demo", "--delivery-date", args.delivery_date]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=REPO, env=env)
    ps = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            peak = max(peak, tree_rss(ps))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"main job ({'fresh data root' if args.fresh else 'history reused'}), exit {child.returncode}")
    print(f"  wall time   {wall:7.1f} s   (target <= 300 s)")
    print(f"  peak memory {peak / 2**30:7.2f} GiB (target <= 4 GiB, whole process tree)")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
