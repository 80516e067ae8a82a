"""Load figures of the schedule API: a real uvicorn server on 127.0.0.1, an async aiohttp client.

    PYTHONPATH=. .venv/bin/python benchmarks/serve_load.py [--requests 1000] [--levels 1,5,20]

Builds a small data root (``devtools.sample_schedules``: one published 96-MTU day of
DE_LU), starts ``python -m tasks.serve`` on a free port as its own process, and sends a
bounded number of requests per concurrency level: schedule reads (JSON, the published
version) and what-if re-optimisations of the whole day on revised prices. Prints
throughput and p50/p99 latency next to the targets (2 cores): schedule read p99
<= 50 ms at 20 concurrent clients; what-if of one 96-MTU day p99 <= 100 ms. The client
shares the cores with the server, and the load average before and after is printed:
on a shared machine the figures move with what else runs. The client is aiohttp (its
HTTP parser is C): a pure-Python client spends more CPU per response than the server
and would measure itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 6, 10)
TOKEN = "bench-token"
READ_TARGET_MS, READ_TARGET_CLIENTS, WHATIF_TARGET_MS = 50.0, 20, 100.0


def build_root(root: Path) -> None:
    sys.path.insert(0, str(REPO))
    from devtools.sample_schedules import publish_day
    from tasks.config import Settings

    publish_day(Settings(data_root=root, zones=("DE_LU",)), DAY)


def start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    from tests.helpers.serve import ApiDidNotStart, start_api

    try:
        return start_api(root, port, {"DAP_API_TOKENS": TOKEN})
    except ApiDidNotStart as exc:
        raise SystemExit(str(exc)) from exc


async def run_level(
    client: aiohttp.ClientSession, concurrency: int, total: int, request: dict[str, Any]
) -> tuple[list[float], float]:
    """``total`` requests from ``concurrency`` clients; latencies (s, body read included) and wall time."""
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            t0 = time.perf_counter()
            async with client.request(**request) as response:
                body = await response.read()
            latencies.append(time.perf_counter() - t0)
            if response.status != 200:
                raise SystemExit(f"{request['url']}: {response.status} {body[:200]!r}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


async def measure(
    port: int, levels: list[int], requests: int, whatif_levels: list[int]
) -> list[tuple[str, ...]]:
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=max(levels + whatif_levels))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        base_url=base, headers=headers, connector=connector, timeout=timeout
    ) as client:
        async with client.get(f"/v1/days/{DAY}/schedule", params={"zone": "DE_LU"}) as response:
            sched = (await response.json())["rows"]
        port_rows = [r for r in sched if r["asset_type"] == "portfolio"]
        prices = [round(r["price_expected"] * 1.1 + 5, 2) for r in port_rows]
        read = {"method": "GET", "url": f"/v1/days/{DAY}/schedule"}
        whatif = {
            "method": "POST",
            "url": f"/v1/days/{DAY}/what-if",
            "json": {"zone": "DE_LU", "prices": prices},
        }
        rows: list[tuple[str, ...]] = []
        for name, request, lvls, n in (
            ("schedule read (JSON)", read, levels, requests),
            ("what-if, 96 MTUs", whatif, whatif_levels, max(requests // 4, 50)),
        ):
            await run_level(client, 2, 10, request)  # warm: caches, imports, connections
            for c in lvls:
                lat, wall = await run_level(client, c, n, request)
                target = ""
                if name.startswith("schedule") and c == READ_TARGET_CLIENTS:
                    target = f"p99 <= {READ_TARGET_MS:.0f} ms"
                elif name.startswith("what-if"):
                    target = f"p99 <= {WHATIF_TARGET_MS:.0f} ms"
                rows.append(
                    (
                        name,
                        str(c),
                        str(n),
                        f"{n / wall:.0f}",
                        f"{pct(lat, 50):.1f}",
                        f"{pct(lat, 99):.1f}",
                        f"{statistics.mean(lat) * 1000:.1f}",
                        target,
                    )
                )
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="Load figures of the schedule API (tasks.serve).")
    parser.add_argument("--requests", type=int, default=1000, help="Schedule reads per concurrency level.")
    parser.add_argument("--levels", default="1,5,20", help="Concurrent clients of the schedule read.")
    parser.add_argument("--whatif-levels", default="1,2,4", help="Concurrent clients of the what-if.")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    whatif_levels = [int(v) for v in args.whatif_levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        root = Path(tmp) / "data"
        build_root(root)
        from devtools.stack import free_port  # build_root put the repository on sys.path

        port = free_port()
        proc = start_server(root, port)
        try:
            load_before = os.getloadavg()
            rows = asyncio.run(measure(port, levels, args.requests, whatif_levels))
            load_after = os.getloadavg()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    head = ("endpoint", "clients", "requests", "req/s", "p50 ms", "p99 ms", "mean ms", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    print(
        f"one uvicorn process, client in the same machine; {os.cpu_count()} CPUs; "
        f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
