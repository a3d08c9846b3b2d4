"""The statistics every benchmark and report uses: percentiles, summaries, Kendall tau, changes.

One interpolation rule for percentiles across the project: **linear interpolation
between the closest ranks** (numpy's default ``method="linear"``, Hyndman & Fan's
type 7): the ``q``-th percentile of ``n`` sorted values sits at position
``(n - 1) * q / 100``, between the two values around it. The simulator's
summaries have always used it (``ssjf bench paper`` and ``ssjf demo`` figures);
the serving bench and the gateway-overhead bench use it too, so their p50s are
computed alike. Empty inputs give NaN rather than raising.

numpy (and scipy, for large Kendall taus) load inside the functions, so importing
this module stays cheap (``import ssjf`` must not import numpy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    Values = Sequence[float] | np.ndarray

#: Below this many values the exact pairwise tau-b is cheap; above it scipy's O(n log n).
_PAIRWISE_LIMIT = 3000


def _array(values: Values) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype=np.float64)


def percentile(values: Values, q: float) -> float:
    """The ``q``-th percentile (``q`` in 0..100), linearly interpolated; NaN when empty."""
    import numpy as np

    x = _array(values)
    return float(np.percentile(x, q)) if x.size else math.nan


def mean(values: Values) -> float:
    """Arithmetic mean; NaN when empty."""
    x = _array(values)
    return float(x.mean()) if x.size else math.nan


def maximum(values: Values) -> float:
    """Largest value; NaN when empty."""
    x = _array(values)
    return float(x.max()) if x.size else math.nan


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures reports give for one latency distribution (NaN when there are no values)."""

    n: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float


def describe(values: Values) -> Summary:
    """Mean, p50, p90, p99 and maximum of ``values`` (percentiles by :func:`percentile`)."""
    x = _array(values)
    return Summary(
        n=int(x.size),
        mean=mean(x),
        p50=percentile(x, 50),
        p90=percentile(x, 90),
        p99=percentile(x, 99),
        max=maximum(x),
    )


def relative_change(value: float, baseline: float) -> float:
    """(value - baseline) / baseline; NaN when the baseline is 0 or either is not finite."""
    if not math.isfinite(baseline) or baseline == 0 or not math.isfinite(value):
        return math.nan
    return (value - baseline) / baseline


def kendall_tau_b(x: Values, y: Values) -> float:
    """Kendall's tau-b (ties in either variable corrected); NaN when undefined."""
    import numpy as np

    a, b = _array(x), _array(y)
    if a.shape != b.shape:
        raise ValueError("x and y must have the same length")
    n = a.size
    if n < 2:
        return math.nan
    if n > _PAIRWISE_LIMIT:
        from scipy.stats import kendalltau

        return float(kendalltau(a, b).statistic)
    concordant = discordant = ties_x = ties_y = 0
    for start in range(0, n, 512):  # chunk the pair matrix to bound memory
        stop = min(start + 512, n)
        dx = np.sign(a[start:stop, None] - a[None, :])
        dy = np.sign(b[start:stop, None] - b[None, :])
        rows = np.arange(start, stop)[:, None]
        upper = np.arange(n)[None, :] > rows  # each unordered pair once
        prod = (dx * dy)[upper]
        concordant += int((prod > 0).sum())
        discordant += int((prod < 0).sum())
        ties_x += int(((dx == 0) & (dy != 0))[upper].sum())
        ties_y += int(((dy == 0) & (dx != 0))[upper].sum())
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom > 0 else math.nan
