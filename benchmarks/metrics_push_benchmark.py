"""What pushing stage metrics adds to a stage: target at most about 0.5 s.

    PYTHONPATH=. .venv/bin/python benchmarks/metrics_push_benchmark.py [--repeat 20]

Against a real Pushgateway on 127.0.0.1 (Debian ``prometheus-pushgateway``): the cold
cost a stage pays once (a fresh interpreter importing prometheus-client, collecting the
metrics of a schedule result for two zones and pushing its three groups), the warm
median of the same push, and how long a hung gateway (accepts, never answers) holds a
stage: one ``DAP_PUSHGATEWAY_TIMEOUT_S``, after which the push is abandoned with a warning.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.config import Settings  # noqa: E402
from tasks.metrics import StageRun, push_stage_metrics  # noqa: E402
from tests.helpers.prometheus import pushgateway  # noqa: E402

RESULT = {
    "zones": {
        z: {"expected_margin_eur": 812.5, "expected_cost_eur": 1.2e5, "energy_bought_mwh": 2400.0,
            "energy_sold_mwh": 15.0, "storage_cycles": 1.4}
        for z in ("DE_LU", "BE")
    }
}  # fmt: skip
# A stage has imported tasks.cli (and with it the settings) before it pushes; the clock starts there.
COLD = """
import sys, time
from datetime import date
import tasks.cli
from tasks.config import Settings
settings = Settings(pushgateway_url=sys.argv[1])
t0 = time.perf_counter()
from tasks.metrics import StageRun, push_stage_metrics
run = StageRun("schedule", date(2026, 3, 29), None, 4.0, 0, result={result!r})
n = push_stage_metrics(run, settings)
print(n, time.perf_counter() - t0)
"""


def hung_gateway() -> tuple[str, socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    threading.Thread(target=lambda: [server.accept() for _ in range(100)], daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", server


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    run = StageRun("schedule", date(2026, 3, 29), None, 4.0, 0, result=RESULT)
    with tempfile.TemporaryDirectory() as tmp, pushgateway(Path(tmp)) as url:
        cold = subprocess.run(
            [sys.executable, "-c", COLD.format(result=RESULT), url],
            capture_output=True, text=True, check=True, env={"PYTHONPATH": str(REPO), "PATH": ""},
        ).stdout.split()  # fmt: skip
        settings = Settings(pushgateway_url=url)
        warm = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            assert push_stage_metrics(run, settings) == 3
            warm.append(time.perf_counter() - t0)
    hung_url, server = hung_gateway()
    hung = Settings(pushgateway_url=hung_url)
    t0 = time.perf_counter()
    pushed = push_stage_metrics(run, hung)
    cut_off = time.perf_counter() - t0
    server.close()
    print(
        f"cold push (fresh stage process: prometheus-client import included), {cold[0]} groups: {float(cold[1]):.3f} s"
    )
    print(f"warm push, 3 groups, median of {args.repeat}: {statistics.median(warm) * 1000:.1f} ms")
    print(
        f"hung gateway: cut off after {cut_off:.2f} s (timeout {hung.pushgateway_timeout_s} s), {pushed} pushed"
    )
    ok = float(cold[1]) <= 0.5 and cut_off <= hung.pushgateway_timeout_s + 0.5
    print("target (<= 0.5 s per stage, hung gateway cut off at the timeout):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
