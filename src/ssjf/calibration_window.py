"""One calibration group's recent log-ratios and their Kaplan-Meier summary.

Kept apart from :mod:`ssjf.calibration` (which decides how groups combine):
this file only answers "what do the last ``window`` completions of this group
say about ``log(true / predicted)``", censoring included.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from ssjf.estimate import LengthEstimate

#: Levels averaged to get a distribution's mean: the grid of LengthEstimate.remaining(),
#: so a calibrated estimate's point equals the mean its remaining() starts from.
GRID = 64
#: Slack on "the KM distribution reached level q" (products of floats drift by ulps).
_EPS = 1e-9
#: A summary is refreshed once more than 1/REFRESH of the window is new (at every
#: completion while the window holds fewer than REFRESH): an estimate misses at most
#: ~1.6% of the data, and a completion costs O(REFRESH) on average, not O(window).
REFRESH = 64


def grid_mean(levels: tuple[float, ...], values: list[float] | tuple[float, ...]) -> float:
    """Mean of the quantile function on the GRID levels, as LengthEstimate reads it.

    That mean is linear in the quantile values (linear interpolation, flat lower
    tail, an exponential upper tail whose scale is linear in the top two
    values), so it is a weighted sum with weights that depend on the levels only.
    """
    return sum(w * v for w, v in zip(grid_weights(levels), values, strict=True))


@lru_cache(maxsize=16)
def grid_weights(levels: tuple[float, ...]) -> tuple[float, ...]:
    """Weights of :func:`grid_mean`, read off :meth:`LengthEstimate.quantile` itself.

    Step vectors (0 .. 0, 1 .. 1) are valid quantile values; the mean of the one
    starting at ``k`` is the sum of the weights from ``k`` on.
    """
    tails = []
    for k in range(len(levels) + 1):
        step = tuple((q, 0.0 if j < k else 1.0) for j, q in enumerate(levels))
        est = LengthEstimate(point=0.0, quantiles=step)
        tails.append(sum(est.quantile((i + 0.5) / GRID) for i in range(GRID)) / GRID)
    return tuple(tails[k] - tails[k + 1] for k in range(len(levels)))


@dataclass(frozen=True, slots=True)
class Summary:
    """What a group's window says: mean ratio (scale) and mean-one ratio quantiles (shape)."""

    scale: float
    shape: tuple[float, ...]


class RatioWindow:
    """The last ``limit`` (log-ratio, censored) pairs of one group, also kept sorted.

    The FIFO says which pair leaves when the window is full; the sorted list
    makes the Kaplan-Meier pass a single scan. ``summary`` is cached until
    enough new pairs arrived (:data:`REFRESH`).
    """

    __slots__ = ("_fifo", "_fresh", "_seq", "_sorted", "_summary", "held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._fifo: deque[tuple[float, int, int]] = deque()
        # (log-ratio, censored 0/1, seq): events sort before censored pairs of equal
        # value, the Kaplan-Meier convention (censored at t are still at risk at t).
        self._sorted: list[tuple[float, int, int]] = []
        self._seq = 0
        self._summary: Summary | None = None
        self._fresh = 0  # pairs added since the summary was computed
        #: The group's scale as last passed on to estimates (the calibrator's hysteresis).
        self.held: float | None = None

    def __len__(self) -> int:
        return len(self._fifo)

    def add(self, log_ratio: float, censored: bool) -> None:
        """Remember one completion, forgetting the oldest beyond the window."""
        item = (log_ratio, 1 if censored else 0, self._seq)
        self._seq += 1
        self._fifo.append(item)
        bisect.insort(self._sorted, item)
        if len(self._fifo) > self.limit:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._fresh += 1

    def quantiles(self, levels: tuple[float, ...]) -> list[float]:
        """Kaplan-Meier quantiles of the log-ratio at ``levels`` (window must be non-empty).

        Levels the estimate never reaches (all remaining pairs censored) get the
        largest value seen: the true ratio is at least that.
        """
        items = self._sorted
        out: list[float] = []
        at_risk = len(items)
        survival = 1.0
        j, n_levels = 0, len(levels)
        for value, censored, _ in items:
            if not censored:
                survival *= 1.0 - 1.0 / at_risk
                while j < n_levels and 1.0 - survival >= levels[j] - _EPS:
                    out.append(value)
                    j += 1
                if j == n_levels:
                    break
            at_risk -= 1
        out.extend([items[-1][0]] * (n_levels - j))
        return out

    def summary(self, levels: tuple[float, ...]) -> Summary:
        """Scale (mean ratio on the grid) and mean-one shape of this window's ratios."""
        if self._summary is None or self._fresh * REFRESH > len(self._fifo):
            self._fresh = 0
            ratios = [math.exp(v) for v in self.quantiles(levels)]
            mean = grid_mean(levels, ratios)
            self._summary = Summary(scale=mean, shape=tuple(r / mean for r in ratios))
        return self._summary
