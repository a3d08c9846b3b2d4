"""Least attained service with soft priority boosting (no predictor).

The key is the service a request has already received, in seconds (generated
tokens x one decode step, ``ServiceTime.decode_s_per_token``), minus
``boost`` x the seconds it has waited since it last entered the queue. Least
attained service needs no length prediction: a request that has run long is
probably long, so it yields to newcomers (LAS is SRPT's stand-in when sizes are
unknown and the distribution has a decreasing hazard). The boost is the soft
priority of "Beyond Prediction" (UniBoost, ICML 2026): waiting raises priority
continuously, so a large ``boost`` tends to FCFS and ``boost = 0`` is pure LAS;
a middle value trades the two for the tail.

Every fresh request has attained nothing, so without preemption the key is
``-boost x waited``, i.e. FCFS: LAS acts where requests are preempted and come
back with service attained. The preemption rule reads a running request's key
with the same formula (its time since it entered the queue includes its run
time), so with ``boost = 1`` and one decode step per ``decode_s_per_token`` a
running request's key holds still while the waiting ones' fall: soft boosting
applies to both, as in UniBoost.
"""

from __future__ import annotations

from ssjf.policies.base import Policy, TruthLookup, register_policy
from ssjf.policies.settings import number, service_setting
from ssjf.request import Request
from ssjf.service import ServiceTime


@register_policy("las")
class BoostedLAS(Policy):
    """Attained service minus ``boost`` x time waited: lowest first."""

    description = "least attained service with soft priority boosting (no predictor)"
    takes_service = True
    # With boost > 0 (the default) the key falls while a request waits.
    time_dependent = True
    static_unit = None

    def __init__(
        self,
        truth: TruthLookup | None = None,
        boost: float = 1.0,
        service: ServiceTime | None = None,
    ) -> None:
        # boost = 1: one second waited cancels one second of service attained,
        # so a preempted request returns ahead of newcomers after it has waited
        # as long as it ran.
        super().__init__(truth)
        self.boost = number("las", "boost", boost, minimum=0.0, strict=False)
        self.service = service_setting("las", service)
        self.time_dependent = self.boost > 0

    def attained(self, req: Request) -> float:
        """Seconds of decode the request has received."""
        return self.service.decode_s_per_token * req.generated

    def key(self, req: Request, now: float) -> float:
        return self.attained(req) - self.boost * req.waited(now)

    def __repr__(self) -> str:
        return f"BoostedLAS(boost={self.boost:g})"
