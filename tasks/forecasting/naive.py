"""Weekly naive benchmark: each day's prices equal those of the same weekday one week earlier."""

from __future__ import annotations

import numpy as np


def weekly_naive(prices: np.ndarray) -> np.ndarray:
    """Forecast ``prices[d]`` by ``prices[d - 7]``; the first 7 rows are NaN.

    ``prices`` is a day matrix ``[n_days, slots]`` of consecutive days.
    """
    p = np.asarray(prices, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"prices must be a [n_days, slots] matrix, got shape {p.shape}")
    out = np.full_like(p, np.nan)
    out[7:] = p[:-7]
    return out
