"""How long the schedule LP takes, and how that grows with assets and horizon.

    PYTHONPATH=. .venv/bin/python benchmarks/optimise_benchmark.py [--repeat 7]

Targets: one delivery day of 96 quarter-hours with 1 battery +
portfolio <= 50 ms; 100 assets <= 2 s. Figures are wall-clock medians of warm
solves (scipy/HiGHS already imported; the first, cold call is printed apart),
on whatever machine runs this — shared CI runners are noisy.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from tasks.optimise import Storage, optimise_zone


def assets(n: int) -> list[Storage]:
    leg = math.sqrt(0.9)
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        p = float(rng.uniform(1, 20))
        e = p * float(rng.choice([1.0, 2.0, 4.0]))
        out.append(Storage(f"b{i}", p, e, leg, leg, 0.05 * e, 0.95 * e, 0.5 * e, 0.5 * e, 2.0, 1.0))
    return out


def case(
    n_assets: int, n_days: int, mtu: int = 15, scenarios: int = 3, cvar: float = 0.0
) -> tuple[float, int]:
    n = n_days * 24 * 60 // mtu
    rng = np.random.default_rng(0)
    p50 = 60 + 30 * np.sin(np.linspace(0, 4 * np.pi * n_days, n)) + rng.normal(0, 8, n)
    scen = np.stack([p50 - 15, p50, p50 + 20])[:scenarios]
    w = [0.3, 0.4, 0.3][:scenarios] if scenarios == 3 else [1.0]
    base = rng.uniform(0, 100, n)
    a = assets(n_assets)
    t = time.perf_counter()
    optimise_zone(scen, base, a, mtu, weights=w, cvar_weight=cvar)
    return time.perf_counter() - t, 3 * n * n_assets


def median_ms(repeat: int, **kw: int | float) -> tuple[float, int]:
    runs = [case(**kw) for _ in range(repeat)]  # type: ignore[arg-type]
    return 1000 * statistics.median(r[0] for r in runs), runs[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    cold, _ = case(1, 1)
    print(f"cold first solve (imports scipy.optimize): {1000 * cold:.0f} ms")
    print(
        "\nassets x 1 day of 96 quarter-hours (expected price; target 1 asset <= 50 ms, 100 assets <= 2000 ms)"
    )
    print(f"{'assets':>7} {'variables':>10} {'median ms':>10}")
    for n in (1, 2, 5, 10, 25, 50, 100, 200):
        ms, nv = median_ms(args.repeat if n <= 100 else 3, n_assets=n, n_days=1)
        print(f"{n:>7} {nv:>10} {ms:>10.1f}")
    print("\n1 asset, horizon in days of quarter-hours")
    print(f"{'days':>7} {'variables':>10} {'median ms':>10}")
    for d in (1, 2, 7, 14, 30):
        ms, nv = median_ms(args.repeat, n_assets=1, n_days=d)
        print(f"{d:>7} {nv:>10} {ms:>10.1f}")
    print("\n10 assets x 7 days")
    ms, nv = median_ms(3, n_assets=10, n_days=7)
    print(f"{10:>7} {nv:>10} {ms:>10.1f}")
    print("\nrisk-aware (CVaR over 3 quantile scenarios), 1 day of 96 quarter-hours")
    for n in (1, 100):
        ms, nv = median_ms(args.repeat, n_assets=n, n_days=1, cvar=1.0)
        print(f"{n:>7} {nv:>10} {ms:>10.1f}")


if __name__ == "__main__":
    main()
