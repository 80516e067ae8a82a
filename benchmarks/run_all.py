"""Run every benchmark script in turn and print their figures (``make bench``).

Each script is also runnable on its own; see the docstring at its top. Figures
depend on the machine: the targets in the issues are for 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "optimise_benchmark.py",
    "validation_benchmark.py",
    "ingest_benchmark.py",
    "bench_forecasting.py",
    "serve_load.py",
    "main_job.py",
    "metrics_push_benchmark.py",
]


def main() -> int:
    failed = []
    for name in ORDER:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / name)], check=False).returncode
        print(f"--- {name}: exit {code}, {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
