"""Risk-aware key (TIE-like): expected capped remaining length plus a tail term.

SSJF by a point estimate treats a request that is probably short but may run
very long like one that is surely short; the second is the safer bet. With a
predictive distribution (``LengthEstimate.quantiles``) the key is, in tokens::

    E[min(L, cap) | L > g] - g  +  spread * (Q_q(L | L > g) - Q_0.5(L | L > g))

with ``g`` the tokens generated so far and ``cap`` the client's ``max_tokens``
(infinite when not given; every output stops there). Conditioning on
``L > g`` makes the key progress-aware, like ``ssrpt``: it is recomputed when a
preempted request returns to the queue. The conditional distribution is read
from the estimate's quantile function on a grid of 64 levels (as
``LengthEstimate.remaining`` does); once a request outlives the whole grid, the
estimate's exponential upper tail is memoryless: the remaining length is
exponential with mean ``beta`` (capped at ``cap - g``). Without quantiles (a
point predictor) the key is ``ssrpt``'s (``req.predicted_remaining``), with no
tail term. The weight is named ``spread``, not ``tail``: ``tail`` is every
policy's tail budget (``ssjf.policies.base.Policy.tail``).
"""

from __future__ import annotations

import math

from ssjf.policies.base import Policy, TruthLookup, register_policy
from ssjf.policies.settings import number
from ssjf.request import Request

#: Levels at which the quantile function is sampled (as ``LengthEstimate.remaining``).
GRID = 64


@register_policy("risk")
class RiskAware(Policy):
    """Expected capped remaining length plus ``spread`` x (upper quantile - median)."""

    description = "risk-aware: expected capped length + spread x (q_hi - median) (TIE-like)"
    reads_estimates = True
    static_unit = "tokens"

    def __init__(
        self, truth: TruthLookup | None = None, spread: float = 1.0, q: float = 0.9
    ) -> None:
        # spread = 1: one token between the median and the 0.9 quantile costs as
        # much as one expected token.
        super().__init__(truth)
        self.spread = number("risk", "spread", spread, minimum=0.0, strict=False)
        self.q = number("risk", "q", q, minimum=0.5, strict=True)
        if self.q >= 1.0:
            raise ValueError(f"policy 'risk': setting 'q' must be a level in (0.5, 1), got {q!r}")

    def key(self, req: Request, now: float) -> float:
        est = req.estimate
        if est is None or not est.quantiles:
            return req.predicted_remaining
        g = req.generated
        cap = float(req.max_tokens) if req.max_tokens is not None else math.inf
        grid = [est.quantile((i + 0.5) / GRID) for i in range(GRID)]
        above = [min(v, cap) for v in grid if v > g]  # sorted: the quantile function rises
        if above:
            mean = sum(above) / len(above) - g
            width = _quantile(above, self.q) - _quantile(above, 0.5)
        else:
            beta = est.tail_scale()
            if beta is None:
                return req.predicted_remaining
            # Exponential residual life X ~ Exp(beta), capped at cap - g.
            room = cap - g
            mean = beta * -math.expm1(-room / beta)
            hi = min(beta * -math.log(1.0 - self.q), room)
            width = hi - min(beta * math.log(2.0), room)
        return max(mean, 1.0) + self.spread * max(width, 0.0)

    def __repr__(self) -> str:
        return f"RiskAware(spread={self.spread:g}, q={self.q:g})"


def _quantile(ordered: list[float], level: float) -> float:
    """Linear-interpolated quantile of sorted values."""
    pos = level * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
