"""Learning-to-rank key: for predictors whose output is only an order.

A pairwise or listwise ranking head (``ssjf.predict``'s ranking formulations)
emits a score whose differences mean "longer than", not a number of tokens.
This policy serves the lowest score first and claims no unit: it does not cap
the score by ``max_tokens`` (a score is not comparable to a token count) and
declares ``static_unit = None``, so the gateway never buckets the score as
tokens or derives a guard deadline from it (it requires the gateway-held queue,
which compares keys directly). Use ``ssjf`` instead when the predictor's point
is a length.
"""

from __future__ import annotations

from ssjf.policies.base import Policy, register_policy
from ssjf.request import Request


@register_policy("ltr")
class RankScore(Policy):
    """Lowest ranking score first; requests without an estimate score 0 (ties: enqueue order)."""

    description = "ranking-score order (predictors that output only an order; no unit)"
    reads_estimates = True
    static_unit = None

    def key(self, req: Request, now: float) -> float:
        return req.estimate.point if req.estimate is not None else 0.0
