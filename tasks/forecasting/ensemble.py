"""Combining member forecasts: the epftoolbox ensembles average their members."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def combine(
    members: Sequence[np.ndarray], how: str = "mean", weights: Sequence[float] | None = None
) -> np.ndarray:
    """Element-wise ``mean`` (optionally weighted) or ``median`` of same-shaped forecasts."""
    if not members:
        raise ValueError("no members to combine")
    stack = np.stack([np.asarray(m, dtype=float) for m in members])
    if how == "median":
        if weights is not None:
            raise ValueError("weights apply to how='mean' only")
        return np.median(stack, axis=0)
    if how != "mean":
        raise ValueError(f"unknown combination {how!r}; use 'mean' or 'median'")
    if weights is None:
        return stack.mean(axis=0)
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights: one non-negative value per member, not all zero")
    return np.tensordot(w / w.sum(), stack, axes=1)
