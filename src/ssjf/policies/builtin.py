"""The built-in policies: FCFS, oracle SJF/SRPT, speculative SJF/SRPT, HRRN."""

from __future__ import annotations

from ssjf.policies.base import Policy, TruthLookup, register_policy
from ssjf.request import Request


@register_policy("fcfs")
class FCFS(Policy):
    """First come, first served: by arrival time."""

    description = "first come, first served"
    static_unit = "arrival"

    def key(self, req: Request, now: float) -> float:
        return req.arrival


@register_policy("sjf")
class OracleSJF(Policy):
    """ORACLE shortest job first: by the true output length (simulator only)."""

    oracle = True
    description = "oracle shortest-job-first (true lengths; upper bound)"
    static_unit = "tokens"

    def key(self, req: Request, now: float) -> float:
        assert self._truth is not None
        return self._truth(req)


@register_policy("ssjf")
class SpeculativeSJF(Policy):
    """Speculative shortest job first: by the predicted output length."""

    description = "speculative shortest-job-first (predicted lengths)"
    static_unit = "tokens"
    reads_estimates = True

    def key(self, req: Request, now: float) -> float:
        return req.predicted_tokens


@register_policy("srpt")
class OracleSRPT(Policy):
    """ORACLE shortest remaining processing time: true length minus generated."""

    oracle = True
    description = "oracle shortest-remaining-time (true lengths; upper bound)"
    static_unit = "tokens"

    def key(self, req: Request, now: float) -> float:
        assert self._truth is not None
        return self._truth(req) - req.generated


@register_policy("ssrpt")
class SpeculativeSRPT(Policy):
    """Speculative SRPT: predicted remaining tokens given tokens already generated."""

    description = "speculative shortest-remaining-time (predicted, conditioned on progress)"
    static_unit = "tokens"
    reads_estimates = True

    def key(self, req: Request, now: float) -> float:
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

    def __init__(self, truth: TruthLookup | None = None, seconds_per_token: float = 0.02) -> None:
        super().__init__(truth)
        if seconds_per_token <= 0:
            raise ValueError("hrrn: seconds_per_token must be > 0")
        self.seconds_per_token = seconds_per_token

    def key(self, req: Request, now: float) -> float:
        service = req.predicted_remaining * self.seconds_per_token
        return -(now - req.arrival + service) / service
