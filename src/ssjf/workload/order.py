"""Record order: is a file grouped (by model, or sorted by length), and a seeded shuffle.

Without timestamps a workload replays records in file order on generated
arrivals, so a file sorted by model sends one model's requests in a block, then
the next's: queues and means then describe the sort, not the traffic (FCFS mean
JCT 1,181 s grouped against 134 s shuffled on one user's log). The checks are
cheap counts against what a random order would give.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from ssjf.workload.pool import Pool

#: A random order has about E model changes; grouped means fewer than E / this.
_CHANGE_FACTOR = 4.0
#: ... with E at least this, so a few rows of a rare model never look grouped.
_MIN_EXPECTED_CHANGES = 8.0
#: |rank correlation| of output length with file position that reads as "sorted".
_SORTED_RHO = 0.5
#: Rows needed before the correlation is trusted (random order: sd ~ 1/sqrt(n)).
_MIN_ROWS_SORTED = 50


def model_changes(models: Sequence[object]) -> tuple[int, float]:
    """(changes of model between neighbours, the number a uniformly random order expects)."""
    n = len(models)
    if n < 2:
        return 0, 0.0
    changes = sum(1 for a, b in pairwise(models) if a != b)
    same_pairs = sum(c * (c - 1) for c in Counter(models).values())
    # Neighbours i, i+1 share a model with probability sum c(c-1) / (n(n-1)).
    expected = (n - 1) * (1.0 - same_pairs / (n * (n - 1)))
    return changes, expected


def length_order_rho(lengths: np.ndarray) -> float:
    """Spearman rank correlation between file position and output length."""
    n = len(lengths)
    _, inverse, counts = np.unique(lengths, return_inverse=True, return_counts=True)
    if n < 3 or len(counts) < 2:
        return 0.0
    # Tied lengths share their average rank, so ties carry no order of their own.
    starts = np.cumsum(counts) - counts
    ranks = (starts + (counts - 1) / 2.0)[inverse]
    return float(np.corrcoef(np.arange(n, dtype=np.float64), ranks)[0, 1])


def grouping(pool: Pool) -> str | None:
    """Why ``pool``'s order looks grouped (a short phrase), or None when it looks mixed."""
    if pool.models is not None:
        changes, expected = model_changes(pool.models)
        if expected >= _MIN_EXPECTED_CHANGES and changes < expected / _CHANGE_FACTOR:
            return (
                f"grouped by model ({changes} model changes between rows, ~{expected:.0f} if mixed)"
            )
    if len(pool) >= _MIN_ROWS_SORTED:
        rho = length_order_rho(np.asarray(pool.output_tokens))
        if abs(rho) > _SORTED_RHO:
            way = "increasing" if rho > 0 else "decreasing"
            return f"sorted by output length ({way}, rank correlation {rho:+.2f})"
    return None


def shuffled(pool: Pool, seed: int) -> Pool:
    """``pool`` in a random order drawn from ``seed`` (same seed, same order)."""
    return pool.take(np.random.default_rng(seed).permutation(len(pool)))
