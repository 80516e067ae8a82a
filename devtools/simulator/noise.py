"""Counter-based random numbers: a value depends only on its key, never on call order.

This is what makes a simulated day identical whatever range is asked for:
smooth processes (weather fronts, fuel prices) are interpolated between knots
whose values are a hash of (seed, zone, variable, knot index), and per-day
noise comes from a generator seeded with (seed, zone, day, stream).
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np

_MASK = (1 << 64) - 1


def stable_key(*parts: object) -> int:
    """A 64-bit integer from any parts, stable across processes (unlike hash())."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_normal(key: int, index: np.ndarray) -> np.ndarray:
    """Standard normal values, one per integer in ``index``, fixed by ``key``."""
    idx = index.astype(np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        base = np.uint64(key & _MASK)
        a = _splitmix64(idx * np.uint64(2) ^ base)
        b = _splitmix64(idx * np.uint64(2) + np.uint64(1) ^ base)
    u1 = (a >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    u2 = (b >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    u1 = np.maximum(u1, 1e-300)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def smooth_noise(key: int, t_hours: np.ndarray, spacing_hours: float) -> np.ndarray:
    """A smooth, roughly unit-variance process of absolute time (Catmull-Rom between knots)."""
    x = t_hours / spacing_hours
    k = np.floor(x).astype(np.int64)
    f = x - k
    p0, p1, p2, p3 = (hashed_normal(key, k + off) for off in (-1, 0, 1, 2))
    f2 = f * f
    f3 = f2 * f
    value = 0.5 * (
        2 * p1 + (-p0 + p2) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f2 + (-p0 + 3 * p1 - 3 * p2 + p3) * f3
    )
    # Catmull-Rom between independent knots loses variance mid-interval (~0.72 at f=0.5); rescale.
    return value / np.sqrt(1 - 1.1 * f * (1 - f))


def day_rng(seed: int, zone: str, day: date, stream: str) -> np.random.Generator:
    """Independent generator per (seed, zone, day, stream)."""
    return np.random.default_rng([seed & _MASK, stable_key(zone), day.toordinal(), stable_key(stream)])


def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) path with marginal standard deviation ``sd``."""
    eps = rng.standard_normal(n) * sd * np.sqrt(1 - phi * phi)
    out = np.empty(n)
    out[0] = rng.standard_normal() * sd
    for i in range(1, n):
        out[i] = phi * out[i - 1] + eps[i]
    return out
