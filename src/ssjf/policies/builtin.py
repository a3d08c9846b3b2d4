"""The built-in policies: FCFS, oracle SJF/SRPT, speculative SJF/SRPT, HRRN."""

from __future__ import annotations

from ssjf.policies.base import Policy, TruthLookup, register_policy
from ssjf.policies.size import SizedPolicy
from ssjf.request import Request


@register_policy("fcfs")
class FCFS(Policy):
    """First come, first served: by arrival time."""

    description = "first come, first served"
    static_unit = "arrival"

    def key(self, req: Request, now: float) -> float:
        return req.arrival


@register_policy("sjf")
class OracleSJF(SizedPolicy):
    """ORACLE shortest job first: by the true output length (simulator only).

    ``size=service``: by true service time (prompt prefill + true output decode).
    """

    oracle = True
    description = "oracle shortest-job-first (true lengths; upper bound)"

    def key(self, req: Request, now: float) -> float:
        return self.true_total(req)


@register_policy("ssjf")
class SpeculativeSJF(SizedPolicy):
    """Speculative shortest job first: by the predicted output length.

    ``size=service``: by predicted service time (``ServiceTime.total``).
    """

    description = "speculative shortest-job-first (predicted lengths)"
    reads_estimates = True

    def key(self, req: Request, now: float) -> float:
        if self.by_service:
            return self.service.total(req)
        return req.predicted_tokens


@register_policy("srpt")
class OracleSRPT(SizedPolicy):
    """ORACLE shortest remaining processing time: true length minus generated.

    ``size=service``: true remaining service time (recompute of prompt and
    generated tokens, plus the true remaining decode).
    """

    oracle = True
    description = "oracle shortest-remaining-time (true lengths; upper bound)"

    def key(self, req: Request, now: float) -> float:
        return self.true_remaining(req)


@register_policy("ssrpt")
class SpeculativeSRPT(SizedPolicy):
    """Speculative SRPT: predicted remaining tokens given tokens already generated.

    ``size=service``: predicted remaining service time (``ServiceTime.remaining``).
    """

    description = "speculative shortest-remaining-time (predicted, conditioned on progress)"
    reads_estimates = True

    def key(self, req: Request, now: float) -> float:
        if self.by_service:
            return self.service.remaining(req)
        return req.predicted_remaining


@register_policy("hrrn")
class HRRN(Policy):
    """Highest response ratio next (Magnus), on predicted service time.

    Response ratio = (time waited + predicted service) / predicted service, with
    service = predicted remaining tokens x ``seconds_per_token``. Short jobs go
    first, and a long job's ratio grows while it waits, so nothing starves.
    """

    time_dependent = True
    reads_estimates = True
    takes_seconds_per_token = True
    description = "highest response ratio next on predicted service time (Magnus)"

    def __init__(
        self,
        truth: TruthLookup | None = None,
        seconds_per_token: float = 0.02,
    ) -> None:
        super().__init__(truth)
        if seconds_per_token <= 0:
            raise ValueError("hrrn: seconds_per_token must be > 0")
        self.seconds_per_token = seconds_per_token

    def key(self, req: Request, now: float) -> float:
        service = req.predicted_remaining * self.seconds_per_token
        return -(now - req.arrival + service) / service
